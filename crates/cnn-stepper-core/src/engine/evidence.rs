//! What FC1 looks at: one hidden unit's weights as maps, and the exact class evidence of one
//! image.
//!
//! With no pooling, FC1's input is conv2's maps flattened (`F2 × H2 × W2`, 25,088 values for the
//! post), so row `j` of FC1's weights *is* a stack of `F2` maps of `H2 × W2`.
//!
//! For one image, hold FC1's ReLU pattern fixed (`m_j = 1` if unit `j` was positive, else 0).
//! Then every class score is exactly linear in FC1's input `x`:
//!
//! ```text
//! logit_k = b2_k + Σ_j W2[k,j]·m_j·(b1_j + Σ_i W1[j,i]·x_i)
//!         = (b2_k + Σ_j W2[k,j]·m_j·b1_j)  +  Σ_i x_i · (Σ_j W2[k,j]·m_j·W1[j,i])
//!           └──────── bias term ─────────┘        └──── evidence of position i ───┘
//! ```
//!
//! so the evidence map of class `k` sums, with the bias term, to the logit itself: an exact
//! decomposition, not a gradient-based approximation.

use super::params::flat;
use super::{EngineError, Float, ModelConfig, Params, dense};

/// The class evidence of one image: how much each FC1 input position adds to each class score.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence<T> {
    /// `[CLASSES, FLAT]`: `x_i · Σ_j W2[k,j]·m_j·W1[j,i]` for class `k` and FC1 input `i`
    /// (FLAT = `F2 × H2 × W2`, in conv2's map layout).
    pub maps: Vec<T>,
    /// `[CLASSES]`: `b2_k + Σ_j W2[k,j]·m_j·b1_j`, the part of each logit no position explains.
    pub bias_terms: Vec<T>,
    /// `[CLASSES]`: the class scores, computed the ordinary way (FC1, ReLU, FC2).
    pub logits: Vec<T>,
    /// `[HIDDEN]`: the ReLU pattern held fixed: true where FC1 unit `j` was positive.
    pub active: Vec<bool>,
}

impl<T: Float> Evidence<T> {
    /// The evidence map of class `k` (`F2 × H2 × W2`), or `None` if there is no such class.
    pub fn class_map(&self, k: usize) -> Option<&[T]> {
        let per = self.maps.len() / self.logits.len().max(1);
        self.maps.get(k * per..(k + 1) * per)
    }
}

/// The class evidence of one image, from FC1's input `x` (conv2's output, or its ReLU when the
/// network has one there).
///
/// # Shapes
/// x `[FLAT]` → maps `[CLASSES, FLAT]`, bias_terms `[CLASSES]`, logits `[CLASSES]`,
/// active `[HIDDEN]`.
pub fn class_evidence<T: Float>(cfg: &ModelConfig, params: &Params<T>, x: &[T]) -> Result<Evidence<T>, EngineError> {
    let (inputs, hidden, classes) = (cfg.flat_len(), cfg.hidden, cfg.classes);
    if x.len() != inputs {
        return Err(EngineError::Input(format!("FC1 takes {inputs} values, got {}", x.len())));
    }
    if let Some((name, have, want)) = params.shape_mismatch(cfg) {
        return Err(EngineError::Config(format!("{name} has shape {have:?} but the network needs {want:?}")));
    }
    let (w1, b1, w2, b2) = (flat(&params.fc1_w), flat(&params.fc1_b), flat(&params.fc2_w), flat(&params.fc2_b));

    // The ordinary forward pass of the dense layers: the ReLU pattern and the logits.
    let mut z1 = vec![T::ZERO; hidden];
    dense::forward(1, inputs, hidden, x, w1, b1, &mut z1);
    let active: Vec<bool> = z1.iter().map(|v| *v > T::ZERO).collect();
    let h1: Vec<T> = z1.iter().zip(&active).map(|(v, a)| if *a { *v } else { T::ZERO }).collect();
    let mut logits = vec![T::ZERO; classes];
    dense::forward(1, hidden, classes, &h1, w2, b2, &mut logits);

    // A = W2·diag(m): FC2's weights with the inactive units' columns zeroed.
    let mut a = w2.to_vec();
    for row in a.chunks_mut(hidden) {
        row.iter_mut().zip(&active).filter(|(_, on)| !**on).for_each(|(v, _)| *v = T::ZERO);
    }
    let bias_terms: Vec<T> =
        a.chunks(hidden).zip(b2).map(|(row, b)| *b + row.iter().zip(b1).map(|(w, b)| *w * *b).sum::<T>()).collect();
    // E = A·W1 `[CLASSES, FLAT]`: the effective linear weights of each class (10·100·25,088
    // multiply-adds, a few milliseconds), then the evidence is x ⊙ E row by row.
    let mut maps = vec![T::ZERO; classes * inputs];
    T::gemm(classes, inputs, hidden, &a, false, w1, false, &mut maps, false, false);
    for row in maps.chunks_mut(inputs) {
        row.iter_mut().zip(x).for_each(|(e, x)| *e *= *x);
    }
    Ok(Evidence { maps, bias_terms, logits, active })
}

/// FC1 unit `unit`'s weights (`F2 × H2 × W2`, the maps it multiplies conv2's output with), its
/// bias, and FC2's weights from it to each class (`[CLASSES]`: how it votes).
pub fn fc1_unit<T: Float>(
    cfg: &ModelConfig,
    params: &Params<T>,
    unit: usize,
) -> Result<(Vec<T>, T, Vec<T>), EngineError> {
    if unit >= cfg.hidden {
        return Err(EngineError::Input(format!("FC1 has units 0 to {}, not {unit}", cfg.hidden - 1)));
    }
    if let Some((name, have, want)) = params.shape_mismatch(cfg) {
        return Err(EngineError::Config(format!("{name} has shape {have:?} but the network needs {want:?}")));
    }
    let inputs = cfg.flat_len();
    let weights = flat(&params.fc1_w)[unit * inputs..(unit + 1) * inputs].to_vec();
    let votes = flat(&params.fc2_w).chunks(cfg.hidden).map(|row| row[unit]).collect();
    Ok((weights, flat(&params.fc1_b)[unit], votes))
}
