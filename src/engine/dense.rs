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

/// Up to this batch size the backward pass streams the weights once (fused kernel): with few
/// images it is bound by reading and writing FC1's 10 MB of weights, not by arithmetic.
const FUSED_MAX_BATCH: usize = 16;

/// Inputs per block of the fused kernel: a block of one weight row (8 KB in f32) stays in L1
/// while every image's slice of it is used.
const BLOCK: usize = 2048;

/// Backward: `dW = dyᵀ·x + reg·W`, `db = Σ dy`, and `dx = dy·W` when asked for.
/// `scratch` holds per-thread partial sums of `dx` between calls.
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
    scratch: &mut Vec<Vec<T>>,
) {
    db.fill(T::ZERO);
    for row in dy.chunks(outputs) {
        db.iter_mut().zip(row).for_each(|(a, g)| *a += *g);
    }
    if n <= FUSED_MAX_BATCH {
        fused_backward(n, inputs, outputs, x, w, dy, reg, dw, dx, scratch);
    } else {
        gemm_backward(n, inputs, outputs, x, w, dy, reg, dw, dx);
    }
}

/// dW and dx as two GEMMs: better once the batch makes the products compute-bound.
fn gemm_backward<T: Float>(
    n: usize,
    inputs: usize,
    outputs: usize,
    x: &[T],
    w: &[T],
    dy: &[T],
    reg: T,
    dw: &mut [T],
    dx: Option<&mut [T]>,
) {
    // dW starts as reg·W and the GEMM adds onto it: one pass over the weights instead of two.
    dw.par_chunks_mut(1 << 14)
        .zip(w.par_chunks(1 << 14))
        .for_each(|(g, w)| g.iter_mut().zip(w).for_each(|(g, w)| *g = reg * *w));
    T::gemm(outputs, inputs, n, dy, true, x, false, dw, true, false);
    if let Some(dx) = dx {
        T::gemm(n, inputs, outputs, dy, false, w, false, dx, false, false);
    }
}

/// dW and dx in one pass over the weights: each thread takes a fixed run of output rows, writes
/// their dW rows and accumulates its share of dx; the shares are summed in thread order, so
/// the result does not depend on scheduling.
fn fused_backward<T: Float>(
    n: usize,
    inputs: usize,
    outputs: usize,
    x: &[T],
    w: &[T],
    dy: &[T],
    reg: T,
    dw: &mut [T],
    dx: Option<&mut [T]>,
    scratch: &mut Vec<Vec<T>>,
) {
    let threads = rayon::current_num_threads().max(1);
    let rows_per = outputs.div_ceil(threads).max(1);
    let parts = outputs.div_ceil(rows_per);
    let want_dx = dx.is_some();
    scratch.resize_with(parts, Vec::new);
    for s in scratch.iter_mut() {
        s.clear();
        s.resize(if want_dx { n * inputs } else { 0 }, T::ZERO);
    }
    dw.par_chunks_mut(rows_per * inputs)
        .zip(w.par_chunks(rows_per * inputs))
        .zip(scratch.par_iter_mut())
        .enumerate()
        .for_each(|(part, ((dw, w), dxp))| {
            let first_row = part * rows_per;
            for (r, (g, wr)) in dw.chunks_mut(inputs).zip(w.chunks(inputs)).enumerate() {
                let o = first_row + r;
                for start in (0..inputs).step_by(BLOCK) {
                    let end = (start + BLOCK).min(inputs);
                    let (g, wb) = (&mut g[start..end], &wr[start..end]);
                    g.iter_mut().zip(wb).for_each(|(g, w)| *g = reg * *w);
                    for img in 0..n {
                        let a = dy[img * outputs + o];
                        let xb = &x[img * inputs + start..img * inputs + end];
                        g.iter_mut().zip(xb).for_each(|(g, x)| *g += a * *x);
                        if want_dx {
                            let d = &mut dxp[img * inputs + start..img * inputs + end];
                            d.iter_mut().zip(wb).for_each(|(d, w)| *d += a * *w);
                        }
                    }
                }
            }
        });
    if let Some(dx) = dx {
        dx.copy_from_slice(&scratch[0]);
        for part in &scratch[1..parts] {
            dx.iter_mut().zip(part).for_each(|(d, p)| *d += *p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_and_gemm_backward_agree() {
        for n in [1, 3, 20] {
            let (inputs, outputs) = (2 * BLOCK + 37, 7);
            let v = |len: usize, k: f64| (0..len).map(|i| (i as f64 * k).sin()).collect::<Vec<f64>>();
            let (x, w, dy) = (v(n * inputs, 0.37), v(outputs * inputs, 0.11), v(n * outputs, 0.5));
            let (mut dw1, mut dw2) = (vec![0.0; w.len()], vec![0.0; w.len()]);
            let (mut dx1, mut dx2) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            fused_backward(n, inputs, outputs, &x, &w, &dy, 0.1, &mut dw1, Some(&mut dx1), &mut Vec::new());
            gemm_backward(n, inputs, outputs, &x, &w, &dy, 0.1, &mut dw2, Some(&mut dx2));
            for (a, b) in dw1.iter().zip(&dw2).chain(dx1.iter().zip(&dx2)) {
                assert!((a - b).abs() < 1e-12, "n = {n}: {a} vs {b}");
            }
        }
    }
}
