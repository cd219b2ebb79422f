//! Rectified linear unit, elementwise.

use super::Float;

/// Forward: `y = max(0, x)`.
pub fn forward<T: Float>(x: &[T], y: &mut [T]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y = if x > T::ZERO { x } else { T::ZERO });
}

/// Backward: the gradient passes where the input was positive, `dx = dy ⊙ [x > 0]`.
pub fn backward<T: Float>(x: &[T], dy: &[T], dx: &mut [T]) {
    for ((d, &g), &x) in dx.iter_mut().zip(dy).zip(x) {
        *d = if x > T::ZERO { g } else { T::ZERO };
    }
}
