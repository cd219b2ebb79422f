//! When a loss means training has diverged: one rule, for the window and the command line.

/// A loss above this is divergence whatever came before (ln 10 ≈ 2.3 is a guessing network).
pub const ABSOLUTE_LOSS_LIMIT: f32 = 1e4;
/// A loss more than this times the recent median is divergence.
pub const RELATIVE_LOSS_LIMIT: f32 = 1e3;
/// The median is taken as at least this, so that a nearly perfect fit (median loss 0.001)
/// does not turn one hard batch into an alarm.
pub const MEDIAN_FLOOR: f32 = 0.1;

/// Why a loss counts as divergence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DivergenceReason {
    /// The loss is NaN or infinite.
    NotFinite,
    /// The loss is above [`ABSOLUTE_LOSS_LIMIT`].
    AboveLimit {
        /// The limit it passed.
        limit: f32,
    },
    /// The loss is more than [`RELATIVE_LOSS_LIMIT`] × the median of the recent losses.
    FarAboveMedian {
        /// The factor it passed.
        factor: f32,
        /// The median of the recent losses.
        median: f32,
    },
}

impl std::fmt::Display for DivergenceReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DivergenceReason::NotFinite => f.write_str("not a finite number"),
            DivergenceReason::AboveLimit { limit } => write!(f, "above the limit of {limit}"),
            DivergenceReason::FarAboveMedian { factor, median } => {
                write!(f, "more than {factor} × the recent median loss {median}")
            }
        }
    }
}

/// Why `loss` counts as divergence, or `None` if it does not.
///
/// The rule: the loss is not finite, or above [`ABSOLUTE_LOSS_LIMIT`], or (once the history
/// has enough recent losses to give `recent_median`) above [`RELATIVE_LOSS_LIMIT`] ×
/// max(median, [`MEDIAN_FLOOR`]).
pub fn divergence(loss: f32, recent_median: Option<f32>) -> Option<DivergenceReason> {
    if !loss.is_finite() {
        return Some(DivergenceReason::NotFinite);
    }
    if loss > ABSOLUTE_LOSS_LIMIT {
        return Some(DivergenceReason::AboveLimit { limit: ABSOLUTE_LOSS_LIMIT });
    }
    let median = recent_median?;
    if loss > RELATIVE_LOSS_LIMIT * median.max(MEDIAN_FLOOR) {
        return Some(DivergenceReason::FarAboveMedian { factor: RELATIVE_LOSS_LIMIT, median });
    }
    None
}
