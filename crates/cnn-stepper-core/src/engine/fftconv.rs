//! Stride-1 convolution through the 2-D Fourier transform: the fast engine's conv2.
//!
//! Sliding a K×K filter costs K² multiply-adds per output pixel and channel pair; in the
//! frequency domain the same sum is one complex multiply-add per frequency. For conv2 (16 → 32
//! channels, 5×5) that is about a ninth of the arithmetic of im2col + GEMM, and the transforms
//! themselves are cheap next to it. Each plane is zero-padded to `(H+2p)×(W+2p)`, the transform
//! size, so the circular products never wrap onto a value that is kept:
//!
//! - forward: `Y[n,f] = Σ_c X[n,c]·conj(W[f,c])` (cross-correlation), cropped to the output;
//! - input gradient: `dX[n,c] = Σ_f dY[n,f]·W[f,c]` (full convolution), cropped to the image;
//! - weight gradient: `dW[f,c] = Σ_n X[n,c]·conj(dY[n,f])`, of which the first K×K values are kept.
//!
//! Spectra are stored in blocks of eight frequencies, real parts then imaginary parts, with one
//! block of every plane side by side (see below), so the products vectorise across frequencies
//! and stream through memory. In `f32` the products are explicit vector code run under
//! [`pulp`]'s run-time CPU dispatch (AVX2 and FMA where the machine has them, without a special
//! build); `f64`, used by gradient checks, runs the same sums in plain loops. The filters'
//! spectra are kept from the forward pass for the backward pass while the weights are unchanged.

use std::sync::Arc;

use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::float::Real;
use super::layout::{ConvShape, per_thread};

/// Whether the Fourier route computes this convolution, rather than im2col + GEMM.
///
/// It needs stride 1 (strided outputs are not a plain product of spectra), and it pays only when
/// each output sums over many taps: for conv1 (one input channel) the transforms cost more than
/// the GEMM they replace.
pub fn suits(s: &ConvShape) -> bool {
    s.stride == 1 && s.c >= 4 && s.k >= 3
}

/// Images whose forward products are formed together: the filters' spectra are read once per
/// group rather than once per image, and a group's products stay in cache until transformed back.
const GROUP: usize = 8;

/// Frequencies per block: one AVX2 register of `f32`.
const LANES: usize = 8;

/// Output spectra per kernel call sharing each load of `A`: 4×2 accumulators plus the loads fit
/// in AVX2's sixteen registers.
const JB: usize = 4;

// Spectra are stored "blocked": for a tensor of P planes, frequencies are cut into blocks of
// LANES, and block q of plane p holds LANES real parts then LANES imaginary parts at
// `(q·P + p)·2·LANES`. A block of every plane sits in one contiguous run, so the products below
// walk memory in order instead of jumping a page per plane.

/// Transform plans for one padded plane size, shared by all threads.
struct Plan<T: Real> {
    /// Padded height: the length of the column transforms.
    nh: usize,
    /// Padded width: the length of the row transforms.
    nw: usize,
    /// Frequencies kept per row of a real transform: `nw/2 + 1`.
    bw: usize,
    row_fwd: Arc<dyn RealToComplex<T>>,
    row_inv: Arc<dyn ComplexToReal<T>>,
    col_fwd: Arc<dyn Fft<T>>,
    col_inv: Arc<dyn Fft<T>>,
}

impl<T: Real> Plan<T> {
    fn new(nh: usize, nw: usize) -> Self {
        let mut real = RealFftPlanner::<T>::new();
        let mut complex = FftPlanner::<T>::new();
        Self {
            nh,
            nw,
            bw: nw / 2 + 1,
            row_fwd: real.plan_fft_forward(nw),
            row_inv: real.plan_fft_inverse(nw),
            col_fwd: complex.plan_fft_forward(nh),
            col_inv: complex.plan_fft_inverse(nh),
        }
    }

    /// Frequencies per plane.
    fn bins(&self) -> usize {
        self.nh * self.bw
    }

    /// Blocks of [`LANES`] frequencies per plane (the last one zero-padded).
    fn blocks(&self) -> usize {
        self.bins().div_ceil(LANES)
    }

    /// Reals per stored plane spectrum.
    fn spec_len(&self) -> usize {
        self.blocks() * 2 * LANES
    }

    /// `1 / (nh·nw)`: the transforms are unnormalised.
    fn scale(&self) -> T {
        T::ONE / <T as Real>::from_f64((self.nh * self.nw) as f64)
    }

    fn scratch(&self) -> Scratch<T> {
        let fft = self
            .row_fwd
            .get_scratch_len()
            .max(self.row_inv.get_scratch_len())
            .max(self.col_fwd.get_inplace_scratch_len())
            .max(self.col_inv.get_inplace_scratch_len());
        let zero = Complex::new(T::ZERO, T::ZERO);
        Scratch {
            line: vec![T::ZERO; self.nw],
            row: vec![zero; self.bw],
            grid: vec![zero; self.blocks() * LANES],
            fft: vec![zero; fft],
            x: Vec::new(),
            dy: Vec::new(),
            prod: Vec::new(),
            dw: Vec::new(),
        }
    }

    /// The spectrum of an `sh×sw` plane placed with its corner at `(oy, ox)` in an otherwise zero
    /// padded plane, stored as plane `p` of the `planes` in blocked `out` (frequency `kx·nh + ky`).
    fn forward(
        &self,
        src: &[T],
        sh: usize,
        sw: usize,
        oy: usize,
        ox: usize,
        sc: &mut Scratch<T>,
        out: &mut [T],
        p: usize,
        planes: usize,
    ) {
        let (nh, bins) = (self.nh, self.bins());
        sc.grid.fill(Complex::new(T::ZERO, T::ZERO));
        for (r, line) in src.chunks_exact(sw).take(sh).enumerate() {
            sc.line.fill(T::ZERO);
            sc.line[ox..ox + sw].copy_from_slice(line);
            checked(self.row_fwd.process_with_scratch(&mut sc.line, &mut sc.row, &mut sc.fft));
            // Column-major, so the column transforms below run on contiguous runs.
            for (kx, v) in sc.row.iter().enumerate() {
                sc.grid[kx * nh + oy + r] = *v;
            }
        }
        self.col_fwd.process_with_scratch(&mut sc.grid[..bins], &mut sc.fft);
        for (q, block) in sc.grid.chunks_exact(LANES).enumerate() {
            let dst = &mut out[(q * planes + p) * 2 * LANES..][..2 * LANES];
            let (re, im) = dst.split_at_mut(LANES);
            for ((r, i), v) in re.iter_mut().zip(im.iter_mut()).zip(block) {
                *r = v.re;
                *i = v.im;
            }
        }
    }

    /// The inverse of [`Plan::forward`]: rows `oy..oy+sh`, columns `ox..ox+sw` of the plane whose
    /// spectrum is plane `p` of the `planes` in blocked `spec`, times `scale`, into `dst` (`sh×sw`).
    fn inverse(
        &self,
        spec: &[T],
        p: usize,
        planes: usize,
        (oy, sh): (usize, usize),
        (ox, sw): (usize, usize),
        sc: &mut Scratch<T>,
        dst: &mut [T],
    ) {
        let (nh, bins, scale) = (self.nh, self.bins(), self.scale());
        for (q, block) in sc.grid.chunks_exact_mut(LANES).enumerate() {
            let src = &spec[(q * planes + p) * 2 * LANES..][..2 * LANES];
            let (re, im) = src.split_at(LANES);
            for ((g, r), i) in block.iter_mut().zip(re).zip(im) {
                *g = Complex::new(*r, *i);
            }
        }
        self.col_inv.process_with_scratch(&mut sc.grid[..bins], &mut sc.fft);
        for (r, out) in dst.chunks_exact_mut(sw).take(sh).enumerate() {
            for (kx, v) in sc.row.iter_mut().enumerate() {
                *v = sc.grid[kx * nh + oy + r];
            }
            // The spectrum of a real row has real DC and Nyquist terms; what rounding left in
            // their imaginary parts is dropped, as the real inverse transform requires.
            sc.row[0].im = T::ZERO;
            if self.nw.is_multiple_of(2) {
                sc.row[self.bw - 1].im = T::ZERO;
            }
            checked(self.row_inv.process_with_scratch(&mut sc.row, &mut sc.line, &mut sc.fft));
            for (d, v) in out.iter_mut().zip(&sc.line[ox..ox + sw]) {
                *d = *v * scale;
            }
        }
    }
}

/// The transforms fail only on buffer lengths, which [`Plan`] sizes itself.
fn checked(r: Result<(), realfft::FftError>) {
    debug_assert!(r.is_ok(), "{r:?}");
}

/// One thread's transform buffers, and its spectra (blocked).
struct Scratch<T> {
    line: Vec<T>,
    row: Vec<Complex<T>>,
    grid: Vec<Complex<T>>,
    fft: Vec<Complex<T>>,
    /// Input spectra of the thread's images (or group of images).
    x: Vec<T>,
    /// Output-gradient spectra of the thread's images.
    dy: Vec<T>,
    /// Products before they are transformed back.
    prod: Vec<T>,
    /// The thread's share of the weight-gradient spectra `[F, C]`.
    dw: Vec<T>,
}

/// Transform plans and buffers the Fourier route reuses across steps.
#[derive(Default)]
pub struct FftWorkspace<T: Real> {
    plan: Option<Arc<Plan<T>>>,
    scratch: Vec<Scratch<T>>,
    /// Filter spectra `[F, C]`, one plane after another, before blocking.
    wplain: Vec<T>,
    /// Filter spectra `[F, C]`, blocked.
    wspec: Vec<T>,
    /// The filters `wspec` was computed from: the backward pass reuses the forward's spectra
    /// when the weights are unchanged, which a comparison of 12,800 values settles.
    wfrom: Vec<T>,
    /// `(F, C, K)` of `wfrom`.
    wshape: (usize, usize, usize),
}

impl<T: Real> std::fmt::Debug for FftWorkspace<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FftWorkspace").field("plan", &self.plan.as_ref().map(|p| (p.nh, p.nw))).finish()
    }
}

impl<T: Real> FftWorkspace<T> {
    /// The plan for `s` (made on first use or when the padded size changes), with one set of
    /// buffers per thread of the pool.
    fn prepare(&mut self, s: &ConvShape) -> Arc<Plan<T>> {
        let (nh, nw) = (s.h + 2 * s.pad, s.w + 2 * s.pad);
        let plan = match &self.plan {
            Some(p) if p.nh == nh && p.nw == nw => Arc::clone(p),
            _ => {
                self.scratch.clear();
                self.wfrom.clear();
                Arc::clone(self.plan.insert(Arc::new(Plan::new(nh, nw))))
            }
        };
        let threads = rayon::current_num_threads().max(1);
        self.scratch.truncate(threads);
        while self.scratch.len() < threads {
            self.scratch.push(plan.scratch());
        }
        plan
    }

    /// The filters' spectra, `[F, C]` blocked, into `wspec`.
    fn filter_spectra(&mut self, s: &ConvShape, plan: &Plan<T>, w: &[T]) {
        let (sl, kk, planes) = (plan.spec_len(), s.k * s.k, s.f * s.c);
        if self.wfrom == w && self.wshape == (s.f, s.c, s.k) && self.wspec.len() == planes * sl {
            return;
        }
        self.wfrom.clear();
        self.wshape = (s.f, s.c, s.k);
        self.wplain.resize(planes * sl, T::ZERO);
        self.wspec.resize(planes * sl, T::ZERO);
        let per = per_thread(s.f);
        self.wplain
            .par_chunks_mut(per * s.c * sl)
            .zip(w.par_chunks(per * s.c * kk))
            .zip(self.scratch.par_iter_mut())
            .for_each(|((spec, w), sc)| {
                for (out, k) in spec.chunks_exact_mut(sl).zip(w.chunks_exact(kk)) {
                    plan.forward(k, s.k, s.k, 0, 0, sc, out, 0, 1);
                }
            });
        let plain = &self.wplain;
        self.wspec.par_chunks_mut(planes * 2 * LANES).enumerate().for_each(|(q, dst)| {
            for (p, d) in dst.chunks_exact_mut(2 * LANES).enumerate() {
                d.copy_from_slice(&plain[p * sl + q * 2 * LANES..][..2 * LANES]);
            }
        });
        self.wfrom.extend_from_slice(w);
    }
}

/// Forward convolution, `out = conv(x, w) + b`, for a shape [`suits`] accepts.
pub fn forward<T: SpectralKernels>(s: &ConvShape, x: &[T], w: &[T], b: &[T], out: &mut [T], ws: &mut FftWorkspace<T>) {
    let plan = ws.prepare(s);
    ws.filter_spectra(s, &plan, w);
    let (sl, (oh, ow), hw) = (plan.spec_len(), s.out_dims(), s.h * s.w);
    let wspec = &ws.wspec[..];
    let per = per_thread(s.n);
    out.par_chunks_mut(per * s.out_len()).zip(x.par_chunks(per * s.in_len())).zip(ws.scratch.par_iter_mut()).for_each(
        |((out, x), sc)| {
            for (out, x) in out.chunks_mut(GROUP * s.out_len()).zip(x.chunks(GROUP * s.in_len())) {
                let g = x.len() / s.in_len();
                let (mut xs, mut prod) = (std::mem::take(&mut sc.x), std::mem::take(&mut sc.prod));
                xs.resize(g * s.c * sl, T::ZERO);
                prod.resize(g * s.f * sl, T::ZERO);
                for (p, plane) in x.chunks_exact(hw).enumerate() {
                    plan.forward(plane, s.h, s.w, s.pad, s.pad, sc, &mut xs, p, g * s.c);
                }
                // Y[n, f] = Σ_c X[n, c]·conj(W[f, c])
                T::spectral_mac(Mac {
                    conj_a: false,
                    conj_b: true,
                    blocks: plan.blocks(),
                    out: &mut prod,
                    i_count: g,
                    j_count: s.f,
                    l_count: s.c,
                    a: Operand { data: &xs, planes: g * s.c, first: 0, i: s.c, l: 1 },
                    b: Operand { data: wspec, planes: s.f * s.c, first: 0, i: s.c, l: 1 },
                });
                for (p, (map, &bias)) in out.chunks_exact_mut(oh * ow).zip(b.iter().cycle()).enumerate() {
                    plan.inverse(&prod, p, g * s.f, (0, oh), (0, ow), sc, map);
                    map.iter_mut().for_each(|v| *v += bias);
                }
                sc.x = xs;
                sc.prod = prod;
            }
        },
    );
}

/// Backward convolution for a shape [`suits`] accepts: `dw`, `db` and, when given, `dx`, all
/// overwritten.
pub fn backward<T: SpectralKernels>(
    s: &ConvShape,
    x: &[T],
    w: &[T],
    dy: &[T],
    dw: &mut [T],
    db: &mut [T],
    dx: Option<&mut [T]>,
    ws: &mut FftWorkspace<T>,
) {
    let plan = ws.prepare(s);
    ws.filter_spectra(s, &plan, w);
    let (sl, (oh, ow), hw) = (plan.spec_len(), s.out_dims(), s.h * s.w);
    let wspec = &ws.wspec[..];
    let per = per_thread(s.n);

    // Each thread, for its images: the input and output-gradient spectra, dX, and its share of
    // the weight-gradient spectra.
    let work = |x: &[T], dy: &[T], dx: Option<&mut [T]>, sc: &mut Scratch<T>| {
        let nc = x.len() / s.in_len();
        let (mut xs, mut dys, mut prod, mut dws) = (
            std::mem::take(&mut sc.x),
            std::mem::take(&mut sc.dy),
            std::mem::take(&mut sc.prod),
            std::mem::take(&mut sc.dw),
        );
        xs.resize(nc * s.c * sl, T::ZERO);
        dys.resize(nc * s.f * sl, T::ZERO);
        dws.resize(s.f * s.c * sl, T::ZERO);
        for (p, plane) in x.chunks_exact(hw).enumerate() {
            plan.forward(plane, s.h, s.w, s.pad, s.pad, sc, &mut xs, p, nc * s.c);
        }
        for (p, plane) in dy.chunks_exact(oh * ow).enumerate() {
            plan.forward(plane, oh, ow, 0, 0, sc, &mut dys, p, nc * s.f);
        }
        if let Some(dx) = dx {
            for (g0, dx) in (0..nc).step_by(GROUP).zip(dx.chunks_mut(GROUP * s.in_len())) {
                let g = dx.len() / s.in_len();
                prod.resize(g * s.c * sl, T::ZERO);
                // dX[n, c] = Σ_f dY[n, f]·W[f, c]
                T::spectral_mac(Mac {
                    conj_a: false,
                    conj_b: false,
                    blocks: plan.blocks(),
                    out: &mut prod,
                    i_count: g,
                    j_count: s.c,
                    l_count: s.f,
                    a: Operand { data: &dys, planes: nc * s.f, first: g0 * s.f, i: s.f, l: 1 },
                    b: Operand { data: wspec, planes: s.f * s.c, first: 0, i: 1, l: s.c },
                });
                for (p, plane) in dx.chunks_exact_mut(hw).enumerate() {
                    plan.inverse(&prod, p, g * s.c, (s.pad, s.h), (s.pad, s.w), sc, plane);
                }
            }
        }
        // dW[f, c] = Σ_n conj(dY[n, f])·X[n, c], over this thread's images.
        T::spectral_mac(Mac {
            conj_a: true,
            conj_b: false,
            blocks: plan.blocks(),
            out: &mut dws,
            i_count: s.f,
            j_count: s.c,
            l_count: nc,
            a: Operand { data: &dys, planes: nc * s.f, first: 0, i: 1, l: s.f },
            b: Operand { data: &xs, planes: nc * s.c, first: 0, i: 1, l: s.c },
        });
        (sc.x, sc.dy, sc.prod, sc.dw) = (xs, dys, prod, dws);
    };
    let xs = x.par_chunks(per * s.in_len());
    let dys = dy.par_chunks(per * s.out_len());
    let chunks = s.n.div_ceil(per);
    match dx {
        Some(dx) => dx
            .par_chunks_mut(per * s.in_len())
            .zip(xs)
            .zip(dys)
            .zip(ws.scratch.par_iter_mut())
            .for_each(|(((dx, x), dy), sc)| work(x, dy, Some(dx), sc)),
        None => xs.zip(dys).zip(ws.scratch.par_iter_mut()).for_each(|((x, dy), sc)| work(x, dy, None, sc)),
    }

    // Summed in thread order so the result does not depend on scheduling.
    let (first, rest) = ws.scratch.split_at_mut(1);
    let total = &mut first[0].dw;
    for sc in &rest[..chunks.saturating_sub(1)] {
        total.iter_mut().zip(&sc.dw).for_each(|(a, b)| *a += *b);
    }
    let total = std::mem::take(total);
    let kk = s.k * s.k;
    let per_f = per_thread(s.f * s.c);
    dw.par_chunks_mut(per_f * kk).zip(ws.scratch.par_iter_mut()).enumerate().for_each(|(t, (dw, sc))| {
        for (p, k) in dw.chunks_exact_mut(kk).enumerate() {
            plan.inverse(&total, t * per_f + p, s.f * s.c, (0, s.k), (0, s.k), sc, k);
        }
    });
    ws.scratch[0].dw = total;
    for (f, acc) in db.iter_mut().enumerate() {
        *acc = (0..s.n).map(|n| dy[(n * s.f + f) * oh * ow..][..oh * ow].iter().copied().sum::<T>()).sum();
    }
}

/// One side of a spectral product: spectrum `(i, l)` is plane `first + i·self.i + l·self.l` of
/// the `planes` stored blocked in `data`.
#[doc(hidden)]
pub struct Operand<'a, T> {
    data: &'a [T],
    planes: usize,
    first: usize,
    i: usize,
    l: usize,
}

/// `out[i, j] = Σ_l A[i, l]·B[j, l]` at every frequency, with `A` conjugated when `conj_a` and
/// `B` when `conj_b`; `out` holds `i_count·j_count` planes, blocked.
#[doc(hidden)]
pub struct Mac<'a, T> {
    blocks: usize,
    out: &'a mut [T],
    i_count: usize,
    j_count: usize,
    l_count: usize,
    a: Operand<'a, T>,
    b: Operand<'a, T>,
    conj_a: bool,
    conj_b: bool,
}

impl<T> Mac<'_, T> {
    /// Offset of the real half of block `q` of output `(i, j)`.
    #[inline(always)]
    fn out_at(&self, q: usize, i: usize, j: usize) -> usize {
        (q * self.i_count * self.j_count + i * self.j_count + j) * 2 * LANES
    }
}

impl<T> Operand<'_, T> {
    /// Offset of the real half of block `q` of spectrum `(i, l)` (`i` is `j` for `B`).
    #[inline(always)]
    fn at(&self, q: usize, i: usize, l: usize) -> usize {
        (q * self.planes + self.first + i * self.i + l * self.l) * 2 * LANES
    }
}

/// [`Mac`] in plain loops, for `f64` (gradient checks) and CPUs the vector code does not fit.
#[doc(hidden)]
pub fn mac_plain<T: Real>(m: Mac<'_, T>) {
    match (m.conj_a, m.conj_b) {
        (false, false) => Arch::new().dispatch(Plain::<T, false, false>(m)),
        (false, true) => Arch::new().dispatch(Plain::<T, false, true>(m)),
        (true, false) => Arch::new().dispatch(Plain::<T, true, false>(m)),
        (true, true) => Arch::new().dispatch(Plain::<T, true, true>(m)),
    }
}

/// [`Mac`] in explicit `f32` vectors, four complex multiply-adds as four FMAs.
#[doc(hidden)]
pub fn mac_f32(m: Mac<'_, f32>) {
    match (m.conj_a, m.conj_b) {
        (false, false) => Arch::new().dispatch(Vector::<false, false>(m)),
        (false, true) => Arch::new().dispatch(Vector::<false, true>(m)),
        (true, false) => Arch::new().dispatch(Vector::<true, false>(m)),
        (true, true) => Arch::new().dispatch(Vector::<true, true>(m)),
    }
}

struct Plain<'a, T, const CA: bool, const CB: bool>(Mac<'a, T>);

impl<T: Real, const CA: bool, const CB: bool> WithSimd for Plain<'_, T, CA, CB> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(mut self, _simd: S) {
        let m = &mut self.0;
        // Blocks outermost, so that one block of every spectrum involved stays in cache.
        for q in 0..m.blocks {
            for i in 0..m.i_count {
                let mut j = 0;
                while j + JB <= m.j_count {
                    plain_block::<T, JB, CA, CB>(m, q, i, j);
                    j += JB;
                }
                for j in j..m.j_count {
                    plain_block::<T, 1, CA, CB>(m, q, i, j);
                }
            }
        }
    }
}

/// Block `q` of outputs `(i, j..j+NJ)`.
#[inline(always)]
fn plain_block<T: Real, const NJ: usize, const CA: bool, const CB: bool>(
    m: &mut Mac<'_, T>,
    q: usize,
    i: usize,
    j: usize,
) {
    const W: usize = LANES;
    let mut re = [[T::ZERO; W]; NJ];
    let mut im = [[T::ZERO; W]; NJ];
    for l in 0..m.l_count {
        let pa = m.a.at(q, i, l);
        let (ar, ai) = (&m.a.data[pa..][..W], &m.a.data[pa + W..][..W]);
        for jj in 0..NJ {
            let pb = m.b.at(q, j + jj, l);
            let (br, bi) = (&m.b.data[pb..][..W], &m.b.data[pb + W..][..W]);
            for v in 0..W {
                let xi = if CA { -ai[v] } else { ai[v] };
                let yi = if CB { -bi[v] } else { bi[v] };
                re[jj][v] += ar[v] * br[v] - xi * yi;
                im[jj][v] += ar[v] * yi + xi * br[v];
            }
        }
    }
    for jj in 0..NJ {
        let po = m.out_at(q, i, j + jj);
        m.out[po..][..W].copy_from_slice(&re[jj]);
        m.out[po + W..][..W].copy_from_slice(&im[jj]);
    }
}

struct Vector<'a, const CA: bool, const CB: bool>(Mac<'a, f32>);

impl<const CA: bool, const CB: bool> WithSimd for Vector<'_, CA, CB> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        if S::F32_LANES > LANES || !LANES.is_multiple_of(S::F32_LANES) {
            return mac_plain(self.0);
        }
        let mut m = self.0;
        // As in `Plain`: every call below must inline into this function, which is compiled for
        // the CPU's vector instructions; a closure here would not be.
        for q in 0..m.blocks {
            for i in 0..m.i_count {
                let mut j = 0;
                while j + JB <= m.j_count {
                    vector_block::<S, JB, CA, CB>(simd, &mut m, q, i, j);
                    j += JB;
                }
                for j in j..m.j_count {
                    vector_block::<S, 1, CA, CB>(simd, &mut m, q, i, j);
                }
            }
        }
    }
}

/// Block `q` of outputs `(i, j..j+NJ)`, one vector of the block at a time. With `A = ar + i·ai'`
/// and `B = br + i·bi'` (the primes carrying the conjugations), `re += ar·br − ai'·bi'` and
/// `im += ar·bi' + ai'·br`.
#[inline(always)]
fn vector_block<S: Simd, const NJ: usize, const CA: bool, const CB: bool>(
    simd: S,
    m: &mut Mac<'_, f32>,
    q: usize,
    i: usize,
    j: usize,
) {
    let zero = simd.splat_f32s(0.0);
    for v in 0..LANES / S::F32_LANES {
        let mut re = [zero; NJ];
        let mut im = [zero; NJ];
        for l in 0..m.l_count {
            let pa = m.a.at(q, i, l);
            let ar = S::as_simd_f32s(&m.a.data[pa..pa + LANES]).0[v];
            let ai = S::as_simd_f32s(&m.a.data[pa + LANES..pa + 2 * LANES]).0[v];
            let ai = if CA { simd.sub_f32s(zero, ai) } else { ai };
            let nai = simd.sub_f32s(zero, ai);
            for jj in 0..NJ {
                let pb = m.b.at(q, j + jj, l);
                let br = S::as_simd_f32s(&m.b.data[pb..pb + LANES]).0[v];
                let bi = S::as_simd_f32s(&m.b.data[pb + LANES..pb + 2 * LANES]).0[v];
                let bi = if CB { simd.sub_f32s(zero, bi) } else { bi };
                re[jj] = simd.mul_add_e_f32s(ar, br, re[jj]);
                re[jj] = simd.mul_add_e_f32s(nai, bi, re[jj]);
                im[jj] = simd.mul_add_e_f32s(ar, bi, im[jj]);
                im[jj] = simd.mul_add_e_f32s(ai, br, im[jj]);
            }
        }
        for jj in 0..NJ {
            let po = m.out_at(q, i, j + jj);
            S::as_mut_simd_f32s(&mut m.out[po..po + LANES]).0[v] = re[jj];
            S::as_mut_simd_f32s(&mut m.out[po + LANES..po + 2 * LANES]).0[v] = im[jj];
        }
    }
}

/// The number types the Fourier convolution runs in: a [`Real`] with the products of spectra,
/// explicitly vectorised for `f32` (training) and plain loops for `f64` (gradient checks).
pub trait SpectralKernels: Real {
    /// `out[i, j] = Σ_l A[i, l]·B[j, l]` at every frequency (see [`Mac`]).
    #[doc(hidden)]
    fn spectral_mac(m: Mac<'_, Self>);
}

impl SpectralKernels for f32 {
    fn spectral_mac(m: Mac<'_, Self>) {
        mac_f32(m)
    }
}

impl SpectralKernels for f64 {
    fn spectral_mac(m: Mac<'_, Self>) {
        mac_plain(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::conv::{self, ConvEngine, ConvWorkspace};

    fn values(len: usize, seed: u64) -> Vec<f64> {
        // A cheap deterministic spread of signs and magnitudes.
        (0..len).map(|i| ((i as f64 + 1.0) * 0.7548776662 + seed as f64 * 0.5698402910).fract() * 2.0 - 1.0).collect()
    }

    /// The largest difference relative to the largest magnitude of the reference.
    fn rel_err(got: &[f64], want: &[f64]) -> f64 {
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
        got.iter().zip(want).fold(0.0f64, |m, (g, w)| m.max((g - w).abs())) / scale
    }

    /// The naive loops' output and gradients `(out, dW, db, dX)`, the reference.
    fn naive(s: &ConvShape, x: &[f64], w: &[f64], b: &[f64], dy: &[f64]) -> [Vec<f64>; 4] {
        let mut cw = ConvWorkspace::default();
        let mut out = vec![0.0; s.n * s.out_len()];
        conv::forward(ConvEngine::Naive, s, x, w, b, &mut out, &mut cw, &mut |_, _| {});
        let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; s.f], vec![0.0; x.len()]);
        conv::backward(ConvEngine::Naive, s, x, w, dy, &mut dw, &mut db, Some(&mut dx), &mut cw, &mut |_, _| {});
        [out, dw, db, dx]
    }

    fn shapes() -> Vec<ConvShape> {
        let s = |n, c, h, w, f, k, pad| ConvShape { n, c, h, w, f, k, stride: 1, pad };
        vec![
            s(3, 4, 8, 8, 5, 3, 1),
            s(2, 5, 7, 9, 3, 5, 2),   // odd, non-square planes
            s(1, 4, 6, 6, 6, 5, 0),   // no padding: the output is smaller than the input
            s(17, 6, 5, 5, 9, 3, 1),  // more images than a group, uneven split over threads
            s(2, 4, 10, 10, 4, 3, 3), // padding wider than needed for "same"
        ]
    }

    #[test]
    fn fourier_route_matches_the_naive_loops_in_f64() {
        for (t, s) in shapes().into_iter().enumerate() {
            assert!(suits(&s));
            let x = values(s.n * s.in_len(), 1 + t as u64);
            let w = values(s.f * s.taps(), 2 + t as u64);
            let b = values(s.f, 3 + t as u64);
            let dy = values(s.n * s.out_len(), 4 + t as u64);
            let [want, dw0, db0, dx0] = naive(&s, &x, &w, &b, &dy);
            let mut ws = FftWorkspace::default();
            let mut got = vec![f64::NAN; want.len()];
            forward(&s, &x, &w, &b, &mut got, &mut ws);
            assert!(rel_err(&got, &want) < 1e-12, "forward {s:?}: {}", rel_err(&got, &want));

            let (mut dw, mut db, mut dx) = (vec![f64::NAN; w.len()], vec![f64::NAN; s.f], vec![f64::NAN; x.len()]);
            backward(&s, &x, &w, &dy, &mut dw, &mut db, Some(&mut dx), &mut ws);
            assert!(rel_err(&dw, &dw0) < 1e-12, "dW {s:?}: {}", rel_err(&dw, &dw0));
            assert!(rel_err(&db, &db0) < 1e-12, "db {s:?}");
            assert!(rel_err(&dx, &dx0) < 1e-12, "dX {s:?}: {}", rel_err(&dx, &dx0));
            // Without dX, the parameter gradients are unchanged.
            let (mut dw2, mut db2) = (vec![f64::NAN; w.len()], vec![f64::NAN; s.f]);
            backward(&s, &x, &w, &dy, &mut dw2, &mut db2, None, &mut ws);
            assert_eq!(dw2, dw);
            assert_eq!(db2, db);
            // New weights are transformed afresh, not taken from the spectra kept for the old.
            let w2: Vec<f64> = w.iter().map(|v| v * -1.5 + 0.01).collect();
            let [want, _, _, dx0] = naive(&s, &x, &w2, &b, &dy);
            backward(&s, &x, &w2, &dy, &mut dw, &mut db, Some(&mut dx), &mut ws);
            assert!(rel_err(&dx, &dx0) < 1e-12, "dX after new weights {s:?}");
            forward(&s, &x, &w2, &b, &mut got, &mut ws);
            assert!(rel_err(&got, &want) < 1e-12, "forward after new weights {s:?}");
        }
    }

    #[test]
    fn fourier_route_in_f32_is_within_rounding_of_the_f64_loops() {
        // The post's conv2 shape, where the transforms are 32×32, and an odd one whose filter
        // count leaves a remainder after the vector code's runs of four.
        let post = ConvShape { n: 3, c: 16, h: 28, w: 28, f: 32, k: 5, stride: 1, pad: 2 };
        let odd = ConvShape { n: 5, c: 6, h: 9, w: 7, f: 9, k: 3, stride: 1, pad: 1 };
        for s in [post, odd] {
            let x = values(s.n * s.in_len(), 7);
            let w: Vec<f64> = values(s.f * s.taps(), 8).iter().map(|v| v * 0.05).collect();
            let b = values(s.f, 9);
            let dy = values(s.n * s.out_len(), 10);
            let [want, dw0, db0, dx0] = naive(&s, &x, &w, &b, &dy);

            let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let f64s = |v: &[f32]| v.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
            let (x, w, b, dy) = (f32s(&x), f32s(&w), f32s(&b), f32s(&dy));
            let mut ws = FftWorkspace::default();
            let mut got = vec![0.0f32; want.len()];
            forward(&s, &x, &w, &b, &mut got, &mut ws);
            let (mut dw, mut db, mut dx) = (vec![0.0f32; w.len()], vec![0.0f32; s.f], vec![0.0f32; x.len()]);
            backward(&s, &x, &w, &dy, &mut dw, &mut db, Some(&mut dx), &mut ws);
            for (name, got, want) in [("out", &got, &want), ("dW", &dw, &dw0), ("db", &db, &db0), ("dX", &dx, &dx0)] {
                let e = rel_err(&f64s(got), want);
                assert!(e < 2e-6, "{name} of {s:?}: relative error {e}");
            }
        }
    }

    #[test]
    fn strided_or_single_channel_layers_stay_on_im2col() {
        let s = ConvShape { n: 1, c: 16, h: 28, w: 28, f: 32, k: 5, stride: 2, pad: 2 };
        assert!(!suits(&s));
        assert!(!suits(&ConvShape { stride: 1, c: 1, ..s }));
        assert!(suits(&ConvShape { stride: 1, ..s }));
    }
}
