//! Fully connected layer in PyTorch's layout: weights `[out, in]`, `y = x·Wᵀ + b`.
//!
//! For FC1 at the batch sizes a lesson uses, each pass is a few multiply-adds per weight of
//! 2.5 M (10 MB): a general GEMM spends more on packing the weights into its own layout than on
//! the product. Small batches therefore take streaming kernels that read each weight once, in
//! order, for the forward pass (0.94 against 1.78 ms inside a batch-8 step) and the weight
//! gradient; the input gradient, and every pass of large batches, take the GEMM.

use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use super::float::Real;
use super::layout::per_thread;

/// Largest batch the streaming kernel takes.
const STREAM_MAX_BATCH: usize = 16;
/// Smallest weight matrix worth streaming: below it the weights stay in cache anyway.
const STREAM_MIN_WEIGHTS: usize = 1 << 16;

fn streams(n: usize, inputs: usize, outputs: usize) -> bool {
    n <= STREAM_MAX_BATCH && inputs * outputs >= STREAM_MIN_WEIGHTS
}

/// Forward: `y = x·Wᵀ + b`.
///
/// # Shapes
/// x `[N, IN]`, w `[OUT, IN]`, b `[OUT]` → y `[N, OUT]`.
pub fn forward<T: DenseKernels>(n: usize, inputs: usize, outputs: usize, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    if streams(n, inputs, outputs) {
        stream_forward(n, inputs, outputs, x, w, y);
    } else {
        T::gemm(n, outputs, inputs, x, false, w, true, y, false, false);
    }
    for row in y.chunks_mut(outputs) {
        row.iter_mut().zip(b).for_each(|(v, bias)| *v += *bias);
    }
}

/// Backward: `dW = dyᵀ·x + reg·W`, `db = Σ dy`, and `dx = dy·W` when asked for.
///
/// # Shapes
/// x `[N, IN]`, w `[OUT, IN]`, dy `[N, OUT]` → dw `[OUT, IN]`, db `[OUT]`, dx `[N, IN]`.
pub fn backward<T: DenseKernels>(
    n: usize,
    inputs: usize,
    outputs: usize,
    x: &[T],
    w: &[T],
    dy: &[T],
    reg: T,
    dw: &mut [T],
    db: &mut [T],
    dx: Option<&mut [T]>,
) {
    db.fill(T::ZERO);
    for row in dy.chunks(outputs) {
        db.iter_mut().zip(row).for_each(|(a, g)| *a += *g);
    }
    if streams(n, inputs, outputs) {
        stream_weight_grad(n, inputs, outputs, x, w, dy, reg, dw);
        if let Some(dx) = dx {
            T::gemm(n, inputs, outputs, dy, false, w, false, dx, false, false);
        }
        return;
    }
    // dW starts as reg·W and the GEMM adds onto it: one pass over the weights instead of two.
    dw.par_chunks_mut(1 << 14)
        .zip(w.par_chunks(1 << 14))
        .for_each(|(g, w)| g.iter_mut().zip(w).for_each(|(g, w)| *g = reg * *w));
    T::gemm(outputs, inputs, n, dy, true, x, false, dw, true, false);
    if let Some(dx) = dx {
        T::gemm(n, inputs, outputs, dy, false, w, false, dx, false, false);
    }
}

/// `y = x·Wᵀ` for a small batch, output units split across threads.
fn stream_forward<T: DenseKernels>(n: usize, inputs: usize, outputs: usize, x: &[T], w: &[T], y: &mut [T]) {
    let per = per_thread(outputs);
    // Each thread fills `[its units, N]`; transposed into `y` afterwards.
    let mut yt = vec![T::ZERO; outputs * n];
    yt.par_chunks_mut(per * n).zip(w.par_chunks(per * inputs)).for_each(|(yt, w)| {
        T::stream_dots(RowDots { n, inputs, x, w, out: yt });
    });
    for (j, col) in yt.chunks_exact(n).enumerate() {
        for (i, v) in col.iter().enumerate() {
            y[i * outputs + j] = *v;
        }
    }
}

/// `dW = dyᵀ·x + reg·W` for a small batch in one pass over the weights, rows split across
/// threads. (The input gradient stays with the GEMM: fused in here, its read-modify-writes of
/// `dx` cost more than the second read of the weights they save.)
fn stream_weight_grad<T: DenseKernels>(
    n: usize,
    inputs: usize,
    outputs: usize,
    x: &[T],
    w: &[T],
    dy: &[T],
    reg: T,
    dw: &mut [T],
) {
    let per = per_thread(outputs);
    dw.par_chunks_mut(per * inputs).zip(w.par_chunks(per * inputs)).enumerate().for_each(|(t, (dw, w))| {
        T::stream_grads(RowGrads { n, inputs, outputs, j0: t * per, x, w, dy, reg, dw });
    });
}

/// For rows `j0..` of the weights (`w`, `dw`): `dw[j] = reg·w[j] + Σ_i dy[i, j]·x[i]`.
#[doc(hidden)]
pub struct RowGrads<'a, T> {
    n: usize,
    inputs: usize,
    outputs: usize,
    j0: usize,
    x: &'a [T],
    w: &'a [T],
    dy: &'a [T],
    reg: T,
    dw: &'a mut [T],
}

/// `out[j, i] = x[i]·w[j]` for every row `j` of `w` and `i` of `x` (`n` rows of `inputs`).
#[doc(hidden)]
pub struct RowDots<'a, T> {
    n: usize,
    inputs: usize,
    x: &'a [T],
    w: &'a [T],
    out: &'a mut [T],
}

/// The plain loops, for `f64`.
struct PlainDots<'a, T>(RowDots<'a, T>);

impl<T: Real> WithSimd for PlainDots<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let RowDots { n, inputs, x, w, out } = self.0;
        for (row, out) in w.chunks_exact(inputs).zip(out.chunks_exact_mut(n)) {
            for (o, x) in out.iter_mut().zip(x.chunks_exact(inputs)) {
                *o = row.iter().zip(x).map(|(a, b)| *a * *b).sum();
            }
        }
    }
}

/// The plain loops, for `f64`.
struct PlainGrads<'a, T>(RowGrads<'a, T>);

impl<T: Real> WithSimd for PlainGrads<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let RowGrads { n, inputs, outputs, j0, x, w, dy, reg, dw } = self.0;
        for (j, (dw, w)) in dw.chunks_exact_mut(inputs).zip(w.chunks_exact(inputs)).enumerate() {
            dw.iter_mut().zip(w).for_each(|(d, w)| *d = reg * *w);
            for (i, x) in x.chunks_exact(inputs).take(n).enumerate() {
                let g = dy[i * outputs + j0 + j];
                dw.iter_mut().zip(x).for_each(|(d, x)| *d += g * *x);
            }
        }
    }
}

/// [`RowGrads`] in plain loops.
#[doc(hidden)]
pub fn grads_plain<T: Real>(k: RowGrads<'_, T>) {
    Arch::new().dispatch(PlainGrads(k));
}

/// [`RowGrads`] in explicit `f32` vectors.
#[doc(hidden)]
pub fn grads_f32(k: RowGrads<'_, f32>) {
    Arch::new().dispatch(SimdGrads(k));
}

/// [`RowDots`] in plain loops.
#[doc(hidden)]
pub fn dots_plain<T: Real>(k: RowDots<'_, T>) {
    Arch::new().dispatch(PlainDots(k));
}

/// [`RowDots`] in explicit `f32` vectors.
#[doc(hidden)]
pub fn dots_f32(k: RowDots<'_, f32>) {
    Arch::new().dispatch(SimdDots(k));
}

struct SimdDots<'a>(RowDots<'a, f32>);

impl WithSimd for SimdDots<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let RowDots { n, inputs, x, w, out } = self.0;
        let zero = simd.splat_f32s(0.0);
        for (j, row) in w.chunks_exact(inputs).enumerate() {
            let (wv, wt) = S::as_simd_f32s(row);
            let mut i = 0;
            // Four images a time, two accumulators each: eight independent chains keep both
            // FMA units busy, and each load of the weights serves four products.
            while i + 4 <= n {
                let xs: [(&[S::f32s], &[f32]); 4] =
                    std::array::from_fn(|r| S::as_simd_f32s(&x[(i + r) * inputs..][..inputs]));
                let mut acc = [[zero; 2]; 4];
                let pairs = wv.len() / 2;
                for p in 0..pairs {
                    let (w0, w1) = (wv[2 * p], wv[2 * p + 1]);
                    for r in 0..4 {
                        acc[r][0] = simd.mul_add_e_f32s(xs[r].0[2 * p], w0, acc[r][0]);
                        acc[r][1] = simd.mul_add_e_f32s(xs[r].0[2 * p + 1], w1, acc[r][1]);
                    }
                }
                for r in 0..4 {
                    if wv.len() % 2 == 1 {
                        acc[r][0] = simd.mul_add_e_f32s(xs[r].0[wv.len() - 1], wv[wv.len() - 1], acc[r][0]);
                    }
                    let tail: f32 = wt.iter().zip(xs[r].1).map(|(a, b)| a * b).sum();
                    out[j * n + i + r] = simd.reduce_sum_f32s(simd.add_f32s(acc[r][0], acc[r][1])) + tail;
                }
                i += 4;
            }
            for i in i..n {
                let (xv, xt) = S::as_simd_f32s(&x[i * inputs..][..inputs]);
                let mut acc = [zero; 4];
                for (c, (a, b)) in xv.iter().zip(wv).enumerate() {
                    acc[c % 4] = simd.mul_add_e_f32s(*a, *b, acc[c % 4]);
                }
                let tail: f32 = wt.iter().zip(xt).map(|(a, b)| a * b).sum();
                let sum = simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]));
                out[j * n + i] = simd.reduce_sum_f32s(sum) + tail;
            }
        }
    }
}

/// Columns of the weights handled at a time: the batch's inputs for this many columns (8 KB at
/// batch 8) stay in the first-level cache while the rows pass over them.
const TILE: usize = 256;
/// Weight rows per pass over a tile: each load of an input serves this many rows, and the rows'
/// accumulators fit in registers beside it.
const ROWS: usize = 4;

/// [`RowGrads`] in explicit vectors.
struct SimdGrads<'a>(RowGrads<'a, f32>);

impl WithSimd for SimdGrads<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let RowGrads { n, inputs, outputs, j0, x, w, dy, reg, dw } = self.0;
        let rows = w.len() / inputs;
        // dy[i, j] as `[row j][image i]`, scalar and splatted.
        let gs: Vec<f32> = (0..rows * n).map(|t| dy[(t % n) * outputs + j0 + t / n]).collect();
        let g: Vec<S::f32s> = gs.iter().map(|v| simd.splat_f32s(*v)).collect();
        let tile = Tile { simd, n, inputs, x, w, g: &g, gs: &gs, reg };
        for k0 in (0..inputs).step_by(TILE) {
            let cols = k0..(k0 + TILE).min(inputs);
            let mut j = 0;
            while j + ROWS <= rows {
                tile.grads::<ROWS>(cols.clone(), j, dw);
                j += ROWS;
            }
            for j in j..rows {
                tile.grads::<1>(cols.clone(), j, dw);
            }
        }
    }
}

/// What every tile of [`SimdGrads`] reads.
struct Tile<'a, S: Simd> {
    simd: S,
    n: usize,
    inputs: usize,
    x: &'a [f32],
    w: &'a [f32],
    g: &'a [S::f32s],
    gs: &'a [f32],
    reg: f32,
}

impl<S: Simd> Tile<'_, S> {
    /// Rows `j..j+R`, columns `cols` of the weight gradient.
    #[inline(always)]
    fn grads<const R: usize>(&self, cols: std::ops::Range<usize>, j: usize, dw: &mut [f32]) {
        let Self { simd, n, inputs, x, w, .. } = *self;
        let regv = simd.splat_f32s(self.reg);
        let (g, gs) = (&self.g[j * n..(j + R) * n], &self.gs[j * n..(j + R) * n]);
        let wv: [(&[S::f32s], &[f32]); R] =
            std::array::from_fn(|r| S::as_simd_f32s(&w[(j + r) * inputs..][cols.clone()]));
        let mut dw_rows = dw[j * inputs..(j + R) * inputs].chunks_exact_mut(inputs);
        let dwv: [(&mut [S::f32s], &mut [f32]); R] = std::array::from_fn(|_| {
            S::as_mut_simd_f32s(dw_rows.next().map_or(&mut [][..], |row| &mut row[cols.clone()]))
        });
        let xs: [(&[S::f32s], &[f32]); STREAM_MAX_BATCH] = std::array::from_fn(|i| {
            if i < n { S::as_simd_f32s(&x[i * inputs..][cols.clone()]) } else { (&[][..], &[][..]) }
        });
        for c in 0..wv[0].0.len() {
            let mut acc: [S::f32s; R] = std::array::from_fn(|r| simd.mul_f32s(regv, wv[r].0[c]));
            for i in 0..n {
                let xv = xs[i].0[c];
                for r in 0..R {
                    acc[r] = simd.mul_add_e_f32s(g[r * n + i], xv, acc[r]);
                }
            }
            for r in 0..R {
                dwv[r].0[c] = acc[r];
            }
        }
        // The columns past the last full vector.
        for r in 0..R {
            for (t, d) in dwv[r].1.iter_mut().enumerate() {
                *d = self.reg * wv[r].1[t] + (0..n).map(|i| gs[r * n + i] * xs[i].1[t]).sum::<f32>();
            }
        }
    }
}

/// The number types the dense layer runs in: a [`Real`] with the streaming kernels. `f32`, which
/// trains, has explicitly vectorised ones; `f64`, which only gradient checks use, plain loops.
pub trait DenseKernels: Real {
    /// `out[j, i] = x[i]·w[j]` (see [`RowDots`]).
    #[doc(hidden)]
    fn stream_dots(k: RowDots<'_, Self>);
    /// `dw[j] = reg·w[j] + Σ_i dy[i, j]·x[i]` (see [`RowGrads`]).
    #[doc(hidden)]
    fn stream_grads(k: RowGrads<'_, Self>);
}

impl DenseKernels for f32 {
    fn stream_dots(k: RowDots<'_, Self>) {
        dots_f32(k)
    }

    fn stream_grads(k: RowGrads<'_, Self>) {
        grads_f32(k)
    }
}

impl DenseKernels for f64 {
    fn stream_dots(k: RowDots<'_, Self>) {
        dots_plain(k)
    }

    fn stream_grads(k: RowGrads<'_, Self>) {
        grads_plain(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer in f64 with plain loops, as the reference.
    fn reference(n: usize, inputs: usize, outputs: usize, x: &[f64], w: &[f64], dy: &[f64], reg: f64) -> [Vec<f64>; 3] {
        let mut y = vec![0.0; n * outputs];
        let mut dw = vec![0.0; outputs * inputs];
        let mut dx = vec![0.0; n * inputs];
        for i in 0..n {
            for j in 0..outputs {
                for k in 0..inputs {
                    y[i * outputs + j] += x[i * inputs + k] * w[j * inputs + k];
                    dx[i * inputs + k] += dy[i * outputs + j] * w[j * inputs + k];
                }
            }
        }
        for j in 0..outputs {
            for k in 0..inputs {
                dw[j * inputs + k] =
                    reg * w[j * inputs + k] + (0..n).map(|i| dy[i * outputs + j] * x[i * inputs + k]).sum::<f64>();
            }
        }
        [y, dw, dx]
    }

    fn max_rel(got: &[f32], want: &[f64]) -> f64 {
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        got.iter().zip(want).fold(0.0f64, |m, (g, w)| m.max((f64::from(*g) - w).abs())) / scale
    }

    #[test]
    fn streaming_kernels_match_the_plain_sums_in_f32_and_f64() {
        // Batch sizes around the 4-image blocks, rows around the 4-row blocks and thread split,
        // and input counts with and without a partial vector and tile.
        for (n, inputs, outputs) in [(1, 4099, 17), (3, 2048, 33), (8, 6000, 100), (13, 1031, 70), (16, 640, 103)] {
            assert!(streams(n, inputs, outputs), "{n} {inputs} {outputs}");
            let val = |len: usize, seed: f64| -> Vec<f64> {
                (0..len).map(|i| ((i as f64 + seed) * 0.618034).fract() - 0.5).collect()
            };
            let (x, w, dy, b) =
                (val(n * inputs, 0.3), val(outputs * inputs, 0.7), val(n * outputs, 0.1), val(outputs, 0.9));
            let reg = 0.05;
            let [y0, dw0, dx0] = reference(n, inputs, outputs, &x, &w, &dy, reg);
            let y0: Vec<f64> = y0.iter().enumerate().map(|(t, v)| v + b[t % outputs]).collect();

            let f = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let (xf, wf, dyf, bf) = (f(&x), f(&w), f(&dy), f(&b));
            let mut y = vec![f32::NAN; n * outputs];
            forward(n, inputs, outputs, &xf, &wf, &bf, &mut y);
            let (mut dw, mut db, mut dx) = (vec![f32::NAN; w.len()], vec![f32::NAN; outputs], vec![f32::NAN; x.len()]);
            backward(n, inputs, outputs, &xf, &wf, &dyf, reg as f32, &mut dw, &mut db, Some(&mut dx));
            assert!(max_rel(&y, &y0) < 1e-5, "y {n} {inputs} {outputs}: {}", max_rel(&y, &y0));
            assert!(max_rel(&dw, &dw0) < 1e-5, "dW {n} {inputs} {outputs}: {}", max_rel(&dw, &dw0));
            assert!(max_rel(&dx, &dx0) < 1e-5, "dx {n} {inputs} {outputs}");

            let mut y = vec![f64::NAN; n * outputs];
            forward(n, inputs, outputs, &x, &w, &b, &mut y);
            let (mut dw, mut db, mut dx) = (vec![f64::NAN; w.len()], vec![f64::NAN; outputs], vec![f64::NAN; x.len()]);
            backward(n, inputs, outputs, &x, &w, &dy, reg, &mut dw, &mut db, Some(&mut dx));
            for (got, want) in [(&y, &y0), (&dw, &dw0), (&dx, &dx0)] {
                let e = got.iter().zip(want.iter()).fold(0.0f64, |m, (g, w)| m.max((g - w).abs()));
                assert!(e < 1e-9, "f64 {n} {inputs} {outputs}: {e}");
            }
        }
    }
}
