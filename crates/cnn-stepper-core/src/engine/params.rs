//! The eight parameter tensors, their initialisation, and the SGD update.

use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};
use pulp::{Arch, Simd, WithSimd};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{Float, Hyper, Init, ModelConfig, Real};

/// Parameter names in PyTorch's `state_dict` order and spelling.
pub const PARAM_NAMES: [&str; 8] =
    ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"];

/// The network's parameters (or a same-shaped set of gradients or velocities), laid out as
/// PyTorch's `Conv2d` and `Linear` lay them out.
#[derive(Clone, Debug, PartialEq)]
pub struct Params<T> {
    /// `[F1, C, K, K]`.
    pub conv1_w: Array4<T>,
    /// `[F1]`.
    pub conv1_b: Array1<T>,
    /// `[F2, F1, K, K]`.
    pub conv2_w: Array4<T>,
    /// `[F2]`.
    pub conv2_b: Array1<T>,
    /// `[HIDDEN, FLAT]` (out, in).
    pub fc1_w: Array2<T>,
    /// `[HIDDEN]`.
    pub fc1_b: Array1<T>,
    /// `[CLASSES, HIDDEN]`.
    pub fc2_w: Array2<T>,
    /// `[CLASSES]`.
    pub fc2_b: Array1<T>,
}

/// A flat view of an array the engine allocated itself (always standard layout).
#[allow(clippy::expect_used)] // Every array here is built by `zeros`/`from_shape_vec`: contiguous.
pub(crate) fn flat<T, D: ndarray::Dimension>(a: &ndarray::Array<T, D>) -> &[T] {
    a.as_slice().expect("engine arrays are contiguous")
}

/// Mutable counterpart of [`flat`].
#[allow(clippy::expect_used)] // As above.
pub(crate) fn flat_mut<T, D: ndarray::Dimension>(a: &mut ndarray::Array<T, D>) -> &mut [T] {
    a.as_slice_mut().expect("engine arrays are contiguous")
}

impl<T: Float> Params<T> {
    /// The shape of each tensor, in [`PARAM_NAMES`] order.
    pub fn shapes(cfg: &ModelConfig) -> [Vec<usize>; 8] {
        let k = cfg.kernel;
        [
            vec![cfg.conv1_filters, cfg.in_channels, k, k],
            vec![cfg.conv1_filters],
            vec![cfg.conv2_filters, cfg.conv1_filters, k, k],
            vec![cfg.conv2_filters],
            vec![cfg.hidden, cfg.flat_len()],
            vec![cfg.hidden],
            vec![cfg.classes, cfg.hidden],
            vec![cfg.classes],
        ]
    }

    /// All zeros.
    pub fn zeros(cfg: &ModelConfig) -> Self {
        let k = cfg.kernel;
        Self {
            conv1_w: Array4::from_elem((cfg.conv1_filters, cfg.in_channels, k, k), T::ZERO),
            conv1_b: Array1::from_elem(cfg.conv1_filters, T::ZERO),
            conv2_w: Array4::from_elem((cfg.conv2_filters, cfg.conv1_filters, k, k), T::ZERO),
            conv2_b: Array1::from_elem(cfg.conv2_filters, T::ZERO),
            fc1_w: Array2::from_elem((cfg.hidden, cfg.flat_len()), T::ZERO),
            fc1_b: Array1::from_elem(cfg.hidden, T::ZERO),
            fc2_w: Array2::from_elem((cfg.classes, cfg.hidden), T::ZERO),
            fc2_b: Array1::from_elem(cfg.classes, T::ZERO),
        }
    }

    /// Fresh weights drawn from `seed`; biases zero.
    pub fn init(cfg: &ModelConfig, init: Init, seed: u64) -> Self {
        let mut p = Self::zeros(cfg);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Stream 1 keeps init independent of the batch sampler, which uses stream 0 of the seed.
        rng.set_stream(1);
        let fan_in = [
            cfg.in_channels * cfg.kernel * cfg.kernel,
            cfg.conv1_filters * cfg.kernel * cfg.kernel,
            cfg.flat_len(),
            cfg.hidden,
        ];
        let weights =
            [flat_mut(&mut p.conv1_w), flat_mut(&mut p.conv2_w), flat_mut(&mut p.fc1_w), flat_mut(&mut p.fc2_w)];
        for (w, fan_in) in weights.into_iter().zip(fan_in) {
            let std = match init {
                Init::Post => 1e-4,
                Init::He => (2.0 / fan_in as f64).sqrt(),
            };
            for v in w.iter_mut() {
                *v = <T as Real>::from_f64(std * standard_normal(&mut rng));
            }
        }
        p
    }

    /// The first tensor whose shape differs from what `cfg` needs: (name, has, needs).
    pub fn shape_mismatch(&self, cfg: &ModelConfig) -> Option<(&'static str, Vec<usize>, Vec<usize>)> {
        let have = [
            self.conv1_w.shape(),
            self.conv1_b.shape(),
            self.conv2_w.shape(),
            self.conv2_b.shape(),
            self.fc1_w.shape(),
            self.fc1_b.shape(),
            self.fc2_w.shape(),
            self.fc2_b.shape(),
        ];
        PARAM_NAMES
            .iter()
            .zip(Self::shapes(cfg))
            .zip(have)
            .find(|((_, want), have)| want.as_slice() != *have)
            .map(|((name, want), have)| (*name, have.to_vec(), want))
    }

    /// True if every tensor is contiguous in standard (row-major) layout.
    pub fn slices_checked(&self) -> bool {
        self.conv1_w.is_standard_layout()
            && self.conv1_b.is_standard_layout()
            && self.conv2_w.is_standard_layout()
            && self.conv2_b.is_standard_layout()
            && self.fc1_w.is_standard_layout()
            && self.fc1_b.is_standard_layout()
            && self.fc2_w.is_standard_layout()
            && self.fc2_b.is_standard_layout()
    }

    /// A copy with every tensor in standard layout.
    pub fn to_standard_layout(&self) -> Self {
        Self {
            conv1_w: self.conv1_w.as_standard_layout().into_owned(),
            conv1_b: self.conv1_b.as_standard_layout().into_owned(),
            conv2_w: self.conv2_w.as_standard_layout().into_owned(),
            conv2_b: self.conv2_b.as_standard_layout().into_owned(),
            fc1_w: self.fc1_w.as_standard_layout().into_owned(),
            fc1_b: self.fc1_b.as_standard_layout().into_owned(),
            fc2_w: self.fc2_w.as_standard_layout().into_owned(),
            fc2_b: self.fc2_b.as_standard_layout().into_owned(),
        }
    }

    /// The tensors as flat slices, in [`PARAM_NAMES`] order.
    pub fn slices(&self) -> [&[T]; 8] {
        [
            flat(&self.conv1_w),
            flat(&self.conv1_b),
            flat(&self.conv2_w),
            flat(&self.conv2_b),
            flat(&self.fc1_w),
            flat(&self.fc1_b),
            flat(&self.fc2_w),
            flat(&self.fc2_b),
        ]
    }

    /// The tensors as mutable flat slices, in [`PARAM_NAMES`] order.
    pub fn slices_mut(&mut self) -> [&mut [T]; 8] {
        [
            flat_mut(&mut self.conv1_w),
            flat_mut(&mut self.conv1_b),
            flat_mut(&mut self.conv2_w),
            flat_mut(&mut self.conv2_b),
            flat_mut(&mut self.fc1_w),
            flat_mut(&mut self.fc1_b),
            flat_mut(&mut self.fc2_w),
            flat_mut(&mut self.fc2_b),
        ]
    }

    /// Builds parameters from tensors given in [`PARAM_NAMES`] order; `None` if a length is off.
    pub fn from_vecs(cfg: &ModelConfig, data: [Vec<T>; 8]) -> Option<Self> {
        let shapes = Self::shapes(cfg);
        let mut arrays = Vec::with_capacity(8);
        for (v, shape) in data.into_iter().zip(shapes) {
            arrays.push(ArrayD::from_shape_vec(IxDyn(&shape), v).ok()?);
        }
        let mut it = arrays.into_iter();
        let mut next = || it.next();
        Some(Self {
            conv1_w: next()?.into_dimensionality().ok()?,
            conv1_b: next()?.into_dimensionality().ok()?,
            conv2_w: next()?.into_dimensionality().ok()?,
            conv2_b: next()?.into_dimensionality().ok()?,
            fc1_w: next()?.into_dimensionality().ok()?,
            fc1_b: next()?.into_dimensionality().ok()?,
            fc2_w: next()?.into_dimensionality().ok()?,
            fc2_b: next()?.into_dimensionality().ok()?,
        })
    }

    /// The same values in another float type.
    pub fn convert<U: Float>(&self) -> Params<U> {
        let c = |v: &T| <U as Real>::from_f64(v.to_f64());
        Params {
            conv1_w: self.conv1_w.map(c),
            conv1_b: self.conv1_b.map(c),
            conv2_w: self.conv2_w.map(c),
            conv2_b: self.conv2_b.map(c),
            fc1_w: self.fc1_w.map(c),
            fc1_b: self.fc1_b.map(c),
            fc2_w: self.fc2_w.map(c),
            fc2_b: self.fc2_b.map(c),
        }
    }

    /// Half the L2 penalty's sum: `0.5·(ΣW_fc1² + ΣW_fc2²)`.
    pub fn half_l2_of_dense(&self) -> T {
        <T as Real>::from_f64(
            0.5 * (sum_of_squares_blocked(flat(&self.fc1_w)) + sum_of_squares_blocked(flat(&self.fc2_w))),
        )
    }

    /// True if every value is finite.
    pub fn all_finite(&self) -> bool {
        self.slices().iter().all(|s| s.par_iter().all(|v| v.is_finite()))
    }
}

/// One SGD-with-momentum step: `v = μ·v − lr·g; p = p + v`. `v` then holds the update ΔW.
///
/// With `squares`, also returns each tensor's `(Σp², Σg²)` (new weights, the gradient used),
/// summed as [`sum_of_squares`] sums them, while each block is still in cache: the window's
/// Health tab needs them every step, and reading 20 MB again afterwards cost ~1.6 ms on one core.
pub fn sgd_update<T: Float>(
    params: &mut Params<T>,
    grads: &Params<T>,
    velocity: &mut Params<T>,
    hyper: &Hyper,
    squares: bool,
) -> Vec<(f64, f64)> {
    let lr = <T as Real>::from_f32(hyper.lr);
    let mu = <T as Real>::from_f32(hyper.momentum);
    let mut sums = Vec::new();
    for ((p, g), v) in params.slices_mut().into_iter().zip(grads.slices()).zip(velocity.slices_mut()) {
        let blocks: Vec<(f64, f64)> = p
            .par_chunks_mut(SQUARE_BLOCK)
            .zip(g.par_chunks(SQUARE_BLOCK))
            .zip(v.par_chunks_mut(SQUARE_BLOCK))
            .map(|((p, g), v)| {
                for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                    *v = mu * *v - lr * *g;
                    *p += *v;
                }
                if squares { (block_squares(p), block_squares(g)) } else { (0.0, 0.0) }
            })
            .collect();
        if squares {
            sums.push(blocks.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y)));
        }
    }
    sums
}

/// Elements per block of [`sum_of_squares`] (and of the update's parallel chunks, so the two
/// sum in the same order).
const SQUARE_BLOCK: usize = 1 << 14;

/// `Σ x²` in f64, over blocks summed in a fixed order: the same result on any schedule, and the
/// same as [`sgd_update`] returns.
pub fn sum_of_squares<T: Float>(v: &[T]) -> f64 {
    let blocks: Vec<f64> = v.par_chunks(SQUARE_BLOCK).map(block_squares).collect();
    blocks.iter().sum()
}

/// One block's `Σ x²` with eight running sums (one chain of dependent additions cannot be
/// vectorised and took 4× as long), compiled for the machine's vector unit at run time: with the
/// conversions to f64 this is arithmetic, not memory, bound.
fn block_squares<T: Float>(b: &[T]) -> f64 {
    Arch::new().dispatch(Squares(b))
}

struct Squares<'a, T>(&'a [T]);

impl<T: Float> WithSimd for Squares<'_, T> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> f64 {
        let square = |x: &T| x.to_f64() * x.to_f64();
        let mut lanes = [0.0_f64; 8];
        let mut chunks = self.0.chunks_exact(8);
        for c in &mut chunks {
            for (l, x) in lanes.iter_mut().zip(c) {
                *l += square(x);
            }
        }
        lanes.iter().sum::<f64>() + chunks.remainder().iter().map(square).sum::<f64>()
    }
}

/// A standard normal draw (Box–Muller), so init depends only on the seed's ChaCha stream.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // in (0, 1]: ln never sees 0
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `Σx²` as the L2 penalty sums a weight tensor: blocks of 4,096 summed in T with sixteen running
/// sums (vectorises), the blocks in f64 (keeps 2.5 M terms exact enough), in a fixed order so the
/// result does not depend on scheduling. Both networks use it, so their losses agree bit for bit.
pub fn sum_of_squares_blocked<T: Float>(s: &[T]) -> f64 {
    let blocks: Vec<f64> = s
        .par_chunks(4096)
        .map(|b| {
            let mut lanes = [T::ZERO; 16];
            let mut it = b.chunks_exact(16);
            for c in &mut it {
                for (l, v) in lanes.iter_mut().zip(c) {
                    *l += *v * *v;
                }
            }
            let tail: T = it.remainder().iter().map(|v| *v * *v).sum();
            lanes.iter().map(|l| l.to_f64()).sum::<f64>() + tail.to_f64()
        })
        .collect();
    blocks.iter().sum::<f64>()
}
