//! The Loops tab (issue 16 §1) in the real window: a conv forward stepped a few iterations
//! writes its cells, jumping to the end of the phase gives the engine's map (the one in the
//! snapshot), and a backward part and a pool end at the engine's result too. The Wide toggle
//! hides the side panels while the tab is in front; an fc's long sum shows its terms as numbers.

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use cnn_stepper::app::CnnApp;
use cnn_stepper::data::{Dataset, Splits, embedded};
use cnn_stepper::ui::support::prefs::Prefs;
use cnn_stepper::ui::tabs::loops::{END_LABEL, LAST_TERM_LABEL, NEXT_TERM_LABEL, STEP_LABEL, WIDE_LABEL};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::kittest::*;

/// A strided conv, a max pool and an average pool before the scores.
const POOLED: &str = "conv(3,3,stride=2,pad=1), relu, maxpool(2), conv(4,3,pad=1), avgpool(2), flatten, fc(10)";

/// The app on four digits with [`POOLED`], the naive engine, batches of one image, one
/// phase (forward conv1) run, the Loops tab in front with its case arrived.
fn loops_harness() -> Harness<'static, CnnApp> {
    loops_harness_with(POOLED, "conv1 forward on step 1's batch of 1")
}

/// The app on four digits with network `model`, as [`loops_harness`]; `heading`: the start of
/// the first part's heading.
fn loops_harness_with(model: &str, heading: &str) -> Harness<'static, CnnApp> {
    let data = four();
    let prefs = Prefs { model: Some(model.to_owned()), ..Prefs::default() };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_eframe(move |cc| CnnApp::with_prefs(&cc.egui_ctx, data, 1, prefs));
    started(&mut h);
    // The tiny set has four images: batch size first, or the engine's change is refused with it.
    fill(&mut h, "Batch size", "1");
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "batch size 1", |h| h.state().snapshot().is_some_and(|s| s.settings.batch_size == 1));
    h.get_by_label("naive").click();
    wait_for(&mut h, "batch size 1 on the naive engine", |h| {
        h.state().snapshot().is_some_and(|s| s.settings.batch_size == 1 && s.settings.engine.name() == "naive")
    });
    h.get_by_label("Step phase").click();
    wait_for(&mut h, "forward conv1", |h| phases_done(h) == 1);
    h.get_by_label("Loops").click();
    wait_for(&mut h, "the case", |h| has_text_containing(h, heading));
    h
}

/// The first four digits of the embedded sample, as training and test set.
fn four() -> Arc<Splits> {
    let full = embedded().unwrap();
    let split = || {
        Dataset::new(
            full.train.images[..4 * 784].to_vec(),
            full.train.labels[..4].to_vec(),
            28,
            28,
            full.train.class_names.clone(),
        )
        .unwrap()
    };
    Arc::new(Splits { train: split(), test: split(), source: "four digits".into(), notes: Vec::new() })
}

/// The value of the cell labelled `name = v` (written by the loop), if it is shown.
fn cell(h: &Harness<'static, CnnApp>, name: &str) -> Option<f32> {
    let prefix = format!("{name} = ");
    // The sum's line starts the same way; the cell's label is the one that is a number.
    h.query_all_by_label_contains(&prefix).find_map(|n| n.accesskit_node().value()?.strip_prefix(&prefix)?.parse().ok())
}

#[test]
fn stepping_conv1_forward_advances_the_indices_and_writes_cells_and_the_end_is_the_snapshots_map() {
    let mut h = loops_harness();
    assert!(has_text_containing(&h, "out[0, 0, 0, 0] not computed yet"));
    for _ in 0..3 {
        h.get_by_label(STEP_LABEL).click();
        h.step();
    }
    h.step();
    assert!(has_label(&h, "w = 2 of 0..14"), "three iterations of the w loop ran");
    assert!(has_label(&h, "h = 0 of 0..14") && has_label(&h, "f = 0 of 0..3"));
    assert!(has_text_containing(&h, "running: out[n, f, h, w] = np.sum(x_pad[n, :, h*S:h*S+HH"));
    let conv1 = layer_index(h.state().snapshot().unwrap(), "conv1");
    let map = h.state().snapshot().unwrap().sample.output(conv1).to_vec();
    assert_eq!(cell(&h, "out[0, 0, 0, 2]"), Some(map[2]), "the cell written is the engine's value");
    assert!(has_text_containing(&h, "out[0, 0, 0, 3] not computed yet"));

    h.get_by_label(END_LABEL).click();
    wait_for(&mut h, "the end of the phase", |h| {
        has_text_containing(h, "The loop's map equals the engine's (largest difference 0).")
    });
    // The map shown at the end is the last filter's, every cell the snapshot's.
    let (f, hw) = (2, 14 * 14);
    for r in 0..14 {
        for c in 0..14 {
            let v = cell(&h, &format!("out[0, {f}, {r}, {c}]")).expect("every cell written");
            assert_eq!(v, map[f * hw + r * 14 + c], "cell ({r}, {c})");
        }
    }
}

/// Picks `title` in the part picker.
fn pick(h: &mut Harness<'static, CnnApp>, title: &str) {
    h.get_by_label_contains("Loop: ").click();
    h.step();
    h.step();
    h.get_by_label(title).click();
    h.step();
    h.step();
}

#[test]
fn a_backward_part_and_both_pools_end_at_the_engines_result() {
    let mut h = loops_harness();
    for (title, heading) in [
        ("conv2 backward dW & db", "conv2 backward dW & db on step 1's"),
        ("pool1 forward", "pool1 forward on step 1's"),
        ("pool1 backward dX", "pool1 backward dX on step 1's"),
        ("pool2 forward", "pool2 forward on step 1's"),
    ] {
        pick(&mut h, title);
        wait_for(&mut h, heading, |h| has_text_containing(h, heading));
        h.get_by_label(END_LABEL).click();
        wait_for(&mut h, "the end of the phase", |h| {
            has_text_containing(h, "The loop's map equals the engine's (largest difference 0).")
        });
    }
}

#[test]
fn loss_backward_shows_the_posts_minus_one_and_ends_at_the_engines_dscores() {
    let mut h = loops_harness();
    pick(&mut h, "loss backward");
    wait_for(&mut h, "the loss's case", |h| has_text_containing(h, "loss backward on step 1's"));
    assert!(has_text_containing(&h, "the post wrote:  dscores[range(N), y] = -1"));
    assert!(has_text_containing(&h, "−1/N whatever its probability"));
    h.get_by_label(STEP_LABEL).click();
    h.step();
    h.step();
    assert!(has_label(&h, "k = 0 of 0..10") && has_label(&h, "n = 0 of 0..1"));
    assert!(has_text_containing(&h, "running: dscores[n, k] = (probs[n, k] - (k == y[n])) / N"));
    h.get_by_label(END_LABEL).click();
    wait_for(&mut h, "the end of the phase", |h| {
        has_text_containing(h, "The loop's map equals the engine's (largest difference 0).")
    });
    // The training step's own loss backward phase, then its dscores against the loop's cells.
    let layers = h.state().snapshot().unwrap().model.plan.layers.len();
    while phases_done(&h) < layers + 2 {
        let done = phases_done(&h);
        h.get_by_label("Step phase").click();
        wait_for(&mut h, "the next phase", |h| phases_done(h) == done + 1);
    }
    let d = h.state().snapshot().unwrap().sample.d_scores().to_vec();
    assert_eq!(d.len(), 10);
    for (k, want) in d.iter().enumerate() {
        assert_eq!(cell(&h, &format!("dscores[0, {k}]")), Some(*want), "class {k}");
    }
}

/// The pipeline, the outputs panel and the batch strip are on screen (their headings).
fn panels_shown(h: &Harness<'static, CnnApp>) -> [bool; 3] {
    [has_label(h, "Pipeline"), has_label(h, "Training curves"), has_label(h, "Batch")]
}

#[test]
fn wide_hides_the_side_panels_and_the_batch_strip_while_the_loops_tab_is_in_front() {
    let mut h = loops_harness();
    assert_eq!(panels_shown(&h), [true; 3]);
    h.get_by_label(WIDE_LABEL).click();
    h.step();
    h.step();
    assert_eq!(panels_shown(&h), [false; 3], "Wide gives the Loops view the window");
    let view = h.state().view();
    assert!(view.show_pipeline && view.show_outputs, "the user's choice of panels is kept");
    // The code now sits beside the arithmetic: the first for line and the input map share a row.
    let code = h.get_by_label_contains("for n in range(N):").rect();
    let map = h.get_by_label_contains("x[0, 0] 28×28").rect();
    assert!(map.left() > code.right(), "the arithmetic is right of the code: {code:?} {map:?}");
    assert!(map.top() < code.bottom() + 200.0, "and beside it, not under it: {code:?} {map:?}");

    h.get_by_label("Feature maps").click();
    h.step();
    h.step();
    assert_eq!(panels_shown(&h), [true; 3], "another tab in front brings the panels back");
    h.get_by_label("Loops").click();
    h.step();
    h.step();
    assert_eq!(panels_shown(&h), [false; 3], "the Loops tab in front again: Wide again");
    h.get_by_label(WIDE_LABEL).click();
    h.step();
    h.step();
    assert_eq!(panels_shown(&h), [true; 3], "Wide off brings them back");
    assert!(!h.state().view().loops_wide);
}

/// The `name = v` pairs of the label starting with `name`, parsed (`x[0, 3] = 0.5, W[0, 3] =
/// -0.1, product = -0.05` → the three values).
fn term(h: &Harness<'static, CnnApp>, a_name: &str) -> Vec<f32> {
    let prefix = format!("{a_name} = ");
    let node = h.get_by_label_contains(&prefix);
    let text = node.accesskit_node().value().unwrap_or_default().to_string();
    text.split(", ").filter_map(|part| part.rsplit_once(" = ").and_then(|(_, v)| v.parse().ok())).collect()
}

#[test]
fn an_fc_over_784_inputs_shows_the_terms_around_k_as_numbers_and_the_sum_so_far_ends_at_the_result() {
    let mut h = loops_harness_with("flatten, fc(12), relu, fc(10)", "fc1 forward on step 1's batch of 1");
    h.get_by_label(STEP_LABEL).click();
    h.step();
    h.step();
    // out[0, 0] = b[0] + Σ_k x[0, k]·W[0, k] over the 784 pixels: too many for a grid of
    // numbers, so the term k = 0 and its neighbours show as numbers.
    let snap = h.state().snapshot().unwrap();
    let x = snap.sample.output(layer_index(snap, "flatten")).to_vec();
    let first = term(&h, "x[0, 0]");
    assert_eq!(first.len(), 3, "x, W and their product");
    assert_eq!(first[0], x[0], "x[0, 0] is the first pixel the fc reads");
    assert_eq!(first[2], first[0] * first[1], "the product is x·W");
    assert!(has_text_containing(&h, "b + Σ to k"));
    for _ in 0..3 {
        h.get_by_label(NEXT_TERM_LABEL).click();
        h.step();
    }
    h.step();
    let third = term(&h, "x[0, 3]");
    assert_eq!((third[0], third[2]), (x[3], third[0] * third[1]), "the term k = 3");
    assert!(has_text_containing(&h, "sum so far at k = 3 = "));

    h.get_by_label(LAST_TERM_LABEL).click();
    h.step();
    h.step();
    let node = h.get_by_label_contains("sum so far at k = 783 = ");
    let text = node.accesskit_node().value().unwrap_or_default().to_string();
    let sum: f32 = text.rsplit_once(" = ").and_then(|(_, v)| v.parse().ok()).expect("a number");
    assert_eq!(cell(&h, "out[0, 0]"), Some(sum), "the sum over every term is the value the loop wrote");
}
