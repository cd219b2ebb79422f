//! The headless commands: `train`, `eval` and `bench`. No egui here: the `cnn-stepper` binary
//! parses the command line and calls these.

pub mod args;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::data::{self, ClassNames, Dataset, Mnist, Sampler, SamplingMode};
use crate::engine::weights;
use crate::engine::{Activations, ConvEngine, Hyper, ModelConfig, Network, Preset, argmax, npz};
use crate::trainer::checkpoint::{self, History, SessionFile};
use crate::trainer::{AccuracyPoint, LossPoint, Settings};

/// Test images per forward pass when evaluating: bounds memory whatever the set's size.
const EVAL_CHUNK: usize = 250;

/// Loads `--data DIR`, or the embedded sample when no folder is given.
pub fn load_data(dir: Option<&Path>, classes: Option<ClassNames>) -> Result<Mnist, String> {
    match dir {
        Some(dir) => data::load_dir(dir, classes).map_err(|e| e.to_string()),
        None => data::embedded().map_err(|e| e.to_string()),
    }
}

/// Options of `cnn-stepper train`.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Dataset folder (embedded sample when `None`).
    pub data: Option<PathBuf>,
    /// Class names override.
    pub classes: Option<ClassNames>,
    /// Passes over the training set.
    pub epochs: usize,
    /// Batch size (preset's when `None`).
    pub batch: Option<usize>,
    /// Learning rate (preset's when `None`).
    pub lr: Option<f32>,
    /// Momentum (preset's when `None`).
    pub momentum: Option<f32>,
    /// L2 strength (preset's when `None`).
    pub reg: Option<f32>,
    /// Per-epoch learning-rate factor (preset's when `None`).
    pub lr_decay: Option<f32>,
    /// Convolution engine.
    pub engine: ConvEngine,
    /// Init and hyper-parameter preset.
    pub preset: Preset,
    /// Seed for init and sampling.
    pub seed: u64,
    /// Put a ReLU after conv2.
    pub relu_after_conv2: bool,
    /// Where to save the weights at the end (also after Ctrl-C).
    pub save: Option<PathBuf>,
}

/// One epoch's results.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub mean_loss: f32,
    /// Fraction of training images classified correctly (at the time they were trained on).
    pub train_accuracy: f32,
    /// Accuracy on the whole test set after the epoch.
    pub test_accuracy: f32,
    /// Wall time of the epoch's training.
    pub seconds: f32,
}

/// Resolves the options into hyper-parameters and batch size, refusing absurd values.
pub fn resolve_hyper(o: &TrainOptions) -> Result<(Hyper, usize), String> {
    let p = o.preset.hyper();
    let hyper = Hyper {
        lr: o.lr.unwrap_or(p.lr),
        momentum: o.momentum.unwrap_or(p.momentum),
        reg: o.reg.unwrap_or(p.reg),
        lr_decay: o.lr_decay.unwrap_or(p.lr_decay),
    };
    hyper.validate().map_err(|e| e.to_string())?;
    let batch = o.batch.unwrap_or(o.preset.batch_size());
    if batch == 0 || batch > 4096 {
        return Err(format!("batch size {batch} must be between 1 and 4096"));
    }
    Ok((hyper, batch))
}

/// Trains as `cnn-stepper train` does, printing progress to stderr and a line per epoch to
/// `out`. Stops early (still saving) when `stop` becomes true.
pub fn train(o: &TrainOptions, stop: &AtomicBool, out: &mut dyn Write) -> Result<Vec<EpochReport>, String> {
    train_from(o, None, stop, out)
}

/// [`train`], continuing the session file `resume` if given (`cnn-stepper train --resume`).
///
/// A resumed run takes the network, preset, seed, momentum, batch order and curves from the
/// file, and its settings unless the options give them (`--lr`, `--batch`, …; `--preset`,
/// `--seed` and `--relu-after-conv2` are ignored). `o.epochs` counts all epochs, those in the
/// file included: a file saved after 1 epoch with `--epochs 3` trains epochs 2 and 3, and a
/// file saved in the middle of epoch 2 finishes it. With `o.save`, the result is written as a
/// session file, which `--resume` continues and which still loads as plain weights.
pub fn train_from(
    o: &TrainOptions,
    resume: Option<&Path>,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<Vec<EpochReport>, String> {
    // Bad options are refused before any data is read; a resumed run's are checked against
    // the file's settings below.
    let fresh = if resume.is_none() { Some(resolve_hyper(o)?) } else { None };
    if o.epochs == 0 {
        return Err("--epochs must be at least 1".into());
    }
    let data = load_data(o.data.as_deref(), o.classes)?;
    let (mut net, mut sampler, mut step, mut history, hyper, batch, preset, seed) = match (resume, fresh) {
        (None, fresh) => {
            let (hyper, batch) = fresh.map_or_else(|| resolve_hyper(o), Ok)?;
            let cfg = ModelConfig { relu_after_conv2: o.relu_after_conv2, ..ModelConfig::default() };
            let net = Network::<f32>::new(cfg, o.preset.init(), o.seed, o.engine).map_err(|e| e.to_string())?;
            let sampler = Sampler::new(data.train.len(), SamplingMode::ShuffledEpochs, o.seed);
            (net, sampler, 0, History::new(), hyper, batch, o.preset, o.seed)
        }
        (Some(path), _) => {
            let opened = checkpoint::load(path, Some(data.train.len()), o.engine).map_err(|e| e.to_string())?;
            if let Some(note) = opened.integrity.note(&path.display().to_string()) {
                eprintln!("note: {note}");
            }
            let f = opened.file;
            let cfg = f.config;
            check_images_fit(path, &cfg, &data.train, &data.source)?;
            // Settings queued in the file apply from its next batch, which is the first one here.
            let saved = f.pending.unwrap_or(f.settings);
            let hyper = Hyper {
                lr: o.lr.unwrap_or(saved.hyper.lr),
                momentum: o.momentum.unwrap_or(saved.hyper.momentum),
                reg: o.reg.unwrap_or(saved.hyper.reg),
                lr_decay: o.lr_decay.unwrap_or(saved.hyper.lr_decay),
            };
            hyper.validate().map_err(|e| e.to_string())?;
            let batch = o.batch.unwrap_or(saved.batch_size);
            if batch == 0 || batch > 4096 {
                return Err(format!("batch size {batch} must be between 1 and 4096"));
            }
            let mut net =
                Network::with_params(cfg, f.params, o.engine).map_err(|e| format!("{}: {e}", path.display()))?;
            net.velocity = f.velocity;
            (net, f.sampler, f.step, f.history, hyper, batch, f.preset, f.seed)
        }
    };
    let cfg = *net.config();
    let w = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| format!("writing output: {e}"));
    if let Some(path) = resume {
        w(
            out,
            format!(
                "resuming {} at step {step} (epoch {}, {} images into it)",
                path.display(),
                sampler.epoch() + 1,
                thousands(sampler.position() as u64)
            ),
        )?;
    }
    w(
        out,
        format!(
            "training on {} ({} images), {} engine, preset {}, batch {batch}, lr {}, momentum {}, reg {}, lr decay {}/epoch, seed {}",
            data.source,
            thousands(data.train.len() as u64),
            o.engine.name(),
            preset.name(),
            hyper.lr,
            hyper.momentum,
            hyper.reg,
            hyper.lr_decay,
            seed
        ),
    )?;
    let first_epoch = usize::try_from(sampler.epoch()).unwrap_or(usize::MAX);
    if first_epoch >= o.epochs {
        w(
            out,
            format!("the session has already trained {first_epoch} epochs; nothing to do (--epochs counts all epochs)"),
        )?;
    }
    let mut reports = Vec::new();
    let mut eval_acts = Activations::default();
    'epochs: for epoch in first_epoch..o.epochs {
        let h = Hyper { lr: hyper.lr_at_epoch(epoch), ..hyper };
        let started = Instant::now();
        let mut bar = ProgressBar::new(format!("epoch {}/{}", epoch + 1, o.epochs), data.train.len());
        let (mut loss_sum, mut batches, mut correct, mut seen) = (0.0f64, 0usize, 0usize, 0usize);
        while sampler.epoch() == epoch as u64 {
            if stop.load(Ordering::Relaxed) {
                bar.finish();
                w(out, "stopped by Ctrl-C after the current step".into())?;
                break 'epochs;
            }
            let indices = sampler.next_batch(batch);
            let b = data.train.batch(&indices).map_err(|e| e.to_string())?;
            let pixels = b.images.as_slice().ok_or("batch images are not contiguous")?;
            let loss = net.train_step(pixels, &b.labels, &h).map_err(|e| e.to_string())?;
            step += 1;
            let batch_correct = net.activations().correct(cfg.classes);
            history.push_loss(LossPoint {
                step,
                loss,
                batch_accuracy: batch_correct as f32 / b.labels.len().max(1) as f32,
            });
            if !loss.is_finite() {
                bar.finish();
                return Err(format!(
                    "the loss became {loss} at step {step} (epoch {}, learning rate {}): training diverged; \
                     try a smaller --lr. Nothing was saved.",
                    epoch + 1,
                    h.lr
                ));
            }
            loss_sum += f64::from(loss);
            batches += 1;
            correct += batch_correct;
            seen += b.labels.len();
            bar.update(sampler.position().max(seen.min(data.train.len())), (loss_sum / batches as f64) as f32);
        }
        bar.finish();
        let seconds = started.elapsed().as_secs_f32();
        let (test_correct, test_count) = evaluate(&mut net, &data.test, hyper.reg, &mut eval_acts, None)?;
        let r = EpochReport {
            epoch: epoch + 1,
            mean_loss: (loss_sum / batches.max(1) as f64) as f32,
            train_accuracy: correct as f32 / seen.max(1) as f32,
            test_accuracy: test_correct as f32 / test_count.max(1) as f32,
            seconds,
        };
        w(
            out,
            format!(
                "epoch {}: mean loss {:.4}  train accuracy {:.2}%  test accuracy {:.2}% ({}/{})  {:.1} s ({} images/s)",
                r.epoch,
                r.mean_loss,
                100.0 * r.train_accuracy,
                100.0 * r.test_accuracy,
                test_correct,
                test_count,
                r.seconds,
                thousands((seen as f32 / r.seconds.max(1e-6)) as u64)
            ),
        )?;
        history.push_accuracy(AccuracyPoint { step, accuracy: r.test_accuracy });
        reports.push(r);
    }
    if let Some(path) = &o.save {
        let settings = Settings { hyper, batch_size: batch, engine: o.engine };
        let file = SessionFile {
            config: cfg,
            params: net.params,
            velocity: net.velocity,
            preset,
            seed,
            step,
            settings,
            pending: None,
            sampler,
            history,
        };
        file.save(path).map_err(|e| e.to_string())?;
        w(
            out,
            format!(
                "saved weights to {} (a session file: also momentum, batch order and curves; --resume continues it)",
                path.display()
            ),
        )?;
    }
    Ok(reports)
}

/// Accuracy of `net` on `test`: (correct, count). With `rows`, also collects each image's
/// (label, predicted, probabilities).
pub fn evaluate(
    net: &mut Network<f32>,
    test: &Dataset,
    reg: f32,
    acts: &mut Activations<f32>,
    mut rows: Option<&mut Vec<(usize, usize, Vec<f32>)>>,
) -> Result<(usize, usize), String> {
    let classes = net.config().classes;
    let mut correct = 0;
    let mut start = 0;
    while start < test.len() {
        let end = (start + EVAL_CHUNK).min(test.len());
        let indices: Vec<usize> = (start..end).collect();
        let b = test.batch(&indices).map_err(|e| e.to_string())?;
        let pixels = b.images.as_slice().ok_or("batch images are not contiguous")?;
        net.forward_into(pixels, &b.labels, reg, acts).map_err(|e| e.to_string())?;
        correct += acts.correct(classes);
        if let Some(rows) = rows.as_deref_mut() {
            for (p, &y) in acts.probs.chunks(classes).zip(&b.labels) {
                rows.push((y, argmax(p), p.to_vec()));
            }
        }
        start = end;
    }
    Ok((correct, test.len()))
}

/// `cnn-stepper eval`: loads weights, prints the test accuracy line, optionally writes a CSV.
pub fn eval(
    weights_path: &Path,
    data_dir: Option<&Path>,
    classes: Option<ClassNames>,
    csv: Option<&Path>,
    out: &mut dyn Write,
) -> Result<f32, String> {
    let loaded = weights::load(weights_path, None).map_err(|e| e.to_string())?;
    if let Some(note) = loaded.integrity.note(&weights_path.display().to_string()) {
        eprintln!("note: {note}");
    }
    let (params, meta) = (loaded.params, loaded.meta);
    let data = load_data(data_dir, classes)?;
    let cfg = meta.config;
    check_images_fit(weights_path, &cfg, &data.test, &data.source)?;
    if data.test.num_classes() != cfg.classes {
        return Err(format!(
            "{}: the network has {} classes but {} has {}",
            weights_path.display(),
            cfg.classes,
            data.source,
            data.test.num_classes()
        ));
    }
    let mut net =
        Network::with_params(cfg, params, ConvEngine::Fast).map_err(|e| format!("{}: {e}", weights_path.display()))?;
    let mut rows = Vec::new();
    let mut acts = Activations::default();
    let (correct, count) = evaluate(&mut net, &data.test, 0.0, &mut acts, csv.map(|_| &mut rows))?;
    let acc = correct as f32 / count.max(1) as f32;
    writeln!(out, "test accuracy: {:.2}% ({correct}/{count})", 100.0 * acc).map_err(|e| e.to_string())?;
    if let Some(path) = csv {
        let mut text = String::from("index,label,predicted");
        for c in 0..cfg.classes {
            text.push_str(&format!(",p{c}"));
        }
        text.push('\n');
        for (i, (y, pred, p)) in rows.iter().enumerate() {
            text.push_str(&format!("{i},{y},{pred}"));
            for v in p {
                text.push_str(&format!(",{v:.6}"));
            }
            text.push('\n');
        }
        weights::write_atomically(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(out, "wrote {} rows to {}", rows.len(), path.display()).map_err(|e| e.to_string())?;
    }
    Ok(acc)
}

/// `cnn-stepper export`: writes the weights of a weights or session file as a NumPy `.npz`
/// with the post's names (see [`crate::engine::npz`]), and, for a session file, its curves as
/// CSV (`step,loss,batch_accuracy` and `step,test_accuracy`).
pub fn export(
    weights_path: &Path,
    npz_path: Option<&Path>,
    loss_csv: Option<&Path>,
    accuracy_csv: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), String> {
    if npz_path.is_none() && loss_csv.is_none() && accuracy_csv.is_none() {
        return Err("nothing to export: give --npz, --loss-csv or --accuracy-csv".into());
    }
    let opened = checkpoint::load(weights_path, None, ConvEngine::Fast).map_err(|e| e.to_string())?;
    if let Some(note) = opened.integrity.note(&weights_path.display().to_string()) {
        eprintln!("note: {note}");
    }
    let w = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| format!("writing output: {e}"));
    if let Some(path) = npz_path {
        npz::save(path, &opened.file.params)?;
        w(out, format!("wrote {} (numpy .npz, the post's names, float32)", path.display()))?;
    }
    if (loss_csv.is_some() || accuracy_csv.is_some()) && opened.weights_only {
        return Err(format!("{}: a weights-only file has no curves to export", weights_path.display()));
    }
    let (loss, accuracy) = opened.file.history.curves_csv();
    for (path, text) in [(loss_csv, loss), (accuracy_csv, accuracy)] {
        if let Some(path) = path {
            weights::write_atomically(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
            w(out, format!("wrote {} ({} rows)", path.display(), text.lines().count().saturating_sub(1)))?;
        }
    }
    Ok(())
}

/// Multiply-adds ×2 of one image's forward + backward pass (the conv1 input gradient is not
/// computed in training, so not counted).
pub fn flops_per_image(cfg: &ModelConfig) -> f64 {
    let (h1, w1) = cfg.conv1_out();
    let (h2, w2) = cfg.conv2_out();
    let k2 = (cfg.kernel * cfg.kernel) as f64;
    let conv1 = 2.0 * (cfg.conv1_filters * cfg.in_channels) as f64 * k2 * (h1 * w1) as f64;
    let conv2 = 2.0 * (cfg.conv2_filters * cfg.conv1_filters) as f64 * k2 * (h2 * w2) as f64;
    let fc1 = 2.0 * (cfg.flat_len() * cfg.hidden) as f64;
    let fc2 = 2.0 * (cfg.hidden * cfg.classes) as f64;
    2.0 * conv1 + 3.0 * (conv2 + fc1 + fc2)
}

/// One `bench` measurement.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// Engine measured.
    pub engine: ConvEngine,
    /// Batch size.
    pub batch: usize,
    /// Median seconds per training step.
    pub step_secs: f64,
    /// `batch / step_secs`.
    pub images_per_sec: f64,
    /// Achieved GFLOP/s.
    pub gflops: f64,
}

/// The post's network with the recommended init, and a batch of the embedded sample's first
/// images: what `bench` and `phase_profile` time.
fn bench_setup(engine: ConvEngine, batch: usize) -> Result<(Network<f32>, data::Batch), String> {
    let data = data::embedded().map_err(|e| e.to_string())?;
    let net = Network::<f32>::new(ModelConfig::default(), Preset::Recommended.init(), 1, engine)
        .map_err(|e| e.to_string())?;
    let indices: Vec<usize> = (0..batch).map(|i| i % data.train.len()).collect();
    let b = data.train.batch(&indices).map_err(|e| e.to_string())?;
    Ok((net, b))
}

/// Times full training steps (forward, backward, update) on the embedded sample's first images:
/// warm-up, then the median of several steps.
pub fn bench(engine: ConvEngine, batch: usize, min_secs: f64) -> Result<BenchResult, String> {
    let (mut net, b) = bench_setup(engine, batch)?;
    let cfg = *net.config();
    let pixels = b.images.as_slice().ok_or("batch images are not contiguous")?;
    let hyper = Preset::Recommended.hyper();
    let warmup = if engine == ConvEngine::Naive { 1 } else { 3 };
    for _ in 0..warmup {
        net.train_step(pixels, &b.labels, &hyper).map_err(|e| e.to_string())?;
    }
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 3 || (started.elapsed().as_secs_f64() < min_secs && times.len() < 200) {
        let t = Instant::now();
        net.train_step(pixels, &b.labels, &hyper).map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let step_secs = times[times.len() / 2];
    Ok(BenchResult {
        engine,
        batch,
        step_secs,
        images_per_sec: batch as f64 / step_secs,
        gflops: flops_per_image(&cfg) * batch as f64 / step_secs / 1e9,
    })
}

/// Milliseconds each phase of one fast-engine training step takes (median of `rounds` steps
/// after a warm-up): where the time of a step goes.
pub fn phase_profile(engine: ConvEngine, batch: usize, rounds: usize) -> Result<Vec<(String, f64)>, String> {
    let (mut net, b) = bench_setup(engine, batch)?;
    let pixels = b.images.as_slice().ok_or("batch images are not contiguous")?;
    let hyper = Preset::Recommended.hyper();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); net.phases().len()];
    for round in 0..rounds + 1 {
        net.load_batch(pixels, &b.labels).map_err(|e| e.to_string())?;
        for t in times.iter_mut() {
            let started = Instant::now();
            net.step_phase(&hyper, &mut |_, _| {});
            if round > 0 {
                t.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    Ok(net
        .phases()
        .iter()
        .zip(times)
        .map(|(p, mut t)| {
            t.sort_by(f64::total_cmp);
            (p.label(), t.get(t.len() / 2).copied().unwrap_or(0.0))
        })
        .collect())
}

/// Refuses a dataset whose images are not the size the network in `file` takes.
fn check_images_fit(file: &Path, cfg: &ModelConfig, set: &Dataset, source: &str) -> Result<(), String> {
    if set.image_len() == cfg.in_channels * cfg.in_height * cfg.in_width {
        return Ok(());
    }
    Err(format!(
        "{}: the network takes {}×{} images but {source} has {}×{}",
        file.display(),
        cfg.in_height,
        cfg.in_width,
        set.rows,
        set.cols
    ))
}

/// Formats an integer with thousands separators: 60000 → "60,000".
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A one-line progress bar on stderr: images done, images/s, running loss, ETA.
struct ProgressBar {
    label: String,
    total: usize,
    started: Instant,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl ProgressBar {
    fn new(label: String, total: usize) -> Self {
        Self { label, total, started: Instant::now(), last_draw: None, drawn: false }
    }

    fn update(&mut self, done: usize, loss: f32) {
        if self.last_draw.is_some_and(|t| t.elapsed() < Duration::from_millis(200)) && done < self.total {
            return;
        }
        self.last_draw = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 { (self.total.saturating_sub(done)) as f64 / rate } else { 0.0 };
        let width = 30;
        let filled = (width * done / self.total.max(1)).min(width);
        eprint!(
            "\r{} [{}{}] {}/{}  {} images/s  loss {:.4}  ETA {}:{:02} ",
            self.label,
            "#".repeat(filled),
            ".".repeat(width - filled),
            thousands(done as u64),
            thousands(self.total as u64),
            thousands(rate as u64),
            loss,
            (eta as u64) / 60,
            (eta as u64) % 60
        );
        self.drawn = true;
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}
