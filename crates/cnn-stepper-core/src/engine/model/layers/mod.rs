//! One file per layer kind, forward and backward side by side, generic over [`Float`](crate::engine::Float).
//!
//! Tensors are flat row-major slices with the batch first (`[N, C, H, W]` or `[N, LEN]`), as
//! everywhere in the engine. Each kind has the post's plain loops ([`ConvEngine::Naive`](crate::engine::ConvEngine))
//! and a fast path; the two give the same numbers (bit for bit, except convolution, whose fast
//! routes sum in another order).

pub mod activation;
pub mod conv;
pub mod flatten;
pub mod linear;
pub mod pool;
