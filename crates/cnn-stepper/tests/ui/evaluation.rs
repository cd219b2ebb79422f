//! The evaluation view in a minimal host, on a real evaluation of a briefly trained network:
//! the button, the confusion matrix's cells, the gallery's filter and its clicks, found by their
//! accessibility labels and clicked like a user would.

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use cnn_stepper::data::{self, Dataset, Splits};
use cnn_stepper::engine::{ConvEngine, Preset};
use cnn_stepper::trainer::{Command, EvalResult, ProbeInput, Session};
use cnn_stepper::ui::tabs::evaluation::{
    EVALUATE_LABEL, EvaluationState, GalleryFilter, PAGE_SIZE, SHOW_ALL_LABEL, evaluation_ui,
};
use eframe::egui;
use eframe::egui::accesskit::Toggled;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

/// Images evaluated: enough for a matrix with several non-empty off-diagonal cells.
const EVALUATED: usize = 2000;

/// The embedded sample and an evaluation of a small network after a few batches, made once.
fn fixture() -> &'static (Arc<Splits>, EvalResult) {
    static FIXTURE: OnceLock<(Arc<Splits>, EvalResult)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let data = Arc::new(data::embedded().expect("the embedded sample decodes"));
        let mut s =
            Session::new(data.clone(), 5, Preset::Recommended, crate::kittest::SMALL_POST, ConvEngine::Fast).unwrap();
        for _ in 0..6 {
            s.step_batch(&mut |_, _| {}).unwrap();
        }
        let r = s.evaluate(EVALUATED, &mut |_, _| {}).unwrap();
        assert!(r.correct > 0 && r.correct < r.count, "a half-trained network: {} of {}", r.correct, r.count);
        (data, r)
    })
}

/// What the host keeps: the widget's state, its inputs and what it returned.
struct Host {
    state: EvaluationState,
    result: Option<EvalResult>,
    can_run: Result<(), String>,
    progress: Option<(usize, usize)>,
    returned: Vec<Command>,
}

fn harness_with(result: Option<EvalResult>, can_run: Result<(), String>) -> Harness<'static, Host> {
    let host = Host { state: EvaluationState::default(), result, can_run, progress: None, returned: Vec::new() };
    Harness::builder().with_size(egui::vec2(1200.0, 1500.0)).build_ui_state(
        |ui, host: &mut Host| {
            let test: &Dataset = &fixture().0.test;
            let cmd =
                evaluation_ui(ui, &mut host.state, host.result.as_ref(), test, 6, host.progress, host.can_run.clone());
            host.returned.extend(cmd);
        },
        host,
    )
}

fn harness() -> Harness<'static, Host> {
    harness_with(Some(fixture().1.clone()), Ok(()))
}

fn cell_label(t: usize, p: usize, n: usize) -> String {
    format!("true {t}, predicted {p}: {n} {}", if n == 1 { "digit" } else { "digits" })
}

/// Test indices of the gallery items on screen, from their labels "test image 123: …".
fn gallery_indices(h: &Harness<'static, Host>) -> Vec<usize> {
    h.query_all_by_label_contains("test image ")
        .filter_map(|n| {
            let label = n.accesskit_node().label()?;
            let rest = label.strip_prefix("test image ")?;
            rest.split(':').next()?.parse().ok()
        })
        .collect()
}

/// The off-diagonal cell with the most mistakes that still fit on one gallery page.
fn busy_cell(r: &EvalResult) -> (usize, usize, usize) {
    (0..r.classes)
        .flat_map(|t| (0..r.classes).map(move |p| (t, p)))
        .filter(|(t, p)| t != p)
        .map(|(t, p)| (t, p, r.confusion_count(t, p)))
        .filter(|c| c.2 <= PAGE_SIZE)
        .max_by_key(|c| c.2)
        .expect("a 10-class matrix")
}

#[test]
fn the_button_asks_for_an_evaluation_of_the_whole_test_set() {
    let mut h = harness_with(None, Ok(()));
    h.run();
    assert!(h.query_by_label(SHOW_ALL_LABEL).is_none(), "no result, no gallery");
    h.get_by_label(EVALUATE_LABEL).click();
    h.run();
    assert_eq!(h.state().returned, vec![Command::Evaluate { count: 0 }]);

    // While one runs: a progress bar with its counts and no second start.
    h.state_mut().progress = Some((4000, 10_000));
    h.run();
    assert!(h.query_by_label_contains("evaluating 4,000 / 10,000").is_some(), "the progress bar's text");
    assert!(h.get_by_label(EVALUATE_LABEL).accesskit_node().is_disabled());
    h.get_by_label(EVALUATE_LABEL).click();
    h.run();
    assert_eq!(h.state().returned.len(), 1, "a disabled button sends nothing");
}

#[test]
fn the_disabled_button_says_why() {
    let mut h = harness_with(None, Err("Pause training first".into()));
    h.run();
    let button = h.get_by_label(EVALUATE_LABEL);
    assert!(button.accesskit_node().is_disabled());
    button.hover();
    // Tooltips appear after a short delay: run frames until it shows, for a bounded time.
    for _ in 0..60 {
        h.step();
        if h.query_by_label("Pause training first").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(h.query_by_label("Pause training first").is_some(), "the tooltip gives the reason");
    h.get_by_label(EVALUATE_LABEL).click();
    h.run();
    assert!(h.state().returned.is_empty());
}

#[test]
fn every_matrix_cell_is_labelled_with_its_count() {
    let mut h = harness();
    h.run();
    let r = &fixture().1;
    let mut total = 0;
    for t in 0..r.classes {
        for p in 0..r.classes {
            let n = r.confusion_count(t, p);
            total += n;
            assert!(h.query_by_label(&cell_label(t, p, n)).is_some(), "cell {t},{p} labelled with {n}");
        }
    }
    assert_eq!(total, EVALUATED, "the labels account for every evaluated image");
    let accuracy = format!("Test accuracy {:.1}%", r.accuracy() * 100.0);
    assert!(h.query_by_label(&accuracy).is_some(), "{accuracy}");
    assert!(h.query_by_label_contains("measured at step 6").is_some());
}

#[test]
fn clicking_a_cell_shows_exactly_its_mistakes_and_show_all_resets() {
    let mut h = harness();
    h.run();
    let r = &fixture().1;
    let all_on_first_page = gallery_indices(&h);
    assert_eq!(all_on_first_page.len(), PAGE_SIZE.min(r.misclassified.len()));
    // The first page holds the most confident mistakes of all.
    let most_confident = r.misclassified.iter().map(|m| m.confidence).fold(f32::MIN, f32::max);
    let first = r.misclassified.iter().find(|m| m.index == all_on_first_page[0]).unwrap();
    assert_eq!(first.confidence, most_confident);

    let (t, p, n) = busy_cell(r);
    assert!(n >= 2, "a cell with a few mistakes to show, got {n}");
    h.get_by_label(&cell_label(t, p, n)).click();
    h.run();
    assert_eq!(h.state().state.filter(), GalleryFilter::Cell { truth: t, predicted: p });
    let shown = gallery_indices(&h);
    let expected: BTreeSet<usize> = r.misclassified_as(t, p).map(|m| m.index).collect();
    assert_eq!(shown.iter().copied().collect::<BTreeSet<_>>(), expected, "exactly the digits of the cell");
    assert_eq!(shown.len(), n, "each once");
    // Most confident first.
    let conf: Vec<f32> =
        shown.iter().map(|i| r.misclassified.iter().find(|m| m.index == *i).unwrap().confidence).collect();
    assert!(conf.windows(2).all(|w| w[0] >= w[1]), "ordered by confidence: {conf:?}");

    h.get_by_label(SHOW_ALL_LABEL).click();
    h.run();
    assert_eq!(h.state().state.filter(), GalleryFilter::All);
    assert_eq!(gallery_indices(&h), all_on_first_page);
}

#[test]
fn clicking_the_diagonal_explains_and_shows_the_class_mistakes() {
    let mut h = harness();
    h.run();
    let r = &fixture().1;
    let k = (0..r.classes).max_by_key(|&k| r.class_count(k) - r.confusion_count(k, k)).unwrap();
    h.get_by_label(&cell_label(k, k, r.confusion_count(k, k))).click();
    h.run();
    assert_eq!(h.state().state.filter(), GalleryFilter::TrueClass(k));
    assert!(h.query_by_label_contains("correctly classified images of").is_some(), "a note says why");
    let expected: BTreeSet<usize> = r.misclassified.iter().filter(|m| m.label == k).map(|m| m.index).collect();
    let shown: BTreeSet<usize> = h.state().state.shown().into_iter().collect();
    assert_eq!(shown, expected);
}

#[test]
fn clicking_a_gallery_digit_probes_it_and_marks_it_selected() {
    let mut h = harness();
    h.run();
    let index = gallery_indices(&h)[3];
    let label = format!("test image {index}:");
    let node = h.get_by_label_contains(&label);
    assert_ne!(node.accesskit_node().toggled(), Some(Toggled::True), "not selected before the click");
    node.click();
    h.run();
    assert_eq!(h.state().returned, vec![Command::Probe(ProbeInput::TestImage(index))]);
    assert_eq!(h.state().state.selected(), Some(index));
    let node = h.get_by_label_contains(&label);
    assert_eq!(node.accesskit_node().toggled(), Some(Toggled::True), "marked as selected");
}

#[test]
fn the_gallery_reuses_one_texture_across_filters_and_frames() {
    let mut h = harness();
    h.run();
    let textures = h.ctx.tex_manager().read().num_allocated();
    let r = &fixture().1;
    let (t, p, n) = busy_cell(r);
    for _ in 0..3 {
        h.get_by_label(&cell_label(t, p, n)).click();
        h.run();
        h.get_by_label(SHOW_ALL_LABEL).click();
        h.run();
    }
    assert_eq!(h.ctx.tex_manager().read().num_allocated(), textures);
}

#[test]
fn an_old_result_is_marked_as_older_than_the_weights() {
    let old = EvalResult { step: 2, ..fixture().1.clone() };
    let mut h = harness_with(Some(old), Ok(()));
    h.run();
    assert!(h.query_by_label_contains("Measured 4 steps ago").is_some());
}
