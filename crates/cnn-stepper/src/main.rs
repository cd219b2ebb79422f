//! `cnn-stepper`: opens the window, or runs a headless command (`train`, `eval`, `export`,
//! `bench`).

use std::process::ExitCode;

use clap::Parser;
use cnn_stepper::app::{GuiOptions, run_gui};
use cnn_stepper::cli::args::{Cli, run};

fn main() -> ExitCode {
    // RUST_LOG=warn (or info, debug) shows eframe's and wgpu's own diagnostics.
    env_logger::init();
    let cli = Cli::parse();
    let result = match cli.command {
        None => run_gui(GuiOptions { data: cli.data, classes: cli.classes, seed: cli.seed }),
        Some(command) => run(command, cli.data, cli.classes),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
