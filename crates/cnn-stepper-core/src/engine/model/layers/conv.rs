//! Convolution: a thin wrapper over [`engine::conv`](crate::engine::conv)'s dispatcher, which
//! already handles any stride and padding and chooses naive loops, im2col + GEMM or the Fourier
//! route. Its two stoppable entry points are the only calls into it from the model code.

use crate::engine::conv::ConvShape;

use super::super::shape::Shape;

/// The convolution's shape arithmetic for a batch of `n` images of `input` (which must be maps).
pub fn shape(n: usize, input: Shape, filters: usize, k: usize, stride: usize, pad: usize) -> ConvShape {
    let (c, h, w) = match input {
        Shape::Maps { c, h, w } => (c, h, w),
        Shape::Flat(len) => (len, 1, 1),
    };
    ConvShape { n, c, h, w, f: filters, k, stride, pad }
}

/// Forward `y = conv(x, w) + b` and backward (`dw`, `db`, and `dx` when asked for): the engine's
/// own stoppable entry points, under the names the other layer files use. The naive engine
/// reports progress per image and gives up (`Break`, outputs partly written) as soon as
/// `stop()` is true.
///
/// # Shapes
/// x `[N, C, H, W]`, w `[F, C, K, K]`, b `[F]` → y `[N, F, OH, OW]`; dy `[N, F, OH, OW]` →
/// dw `[F, C, K, K]`, db `[F]`, dx `[N, C, H, W]`.
pub use crate::engine::conv::{backward_unless as backward, forward_unless as forward};
