//! The named networks (`post`, `post-relu`, `lenet5`, `tiny`) and [`resolve`], which turns a
//! name or a line into a [`Plan`] for the data at hand.

use super::shape::Plan;
use super::spec::{LayerSpec, ModelSpec, SpecError};

/// A network with a name, written for 10 classes (the last fc takes the data's class count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamedModel {
    /// The name a user types (`lenet5`).
    pub name: &'static str,
    /// The line, for 10 classes.
    pub line: &'static str,
    /// One sentence on what it is for.
    pub about: &'static str,
}

/// Every named network, the default first.
pub const NAMED: [NamedModel; 4] = [
    NamedModel {
        name: "post",
        line: "conv(16,5,pad=2), relu, conv(32,5,pad=2), flatten, fc(100), relu, fc(10)",
        about: "The blog post's network: two 5×5 convolutions without pooling, no ReLU after the second.",
    },
    NamedModel {
        name: "post-relu",
        line: "conv(16,5,pad=2), relu, conv(32,5,pad=2), relu, flatten, fc(100), relu, fc(10)",
        about: "The post's network with a ReLU after conv2.",
    },
    NamedModel {
        name: "lenet5",
        line: "conv(6,5,pad=2), relu, maxpool(2), conv(16,5), relu, maxpool(2), flatten, fc(120), relu, fc(84), relu, fc(10)",
        about: "LeCun's LeNet-5 with ReLU and max pooling, as PyTorch tutorials write it.",
    },
    NamedModel {
        name: "tiny",
        line: "conv(16,5,pad=2), relu, maxpool(2), conv(32,5,pad=2), relu, maxpool(2), flatten, fc(10)",
        about: "The post's filters with pooling and one fc: the naive engine steps a batch of 32 in under a second.",
    },
];

/// The name of the default network.
pub const DEFAULT_MODEL: &str = "post";

/// The named network called `name` (case-insensitive), if there is one.
pub fn named(name: &str) -> Option<&'static NamedModel> {
    let name = name.trim();
    NAMED.iter().find(|m| m.name.eq_ignore_ascii_case(name))
}

impl NamedModel {
    /// The line as a spec whose last fc gives `classes` outputs.
    pub fn spec(&self, classes: usize) -> Result<ModelSpec, SpecError> {
        let mut spec = ModelSpec::parse(self.line)?;
        if let Some(LayerSpec::Fc { out }) = spec.layers.last_mut() {
            *out = classes;
        }
        Ok(spec)
    }
}

/// A named network (its input and last fc adapted to the data), or a line the user wrote
/// (which must match the data: the messages say how it does not), checked against images of
/// `input` = (channels, height, width) and `classes` classes.
pub fn resolve(name_or_line: &str, input: (usize, usize, usize), classes: usize) -> Result<Plan, SpecError> {
    match named(name_or_line) {
        Some(m) => m.spec(classes)?.plan(input, classes).map_err(|e| SpecError {
            reason: format!("{} (the named network `{}` does not fit this data)", e.reason, m.name),
            ..e
        }),
        None => {
            let word = name_or_line.trim();
            // A single word that is no layer kind was meant as a name: say which names exist.
            let is_word = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if is_word && ModelSpec::parse(word).is_err() {
                let names: Vec<&str> = NAMED.iter().map(|m| m.name).collect();
                return Err(SpecError::line(format!(
                    "`{word}` is neither a named network ({}) nor a line of layers",
                    names.join(", ")
                )));
            }
            ModelSpec::parse(name_or_line)?.plan(input, classes)
        }
    }
}

/// The name of the named network `plan` is, if it is one (the same line on its data's classes).
pub fn name_of(plan: &Plan) -> Option<&'static str> {
    NAMED.iter().find(|m| m.spec(plan.classes).is_ok_and(|s| s == plan.spec)).map(|m| m.name)
}
