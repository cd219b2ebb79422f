//! Convolution: a thin wrapper over [`engine::conv`](crate::engine::conv)'s dispatcher, which
//! already handles any stride and padding and chooses naive loops, im2col + GEMM or the Fourier
//! route. These two functions are the only calls into it from the model code.

use std::ops::ControlFlow;

use crate::engine::conv::{self, ConvShape, ConvWorkspace};
use crate::engine::{ConvEngine, Float};

use super::super::shape::Shape;

/// The convolution's shape arithmetic for a batch of `n` images of `input` (which must be maps).
pub fn shape(n: usize, input: Shape, filters: usize, k: usize, stride: usize, pad: usize) -> ConvShape {
    let (c, h, w) = match input {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(len) => (len, 1, 1),
    };
    ConvShape { n, c, h, w, f: filters, k, stride, pad }
}

/// Forward: `y = conv(x, w) + b`.
///
/// # Shapes
/// x `[N, C, H, W]`, w `[F, C, K, K]`, b `[F]` → y `[N, F, OH, OW]`.
/// `progress(done, total)` is called after each image by the naive engine, which also gives up
/// (`Break`, `y` partly written) as soon as `stop()` is true.
pub fn forward<T: Float>(
    engine: ConvEngine,
    s: &ConvShape,
    x: &[T],
    w: &[T],
    b: &[T],
    y: &mut [T],
    ws: &mut ConvWorkspace<T>,
    progress: &mut dyn FnMut(usize, usize),
    stop: &dyn Fn() -> bool,
) -> ControlFlow<()> {
    conv::forward_unless(engine, s, x, w, b, y, ws, progress, stop)
}

/// Backward: `dw`, `db`, and `dx` when asked for (all overwritten; like [`forward`], the naive
/// engine stops early when `stop()` is true).
///
/// # Shapes
/// x `[N, C, H, W]`, w `[F, C, K, K]`, dy `[N, F, OH, OW]` → dw `[F, C, K, K]`, db `[F]`,
/// dx `[N, C, H, W]`.
pub fn backward<T: Float>(
    engine: ConvEngine,
    s: &ConvShape,
    x: &[T],
    w: &[T],
    dy: &[T],
    dw: &mut [T],
    db: &mut [T],
    dx: Option<&mut [T]>,
    ws: &mut ConvWorkspace<T>,
    progress: &mut dyn FnMut(usize, usize),
    stop: &dyn Fn() -> bool,
) -> ControlFlow<()> {
    conv::backward_unless(engine, s, x, w, dy, dw, db, dx, ws, progress, stop)
}
