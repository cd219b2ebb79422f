//! Element-wise activations: `relu`, `tanh`, `sigmoid`. The fast path splits the values across
//! threads; each value is computed the same way, so both paths give the same bits.

use rayon::prelude::*;

use crate::engine::{ConvEngine, Float, Real, relu};

/// Values per task of the fast path.
const CHUNK: usize = 1 << 14;

/// Which function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `max(0, x)`.
    Relu,
    /// `tanh x`.
    Tanh,
    /// `1 / (1 + e^−x)`.
    Sigmoid,
}

/// `tanh`, computed in f64 (the [`Float`] trait has no tanh; the f32 result is the correctly
/// rounded f64 one).
#[inline]
fn tanh<T: Float>(x: T) -> T {
    <T as Real>::from_f64(x.to_f64().tanh())
}

/// The logistic function, in a form whose exponential never overflows.
#[inline]
fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// Forward, element-wise.
///
/// # Shapes
/// x `[any]` → y, same length.
pub fn forward<T: Float>(engine: ConvEngine, f: Activation, x: &[T], y: &mut [T]) {
    let run = |x: &[T], y: &mut [T]| match f {
        Activation::Relu => relu::forward(x, y),
        Activation::Tanh => y.iter_mut().zip(x).for_each(|(y, &x)| *y = tanh(x)),
        Activation::Sigmoid => y.iter_mut().zip(x).for_each(|(y, &x)| *y = sigmoid(x)),
    };
    match engine {
        ConvEngine::Naive => run(x, y),
        ConvEngine::Fast => x.par_chunks(CHUNK).zip(y.par_chunks_mut(CHUNK)).for_each(|(x, y)| run(x, y)),
    }
}

/// Backward, element-wise, from the input `x` and output `y` of the forward pass:
/// relu `dx = dy·[x > 0]`, tanh `dx = dy·(1 − y²)`, sigmoid `dx = dy·y·(1 − y)`.
///
/// # Shapes
/// x, y, dy, dx: the same length.
pub fn backward<T: Float>(engine: ConvEngine, f: Activation, x: &[T], y: &[T], dy: &[T], dx: &mut [T]) {
    let run = |x: &[T], y: &[T], dy: &[T], dx: &mut [T]| match f {
        Activation::Relu => relu::backward(x, dy, dx),
        Activation::Tanh => dx.iter_mut().zip(dy).zip(y).for_each(|((d, &g), &y)| *d = g * (T::ONE - y * y)),
        Activation::Sigmoid => dx.iter_mut().zip(dy).zip(y).for_each(|((d, &g), &y)| *d = g * y * (T::ONE - y)),
    };
    match engine {
        ConvEngine::Naive => run(x, y, dy, dx),
        ConvEngine::Fast => x
            .par_chunks(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .zip(dy.par_chunks(CHUNK))
            .zip(dx.par_chunks_mut(CHUNK))
            .for_each(|(((x, y), dy), dx)| run(x, y, dy, dx)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_finite_far_from_zero() {
        assert_eq!(sigmoid(-1000.0_f64), 0.0);
        assert_eq!(sigmoid(1000.0_f64), 1.0);
        assert!((sigmoid(0.0_f32) - 0.5).abs() < 1e-7);
    }
}
