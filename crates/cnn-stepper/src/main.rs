//! `cnn-stepper`: opens the window, or runs a headless command (`train`, `eval`, `export`,
//! `bench`).

use std::process::ExitCode;

use clap::Parser;
use cnn_stepper::app::{GuiOptions, run_gui};
use cnn_stepper::cli::args::{Cli, exit_code, run};

fn main() -> ExitCode {
    // RUST_LOG=warn (or info, debug) shows eframe's and wgpu's own diagnostics.
    env_logger::init();
    let cli = Cli::parse();
    let load = cli.load_options();
    match cli.command {
        None => match run_gui(GuiOptions {
            data: cli.data,
            classes: cli.classes,
            image_size: cli.image_size,
            grayscale: cli.grayscale,
            seed: cli.seed,
            model: cli.model,
            lesson: cli.lesson,
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Some(command) => {
            let result = run(command, cli.data, load);
            if let Err(e) = &result {
                eprintln!("error: {e}");
            }
            exit_code(&result)
        }
    }
}
