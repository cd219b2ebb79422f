//! The real number types the engine runs in ([`Real`]), and the one GEMM every layer uses.
//!
//! Training runs in `f32`; gradient checks run the same code in `f64`, where finite differences
//! are accurate enough to tell a wrong gradient from rounding.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

use faer::{Accum, MatMut, MatRef, Par};

/// Below this many multiply-adds a GEMM runs on one thread: faer's dispatch to the thread pool
/// costs ~15–20 µs, more than a small product takes.
const PARALLEL_MIN_MACS: usize = 1 << 21;

/// A real number type the network can be computed in (`f32` or `f64`): arithmetic, conversions
/// and the GEMM. [`Float`](super::Float) adds the vector kernels of the dense layer and the
/// Fourier convolution, which live in those modules.
pub trait Real:
    Copy
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + PartialOrd
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
    + rustfft::FftNum
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// The safetensors dtype name of this type ("F32", "F64").
    const DTYPE: &'static str;

    /// Converts from `f64`, rounding if needed.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// Converts from `f32` exactly.
    fn from_f32(v: f32) -> Self;
    /// Converts to `f32`, rounding if needed.
    fn to_f32(self) -> f32;
    /// e^self.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// True unless NaN or infinite.
    fn is_finite(self) -> bool;

    /// `C = op(A)·op(B)` (or `C += op(A)·op(B)` with `accumulate`), all row-major.
    ///
    /// `op(A)` is m×k: `A` is stored m×k, or k×m when `trans_a` (and used transposed); likewise
    /// `op(B)` is k×n, stored k×n or n×k when `trans_b`. `C` is m×n. Large products use both
    /// cores unless `sequential` is set (the caller already runs in parallel).
    fn gemm(
        m: usize,
        n: usize,
        k: usize,
        a: &[Self],
        trans_a: bool,
        b: &[Self],
        trans_b: bool,
        c: &mut [Self],
        accumulate: bool,
        sequential: bool,
    );
}

macro_rules! impl_real {
    ($t:ty, $dtype:literal) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const DTYPE: &'static str = $dtype;

            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            #[inline]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }

            fn gemm(
                m: usize,
                n: usize,
                k: usize,
                a: &[Self],
                trans_a: bool,
                b: &[Self],
                trans_b: bool,
                c: &mut [Self],
                accumulate: bool,
                sequential: bool,
            ) {
                debug_assert_eq!(a.len(), m * k);
                debug_assert_eq!(b.len(), k * n);
                debug_assert_eq!(c.len(), m * n);
                if m == 0 || n == 0 {
                    return;
                }
                let a = if trans_a {
                    MatRef::from_row_major_slice(a, k, m).transpose()
                } else {
                    MatRef::from_row_major_slice(a, m, k)
                };
                let b = if trans_b {
                    MatRef::from_row_major_slice(b, n, k).transpose()
                } else {
                    MatRef::from_row_major_slice(b, k, n)
                };
                let c = MatMut::from_row_major_slice_mut(c, m, n);
                let accum = if accumulate { Accum::Add } else { Accum::Replace };
                let par = if sequential || m * n * k < PARALLEL_MIN_MACS { Par::Seq } else { Par::rayon(0) };
                faer::linalg::matmul::matmul(c, accum, a, b, 1.0, par);
            }
        }
    };
}

impl_real!(f32, "F32");
impl_real!(f64, "F64");

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(m: usize, n: usize, k: usize, a: &[f64], ta: bool, b: &[f64], tb: bool) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += av * bv;
                }
            }
        }
        c
    }

    #[test]
    fn gemm_matches_loops_for_every_transpose_combination() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        for ta in [false, true] {
            for tb in [false, true] {
                let want = reference(m, n, k, &a, ta, &b, tb);
                let mut c = vec![1.0; m * n];
                f64::gemm(m, n, k, &a, ta, &b, tb, &mut c, false, false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-12);
                }
                f64::gemm(m, n, k, &a, ta, &b, tb, &mut c, true, false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 1e-12);
                }
            }
        }
    }
}
