//! The convolution playground, driven through the real window: opened from the View menu,
//! its size, padding, stride and mode clicked, its animation stepped, closed by its cross.

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use cnn_stepper::app::CnnApp;
use cnn_stepper::engine::playground::Setup;
use cnn_stepper::ui::panels::menu::PLAYGROUND_ITEM;
use cnn_stepper::ui::windows::playground::{SIZE_PREFIX, STEP_LABEL};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::kittest::{harness, has_label, has_text_containing, phases_done, started, wait_for};

/// The app with the playground opened from View → Convolution playground….
fn opened() -> Harness<'static, CnnApp> {
    let mut h = harness();
    h.step();
    h.get_by_label("View").click();
    wait_for(&mut h, "the View menu", |h| has_label(h, PLAYGROUND_ITEM));
    h.get_by_label(PLAYGROUND_ITEM).click();
    wait_for(&mut h, "the playground", |h| has_text_containing(h, SIZE_PREFIX));
    h
}

/// Clicks the button `label` and runs a frame for it to take effect.
fn click(h: &mut Harness<'static, CnnApp>, label: &str) {
    h.get_by_label(label).click();
    h.step();
    h.step();
}

/// The output-size line.
fn size_line(h: &Harness<'static, CnnApp>) -> String {
    let nodes: Vec<_> = h.query_all_by_label_contains(SIZE_PREFIX).collect();
    assert_eq!(nodes.len(), 1, "one output-size line");
    text_of(&nodes[0])
}

/// What a node says: a label's text is its value in AccessKit, a button's is its label.
fn text_of(node: &egui_kittest::Node<'_>) -> String {
    let n = node.accesskit_node();
    n.label().or_else(|| n.value()).unwrap_or_default()
}

/// The label of output cell (`row`, `col`).
fn output_cell(h: &Harness<'static, CnnApp>, row: usize, col: usize) -> String {
    let prefix = format!("output row {row} column {col}: ");
    let nodes: Vec<_> = h.query_all_by_label_contains(&prefix).collect();
    assert_eq!(nodes.len(), 1, "one output cell ({row}, {col})");
    text_of(&nodes[0]).trim_start_matches(&prefix).to_string()
}

/// Steps the animation until every output cell is written.
fn step_to_end(h: &mut Harness<'static, CnnApp>) {
    let total = h.state().playground().and_then(|p| p.output().ok()).map_or(0, |o| o.cells.len());
    for _ in 0..total {
        click(h, STEP_LABEL);
    }
    assert!(h.get_by_label(STEP_LABEL).accesskit_node().is_disabled(), "nothing left to step");
}

#[test]
fn the_view_menu_opens_the_playground_and_closing_it_keeps_the_app_running() {
    let mut h = opened();
    assert!(h.state().playground().is_some());
    // The default: 7×7, 3×3 kernel, no padding, stride 1.
    assert!(size_line(&h).ends_with("1 + (7 − 3 + 2·0) / 1 = 1 + 4 = 5  →  5×5"), "{}", size_line(&h));
    h.get_by_label("Close window").click();
    wait_for(&mut h, "the playground to close", |h| h.state().playground().is_none());
    h.step();
    assert!(!has_text_containing(&h, SIZE_PREFIX), "the window is gone");
    // Training goes on as before.
    started(&mut h);
    h.get_by_label("Step phase").click();
    wait_for(&mut h, "a phase after closing the playground", |h| phases_done(h) == 1);
}

#[test]
fn size_padding_and_stride_change_the_output_size_and_its_formula() {
    let mut h = opened();
    click(&mut h, "8×8");
    click(&mut h, "stride 2");
    let line = size_line(&h);
    assert!(line.ends_with("1 + (8 − 3 + 2·0) / 2 = 1 + 5 / 2 = 1 + int(2.5) = 1 + 2 = 3  →  3×3"), "{line}");
    assert!(has_text_containing(&h, "the post's int() floors 5 / 2 to 2"));
    assert!(
        has_text_containing(&h, "row 7 and column 7 of the input are never read"),
        "the floor names what it leaves out"
    );
    assert!(has_text_containing(&h, "red: row and column 7 never read"), "and the input marks it");
    assert_eq!(output_cell(&h, 2, 2), "not written yet");

    // One ring of padding: 10 wide, 7 / 2 floors again, but only a padding ring is left out.
    click(&mut h, "pad 1");
    assert!(size_line(&h).ends_with("1 + (8 − 3 + 2·1) / 2 = 1 + 7 / 2 = 1 + int(3.5) = 1 + 3 = 4  →  4×4"));
    assert!(has_text_containing(&h, "only zeros are left out"));
    assert!(has_text_containing(&h, "red: row and column 9 of the padded input never read"), "the padded numbering");
    assert!(!has_text_containing(&h, "of the input are never read"));

    // 9×9 with pad 1 and stride 2 divides: nothing to explain.
    click(&mut h, "9×9");
    assert!(size_line(&h).ends_with("1 + (9 − 3 + 2·1) / 2 = 1 + 8 / 2 = 1 + 4 = 5  →  5×5"), "{}", size_line(&h));
    assert!(!has_text_containing(&h, "int() floors"));
    // Stride 1 with pad 1 keeps the size: "same" padding.
    click(&mut h, "stride 1");
    assert!(size_line(&h).ends_with("= 9  →  9×9"));
    assert!(has_text_containing(&h, "\"same\" padding, pad = (HH − 1) / 2 = 1"));
}

#[test]
fn a_kernel_larger_than_the_padded_input_makes_no_output() {
    let mut h = opened();
    click(&mut h, "3×3");
    click(&mut h, "kernel 5×5");
    assert!(size_line(&h).contains("1 + (3 − 5 + 2·0) / 1 = 1 + (−2) / 1: no output"), "{}", size_line(&h));
    assert!(has_text_containing(&h, "no output can be made"));
    assert!(has_text_containing(&h, "none: the window does not fit"));
    assert!(h.get_by_label(STEP_LABEL).accesskit_node().is_disabled(), "nothing to step");
    // One ring of padding and it fits once.
    click(&mut h, "pad 1");
    assert!(size_line(&h).ends_with("1 + (3 − 5 + 2·1) / 1 = 1 + 0 = 1  →  1×1"), "{}", size_line(&h));
}

#[test]
fn stepping_shows_the_first_positions_products_and_sum_and_writes_its_cell() {
    let mut h = opened();
    // What a lesson card would do: 5×5 numbers, the vertical-edge kernel.
    h.state_mut().open_playground(&Setup::parse("size=5 input=numbers kernel=edge-vertical").unwrap());
    h.step();
    assert_eq!(output_cell(&h, 0, 0), "not written yet");
    assert!(has_text_containing(&h, "Press Step or Play"));

    // The first window reads rows 0–2, columns 0–2 of [0 3 1 4 2; 2 1 0 4 3; 4 4 4 4 4; …]:
    // 0 − 1 + 2 − 0 + 4 − 4 = 1.
    click(&mut h, STEP_LABEL);
    assert!(
        has_text_containing(&h, "sum = 0 + 0 + (−1) + 2 + 0 + 0 + 4 + 0 + (−4) = 1"),
        "the products of the first position and their sum"
    );
    assert!(has_label(&h, "out[0, 0] = 1"));
    assert_eq!(output_cell(&h, 0, 0), "1");
    assert_eq!(output_cell(&h, 0, 1), "not written yet");
    assert!(has_text_containing(&h, "position 1 of 9"));

    click(&mut h, STEP_LABEL);
    assert!(has_text_containing(&h, "out[0, 1] = "), "the window moved one to the right");
    assert_ne!(output_cell(&h, 0, 1), "not written yet");

    // Clicking a written cell shows its arithmetic again.
    click(&mut h, "output row 0 column 0: 1");
    assert!(has_label(&h, "out[0, 0] = 1"));
    assert!(has_text_containing(&h, "showing the cell you clicked"));

    // Restart empties the output.
    click(&mut h, "Restart");
    assert_eq!(output_cell(&h, 0, 0), "not written yet");
}

#[test]
fn max_and_average_pooling_give_the_expected_numbers() {
    let mut h = opened();
    // 4×4 numbers: [0 3 1 4; 2 1 0 4; 4 4 4 4; 1 2 3 4], 2×2 windows, stride 2.
    h.state_mut().open_playground(&Setup::parse("size=4 input=numbers mode=max window=2 stride=2").unwrap());
    h.step();
    assert!(size_line(&h).ends_with("1 + (4 − 2 + 2·0) / 2 = 1 + 2 / 2 = 1 + 1 = 2  →  2×2"), "{}", size_line(&h));
    click(&mut h, STEP_LABEL);
    assert!(has_text_containing(&h, "out[0, 0] = max = 3\n(row 0, column 1 of the window)"));
    step_to_end(&mut h);
    let cells = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(r, c)| output_cell(&h, r, c));
    assert_eq!(cells, ["3", "4", "4", "4"].map(String::from));

    click(&mut h, "Average pooling");
    assert_eq!(output_cell(&h, 0, 0), "not written yet", "a new mode starts the window again");
    click(&mut h, STEP_LABEL);
    assert!(has_text_containing(&h, "out[0, 0] = mean = 6 / 4 = 1.5"));
    step_to_end(&mut h);
    let cells = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(r, c)| output_cell(&h, r, c));
    assert_eq!(cells, ["1.5", "2.25", "2.75", "3.75"].map(String::from));
    assert!(has_text_containing(&h, "all 4 positions done"));
}

#[test]
fn switching_to_pooling_steps_by_the_window_and_a_new_window_keeps_that() {
    let mut h = opened();
    click(&mut h, "Max pooling");
    // 7×7 with 2×2 windows stepping by 2: int(5 / 2) floors, 3×3.
    assert!(
        size_line(&h).ends_with("1 + (7 − 2 + 2·0) / 2 = 1 + 5 / 2 = 1 + int(2.5) = 1 + 2 = 3  →  3×3"),
        "{}",
        size_line(&h)
    );
    click(&mut h, "window 3×3");
    assert!(
        size_line(&h).ends_with("1 + (7 − 3 + 2·0) / 3 = 1 + 4 / 3 = 1 + int(1.333) = 1 + 1 = 2  →  2×2"),
        "{}",
        size_line(&h)
    );
    // A stride chosen by hand is left alone.
    click(&mut h, "stride 1");
    click(&mut h, "window 2×2");
    assert!(size_line(&h).ends_with("1 + 5 = 6  →  6×6"), "{}", size_line(&h));
}
