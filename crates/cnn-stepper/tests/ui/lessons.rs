//! Lessons in the window: every card of every built-in lesson puts the app in its state; a
//! broken lesson file is reported with its line and changes nothing; Back, Leave, the menu.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

use cnn_stepper::app::CnnApp;
use cnn_stepper::lessons::builtin::BUILT_IN;
use cnn_stepper::lessons::{CardState, Lesson};
use cnn_stepper::ui::panels::lesson_cards::{BACK, CardStatus, LEAVE, NEXT};
use cnn_stepper::ui::tabs::TabId;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::kittest::*;

/// The lesson shown: its card and status.
fn card(h: &Harness<'static, CnnApp>) -> Option<(usize, CardStatus)> {
    h.state().lesson().map(|(_, i, s)| (i, s.clone()))
}

/// Runs frames until the card shown is `index` and has reached its state (fails on a failure).
fn reached(h: &mut Harness<'static, CnnApp>, index: usize) {
    let start = std::time::Instant::now();
    loop {
        h.step();
        match card(h) {
            Some((i, CardStatus::Failed(why))) if i == index => panic!("card {} failed: {why}", index + 1),
            Some((i, CardStatus::Reached)) if i == index => return,
            _ => {}
        }
        let snap = h.state().snapshot().map(|s| (s.step, s.phases_done, s.running));
        assert!(start.elapsed() < TIMEOUT, "card {} did not reach its state: {:?}, run {snap:?}", index + 1, card(h));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Checks that the app is in `state`, the state of card `index` of `lesson`.
fn assert_in_state(h: &Harness<'static, CnnApp>, lesson: &Lesson, index: usize, state: &CardState) {
    let what = format!("{} / {}", lesson.title, lesson.cards[index].title);
    let app = h.state();
    let snap = app.snapshot().expect("a snapshot");
    if let Some(n) = &state.network {
        assert_eq!(&snap.model.label(), n, "{what}: the network");
    }
    if let Some(r) = state.recipe {
        assert_eq!(snap.preset, r, "{what}: the recipe");
    }
    if let Some(s) = state.seed {
        assert_eq!(snap.seed, s, "{what}: the seed");
    }
    if let Some(n) = state.run_until {
        assert!(snap.step >= n, "{what}: step {} < {n}", snap.step);
    }
    if let Some(p) = &state.phase {
        let last = snap.last_phase().map(|ph| snap.model.phase_label(ph));
        assert_eq!(last.as_deref(), Some(p.as_str()), "{what}: the phase that ran last");
        assert_eq!(snap.step, state.run_until.unwrap_or(0) + u64::from(p == "update"), "{what}: in the right batch");
    } else if let Some(n) = state.run_until {
        assert_eq!((snap.step, snap.last_phase().is_none_or(|p| p == cnn_stepper::engine::Phase::Update)), (n, true));
    }
    if let Some(t) = &state.tab {
        assert_eq!(app.tab(), TabId::find(t).expect("a tab"), "{what}: the tab in front");
    }
    if let Some(px) = &state.inspect {
        let p = app.inspected().unwrap_or_else(|| panic!("{what}: the inspector is open"));
        let layer = snap.model.plan.layer_named(&px.layer).expect("the layer").index;
        assert_eq!((p.layer, p.channel, p.y, p.x), (layer, px.map, px.row, px.column), "{what}: the pixel");
    }
    if let Some(i) = state.select {
        assert_eq!(snap.sample.index, i - 1, "{what}: the image followed");
    }
    if state.evaluate.is_some() {
        assert!(app.teaching().evaluation.is_some(), "{what}: evaluated");
    }
    if let Some(d) = &state.data {
        let want = match d {
            // The tests' own small data stands in for the sample (nothing to load).
            cnn_stepper::data::DataSource::Sample => app.data().source.clone(),
            cnn_stepper::data::DataSource::Shapes => "shapes".to_string(),
            cnn_stepper::data::DataSource::Folder(p) => p.display().to_string(),
        };
        assert!(snap.data_source.contains(&want), "{what}: on {} not {want}", snap.data_source);
        assert!(app.data().source.contains(&want), "{what}: the window's data follows");
    }
}

/// Checks the `loop:` and `playground:` of card `index`: the Loops tab in front at the part,
/// the playground open in the setup (and closed on a card without one).
fn assert_loops_and_playground(h: &mut Harness<'static, CnnApp>, lesson: &Lesson, index: usize) {
    let what = format!("{} / {}", lesson.title, lesson.cards[index].title);
    let state = lesson.state_at(index);
    if let Some(spec) = &state.loop_part {
        let plan = h.state().snapshot().expect("a snapshot").model.plan.clone();
        let layer = spec.layer_in(&plan).expect("the card's layer has the part");
        assert_eq!(h.state_mut().loops_choice(), Some((layer, spec.part)), "{what}: the Loops tab's part");
        if state.tab.is_none() {
            assert_eq!(h.state().tab(), cnn_stepper::ui::tabs::loops::ID, "{what}: the Loops tab in front");
        }
    }
    match &state.playground {
        Some(line) => {
            let want = cnn_stepper::engine::playground::Setup::parse(line).expect("a setup line");
            let p = h.state().playground().unwrap_or_else(|| panic!("{what}: the playground is open"));
            assert_eq!(p.input().side(), want.side, "{what}: the playground's input");
            assert_eq!(
                (p.operation().mode, p.operation().pad, p.operation().stride),
                (want.mode, want.pad, want.stride)
            );
        }
        None if index > 0 && lesson.cards[index - 1].state.playground.is_some() => {
            assert!(h.state().playground().is_none(), "{what}: the playground the card before opened is closed");
        }
        None => {}
    }
}

/// Starts the built-in lesson `name` and clicks Next through every card, checking each one.
fn teach_every_card(name: &str) {
    let mut h = harness();
    started(&mut h);
    h.state_mut().start_lesson_named(name);
    let (lesson, _, _) = h.state().lesson().map(|(l, i, s)| (l.clone(), i, s.clone())).expect("the lesson started");
    for index in 0..lesson.cards.len() {
        if index > 0 {
            h.get_by_label(NEXT).click();
        }
        reached(&mut h, index);
        h.step();
        assert_in_state(&h, &lesson, index, &lesson.state_at(index));
        assert_loops_and_playground(&mut h, &lesson, index);
        if index > 0 && lesson.cards[index - 1].state.inspect.is_some() && lesson.cards[index].state.inspect.is_none() {
            assert!(h.state().inspected().is_none(), "the inspector the card before opened is closed");
        }
        assert!(has_text_containing(&h, &format!("card {} of {}", index + 1, lesson.cards.len())));
        assert!(h.query_all_by_label(&lesson.cards[index].title).next().is_some(), "the card's title is shown");
    }
}

#[test]
fn every_card_of_follow_the_post_reaches_its_state() {
    teach_every_card("follow-the-post");
}

#[test]
fn every_card_of_why_the_post_does_not_learn_reaches_its_state() {
    teach_every_card("post-does-not-learn");
}

#[test]
fn every_card_of_what_pooling_does_reaches_its_state() {
    teach_every_card("what-pooling-does");
}

#[test]
fn every_card_of_colour_channels_reaches_its_state() {
    teach_every_card("colour-channels");
}

#[test]
fn every_built_in_lesson_parses_against_the_windows_tabs() {
    let mut h = harness_with(tiny());
    started(&mut h);
    for b in BUILT_IN {
        h.state_mut().start_lesson_named(b.name);
        assert_eq!(h.state().lesson().map(|(l, ..)| l.title.clone()).as_deref(), Some(b.title()));
    }
    assert!(h.state().banners().is_empty(), "{:?}", h.state().banners());
}

#[test]
fn a_broken_lesson_file_is_reported_with_its_line_and_the_lesson_and_run_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.md");
    std::fs::write(&path, "# Broken\n\n## One\nnetwork: lenet5\nphase: forward conv9\n\nText.\n").unwrap();
    let mut h = harness_with(tiny());
    started(&mut h);
    h.state_mut().start_lesson_named("what-pooling-does");
    reached(&mut h, 0);
    let before = (step(&h), phases_done(&h), h.state().snapshot().unwrap().model.label());
    h.state_mut().open_lesson_file(&path);
    settle(&mut h);
    let banner = h.state().banners().iter().map(|b| b.message.clone()).collect::<Vec<_>>().join("\n");
    assert!(banner.contains("broken.md, line 5") && banner.contains("forward conv9"), "{banner}");
    assert!(has_text_containing(&h, "broken.md, line 5"), "the banner is shown");
    assert_eq!(h.state().lesson().map(|(l, i, _)| (l.title.clone(), i)), Some(("What pooling does".into(), 0)));
    let after = (step(&h), phases_done(&h), h.state().snapshot().unwrap().model.label());
    assert_eq!(after, before, "the run is untouched");

    // A lesson naming a network that does not fit the data: the card says why.
    let misfit = dir.path().join("misfit.md");
    std::fs::write(&misfit, "# Misfit\n\n## One\nnetwork: conv(4,3), flatten, fc(10)\ndata: shapes\n").unwrap();
    h.state_mut().open_lesson_file(&misfit);
    settle(&mut h);
    assert!(h.state().banners().iter().any(|b| b.message.contains("misfit.md, line")), "{:?}", h.state().banners());
}

#[test]
fn back_puts_the_app_in_the_card_before_and_leave_keeps_the_state() {
    let mut h = harness_with(tiny());
    started(&mut h);
    h.state_mut().start_lesson_named("follow-the-post");
    let lesson = h.state().lesson().map(|(l, ..)| l.clone()).unwrap();
    reached(&mut h, 0);
    let backward_fc1 = lesson.cards.iter().position(|c| c.state.phase.as_deref() == Some("backward fc1")).unwrap();
    for i in 1..=backward_fc1 {
        h.get_by_label(NEXT).click();
        reached(&mut h, i);
    }
    assert_eq!(
        h.state()
            .snapshot()
            .unwrap()
            .last_phase()
            .map(|p| h.state().snapshot().unwrap().model.phase_label(p))
            .as_deref(),
        Some("backward fc1")
    );
    for i in [backward_fc1 - 1, backward_fc1 - 2] {
        h.get_by_label(BACK).click();
        reached(&mut h, i);
        assert_in_state(&h, &lesson, i, &lesson.state_at(i));
    }
    let kept = (step(&h), phases_done(&h), h.state().tab(), h.state().inspected());
    h.get_by_label(LEAVE).click();
    settle(&mut h);
    assert!(h.state().lesson().is_none(), "the lesson is closed");
    assert!(!has_label(&h, NEXT));
    assert_eq!((step(&h), phases_done(&h), h.state().tab(), h.state().inspected()), kept, "the state stays");
}

#[test]
fn the_lessons_menu_starts_a_built_in_lesson_and_page_down_goes_on() {
    let mut h = harness_with(tiny());
    started(&mut h);
    h.get_by_label("Lessons").click();
    h.run();
    h.get_by_label("Why the post's network does not learn").click();
    reached(&mut h, 0);
    assert!(has_label(&h, "The post's initialisation"));
    h.key_press(eframe::egui::Key::PageDown);
    wait_for(&mut h, "the second card", |h| card(h).is_some_and(|(i, _)| i == 1));
}

#[test]
fn a_user_step_while_the_card_trains_stops_it_and_the_card_offers_to_go_on() {
    let mut h = harness_with(tiny());
    started(&mut h);
    h.state_mut().start_lesson_named("post-does-not-learn");
    reached(&mut h, 0);
    h.get_by_label(NEXT).click();
    wait_for(&mut h, "training towards step 30", |h| h.state().snapshot().is_some_and(|s| s.running));
    h.key_press(eframe::egui::Key::Space); // Pause
    wait_for(&mut h, "the pause", |h| h.state().snapshot().is_some_and(|s| !s.running));
    settle(&mut h);
    assert!(matches!(card(&h), Some((1, CardStatus::Stopped(_)))), "{:?}", card(&h));
    assert!(has_label(&h, cnn_stepper::ui::panels::lesson_cards::AGAIN));
    h.get_by_label(cnn_stepper::ui::panels::lesson_cards::AGAIN).click();
    reached(&mut h, 1);
    assert_eq!(step(&h), 30);
}

#[test]
fn a_mistyped_lesson_name_lists_the_built_in_lessons_and_changes_nothing() {
    let mut h = harness_with(tiny());
    started(&mut h);
    h.state_mut().start_lesson_named("follow-the-pots");
    settle(&mut h);
    let banner = h.state().banners().iter().map(|b| b.message.clone()).collect::<Vec<_>>().join("\n");
    assert!(banner.contains("follow-the-pots: no built-in lesson has this name"), "{banner}");
    assert!(banner.contains("follow-the-post, post-does-not-learn, what-pooling-does, colour-channels"), "{banner}");
    assert!(!banner.contains("line"), "no line is at fault: {banner}");
    assert!(h.state().lesson().is_none(), "no lesson started");
}
