//! "What am I looking at": a short explanation with its formula for every panel and every
//! phase, written for a student who has read the post's numpy code, so in its notation (X the
//! batch of images, y the labels, W and b the parameters, dscores the gradient of the scores).
//!
//! The texts are data ([`PANEL_HELP`], [`PHASE_HELP`]); the phases' own label, formula and
//! one-line description come from [`Phase`] and are not repeated here. They are offered twice:
//! as a tooltip on each panel's heading and its "?" button ([`heading_ui`], [`help_button_ui`]),
//! and in the help panel ([`help_ui`]), which follows the phase that ran last and the panel last
//! hovered or clicked.
//!
//! Which panel was last hovered is kept in egui's memory rather than in [`ViewState`]: several
//! panels only get to read the view state (or none of it), and the help panel only reads it.

use std::sync::{Arc, Mutex};

use eframe::egui::{self, RichText};
use serde::{Deserialize, Serialize};

use crate::engine::model::{LayerSpec, PlannedLayer, Shape};
use crate::engine::{OptimizerKind, Phase};
use crate::trainer::{ModelView, Snapshot};
use crate::ui::support::palette;
use crate::ui::support::text::{GlyphSafe, thousands};
use crate::ui::{ScaleMode, ViewState};

/// A panel of the window that has an explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HelpTopic {
    /// The control bar.
    Controls,
    /// The list of phases.
    Pipeline,
    /// The batch of digits.
    Batch,
    /// The selected digit's feature maps.
    FeatureMaps,
    /// The convolution kernels.
    Filters,
    /// Probabilities and hidden units of the selected digit.
    Outputs,
    /// Loss and accuracy curves.
    Curves,
    /// Test-set accuracy, confusion matrix and mistakes.
    Evaluation,
    /// One feature-map pixel's arithmetic.
    Inspector,
    /// The draw-a-digit canvas.
    Draw,
    /// FC1's units and the class evidence.
    Fc1,
    /// The gradient check and the signal magnitudes.
    Health,
    /// The convolution playground.
    Playground,
    /// A phase's loops, one iteration at a time.
    Loops,
    /// The lesson panel: cards that put the app in a state.
    Lessons,
}

/// The explanation of one panel.
#[derive(Clone, Copy, Debug)]
pub struct PanelHelp {
    /// The panel.
    pub topic: HelpTopic,
    /// Its name as its heading shows it.
    pub title: &'static str,
    /// What it shows, in a few sentences.
    pub text: &'static str,
    /// The formula behind it.
    pub formula: &'static str,
}

/// Every panel's explanation, in the order of [`HelpTopic`]. The texts hold for any network;
/// where they give the post's numbers they say so, and [`network_note`] adds the numbers of
/// the network on screen.
pub const PANEL_HELP: [PanelHelp; 15] = [
    PanelHelp {
        topic: HelpTopic::Controls,
        title: "Controls",
        text: "Training goes in steps. One step takes a mini-batch X of N images (N×1×28×28 for MNIST) \
               with labels y, runs the forward pass to the loss L, the backward pass to a gradient dW, \
               db for every parameter, and updates the weights. Step phase runs the next phase of \
               that, Step batch the rest of the step, Run keeps stepping. The optimizer (SGD with \
               momentum μ, or Adam), the learning rate lr, μ, reg and N apply from the next batch; \
               a preset and Reset start again from fresh weights with the seed, on the same network.",
        formula: "each step: L = loss(X, y; W, b) → dW, db → SGD: v = μ·v − lr·dW; W += v   \
                  Adam: W −= lr·m̂ / (√v̂ + ε)",
    },
    PanelHelp {
        topic: HelpTopic::Pipeline,
        title: "Pipeline",
        text: "Every phase of one step, in the order the code runs them. Forward (blue): each layer \
               computes its output from its input. Backward (orange): the chain rule carries \
               dscores back through the layers, giving each layer its dW and db and the gradient \
               of its input. Update (purple): every parameter moves against its gradient. The row \
               that ran last is highlighted; hover a row for its shapes and formula, click it to \
               show that layer's view.",
        formula: "forward: out = f(in; W, b)    backward: din, dW, db = f_backward(dout)",
    },
    PanelHelp {
        topic: HelpTopic::Batch,
        title: "Batch",
        text: "The mini-batch X: N digits of the training set, pixels scaled to 0–1, and their \
               labels y. Once forward loss ran, each digit shows the network's prediction (the \
               class with the largest p) and its probability; red frames are mistakes. The loss is \
               the mean over these N images. Click a digit to follow it in the feature maps and \
               outputs.",
        formula: "pred[n] = argmax p[n, :];  L = −(1/N)·Σn log p[n, y[n]] + ½·reg·Σ W_fc²",
    },
    PanelHelp {
        topic: HelpTopic::FeatureMaps,
        title: "Feature maps",
        text: "The maps of the selected digit X[n] at every layer before flatten. Each tile is one \
               channel. A conv layer has one map per filter W[f]: where that filter responded, \
               summing what it sees in all the maps of the layer before. An activation (ReLU, \
               tanh, sigmoid) passes each value through its function: ReLU sets the negatives to \
               0. A pool shrinks each map, keeping the largest value (max) or the mean (avg) of \
               each window. A conv and the activations and pools after it share one colour scale, \
               so before and after compare. With many layers, pick the ones to show above the \
               maps. In the backward pass (or with Gradients) a tile shows ∂L/∂ that map: how the \
               loss changes when a pixel grows. A pixel's colour is its value over the scale on \
               the colour map; the legend says which scale is in force (per layer, per map or \
               held) and its value. Click a pixel to see how it was computed.",
        formula: "conv[f] = b[f] + Σc W[f, c] ⋆ in[c];  relu = max(0, conv);  pool[i, j] = max (or mean) of its window",
    },
    PanelHelp {
        topic: HelpTopic::Filters,
        title: "Filters",
        text: "The weights of every conv layer: its F filters W[f], one column per filter f and one \
               row per input channel c, each a K×K kernel (the first conv reads the image's single \
               channel, so its filters are one row). Gradients shows dW of this step: how the loss \
               changes with each weight. Last update ΔW shows what the update added. Colours as in \
               the feature maps: one scale per bank, per kernel, or held.",
        formula: "dW[f, c] = Σn,i,j dconv[n, f, i, j]·in[n, c, i:i+K, j:j+K];  SGD: ΔW = v = μ·v − lr·dW",
    },
    PanelHelp {
        topic: HelpTopic::Outputs,
        title: "Outputs",
        text: "For the selected digit: the class probabilities p = softmax(scores), the true class \
               outlined. In the backward pass the number at the right of each bar is dscores: p \
               minus 1 at the true class, divided by N, the push each score gets. Below, when the \
               network has a hidden dense layer, the hidden units z1 of the first fc after flatten \
               before its activation (with a ReLU, bars below the line become 0), or their \
               gradient dz1 in the backward pass.",
        formula: "p[k] = exp(scores[k]) / Σj exp(scores[j]);  dscores = (p − onehot(y)) / N",
    },
    PanelHelp {
        topic: HelpTopic::Curves,
        title: "Training curves",
        text: "The loss of every step (grey) and its moving average (orange). It starts near the \
               loss of a uniform guess, ln 10 ≈ 2.303 for ten classes, and falls as the network \
               learns; if it stays there (the post's preset), the signal vanishes before the loss \
               and nothing is learnt (see the Backprop check tab). A red cross marks a loss that \
               diverged: training went back to before it. Below, the \
               accuracy on the training batches (dashed) and on held-out test images every 200 \
               steps (blue); Evaluate measures the whole test set. Test accuracy falling behind \
               batch accuracy is overfitting.",
        formula: "L = −mean log p[n, y[n]] + ½·reg·Σ W_fc²;  accuracy = mean(argmax p[n] == y[n])",
    },
    PanelHelp {
        topic: HelpTopic::Evaluation,
        title: "Evaluation",
        text: "The network, with the weights of the current step, classifies every test image — \
               digits it never trained on. Accuracy is the share it gets right. The confusion \
               matrix counts, for each true class (row), what the network predicted (column): \
               the diagonal is right, every other cell is one kind of mistake, e.g. 4 read as 9. \
               Click a cell to see those digits, most confident mistakes first; click a digit to \
               run it through every view.",
        formula: "pred = argmax(softmax(scores(X_test)));  accuracy = mean(pred == y_test)",
    },
    PanelHelp {
        topic: HelpTopic::Inspector,
        title: "Pixel inspector",
        text: "One pixel of a conv layer's map is one dot product: the K×K patch of the layer's \
               input under the filter (one patch per input channel) times the filter's weights, \
               summed, plus the bias; with a stride s the patch starts s pixels further for each \
               step along the map. The inspector redoes that sum with this step's numbers and \
               shows the engine's own value beside it. After the backward pass it shows the \
               gradient arriving at the pixel: times the patch it is this pixel's share of dW, \
               times the weights its share of the gradient passed back to the input. A pool's \
               pixel shows its window: which input won (max) or their mean (avg), and where its \
               gradient goes; an activation's pixel, its input and the function.",
        formula: "a[f,y,x] = b[f] + Σ_c Σ_i,j in[c, y·s+i−pad, x·s+j−pad] · W[f,c,i,j];  dW[f] += da[f,y,x] · patch",
    },
    PanelHelp {
        topic: HelpTopic::Draw,
        title: "Draw a digit",
        text: "Draw with the mouse. As MNIST's digits were prepared, your drawing is cropped to its \
               ink, scaled so the longer side is 20 pixels, and placed in 28×28 with its centre of \
               mass in the middle. Then the current network runs only its forward pass on it: no \
               loss, no gradient, no update. While training runs it is classified again after \
               each step, so you can watch the answer change.",
        formula: "x = prepare(drawing);  p = softmax(scores(x)), every layer of the network in order",
    },
    PanelHelp {
        topic: HelpTopic::Fc1,
        title: "FC1",
        text: "fc1, the first dense layer after flatten, sees every value of the last maps: each of \
               its units has one weight per value, so a unit's weights are themselves a stack of \
               maps — a template it matches against them (in the post's network, with no pooling, \
               each of its 100 units has 25,088 weights: the 32 conv2 maps of 28×28). Class \
               evidence, where the network ends fc1 → ReLU → fc: with fc1's ReLU pattern held \
               fixed (which units are on), each score is exactly linear in the maps fc1 reads, so \
               it splits into one number per pixel. Red pixels push towards the class, blue away; \
               they add up exactly to the score minus the bias terms.",
        formula: "scores[k] = Σ_j W_fc2[k,j]·[z1_j > 0]·(Σ_i W_fc1[j,i]·a_i + b_fc1[j]) + b_fc2[k]",
    },
    PanelHelp {
        topic: HelpTopic::Health,
        title: "Backprop check",
        text: "Is backprop right? Nudge one weight by ±h, run the forward pass twice and divide the \
               change in loss by 2h: that is the gradient measured, not derived. Check gradients \
               does this for a few weights of every layer on the current batch and compares with \
               what the backward pass computed. The plots show how large each layer's activations \
               and gradients are, step by step: with the post's tiny initial weights they shrink \
               layer by layer until almost nothing reaches the loss, which then sits at ln 10 ≈ 2.30.",
        formula: "numeric = (L(W + h) − L(W − h)) / 2h;  relative error = |a − n| / max(|a|, |n|)",
    },
    PanelHelp {
        topic: HelpTopic::Playground,
        title: "Convolution playground",
        text: "The post's conv loop on numbers you choose, away from training. The kernel (HH×HH) \
               sits on the top-left corner of the padded input, multiplies the values under it by \
               its weights, adds the products and the bias, and writes one output cell; then it \
               moves stride cells right, and at the end of a row stride cells down. Padding adds \
               rings of zeros so the kernel can reach the border. The output's side is the post's \
               formula; its int() rounds down, so when the division is not exact the last rows and \
               columns are never read. Max pooling keeps the largest value of each window, average \
               pooling their mean.",
        formula: "out[h, w] = Σ_i,j x_pad[h·stride + i, w·stride + j] · k[i, j] + b;  side = 1 + (H − HH + 2·pad) / stride",
    },
    PanelHelp {
        topic: HelpTopic::Loops,
        title: "Loops",
        text: "The loops of one phase, as the post writes them, run one iteration at a time on the \
               current batch at the weights it started with. Pick a layer and a part (forward, \
               backward dW & db, backward dX; the loss forward and backward on the last layer). Each iteration runs one line of the loop body: the \
               indices show where the loops are, the input map shows the patch the kernel covers, \
               and the kernel, their products and the sum are written out as numbers. The output map \
               fills in cell by cell; at the end it is compared with the map the engine computed. \
               Where the post's own line differs (its bugs), it is shown under ours in red. Wide \
               hides the side panels and the batch strip while this tab is in front. Keys while \
               this tab is in front: I one iteration, L end of the inner loop, G run or stop, E end \
               of the phase.",
        formula: "out[n, f, h, w] = Σ_c Σ_i Σ_j x_pad[n, c, h·S + i, w·S + j] · k[f, c, i, j] + b[f]",
    },
    PanelHelp {
        topic: HelpTopic::Lessons,
        title: "Lessons",
        text: "A lesson is a few cards of text, each putting the app in a state: a network and \
               recipe, a seed, a step and a phase, a tab, a layer, a pixel in the inspector. Next \
               and Back (or Page Down and Page Up) move between cards; the same seed gives the \
               same run, so Back shows exactly what the card before showed. Leave closes the \
               lesson and keeps the app as it is. Lessons are Markdown files: `# title`, then \
               per card `## card title`, `key: value` lines (data, network, recipe, seed, \
               run-until, phase, tab, layer, inspect, select, evaluate), a blank line and the \
               text. Open one with File > Open lesson…; the Lessons menu has the built-in ones.",
        formula: "## The post's initialisation / network: post / recipe: post / seed: 1 / run-until: 30 / tab: health",
    },
];

/// What `topic` says of the network on screen beyond [`PANEL_HELP`]'s general text: its
/// layers' numbers. `None` where nothing in the panel depends on the network.
pub fn network_note(topic: HelpTopic, model: &ModelView) -> Option<String> {
    let plan = &model.plan;
    let dims = |s: Shape| match s {
        Shape::Maps { c, h, w } => format!("{c}×{h}×{w}"),
        Shape::Flat(n) => n.to_string(),
    };
    let list = |items: Vec<String>| items.join(", ");
    let convs: Vec<&PlannedLayer> = model.convs().collect();
    let fcs: Vec<&PlannedLayer> = plan.layers.iter().filter(|l| matches!(l.spec, LayerSpec::Fc { .. })).collect();
    let hidden = fcs.first().filter(|l| l.index + 1 < plan.layers.len());
    // The convolution that reads a colour image's red, green and blue, if there is one.
    let colour = convs.iter().find(|l| crate::trainer::inspect::reads_image_channels(model, l.index));
    let text = match topic {
        HelpTopic::FeatureMaps => match model.map_layers().next() {
            None => "This network flattens the image first: it has no feature maps.".to_string(),
            Some(_) => format!(
                "This network's maps (channels×height×width): {}.",
                list(model.map_layers().map(|l| format!("{} {}", l.name, dims(l.output))).collect())
            ),
        },
        HelpTopic::Filters => match convs.is_empty() {
            true => "This network has no conv layer, so no filters.".to_string(),
            false => {
                format!(
                    "This network's filters (filters × channels×K×K): {}.",
                    list(
                        convs
                            .iter()
                            .filter_map(|l| match (l.spec, l.input) {
                                (LayerSpec::Conv { filters, k, .. }, Shape::Maps { c, .. }) => {
                                    Some(format!("{} {filters} × {c}×{k}×{k}", l.name))
                                }
                                _ => None,
                            })
                            .collect()
                    )
                ) + &colour.map_or_else(String::new, |l| {
                    format!(
                        " {} reads the image's red, green and blue: each of its filters is drawn as one colour \
                     picture, mid grey at 0, redder where it weighs red positively (Per channel shows \
                     the three slices apart).",
                        l.name
                    )
                })
            }
        },
        HelpTopic::Inspector => match convs.is_empty() {
            true => return None,
            false => {
                format!(
                    "This network's convolutions: {}.",
                    list(
                        convs
                            .iter()
                            .filter_map(|l| match l.spec {
                                LayerSpec::Conv { k, stride, pad, .. } => {
                                    Some(format!("{} {k}×{k}, stride {stride}, pad {pad}", l.name))
                                }
                                _ => None,
                            })
                            .collect()
                    )
                ) + &colour.map_or_else(String::new, |l| {
                    format!(" A {} pixel's sum is one subtotal per colour (red, green, blue), then the bias.", l.name)
                })
            }
        },
        HelpTopic::Outputs | HelpTopic::Fc1 => match hidden {
            Some(fc) => format!(
                "In this network {} has {} units, each with {} weights (one per value of {}).",
                fc.name,
                fc.output.len(),
                thousands(fc.input.len() as u64),
                // The maps flatten lined up, if the network has any.
                dims(
                    plan.layers[..fc.index]
                        .iter()
                        .rev()
                        .map(|l| l.output)
                        .find(|s| matches!(s, Shape::Maps { .. }))
                        .unwrap_or(fc.input)
                )
            ),
            None => "This network has no hidden dense layer: flatten goes straight to the scores.".to_string(),
        },
        HelpTopic::Batch | HelpTopic::Curves | HelpTopic::Controls => {
            format!(
                "In this network the L2 term covers {}.",
                list(fcs.iter().map(|l| format!("W_{}", l.name)).collect())
            )
        }
        HelpTopic::Draw => format!("This network: {}.", model.line()),
        HelpTopic::Pipeline
        | HelpTopic::Evaluation
        | HelpTopic::Health
        | HelpTopic::Playground
        | HelpTopic::Loops
        | HelpTopic::Lessons => return None,
    };
    Some(text)
}

fn model_id() -> egui::Id {
    egui::Id::unique("cnn-stepper help network")
}

/// Tells the help texts which network is on screen (the scene does, when the network changes):
/// the tooltips are drawn by panels that have no snapshot, and name its layers' numbers.
pub fn set_model(ctx: &egui::Context, model: &Arc<ModelView>) {
    ctx.data_mut(|d| d.insert_temp(model_id(), model.clone()));
}

/// The network on screen, once [`set_model`] was told.
pub fn current_model(ctx: &egui::Context) -> Option<Arc<ModelView>> {
    ctx.data(|d| d.get_temp(model_id()))
}

/// A phase of the post's network (`post` or `post-relu`) by the role of its layer, as the
/// post's code names them: `conv1`, `relu1`, `conv2`, `relu_c2` (the optional ReLU after
/// conv2), `fc1`, `relu_fc` (the ReLU between the dense layers), `fc2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostStep {
    /// A layer's forward phase.
    Forward(&'static str),
    /// The softmax and loss.
    Loss,
    /// The loss's gradient.
    LossBackward,
    /// A layer's backward phase.
    Backward(&'static str),
    /// The update.
    Update,
}

impl PostStep {
    /// The post's step that `phase` of `model` is, when `model` is the post's network (named
    /// `post` or `post-relu`); `None` for any other network, or flatten (part of fc1 in the post).
    pub fn of(model: &ModelView, phase: Phase) -> Option<PostStep> {
        let roles: &[&'static str] = match model.name.as_deref() {
            Some("post") => &["conv1", "relu1", "conv2", "", "fc1", "relu_fc", "fc2"],
            Some("post-relu") => &["conv1", "relu1", "conv2", "relu_c2", "", "fc1", "relu_fc", "fc2"],
            _ => return None,
        };
        let role = |i: usize| roles.get(i).copied().filter(|r| !r.is_empty());
        Some(match phase {
            Phase::Forward(i) => PostStep::Forward(role(i)?),
            Phase::Backward(i) => PostStep::Backward(role(i)?),
            Phase::Loss => PostStep::Loss,
            Phase::LossBackward => PostStep::LossBackward,
            Phase::Update => PostStep::Update,
        })
    }
}

/// What each phase of the post's network does in the post's numpy terms, beyond its formula
/// and one-line description.
pub const PHASE_HELP: [(PostStep, &str); 17] = [
    (
        PostStep::Forward("conv1"),
        "X is the batch, N×1×28×28, padded by 2 so the maps stay 28×28. Each of the 16 filters W1[f] \
         (1×5×5) slides over every image: out[n, f, i, j] = b1[f] + sum(X[n, :, i:i+5, j:j+5] * W1[f]). \
         That is the post's loop; the fast engine gets the same numbers from im2col and one matrix product.",
    ),
    (
        PostStep::Forward("relu1"),
        "h1 = np.maximum(0, a1): negative responses become 0, positive ones pass unchanged. The mask \
         a1 > 0 is what the backward pass will use.",
    ),
    (
        PostStep::Forward("conv2"),
        "Like conv1, but each of the 32 filters W2[f] is 16×5×5: it reads all 16 relu1 maps at once and \
         adds up the 16 results. (The post builds W2 as 32×1×5×5, one of its bugs.) The fast engine gets the \
         same numbers, up to rounding, through the 2-D Fourier transform: sliding a filter becomes one \
         complex multiply per frequency, a ninth of the arithmetic.",
    ),
    (
        PostStep::Forward("relu_c2"),
        "h2 = np.maximum(0, a2). Not in the post: switch it on to see what a non-linearity between the \
         two convolutions changes.",
    ),
    (
        PostStep::Forward("fc1"),
        "a2.reshape(N, -1) lines up the 32×28×28 = 25,088 numbers of each image in one row; \
         z1 = that @ W3ᵀ + b3 gives 100 hidden units (the post's fc_W1 is W3ᵀ, 25,088×100).",
    ),
    (PostStep::Forward("relu_fc"), "h3 = np.maximum(0, z1): the 100 hidden units after ReLU."),
    (
        PostStep::Forward("fc2"),
        "scores = h3 @ W4ᵀ + b4: one number per class for each image, N×10 (the post's fc_W2 is W4ᵀ).",
    ),
    (
        PostStep::Loss,
        "p = exp(scores) / exp(scores).sum(axis=1), row by row (the largest score is subtracted first \
         so exp cannot overflow). L is the mean of −log p[n, y[n]] plus ½·reg·(ΣW3² + ΣW4²). Guessing \
         gives p = 0.1 everywhere and L = ln 10 ≈ 2.303.",
    ),
    (
        PostStep::LossBackward,
        "dscores = p.copy(); dscores[range(N), y] -= 1; dscores /= N. Each row says which way each \
         score should move to lower L: down for the wrong classes, up for the true one.",
    ),
    (
        PostStep::Backward("fc2"),
        "dW4 = dscoresᵀ @ h3 + reg·W4 and db4 = dscores.sum(axis=0). dh3 = dscores @ W4 carries the \
         gradient on to the hidden units (the post starts this from the activations; fixed here).",
    ),
    (
        PostStep::Backward("relu_fc"),
        "dz1 = dh3 * (z1 > 0): the gradient passes where a unit was positive and stops where ReLU had \
         zeroed it.",
    ),
    (
        PostStep::Backward("fc1"),
        "dW3 = dz1ᵀ @ a2.reshape(N, -1) + reg·W3 and db3 = dz1.sum(axis=0). da2 = (dz1 @ W3) reshaped \
         to N×32×28×28 is the gradient of every conv2 pixel: the ∂L/∂conv2 maps.",
    ),
    (PostStep::Backward("relu_c2"), "da2 = dh2 * (a2 > 0), as for the other ReLUs."),
    (
        PostStep::Backward("conv2"),
        "dW2[f] adds up, over the batch and every position, the relu1 patch under the filter times that \
         position's da2; db2[f] = da2[:, f].sum(). dh1 spreads every da2 pixel back over its 5×5 window \
         through W2 (a full convolution). The post never computes it, so its conv1 never learns. The fast \
         engine forms both from the Fourier transforms of relu1, da2 and W2.",
    ),
    (PostStep::Backward("relu1"), "da1 = dh1 * (a1 > 0): only conv1 pixels that were positive pass their gradient on."),
    (
        PostStep::Backward("conv1"),
        "dW1[f] = sum over n, i, j of da1[n, f, i, j] · X[n, :, i:i+5, j:j+5] (padded X); \
         db1[f] = da1[:, f].sum(). No gradient for X: the digits are data, not parameters.",
    ),
    (
        PostStep::Update,
        "For every parameter: v = μ·v − lr·dW, then W += v (with μ = 0 this is the post's plain \
         W -= lr·dW). The Filters tab's \"Last update ΔW\" shows v of the conv filters.",
    ),
];

impl HelpTopic {
    /// Every topic, in the order of [`PANEL_HELP`].
    pub const ALL: [HelpTopic; 15] = [
        HelpTopic::Controls,
        HelpTopic::Pipeline,
        HelpTopic::Batch,
        HelpTopic::FeatureMaps,
        HelpTopic::Filters,
        HelpTopic::Outputs,
        HelpTopic::Curves,
        HelpTopic::Evaluation,
        HelpTopic::Inspector,
        HelpTopic::Draw,
        HelpTopic::Fc1,
        HelpTopic::Health,
        HelpTopic::Playground,
        HelpTopic::Loops,
        HelpTopic::Lessons,
    ];

    /// This panel's explanation.
    pub fn help(self) -> &'static PanelHelp {
        &PANEL_HELP[self as usize]
    }
}

/// The post's numpy-terms explanation of `phase`, for the post's network; for any other
/// network (and for flatten, which the post does inside fc1) the sentence generated from the
/// layer and its numbers.
pub fn phase_note(model: &ModelView, phase: Phase, optimizer: OptimizerKind) -> String {
    // The post's update note is about SGD: with Adam the generated sentence says what happens.
    let post_step = PostStep::of(model, phase).filter(|s| *s != PostStep::Update || optimizer == OptimizerKind::Sgd);
    match post_step.and_then(|step| PHASE_HELP.iter().find(|(p, _)| *p == step)) {
        Some((_, text)) => (*text).to_string(),
        None => model.plan.phase_sentence(phase, optimizer.optimizer()),
    }
}

/// The colour of a phase: blue forward, orange backward, green update.
pub fn phase_color(phase: Phase) -> egui::Color32 {
    match phase {
        Phase::Forward(_) | Phase::Loss => palette::FORWARD,
        Phase::Backward(_) | Phase::LossBackward => palette::BACKWARD,
        Phase::Update => palette::UPDATE,
    }
}

fn topic_id() -> egui::Id {
    egui::Id::unique("cnn-stepper help topic")
}

/// The panel whose heading or "?" was hovered or clicked last.
pub fn last_topic(ctx: &egui::Context) -> Option<HelpTopic> {
    ctx.data(|d| d.get_temp(topic_id()))
}

/// Makes `topic` the panel the help panel explains.
pub fn set_topic(ctx: &egui::Context, topic: HelpTopic) {
    ctx.data_mut(|d| d.insert_temp(topic_id(), topic));
}

/// `text` with characters the fonts lack spelled out (see [`GlyphSafe`]); one cache per
/// context, in its memory, because the help texts are drawn from panels that own no state.
fn safe(ctx: &egui::Context, text: &str, mono: bool) -> String {
    let id = egui::Id::unique("cnn-stepper help glyphs");
    let glyphs = ctx.data_mut(|d| d.get_temp_mut_or_default::<Arc<Mutex<GlyphSafe>>>(id).clone());
    match glyphs.lock() {
        Ok(mut g) => g.get(ctx, text, mono),
        Err(_) => text.to_string(),
    }
}

/// The body of a panel's tooltip (and of its part of the help panel): title, text, formula.
pub fn topic_tooltip_ui(ui: &mut egui::Ui, topic: HelpTopic) {
    let model = current_model(ui.ctx());
    topic_ui(ui, topic, model.as_deref());
}

/// Title, text and formula of `topic`, then what it says of `model` ([`network_note`]).
fn topic_ui(ui: &mut egui::Ui, topic: HelpTopic, model: Option<&ModelView>) {
    let help = topic.help();
    ui.set_max_width(420.0);
    ui.label(RichText::new(help.title).strong());
    explanation_ui(ui, help.text, help.formula);
    if let Some(note) = model.and_then(|m| network_note(topic, m)) {
        let ctx = ui.ctx().clone();
        ui.add(egui::Label::new(RichText::new(safe(&ctx, &note, false)).small()).wrap());
    }
}

fn explanation_ui(ui: &mut egui::Ui, text: &str, formula: &str) {
    let ctx = ui.ctx().clone();
    ui.add(egui::Label::new(safe(&ctx, text, false)).wrap());
    ui.add(egui::Label::new(RichText::new(safe(&ctx, formula, true)).monospace()).wrap());
}

/// Attaches `topic`'s explanation to `response` as a tooltip, and makes it the help panel's
/// topic when hovered or clicked. For headings drawn elsewhere (the tabs, the control bar).
pub fn with_help(response: egui::Response, topic: HelpTopic) -> egui::Response {
    if response.hovered() || response.clicked() {
        set_topic(&response.ctx, topic);
    }
    response.on_hover_ui(|ui| topic_tooltip_ui(ui, topic))
}

/// A small "?" that explains `topic` on hover and makes it the help panel's topic when hovered
/// or clicked.
pub fn help_button_ui(ui: &mut egui::Ui, topic: HelpTopic) -> egui::Response {
    let response = ui.small_button("?");
    let label = format!("What is {}?", topic.help().title);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &label));
    with_help(response, topic)
}

/// A panel heading (as [`crate::ui::support::widgets::section_heading`]) that explains the panel on hover, followed
/// by its "?".
pub fn heading_ui(ui: &mut egui::Ui, topic: HelpTopic) -> egui::Response {
    ui.horizontal(|ui| {
        let title = topic.help().title;
        let response = ui.label(RichText::new(title).strong().size(15.0));
        help_button_ui(ui, topic);
        with_help(response, topic)
    })
    .inner
}

/// A phase explained: its label, formula and description (from the network's plan), then
/// the post's note where it is the post's network ([`phase_note`]).
pub fn phase_help_ui(ui: &mut egui::Ui, snap: &Snapshot, phase: Phase) {
    let model = &snap.model;
    let optimizer = snap.settings.hyper.optimizer;
    ui.label(RichText::new(model.phase_label(phase)).strong().color(phase_color(phase)));
    let sentence = model.plan.phase_sentence(phase, optimizer.optimizer());
    explanation_ui(ui, &sentence, &model.plan.phase_formula(phase, optimizer.optimizer()));
    let note = phase_note(model, phase, optimizer);
    if note != sentence {
        let ctx = ui.ctx().clone();
        ui.add(egui::Label::new(RichText::new(safe(&ctx, &note, false)).small()).wrap());
    }
}

/// The help panel: the phase that ran last (and the one clicked in the pipeline, if another),
/// the panel last hovered or clicked (or `tab_topic`, the topic of the central tab in front),
/// and how the colours read. The app places it, e.g. in a window shown while
/// [`ViewState::show_help`] is on.
pub fn help_ui(ui: &mut egui::Ui, snap: Option<&Snapshot>, view: &ViewState, tab_topic: HelpTopic) {
    ui.label(RichText::new("Help").strong().size(15.0));
    egui::ScrollArea::vertical().id_salt("help").auto_shrink([false, false]).show(ui, |ui| {
        ui.label(RichText::new("The phase that ran last").small().weak());
        match snap {
            None => {
                ui.label("Waiting for the trainer…");
            }
            Some(s) => match s.last_phase() {
                Some(p) => phase_help_ui(ui, s, p),
                None => {
                    ui.label("Nothing has run in this step yet. Next:");
                    if let Some(next) = s.next_phase().or_else(|| s.phases.first().copied()) {
                        phase_help_ui(ui, s, next);
                    }
                }
            },
        }
        if let Some(s) = snap
            && let Some(focus) = view.focus.filter(|f| s.last_phase() != Some(*f))
        {
            ui.add_space(6.0);
            ui.label(RichText::new("The phase you clicked").small().weak());
            phase_help_ui(ui, s, focus);
        }
        ui.separator();

        let topic = last_topic(ui.ctx()).unwrap_or(tab_topic);
        ui.label(RichText::new("The panel").small().weak());
        ui.horizontal_wrapped(|ui| {
            for t in HelpTopic::ALL {
                if ui.selectable_label(t == topic, t.help().title).clicked() {
                    set_topic(ui.ctx(), t);
                }
            }
        });
        topic_ui(ui, topic, snap.map(|s| &*s.model));
        ui.separator();

        ui.label(RichText::new("Colours").small().weak());
        let scale = match view.scale_mode {
            ScaleMode::PerLayer => {
                "One scale per layer: all maps of a layer share its largest |value|, so \
                                    equal colours are equal values."
            }
            ScaleMode::PerMap => {
                "One scale per map: each map is scaled by its own largest |value|, so \
                                  weak maps show their pattern, but colours do not compare between maps."
            }
        };
        let held = if view.hold_scale {
            " The scale is held: values beyond it are clipped to full colour, and the legend says how many."
        } else {
            ""
        };
        let text = format!("{}: {}. {scale}{held}", view.color_map.name(), view.color_map.reading());
        ui.add(egui::Label::new(text).wrap());
    });
}

/// The help panel as a window: not a side panel, because a fourth column would squeeze the maps
/// to nothing on a 1280-pixel screen, and a teacher can park a window wherever it hides least.
/// It starts at the right, over the outputs, and never goes below `bottom` (the top of the
/// status line, whose Light/Dark switch it must not cover). Returns false when the user closed
/// it.
pub fn help_window(
    ctx: &egui::Context,
    snap: Option<&Snapshot>,
    view: &ViewState,
    tab_topic: HelpTopic,
    bottom: f32,
) -> bool {
    let mut open = true;
    let screen = ctx.content_rect();
    let area = egui::Rect::from_min_max(screen.min, egui::pos2(screen.max.x, bottom.min(screen.max.y)));
    let width = 380.0_f32.min(area.width() * 0.4);
    egui::Window::new("Help")
        .id(egui::Id::unique("help window"))
        .open(&mut open)
        .default_pos(egui::pos2(area.right() - width - 24.0, area.top() + 110.0))
        .default_width(width)
        .default_height((area.height() - 140.0).clamp(200.0, 560.0))
        .constrain_to(area)
        .show(ctx, |ui| {
            // A scroll bar beside the text, not over it: floating bars hid the ends of lines.
            ui.spacing_mut().scroll = egui::style::ScrollStyle::solid();
            help_ui(ui, snap, view, tab_topic)
        });
    open
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_panel_has_its_own_explanation_in_topic_order() {
        for (i, t) in HelpTopic::ALL.into_iter().enumerate() {
            assert_eq!(PANEL_HELP[i].topic, t, "PANEL_HELP is indexed by the topic");
            assert!(t.help().text.len() > 80 && !t.help().formula.is_empty(), "{t:?}");
        }
    }

    #[test]
    fn every_phase_of_the_posts_network_has_a_note_in_the_posts_terms() {
        use crate::engine::model::resolve;
        for name in ["post", "post-relu"] {
            let model = ModelView { name: Some(name.into()), plan: resolve(name, (1, 28, 28), 10).unwrap() };
            let steps: Vec<PostStep> =
                model.plan.phases().into_iter().filter_map(|p| PostStep::of(&model, p)).collect();
            // Every phase but flatten's (the post does it inside fc1) is one of the post's.
            assert_eq!(steps.len(), model.plan.phases().len() - 2, "{name}");
            for step in steps {
                assert!(PHASE_HELP.iter().any(|(p, t)| *p == step && t.len() > 20), "{step:?} has no note");
            }
        }
        let post = ModelView { name: Some("post".into()), plan: resolve("post", (1, 28, 28), 10).unwrap() };
        assert!(phase_note(&post, Phase::LossBackward, OptimizerKind::Sgd).contains("dscores[range(N), y] -= 1"));
        let lenet = ModelView { name: Some("lenet5".into()), plan: resolve("lenet5", (1, 28, 28), 10).unwrap() };
        assert!(PostStep::of(&lenet, Phase::Forward(0)).is_none(), "LeNet's conv1 is not the post's");
        assert!(phase_note(&lenet, Phase::Forward(2), OptimizerKind::Sgd).contains("pool1"));
    }

    fn view(line: &str) -> ModelView {
        use crate::engine::model::resolve;
        let name = crate::engine::model::named(line).map(|m| m.name.to_string());
        ModelView { name, plan: resolve(line, (1, 28, 28), 10).unwrap() }
    }

    #[test]
    fn the_panel_texts_give_the_posts_numbers_only_where_they_say_it_is_the_post() {
        for help in PANEL_HELP {
            let text = format!("{} {}", help.text, help.formula);
            for sentence in text.split(['.', ';']).filter(|s| !s.contains("post")) {
                for post_only in ["16 ", "32 ", "100 ", "25,088", "conv2", "W1", "W2", "W3", "W4", "FC1's"] {
                    assert!(
                        !sentence.contains(post_only),
                        "{:?} says {post_only:?} of any network: {sentence}",
                        help.topic
                    );
                }
            }
        }
    }

    #[test]
    fn the_notes_give_the_numbers_of_the_network_on_screen() {
        let lenet = view("lenet5");
        let note = |topic| network_note(topic, &lenet).unwrap_or_default();
        assert!(
            note(HelpTopic::FeatureMaps).contains("pool1 6×14×14, conv2 16×10×10"),
            "{}",
            note(HelpTopic::FeatureMaps)
        );
        assert!(note(HelpTopic::Filters).contains("conv1 6 × 1×5×5, conv2 16 × 6×5×5"), "{}", note(HelpTopic::Filters));
        assert!(note(HelpTopic::Inspector).contains("conv2 5×5, stride 1, pad 0"), "{}", note(HelpTopic::Inspector));
        assert_eq!(
            note(HelpTopic::Fc1),
            "In this network fc1 has 120 units, each with 400 weights (one per value of 16×5×5)."
        );
        assert!(note(HelpTopic::Curves).contains("W_fc1, W_fc2, W_fc3"), "{}", note(HelpTopic::Curves));
        let tiny = view("tiny");
        assert!(network_note(HelpTopic::Outputs, &tiny).unwrap().contains("no hidden dense layer"));
        let flat = view("flatten, fc(10)");
        assert!(network_note(HelpTopic::FeatureMaps, &flat).unwrap().contains("no feature maps"));
        assert!(network_note(HelpTopic::Filters, &flat).unwrap().contains("no conv layer"));
        assert!(network_note(HelpTopic::Inspector, &flat).is_none());
    }

    #[test]
    fn with_adam_the_posts_update_note_gives_way_to_adams_sentence() {
        let post = view("post");
        assert!(phase_note(&post, Phase::Update, OptimizerKind::Sgd).contains("v = μ·v − lr·dW"));
        let adam = phase_note(&post, Phase::Update, OptimizerKind::Adam);
        assert!(
            !adam.contains("v = μ·v")
                && adam == post.plan.phase_sentence(Phase::Update, OptimizerKind::Adam.optimizer())
        );
    }
}
