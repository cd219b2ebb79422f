//! [`Float`]: the number type every layer is generic over — a [`Real`] with the dense layer's
//! and the Fourier convolution's vector kernels. Defined here, above `dense` and `fftconv`, so
//! that the modules below it do not depend on each other.

use super::dense::DenseKernels;
use super::fftconv::SpectralKernels;
use super::float::Real;

/// A real number type the network can be computed in (`f32` or `f64`), with every kernel.
pub trait Float: Real + DenseKernels + SpectralKernels {}

impl<T: Real + DenseKernels + SpectralKernels> Float for T {}
