//! 2-D convolution, forward and backward, in two engines with the same maths.
//!
//! All tensors are flat row-major slices: input `[N, C, H, W]`, weights `[F, C, K, K]`,
//! bias `[F]`, output `[N, F, OH, OW]`.

use std::ops::ControlFlow;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Float;
use super::fftconv::{self, FftWorkspace};
pub use super::layout::ConvShape;
use super::layout::per_thread;

/// Which implementation computes the convolutions ([`ConvEngine::Fast`] unless asked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConvEngine {
    /// The post's loops, one multiply-add at a time, on one core: readable next to the post.
    Naive,
    /// Stride-1 layers with several input channels (conv2) through the 2-D Fourier transform,
    /// others (conv1) as im2col per image + GEMM; images split across both cores.
    #[default]
    Fast,
}

impl ConvEngine {
    /// The lower-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ConvEngine::Naive => "naive",
            ConvEngine::Fast => "fast",
        }
    }
}

/// Scratch buffers the fast engine reuses across steps (one set per worker thread).
#[derive(Debug, Default)]
pub struct ConvWorkspace<T: Float> {
    parts: Vec<Part<T>>,
    fft: FftWorkspace<T>,
}

#[derive(Debug, Default)]
struct Part<T> {
    cols: Vec<T>,
    dcols: Vec<T>,
    dw: Vec<T>,
    db: Vec<T>,
}

impl<T: Float> ConvWorkspace<T> {
    fn parts(&mut self, s: &ConvShape) -> &mut [Part<T>] {
        let threads = rayon::current_num_threads().max(1);
        self.parts.resize_with(threads, Part::default);
        let cols = s.taps() * s.pixels();
        for p in &mut self.parts {
            p.cols.resize(cols, T::ZERO);
            p.dcols.resize(cols, T::ZERO);
            p.dw.resize(s.f * s.taps(), T::ZERO);
            p.db.resize(s.f, T::ZERO);
        }
        &mut self.parts
    }
}

/// Forward convolution: `out = conv(x, w) + b`.
///
/// # Shapes
/// x `[N, C, H, W]`, w `[F, C, K, K]`, b `[F]` → out `[N, F, OH, OW]`.
/// `progress(done, total)` is called after each image by the naive engine.
pub fn forward<T: Float>(
    engine: ConvEngine,
    s: &ConvShape,
    x: &[T],
    w: &[T],
    b: &[T],
    out: &mut [T],
    ws: &mut ConvWorkspace<T>,
    progress: &mut dyn FnMut(usize, usize),
) {
    let _ = forward_unless(engine, s, x, w, b, out, ws, progress, &|| false);
}

/// [`forward`] that gives up (`Break`) as soon as `stop()` is true: the naive engine checks it
/// before each image and filter, so a long phase stops within a fraction of a second. The
/// output is then partly written; running the call again overwrites all of it. The fast
/// engine always finishes (it takes milliseconds).
pub fn forward_unless<T: Float>(
    engine: ConvEngine,
    s: &ConvShape,
    x: &[T],
    w: &[T],
    b: &[T],
    out: &mut [T],
    ws: &mut ConvWorkspace<T>,
    progress: &mut dyn FnMut(usize, usize),
    stop: &dyn Fn() -> bool,
) -> ControlFlow<()> {
    match engine {
        ConvEngine::Naive => return naive_forward(s, x, w, b, out, progress, stop),
        ConvEngine::Fast if fftconv::suits(s) => fftconv::forward(s, x, w, b, out, &mut ws.fft),
        ConvEngine::Fast => fast_forward(s, x, w, b, out, ws),
    }
    ControlFlow::Continue(())
}

/// Backward convolution: parameter gradients, and the input gradient when `dx` is given.
///
/// # Shapes
/// x `[N, C, H, W]`, w `[F, C, K, K]`, dy `[N, F, OH, OW]` → dw `[F, C, K, K]`, db `[F]`,
/// dx `[N, C, H, W]`. All outputs are overwritten.
pub fn backward<T: Float>(
    engine: ConvEngine,
    s: &ConvShape,
    x: &[T],
    w: &[T],
    dy: &[T],
    dw: &mut [T],
    db: &mut [T],
    dx: Option<&mut [T]>,
    ws: &mut ConvWorkspace<T>,
    progress: &mut dyn FnMut(usize, usize),
) {
    let _ = backward_unless(engine, s, x, w, dy, dw, db, dx, ws, progress, &|| false);
}

/// [`backward`] that gives up (`Break`) as soon as `stop()` is true, as [`forward_unless`]
/// does; the gradients are then partly written, and a later call starts them from zero again.
pub fn backward_unless<T: Float>(
    engine: ConvEngine,
    s: &ConvShape,
    x: &[T],
    w: &[T],
    dy: &[T],
    dw: &mut [T],
    db: &mut [T],
    dx: Option<&mut [T]>,
    ws: &mut ConvWorkspace<T>,
    progress: &mut dyn FnMut(usize, usize),
    stop: &dyn Fn() -> bool,
) -> ControlFlow<()> {
    match engine {
        ConvEngine::Naive => return naive_backward(s, x, w, dy, dw, db, dx, progress, stop),
        ConvEngine::Fast if fftconv::suits(s) => fftconv::backward(s, x, w, dy, dw, db, dx, &mut ws.fft),
        ConvEngine::Fast => fast_backward(s, x, w, dy, dw, db, dx, ws),
    }
    ControlFlow::Continue(())
}

/// The post's forward loop: for each image, filter and output pixel, sum patch × filter.
fn naive_forward<T: Float>(
    s: &ConvShape,
    x: &[T],
    w: &[T],
    b: &[T],
    out: &mut [T],
    progress: &mut dyn FnMut(usize, usize),
    stop: &dyn Fn() -> bool,
) -> ControlFlow<()> {
    let (oh, ow) = s.out_dims();
    let k = s.k;
    for n in 0..s.n {
        for f in 0..s.f {
            if stop() {
                return ControlFlow::Break(());
            }
            for i in 0..oh {
                for j in 0..ow {
                    let mut sum = b[f];
                    for c in 0..s.c {
                        for di in 0..k {
                            let Some(y) = s.src(i, di, s.h) else { continue };
                            for dj in 0..k {
                                let Some(xx) = s.src(j, dj, s.w) else { continue };
                                sum += x[((n * s.c + c) * s.h + y) * s.w + xx] * w[((f * s.c + c) * k + di) * k + dj];
                            }
                        }
                    }
                    out[((n * s.f + f) * oh + i) * ow + j] = sum;
                }
            }
        }
        progress(n + 1, s.n);
    }
    ControlFlow::Continue(())
}

/// The backward loop: each output gradient is spread back onto the patch it came from.
fn naive_backward<T: Float>(
    s: &ConvShape,
    x: &[T],
    w: &[T],
    dy: &[T],
    dw: &mut [T],
    db: &mut [T],
    mut dx: Option<&mut [T]>,
    progress: &mut dyn FnMut(usize, usize),
    stop: &dyn Fn() -> bool,
) -> ControlFlow<()> {
    let (oh, ow) = s.out_dims();
    let k = s.k;
    dw.fill(T::ZERO);
    db.fill(T::ZERO);
    if let Some(dx) = dx.as_deref_mut() {
        dx.fill(T::ZERO);
    }
    for n in 0..s.n {
        for f in 0..s.f {
            if stop() {
                return ControlFlow::Break(());
            }
            for i in 0..oh {
                for j in 0..ow {
                    let g = dy[((n * s.f + f) * oh + i) * ow + j];
                    db[f] += g;
                    for c in 0..s.c {
                        for di in 0..k {
                            let Some(y) = s.src(i, di, s.h) else { continue };
                            for dj in 0..k {
                                let Some(xx) = s.src(j, dj, s.w) else { continue };
                                let xi = ((n * s.c + c) * s.h + y) * s.w + xx;
                                let wi = ((f * s.c + c) * k + di) * k + dj;
                                dw[wi] += g * x[xi];
                                if let Some(dx) = dx.as_deref_mut() {
                                    dx[xi] += g * w[wi];
                                }
                            }
                        }
                    }
                }
            }
        }
        progress(n + 1, s.n);
    }
    ControlFlow::Continue(())
}

/// The output columns `j` whose input column `j·stride + dj − pad` lies inside `0..w`, as a
/// half-open range (empty when none do).
#[inline]
fn valid_cols(s: &ConvShape, dj: usize, ow: usize) -> std::ops::Range<usize> {
    // First j with j·stride + dj ≥ pad; last j with j·stride + dj − pad < w.
    let lo = s.pad.saturating_sub(dj).div_ceil(s.stride);
    let hi = if s.w + s.pad > dj { ((s.w + s.pad - dj - 1) / s.stride + 1).min(ow) } else { 0 };
    lo.min(hi)..hi
}

/// Unfolds one image into `cols[C·K·K, OH·OW]`: row (c, di, dj) holds the input pixel each
/// output position sees through that tap (0 in the padding).
fn im2col<T: Float>(s: &ConvShape, x: &[T], cols: &mut [T]) {
    let (oh, ow) = s.out_dims();
    let mut row = 0;
    for c in 0..s.c {
        let plane = &x[c * s.h * s.w..(c + 1) * s.h * s.w];
        for di in 0..s.k {
            for dj in 0..s.k {
                let dst = &mut cols[row * oh * ow..(row + 1) * oh * ow];
                let js = valid_cols(s, dj, ow);
                for i in 0..oh {
                    let line = &mut dst[i * ow..(i + 1) * ow];
                    let Some(y) = s.src(i, di, s.h) else {
                        line.fill(T::ZERO);
                        continue;
                    };
                    let src = &plane[y * s.w..(y + 1) * s.w];
                    line[..js.start].fill(T::ZERO);
                    line[js.end..].fill(T::ZERO);
                    if s.stride == 1 {
                        // Contiguous: the common case is a plain copy.
                        let x0 = js.start + dj - s.pad;
                        line[js.clone()].copy_from_slice(&src[x0..x0 + js.len()]);
                    } else {
                        for j in js.clone() {
                            line[j] = src[j * s.stride + dj - s.pad];
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each column gradient back onto the pixel it was read from.
fn col2im<T: Float>(s: &ConvShape, dcols: &[T], dx: &mut [T]) {
    let (oh, ow) = s.out_dims();
    dx.fill(T::ZERO);
    let mut row = 0;
    for c in 0..s.c {
        let plane = &mut dx[c * s.h * s.w..(c + 1) * s.h * s.w];
        for di in 0..s.k {
            for dj in 0..s.k {
                let src = &dcols[row * oh * ow..(row + 1) * oh * ow];
                let js = valid_cols(s, dj, ow);
                for i in 0..oh {
                    let Some(y) = s.src(i, di, s.h) else { continue };
                    let line = &src[i * ow..(i + 1) * ow];
                    let dst = &mut plane[y * s.w..(y + 1) * s.w];
                    if s.stride == 1 {
                        let x0 = js.start + dj - s.pad;
                        for (d, g) in dst[x0..x0 + js.len()].iter_mut().zip(&line[js.clone()]) {
                            *d += *g;
                        }
                    } else {
                        for j in js.clone() {
                            dst[j * s.stride + dj - s.pad] += line[j];
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

fn fast_forward<T: Float>(s: &ConvShape, x: &[T], w: &[T], b: &[T], out: &mut [T], ws: &mut ConvWorkspace<T>) {
    let per = per_thread(s.n);
    let (taps, pix) = (s.taps(), s.pixels());
    let parts = ws.parts(s);
    out.par_chunks_mut(per * s.out_len()).zip(x.par_chunks(per * s.in_len())).zip(parts.par_iter_mut()).for_each(
        |((out, x), part)| {
            for (o, xi) in out.chunks_mut(s.out_len()).zip(x.chunks(s.in_len())) {
                im2col(s, xi, &mut part.cols);
                T::gemm(s.f, pix, taps, w, false, &part.cols, false, o, false, true);
                for (map, &bias) in o.chunks_mut(pix).zip(b) {
                    map.iter_mut().for_each(|v| *v += bias);
                }
            }
        },
    );
}

fn fast_backward<T: Float>(
    s: &ConvShape,
    x: &[T],
    w: &[T],
    dy: &[T],
    dw: &mut [T],
    db: &mut [T],
    dx: Option<&mut [T]>,
    ws: &mut ConvWorkspace<T>,
) {
    let per = per_thread(s.n);
    let (taps, pix) = (s.taps(), s.pixels());
    let chunks = s.n.div_ceil(per);
    let parts = ws.parts(s);
    let work = |x: &[T], dy: &[T], dx: Option<&mut [T]>, part: &mut Part<T>| {
        part.dw.fill(T::ZERO);
        part.db.fill(T::ZERO);
        let images = x.len() / s.in_len();
        let mut dx = dx;
        for img in 0..images {
            let xi = &x[img * s.in_len()..(img + 1) * s.in_len()];
            let gi = &dy[img * s.out_len()..(img + 1) * s.out_len()];
            im2col(s, xi, &mut part.cols);
            // dW += dY[F, P] · colsᵀ[P, taps]
            T::gemm(s.f, taps, pix, gi, false, &part.cols, true, &mut part.dw, true, true);
            for (acc, map) in part.db.iter_mut().zip(gi.chunks(pix)) {
                *acc += map.iter().copied().sum::<T>();
            }
            if let Some(dx) = dx.as_deref_mut() {
                // dcols[taps, P] = Wᵀ[taps, F] · dY[F, P]
                T::gemm(taps, pix, s.f, w, true, gi, false, &mut part.dcols, false, true);
                col2im(s, &part.dcols, &mut dx[img * s.in_len()..(img + 1) * s.in_len()]);
            }
        }
    };
    let xs = x.par_chunks(per * s.in_len());
    let dys = dy.par_chunks(per * s.out_len());
    match dx {
        Some(dx) => dx
            .par_chunks_mut(per * s.in_len())
            .zip(xs)
            .zip(dys)
            .zip(parts.par_iter_mut())
            .for_each(|(((dx, x), dy), part)| work(x, dy, Some(dx), part)),
        None => xs.zip(dys).zip(parts.par_iter_mut()).for_each(|((x, dy), part)| work(x, dy, None, part)),
    }
    // Summed in thread order so the result does not depend on scheduling.
    dw.fill(T::ZERO);
    db.fill(T::ZERO);
    for part in &parts[..chunks] {
        dw.iter_mut().zip(&part.dw).for_each(|(a, b)| *a += *b);
        db.iter_mut().zip(&part.db).for_each(|(a, b)| *a += *b);
    }
}
