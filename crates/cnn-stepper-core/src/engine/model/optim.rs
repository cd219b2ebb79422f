//! The optimizers: SGD (with or without momentum, exactly the post's network's
//! [`sgd_update`](crate::engine::params::sgd_update)) and Adam (PyTorch's bias-corrected form).
//!
//! The L2 term is part of the loss, so its gradient `reg·W` is already in the fc weights'
//! gradients when an optimizer sees them: with Adam this is PyTorch's `Adam(weight_decay=reg)`
//! restricted to the fc weights (not AdamW's decoupled decay).

use rayon::prelude::*;

use crate::engine::{Float, OptimizerKind, Real};

/// Elements per parallel block: the same blocks as the post's network's update.
const BLOCK: usize = 1 << 14;

/// How the update phase changes the parameters. The learning rate (and SGD's momentum) come
/// from [`Hyper`](crate::engine::Hyper).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// `v = μ·v − lr·g; p = p + v` with μ = `Hyper::momentum` (0: the post's plain SGD).
    Sgd,
    /// Adam with PyTorch's defaults for the constants and its bias correction.
    Adam {
        /// Decay of the mean of the gradients (PyTorch: 0.9).
        beta1: f64,
        /// Decay of the mean of the squared gradients (PyTorch: 0.999).
        beta2: f64,
        /// Added to the denominator (PyTorch: 1e-8).
        eps: f64,
    },
}

impl Optimizer {
    /// Adam with PyTorch's default constants.
    pub const ADAM: Optimizer = Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

    /// The lower-case name used on the command line and in files (`sgd`, `adam`).
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Adam { .. } => "adam",
        }
    }
}

// Here rather than in `config`, so that `config` (which `model` reads) does not import `model`.
impl OptimizerKind {
    /// The engine's optimizer for this choice (Adam with PyTorch's constants).
    pub fn optimizer(self) -> Optimizer {
        match self {
            OptimizerKind::Sgd => Optimizer::Sgd,
            OptimizerKind::Adam => Optimizer::ADAM,
        }
    }
}

/// One SGD-with-momentum step on one tensor: `v = μ·v − lr·g; p = p + v`. `v` then holds the
/// change this step made (ΔW), as in the post's network.
pub fn sgd_step<T: Float>(p: &mut [T], g: &[T], v: &mut [T], lr: T, momentum: T) {
    p.par_chunks_mut(BLOCK).zip(g.par_chunks(BLOCK)).zip(v.par_chunks_mut(BLOCK)).for_each(|((p, g), v)| {
        for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
            *v = momentum * *v - lr * *g;
            *p += *v;
        }
    });
}

/// Adam's state for one tensor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdamState<T> {
    /// Running mean of the gradients (PyTorch's `exp_avg`).
    pub m: Vec<T>,
    /// Running mean of the squared gradients (`exp_avg_sq`).
    pub v: Vec<T>,
}

/// One Adam step on one tensor, the `step`-th (from 1), in the order of PyTorch's
/// single-tensor implementation:
///
/// ```text
/// m = m + (1 − β1)·(g − m)            v = β2·v + (1 − β2)·g·g
/// denom = √v / √(1 − β2^step) + ε     p = p − lr / (1 − β1^step) · m / denom
/// ```
///
/// `delta` receives the change made to each parameter (ΔW).
pub fn adam_step<T: Float>(
    p: &mut [T],
    g: &[T],
    state: &mut AdamState<T>,
    delta: &mut [T],
    lr: f64,
    step: u64,
    beta1: f64,
    beta2: f64,
    eps: f64,
) {
    state.m.resize(p.len(), T::ZERO);
    state.v.resize(p.len(), T::ZERO);
    let step = step.clamp(1, i32::MAX as u64) as i32;
    let bc1 = 1.0 - beta1.powi(step);
    let bc2_sqrt = (1.0 - beta2.powi(step)).sqrt();
    let from = <T as Real>::from_f64;
    let (w1, b2, w2) = (from(1.0 - beta1), from(beta2), from(1.0 - beta2));
    let (step_size, bc2_sqrt, eps) = (from(lr / bc1), from(bc2_sqrt), from(eps));
    p.par_chunks_mut(BLOCK)
        .zip(g.par_chunks(BLOCK))
        .zip(state.m.par_chunks_mut(BLOCK))
        .zip(state.v.par_chunks_mut(BLOCK))
        .zip(delta.par_chunks_mut(BLOCK))
        .for_each(|((((p, g), m), v), d)| {
            for ((((p, &g), m), v), d) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()).zip(d.iter_mut()) {
                *m += w1 * (g - *m);
                *v = *v * b2 + w2 * g * g;
                // √ in f64 rounded to T is the correctly rounded √ in T.
                let denom = from(v.to_f64().sqrt()) / bc2_sqrt + eps;
                let old = *p;
                *p += -step_size * *m / denom;
                *d = *p - old;
            }
        });
}
