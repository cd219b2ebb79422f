//! Softmax cross-entropy averaged over the batch.

use super::{Float, Real};

/// Forward: class probabilities and the mean negative log-likelihood of the true labels.
///
/// # Shapes
/// scores `[N, K]`, labels `[N]` (each < K) → probs `[N, K]`, returns the mean loss.
pub fn forward<T: Float>(classes: usize, scores: &[T], labels: &[usize], probs: &mut [T]) -> T {
    let mut total = T::ZERO;
    for ((row, p), &y) in scores.chunks(classes).zip(probs.chunks_mut(classes)).zip(labels) {
        // Shift by the max so exp never overflows.
        let max = row.iter().copied().fold(row[0], |m, v| if v > m { v } else { m });
        let mut sum = T::ZERO;
        for (p, &s) in p.iter_mut().zip(row) {
            *p = (s - max).exp();
            sum += *p;
        }
        p.iter_mut().for_each(|v| *v = *v / sum);
        // log p[y] computed from the shifted scores stays finite even when p[y] underflows.
        total += sum.ln() - (row[y] - max);
    }
    total / <T as Real>::from_f64(labels.len().max(1) as f64)
}

/// Backward: `dscores = (p − onehot(y)) / N`.
pub fn backward<T: Float>(classes: usize, probs: &[T], labels: &[usize], dscores: &mut [T]) {
    let inv_n = T::ONE / <T as Real>::from_f64(labels.len().max(1) as f64);
    for ((d, p), &y) in dscores.chunks_mut(classes).zip(probs.chunks(classes)).zip(labels) {
        for (c, (d, &p)) in d.iter_mut().zip(p).enumerate() {
            let target = if c == y { T::ONE } else { T::ZERO };
            *d = (p - target) * inv_n;
        }
    }
}
