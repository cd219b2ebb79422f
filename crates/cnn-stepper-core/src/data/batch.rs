//! Mini-batches: turning image bytes into `f32` tensors, and choosing which images go in them.

use std::fmt;
use std::str::FromStr;

use ndarray::Array4;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{DataError, Dataset};

/// A mini-batch ready for the network.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Pixels scaled to `[0, 1]` (byte / 255).
    ///
    /// # Shapes
    /// `N × channels × rows × cols`.
    pub images: Array4<f32>,
    /// The class of each image, `N` entries.
    pub labels: Vec<usize>,
    /// Where each image sits in its dataset, `N` entries (for showing the original image).
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of images in the batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch has no images.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub(crate) fn gather(data: &Dataset, indices: &[usize]) -> Result<Batch, DataError> {
        let (channels, rows, cols) = (data.channels, data.rows, data.cols);
        // Check every index and the total size before allocating, so that neither a bad index
        // nor a hand-edited `rows`/`cols` can make ndarray panic on an impossible shape.
        let mut sources = Vec::with_capacity(indices.len());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            if i >= data.len() {
                return Err(DataError::IndexOutOfRange { index: i, len: data.len() });
            }
            let pixels = data.get_image(i).ok_or_else(|| DataError::InconsistentDataset {
                reason: format!(
                    "{} pixel bytes cannot hold image {i} of {channels}×{rows}×{cols} pixels",
                    data.images.len()
                ),
            })?;
            sources.push(pixels);
            labels.push(data.label(i));
        }
        let total = channels
            .checked_mul(rows)
            .and_then(|n| n.checked_mul(cols))
            .and_then(|n| n.checked_mul(indices.len().max(1)))
            .filter(|&n| n <= isize::MAX as usize / size_of::<f32>());
        if total.is_none() {
            return Err(DataError::InconsistentDataset {
                reason: format!("images of {channels}×{rows}×{cols} pixels are too large for a batch"),
            });
        }
        let mut images = Array4::zeros((indices.len(), channels, rows, cols));
        for (mut slot, pixels) in images.outer_iter_mut().zip(sources) {
            for (dst, &src) in slot.iter_mut().zip(pixels) {
                *dst = f32::from(src) / 255.0;
            }
        }
        Ok(Batch { images, labels, indices: indices.to_vec() })
    }
}

/// How a [`Sampler`] picks images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SamplingMode {
    /// Each batch draws its indices uniformly at random, so an image can repeat within a batch
    /// and some images are not seen for a long time (the blog post's `np.random.randint`).
    WithReplacement,
    /// Each epoch visits every image exactly once in a fresh random order; the last batch of an
    /// epoch may be shorter so that no batch mixes two epochs.
    #[default]
    ShuffledEpochs,
}

impl SamplingMode {
    /// The CLI spellings, for help texts.
    pub const VARIANTS: [&'static str; 2] = ["shuffled", "replacement"];

    /// The CLI spelling of this mode.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SamplingMode::WithReplacement => "replacement",
            SamplingMode::ShuffledEpochs => "shuffled",
        }
    }
}

impl FromStr for SamplingMode {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "shuffled" | "shuffled-epochs" | "epochs" => Ok(SamplingMode::ShuffledEpochs),
            "replacement" | "with-replacement" | "random" => Ok(SamplingMode::WithReplacement),
            _ => Err(DataError::UnknownSamplingMode { value: s.to_owned() }),
        }
    }
}

impl fmt::Display for SamplingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Chooses the dataset indices of successive batches, reproducibly from a seed.
///
/// The whole state is a handful of numbers (seed, epoch, position, batch counter); the random
/// streams are re-derived from them with ChaCha8 (`seed_from_u64`, one stream per epoch or per
/// batch), so a sampler restored with serde continues exactly like the original and results do
/// not change when the `rand` crate's own algorithms do.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SamplerState", into = "SamplerState")]
pub struct Sampler {
    state: SamplerState,
    /// The current epoch's order (shuffled mode only), always the one derived from
    /// `(seed, epoch)`; not saved because it can be rebuilt.
    order: Vec<usize>,
}

/// What is saved of a [`Sampler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SamplerState {
    len: usize,
    mode: SamplingMode,
    seed: u64,
    epoch: u64,
    position: usize,
    batches: u64,
}

impl Sampler {
    /// A sampler over indices `0..len`, at the start of epoch 0.
    ///
    /// With `len == 0` every batch is empty.
    #[must_use]
    pub fn new(len: usize, mode: SamplingMode, seed: u64) -> Self {
        Sampler::from_state(SamplerState { len, mode, seed, epoch: 0, position: 0, batches: 0 })
    }

    fn from_state(state: SamplerState) -> Self {
        let order = match state.mode {
            SamplingMode::ShuffledEpochs => permutation(state.len, state.seed, state.epoch),
            SamplingMode::WithReplacement => Vec::new(),
        };
        Sampler { state, order }
    }

    /// The indices of the next batch.
    ///
    /// In [`SamplingMode::ShuffledEpochs`] this is the next `batch_size` entries of the epoch's
    /// order, or fewer at the end of an epoch; the call that finishes an epoch also starts the
    /// next one with a new order. In [`SamplingMode::WithReplacement`] it is always
    /// `batch_size` uniform draws. Empty if `batch_size` or the dataset length is 0 (and then
    /// the state does not change).
    pub fn next_batch(&mut self, batch_size: usize) -> Vec<usize> {
        let s = &mut self.state;
        if batch_size == 0 || s.len == 0 {
            return Vec::new();
        }
        let batch = match s.mode {
            SamplingMode::ShuffledEpochs => {
                let end = s.position.saturating_add(batch_size).min(s.len);
                let batch = self.order[s.position..end].to_vec();
                s.position = end;
                batch
            }
            SamplingMode::WithReplacement => {
                let mut rng = stream(s.seed, s.batches);
                let n = s.len as u64;
                let batch = (0..batch_size).map(|_| uniform_below(&mut rng, n) as usize).collect();
                // Epochs count draws here: one epoch = `len` images, as in shuffled mode.
                let total = s.position as u128 + batch_size as u128;
                s.epoch = s.epoch.saturating_add((total / s.len as u128).try_into().unwrap_or(u64::MAX));
                s.position = (total % s.len as u128) as usize;
                batch
            }
        };
        s.batches = s.batches.wrapping_add(1);
        if s.mode == SamplingMode::ShuffledEpochs && s.position == s.len {
            s.epoch += 1;
            s.position = 0;
            self.order = permutation(s.len, s.seed, s.epoch);
        }
        batch
    }

    /// Number of completed epochs (0 during the first pass over the data).
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    /// Images consumed in the current epoch.
    #[must_use]
    pub fn position(&self) -> usize {
        self.state.position
    }

    /// Images per epoch (the dataset length).
    #[must_use]
    pub fn epoch_len(&self) -> usize {
        self.state.len
    }

    /// Batches drawn so far.
    #[must_use]
    pub fn batches(&self) -> u64 {
        self.state.batches
    }

    /// The sampling mode.
    #[must_use]
    pub fn mode(&self) -> SamplingMode {
        self.state.mode
    }

    /// The seed the sampler was made with.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.state.seed
    }
}

impl fmt::Debug for Sampler {
    // The order is derived from the state; printing 60,000 indices helps nobody.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.state;
        f.debug_struct("Sampler")
            .field("len", &s.len)
            .field("mode", &s.mode)
            .field("seed", &s.seed)
            .field("epoch", &s.epoch)
            .field("position", &s.position)
            .field("batches", &s.batches)
            .finish()
    }
}

impl From<Sampler> for SamplerState {
    fn from(sampler: Sampler) -> Self {
        sampler.state
    }
}

impl TryFrom<SamplerState> for Sampler {
    type Error = DataError;

    fn try_from(state: SamplerState) -> Result<Self, Self::Error> {
        // A position at or past the end never survives a call to `next_batch`, so one in a file
        // means the file was edited or belongs to another dataset.
        if state.position >= state.len.max(1) {
            return Err(DataError::InvalidSamplerState {
                reason: format!("position {} is not inside an epoch of {} images", state.position, state.len),
            });
        }
        Ok(Sampler::from_state(state))
    }
}

/// The random stream for one epoch (shuffled mode) or one batch (with replacement): ChaCha8
/// seeded from the seed, with the epoch or batch number as the stream id, so any point of the
/// sequence can be reached without replaying what came before.
fn stream(seed: u64, stream_id: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream_id);
    rng
}

/// The order of epoch `epoch`: a Fisher–Yates shuffle of `0..len`.
fn permutation(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = stream(seed, epoch);
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        let j = uniform_below(&mut rng, i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-and-reject method.
///
/// Written out here rather than taken from `rand::Rng::random_range` because rand may change
/// that algorithm between versions, and the batches must stay the same for a given seed.
fn uniform_below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    debug_assert!(n > 0);
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    if (m as u64) < n {
        // Reject the few low products that would make small results slightly more likely.
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_below_stays_in_range_and_hits_every_value() {
        let mut rng = stream(1, 0);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let x = uniform_below(&mut rng, 7);
            seen[x as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = permutation(1000, 3, 5);
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }
}
