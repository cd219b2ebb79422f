//! The convolution playground's maths: one small square input, one kernel (or a pooling
//! window), padding and stride, and every position the window takes, in the order the post's
//! loops visit them (`for h … for w`), with the numbers each one multiplies, adds or compares.
//!
//! The output size is the post's `1 + (H − HH + 2·pad) / stride`, whose `int()` floors: when the
//! division is not exact the last rows and columns of the padded input are never read, and
//! [`OutputSize`] says which. A convolution here is the post's (and PyTorch's): the kernel is not
//! flipped, `out[h, w] = Σ x_pad[h·s + i, w·s + j] · k[i, j] + b`, and it gives the numbers of
//! [`crate::engine::conv`]'s naive loops; the pools give those of
//! [`crate::engine::model::layers::pool`] (no padding, as there).
//!
//! No GUI here: the window draws what this computes. A lesson can describe a state as a line
//! such as `size=7 input=seven kernel=edge-vertical pad=1 stride=2` ([`Setup::parse`]).

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The smallest input side the playground offers (a 5×5 kernel does not fit it unpadded).
pub const MIN_SIDE: usize = 3;
/// The largest input side.
pub const MAX_SIDE: usize = 9;
/// The kernel sides offered.
pub const KERNEL_SIDES: [usize; 2] = [3, 5];
/// The pooling windows offered.
pub const POOL_SIDES: [usize; 2] = [2, 3];
/// The largest padding.
pub const MAX_PAD: usize = 2;
/// The largest stride.
pub const MAX_STRIDE: usize = 3;

/// What the window computes at each position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Multiply by the kernel and add up, plus the bias.
    #[default]
    Conv,
    /// The largest value of the window.
    MaxPool,
    /// The mean of the window.
    AvgPool,
}

impl Mode {
    /// Every mode, in menu order.
    pub const ALL: [Mode; 3] = [Mode::Conv, Mode::MaxPool, Mode::AvgPool];

    /// The name shown: "convolution", "max pooling", "average pooling".
    pub fn name(self) -> &'static str {
        match self {
            Mode::Conv => "convolution",
            Mode::MaxPool => "max pooling",
            Mode::AvgPool => "average pooling",
        }
    }

    /// The word a setup line uses: `conv`, `max`, `avg`.
    pub fn key(self) -> &'static str {
        match self {
            Mode::Conv => "conv",
            Mode::MaxPool => "max",
            Mode::AvgPool => "avg",
        }
    }

    /// True for the two pools.
    pub fn is_pool(self) -> bool {
        self != Mode::Conv
    }
}

/// A square grid of numbers, row after row.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    side: usize,
    values: Vec<f32>,
}

impl Grid {
    /// A `side`×`side` grid of zeros.
    pub fn zeros(side: usize) -> Self {
        Self { side, values: vec![0.0; side * side] }
    }

    /// A grid whose value at (row, column) is `f(row, column)`.
    pub fn from_fn(side: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let values = (0..side * side).map(|i| f(i / side, i % side)).collect();
        Self { side, values }
    }

    /// A grid of `values` given row after row; `None` unless there are `side²` of them.
    pub fn new(side: usize, values: Vec<f32>) -> Option<Self> {
        (values.len() == side * side).then_some(Self { side, values })
    }

    /// Rows (and columns).
    pub fn side(&self) -> usize {
        self.side
    }

    /// The values, row after row.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The value at (`row`, `col`), if inside.
    pub fn get(&self, row: usize, col: usize) -> Option<f32> {
        (row < self.side && col < self.side).then(|| self.values[row * self.side + col])
    }

    /// Sets the value at (`row`, `col`); outside the grid nothing changes.
    pub fn set(&mut self, row: usize, col: usize, value: f32) {
        if row < self.side && col < self.side {
            self.values[row * self.side + col] = value;
        }
    }

    /// The grid with `pad` rings of zeros around it.
    pub fn padded(&self, pad: usize) -> Grid {
        let side = self.side + 2 * pad;
        Grid::from_fn(side, |r, c| {
            let inside = |v: usize| v.checked_sub(pad).filter(|&v| v < self.side);
            match (inside(r), inside(c)) {
                (Some(r), Some(c)) => self.values[r * self.side + c],
                _ => 0.0,
            }
        })
    }
}

/// The post's output-size formula, `1 + (H − HH + 2·pad) / stride`, with its numbers, and what
/// its floor leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputSize {
    /// The input's side, H.
    pub input: usize,
    /// The kernel's (or pooling window's) side, HH.
    pub window: usize,
    /// Zero rings around the input.
    pub pad: usize,
    /// Step between two positions of the window.
    pub stride: usize,
}

/// What is said about a row (or column) of the padded input that no window reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unread {
    /// Row `r` of the input itself (counted from 0, as numpy does).
    Input(usize),
    /// A row of the zero padding.
    Padding,
}

impl OutputSize {
    /// The side of the padded input, H + 2·pad.
    pub fn padded(&self) -> usize {
        self.input + 2 * self.pad
    }

    /// `H − HH + 2·pad`, or `None` when the window is larger than the padded input.
    pub fn span(&self) -> Option<usize> {
        self.padded().checked_sub(self.window)
    }

    /// The output's side, or `None` when the window does not fit in the padded input.
    pub fn out(&self) -> Option<usize> {
        Some(self.span()? / self.stride.max(1) + 1)
    }

    /// What the floor drops: `(H − HH + 2·pad) mod stride` (0 when the window does not fit).
    pub fn remainder(&self) -> usize {
        self.span().map_or(0, |s| s % self.stride.max(1))
    }

    /// The rows (and, the input being square, the columns) of the padded input no window
    /// reads, in padded coordinates: the last `remainder` ones.
    pub fn unread_padded(&self) -> std::ops::Range<usize> {
        let p = self.padded();
        p - self.remainder()..p
    }

    /// The unread rows as the input knows them: its own rows, or padding.
    pub fn unread(&self) -> Vec<Unread> {
        self.unread_padded()
            .map(|p| match p.checked_sub(self.pad).filter(|&r| r < self.input) {
                Some(r) => Unread::Input(r),
                None => Unread::Padding,
            })
            .collect()
    }

    /// True when the output is as large as the input (e.g. "same" padding at stride 1).
    pub fn keeps_size(&self) -> bool {
        self.out() == Some(self.input)
    }

    /// The formula with the numbers filled in:
    /// `1 + (8 − 3 + 2·0) / 2 = 1 + 5 / 2 = 1 + 2 = 3`; when the window does not fit,
    /// `1 + (3 − 5 + 2·0) / 1 = 1 + (−2) / 1: the window is larger than the padded input`.
    pub fn formula(&self) -> String {
        let head = format!("1 + ({} − {} + 2·{}) / {}", self.input, self.window, self.pad, self.stride);
        match self.span() {
            None => {
                let short = self.window - self.padded();
                format!("{head} = 1 + (−{short}) / {}: no output", self.stride)
            }
            Some(span) => {
                let out = span / self.stride.max(1) + 1;
                if self.stride == 1 {
                    format!("{head} = 1 + {span} = {out}")
                } else if self.remainder() == 0 {
                    format!("{head} = 1 + {span} / {} = 1 + {} = {out}", self.stride, out - 1)
                } else {
                    format!(
                        "{head} = 1 + {span} / {} = 1 + int({}) = 1 + {} = {out}",
                        self.stride,
                        decimal(span, self.stride),
                        out - 1
                    )
                }
            }
        }
    }

    /// The sentence that goes with the formula when there is something to say: the window
    /// does not fit, the floor leaves rows and columns out (and which), or the output keeps
    /// the input's size.
    pub fn explanation(&self) -> Option<String> {
        let Some(span) = self.span() else {
            return Some(format!(
                "The {w}×{w} window is larger than the padded input ({p}×{p}): it fits nowhere, so no output can be \
                 made. Pad more, or choose a smaller window.",
                w = self.window,
                p = self.padded()
            ));
        };
        let rem = self.remainder();
        if rem > 0 {
            let out = span / self.stride + 1;
            let last = (out - 1) * self.stride + self.window - 1;
            let of = if self.pad > 0 { "the padded input" } else { "the input" };
            return Some(format!(
                "{span} is not a multiple of the stride {s}: the post's int() floors {span} / {s} to {q}, so the last \
                 window ends at row {last} of {of}, and {}",
                unread_sentence(&self.unread()),
                s = self.stride,
                q = span / self.stride,
            ));
        }
        if self.keeps_size() {
            return Some(if self.pad > 0 {
                format!(
                    "The output keeps the input's size ({n}×{n}): \"same\" padding, pad = (HH − 1) / 2 = {} at stride 1.",
                    self.pad,
                    n = self.input
                )
            } else {
                format!("The output keeps the input's size ({n}×{n}).", n = self.input)
            });
        }
        None
    }
}

/// `5 / 2` as a decimal, `2.5` (`1.667` for thirds).
fn decimal(a: usize, b: usize) -> String {
    let v = a as f64 / b as f64;
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// "row 7 and column 7 of the input are never read." for the unread rows.
fn unread_sentence(unread: &[Unread]) -> String {
    let rows: Vec<usize> =
        unread.iter().filter_map(|u| if let Unread::Input(r) = u { Some(*r) } else { None }).collect();
    let padding = unread.iter().filter(|u| **u == Unread::Padding).count();
    let list = |v: &[usize]| match v {
        [one] => one.to_string(),
        [init @ .., last] => {
            format!("{} and {last}", init.iter().map(usize::to_string).collect::<Vec<_>>().join(", "))
        }
        [] => String::new(),
    };
    let plural = |word: &str| if rows.len() == 1 { word.to_string() } else { format!("{word}s") };
    let zeros = match padding {
        0 => String::new(),
        1 => ", nor the padding ring after them".to_string(),
        n => format!(", nor the {n} padding rings after them"),
    };
    if rows.is_empty() {
        if padding == 1 {
            "the last padding ring (a row and a column) is never read: only zeros are left out.".to_string()
        } else {
            format!("the last {padding} padding rings (rows and columns) are never read: only zeros are left out.")
        }
    } else {
        format!(
            "{} {r} and {} {r} of the input are never read{zeros}: their values never reach the output.",
            plural("row"),
            plural("column"),
            r = list(&rows)
        )
    }
}

/// One position of the window: where it sits in the padded input and which output cell it
/// writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The output row written.
    pub out_row: usize,
    /// The output column written.
    pub out_col: usize,
    /// The window's top row, in the padded input.
    pub top: usize,
    /// The window's left column, in the padded input.
    pub left: usize,
    /// Its side.
    pub side: usize,
}

impl Window {
    /// True when the padded input's (`row`, `col`) is inside the window.
    pub fn covers(&self, row: usize, col: usize) -> bool {
        (self.top..self.top + self.side).contains(&row) && (self.left..self.left + self.side).contains(&col)
    }

    /// The padded input's (row, column) of the window's `k`-th value in reading order.
    pub fn at(&self, k: usize) -> (usize, usize) {
        (self.top + k / self.side, self.left + k % self.side)
    }
}

/// Every position of the window, in the post's loop order (`for h … for w`: row after row).
pub fn positions(size: &OutputSize) -> Vec<Window> {
    let Some(out) = size.out() else { return Vec::new() };
    (0..out * out)
        .map(|i| {
            let (out_row, out_col) = (i / out, i % out);
            Window { out_row, out_col, top: out_row * size.stride, left: out_col * size.stride, side: size.window }
        })
        .collect()
}

/// The arithmetic of one output cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Where the window was.
    pub window: Window,
    /// The padded input's values it covers, in reading order.
    pub inputs: Vec<f32>,
    /// For a convolution, `input · kernel` for each of them; empty for a pool.
    pub products: Vec<f32>,
    /// For max pooling, which of `inputs` won (the first of equal maxima, as PyTorch).
    pub winner: Option<usize>,
    /// For a convolution the sum of the products (without the bias); for a pool the sum of
    /// the inputs (what average pooling divides).
    pub sum: f32,
    /// The output value.
    pub value: f32,
}

/// The whole output: the size and every cell's arithmetic in slide order.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// The formula's numbers.
    pub size: OutputSize,
    /// One per output cell, row after row (the order the window slides in).
    pub cells: Vec<Cell>,
}

impl Output {
    /// The output's side.
    pub fn side(&self) -> usize {
        self.size.out().unwrap_or(0)
    }

    /// The output values, row after row.
    pub fn values(&self) -> Vec<f32> {
        self.cells.iter().map(|c| c.value).collect()
    }

    /// The cell written at output (`row`, `col`).
    pub fn cell(&self, row: usize, col: usize) -> Option<&Cell> {
        let side = self.side();
        (row < side && col < side).then(|| &self.cells[row * side + col])
    }
}

/// The window does not fit in the padded input: there is no output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {window}×{window} window does not fit in the {padded}×{padded} padded input: no output")]
pub struct DoesNotFit {
    /// The window's side.
    pub window: usize,
    /// The padded input's side.
    pub padded: usize,
}

/// What slides over the input: a kernel with its bias, or a pooling window.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Convolution or a pool.
    pub mode: Mode,
    /// The kernel (a convolution's; ignored by the pools).
    pub kernel: Grid,
    /// Added to every sum of a convolution.
    pub bias: f32,
    /// Zero rings around the input (a convolution's; the pools take none, as the engine's).
    pub pad: usize,
    /// Step between two positions (at least 1).
    pub stride: usize,
    /// The pooling window's side (ignored by a convolution).
    pub pool: usize,
}

impl Operation {
    /// The side of what slides: the kernel's, or the pooling window's.
    pub fn window(&self) -> usize {
        if self.mode.is_pool() { self.pool } else { self.kernel.side() }
    }

    /// The padding used: a pool takes none.
    pub fn pad(&self) -> usize {
        if self.mode.is_pool() { 0 } else { self.pad }
    }

    /// The output size on an input of side `input`.
    pub fn output_size(&self, input: usize) -> OutputSize {
        OutputSize { input, window: self.window(), pad: self.pad(), stride: self.stride.max(1) }
    }

    /// Slides over `input` and computes every output cell, in slide order.
    pub fn apply(&self, input: &Grid) -> Result<Output, DoesNotFit> {
        let size = self.output_size(input.side());
        if size.out().is_none() {
            return Err(DoesNotFit { window: size.window, padded: size.padded() });
        }
        let padded = input.padded(size.pad);
        let cells = positions(&size).into_iter().map(|w| self.cell(&padded, w)).collect();
        Ok(Output { size, cells })
    }

    fn cell(&self, padded: &Grid, window: Window) -> Cell {
        let taps = window.side * window.side;
        let inputs: Vec<f32> = (0..taps)
            .map(|k| {
                let (r, c) = window.at(k);
                padded.get(r, c).unwrap_or(0.0)
            })
            .collect();
        match self.mode {
            Mode::Conv => {
                let products: Vec<f32> = inputs.iter().zip(self.kernel.values()).map(|(x, k)| x * k).collect();
                // In the naive engine's order: the bias first, then the products in reading order.
                let value = products.iter().fold(self.bias, |acc, p| acc + p);
                let sum = products.iter().sum();
                Cell { window, inputs, products, winner: None, sum, value }
            }
            Mode::MaxPool => {
                let mut best = 0;
                for (k, &v) in inputs.iter().enumerate() {
                    // NaN wins, as in the engine's pool (and PyTorch's).
                    if v > inputs[best] || v.is_nan() {
                        best = k;
                    }
                }
                let sum = inputs.iter().sum();
                Cell { window, value: inputs[best], inputs, products: Vec::new(), winner: Some(best), sum }
            }
            Mode::AvgPool => {
                let sum: f32 = inputs.iter().sum();
                // As the engine: the sum times 1/K², not divided by K².
                let value = sum * (1.0 / (taps as f32));
                Cell { window, inputs, products: Vec::new(), winner: None, sum, value }
            }
        }
    }
}

/// A kernel to start from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KernelPreset {
    /// Copies the centre value: the output is the input (cropped by the border).
    #[default]
    Identity,
    /// Left columns minus right columns: large where brightness changes from left to right.
    EdgeVertical,
    /// Top rows minus bottom rows: large where brightness changes from top to bottom.
    EdgeHorizontal,
    /// The mean of the window: smooths.
    Blur,
    /// The centre boosted against its neighbours: edges stand out.
    Sharpen,
}

impl KernelPreset {
    /// Every preset, in menu order.
    pub const ALL: [KernelPreset; 5] = [
        KernelPreset::Identity,
        KernelPreset::EdgeVertical,
        KernelPreset::EdgeHorizontal,
        KernelPreset::Blur,
        KernelPreset::Sharpen,
    ];

    /// The name shown.
    pub fn name(self) -> &'static str {
        match self {
            KernelPreset::Identity => "identity",
            KernelPreset::EdgeVertical => "vertical edge",
            KernelPreset::EdgeHorizontal => "horizontal edge",
            KernelPreset::Blur => "blur",
            KernelPreset::Sharpen => "sharpen",
        }
    }

    /// The word a setup line uses: `identity`, `edge-vertical`, `edge-horizontal`, `blur`,
    /// `sharpen`.
    pub fn key(self) -> &'static str {
        match self {
            KernelPreset::Identity => "identity",
            KernelPreset::EdgeVertical => "edge-vertical",
            KernelPreset::EdgeHorizontal => "edge-horizontal",
            KernelPreset::Blur => "blur",
            KernelPreset::Sharpen => "sharpen",
        }
    }

    /// What it does, in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            KernelPreset::Identity => "1 in the centre, 0 elsewhere: each output is the input value under the centre",
            KernelPreset::EdgeVertical => {
                "left columns +, right columns −: zero on flat areas, large where the input changes from left to right"
            }
            KernelPreset::EdgeHorizontal => {
                "top rows +, bottom rows −: zero on flat areas, large where the input changes from top to bottom"
            }
            KernelPreset::Blur => "every weight 1/K²: each output is the mean of the window, so the input is smoothed",
            KernelPreset::Sharpen => "the centre counted 5 times against its four neighbours: edges stand out",
        }
    }

    /// The kernel of side `side` (3 or 5; other sides get the same pattern).
    pub fn grid(self, side: usize) -> Grid {
        let mid = side / 2;
        match self {
            KernelPreset::Identity => Grid::from_fn(side, |r, c| if r == mid && c == mid { 1.0 } else { 0.0 }),
            KernelPreset::EdgeVertical => Grid::from_fn(side, |_, c| edge_weight(c, mid)),
            KernelPreset::EdgeHorizontal => Grid::from_fn(side, |r, _| edge_weight(r, mid)),
            KernelPreset::Blur => Grid::from_fn(side, |_, _| 1.0 / (side * side) as f32),
            KernelPreset::Sharpen => Grid::from_fn(side, |r, c| match (r.abs_diff(mid), c.abs_diff(mid)) {
                (0, 0) => 5.0,
                (0, 1) | (1, 0) => -1.0,
                _ => 0.0,
            }),
        }
    }
}

/// +1 left of the middle, −1 right of it, 0 on it.
fn edge_weight(i: usize, mid: usize) -> f32 {
    match i.cmp(&mid) {
        std::cmp::Ordering::Less => 1.0,
        std::cmp::Ordering::Equal => 0.0,
        std::cmp::Ordering::Greater => -1.0,
    }
}

/// An input to start from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InputPreset {
    /// A fixed pattern of small integers 0 to 4.
    #[default]
    Numbers,
    /// Integers 0 to 4 drawn from this seed.
    Random(u64),
    /// Zeros on the left half, ones on the right: a vertical edge.
    Edge,
    /// A seven drawn in ones on zeros.
    Seven,
    /// A one drawn in ones on zeros.
    One,
}

impl InputPreset {
    /// The presets of the menu (random with seed 1).
    pub const ALL: [InputPreset; 5] =
        [InputPreset::Numbers, InputPreset::Random(1), InputPreset::Edge, InputPreset::Seven, InputPreset::One];

    /// The name shown.
    pub fn name(self) -> &'static str {
        match self {
            InputPreset::Numbers => "numbers 0–4",
            InputPreset::Random(_) => "random 0–4",
            InputPreset::Edge => "an edge",
            InputPreset::Seven => "a 7",
            InputPreset::One => "a 1",
        }
    }

    /// The word a setup line uses: `numbers`, `random`, `edge`, `seven`, `one`.
    pub fn key(self) -> &'static str {
        match self {
            InputPreset::Numbers => "numbers",
            InputPreset::Random(_) => "random",
            InputPreset::Edge => "edge",
            InputPreset::Seven => "seven",
            InputPreset::One => "one",
        }
    }

    /// The input of side `side`.
    pub fn grid(self, side: usize) -> Grid {
        match self {
            InputPreset::Numbers => Grid::from_fn(side, |r, c| ((r * 7 + c * 3 + r * c) % 5) as f32),
            InputPreset::Random(seed) => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                Grid::from_fn(side, |_, _| rng.random_range(0..5u8) as f32)
            }
            InputPreset::Edge => Grid::from_fn(side, |_, c| if c < side / 2 { 0.0 } else { 1.0 }),
            InputPreset::Seven => strokes(side, &[(0.15, 0.15), (0.85, 0.15), (0.4, 0.9)]),
            InputPreset::One => strokes(side, &[(0.3, 0.3), (0.55, 0.1), (0.55, 0.9)]),
        }
    }
}

/// Ones along the polyline through `points` (x right, y down, in the unit square mapped onto
/// the cells' centres), one cell thick, on zeros.
fn strokes(side: usize, points: &[(f32, f32)]) -> Grid {
    let mut grid = Grid::zeros(side);
    let to_cell = |v: f32| (v * (side.max(1) - 1) as f32).round() as i64;
    for pair in points.windows(2) {
        let (x0, y0) = (to_cell(pair[0].0), to_cell(pair[0].1));
        let (x1, y1) = (to_cell(pair[1].0), to_cell(pair[1].1));
        // Bresenham: every cell the segment passes through, no gaps and no doubled thickness.
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            grid.set(y as usize, x as usize, 1.0);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
    grid
}

/// A whole playground state, as a lesson card names it: see [`Setup::parse`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setup {
    /// The input's side, [`MIN_SIDE`] to [`MAX_SIDE`].
    pub side: usize,
    /// What fills the input.
    pub input: InputPreset,
    /// The kernel's side, 3 or 5.
    pub kernel_side: usize,
    /// The kernel's values.
    pub kernel: KernelPreset,
    /// The bias added to a convolution's sums.
    pub bias: f32,
    /// Zero padding, 0 to [`MAX_PAD`] (a pool takes none).
    pub pad: usize,
    /// Stride, 1 to [`MAX_STRIDE`].
    pub stride: usize,
    /// Convolution or a pool.
    pub mode: Mode,
    /// The pooling window, 2 or 3.
    pub pool: usize,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            side: 7,
            input: InputPreset::Numbers,
            kernel_side: 3,
            kernel: KernelPreset::EdgeVertical,
            bias: 0.0,
            pad: 0,
            stride: 1,
            mode: Mode::Conv,
            pool: 2,
        }
    }
}

/// A setup line that cannot be used, naming the word at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// Not `key=value`.
    #[error("playground setup: {0:?} is not key=value (e.g. size=7 kernel=blur pad=1 stride=2 mode=conv)")]
    NotKeyValue(String),
    /// A key the playground does not know.
    #[error(
        "playground setup: unknown key {0:?}; the keys are size, input, seed, kernel, kernel-size, bias, pad, \
         stride, mode, window"
    )]
    UnknownKey(String),
    /// A value out of range or not understood.
    #[error("playground setup: {key}={value}: {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// Its value as written.
        value: String,
        /// What would be accepted.
        expected: String,
    },
}

impl Setup {
    /// Reads a setup from words `key=value` separated by spaces or commas, each key optional
    /// (the [`Default`] fills the rest):
    ///
    /// - `size=3…9` the input's side; `input=numbers|random|edge|seven|one`, `seed=N` for random;
    /// - `kernel=identity|edge-vertical|edge-horizontal|blur|sharpen`, `kernel-size=3|5`, `bias=X`;
    /// - `pad=0…2`, `stride=1…3`, `mode=conv|max|avg`, `window=2|3` (the pooling window).
    ///
    /// For example `size=8 kernel=edge-vertical stride=2 pad=0` or `size=6 mode=max window=2 stride=2`.
    pub fn parse(text: &str) -> Result<Setup, SetupError> {
        let mut setup = Setup::default();
        let mut seed = None;
        for word in text.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()) {
            let (key, value) = word.split_once('=').ok_or_else(|| SetupError::NotKeyValue(word.to_string()))?;
            let bad = |expected: &str| SetupError::BadValue {
                key: key.to_string(),
                value: value.to_string(),
                expected: expected.to_string(),
            };
            let number = |range: std::ops::RangeInclusive<usize>, expected: &str| {
                value.parse::<usize>().ok().filter(|v| range.contains(v)).ok_or_else(|| bad(expected))
            };
            match key {
                "size" => setup.side = number(MIN_SIDE..=MAX_SIDE, "the input's side is 3 to 9")?,
                "input" => {
                    setup.input = match value {
                        "numbers" => InputPreset::Numbers,
                        "random" => InputPreset::Random(1),
                        "edge" => InputPreset::Edge,
                        "seven" | "7" => InputPreset::Seven,
                        "one" | "1" => InputPreset::One,
                        _ => return Err(bad("one of numbers, random, edge, seven, one")),
                    }
                }
                "seed" => seed = Some(value.parse::<u64>().map_err(|_| bad("a whole number ≥ 0"))?),
                "kernel" => {
                    setup.kernel = KernelPreset::ALL
                        .into_iter()
                        .find(|k| k.key() == value)
                        .ok_or_else(|| bad("one of identity, edge-vertical, edge-horizontal, blur, sharpen"))?
                }
                "kernel-size" => {
                    setup.kernel_side = value
                        .parse::<usize>()
                        .ok()
                        .filter(|v| KERNEL_SIDES.contains(v))
                        .ok_or_else(|| bad("the kernel is 3 or 5 wide"))?
                }
                "bias" => {
                    setup.bias =
                        value.parse::<f32>().ok().filter(|v| v.is_finite()).ok_or_else(|| bad("a finite number"))?
                }
                "pad" => setup.pad = number(0..=MAX_PAD, "the padding is 0 to 2")?,
                "stride" => setup.stride = number(1..=MAX_STRIDE, "the stride is 1 to 3")?,
                "mode" => {
                    setup.mode =
                        Mode::ALL.into_iter().find(|m| m.key() == value).ok_or_else(|| bad("one of conv, max, avg"))?
                }
                "window" => {
                    setup.pool = value
                        .parse::<usize>()
                        .ok()
                        .filter(|v| POOL_SIDES.contains(v))
                        .ok_or_else(|| bad("the pooling window is 2 or 3 wide"))?
                }
                _ => return Err(SetupError::UnknownKey(key.to_string())),
            }
        }
        if let (Some(s), InputPreset::Random(_)) = (seed, setup.input) {
            setup.input = InputPreset::Random(s);
        }
        Ok(setup)
    }

    /// The input this setup starts from.
    pub fn input_grid(&self) -> Grid {
        self.input.grid(self.side)
    }

    /// What slides over it.
    pub fn operation(&self) -> Operation {
        Operation {
            mode: self.mode,
            kernel: self.kernel.grid(self.kernel_side),
            bias: self.bias,
            pad: self.pad,
            stride: self.stride,
            pool: self.pool,
        }
    }
}

impl FromStr for Setup {
    type Err = SetupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Setup::parse(s)
    }
}

impl fmt::Display for Setup {
    /// The line [`Setup::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "size={} input={}", self.side, self.input.key())?;
        if let InputPreset::Random(seed) = self.input {
            write!(f, " seed={seed}")?;
        }
        write!(
            f,
            " kernel={} kernel-size={} bias={} pad={} stride={} mode={} window={}",
            self.kernel.key(),
            self.kernel_side,
            self.bias,
            self.pad,
            self.stride,
            self.mode.key(),
            self.pool
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ConvEngine;
    use crate::engine::conv::{self, ConvShape, ConvWorkspace};
    use crate::engine::model::layers::pool::{self, PoolShape};

    fn size(input: usize, window: usize, pad: usize, stride: usize) -> OutputSize {
        OutputSize { input, window, pad, stride }
    }

    /// Values with fractions, so that a different order of the sums would show.
    fn awkward(side: usize, seed: u64) -> Grid {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Grid::from_fn(side, |_, _| rng.random_range(-2.0f32..2.0))
    }

    #[test]
    fn output_size_is_the_posts_formula_floored() {
        let s = size(7, 3, 0, 1);
        assert_eq!((s.span(), s.out(), s.remainder()), (Some(4), Some(5), 0));
        assert_eq!(s.formula(), "1 + (7 − 3 + 2·0) / 1 = 1 + 4 = 5");
        let s = size(8, 3, 0, 2);
        assert_eq!((s.span(), s.out(), s.remainder()), (Some(5), Some(3), 1));
        assert_eq!(s.formula(), "1 + (8 − 3 + 2·0) / 2 = 1 + 5 / 2 = 1 + int(2.5) = 1 + 2 = 3");
        let s = size(9, 3, 0, 2);
        assert_eq!(s.formula(), "1 + (9 − 3 + 2·0) / 2 = 1 + 6 / 2 = 1 + 3 = 4");
        assert_eq!(s.explanation(), None, "an exact division with a smaller output needs no remark");
    }

    #[test]
    fn the_floor_names_the_rows_and_columns_never_read() {
        // 8×8, 3×3, stride 2: windows at rows 0, 2, 4 end at row 6; row 7 is never read.
        let s = size(8, 3, 0, 2);
        assert_eq!(s.unread_padded(), 7..8);
        assert_eq!(s.unread(), vec![Unread::Input(7)]);
        let text = s.explanation().unwrap();
        assert!(text.contains("int() floors 5 / 2 to 2"), "{text}");
        assert!(text.contains("row 7 and column 7 of the input are never read"), "{text}");
        // 9×9, 3×3, stride 3, pad 1: padded 11, span 8, remainder 2: padded rows 9 (input 8)
        // and 10 (padding).
        let s = size(9, 3, 1, 3);
        assert_eq!(s.unread(), vec![Unread::Input(8), Unread::Padding]);
        let text = s.explanation().unwrap();
        assert!(text.contains("row 8 and column 8 of the input are never read, nor the padding ring"), "{text}");
        // Two input rows: 8×8, 3×3, stride 3 → span 5, remainder 2.
        let s = size(8, 3, 0, 3);
        assert_eq!(s.unread(), vec![Unread::Input(6), Unread::Input(7)]);
        assert!(s.explanation().unwrap().contains("rows 6 and 7 and columns 6 and 7 of the input"));
        // Only padding left out: 6×6, 5×5, pad 2, stride 3 → padded 10, span 5, remainder 2:
        // padded rows 8 and 9 are both padding.
        let s = size(6, 5, 2, 3);
        assert_eq!(s.unread(), vec![Unread::Padding, Unread::Padding]);
        assert!(s.explanation().unwrap().contains("only zeros are left out"));
    }

    #[test]
    fn a_window_larger_than_the_padded_input_makes_no_output() {
        let s = size(3, 5, 0, 1);
        assert_eq!((s.span(), s.out()), (None, None));
        assert!(s.explanation().unwrap().contains("no output can be made"));
        assert!(s.formula().ends_with("no output"), "{}", s.formula());
        let op = Setup { side: 3, kernel_side: 5, ..Setup::default() }.operation();
        assert_eq!(op.apply(&Grid::zeros(3)), Err(DoesNotFit { window: 5, padded: 3 }));
        assert!(positions(&s).is_empty());
        // One ring of padding makes it fit exactly once.
        let s = size(3, 5, 1, 1);
        assert_eq!(s.out(), Some(1));
    }

    #[test]
    fn same_padding_keeps_the_size_and_says_so() {
        for (k, pad) in [(3, 1), (5, 2)] {
            let s = size(7, k, pad, 1);
            assert!(s.keeps_size());
            assert!(s.explanation().unwrap().contains("\"same\" padding"), "{:?}", s.explanation());
        }
        assert!(!size(7, 3, 1, 2).keeps_size());
    }

    #[test]
    fn positions_slide_row_after_row_by_the_stride() {
        let p = positions(&size(7, 3, 1, 2));
        assert_eq!(p.len(), 16);
        assert_eq!((p[0].top, p[0].left), (0, 0));
        assert_eq!((p[1].top, p[1].left, p[1].out_row, p[1].out_col), (0, 2, 0, 1));
        assert_eq!((p[4].top, p[4].left, p[4].out_row, p[4].out_col), (2, 0, 1, 0));
        assert_eq!((p[15].top, p[15].left), (6, 6));
        assert!(p[15].covers(8, 8) && !p[15].covers(5, 8));
    }

    #[test]
    fn padding_surrounds_the_input_with_zeros() {
        let g = Grid::from_fn(3, |r, c| (r * 3 + c + 1) as f32);
        let p = g.padded(1);
        assert_eq!(p.side(), 5);
        assert_eq!(p.get(0, 0), Some(0.0));
        assert_eq!(p.get(1, 1), Some(1.0));
        assert_eq!(p.get(3, 3), Some(9.0));
        assert_eq!(p.get(4, 2), Some(0.0));
        assert_eq!(p.values().iter().sum::<f32>(), 45.0);
    }

    #[test]
    fn a_conv_cell_shows_its_products_and_sum() {
        let input = Grid::from_fn(5, |r, c| (r * 5 + c) as f32);
        let op = Operation {
            mode: Mode::Conv,
            kernel: KernelPreset::EdgeVertical.grid(3),
            bias: 0.5,
            pad: 0,
            stride: 1,
            pool: 2,
        };
        let out = op.apply(&input).unwrap();
        let first = &out.cells[0];
        assert_eq!(first.inputs, vec![0.0, 1.0, 2.0, 5.0, 6.0, 7.0, 10.0, 11.0, 12.0]);
        assert_eq!(first.products, vec![0.0, 0.0, -2.0, 5.0, 0.0, -7.0, 10.0, 0.0, -12.0]);
        assert_eq!(first.sum, -6.0);
        assert_eq!(first.value, -5.5);
        assert_eq!(out.side(), 3);
        assert!(out.values().iter().all(|v| *v == -5.5), "a ramp has the same edge everywhere");
    }

    #[test]
    fn conv_equals_the_engines_naive_forward_for_every_pad_and_stride_that_fits() {
        let mut checked = 0;
        for side in MIN_SIDE..=MAX_SIDE {
            for k in KERNEL_SIDES {
                for pad in 0..=MAX_PAD {
                    for stride in 1..=MAX_STRIDE {
                        let input = awkward(side, (side * 100 + k * 10 + pad) as u64);
                        let kernel = awkward(k, stride as u64);
                        let op =
                            Operation { mode: Mode::Conv, kernel: kernel.clone(), bias: 0.25, pad, stride, pool: 2 };
                        let ours = op.apply(&input);
                        if side + 2 * pad < k {
                            assert!(ours.is_err(), "{side} {k} {pad}");
                            continue;
                        }
                        let ours = ours.unwrap();
                        let s = ConvShape { n: 1, c: 1, h: side, w: side, f: 1, k, stride, pad };
                        assert_eq!(s.out_dims(), (ours.side(), ours.side()));
                        let mut engine = vec![0.0f32; s.out_len()];
                        let mut ws = ConvWorkspace::default();
                        conv::forward(
                            ConvEngine::Naive,
                            &s,
                            input.values(),
                            kernel.values(),
                            &[0.25],
                            &mut engine,
                            &mut ws,
                            &mut |_, _| {},
                        );
                        assert_eq!(ours.values(), engine, "side {side}, kernel {k}, pad {pad}, stride {stride}");
                        checked += 1;
                    }
                }
            }
        }
        // 7 sides × 2 kernels × 3 pads × 3 strides, less the 6 where a 5×5 kernel does not fit.
        assert_eq!(checked, 120);
    }

    #[test]
    fn pools_equal_the_engines_pool_layer() {
        for side in MIN_SIDE..=MAX_SIDE {
            for k in POOL_SIDES {
                for stride in 1..=MAX_STRIDE {
                    let mut input = awkward(side, (side * 10 + k + stride) as u64);
                    // A tie, to check that the first maximum wins in both.
                    input.set(0, 1, 5.0);
                    input.set(1, 0, 5.0);
                    let s = PoolShape { n: 1, c: 1, h: side, w: side, k, stride };
                    let (oh, ow) = s.out_dims();
                    // The pad is ignored by the pools.
                    let op = |mode| Operation { mode, kernel: Grid::zeros(3), bias: 9.0, pad: 2, stride, pool: k };

                    let max = op(Mode::MaxPool).apply(&input).unwrap();
                    let (mut y, mut winners) = (vec![0.0f32; oh * ow], vec![0u32; oh * ow]);
                    pool::max_forward(ConvEngine::Naive, &s, input.values(), &mut y, &mut winners);
                    assert_eq!(max.values(), y, "max, side {side}, window {k}, stride {stride}");
                    for (cell, &w) in max.cells.iter().zip(&winners) {
                        let (r, c) = cell.window.at(cell.winner.unwrap());
                        assert_eq!(r * side + c, w as usize, "the same winner");
                    }

                    let avg = op(Mode::AvgPool).apply(&input).unwrap();
                    let mut y = vec![0.0f32; oh * ow];
                    pool::avg_forward(ConvEngine::Naive, &s, input.values(), &mut y);
                    assert_eq!(avg.values(), y, "avg, side {side}, window {k}, stride {stride}");
                }
            }
        }
    }

    #[test]
    fn max_pool_marks_the_winner_and_avg_pool_the_mean() {
        let input =
            Grid::new(4, vec![1.0, 3.0, 0.0, 2.0, 4.0, 2.0, 1.0, 1.0, 0.0, 0.0, 7.0, 7.0, 1.0, 0.0, 7.0, 5.0]).unwrap();
        let op = |mode| Operation { mode, kernel: Grid::zeros(3), bias: 0.0, pad: 0, stride: 2, pool: 2 };
        let max = op(Mode::MaxPool).apply(&input).unwrap();
        assert_eq!(max.values(), vec![4.0, 2.0, 1.0, 7.0]);
        assert_eq!(max.cells[0].winner, Some(2), "the 4 at row 1, column 0 of the window");
        assert_eq!(max.cells[3].winner, Some(0), "the first of the equal 7s");
        let avg = op(Mode::AvgPool).apply(&input).unwrap();
        assert_eq!(avg.values(), vec![2.5, 1.0, 0.25, 6.5]);
        assert_eq!(avg.cells[3].sum, 26.0);
    }

    #[test]
    fn presets_have_the_asked_side_and_their_pattern() {
        for side in [3, 5] {
            for k in KernelPreset::ALL {
                assert_eq!(k.grid(side).side(), side);
            }
            assert_eq!(KernelPreset::Identity.grid(side).values().iter().sum::<f32>(), 1.0);
            assert_eq!(KernelPreset::EdgeVertical.grid(side).values().iter().sum::<f32>(), 0.0);
            assert!((KernelPreset::Blur.grid(side).values().iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert_eq!(KernelPreset::Sharpen.grid(side).values().iter().sum::<f32>(), 1.0);
        }
        assert_eq!(KernelPreset::EdgeHorizontal.grid(3).values(), &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0]);
        for side in MIN_SIDE..=MAX_SIDE {
            for p in InputPreset::ALL {
                let g = p.grid(side);
                assert_eq!(g.side(), side);
                assert!(g.values().iter().all(|v| (0.0..=4.0).contains(v) && v.fract() == 0.0), "{p:?} {side}");
            }
            let seven = InputPreset::Seven.grid(side);
            let top = (0..side).filter(|&c| seven.get(1, c) == Some(1.0) || seven.get(0, c) == Some(1.0)).count();
            assert!(top >= side / 2, "a 7 has a bar at the top ({side}: {top})");
            if side >= 5 {
                assert!(seven.values().iter().filter(|v| **v == 1.0).count() < side * side / 2, "strokes, not a blob");
            }
        }
        assert_eq!(InputPreset::Random(3).grid(6), InputPreset::Random(3).grid(6), "a seed gives the same input");
        assert_ne!(InputPreset::Random(3).grid(6), InputPreset::Random(4).grid(6));
    }

    #[test]
    fn a_setup_line_is_read_and_written_back() {
        let s = Setup::parse("size=8 input=random seed=42, kernel=blur kernel-size=5 pad=2 stride=3 mode=avg window=3")
            .unwrap();
        assert_eq!(
            s,
            Setup {
                side: 8,
                input: InputPreset::Random(42),
                kernel_side: 5,
                kernel: KernelPreset::Blur,
                bias: 0.0,
                pad: 2,
                stride: 3,
                mode: Mode::AvgPool,
                pool: 3,
            }
        );
        assert_eq!(Setup::parse(&s.to_string()), Ok(s));
        assert_eq!(Setup::parse(""), Ok(Setup::default()));
        assert_eq!("size=5 input=seven".parse::<Setup>().map(|s| (s.side, s.input)), Ok((5, InputPreset::Seven)));
    }

    #[test]
    fn a_bad_setup_line_names_the_word() {
        let e = Setup::parse("size=12").unwrap_err().to_string();
        assert!(e.contains("size=12") && e.contains("3 to 9"), "{e}");
        let e = Setup::parse("pad=3").unwrap_err().to_string();
        assert!(e.contains("pad=3") && e.contains("0 to 2"), "{e}");
        let e = Setup::parse("kernel=emboss").unwrap_err().to_string();
        assert!(e.contains("emboss") && e.contains("edge-vertical"), "{e}");
        let e = Setup::parse("stride 2").unwrap_err().to_string();
        assert!(e.contains("\"stride\"") && e.contains("key=value"), "{e}");
        let e = Setup::parse("colour=red").unwrap_err().to_string();
        assert!(e.contains("unknown key \"colour\""), "{e}");
        assert!(Setup::parse("bias=nan").is_err());
        assert!(Setup::parse("window=4").is_err());
        assert!(Setup::parse("kernel-size=4").is_err());
    }
}
