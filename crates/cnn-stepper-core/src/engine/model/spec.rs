//! The model line: `conv(16,5,pad=2), relu, conv(32,5,pad=2), flatten, fc(100), relu, fc(10)`.
//!
//! [`ModelSpec::parse`] reads a line a user typed (it never panics, whatever the text) and
//! [`ModelSpec`]'s `Display` writes the canonical form back, so that
//! `ModelSpec::parse(&spec.to_string()) == Ok(spec)`.

use std::fmt;

/// Most filters a `conv` may have.
pub const MAX_FILTERS: usize = 512;
/// Largest kernel or pooling window side.
pub const MAX_KERNEL: usize = 11;
/// Largest stride of a `conv` or a pool.
pub const MAX_STRIDE: usize = 16;
/// Largest zero padding of a `conv`.
pub const MAX_PAD: usize = 10;
/// Most outputs an `fc` may have.
pub const MAX_FC: usize = 4096;
/// Most layers a line may have.
pub const MAX_LAYERS: usize = 32;
/// Longest line accepted, in characters.
pub const MAX_LINE_CHARS: usize = 4096;

/// The layer kinds a line may name, in the order messages list them.
pub const KINDS: [&str; 8] = ["conv", "maxpool", "avgpool", "relu", "tanh", "sigmoid", "flatten", "fc"];

/// One layer of a model line, with its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerSpec {
    /// `conv(F,K[,stride=S][,pad=P])`: F filters of K×K over all input channels (PyTorch's `Conv2d`).
    Conv {
        /// Output channels.
        filters: usize,
        /// Kernel side.
        k: usize,
        /// Stride (1 unless given).
        stride: usize,
        /// Zero padding on every side (0 unless given).
        pad: usize,
    },
    /// `maxpool(K[,stride=S])`: the largest value of each K×K window (PyTorch's `MaxPool2d`).
    MaxPool {
        /// Window side.
        k: usize,
        /// Stride (K unless given).
        stride: usize,
    },
    /// `avgpool(K[,stride=S])`: the mean of each K×K window (PyTorch's `AvgPool2d`).
    AvgPool {
        /// Window side.
        k: usize,
        /// Stride (K unless given).
        stride: usize,
    },
    /// `relu`: `max(0, x)`.
    Relu,
    /// `tanh`.
    Tanh,
    /// `sigmoid`: `1 / (1 + e^−x)`.
    Sigmoid,
    /// `flatten`: maps `[C, H, W]` to one vector of C·H·W values (no arithmetic).
    Flatten,
    /// `fc(N)`: N weighted sums of the whole input vector, plus a bias (PyTorch's `Linear`).
    Fc {
        /// Outputs.
        out: usize,
    },
}

impl LayerSpec {
    /// The kind's name as written in a line (`conv`, `maxpool`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Conv { .. } => "conv",
            LayerSpec::MaxPool { .. } => "maxpool",
            LayerSpec::AvgPool { .. } => "avgpool",
            LayerSpec::Relu => "relu",
            LayerSpec::Tanh => "tanh",
            LayerSpec::Sigmoid => "sigmoid",
            LayerSpec::Flatten => "flatten",
            LayerSpec::Fc { .. } => "fc",
        }
    }

    /// True for the layers with a weight and a bias (`conv`, `fc`).
    pub fn has_params(&self) -> bool {
        matches!(self, LayerSpec::Conv { .. } | LayerSpec::Fc { .. })
    }

    /// True for `relu`, `tanh` and `sigmoid`.
    pub fn is_activation(&self) -> bool {
        matches!(self, LayerSpec::Relu | LayerSpec::Tanh | LayerSpec::Sigmoid)
    }

    /// True for `maxpool` and `avgpool`.
    pub fn is_pool(&self) -> bool {
        matches!(self, LayerSpec::MaxPool { .. } | LayerSpec::AvgPool { .. })
    }
}

impl fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayerSpec::Conv { filters, k, stride, pad } => {
                write!(f, "conv({filters},{k}")?;
                if stride != 1 {
                    write!(f, ",stride={stride}")?;
                }
                if pad != 0 {
                    write!(f, ",pad={pad}")?;
                }
                f.write_str(")")
            }
            LayerSpec::MaxPool { k, stride } | LayerSpec::AvgPool { k, stride } => {
                write!(f, "{}({k}", self.kind())?;
                if stride != k {
                    write!(f, ",stride={stride}")?;
                }
                f.write_str(")")
            }
            LayerSpec::Fc { out } => write!(f, "fc({out})"),
            LayerSpec::Relu | LayerSpec::Tanh | LayerSpec::Sigmoid | LayerSpec::Flatten => f.write_str(self.kind()),
        }
    }
}

/// A model: its layers in order, one to one with a PyTorch `nn.Sequential`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ModelSpec {
    /// The layers, first to last.
    pub layers: Vec<LayerSpec>,
}

impl fmt::Display for ModelSpec {
    /// The canonical line: layers separated by `, `, defaults left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

/// Why a model line cannot be used: which layer (when one is to blame) and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct SpecError {
    /// The layer's position in the line, counting from 1 (`None` when no single layer is to blame).
    pub position: Option<usize>,
    /// The layer as written (shortened if very long), or empty.
    pub text: String,
    /// Why, e.g. "add `flatten` before the first fc".
    pub reason: String,
}

impl SpecError {
    /// An error at layer `position` (1-based) written as `text`.
    pub fn at(position: usize, text: &str, reason: impl Into<String>) -> Self {
        Self { position: Some(position), text: shorten(text), reason: reason.into() }
    }

    /// An error about the line as a whole.
    pub fn line(reason: impl Into<String>) -> Self {
        Self { position: None, text: String::new(), reason: reason.into() }
    }

    /// The message: "layer 5 `fc(100)`: add `flatten` before the first fc".
    pub fn message(&self) -> String {
        match (self.position, self.text.is_empty()) {
            (Some(p), false) => format!("layer {p} `{}`: {}", self.text, self.reason),
            (Some(p), true) => format!("layer {p}: {}", self.reason),
            (None, _) => self.reason.clone(),
        }
    }
}

/// At most 40 characters of a user's text, so that a pasted page does not become the message.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}

impl ModelSpec {
    /// Reads a model line. Layer names are case-insensitive and spaces are optional; an error
    /// names the first layer that cannot be read and says why.
    pub fn parse(line: &str) -> Result<ModelSpec, SpecError> {
        if line.chars().count() > MAX_LINE_CHARS {
            return Err(SpecError::line(format!("the line is longer than {MAX_LINE_CHARS} characters")));
        }
        let items = split_top_level(line)?;
        if items.len() == 1 && items[0].trim().is_empty() {
            return Err(SpecError::line(
                "the model line is empty: write layers separated by commas, ending in `fc(N)` (one output per class)",
            ));
        }
        if items.len() > MAX_LAYERS {
            return Err(SpecError::line(format!("{} layers: at most {MAX_LAYERS} are allowed", items.len())));
        }
        let layers =
            items.iter().enumerate().map(|(i, item)| parse_layer(i + 1, item.trim())).collect::<Result<Vec<_>, _>>()?;
        Ok(ModelSpec { layers })
    }
}

/// Splits at the commas outside parentheses.
fn split_top_level(line: &str) -> Result<Vec<&str>, SpecError> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, ch) in line.char_indices() {
        match ch {
            '(' => {
                depth += 1;
                if depth > 1 {
                    let pos = items.len() + 1;
                    return Err(SpecError::at(pos, line[start..].trim(), "parentheses inside parentheses"));
                }
            }
            ')' => {
                if depth == 0 {
                    let pos = items.len() + 1;
                    return Err(SpecError::at(pos, line[start..=i].trim(), "`)` without a `(` before it"));
                }
                depth -= 1;
            }
            ',' if depth == 0 => {
                items.push(&line[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        let pos = items.len() + 1;
        return Err(SpecError::at(pos, line[start..].trim(), "the `(` is never closed"));
    }
    items.push(&line[start..]);
    Ok(items)
}

/// One number or `key=number` inside a layer's parentheses.
struct Arg<'a> {
    key: Option<&'a str>,
    value: &'a str,
}

fn parse_layer(pos: usize, item: &str) -> Result<LayerSpec, SpecError> {
    if item.is_empty() {
        return Err(SpecError::at(pos, "", "no layer between two commas (or a comma at the end)"));
    }
    let (name, args) = match item.find('(') {
        Some(open) => {
            let close = item.rfind(')').unwrap_or(item.len());
            if !item[close..].trim_start_matches(')').trim().is_empty() || close < open {
                return Err(SpecError::at(pos, item, "text after the closing `)`"));
            }
            (item[..open].trim(), Some(&item[open + 1..close]))
        }
        None => (item, None),
    };
    let kind = name.to_ascii_lowercase();
    if !KINDS.contains(&kind.as_str()) {
        return Err(SpecError::at(pos, item, unknown_kind(name)));
    }
    let args: Vec<Arg<'_>> = match args {
        None => Vec::new(),
        Some(a) if a.trim().is_empty() => Vec::new(),
        Some(a) => a
            .split(',')
            .map(|part| match part.split_once('=') {
                Some((k, v)) => Arg { key: Some(k.trim()), value: v.trim() },
                None => Arg { key: None, value: part.trim() },
            })
            .collect(),
    };
    let reader = Args { pos, item, kind: &kind, args };
    let layer = match kind.as_str() {
        "conv" => {
            reader.expect_positional(2, "conv(F,K[,stride=S][,pad=P]): F filters of K×K")?;
            let filters = reader.number(0, "filters", 1, MAX_FILTERS)?;
            let k = reader.number(1, "kernel size", 1, MAX_KERNEL)?;
            let stride = reader.keyword("stride", 1, 1, MAX_STRIDE)?;
            let pad = reader.keyword("pad", 0, 0, MAX_PAD)?;
            reader.no_other_keywords(&["stride", "pad"])?;
            LayerSpec::Conv { filters, k, stride, pad }
        }
        "maxpool" | "avgpool" => {
            reader.expect_positional(1, &format!("{kind}(K[,stride=S]): a K×K window"))?;
            let k = reader.number(0, "window size", 1, MAX_KERNEL)?;
            let stride = reader.keyword("stride", k, 1, MAX_STRIDE)?;
            reader.no_other_keywords(&["stride"])?;
            if kind == "maxpool" { LayerSpec::MaxPool { k, stride } } else { LayerSpec::AvgPool { k, stride } }
        }
        "fc" => {
            reader.expect_positional(1, "fc(N): N outputs")?;
            let out = reader.number(0, "outputs", 1, MAX_FC)?;
            reader.no_other_keywords(&[])?;
            LayerSpec::Fc { out }
        }
        _ => {
            if !reader.args.is_empty() {
                return Err(SpecError::at(pos, item, format!("`{kind}` takes no numbers: write `{kind}`")));
            }
            match kind.as_str() {
                "relu" => LayerSpec::Relu,
                "tanh" => LayerSpec::Tanh,
                "sigmoid" => LayerSpec::Sigmoid,
                _ => LayerSpec::Flatten,
            }
        }
    };
    Ok(layer)
}

/// Reads the numbers of one layer, with messages naming the layer.
struct Args<'a> {
    pos: usize,
    item: &'a str,
    kind: &'a str,
    args: Vec<Arg<'a>>,
}

impl Args<'_> {
    fn err(&self, reason: impl Into<String>) -> SpecError {
        SpecError::at(self.pos, self.item, reason)
    }

    fn expect_positional(&self, want: usize, usage: &str) -> Result<(), SpecError> {
        if let Some(a) = self.args.iter().find(|a| a.key.is_some_and(str::is_empty)) {
            return Err(self.err(format!("`={}` has no name before the `=`: {usage}", a.value)));
        }
        let positional: Vec<&Arg<'_>> = self.args.iter().filter(|a| a.key.is_none()).collect();
        if positional.iter().any(|a| a.value.is_empty()) {
            return Err(self.err(format!("an empty number: {usage}")));
        }
        // Positional numbers must come first, as in Python.
        if let Some(first_kw) = self.args.iter().position(|a| a.key.is_some())
            && self.args[first_kw..].iter().any(|a| a.key.is_none())
        {
            return Err(self.err(format!("a number after a `name=value`: {usage}")));
        }
        if positional.len() != want {
            let which = if positional.len() < want { "missing" } else { "too many" };
            return Err(self.err(format!("{which} numbers: {usage}")));
        }
        Ok(())
    }

    fn number(&self, index: usize, what: &str, lo: usize, hi: usize) -> Result<usize, SpecError> {
        let text = self.args.iter().filter(|a| a.key.is_none()).nth(index).map_or("", |a| a.value);
        self.check(text, what, lo, hi)
    }

    fn check(&self, text: &str, what: &str, lo: usize, hi: usize) -> Result<usize, SpecError> {
        let range = format!("{what} must be a whole number from {lo} to {hi}");
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(format!("`{}` is not a number: {range}", shorten(text))));
        }
        match text.parse::<u64>() {
            Ok(v) if v >= lo as u64 && v <= hi as u64 => Ok(v as usize),
            Ok(v) => Err(self.err(format!("{range}, not {v}"))),
            Err(_) => Err(self.err(format!("{range}, not {}", shorten(text)))),
        }
    }

    fn keyword(&self, key: &str, default: usize, lo: usize, hi: usize) -> Result<usize, SpecError> {
        let mut found = self.args.iter().filter(|a| a.key.is_some_and(|k| k.eq_ignore_ascii_case(key)));
        let Some(first) = found.next() else { return Ok(default) };
        if found.next().is_some() {
            return Err(self.err(format!("`{key}` is given twice")));
        }
        self.check(first.value, key, lo, hi)
    }

    fn no_other_keywords(&self, allowed: &[&str]) -> Result<(), SpecError> {
        for a in &self.args {
            if let Some(k) = a.key
                && !allowed.iter().any(|x| x.eq_ignore_ascii_case(k))
            {
                let known = if allowed.is_empty() {
                    format!("`{}` takes no named settings", self.kind)
                } else {
                    format!(
                        "`{}` knows {}",
                        self.kind,
                        allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(" and ")
                    )
                };
                return Err(self.err(format!("unknown setting `{}`: {known}", shorten(k))));
            }
        }
        Ok(())
    }
}

/// "unknown layer `conw`: did you mean `conv`? (known: …)".
fn unknown_kind(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let known = KINDS.join(", ");
    if lower.is_empty() {
        return format!("a layer needs a name before its `(`; known layers: {known}");
    }
    // PyTorch's and other tools' names for the same layers.
    let synonym = match lower.as_str() {
        "linear" | "dense" | "fullyconnected" => Some("fc"),
        "conv2d" | "convolution" => Some("conv"),
        "maxpool2d" | "pool" | "max_pool" | "max" => Some("maxpool"),
        "avgpool2d" | "avg_pool" | "meanpool" | "avg" => Some("avgpool"),
        "flat" | "reshape" => Some("flatten"),
        "logistic" => Some("sigmoid"),
        _ => None,
    };
    let closest = synonym.or_else(|| {
        KINDS
            .iter()
            .map(|k| (edit_distance(&lower, k), *k))
            .filter(|(d, _)| *d <= 3)
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k)
    });
    match closest {
        Some(k) => format!("unknown layer `{}`: did you mean `{k}`? (known: {known})", shorten(name)),
        None => format!("unknown layer `{}` (known: {known})", shorten(name)),
    }
}

/// Levenshtein distance, on characters; long inputs are cut short (a name is never long).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("conw", "conv"), 1);
        assert_eq!(edit_distance("", "fc"), 2);
        assert_eq!(edit_distance("maxpol", "maxpool"), 1);
    }

    #[test]
    fn top_level_split_keeps_arguments_together() {
        assert_eq!(split_top_level("conv(1,2), relu").unwrap(), vec!["conv(1,2)", " relu"]);
    }
}
