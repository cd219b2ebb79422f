//! What the kernels share without depending on each other: a convolution's shape arithmetic and
//! how work is split over the threads. (Kept apart so that `conv` and `fftconv` do not import
//! each other.)

/// The shape arithmetic of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Filters (output channels).
    pub f: usize,
    /// Kernel size (square).
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
}

impl ConvShape {
    /// Output height and width.
    pub fn out_dims(&self) -> (usize, usize) {
        ((self.h + 2 * self.pad - self.k) / self.stride + 1, (self.w + 2 * self.pad - self.k) / self.stride + 1)
    }
    /// Elements of one input image.
    pub fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
    /// Elements of one output image.
    pub fn out_len(&self) -> usize {
        let (oh, ow) = self.out_dims();
        self.f * oh * ow
    }
    /// Taps per filter: C·K·K.
    pub fn taps(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Output pixels per map.
    pub fn pixels(&self) -> usize {
        let (oh, ow) = self.out_dims();
        oh * ow
    }
    /// Input row/column for output position `o` and kernel offset `i`, if inside the image.
    #[inline]
    pub(crate) fn src(&self, o: usize, i: usize, size: usize) -> Option<usize> {
        (o * self.stride + i).checked_sub(self.pad).filter(|&v| v < size)
    }
}

/// Items per thread: work is cut into at most one contiguous run per thread, so each thread's
/// share (and the order of its sums) does not depend on scheduling.
pub(crate) fn per_thread(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads().max(1)).max(1)
}
