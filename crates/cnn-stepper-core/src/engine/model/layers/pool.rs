//! Max and average pooling over K×K windows with a stride, no padding, output sizes floored as
//! PyTorch's `MaxPool2d`/`AvgPool2d` (`ceil_mode=False`): rows and columns past the last whole
//! window are never read (their gradient is 0).
//!
//! Max pooling keeps, for each output value, where in its input plane the winner was: the
//! backward pass routes the gradient there, and the window's inspector shows which input won.
//! Ties go to the first maximum in reading order and NaN wins, as in PyTorch.

use rayon::prelude::*;

use crate::engine::{ConvEngine, Float, Real};

/// The shape arithmetic of one pooling layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    /// Batch size.
    pub n: usize,
    /// Channels (pooled one by one).
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
}

impl PoolShape {
    /// Output height and width: `(H − K) / stride + 1`, floored.
    pub fn out_dims(&self) -> (usize, usize) {
        ((self.h - self.k) / self.stride + 1, (self.w - self.k) / self.stride + 1)
    }

    /// Values of one input plane.
    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    /// Values of one output plane.
    fn out_plane(&self) -> usize {
        let (oh, ow) = self.out_dims();
        oh * ow
    }
}

/// Planes per task of the fast path: enough work per task to pay for the scheduling.
fn planes_per_task(s: &PoolShape) -> usize {
    (4096 / s.in_plane().max(1)).max(1)
}

/// Max pooling forward. `winners[o]` receives the index, within its input plane (`row·W + col`),
/// of the value output `o` took.
///
/// # Shapes
/// x `[N, C, H, W]` → y `[N, C, OH, OW]`, winners `[N, C, OH, OW]`.
pub fn max_forward<T: Float>(engine: ConvEngine, s: &PoolShape, x: &[T], y: &mut [T], winners: &mut [u32]) {
    let (ip, op) = (s.in_plane(), s.out_plane());
    match engine {
        ConvEngine::Naive => {
            for ((x, y), win) in x.chunks(ip).zip(y.chunks_mut(op)).zip(winners.chunks_mut(op)) {
                max_plane(s, x, y, win);
            }
        }
        ConvEngine::Fast => {
            let per = planes_per_task(s);
            x.par_chunks(per * ip).zip(y.par_chunks_mut(per * op)).zip(winners.par_chunks_mut(per * op)).for_each(
                |((x, y), win)| {
                    for ((x, y), win) in x.chunks(ip).zip(y.chunks_mut(op)).zip(win.chunks_mut(op)) {
                        max_plane(s, x, y, win);
                    }
                },
            );
        }
    }
}

fn max_plane<T: Float>(s: &PoolShape, x: &[T], y: &mut [T], winners: &mut [u32]) {
    let (oh, ow) = s.out_dims();
    for i in 0..oh {
        for j in 0..ow {
            let (r0, c0) = (i * s.stride, j * s.stride);
            let mut best = r0 * s.w + c0;
            for r in r0..r0 + s.k {
                for c in c0..c0 + s.k {
                    let v = x[r * s.w + c];
                    // `v != v` is NaN, which PyTorch lets win.
                    #[allow(clippy::eq_op)]
                    if v > x[best] || v != v {
                        best = r * s.w + c;
                    }
                }
            }
            y[i * ow + j] = x[best];
            winners[i * ow + j] = best as u32;
        }
    }
}

/// Max pooling backward: each output gradient goes to the input that won its window (summed
/// where overlapping windows share a winner).
///
/// # Shapes
/// dy `[N, C, OH, OW]`, winners `[N, C, OH, OW]` → dx `[N, C, H, W]` (overwritten).
pub fn max_backward<T: Float>(engine: ConvEngine, s: &PoolShape, dy: &[T], winners: &[u32], dx: &mut [T]) {
    let (ip, op) = (s.in_plane(), s.out_plane());
    let plane = |dy: &[T], win: &[u32], dx: &mut [T]| {
        dx.fill(T::ZERO);
        for (g, &at) in dy.iter().zip(win) {
            dx[at as usize] += *g;
        }
    };
    match engine {
        ConvEngine::Naive => {
            for ((dy, win), dx) in dy.chunks(op).zip(winners.chunks(op)).zip(dx.chunks_mut(ip)) {
                plane(dy, win, dx);
            }
        }
        ConvEngine::Fast => {
            let per = planes_per_task(s);
            dy.par_chunks(per * op).zip(winners.par_chunks(per * op)).zip(dx.par_chunks_mut(per * ip)).for_each(
                |((dy, win), dx)| {
                    for ((dy, win), dx) in dy.chunks(op).zip(win.chunks(op)).zip(dx.chunks_mut(ip)) {
                        plane(dy, win, dx);
                    }
                },
            );
        }
    }
}

/// Average pooling forward: the mean of each window.
///
/// # Shapes
/// x `[N, C, H, W]` → y `[N, C, OH, OW]`.
pub fn avg_forward<T: Float>(engine: ConvEngine, s: &PoolShape, x: &[T], y: &mut [T]) {
    let (ip, op) = (s.in_plane(), s.out_plane());
    let inv = T::ONE / <T as Real>::from_f64((s.k * s.k) as f64);
    let plane = |x: &[T], y: &mut [T]| {
        let (oh, ow) = s.out_dims();
        for i in 0..oh {
            for j in 0..ow {
                let mut sum = T::ZERO;
                for r in i * s.stride..i * s.stride + s.k {
                    for c in j * s.stride..j * s.stride + s.k {
                        sum += x[r * s.w + c];
                    }
                }
                y[i * ow + j] = sum * inv;
            }
        }
    };
    match engine {
        ConvEngine::Naive => x.chunks(ip).zip(y.chunks_mut(op)).for_each(|(x, y)| plane(x, y)),
        ConvEngine::Fast => {
            let per = planes_per_task(s);
            x.par_chunks(per * ip).zip(y.par_chunks_mut(per * op)).for_each(|(x, y)| {
                x.chunks(ip).zip(y.chunks_mut(op)).for_each(|(x, y)| plane(x, y));
            });
        }
    }
}

/// Average pooling backward: each output gradient, divided by K², goes to every input of its
/// window.
///
/// # Shapes
/// dy `[N, C, OH, OW]` → dx `[N, C, H, W]` (overwritten).
pub fn avg_backward<T: Float>(engine: ConvEngine, s: &PoolShape, dy: &[T], dx: &mut [T]) {
    let (ip, op) = (s.in_plane(), s.out_plane());
    let inv = T::ONE / <T as Real>::from_f64((s.k * s.k) as f64);
    let plane = |dy: &[T], dx: &mut [T]| {
        let (oh, ow) = s.out_dims();
        dx.fill(T::ZERO);
        for i in 0..oh {
            for j in 0..ow {
                let g = dy[i * ow + j] * inv;
                for r in i * s.stride..i * s.stride + s.k {
                    for c in j * s.stride..j * s.stride + s.k {
                        dx[r * s.w + c] += g;
                    }
                }
            }
        }
    };
    match engine {
        ConvEngine::Naive => dy.chunks(op).zip(dx.chunks_mut(ip)).for_each(|(dy, dx)| plane(dy, dx)),
        ConvEngine::Fast => {
            let per = planes_per_task(s);
            dy.par_chunks(per * op).zip(dx.par_chunks_mut(per * ip)).for_each(|(dy, dx)| {
                dy.chunks(op).zip(dx.chunks_mut(ip)).for_each(|(dy, dx)| plane(dy, dx));
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pool_keeps_the_first_of_equal_maxima_and_skips_the_remainder() {
        // 1×3×5, window 2, stride 2: output 1×2, the last row and column are never read.
        let x = [1.0, 3.0, 3.0, 0.0, 9.0, 2.0, 0.0, 1.0, 3.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0];
        let s = PoolShape { n: 1, c: 1, h: 3, w: 5, k: 2, stride: 2 };
        let (mut y, mut win) = (vec![0.0; 2], vec![0; 2]);
        max_forward(ConvEngine::Naive, &s, &x, &mut y, &mut win);
        assert_eq!(y, vec![3.0, 3.0]);
        assert_eq!(win, vec![1, 2]);
        let mut dx = vec![7.0; 15];
        max_backward(ConvEngine::Naive, &s, &[1.0, 2.0], &win, &mut dx);
        assert_eq!(dx.iter().sum::<f64>(), 3.0);
        assert_eq!((dx[1], dx[2]), (1.0, 2.0));
    }
}
