//! The FC1 view (what a hidden unit looks at, class evidence) and the health view (gradient
//! check, magnitude curves), each hosted alone in an egui_kittest harness and fed real results
//! from a headless `Session` on the embedded MNIST sample, as the worker would send them.

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use cnn_stepper::data;
use cnn_stepper::engine::{ConvEngine, Preset};
use cnn_stepper::trainer::{
    ClassEvidence, Command, EvidenceOf, Fc1Unit, GradientCheck, MagnitudePoint, Session, Snapshot,
};
use cnn_stepper::ui::tabs::fc1::{
    CHANNEL_MAPS_LABEL, Fc1State, IDENTITY_START, NEXT_UNIT_LABEL, PREVIOUS_UNIT_LABEL, UNIT_LABEL, UNIT_MAPS_LABEL,
    fc1_ui,
};
use cnn_stepper::ui::tabs::health::{
    CHECK_LABEL, HealthState, Magnitudes, health_ui, layer_summary, legend_label, pytorch_names, series_styles,
};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

/// The post's network (32 maps of 28×28 into FC1) on the embedded sample, `steps` batches of 4
/// taken with the fast engine.
fn session(preset: Preset, steps: usize) -> Session {
    session_of("post", preset, steps)
}

/// Like [`session`], with the network `model`.
fn session_of(model: &str, preset: Preset, steps: usize) -> Session {
    let data = Arc::new(data::embedded().expect("the embedded sample decodes"));
    let mut s = Session::new(data, 7, preset, model, ConvEngine::Fast).expect("a session");
    let mut settings = s.settings();
    settings.batch_size = 4;
    s.set_settings(settings).expect("valid settings");
    for _ in 0..steps {
        s.step_batch(&mut |_, _| {}).expect("a step");
    }
    s
}

// ---------------------------------------------------------------------------------------------
// FC1 view

/// What the app would keep for the FC1 view: its state, the latest snapshot and answers, and the
/// commands the view returned.
struct Fc1Host {
    state: Fc1State,
    snap: Option<Snapshot>,
    unit: Option<Fc1Unit>,
    evidence: Option<ClassEvidence>,
    sent: Vec<Command>,
}

impl Fc1Host {
    fn unit_requests(&self) -> Vec<usize> {
        self.sent.iter().filter_map(|c| if let Command::Fc1Unit(j) = c { Some(*j) } else { None }).collect()
    }

    fn evidence_requests(&self) -> usize {
        self.sent.iter().filter(|c| **c == Command::ClassEvidence(EvidenceOf::SelectedSample)).count()
    }
}

fn fc1_harness(host: Fc1Host) -> Harness<'static, Fc1Host> {
    Harness::builder().with_size(egui::vec2(1100.0, 1600.0)).build_ui_state(
        |ui, host: &mut Fc1Host| {
            let sent = fc1_ui(ui, &mut host.state, host.snap.as_ref(), host.unit.as_ref(), host.evidence.as_ref());
            host.sent.extend(sent);
        },
        host,
    )
}

fn frames<S>(h: &mut Harness<'static, S>, n: usize) {
    for _ in 0..n {
        h.step();
    }
}

/// The text of the node whose label contains `text` (AccessKit keeps a `Role::Label`'s text in
/// its value).
fn label_containing<S>(h: &Harness<'static, S>, text: &str) -> String {
    let node = h.get_by_label_contains(text);
    let node = node.accesskit_node();
    if node.role() == egui::Role::Label { node.value() } else { node.label() }.unwrap_or_default()
}

#[test]
fn changing_the_unit_asks_for_it_once_and_a_new_step_asks_again() {
    let mut s = session(Preset::Recommended, 1);
    let snap = s.snapshot();
    let unit0 = s.fc1_unit(0).unwrap();
    let evidence = s.class_evidence(&EvidenceOf::SelectedSample).unwrap();
    let mut h = fc1_harness(Fc1Host {
        state: Fc1State::default(),
        snap: Some(snap),
        unit: Some(unit0.clone()),
        evidence: Some(evidence),
        sent: Vec::new(),
    });
    frames(&mut h, 3);
    assert!(h.state().sent.is_empty(), "both answers are current: nothing to ask for, got {:?}", h.state().sent);
    assert!(h.get_by_label(PREVIOUS_UNIT_LABEL).accesskit_node().is_disabled(), "there is no unit −1");
    assert!(h.query_by_label(UNIT_MAPS_LABEL).is_some(), "the weight maps are drawn");
    assert!(h.query_by_label_contains("25,088 weights as 32 maps of 28×28").is_some());
    let facts = label_containing(&h, "unit 0: bias");
    let snap = h.state().snap.as_ref().unwrap();
    let fc1 = snap.sample.output(crate::kittest::layer_index(snap, "fc1"))[0];
    assert!(facts.contains(&format!("fc1 = {}", cnn_stepper::ui::support::colormap::fmt_sig(fc1))), "{facts}");
    // Its FC2 weights: one vote per class, with the value.
    for (k, w) in unit0.class_weights.iter().enumerate() {
        let vote = label_containing(&h, &format!("vote for {k}: FC2 weight"));
        assert!(vote.ends_with(&cnn_stepper::ui::support::colormap::fmt_sig(*w)), "{vote}");
    }

    h.get_by_label(NEXT_UNIT_LABEL).click();
    frames(&mut h, 5);
    assert_eq!(h.state().unit_requests(), vec![1], "one request for the new unit, not one per frame");
    assert_eq!(h.state().state.unit, 1);
    let slider = h.query_all_by_label(UNIT_LABEL).find(|n| n.accesskit_node().role() == egui::Role::Slider);
    let value = slider.expect("the unit slider").accesskit_node().numeric_value();
    assert_eq!(value, Some(1.0), "the slider shows unit 1");
    assert!(h.state().state.unit_request_in_flight());
    assert!(h.query_by_label_contains("showing unit 0 until unit 1 arrives").is_some());

    // A second click while the first is in flight waits for its answer.
    h.get_by_label(NEXT_UNIT_LABEL).click();
    frames(&mut h, 3);
    assert_eq!(h.state().unit_requests(), vec![1]);
    h.get_by_label(PREVIOUS_UNIT_LABEL).click();
    frames(&mut h, 3);
    assert_eq!(h.state().state.unit, 1);

    let unit1 = s.fc1_unit(1).unwrap();
    h.state_mut().unit = Some(unit1.clone());
    frames(&mut h, 5);
    assert_eq!(h.state().unit_requests(), vec![1], "the answer matches: no new request");
    assert!(!h.state().state.unit_request_in_flight());
    let facts = label_containing(&h, "unit 1: bias");
    assert!(facts.contains(&cnn_stepper::ui::support::colormap::fmt_sig(unit1.bias)), "{facts}");

    // A new step changed the weights: the unit is asked for again, once.
    s.step_batch(&mut |_, _| {}).unwrap();
    h.state_mut().snap = Some(s.snapshot());
    frames(&mut h, 8);
    assert_eq!(h.state().unit_requests(), vec![1, 1]);
}

/// The identity line under the class tiles (a tile's hover text repeats it after other words).
fn identity_shown<S>(h: &Harness<'static, S>) -> String {
    let lines: Vec<String> = h
        .query_all_by_label_contains(IDENTITY_START)
        .filter_map(|n| n.accesskit_node().value())
        .filter(|t| t.starts_with(IDENTITY_START))
        .collect();
    assert_eq!(lines.len(), 1, "one identity line: {lines:?}");
    lines[0].clone()
}

fn is_toggled(node: &egui_kittest::Node<'_>) -> bool {
    node.accesskit_node().toggled() == Some(egui::accesskit::Toggled::True)
}

/// The three numbers of "Σ evidence a + bias terms b = logit c".
fn identity_numbers(line: &str) -> (f32, f32, f32) {
    let rest = &line[line.find(IDENTITY_START).expect("the identity line") + IDENTITY_START.len()..];
    let nums: Vec<f32> = rest.split([' ', '=']).filter_map(|w| w.parse::<f32>().ok()).collect();
    assert_eq!(nums.len(), 3, "three numbers in {line:?}");
    (nums[0], nums[1], nums[2])
}

fn assert_identity_for(line: &str, e: &ClassEvidence, k: usize) {
    let (sum, bias, logit) = identity_numbers(line);
    assert!((sum - e.evidence_sum(k)).abs() <= 5e-4, "{line}: Σ of class {k}'s map is {}", e.evidence_sum(k));
    assert!((bias - e.bias_terms[k]).abs() <= 5e-4, "{line}: bias terms {}", e.bias_terms[k]);
    assert!((logit - e.logits[k]).abs() <= 5e-4, "{line}: logit {}", e.logits[k]);
    assert!((sum + bias - logit).abs() <= 2e-3, "{line}: the printed numbers add up");
}

#[test]
fn the_evidence_identity_line_matches_the_maps_and_a_class_can_be_chosen() {
    let mut s = session(Preset::Recommended, 2);
    s.select(2);
    let snap = s.snapshot();
    let e = s.class_evidence(&EvidenceOf::SelectedSample).unwrap();
    let predicted = cnn_stepper::engine::argmax(&e.logits);
    let mut h = fc1_harness(Fc1Host {
        state: Fc1State::default(),
        snap: Some(snap),
        unit: None,
        evidence: Some(e.clone()),
        sent: Vec::new(),
    });
    frames(&mut h, 3);
    assert_eq!(h.state().evidence_requests(), 0, "the evidence shown is the selected digit's at this step");
    assert_eq!(h.state().unit_requests(), vec![0], "no unit shown yet: unit 0 is asked for");

    assert_identity_for(&identity_shown(&h), &e, predicted);
    let name = format!("class {predicted} evidence");
    let node = h.get_by_label_contains(&name);
    assert!(node.accesskit_node().label().unwrap().ends_with(", predicted"));
    assert!(is_toggled(&node), "the predicted class is the one detailed");
    assert!(h.query_by_label(CHANNEL_MAPS_LABEL).is_some());
    assert!(h.query_by_label_contains("digit 3 of the batch").is_some(), "the caption names the digit");

    // Every class tile names its logit.
    for k in 0..e.classes() {
        let label = label_containing(&h, &format!("class {k} evidence, logit"));
        assert!(label.contains(&format!("logit {:.3}", e.logits[k])), "{label}");
    }

    let other = (predicted + 1) % e.classes();
    h.get_by_label_contains(&format!("class {other} evidence")).click();
    frames(&mut h, 3);
    assert_eq!(h.state().state.class, Some(other));
    assert_identity_for(&identity_shown(&h), &e, other);
    assert!(is_toggled(&h.get_by_label_contains(&format!("class {other} evidence"))));

    // Selecting another digit asks for its evidence, once while the request is unanswered.
    s.select(0);
    h.state_mut().snap = Some(s.snapshot());
    frames(&mut h, 8);
    assert_eq!(h.state().evidence_requests(), 1);
    let e0 = s.class_evidence(&EvidenceOf::SelectedSample).unwrap();
    h.state_mut().evidence = Some(e0.clone());
    frames(&mut h, 8);
    assert_eq!(h.state().evidence_requests(), 1, "the answer is current");
    assert_identity_for(&identity_shown(&h), &e0, other);
}

#[test]
fn without_a_batch_the_evidence_view_says_to_take_a_step_and_asks_nothing() {
    let mut s = session(Preset::Recommended, 0);
    let snap = s.snapshot();
    let mut h = fc1_harness(Fc1Host {
        state: Fc1State::default(),
        snap: Some(snap),
        unit: None,
        evidence: None,
        sent: Vec::new(),
    });
    frames(&mut h, 3);
    assert_eq!(h.state().evidence_requests(), 0);
    assert!(h.query_by_label_contains("take a step first").is_some());
}

// ---------------------------------------------------------------------------------------------
// Health view

struct HealthHost {
    state: HealthState,
    snap: Option<Snapshot>,
    check: Option<GradientCheck>,
    magnitudes: Magnitudes,
    can_run: Result<(), String>,
    sent: Vec<Command>,
}

fn health_harness(host: HealthHost) -> Harness<'static, HealthHost> {
    Harness::builder().with_size(egui::vec2(1000.0, 2400.0)).build_ui_state(
        |ui, host: &mut HealthHost| {
            let can_run = host.can_run.clone();
            if let Some(c) =
                health_ui(ui, &mut host.state, host.snap.as_ref(), host.check.as_ref(), &host.magnitudes, can_run)
            {
                host.sent.push(c);
            }
        },
        host,
    )
}

#[test]
fn check_gradients_returns_the_command_and_the_report_shows_every_layer_passing() {
    let mut s = session(Preset::Recommended, 2);
    let snap = s.snapshot();
    let mut magnitudes = Magnitudes::default();
    magnitudes.absorb(&snap);
    let mut h = health_harness(HealthHost {
        state: HealthState::default(),
        snap: Some(snap),
        check: None,
        magnitudes,
        can_run: Err("pause first".to_string()),
        sent: Vec::new(),
    });
    frames(&mut h, 2);
    assert!(h.get_by_label(CHECK_LABEL).accesskit_node().is_disabled());
    assert!(h.query_by_label("pause first").is_some(), "the reason is shown, not only on hover");
    assert!(h.query_by_label("No check yet.").is_some());

    h.state_mut().can_run = Ok(());
    frames(&mut h, 2);
    h.get_by_label(CHECK_LABEL).click();
    frames(&mut h, 3);
    assert_eq!(h.state().sent, vec![Command::CheckGradients]);
    assert!(h.state().state.checking());
    assert!(h.get_by_label(CHECK_LABEL).accesskit_node().is_disabled(), "one check at a time");

    let check = s.check_gradients(&mut |_, _| {}).unwrap();
    h.state_mut().check = Some(check.clone());
    frames(&mut h, 3);
    assert!(!h.state().state.checking());
    assert!(!h.get_by_label(CHECK_LABEL).accesskit_node().is_disabled());
    assert!(h.query_by_label_contains(&format!("Computed at step {}", check.step)).is_some());
    assert!(h.query_by_label("Backprop agrees with the finite differences.").is_some());
    let names: Vec<&str> = check.report.layers.iter().map(|l| l.layer.as_str()).collect();
    assert_eq!(names, ["conv1", "conv2", "fc1", "fc2"]);
    for layer in &check.report.layers {
        let summary = layer_summary(layer, check.report.noise);
        assert!(summary.contains(&format!("max relative error {:.1e}", layer.max_rel_error)), "{summary}");
        assert!(summary.contains(" pass"), "backprop is right: {summary}");
        assert!(h.query_by_label(&summary).is_some(), "the report shows {summary:?}");
        // Each checked entry is a row: its analytic and numeric gradients side by side.
        for e in &layer.entries {
            assert!(h.query_all_by_label(&format!("{:+.6e}", e.analytic)).next().is_some(), "{} analytic", e.param);
            assert!(h.query_all_by_label(&format!("{:+.6e}", e.numeric)).next().is_some(), "{} numeric", e.param);
        }
    }
    assert_eq!(h.state().sent, vec![Command::CheckGradients], "nothing else was asked for");
}

fn point(step: u64, rms: f32) -> MagnitudePoint {
    MagnitudePoint {
        step,
        activations: vec![rms; 6],
        gradients: vec![rms * 1e-3; 6],
        weights: vec![rms; 4],
        weight_gradients: vec![rms; 4],
    }
}

#[test]
fn the_magnitude_store_keeps_log_rms_decimates_and_clears() {
    let mut m = Magnitudes::new(64);
    assert!(m.is_empty());
    for step in 1..=1000 {
        m.add(&point(step, 1e-3));
    }
    let acts = m.activations(0).unwrap();
    assert!(m.len() <= 64 && m.len() >= 32, "kept {}", m.len());
    assert!(acts.per_point() >= 16, "{} steps per point", acts.per_point());
    assert!(acts.points().iter().all(|p| (p.y + 3.0).abs() < 1e-6), "log10(1e-3) = −3");
    assert!(m.gradients(5).unwrap().points().iter().all(|p| (p.y + 6.0).abs() < 1e-6));
    assert!(acts.points().windows(2).all(|w| w[0].x < w[1].x), "steps stay in order");
    assert_eq!(m.added(), 1000);
    assert_eq!(m.last().map(|p| p.step), Some(1000));

    // An RMS of 0 has no logarithm: it is left out rather than drawn at −∞.
    let mut z = Magnitudes::new(64);
    z.add(&point(1, 0.0));
    assert!(z.activations(0).unwrap().is_empty());

    m.clear();
    assert!(m.is_empty() && m.last().is_none() && m.added() == 0);
    m.add(&point(1001, 1e-3));
    assert_eq!(m.activations(0).unwrap().per_point(), 1, "a cleared store starts at full resolution");
}

#[test]
fn magnitudes_from_a_post_run_are_plotted_with_the_vanishing_signal_note() {
    let mut s = session(Preset::Post, 3);
    let snap = s.snapshot();
    assert!(snap.curves_reset && snap.new_magnitude_points.len() == 3);
    let mut m = Magnitudes::default();
    m.add(&point(99, 1.0));
    m.absorb(&snap);
    assert_eq!(m.added(), 3, "a snapshot that resets the curves replaces what was there");
    let last = snap.new_magnitude_points.last().unwrap().clone();
    assert_eq!(m.last(), Some(&last));
    assert_eq!(last.activations.len(), snap.model.plan.layers.len(), "one series per layer");
    for i in 0..last.activations.len() {
        let y = m.activations(i).unwrap().last().unwrap().y;
        assert!((y - f64::from(last.activations[i]).log10()).abs() < 1e-12);
    }
    // The next snapshot adds to the history instead of replacing it.
    s.step_batch(&mut |_, _| {}).unwrap();
    let next = s.snapshot();
    m.absorb(&next);
    assert_eq!(m.added(), 4);

    let mut h = health_harness(HealthHost {
        state: HealthState::default(),
        snap: Some(next),
        check: None,
        magnitudes: m,
        can_run: Ok(()),
        sent: Vec::new(),
    });
    frames(&mut h, 3);
    assert!(h.query_by_label_contains("This run uses the post preset").is_some());
    assert!(h.query_by_label_contains("step 4: activation RMS conv1").is_some());
    assert!(h.state().sent.is_empty());
}

#[test]
fn on_lenet5_the_check_reports_its_five_layers_with_pytorch_names_and_the_legend_switches_curves() {
    let mut s = session_of("lenet5", Preset::Recommended, 2);
    let snap = s.snapshot();
    let mut magnitudes = Magnitudes::default();
    magnitudes.absorb(&snap);
    let check = s.check_gradients(&mut |_, _| {}).unwrap();
    let styles = series_styles(&snap.model.plan);
    let mut h = health_harness(HealthHost {
        state: HealthState::default(),
        snap: Some(snap),
        check: Some(check.clone()),
        magnitudes,
        can_run: Ok(()),
        sent: Vec::new(),
    });
    frames(&mut h, 3);
    let names: Vec<&str> = check.report.layers.iter().map(|l| l.layer.as_str()).collect();
    assert_eq!(names, ["conv1", "conv2", "fc1", "fc2", "fc3"], "every layer with weights, in forward order");
    for layer in &check.report.layers {
        let summary = layer_summary(layer, check.report.noise);
        assert!(!summary.contains("FAIL"), "backprop is right: {summary}");
        assert!(h.query_by_label(&summary).is_some(), "the report shows {summary:?}");
        let names = pytorch_names(layer).expect("the PyTorch names");
        assert!(h.query_by_label(&names).is_some(), "{names}");
    }
    // LeNet's state_dict indices: the layers' positions in the line.
    for pair in ["conv1.weight is 0.weight", "conv2.bias is 3.bias", "fc1.weight is 7.weight", "fc3.bias is 11.bias"] {
        assert!(h.query_by_label_contains(pair).is_some(), "{pair}");
    }
    assert!(h.query_by_label_contains("step 2: activation RMS conv1").is_some());
    assert!(h.query_by_label_contains(" · pool2 ").is_some(), "the pools are measured too");

    // The legend lists every layer but flatten, in forward order.
    let legend: Vec<String> = h
        .query_all_by_label_contains(" curves")
        .filter_map(|n| n.accesskit_node().label())
        .filter(|l| l.ends_with(" curves"))
        .collect();
    let expected: Vec<String> = styles.iter().map(|st| legend_label(&st.name)).collect();
    assert_eq!(legend, expected);
    assert_eq!(styles.len(), 11);
    // A click switches a layer's curves off, a second one on again.
    let relu1 = legend_label("relu1");
    h.get_by_label(&relu1).click();
    frames(&mut h, 2);
    assert!(!h.state().state.shows("relu1") && h.state().state.shows("conv1"));
    assert!(!is_toggled(&h.get_by_label(&relu1)));
    h.get_by_label(&relu1).click();
    frames(&mut h, 2);
    assert!(h.state().state.shows("relu1") && is_toggled(&h.get_by_label(&relu1)));
}
