//! What the layers after `flatten` look at: the exact class evidence of one image, and one unit
//! of the first fc as maps.
//!
//! Call `x` what `flatten` takes: the `C × H × W` maps of the layer before it (or the image,
//! when `flatten` comes first). After `flatten` a network has only fc layers and activations.
//! When every one of those activations is a ReLU, hold each ReLU's on/off pattern for this
//! image fixed (`m_j = 1` where its input was positive, else 0): a ReLU then multiplies by
//! `m_j`, and every class score is exactly linear in `x`. With one ReLU between two fc layers:
//!
//! ```text
//! logit_k = b2_k + Σ_j W2[k,j]·m_j·(b1_j + Σ_i W1[j,i]·x_i)
//!         = (b2_k + Σ_j W2[k,j]·m_j·b1_j)  +  Σ_i x_i · (Σ_j W2[k,j]·m_j·W1[j,i])
//!           └──────── bias term ─────────┘        └──── evidence of position i ───┘
//! ```
//!
//! With a single fc (`tiny`) the evidence is simply `x_i · W[k,i]`; with more fc layers
//! (`lenet5`: fc → relu → fc → relu → fc) the effective weights are the product
//! `W3·diag(m₂)·W2·diag(m₁)·W1`. In every case the evidence map of class `k` sums, with its
//! bias term, to the score itself: an exact decomposition, not a gradient-based approximation.
//! A tanh or a sigmoid after `flatten` is curved, with no pattern to hold fixed, so there the
//! decomposition does not exist ([`evidence_support`] says so).

use crate::engine::{EngineError, Float, dense};

use super::named::NAMED;
use super::sequential::{ParamTensor, Tensors};
use super::shape::{Plan, Shape};
use super::spec::LayerSpec;

/// The layers of a network whose class evidence is exact, by their position in the line (see
/// [`evidence_support`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceLayers {
    /// The layer whose output `flatten` takes (the maps `x`), or `None` when `flatten` is the
    /// first layer and `x` is the image.
    pub source: Option<usize>,
    /// The `flatten` layer.
    pub flatten: usize,
    /// The first fc after `flatten` (fc1): the FC view shows its units.
    pub first_fc: usize,
    /// The ReLU right after the first fc, when there is one (fc1 → relu → …): its pattern is
    /// the "active units" of the FC view.
    pub relu: Option<usize>,
    /// The last fc, whose outputs are the class scores (the same as `first_fc` with one fc).
    pub last_fc: usize,
    /// Every layer after `flatten`, in order: fc layers and ReLUs.
    pub chain: Vec<usize>,
    /// The fc layers after `flatten`, in order (`first_fc` … `last_fc`).
    pub fcs: Vec<usize>,
    /// Channels of `x`.
    pub channels: usize,
    /// Height of `x`'s maps.
    pub height: usize,
    /// Width of `x`'s maps.
    pub width: usize,
}

impl EvidenceLayers {
    /// Values of `x` for one image: `C·H·W`, the first fc's inputs.
    pub fn inputs(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True when each unit of the first fc reaches the classes through the last fc alone (fc1 →
    /// relu → fc2, or fc1 → fc2), so that its vote for each class is a fixed weight
    /// ([`FcUnit::class_weights`]). False with one fc (its units are the classes) and with more
    /// than two (a unit's effect on the scores then depends on the image).
    pub fn unit_votes(&self) -> bool {
        self.fcs.len() == 2
    }

    /// `x` of image `image` in a batch's tensors (`flatten`'s output, which is its input's
    /// values), or `None` if there is no such image or the tensors are of another network.
    pub fn x_of<'a, T: Float>(&self, tensors: &'a Tensors<T>, image: usize) -> Option<&'a [T]> {
        let per = self.inputs();
        let all = tensors.output(self.flatten);
        if all.len() != tensors.n * per {
            return None;
        }
        all.get(image * per..(image + 1) * per)
    }

    /// One sentence for a student on what the evidence maps are, e.g. "Exact: with relu2's
    /// on/off pattern for this image held fixed, each class score is its bias term plus the sum
    /// of the 32×28×28 values conv2 hands to flatten, each times an effective weight."
    pub fn sentence(&self, plan: &Plan) -> String {
        let source = match self.source.and_then(|i| plan.layers.get(i)) {
            Some(l) => format!("{} hands to flatten", l.name),
            None => "of the image".to_string(),
        };
        let size = format!("{}×{}×{}", self.channels, self.height, self.width);
        let relus: Vec<&str> = self
            .chain
            .iter()
            .filter_map(|&i| plan.layers.get(i))
            .filter(|l| l.spec == LayerSpec::Relu)
            .map(|l| l.name.as_str())
            .collect();
        let held = match relus.as_slice() {
            [] => String::new(),
            [one] => format!("with {one}'s on/off pattern for this image held fixed, "),
            many => format!("with the on/off patterns of {} for this image held fixed, ", many.join(", ")),
        };
        let weight = if self.fcs.len() == 1 { "its weight in the fc" } else { "an effective weight" };
        let mut s = format!(
            "Exact: {held}each class score is its bias term plus the sum of the {size} values {source}, each times {weight}."
        );
        if self.height == 1 && self.width == 1 {
            s.push_str(" The maps are 1×1: the evidence is one number per channel.");
        }
        s
    }

}

/// Which layers of `plan` play `x`, fc1, its ReLU and the last fc, when the class evidence is
/// exact (every activation after `flatten` is a ReLU); otherwise one sentence a student
/// understands on why it is not.
pub fn evidence_support(plan: &Plan) -> Result<EvidenceLayers, String> {
    let Some(flatten) = plan.layers.iter().position(|l| l.spec == LayerSpec::Flatten) else {
        return Err("this network has no flatten, so there are no maps for the fc layers to weigh".into());
    };
    let (channels, height, width) = match plan.layers[flatten].input {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(n) => {
            return Err(format!(
                "flatten's input is already a vector of {n} values, not maps, so there are no maps to show the evidence on"
            ));
        }
    };
    let after = &plan.layers[flatten + 1..];
    let tail = after.iter().map(|l| l.spec.to_string()).collect::<Vec<_>>().join(" → ");
    let who = NAMED
        .iter()
        .find(|m| m.spec(plan.classes).is_ok_and(|s| s == plan.spec))
        .map_or_else(|| "this network".to_string(), |m| m.name.to_string());
    if let Some(curved) = after.iter().find(|l| matches!(l.spec, LayerSpec::Tanh | LayerSpec::Sigmoid)) {
        return Err(format!(
            "the class evidence is exact only when every activation after flatten is a ReLU (held at its on/off pattern a ReLU multiplies by 1 or 0, a {} is curved); {who} has {tail} after flatten",
            curved.spec
        ));
    }
    if let Some(other) = after.iter().find(|l| !matches!(l.spec, LayerSpec::Fc { .. } | LayerSpec::Relu)) {
        return Err(format!("{} comes after flatten: the evidence follows only fc layers and ReLUs", other.name));
    }
    let fcs: Vec<usize> = after.iter().filter(|l| matches!(l.spec, LayerSpec::Fc { .. })).map(|l| l.index).collect();
    let (Some(&first_fc), Some(&last_fc)) = (fcs.first(), fcs.last()) else {
        return Err(format!("{who} has no fc after flatten, so no layer turns the maps into class scores"));
    };
    let relu = plan.layers.get(first_fc + 1).filter(|l| l.spec == LayerSpec::Relu).map(|l| l.index);
    Ok(EvidenceLayers {
        source: flatten.checked_sub(1),
        flatten,
        first_fc,
        relu,
        last_fc,
        chain: after.iter().map(|l| l.index).collect(),
        fcs,
        channels,
        height,
        width,
    })
}

/// One ReLU's on/off pattern for the image, held fixed by the decomposition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReluPattern {
    /// The ReLU's position in the line.
    pub layer: usize,
    /// Its student name (`relu2`).
    pub name: String,
    /// True where its input was positive.
    pub on: Vec<bool>,
}

/// The class evidence of one image: how much each value of `x` adds to each class score.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence<T> {
    /// `[CLASSES, C, H, W]`: `x_i · E[k,i]`, `E` being the effective weights of class `k`
    /// with the ReLU patterns held fixed (`W2·diag(m)·W1` for fc → relu → fc, `W` for one fc).
    pub maps: Vec<T>,
    /// `[CLASSES]`: the part of each score no position explains (`b2_k + Σ_j W2[k,j]·m_j·b1_j`
    /// for fc → relu → fc, `b_k` for one fc).
    pub bias_terms: Vec<T>,
    /// `[CLASSES]`: the class scores, computed the ordinary way, layer by layer.
    pub logits: Vec<T>,
    /// Every ReLU after `flatten`, in order, with its pattern.
    pub patterns: Vec<ReluPattern>,
    /// Channels of `x`.
    pub channels: usize,
    /// Height of `x`'s maps.
    pub height: usize,
    /// Width of `x`'s maps.
    pub width: usize,
}

impl<T: Float> Evidence<T> {
    /// The evidence of class `k` (`C × H × W`), or `None` if there is no such class.
    pub fn class_map(&self, k: usize) -> Option<&[T]> {
        let per = self.channels * self.height * self.width;
        if k >= self.logits.len() {
            return None;
        }
        self.maps.get(k * per..(k + 1) * per)
    }

    /// The evidence of class `k` in channel `c` (`H × W`), or `None` if there is no such one.
    pub fn channel_map(&self, k: usize, c: usize) -> Option<&[T]> {
        let per = self.height * self.width;
        if c >= self.channels {
            return None;
        }
        self.class_map(k)?.get(c * per..(c + 1) * per)
    }

    /// The on/off pattern of the ReLU at position `layer` in the line (for the FC view, the
    /// one of [`EvidenceLayers::relu`]), or `None` if it is not a ReLU after `flatten`.
    pub fn active(&self, layer: usize) -> Option<&[bool]> {
        self.patterns.iter().find(|p| p.layer == layer).map(|p| p.on.as_slice())
    }
}

/// One unit of the first fc after `flatten`, as maps.
#[derive(Clone, Debug, PartialEq)]
pub struct FcUnit<T> {
    /// The first fc's position in the line.
    pub layer: usize,
    /// The unit (row of the first fc's weights).
    pub unit: usize,
    /// Its weights, `C × H × W`: the maps it multiplies `x` with.
    pub weights: Vec<T>,
    /// Its bias.
    pub bias: T,
    /// `[CLASSES]`: the last fc's weights from this unit to each class (how it votes), when it
    /// reaches the classes through the last fc alone ([`EvidenceLayers::unit_votes`]); `None`
    /// when it is itself a class score (one fc) or reaches them through more layers.
    pub class_weights: Option<Vec<T>>,
    /// Channels of the maps.
    pub channels: usize,
    /// Height of the maps.
    pub height: usize,
    /// Width of the maps.
    pub width: usize,
}

/// The class evidence of one image, from `x`, the `C × H × W` values `flatten` takes (see
/// [`EvidenceLayers::x_of`]), with the parameters `params` of a network of `plan`.
///
/// # Shapes
/// x `[C·H·W]` → maps `[CLASSES, C, H, W]`, bias_terms `[CLASSES]`, logits `[CLASSES]`.
pub fn class_evidence<T: Float>(plan: &Plan, params: &[ParamTensor<T>], x: &[T]) -> Result<Evidence<T>, EngineError> {
    let layers = evidence_support(plan).map_err(EngineError::Config)?;
    let inputs = layers.inputs();
    if x.len() != inputs {
        return Err(EngineError::Input(format!(
            "the class evidence takes the {}×{}×{} = {inputs} values flatten takes, got {}",
            layers.channels,
            layers.height,
            layers.width,
            x.len()
        )));
    }

    // The ordinary forward pass through the chain, keeping each ReLU's pattern.
    let mut v = x.to_vec();
    let mut patterns = Vec::new();
    for &i in &layers.chain {
        let l = &plan.layers[i];
        match l.spec {
            LayerSpec::Fc { out } => {
                let (w, b) = (tensor(plan, params, i, "weight")?, tensor(plan, params, i, "bias")?);
                let mut y = vec![T::ZERO; out];
                dense::forward(1, v.len(), out, &v, w, b, &mut y);
                v = y;
            }
            _ => {
                let on: Vec<bool> = v.iter().map(|z| *z > T::ZERO).collect();
                v.iter_mut().zip(&on).filter(|(_, on)| !**on).for_each(|(z, _)| *z = T::ZERO);
                patterns.push(ReluPattern { layer: i, name: l.name.clone(), on });
            }
        }
    }
    let logits = v;
    let classes = logits.len();

    // From the scores back to x: A `[CLASSES, width]` holds the effective weights of each class
    // on the current layer's output, c the bias terms gathered so far. An fc adds A·b to c and
    // turns A into A·W; a ReLU zeroes A's columns of the units that were off.
    let mut a: Option<Vec<T>> = None;
    let mut c = vec![T::ZERO; classes];
    let mut pattern = patterns.iter().rev();
    for &i in layers.chain.iter().rev() {
        match plan.layers[i].spec {
            LayerSpec::Fc { out } => {
                let (w, b) = (tensor(plan, params, i, "weight")?, tensor(plan, params, i, "bias")?);
                let inp = plan.layers[i].input.len();
                a = Some(match a {
                    // The last fc: A = W and c = b.
                    None => {
                        c.copy_from_slice(b);
                        w.to_vec()
                    }
                    Some(a) => {
                        for (ck, row) in c.iter_mut().zip(a.chunks(out)) {
                            *ck += row.iter().zip(b).map(|(a, b)| *a * *b).sum::<T>();
                        }
                        let mut next = vec![T::ZERO; classes * inp];
                        T::gemm(classes, inp, out, &a, false, w, false, &mut next, false, false);
                        next
                    }
                });
            }
            _ => {
                let (Some(a), Some(p)) = (a.as_mut(), pattern.next()) else {
                    // A ReLU after the last fc would be a class score's activation: the planner
                    // ends every line in an fc, so this is a network this module was not told of.
                    return Err(EngineError::Config(format!("{} comes after the last fc", plan.layers[i].name)));
                };
                let width = p.on.len();
                for row in a.chunks_mut(width) {
                    row.iter_mut().zip(&p.on).filter(|(_, on)| !**on).for_each(|(v, _)| *v = T::ZERO);
                }
            }
        }
    }
    let mut maps = a.unwrap_or_default();
    if maps.len() != classes * inputs {
        return Err(EngineError::Config(format!(
            "the effective weights have {} values, not {classes}×{inputs}",
            maps.len()
        )));
    }
    for row in maps.chunks_mut(inputs) {
        row.iter_mut().zip(x).for_each(|(e, x)| *e *= *x);
    }
    Ok(Evidence {
        maps,
        bias_terms: c,
        logits,
        patterns,
        channels: layers.channels,
        height: layers.height,
        width: layers.width,
    })
}

/// Unit `unit` of the first fc after `flatten`: its weights as `C × H × W` maps, its bias, and,
/// when it votes through the last fc alone, the last fc's weights from it to each class.
pub fn fc_unit<T: Float>(plan: &Plan, params: &[ParamTensor<T>], unit: usize) -> Result<FcUnit<T>, EngineError> {
    let layers = evidence_support(plan).map_err(EngineError::Config)?;
    let fc = &plan.layers[layers.first_fc];
    let units = fc.output.len();
    if unit >= units {
        return Err(EngineError::Input(format!("{} has units 0 to {}, not {unit}", fc.name, units.saturating_sub(1))));
    }
    let inputs = layers.inputs();
    let (w, b) = (tensor(plan, params, fc.index, "weight")?, tensor(plan, params, fc.index, "bias")?);
    let class_weights = if layers.unit_votes() {
        let w2 = tensor(plan, params, layers.last_fc, "weight")?;
        Some(w2.chunks(units).map(|row| row[unit]).collect())
    } else {
        None
    };
    Ok(FcUnit {
        layer: fc.index,
        unit,
        weights: w[unit * inputs..(unit + 1) * inputs].to_vec(),
        bias: b[unit],
        class_weights,
        channels: layers.channels,
        height: layers.height,
        width: layers.width,
    })
}

/// The values of layer `layer`'s `kind` (`weight` or `bias`) among `params`, checked against the
/// shape the plan gives it.
fn tensor<'a, T>(plan: &Plan, params: &'a [ParamTensor<T>], layer: usize, kind: &str) -> Result<&'a [T], EngineError> {
    let name = format!("{layer}.{kind}");
    let student = plan.layers.get(layer).map_or_else(String::new, |l| format!(" ({}'s {kind})", l.name));
    let want = plan.layers.get(layer).and_then(|l| l.param_shapes().into_iter().find(|(n, _)| *n == name));
    let Some((_, shape)) = want else {
        return Err(EngineError::Config(format!("layer {layer} has no tensor `{name}`")));
    };
    let Some(p) = params.iter().find(|p| p.name == name) else {
        return Err(EngineError::Config(format!("no parameter tensor `{name}`{student} was given")));
    };
    if p.shape != shape || p.data.len() != shape.iter().product::<usize>() {
        return Err(EngineError::Config(format!(
            "`{name}`{student} has shape {:?} ({} values) but the network needs {shape:?}",
            p.shape,
            p.data.len()
        )));
    }
    Ok(&p.data)
}
