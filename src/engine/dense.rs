//! Fully connected layer in PyTorch's layout: weights `[out, in]`, `y = x·Wᵀ + b`.

use rayon::prelude::*;

use super::Float;

/// Forward: `y = x·Wᵀ + b`.
///
/// # Shapes
/// x `[N, IN]`, w `[OUT, IN]`, b `[OUT]` → y `[N, OUT]`.
pub fn forward<T: Float>(n: usize, inputs: usize, outputs: usize, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    T::gemm(n, outputs, inputs, x, false, w, true, y, false, false);
    for row in y.chunks_mut(outputs) {
        row.iter_mut().zip(b).for_each(|(v, bias)| *v += *bias);
    }
}

/// Backward: `dW = dyᵀ·x + reg·W`, `db = Σ dy`, and `dx = dy·W` when asked for.
///
/// # Shapes
/// x `[N, IN]`, w `[OUT, IN]`, dy `[N, OUT]` → dw `[OUT, IN]`, db `[OUT]`, dx `[N, IN]`.
pub fn backward<T: Float>(
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
    // dW starts as reg·W and the GEMM adds onto it: one pass over the weights instead of two.
    dw.par_chunks_mut(1 << 14)
        .zip(w.par_chunks(1 << 14))
        .for_each(|(g, w)| g.iter_mut().zip(w).for_each(|(g, w)| *g = reg * *w));
    T::gemm(outputs, inputs, n, dy, true, x, false, dw, true, false);
    if let Some(dx) = dx {
        T::gemm(n, inputs, outputs, dy, false, w, false, dx, false, false);
    }
}
