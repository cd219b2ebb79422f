//! The window on networks other than the post's (issue 14): LeNet-5 stepped phase by phase
//! through its pools, a pooled pixel inspected, and the FC view of `tiny` (one fc), of LeNet-5
//! (three fcs) and of a network whose class evidence is not exact.

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use cnn_stepper::app::CnnApp;
use cnn_stepper::engine::Phase;
use cnn_stepper::engine::model::evidence::evidence_support;
use cnn_stepper::trainer::Inspection;
use cnn_stepper::ui::panels::banner::Severity;
use cnn_stepper::ui::support::colormap::fmt_sig;
use cnn_stepper::ui::tabs::fc1::{IDENTITY_START, NOT_SHOWN_HEADING};
use cnn_stepper::ui::tabs::{fc1, feature_maps};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::kittest::*;

/// A network whose class evidence is not exact: a tanh between its two fc layers.
const TANH_LINE: &str = "conv(4,5), relu, maxpool(2), flatten, fc(20), tanh, fc(10)";

/// Runs one phase with the Step phase button and waits until the window shows it done.
fn step_phase(h: &mut Harness<'static, CnnApp>) {
    let before = phases_done(h);
    h.get_by_label("Step phase").click();
    wait_for(h, "the next phase", |h| phases_done(h) == before + 1);
}

/// Runs phases until `phase` is the last one done.
fn step_until(h: &mut Harness<'static, CnnApp>, phase: Phase) {
    let phases = h.state().snapshot().unwrap().phases.clone();
    let at = phases.iter().position(|p| *p == phase).expect("the step has that phase");
    while phases_done(h) < at + 1 {
        step_phase(h);
    }
}

#[test]
fn lenet5_steps_through_its_phases_in_order_with_its_pools_and_shows_pool1s_maps() {
    let mut h = harness_with_model("lenet5");
    started(&mut h);
    let snap = h.state().snapshot().unwrap().clone();
    assert_eq!(snap.model.label(), "lenet5");
    assert!(h.state().banners().is_empty(), "LeNet fits the sample: {:?}", h.state().banners());
    let labels: Vec<String> = snap.phases.iter().map(|p| snap.model.phase_label(*p)).collect();
    let at = |label: &str| labels.iter().position(|l| l == label).unwrap_or_else(|| panic!("no {label}: {labels:?}"));
    assert!(at("forward pool1") < at("forward conv2") && at("forward pool2") < at("loss"));
    assert!(at("backward loss") < at("backward pool2") && at("backward pool2") < at("backward conv2"));
    assert_eq!(labels.last().map(String::as_str), Some("update"));

    for (i, label) in labels.iter().enumerate() {
        step_phase(&mut h);
        let s = h.state().snapshot().unwrap();
        assert_eq!(s.last_phase(), Some(snap.phases[i]), "phase {i} ran in order");
        wait_for(&mut h, label, |h| is_selected(h, label));
        assert!(has_label(&h, &format!("Paused after {label}")), "the status line names {label}");
        if label == "forward pool1" {
            // Right after pool1 ran, the feature maps show its 6 maps of 14×14.
            assert_eq!(h.state().tab(), feature_maps::ID);
            wait_for(&mut h, "pool1's maps", |h| has_label(h, "pool1 maps"));
            assert!(has_text_containing(&h, "pool1 · max of each 2×2"));
            assert!(has_text_containing(&h, "6 maps · 14×14"));
            assert!(has_text_containing(&h, "computed in forward conv2"), "conv2 is still to come");
        }
    }
    assert_eq!(step(&h), 1, "the last phase completed the step");
}

#[test]
fn a_pool1_pixel_clicked_opens_the_inspector_on_its_window_and_names_the_winner() {
    let mut h = harness_with_model("lenet5");
    started(&mut h);
    let pool1 = layer_index(h.state().snapshot().unwrap(), "pool1");
    step_until(&mut h, Phase::Forward(pool1));
    wait_for(&mut h, "pool1's maps", |h| has_label(h, "pool1 maps"));
    // A pixel near the middle of the first map, where the digit's strokes are.
    let rect = h.get_by_label("pool1 maps").rect();
    let map_side = rect.width().min(rect.height()) / 3.0;
    let at = rect.min + egui::vec2(map_side * 0.5, map_side * 0.5);
    h.hover_at(at);
    h.step();
    h.drag_at(at);
    h.step();
    h.drop_at(at);
    h.step();
    wait_for(&mut h, "the inspector", |h| has_label(h, "Pixel inspector"));
    let pixel = h.state().inspected().expect("a pixel is inspected");
    assert_eq!((pixel.layer, pixel.channel), (pool1, 0), "pool1's first map was clicked");
    let Inspection::Pool(p) = h.state().snapshot().unwrap().inspect_pixel(pixel).expect("computed") else {
        panic!("a pool pixel is inspected as a pool");
    };
    assert!(p.max && p.window == 2 && p.input_name == "relu1", "{p:?}");
    let w = p.winner.expect("a max pool names its winner");
    let largest = p.values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!(p.values[w], largest, "the winner holds the window's maximum");
    assert_eq!(p.map_value, largest, "and it is what the engine put in the map");
    let (k, (oy, ox)) = (p.window, p.origin);
    let winner = format!(
        "the largest, {}, is relu1[0, {}, {}] (row {}, column {} of the window)",
        fmt_sig(largest),
        oy + w / k,
        ox + w % k,
        w / k,
        w % k
    );
    wait_for(&mut h, &winner, |h| has_text_containing(h, &winner));
    let formula = format!("pool1[0,{},{}] = max of relu1[0, {oy}..{}, {ox}..{}]", pixel.y, pixel.x, oy + 1, ox + 1);
    assert!(has_text_containing(&h, &formula), "{formula}");
    assert!(has_text_containing(&h, "Step through the backward pass"), "no gradient in the forward pass");
}

/// Opens the FC tab with its key and waits for it.
fn fc_tab(h: &mut Harness<'static, CnnApp>) {
    h.key_press(egui::Key::Num3);
    wait_for(h, "the FC tab", |h| h.state().tab() == fc1::ID);
}

/// The identity line under the class tiles, and its three numbers.
fn identity(h: &Harness<'static, CnnApp>) -> (String, [f32; 3]) {
    let line = h
        .query_all_by_label_contains(IDENTITY_START)
        .filter_map(|n| n.accesskit_node().value())
        .find(|t| t.starts_with(IDENTITY_START))
        .expect("the identity line");
    let nums: Vec<f32> = line[IDENTITY_START.len()..].split([' ', '=']).filter_map(|w| w.parse().ok()).collect();
    assert_eq!(nums.len(), 3, "three numbers in {line:?}");
    (line.clone(), [nums[0], nums[1], nums[2]])
}

#[test]
fn on_tiny_the_fc_tab_shows_the_class_rows_and_evidence_that_sums_to_the_logit() {
    let mut h = harness_with_model("tiny");
    started(&mut h);
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "step 1", |h| step(h) == 1);
    fc_tab(&mut h);
    wait_for(&mut h, "the evidence and the unit", |h| {
        let t = h.state().teaching();
        t.class_evidence.as_ref().is_some_and(|e| e.step == 1) && t.fc1_unit.is_some()
    });
    settle(&mut h);
    let e = h.state().teaching().class_evidence.clone().unwrap();
    assert_eq!((e.source.as_str(), e.channels, e.height, e.width), ("pool2", 32, 7, 7));
    assert!(e.active_units.is_empty(), "one fc: no hidden units, no pattern");
    let predicted = cnn_stepper::engine::argmax(&e.logits);
    let (line, [sum, bias, logit]) = identity(&h);
    assert!((sum - e.evidence_sum(predicted)).abs() <= 5e-4, "{line}");
    assert!((bias - e.bias_terms[predicted]).abs() <= 5e-4, "{line}");
    assert!((logit - e.logits[predicted]).abs() <= 5e-4, "{line}: the logit of the predicted class");
    assert!((sum + bias - logit).abs() <= 2e-3, "{line}: the evidence and the bias add up to the logit");
    // The evidence is exact: the maps themselves sum to the score the network computed.
    for k in 0..e.classes() {
        assert!((e.evidence_sum(k) + e.bias_terms[k] - e.logits[k]).abs() <= 1e-3 * e.logits[k].abs().max(1.0));
    }
    assert!(has_text_containing(&h, "What fc1 looks at for each class"));
    assert!(has_text_containing(&h, "fc1 is the last layer, so its 10 units are the class scores"));
    assert!(has_label(&h, "= class 0"), "unit 0 is class 0's row");
    assert!(has_text_containing(&h, "the bias term is fc1's bias"));
    assert!(has_text_containing(&h, &format!("Class {predicted}'s evidence in each of the 32 pool2 maps")));
    assert!(has_text_containing(&h, "x = pool2's output"));
    assert!(!has_text_containing(&h, "votes most for"), "a class score has no vote to show");
}

#[test]
fn on_lenet5_the_fc_tab_shows_exact_evidence_through_three_fcs_and_says_why_there_are_no_votes() {
    let mut h = harness_with_model("lenet5");
    started(&mut h);
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "step 1", |h| step(h) == 1);
    fc_tab(&mut h);
    wait_for(&mut h, "the evidence and the unit", |h| {
        let t = h.state().teaching();
        t.class_evidence.as_ref().is_some_and(|e| e.step == 1) && t.fc1_unit.is_some()
    });
    settle(&mut h);
    let e = h.state().teaching().class_evidence.clone().unwrap();
    assert_eq!((e.source.as_str(), e.channels, e.height, e.width), ("pool2", 16, 5, 5));
    assert_eq!(e.active_units.len(), 120, "relu3's pattern over fc1's 120 units");
    let (line, [sum, bias, logit]) = identity(&h);
    assert!((sum + bias - logit).abs() <= 2e-3, "{line}");
    assert!(has_text_containing(&h, "What an FC1 unit looks at"));
    assert!(has_text_containing(&h, "fc1's input is pool2's 16 maps of 5×5 laid end to end by flatten"));
    assert!(has_text_containing(&h, "400 weights as 16 maps of 5×5 (one per pool2 map)"));
    assert!(has_text_containing(
        &h,
        "No fixed vote per class: fc1's units reach the scores through relu3, fc2, relu4 and fc3"
    ));
    assert!(has_text_containing(&h, "with the on/off patterns of relu3, relu4 for this image held fixed"));
    let on = e.active_units.iter().filter(|a| **a).count();
    assert!(has_text_containing(&h, &format!("relu3 lets {on} of 120 fc1 units through")));
    assert!(h.state().banners().is_empty(), "nothing was refused: {:?}", h.state().banners());
}

#[test]
fn with_a_tanh_after_flatten_the_fc_tab_gives_the_reason_and_asks_the_trainer_nothing() {
    let mut h = harness_with_model(TANH_LINE);
    started(&mut h);
    let snap = h.state().snapshot().unwrap().clone();
    assert_eq!(snap.model.line(), TANH_LINE, "the line was taken as written");
    let reason = evidence_support(&snap.model.plan).expect_err("a tanh after flatten is not exact");
    assert!(reason.contains("tanh"), "{reason}");
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "step 1", |h| step(h) == 1);
    fc_tab(&mut h);
    wait_for(&mut h, "the reason", |h| has_label(h, NOT_SHOWN_HEADING));
    // The sentence as the engine words it, up to the layers it lists (written with arrows, which
    // the test fonts spell "->").
    let words = &reason[1..reason.find(';').unwrap_or(reason.len())];
    assert!(has_text_containing(&h, words), "the reason is shown: {reason}");
    assert!(has_text_containing(&h, "this network has fc(20)"), "with the layers after flatten");
    assert!(!has_label(&h, fc1::UNIT_LABEL), "no unit part");
    assert!(!has_text_containing(&h, IDENTITY_START), "no evidence part");
    settle(&mut h);
    let t = h.state().teaching();
    assert!(t.class_evidence.is_none() && t.fc1_unit.is_none(), "nothing was asked for");
    let errors: Vec<_> = h.state().banners().iter().filter(|b| b.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "no request the trainer would refuse: {errors:?}");
}
