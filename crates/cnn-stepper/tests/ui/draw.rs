//! The "draw your own digit" widget driven like a user would: mouse drags on the canvas through
//! egui_kittest, found by its accessibility label, in a minimal host (not the whole app).

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use cnn_stepper::data::MNIST_SIDE;
use cnn_stepper::ui::windows::draw::{CANVAS_LABEL, CLEAR_LABEL, DrawState, PREVIEW_LABEL, draw_canvas_ui};
use eframe::egui::{self, Pos2, Rect, pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

const N: usize = MNIST_SIDE;

/// What the host keeps: the widget's state and what the widget returned.
#[derive(Default)]
struct Host {
    draw: DrawState,
    returned: Vec<Vec<f32>>,
}

fn harness() -> Harness<'static, Host> {
    Harness::builder().with_size(egui::vec2(420.0, 520.0)).build_ui_state(
        |ui, host: &mut Host| {
            if let Some(image) = draw_canvas_ui(ui, &mut host.draw) {
                host.returned.push(image);
            }
        },
        Host::default(),
    )
}

fn canvas_rect(h: &Harness<'static, Host>) -> Rect {
    h.get_by_label(CANVAS_LABEL).rect()
}

/// The point at canvas-relative `(x, y)`.
fn at(rect: Rect, x: f32, y: f32) -> Pos2 {
    pos2(rect.left() + x * rect.width(), rect.top() + y * rect.height())
}

/// Presses at the first point, moves through the others and releases at the last, one event per
/// frame, as a quick mouse gesture would arrive.
fn drag(h: &mut Harness<'static, Host>, points: &[Pos2]) {
    let (first, last) = (points[0], points[points.len() - 1]);
    h.hover_at(first);
    h.drag_at(first);
    for p in &points[1..] {
        h.hover_at(*p);
    }
    h.drop_at(last);
    h.step();
}

fn canvas_value(h: &Harness<'static, Host>, x: f32, y: f32) -> f32 {
    let c = h.state().draw.canvas();
    let side = c.side();
    let (px, py) = ((x * side as f32) as usize, (y * side as f32) as usize);
    c.pixels()[py * side + px]
}

fn ink(img: &[f32], rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) -> f32 {
    rows.flat_map(|y| cols.clone().map(move |x| (y, x))).map(|(y, x)| img[y * N + x]).sum()
}

#[test]
fn dragging_across_the_canvas_draws_a_line_without_gaps() {
    let mut h = harness();
    h.step();
    assert!(h.state().returned.is_empty(), "nothing drawn, nothing returned");
    let rect = canvas_rect(&h);
    assert!((224.0..=280.0).contains(&rect.width()) && rect.width() == rect.height(), "square canvas {rect:?}");

    // A fast horizontal swipe in the upper third: only three pointer positions, 36% of the
    // canvas apart.
    drag(&mut h, &[at(rect, 0.15, 0.3), at(rect, 0.5, 0.3), at(rect, 0.85, 0.3)]);

    for i in 0..=40 {
        let x = 0.15 + 0.7 * i as f32 / 40.0;
        assert!(canvas_value(&h, x, 0.3) > 0.99, "ink along the whole swipe, but not at x = {x}");
    }
    assert_eq!(canvas_value(&h, 0.5, 0.6), 0.0, "no ink away from the stroke");
    assert_eq!(canvas_value(&h, 0.05, 0.3), 0.0, "no ink before the stroke's start");

    let image = h.state().returned.last().expect("drawing returns the prepared image").clone();
    assert_eq!(image.len(), N * N);
    assert_eq!(
        Some(image.as_slice()),
        h.state().draw.canvas().to_mnist().as_deref(),
        "the returned image is the prepared canvas"
    );
    // A horizontal dash, scaled to 20 wide and centred by mass: ink in the middle rows only.
    assert!(ink(&image, 12..16, 5..23) > 20.0, "the dash is across the middle");
    assert_eq!(ink(&image, 0..10, 0..N), 0.0, "nothing at the top");
    assert_eq!(ink(&image, 18..N, 0..N), 0.0, "nothing at the bottom");
    assert!(h.query_by_label(PREVIEW_LABEL).is_some(), "the preview is labelled");
}

#[test]
fn clear_empties_the_canvas_and_returns_a_blank_image() {
    let mut h = harness();
    h.step();
    assert!(h.get_by_label(CLEAR_LABEL).accesskit_node().is_disabled(), "nothing to clear yet");
    let rect = canvas_rect(&h);
    drag(&mut h, &[at(rect, 0.5, 0.2), at(rect, 0.5, 0.5), at(rect, 0.5, 0.8)]);
    assert!(!h.state().draw.is_empty());
    assert!(h.state().returned.last().is_some_and(|img| img.iter().any(|v| *v > 0.5)));

    h.get_by_label(CLEAR_LABEL).click();
    h.step();
    h.step();
    let s = h.state();
    assert!(s.draw.is_empty() && s.draw.image().is_none(), "the canvas is empty again");
    let last = s.returned.last().unwrap();
    assert_eq!(last.len(), N * N);
    assert!(last.iter().all(|v| *v == 0.0), "the caller learns that the image is blank");
    assert!(h.get_by_label(CLEAR_LABEL).accesskit_node().is_disabled());

    // And the canvas draws again after clearing.
    drag(&mut h, &[at(rect, 0.3, 0.5), at(rect, 0.7, 0.5)]);
    assert!(h.state().returned.last().is_some_and(|img| img.iter().any(|v| *v > 0.5)));
}

#[test]
fn the_image_is_returned_only_when_it_changed() {
    let mut h = harness();
    h.step();
    let rect = canvas_rect(&h);
    drag(&mut h, &[at(rect, 0.2, 0.2), at(rect, 0.8, 0.8)]);
    let after_stroke = h.state().returned.len();
    assert!((1..=4).contains(&after_stroke), "at most one image per frame of the stroke: {after_stroke}");
    for _ in 0..5 {
        h.step();
    }
    assert_eq!(h.state().returned.len(), after_stroke, "idle frames return nothing");

    // Retracing the same line adds no ink: nothing new to send.
    drag(&mut h, &[at(rect, 0.3, 0.3), at(rect, 0.7, 0.7)]);
    assert_eq!(h.state().returned.len(), after_stroke, "an unchanged image is not sent again");
}

#[test]
fn a_drag_that_starts_outside_the_canvas_does_not_draw_and_one_that_leaves_it_is_clipped() {
    let mut h = harness();
    h.step();
    let rect = canvas_rect(&h);
    // From the empty area right of the canvas, across it.
    let outside = pos2(rect.right() + 60.0, rect.center().y);
    drag(&mut h, &[outside, at(rect, 0.5, 0.5), at(rect, 0.2, 0.5)]);
    assert!(h.state().draw.is_empty(), "the press was not on the canvas");
    assert!(h.state().returned.is_empty());

    // From inside to far outside: the part on the canvas is drawn up to its edge.
    drag(&mut h, &[at(rect, 0.5, 0.5), pos2(rect.right() + 100.0, rect.center().y)]);
    assert!(canvas_value(&h, 0.5, 0.5) > 0.99 && canvas_value(&h, 0.999, 0.5) > 0.99);
    assert_eq!(canvas_value(&h, 0.3, 0.5), 0.0);
    assert!(h.state().returned.last().is_some_and(|img| img.len() == N * N));
}

#[test]
fn every_pointer_position_of_a_frame_is_drawn_not_only_the_last() {
    let mut h = harness();
    h.step();
    let rect = canvas_rect(&h);
    h.hover_at(at(rect, 0.2, 0.2));
    h.drag_at(at(rect, 0.2, 0.2));
    h.step();
    // A slow frame: the pointer went right and then down before the frame was drawn.
    h.input_mut().events.push(egui::Event::PointerMoved(at(rect, 0.8, 0.2)));
    h.input_mut().events.push(egui::Event::PointerMoved(at(rect, 0.8, 0.8)));
    h.step();
    h.drop_at(at(rect, 0.8, 0.8));
    h.step();
    assert!(canvas_value(&h, 0.5, 0.2) > 0.99, "the top bar of the L");
    assert!(canvas_value(&h, 0.8, 0.5) > 0.99, "the right bar of the L");
    assert_eq!(canvas_value(&h, 0.5, 0.5), 0.0, "not the diagonal short cut");
}

#[test]
fn drawing_reuses_one_texture() {
    let mut h = harness();
    h.step();
    let textures = h.ctx.tex_manager().read().num_allocated();
    let rect = canvas_rect(&h);
    for i in 0..5 {
        let y = 0.1 + 0.15 * i as f32;
        drag(&mut h, &[at(rect, 0.2, y), at(rect, 0.5, y + 0.05), at(rect, 0.8, y)]);
    }
    h.get_by_label(CLEAR_LABEL).click();
    h.step();
    assert_eq!(h.ctx.tex_manager().read().num_allocated(), textures, "no texture per frame or per stroke");
}
