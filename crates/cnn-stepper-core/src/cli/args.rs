//! The command line: what `cnn-stepper` accepts, and the headless commands it runs. The
//! window's crate parses [`Cli`] and opens the window when no command is given.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use super::{TrainOptions, thousands};
use crate::data::ClassNames;
use crate::engine::{ConvEngine, Preset};

/// Step through one training step of a real CNN on MNIST, phase by phase.
///
/// Without a command, opens the window on the embedded MNIST sample (or --data DIR).
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// Folder with the four MNIST IDX files (raw or .gz); default: the embedded sample.
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Class names: "digits" or "fashion" (default: classes.txt in the folder, else digits).
    #[arg(long, global = true, value_parser = parse_classes)]
    pub classes: Option<ClassNames>,
    /// Seed for the window's first run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The headless command to run; none opens the window.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The headless commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train headless, printing each epoch's loss and accuracy.
    Train {
        /// Passes over the training set.
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        /// Images per batch (default: the preset's, 32).
        #[arg(long)]
        batch: Option<usize>,
        /// Learning rate (default: the preset's).
        #[arg(long)]
        lr: Option<f32>,
        /// Momentum in [0, 1) (default: the preset's).
        #[arg(long)]
        momentum: Option<f32>,
        /// L2 strength on the dense weights (default: the preset's).
        #[arg(long)]
        reg: Option<f32>,
        /// Learning-rate factor applied after each epoch (default: the preset's).
        #[arg(long)]
        lr_decay: Option<f32>,
        /// Convolution engine: naive or fast.
        #[arg(long, default_value = "fast", value_parser = parse_engine)]
        engine: ConvEngine,
        /// Preset: post (the blog post's init, which does not learn) or recommended.
        #[arg(long, default_value = "recommended", value_parser = parse_preset)]
        preset: Preset,
        /// Seed for init and batch order.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Put a ReLU after conv2 (not in the post).
        #[arg(long)]
        relu_after_conv2: bool,
        /// Save here at the end (also after Ctrl-C): a session file (safetensors) that loads as
        /// plain PyTorch-layout weights and that --resume continues.
        #[arg(long, value_name = "FILE")]
        save: Option<PathBuf>,
        /// Continue this session file. --epochs then counts all epochs, those in the file
        /// included; --lr, --batch, etc. override the file's; --preset and --seed are ignored.
        #[arg(long, value_name = "FILE")]
        resume: Option<PathBuf>,
    },
    /// Export a weights or session file: weights as NumPy .npz with the post's names
    /// (c1_filters … fc_b2, fc_W1/fc_W2 transposed), curves as CSV.
    Export {
        /// Weights or session file.
        #[arg(long, value_name = "FILE")]
        weights: PathBuf,
        /// Write the weights here as .npz.
        #[arg(long, value_name = "OUT.npz")]
        npz: Option<PathBuf>,
        /// Write the loss curve here: step,loss,batch_accuracy (session files only).
        #[arg(long, value_name = "FILE.csv")]
        loss_csv: Option<PathBuf>,
        /// Write the held-out accuracy curve here: step,test_accuracy (session files only).
        #[arg(long, value_name = "FILE.csv")]
        accuracy_csv: Option<PathBuf>,
    },
    /// Accuracy of saved weights on the whole test set.
    Eval {
        /// Weights file (safetensors, ours or a PyTorch state dict).
        #[arg(long, value_name = "FILE")]
        weights: PathBuf,
        /// Also write one row per test image: index,label,predicted,p0,…,p9.
        #[arg(long, value_name = "FILE.csv")]
        out: Option<PathBuf>,
    },
    /// Images per second of full training steps, per engine and batch size (default: naive at
    /// batch 8, fast at 8, 32 and 128).
    Bench {
        /// Engine(s) to measure (default: both).
        #[arg(long, value_parser = parse_engine)]
        engine: Vec<ConvEngine>,
        /// Batch sizes (default: 8 32 128).
        #[arg(long, num_args = 1..)]
        batch: Vec<usize>,
        /// Seconds to measure each configuration for (at least 3 steps).
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
        /// Also show how long each phase of a step takes.
        #[arg(long)]
        phases: bool,
    },
}

pub(crate) fn parse_engine(s: &str) -> Result<ConvEngine, String> {
    ConvEngine::parse(s).map_err(|e| e.to_string())
}
fn parse_preset(s: &str) -> Result<Preset, String> {
    Preset::parse(s).map_err(|e| e.to_string())
}
fn parse_classes(s: &str) -> Result<ClassNames, String> {
    s.parse::<ClassNames>().map_err(|e| e.to_string())
}

/// Runs a headless command with the global options of `cli`.
pub fn run(command: Command, data: Option<PathBuf>, classes: Option<ClassNames>) -> Result<(), String> {
    let mut stdout = std::io::stdout();
    match command {
        Command::Train {
            epochs,
            batch,
            lr,
            momentum,
            reg,
            lr_decay,
            engine,
            preset,
            seed,
            relu_after_conv2,
            save,
            resume,
        } => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            // Ctrl-C stops after the current step so the weights can still be saved.
            ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
                .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
            let o = TrainOptions {
                data,
                classes,
                epochs,
                batch,
                lr,
                momentum,
                reg,
                lr_decay,
                engine,
                preset,
                seed,
                relu_after_conv2,
                save,
            };
            super::train_from(&o, resume.as_deref(), &stop, &mut stdout).map(|_| ())
        }
        Command::Export { weights, npz, loss_csv, accuracy_csv } => {
            super::export(&weights, npz.as_deref(), loss_csv.as_deref(), accuracy_csv.as_deref(), &mut stdout)
        }
        Command::Eval { weights, out } => {
            super::eval(&weights, data.as_deref(), classes, out.as_deref(), &mut stdout).map(|_| ())
        }
        Command::Bench { engine, batch, secs, phases } => {
            // By default the naive engine runs at batch 8 only: a batch of 128 takes it ~10 s.
            let naive_default_only_8 = engine.is_empty() && batch.is_empty();
            let engines = if engine.is_empty() { vec![ConvEngine::Naive, ConvEngine::Fast] } else { engine };
            let batches = if batch.is_empty() { vec![8, 32, 128] } else { batch };
            if let Some(b) = batches.iter().find(|b| **b == 0 || **b > 4096) {
                return Err(format!("batch size {b} must be between 1 and 4096"));
            }
            let mut fast = std::collections::HashMap::new();
            let mut naive = std::collections::HashMap::new();
            for &b in &batches {
                for &e in &engines {
                    if naive_default_only_8 && e == ConvEngine::Naive && b != 8 {
                        continue;
                    }
                    let r = super::bench(e, b, secs)?;
                    println!(
                        "{:<6} batch {:>3}: {} images/s ({:.1} GFLOP/s, {:.1} ms/step)",
                        e.name(),
                        b,
                        thousands(r.images_per_sec.round() as u64),
                        r.gflops,
                        r.step_secs * 1e3
                    );
                    match e {
                        ConvEngine::Fast => fast.insert(b, r.images_per_sec),
                        ConvEngine::Naive => naive.insert(b, r.images_per_sec),
                    };
                    if phases {
                        let rounds = if e == ConvEngine::Naive { 1 } else { 5 };
                        for (label, ms) in super::phase_profile(e, b, rounds)? {
                            println!("         {label:<18} {ms:>8.2} ms");
                        }
                    }
                }
                if let (Some(f), Some(n)) = (fast.get(&b), naive.get(&b)) {
                    println!("         batch {b:>3}: fast is {:.1}× naive", f / n);
                }
            }
            Ok(())
        }
    }
}

