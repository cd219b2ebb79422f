//! Fully connected layer (`fc`), PyTorch's `Linear`: weights `[OUT, IN]`, `y = x·Wᵀ + b`.
//! [`engine::dense`](crate::engine::dense) does the work (streaming kernels for small batches,
//! GEMM otherwise); the L2 term of the loss enters the weight gradient here.

use crate::engine::{Float, dense};

/// Forward: `y = x·Wᵀ + b`.
///
/// # Shapes
/// x `[N, IN]`, w `[OUT, IN]`, b `[OUT]` → y `[N, OUT]`.
pub fn forward<T: Float>(n: usize, inputs: usize, outputs: usize, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    dense::forward(n, inputs, outputs, x, w, b, y);
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
    dense::backward(n, inputs, outputs, x, w, dy, reg, dw, db, dx);
}
