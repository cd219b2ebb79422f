//! The Network editor driven like a user would: clicks on the named networks and on each row's
//! buttons, numbers set through their accessibility actions, a line typed in the box; in a
//! minimal host showing the editor's window on a 1280×800 screen (not the whole app: the app
//! does not show the editor yet).

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use cnn_stepper::engine::model::named::named;
use cnn_stepper::ui::windows::network::{
    ADD_LABEL, ADD_POSITION_LABEL, APPLY_ANYWAY_LABEL, APPLY_LABEL, CANCEL_LABEL, COPY_LABEL, LINE_LABEL,
    NetworkAction, NetworkEditor, REVERT_LABEL, network_window,
};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

const POST: &str = "conv(16,5,pad=2), relu, conv(32,5,pad=2), flatten, fc(100), relu, fc(10)";

/// What the host keeps: the editor, the step the run would lose, and what the editor returned.
struct Host {
    editor: NetworkEditor,
    unsaved_step: Option<u64>,
    actions: Vec<NetworkAction>,
    open: bool,
}

fn harness_sized(current: &str, size: egui::Vec2) -> Harness<'static, Host> {
    let host = Host {
        editor: NetworkEditor::new(current, (1, 28, 28), 10),
        unsaved_step: None,
        actions: Vec::new(),
        open: true,
    };
    let mut h = Harness::builder().with_size(size).build_ui_state(
        |ui, host: &mut Host| {
            let w = network_window(ui.ctx(), &mut host.editor, host.unsaved_step);
            host.actions.extend(w.action);
            host.open &= w.open;
        },
        host,
    );
    h.step();
    h
}

/// The editor on the post's network, on a 1280×800 screen.
fn harness() -> Harness<'static, Host> {
    harness_sized("post", egui::vec2(1280.0, 800.0))
}

fn frames(h: &mut Harness<'static, Host>, n: usize) {
    for _ in 0..n {
        h.step();
    }
}

fn click(h: &mut Harness<'static, Host>, label: &str) {
    h.get_by_label(label).click();
    frames(h, 2);
}

/// How many layer rows are shown (each has its remove button).
fn rows(h: &Harness<'static, Host>) -> usize {
    h.query_all_by_label_contains("remove layer ").count()
}

/// The text of the label reading exactly `text`, or containing it (AccessKit keeps a label's
/// text in its value).
fn has_text(h: &Harness<'static, Host>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

fn is_disabled(h: &Harness<'static, Host>, label: &str) -> bool {
    h.get_by_label(label).accesskit_node().is_disabled()
}

/// The top of row `n` (1-based), found by its remove button.
fn row_top(h: &Harness<'static, Host>, n: usize) -> f32 {
    h.get_by_label(&format!("remove layer {n}")).rect().top()
}

/// Replaces the model line's text with `text` (click, select all, type).
fn type_line(h: &mut Harness<'static, Host>, text: &str) {
    h.get_by_label(LINE_LABEL).click();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_label(LINE_LABEL).type_text(text);
    frames(h, 2);
}

fn box_text(h: &Harness<'static, Host>) -> String {
    h.get_by_label(LINE_LABEL).value().unwrap_or_default()
}

#[test]
fn clicking_lenet5_shows_its_twelve_rows_with_student_names_and_61706_parameters() {
    let mut h = harness();
    assert_eq!(rows(&h), 7, "the post's seven layers first");
    click(&mut h, "lenet5");
    assert_eq!(rows(&h), 12, "conv relu pool conv relu pool flatten fc relu fc relu fc");
    for name in ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc1", "relu3", "fc2", "relu4", "fc3"] {
        assert!(h.query_by_label(name).is_some(), "row named {name}");
    }
    // 6·(25+1) + 16·(6·25+1) + 120·(400+1) + 84·(120+1) + 10·(84+1)
    assert_eq!(156 + 2_416 + 48_120 + 10_164 + 850, 61_706);
    assert!(has_text(&h, "Parameters: 61,706"), "the total for 1×28×28 and 10 classes");
    // Per layer: shapes through the pools, and conv2's parameters.
    assert!(h.query_by_label("layer 3 output 6×14×14").is_some(), "pool1 halves 28×28");
    assert!(h.query_by_label("layer 4 output 16×10×10").is_some(), "conv2 without padding");
    assert!(h.query_by_label("layer 7 output 400").is_some(), "flatten: 16·5·5");
    assert!(h.query_by_label("layer 4 parameters 2,416").is_some(), "conv2: 16·(6·25 + 1)");
    assert_eq!(h.state().editor.line(), named("lenet5").unwrap().line);
    assert_eq!(box_text(&h), named("lenet5").unwrap().line, "the box shows the line");
    assert!(!is_disabled(&h, APPLY_LABEL), "another network than the run's can be applied");
}

#[test]
fn removing_flatten_from_post_shows_the_reason_at_the_fc_row_and_disables_apply() {
    let mut h = harness();
    assert!(is_disabled(&h, APPLY_LABEL), "the run's own network is nothing to apply");
    click(&mut h, "remove layer 4");
    assert_eq!(rows(&h), 6);
    let reason = h.get_by_label("Problem at layer 4: add `flatten` before the first fc");
    let at = reason.rect().center().y;
    assert!(row_top(&h, 4) < at && at < row_top(&h, 5), "the reason sits under the fc(100) row, the 4th");
    assert!(is_disabled(&h, APPLY_LABEL));
    assert!(
        has_text(&h, "Apply is off: layer 4 `fc(100)`: add `flatten` before the first fc"),
        "the reason is written under Apply too"
    );
    // The rows before the fc keep their names and shapes.
    assert!(h.query_by_label("conv2").is_some() && h.query_by_label("layer 3 output 32×28×28").is_some());
    assert!(!has_text(&h, "Parameters:"), "no totals for an invalid network");

    // Revert brings the run's network back.
    click(&mut h, REVERT_LABEL);
    assert_eq!(h.state().editor.line(), POST);
    assert!(!has_text(&h, "Problem at"));
}

#[test]
fn typing_a_line_rebuilds_the_rows_and_an_unreadable_one_keeps_them() {
    let mut h = harness();
    type_line(&mut h, "conv(4,3), relu, maxpool(2), flatten, fc(10)");
    assert_eq!(rows(&h), 5);
    assert!(h.query_by_label("pool1").is_some());
    assert!(h.query_by_label("layer 3 output 4×13×13").is_some(), "26×26 after the 3×3 conv, pooled to 13×13");
    assert!(has_text(&h, "Parameters: 6,810"), "4·(9+1) + 10·(676+1)");
    assert!(!is_disabled(&h, APPLY_LABEL));

    type_line(&mut h, "conv(4,3), relu, maxpool(2), flatten, fc(10");
    assert!(has_text(&h, "Cannot read this line: layer 5 `fc(10`: the `(` is never closed"));
    assert_eq!(rows(&h), 5, "the rows keep the last line that could be read");
    assert!(is_disabled(&h, APPLY_LABEL), "what is in the box is not what Apply would start");
    assert!(has_text(&h, "Apply is off: the line in the box cannot be read"));

    type_line(&mut h, "tiny");
    assert_eq!(rows(&h), 8, "a network's name works too");
    assert_eq!(h.state().editor.line(), named("tiny").unwrap().line);
}

#[test]
fn moving_a_layer_up_or_down_changes_the_line() {
    let mut h = harness();
    click(&mut h, "move layer 2 down");
    let moved = "conv(16,5,pad=2), conv(32,5,pad=2), relu, flatten, fc(100), relu, fc(10)";
    assert_eq!(h.state().editor.line(), moved);
    assert_eq!(box_text(&h), moved, "the box follows the rows");
    assert!(h.query_by_label("layer 2 output 32×28×28").is_some(), "conv2 now comes second");
    assert!(h.query_by_label("layer 3 output 32×28×28").is_some(), "and the ReLU follows it, at its size");
    click(&mut h, "move layer 3 up");
    assert_eq!(h.state().editor.line(), POST);
    assert!(is_disabled(&h, "move layer 1 up") && is_disabled(&h, "move layer 7 down"), "nowhere to go");
}

#[test]
fn apply_returns_the_line_and_asks_first_when_progress_is_unsaved() {
    let mut h = harness();
    click(&mut h, "lenet5");
    click(&mut h, APPLY_LABEL);
    let lenet = named("lenet5").unwrap().line.to_string();
    assert_eq!(h.state().actions, vec![NetworkAction::Apply(lenet.clone())]);

    h.state_mut().actions.clear();
    h.state_mut().unsaved_step = Some(218);
    click(&mut h, APPLY_LABEL);
    assert!(has_text(&h, "Start a new run with this network? Step 218 of the current run is not saved."));
    assert!(h.state().actions.is_empty(), "nothing before the answer");
    click(&mut h, CANCEL_LABEL);
    assert!(h.state().actions.is_empty() && h.query_by_label(APPLY_ANYWAY_LABEL).is_none(), "cancelled");
    click(&mut h, APPLY_LABEL);
    click(&mut h, APPLY_ANYWAY_LABEL);
    assert_eq!(h.state().actions, vec![NetworkAction::Apply(lenet)]);
}

#[test]
fn an_edited_number_updates_the_output_shape_and_the_parameters() {
    let mut h = harness();
    assert!(h.query_by_label("layer 1 output 16×28×28").is_some());
    h.get_by_label("layer 1 filters").set_value_accesskit(8.0);
    frames(&mut h, 2);
    assert_eq!(h.state().editor.line(), "conv(8,5,pad=2), relu, conv(32,5,pad=2), flatten, fc(100), relu, fc(10)");
    assert!(h.query_by_label("layer 1 output 8×28×28").is_some(), "conv1's output has 8 maps");
    assert!(h.query_by_label("layer 3 parameters 6,432").is_some(), "conv2 now reads 8 maps: 32·(8·25 + 1)");

    h.get_by_label("layer 3 pad").set_value_accesskit(0.0);
    frames(&mut h, 2);
    assert!(h.query_by_label("layer 3 output 32×24×24").is_some(), "no padding: 28 − 5 + 1");
    assert!(h.query_by_label("layer 4 output 18432").is_some(), "flatten follows: 32·24·24");
}

#[test]
fn a_layer_is_added_at_the_chosen_position() {
    let mut h = harness();
    h.get_by_label_contains("Kind of the new layer").click();
    frames(&mut h, 2);
    h.get_by_label("maxpool").click();
    frames(&mut h, 2);
    h.get_by_label(ADD_POSITION_LABEL).set_value_accesskit(3.0);
    frames(&mut h, 2);
    click(&mut h, ADD_LABEL);
    assert_eq!(
        h.state().editor.line(),
        "conv(16,5,pad=2), relu, maxpool(2), conv(32,5,pad=2), flatten, fc(100), relu, fc(10)"
    );
    assert!(h.query_by_label("layer 3 output 16×14×14").is_some(), "pool1 halves conv1's maps");
    assert!(has_text(&h, "Parameters: 641,558"), "fc1 now reads 32·14·14 values: 416 + 12,832 + 627,300 + 1,010");
}

#[test]
fn copy_puts_the_line_on_the_clipboard() {
    let mut h = harness();
    h.get_by_label(COPY_LABEL).click();
    h.step();
    let copied = h.output().platform_output.commands.iter().any(|c| *c == egui::OutputCommand::CopyText(POST.into()));
    assert!(copied, "{:?}", h.output().platform_output.commands);
}

/// True when the middle of the widget labelled `label` is on the editor's window (not hidden
/// below it by a window that kept an old height).
fn on_window(h: &Harness<'static, Host>, label: &str) -> bool {
    let at = h.get_by_label(label).rect().center();
    h.ctx.layer_id_at(at).is_some_and(|l| l.id == egui::Id::unique("network editor"))
}

#[test]
fn the_window_grows_with_the_network_and_fits_a_laptop_screen_and_a_projector() {
    // 1280×800 at 100 %, and the same screen in projector mode (zoom 1.11: 1152×720 points).
    for size in [egui::vec2(1280.0, 800.0), egui::vec2(1152.0, 720.0)] {
        let mut h = harness_sized("post", size);
        click(&mut h, "lenet5");
        let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, size);
        for label in ["lenet5", "remove layer 12", APPLY_LABEL, LINE_LABEL] {
            let r = h.get_by_label(label).rect();
            assert!(screen.contains_rect(r), "{label} at {r:?} is on the {size:?} screen");
            assert!(on_window(&h, label), "{label} is not cut off by the window's edge at {size:?}");
        }

        // The longest networks scroll inside a window that stays on the screen.
        let long = format!("{}flatten, fc(10)", "conv(2,3,pad=1), relu, ".repeat(15));
        type_line(&mut h, &long);
        assert_eq!(rows(&h), 32);
        let window = h.ctx.memory(|m| m.area_rect(egui::Id::unique("network editor"))).unwrap();
        assert!(screen.contains_rect(window), "{window:?} fits {size:?}");
        h.get_by_label(APPLY_LABEL).scroll_to_me();
        frames(&mut h, 3);
        assert!(on_window(&h, APPLY_LABEL), "Apply can be scrolled to");
    }
}
