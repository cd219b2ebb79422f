//! Lesson files: the built-in lessons parse, every mistake is reported with its line, a lesson
//! written back reads back the same, and no text makes the parser panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

use cnn_stepper_core::data::DataSource;
use cnn_stepper_core::engine::Preset;
use cnn_stepper_core::lessons::builtin::{BUILT_IN, built_in};
use cnn_stepper_core::lessons::{Known, Lesson, LessonError, MNIST_SHAPE, PixelSpec, Problem};
use proptest::prelude::*;

/// The window's tabs: (name on the tab row, stored id).
fn known() -> Known {
    let tabs = [
        ("Feature maps", "FeatureMaps"),
        ("Filters", "Filters"),
        ("FC1", "Fc1"),
        ("Evaluation", "Evaluation"),
        ("Backprop check", "Health"),
    ];
    Known {
        tabs: tabs.iter().map(|(n, i)| ((*n).to_owned(), (*i).to_owned())).collect(),
        start_data: Some(MNIST_SHAPE),
        start_network: Some("post".into()),
    }
}

fn parse(text: &str) -> Result<Lesson, LessonError> {
    Lesson::parse("my-lesson.md", text, &known())
}

fn error(text: &str) -> LessonError {
    parse(text).expect_err("the lesson should be refused")
}

#[test]
fn every_built_in_lesson_parses_with_short_cards_that_each_set_something() {
    for b in BUILT_IN {
        let lesson = Lesson::parse(&b.file(), b.text, &known()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lesson.title, b.title());
        assert!(lesson.cards.len() >= 3, "{}: {} cards", b.name, lesson.cards.len());
        for card in &lesson.cards {
            let s = &card.state;
            let sets = s.moves_the_run()
                || s.tab.is_some()
                || s.inspect.is_some()
                || s.layer.is_some()
                || s.loop_part.is_some()
                || s.playground.is_some();
            assert!(sets, "{} / {}: the card puts the app in no state", b.name, card.title);
            let words = card.text.split_whitespace().count();
            assert!((15..=110).contains(&words), "{} / {}: {words} words", b.name, card.title);
        }
        assert_eq!(built_in(b.name), Some(&b));
    }
}

#[test]
fn a_card_reads_its_state_keys_and_text() {
    let l = parse(
        "\n# Why\nAn intro.\n\n## Init\nnetwork: post\nrecipe: post\nseed: 1\nrun-until: step 50\n\
         phase: Backward   FC1\ntab: health\nlayer: conv2\ninspect: conv2, 3, 14, 27\nselect: 2\nevaluate: 500\n\n\
         Some **bold** text.\n\n- a bullet\n",
    )
    .unwrap();
    assert_eq!((l.title.as_str(), l.intro.as_str()), ("Why", "An intro."));
    let card = &l.cards[0];
    assert_eq!((card.title.as_str(), card.line), ("Init", 5));
    let s = &card.state;
    assert_eq!(s.network.as_deref(), Some("post"));
    assert_eq!(s.recipe, Some(Preset::Post));
    assert_eq!((s.seed, s.run_until), (Some(1), Some(50)));
    assert_eq!(s.phase.as_deref(), Some("backward fc1"));
    assert_eq!(s.tab.as_deref(), Some("Health"), "the tab's stored id");
    assert_eq!(s.inspect, Some(PixelSpec { layer: "conv2".into(), map: 3, row: 14, column: 27 }));
    assert_eq!((s.select, s.evaluate), (Some(2), Some(500)));
    assert_eq!(card.text, "Some **bold** text.\n\n- a bullet");
}

#[test]
fn tabs_are_found_by_their_name_or_id_in_any_case() {
    for (written, id) in [("feature maps", "FeatureMaps"), ("Backprop check", "Health"), ("HEALTH", "Health")] {
        let l = parse(&format!("# L\n## C\ntab: {written}\n")).unwrap();
        assert_eq!(l.cards[0].state.tab.as_deref(), Some(id), "{written}");
    }
}

#[test]
fn every_mistake_names_the_file_and_its_line() {
    let cases: [(&str, usize, &str); 16] = [
        ("", 1, "empty"),
        ("\n\n   \n", 3, "empty"),
        ("Hello\n# Title\n", 1, "starts with its title"),
        ("## Card first\n", 1, "starts with its title"),
        ("# Title\nonly an intro\n", 2, "no cards"),
        ("# Title\n\nnetwork: post\n## Card\n", 3, "belongs to no card"),
        ("# Title\n## Card\ncolour: red\n", 3, "unknown key `colour`"),
        ("# Title\n## Card\nseed: 1\nseed: 2\n", 4, "twice"),
        ("# Title\n## Card\nseed: one\n", 3, "`seed: one`"),
        ("# Title\n## Card\nrecipe: fast\n", 3, "post, recommended or adam"),
        ("# Title\n## A\n\ntext\n\n## B\nnetwork: lenet6\n", 7, "unknown network `lenet6`"),
        ("# Title\n## A\nnetwork: lenet5\nphase: forward conv3\n", 4, "unknown phase `forward conv3`"),
        ("# Title\n## A\ntab: weights\n", 3, "unknown tab `weights`"),
        ("# Title\n## A\nnetwork: tiny\n## B\nlayer: fc2\n", 5, "unknown layer `fc2`"),
        ("# Title\n## A\ninspect: conv1, 16, 0, 0\n", 3, "16 maps of 28×28"),
        ("# Title\n##\n", 2, "title is empty"),
    ];
    for (text, line, words) in cases {
        let e = error(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert_eq!(e.file, "my-lesson.md");
        let message = e.to_string();
        assert!(message.starts_with(&format!("my-lesson.md, line {line}: ")), "{message}");
        assert!(message.contains(words), "{text:?}: {message}");
    }
}

#[test]
fn an_unknown_name_lists_the_names_that_would_do() {
    let e = error("# T\n## A\nnetwork: lenet5\nphase: forward fc9\n");
    let Problem::Unknown { what, context, known, .. } = &e.problem else { panic!("{e}") };
    assert_eq!(*what, "phase");
    assert!(context.contains("lenet5"), "{context}");
    assert!(known.contains(&"forward pool2".to_string()) && known.contains(&"update".to_string()), "{known:?}");
    let e = error("# T\n## A\nnetwork: lenet6\n");
    assert!(e.to_string().contains("post, post-relu, lenet5, tiny"), "{e}");
    let e = error("# T\n## A\ntab: weights\n");
    assert!(e.to_string().contains("Feature maps, Filters, FC1, Evaluation, Backprop check"), "{e}");
}

#[test]
fn a_network_that_does_not_fit_the_cards_data_is_named_on_the_data_line() {
    // The post's network fits MNIST; on the 3×32×32 shapes the named network adapts its input,
    // but a line with 10 classes does not fit the five shapes.
    let line = "conv(4,3), relu, flatten, fc(10)";
    let e = error(&format!("# T\n## A\nnetwork: {line}\n\n## B\ndata: shapes\n"));
    assert_eq!(e.line, 6, "{e}");
    assert!(e.to_string().contains("5 classes") || e.to_string().contains("fc(5)"), "{e}");
}

#[test]
fn names_are_checked_against_the_network_the_card_is_on_after_carrying_over() {
    // lenet5 from card A is still the network on card B: pool2 exists there, not in the post.
    assert!(parse("# T\n## A\nnetwork: lenet5\n## B\nphase: forward pool2\n").is_ok());
    let e = error("# T\n## A\nnetwork: lenet5\n## B\nnetwork: post\n## C\nphase: forward pool2\n");
    assert_eq!(e.line, 7, "{e}");
    // A folder's images are not known before it is loaded: names are not checked there.
    assert!(parse("# T\n## A\ndata: /nowhere\nphase: forward pool7\n").is_ok());
}

#[test]
fn the_state_at_a_card_carries_the_run_over_and_a_fresh_run_drops_the_steps() {
    let l = parse(
        "# T\n## A\nnetwork: post\nseed: 3\nrun-until: 5\ntab: filters\n## B\nphase: loss\n## C\nrecipe: post\n\
         ## D\nrun-until: 7\n## E\ndata: shapes\nnetwork: lenet5\n",
    )
    .unwrap();
    let b = l.state_at(1);
    assert_eq!(
        (b.network.as_deref(), b.seed, b.run_until, b.phase.as_deref()),
        (Some("post"), Some(3), Some(5), Some("loss"))
    );
    assert_eq!(b.tab, None, "the view keys are the card's own");
    let c = l.state_at(2);
    assert_eq!((c.recipe, c.seed, c.run_until, c.phase.as_deref()), (Some(Preset::Post), Some(3), None, None));
    let d = l.state_at(3);
    assert_eq!((d.run_until, d.phase.as_deref()), (Some(7), None));
    let e = l.state_at(4);
    assert_eq!((e.data, e.network.as_deref(), e.run_until), (Some(DataSource::Shapes), Some("lenet5"), None));
}

#[test]
fn a_lesson_written_back_reads_back_the_same() {
    for b in BUILT_IN {
        let lesson = Lesson::parse(&b.file(), b.text, &known()).unwrap();
        let again = parse(&lesson.to_markdown()).unwrap();
        assert_eq!(again.title, lesson.title);
        assert_eq!(again.intro, lesson.intro);
        assert_eq!(again.cards.len(), lesson.cards.len());
        for (a, c) in again.cards.iter().zip(&lesson.cards) {
            assert_eq!((&a.title, &a.state, &a.text), (&c.title, &c.state, &c.text), "{}", b.name);
        }
    }
}

#[test]
fn a_lesson_file_is_read_with_its_relative_data_folder_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.md");
    std::fs::write(&path, "# Mine\n## A\ndata: digits\nnetwork: tiny\n").unwrap();
    let l = Lesson::open(&path, &known()).unwrap();
    assert_eq!(l.cards[0].state.data, Some(DataSource::Folder(dir.path().join("digits"))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Random text, and random lines of lesson-like pieces: an answer, never a panic, and an
    /// error's line is within the text.
    #[test]
    fn no_text_makes_the_parser_panic(
        pieces in proptest::collection::vec(
            prop_oneof![
                Just("# Title".to_string()), Just("## Card".to_string()), Just(String::new()),
                Just("network: lenet5".to_string()), Just("phase: forward pool1".to_string()),
                Just("inspect: conv1, 0, 99, 0".to_string()), Just("tab: filters".to_string()),
                Just("run-until: 18446744073709551616".to_string()), Just("select: 0".to_string()),
                Just("evaluate: maybe".to_string()), Just("data: shapes".to_string()),
                Just("network: conv(3,99), flatten, fc(10)".to_string()), Just("**bold `code".to_string()),
                "[ -~é×·]{0,40}",
            ],
            0..14,
        ),
        noise in "\\PC{0,200}",
    ) {
        for text in [pieces.join("\n"), noise.clone(), format!("# T\n## C\n{noise}")] {
            match parse(&text) {
                Ok(l) => prop_assert!(!l.cards.is_empty()),
                Err(e) => prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "{e}"),
            }
            for b in cnn_stepper_core::lessons::blocks(&text) {
                let _ = b;
            }
        }
    }
}

#[test]
fn a_loop_card_names_a_part_the_network_has_and_a_playground_card_a_setup_the_playground_takes() {
    use cnn_stepper_core::engine::model::loops::LoopPart;
    let lesson = parse(
        "# T\n## A\nloop: conv1 forward\n## B\nloop: conv2 backward dW & db\n## C\nloop: fc1 Backward dx\n\
         ## D\nloop: loss backward\n## E\nplayground: size=8 mode=max window=2 stride=2\n",
    )
    .unwrap();
    let parts: Vec<Option<(Option<String>, LoopPart)>> =
        lesson.cards.iter().map(|c| c.state.loop_part.clone().map(|l| (l.layer, l.part))).collect();
    assert_eq!(
        parts,
        [
            Some((Some("conv1".into()), LoopPart::Forward)),
            Some((Some("conv2".into()), LoopPart::BackwardParams)),
            Some((Some("fc1".into()), LoopPart::BackwardInput)),
            Some((None, LoopPart::LossBackward)),
            None,
        ]
    );
    assert_eq!(lesson.state_at(4).loop_part, None, "a loop is the card's own, not carried over");
    assert_eq!(lesson.cards[4].state.playground.as_deref(), Some("size=8 mode=max window=2 stride=2"));
    let again = parse(&lesson.to_markdown()).unwrap();
    let states = |l: &Lesson| l.cards.iter().map(|c| c.state.clone()).collect::<Vec<_>>();
    assert_eq!(states(&again), states(&lesson), "written back, read back the same");

    let cases: [(&str, usize, &str); 6] = [
        ("# T\n## A\nloop: conv9 forward\n", 3, "there is no layer conv9"),
        ("# T\n## A\nloop: conv1 backward\n", 3, "`backward dW` (dW & db) or `backward dX`"),
        ("# T\n## A\nloop: conv1 sideways\n", 3, "expected a layer and a part"),
        // The post's first layer has no dX (nothing before it needs a gradient).
        ("# T\n## A\nloop: conv1 backward dX\n", 3, "conv1"),
        ("# T\n## A\nnetwork: lenet5\n\ntext\n\n## B\nloop: relu1 backward dW\n", 8, "relu1"),
        ("# T\n## A\nplayground: size=12\n", 3, "size=12"),
    ];
    for (text, line, words) in cases {
        let e = error(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.to_string().contains(words), "{text:?}: {e}");
    }
}

#[test]
fn a_file_that_cannot_be_read_is_named_without_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.md");
    let e = Lesson::open(&missing, &known()).expect_err("no such file");
    assert_eq!(e.line, 0, "no line is at fault");
    let message = e.to_string();
    assert!(message.starts_with(&format!("{}: ", missing.display())), "{message}");
    assert!(!message.contains(", line"), "{message}");
    // A folder is not a lesson either.
    let e = Lesson::open(dir.path(), &known()).expect_err("a folder");
    assert!(matches!(e.problem, Problem::Unreadable(_)), "{e}");
}
