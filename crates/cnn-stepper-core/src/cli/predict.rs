//! `cnn-stepper predict`: what a saved network says about picture files, as
//! `photo.jpg: cat 81.2%, dog 12.0%, frog 3.1%`.
//!
//! Only the weights file is read, never training data: its metadata says what the network takes
//! (channels, height, width) and what its classes are called, and each picture is prepared as
//! the training images were ([`picture::for_input`]: resized in colour or grey, or, for a grey
//! 28×28 network, like a drawn MNIST digit).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::CliError;
use crate::data::{ClassNames, MNIST_SIDE, NUM_CLASSES, picture};
use crate::engine::ConvEngine;
use crate::engine::model::{DEFAULT_MODEL, Sequential, Tensors, resolve};
use crate::engine::weights::{self, LoadedModel, WeightsError};
use crate::trainer::TrainError;

/// How many classes a line names, at most.
pub const TOP: usize = 3;

/// A probability as the app shows it: `decimals` decimals, floored, so that 99.96% reads 99.9%
/// and not a certainty of 100.0% (only a probability of exactly 1 does); e.g. `percent(0.8125,
/// 1)` is `81.2%`.
#[must_use]
pub fn percent(p: f32, decimals: usize) -> String {
    let scale = 10f64.powi(decimals as i32);
    // The f32 0.998 is 0.99799996…: a thousandth of the last digit keeps it at 99.8.
    let mut v = ((p.clamp(0.0, 1.0) as f64) * 100.0 * scale + 1e-3).floor() / scale;
    if p < 1.0 {
        v = v.min(100.0 - 1.0 / scale);
    }
    format!("{v:.decimals$}%")
}

/// The `k` most probable classes of `probs`, most probable first (the lower class first on a
/// tie), as (class, probability).
#[must_use]
pub fn top_classes(probs: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(k);
    order
}

/// One class a network sees in a picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Guess {
    /// The class index.
    pub class: usize,
    /// Its name (the index as text when the file names no classes).
    pub name: String,
    /// Its softmax probability.
    pub probability: f32,
}

/// `file: name p%, name p%, …`, the line `predict` prints for one picture.
#[must_use]
pub fn prediction_line(file: &str, guesses: &[Guess]) -> String {
    let parts: Vec<String> = guesses.iter().map(|g| format!("{} {}", g.name, percent(g.probability, 1))).collect();
    format!("{file}: {}", parts.join(", "))
}

/// A saved network ready to classify pictures: its input shape and class names come from the
/// file.
pub struct Predictor {
    net: Sequential<f32>,
    input: (usize, usize, usize),
    names: Vec<String>,
    scores: Tensors<f32>,
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor")
            .field("model", &self.net.plan().spec.to_string())
            .field("input", &self.input)
            .field("names", &self.names)
            .finish()
    }
}

impl Predictor {
    /// Reads the network of a weights or session file (anything [`weights::load_model`] reads),
    /// and writes any note about it (an unchecked file, a guessed network) to `notes`.
    ///
    /// A model or session file names its network, input and classes. `model` (a name or a line)
    /// must then be that network if given. A PyTorch state dict names none of them: it is read
    /// as `model` (default [`DEFAULT_MODEL`], with a note) on 1×28×28 images with 10 classes,
    /// what `eval` assumes of it without `--data`. `classes` names the classes of a file that
    /// does not (an old post file, a state dict) when it has ten; otherwise they are numbered.
    ///
    /// # Errors
    /// [`CliError::Weights`] for a file that cannot be read or does not hold a network,
    /// [`CliError::Model`] for a `model` that does not fit, [`CliError::Unnamed`] for a state
    /// dict that is not the default network.
    pub fn open(
        path: &Path,
        model: Option<&str>,
        classes: Option<ClassNames>,
        notes: &mut dyn Write,
    ) -> Result<Self, CliError> {
        let name = path.display().to_string();
        let bytes = weights::read_file(path)?;
        let loaded = match weights::from_bytes_model(&bytes, &name, None) {
            Ok(loaded) => match model {
                // Resolved on the file's own input and classes, then held against the file.
                Some(m) => {
                    let plan = resolve(m, loaded.weights.input, loaded.plan.classes).map_err(CliError::Model)?;
                    weights::from_bytes_model(&bytes, &name, Some(&plan))?
                }
                None => loaded,
            },
            Err(WeightsError::NoModelLine { .. }) => {
                let mnist = (1, MNIST_SIDE, MNIST_SIDE);
                let plan = resolve(model.unwrap_or(DEFAULT_MODEL), mnist, NUM_CLASSES).map_err(CliError::Model)?;
                let loaded = weights::from_bytes_model(&bytes, &name, Some(&plan));
                if model.is_some() {
                    loaded?
                } else {
                    let loaded =
                        loaded.map_err(|error| CliError::Unnamed { error: Box::new(error), tried: DEFAULT_MODEL })?;
                    note(
                        notes,
                        &format!(
                            "{name} does not say which network it holds; its tensors fit `{DEFAULT_MODEL}` on 1×28×28 \
                             images, so it was read as that (--model reads it as another)"
                        ),
                    )?;
                    loaded
                }
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(text) = loaded.integrity.note(&name) {
            note(notes, &text)?;
        }
        Self::from_loaded(&loaded, classes, notes, &name)
    }

    /// A predictor for a network already read; `name` (the file) is used in notes.
    ///
    /// # Errors
    /// [`CliError::Engine`] when the network cannot be built from the file's tensors.
    pub fn from_loaded(
        loaded: &LoadedModel,
        classes: Option<ClassNames>,
        notes: &mut dyn Write,
        name: &str,
    ) -> Result<Self, CliError> {
        let count = loaded.plan.classes;
        let own = &loaded.weights.class_names;
        let names = if own.len() == count {
            if classes.is_some() {
                note(notes, &format!("{name} names its own classes; --classes is not used"))?;
            }
            own.clone()
        } else {
            match classes.map(ClassNames::names) {
                Some(given) if given.len() == count => given,
                Some(given) => {
                    note(notes, &format!("--classes gives {} names but the network has {count} classes", given.len()))?;
                    (0..count).map(|c| c.to_string()).collect()
                }
                None => (0..count).map(|c| c.to_string()).collect(),
            }
        };
        Ok(Self {
            net: loaded.sequential(ConvEngine::Fast)?,
            input: loaded.weights.input,
            names,
            scores: Tensors::default(),
        })
    }

    /// What the network takes: (channels, height, width).
    #[must_use]
    pub fn input(&self) -> (usize, usize, usize) {
        self.input
    }

    /// The class names, in class order.
    #[must_use]
    pub fn class_names(&self) -> &[String] {
        &self.names
    }

    /// The softmax probabilities of one prepared image (`channels × height × width` values, as
    /// [`picture::for_input`] gives for [`Predictor::input`]).
    ///
    /// # Errors
    /// [`CliError::Engine`] when `image` is not one image of the network's input.
    pub fn probabilities(&mut self, image: &[f32]) -> Result<Vec<f32>, CliError> {
        self.net.forward_into(image, &[0], 0.0, &mut self.scores)?;
        Ok(self.scores.probs.clone())
    }

    /// The [`TOP`] most probable classes of the picture file at `path` (fewer when the network
    /// has fewer classes), the picture prepared as training did.
    ///
    /// # Errors
    /// [`CliError::Data`] naming the file when it cannot be read or decoded.
    pub fn classify_file(&mut self, path: &Path) -> Result<Vec<Guess>, CliError> {
        let image = picture::file_for_input(path, self.input)?;
        let probs = self.probabilities(&image)?;
        if probs.len() != self.names.len() {
            return Err(TrainError::Internal("the network gave a score per class of another count").into());
        }
        Ok(top_classes(&probs, TOP)
            .into_iter()
            .map(|(class, probability)| Guess { class, name: self.names[class].clone(), probability })
            .collect())
    }
}

/// What `predict` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PredictSummary {
    /// Pictures classified (one line each on `out`).
    pub classified: usize,
    /// Pictures that could not be read (one `error: …` line each on `err`).
    pub failed: usize,
}

/// `cnn-stepper predict`: for each picture file, a line on `out` with the [`TOP`] most probable
/// classes of the network in `weights_path` (see [`Predictor::open`] for `model` and
/// `classes`), in the order given. A picture that cannot be read gets `error: <file>: <why>` on
/// `err` and the others still run: [`PredictSummary::failed`] counts them.
///
/// # Errors
/// As [`Predictor::open`] when the weights file cannot be used (no picture is read then), and
/// [`CliError::Output`] when `out` or `err` cannot be written.
pub fn predict(
    weights_path: &Path,
    model: Option<&str>,
    classes: Option<ClassNames>,
    images: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<PredictSummary, CliError> {
    let mut predictor = Predictor::open(weights_path, model, classes, err)?;
    let mut summary = PredictSummary::default();
    for path in images {
        match predictor.classify_file(path) {
            Ok(guesses) => {
                writeln!(out, "{}", prediction_line(&path.display().to_string(), &guesses))
                    .map_err(CliError::Output)?;
                summary.classified += 1;
            }
            Err(CliError::Data(e)) => {
                writeln!(err, "error: {e}").map_err(CliError::Output)?;
                summary.failed += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(summary)
}

fn note(notes: &mut dyn Write, text: &str) -> Result<(), CliError> {
    writeln!(notes, "note: {text}").map_err(CliError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_floored_to_one_decimal_as_the_window_shows_them() {
        assert_eq!(percent(0.8125, 1), "81.2%");
        assert_eq!(percent(0.998, 1), "99.8%");
        assert_eq!(percent(0.99996, 1), "99.9%", "never 100% unless certain");
        assert_eq!(percent(1.0, 1), "100.0%");
        assert_eq!(percent(0.0004, 1), "0.0%");
        assert_eq!(percent(0.5, 0), "50%");
    }

    #[test]
    fn the_top_classes_come_most_probable_first_and_no_more_than_there_are() {
        assert_eq!(top_classes(&[0.1, 0.6, 0.3], 3), vec![(1, 0.6), (2, 0.3), (0, 0.1)]);
        assert_eq!(top_classes(&[0.25, 0.5, 0.25, 0.0], 3), vec![(1, 0.5), (0, 0.25), (2, 0.25)]);
        assert_eq!(top_classes(&[0.4, 0.6], 3).len(), 2);
        let guesses = [
            Guess { class: 3, name: "cat".into(), probability: 0.812 },
            Guess { class: 5, name: "dog".into(), probability: 0.12 },
        ];
        assert_eq!(prediction_line("photo.jpg", &guesses), "photo.jpg: cat 81.2%, dog 12.0%");
    }
}
