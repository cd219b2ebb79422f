//! Weights files: safetensors in PyTorch's layout, so a model moves between this app and
//! PyTorch without conversion.
//!
//! A file holds the eight tensors under the names of [`PARAM_NAMES`] (`conv1.weight`
//! `[F1, C, K, K]` … `fc2.bias` `[CLASSES]`), little-endian `F32`, and a string→string
//! `__metadata__` map with `"format"` ([`FORMAT`]), `"config"` (the [`ModelConfig`] as JSON),
//! and, when known, `"preset"`, `"seed"` and `"step"`.
//!
//! Reading is more lenient than writing, because the point is to take what PyTorch writes:
//! - `F64` tensors are rounded to `f32`.
//! - The state dict of the equivalent `torch.nn.Sequential` uses layer indices for names:
//!   `0.*` conv1, `2.*` conv2, `4.*` fc1, `6.*` fc2; or, with a `ReLU` after conv2, `5.*` fc1
//!   and `7.*` fc2 (which sets [`ModelConfig::relu_after_conv2`]).
//! - A file without our metadata gets its [`ModelConfig`] from the tensor shapes, assuming
//!   stride 1, "same" padding `(K − 1) / 2` and a square input.
//! - Tensors named `session.*` are skipped: a later session-file format stores its state there.
//!
//! [`PARAM_NAMES`]: super::PARAM_NAMES

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};

use super::{EngineError, ModelConfig, PARAM_NAMES, Params};

/// The `"format"` metadata value of the files this version writes and reads.
pub const FORMAT: &str = "cnn-stepper weights v1";

/// Prefix of tensor names reserved for the session-file format; loading weights skips them.
pub const SESSION_PREFIX: &str = "session.";

/// Largest size any [`ModelConfig`] field may have in a file. Far above any network this app
/// can train, and low enough that no shape arithmetic on a hostile file can overflow.
const MAX_CONFIG_SIZE: usize = 1 << 16;

/// Names errors from [`to_bytes`], which has no file yet.
const UNSAVED: &str = "weights";

/// What a weights file says about its network besides the tensors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightsMeta {
    /// The network's shape.
    pub config: ModelConfig,
    /// The preset the run started from (e.g. `"recommended"`); `None` for files from elsewhere.
    pub preset: Option<String>,
    /// The seed the run started from; `None` for files from elsewhere.
    pub seed: Option<u64>,
    /// Training steps taken when the file was saved; `None` for files from elsewhere.
    pub step: Option<u64>,
}

impl WeightsMeta {
    /// Metadata that records only the network's shape.
    pub fn new(config: ModelConfig) -> Self {
        Self { config, preset: None, seed: None, step: None }
    }
}

/// One field on which a file's network and the expected network disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigDiff {
    /// The [`ModelConfig`] field name, e.g. `"hidden"`.
    pub field: String,
    /// Its value in the file.
    pub file: String,
    /// Its value in the expected configuration.
    pub expected: String,
}

/// Why a weights file could not be written or read. Every message starts with the file's name
/// (or `weights` for [`to_bytes`], which has none), so it can be shown as is.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The weights file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The bytes are not a safetensors file (truncated, corrupt, or something else entirely).
    #[error("{name}: not a valid safetensors file: {source}")]
    Corrupt {
        /// The weights file.
        name: String,
        /// What the safetensors parser found.
        source: SafeTensorError,
    },
    /// The tensor names are not those of this network.
    #[error("{name}: {}", names_message(missing, unexpected))]
    Names {
        /// The weights file.
        name: String,
        /// Tensors the network needs that the file lacks, as the file would name them.
        missing: Vec<String>,
        /// Tensors in the file that belong to no parameter.
        unexpected: Vec<String>,
    },
    /// A tensor has the wrong shape (or the parameters do not match the config being saved).
    #[error("{name}: tensor \"{tensor}\" has shape {found:?} but this network needs {expected:?}")]
    Shape {
        /// The weights file.
        name: String,
        /// The tensor, as the file names it.
        tensor: String,
        /// Its shape.
        found: Vec<usize>,
        /// The shape the network needs.
        expected: Vec<usize>,
    },
    /// A tensor is stored in a type that is not a float we can read exactly enough.
    #[error("{name}: tensor \"{tensor}\" is {dtype}; expected F32 or F64")]
    Dtype {
        /// The weights file.
        name: String,
        /// The tensor, as the file names it.
        tensor: String,
        /// The safetensors type name, e.g. `F16`.
        dtype: String,
    },
    /// The `__metadata__` map is not one this version understands.
    #[error("{name}: {detail}")]
    Metadata {
        /// The weights file.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A file without our metadata whose shapes do not describe a network we can build.
    #[error("{name}: cannot infer the network from the tensor shapes: {detail}")]
    Infer {
        /// The weights file.
        name: String,
        /// Which shape does not fit, and why.
        detail: String,
    },
    /// The configuration (from the metadata, inferred, or being saved) cannot be built.
    #[error("{name}: {source}")]
    Config {
        /// The weights file.
        name: String,
        /// Why the configuration is invalid.
        source: EngineError,
    },
    /// The file holds a different network from the one the caller expects.
    #[error("{name}: the file's network differs from the expected one: {}", diffs_message(differences))]
    ConfigMismatch {
        /// The weights file.
        name: String,
        /// Every field that differs.
        differences: Vec<ConfigDiff>,
    },
    /// The safetensors writer refused the tensors.
    #[error("{name}: cannot encode as safetensors: {source}")]
    Encode {
        /// The weights file.
        name: String,
        /// What the safetensors writer said.
        source: SafeTensorError,
    },
}

fn names_message(missing: &[String], unexpected: &[String]) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|t| format!("missing tensor \"{t}\""))
        .chain(unexpected.iter().map(|t| format!("unexpected tensor \"{t}\"")))
        .collect();
    parts.join("; ")
}

fn diffs_message(diffs: &[ConfigDiff]) -> String {
    let parts: Vec<String> =
        diffs.iter().map(|d| format!("{} is {} in the file but {} is expected", d.field, d.file, d.expected)).collect();
    parts.join("; ")
}

/// Encodes parameters and metadata as the bytes of a weights file.
///
/// Fails if a tensor's shape does not match `meta.config` or the config is invalid, so that
/// no file gets written that [`from_bytes`] would refuse.
pub fn to_bytes(params: &Params<f32>, meta: &WeightsMeta) -> Result<Vec<u8>, WeightsError> {
    encode(params, meta, UNSAVED)
}

fn encode(params: &Params<f32>, meta: &WeightsMeta, name: &str) -> Result<Vec<u8>, WeightsError> {
    check_config(&meta.config, name)?;
    let arrays = param_bytes(params);
    let shapes = Params::<f32>::shapes(&meta.config);
    let mut buffers = Vec::with_capacity(arrays.len());
    for ((tensor, (shape, bytes)), expected) in PARAM_NAMES.iter().zip(arrays).zip(shapes) {
        if shape != expected.as_slice() {
            return Err(WeightsError::Shape {
                name: name.to_owned(),
                tensor: (*tensor).to_owned(),
                found: shape.to_vec(),
                expected,
            });
        }
        buffers.push((*tensor, expected, bytes));
    }
    let mut views = Vec::with_capacity(buffers.len());
    for (tensor, shape, bytes) in &buffers {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|source| WeightsError::Encode { name: name.to_owned(), source })?;
        views.push((*tensor, view));
    }
    let config = serde_json::to_string(&meta.config).map_err(|e| WeightsError::Metadata {
        name: name.to_owned(),
        detail: format!("cannot encode the configuration as JSON: {e}"),
    })?;
    let mut info = HashMap::from([("format".to_owned(), FORMAT.to_owned()), ("config".to_owned(), config)]);
    if let Some(preset) = &meta.preset {
        info.insert("preset".to_owned(), preset.clone());
    }
    if let Some(seed) = meta.seed {
        info.insert("seed".to_owned(), seed.to_string());
    }
    if let Some(step) = meta.step {
        info.insert("step".to_owned(), step.to_string());
    }
    let mut bytes = safetensors::serialize(views, Some(info))
        .map_err(|source| WeightsError::Encode { name: name.to_owned(), source })?;
    sort_header(&mut bytes).map_err(|detail| WeightsError::Metadata {
        name: name.to_owned(),
        detail: format!("cannot sort the header: {detail}"),
    })?;
    Ok(bytes)
}

/// A safetensors header with the metadata in key order.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    #[serde(rename = "__metadata__", default, skip_serializing_if = "Option::is_none")]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    tensors: BTreeMap<String, serde_json::Value>,
}

/// Rewrites the JSON header of `bytes` in sorted key order, in place. safetensors takes the
/// metadata as a `HashMap` and writes it in that map's random order; sorting makes the same
/// weights and metadata always give the same bytes (comparable files, stable checksums).
fn sort_header(bytes: &mut [u8]) -> Result<(), String> {
    let len: [u8; 8] = bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or("no header length")?;
    let len = usize::try_from(u64::from_le_bytes(len)).map_err(|e| e.to_string())?;
    let header = bytes.get_mut(8..8 + len).ok_or("header longer than the file")?;
    let parsed: Header = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    let sorted = serde_json::to_vec(&parsed).map_err(|e| e.to_string())?;
    // The same entries re-serialized compactly have the same length; the check guards the
    // offsets, which count from the end of the header.
    if sorted.len() > len {
        return Err(format!("sorted header has {} bytes, more than the {len} reserved", sorted.len()));
    }
    let (head, pad) = header.split_at_mut(sorted.len());
    head.copy_from_slice(&sorted);
    pad.fill(b' ');
    Ok(())
}

/// Each parameter's shape and little-endian `f32` bytes, in [`PARAM_NAMES`] order.
fn param_bytes(p: &Params<f32>) -> [(&[usize], Vec<u8>); 8] {
    // `iter` walks logical order, so even a non-contiguous array is written row-major.
    fn le<D: ndarray::Dimension>(a: &ndarray::Array<f32, D>) -> (&[usize], Vec<u8>) {
        (a.shape(), a.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
    [
        le(&p.conv1_w),
        le(&p.conv1_b),
        le(&p.conv2_w),
        le(&p.conv2_b),
        le(&p.fc1_w),
        le(&p.fc1_b),
        le(&p.fc2_w),
        le(&p.fc2_b),
    ]
}

/// Reads a weights file from its bytes; `name` (usually the path) starts every error message.
///
/// With `expected`, the file must hold exactly that network: any differing field is an error
/// that names it. A file without our metadata is accepted if its tensors fit `expected`.
pub fn from_bytes(
    bytes: &[u8],
    name: &str,
    expected: Option<&ModelConfig>,
) -> Result<(Params<f32>, WeightsMeta), WeightsError> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|source| WeightsError::Corrupt { name: name.to_owned(), source })?;
    let present: BTreeSet<&str> = st.names().into_iter().filter(|n| !n.starts_with(SESSION_PREFIX)).collect();
    let naming = Naming::best_for(&present);
    let file_names = naming.names();

    let missing: Vec<String> = file_names.iter().filter(|n| !present.contains(n.as_str())).cloned().collect();
    let unexpected: Vec<String> =
        present.iter().filter(|n| !file_names.iter().any(|f| f == *n)).map(|n| (*n).to_owned()).collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(WeightsError::Names { name: name.to_owned(), missing, unexpected });
    }

    let mut views = Vec::with_capacity(file_names.len());
    for tensor in &file_names {
        let view = st.tensor(tensor).map_err(|source| WeightsError::Corrupt { name: name.to_owned(), source })?;
        if !matches!(view.dtype(), Dtype::F32 | Dtype::F64) {
            return Err(WeightsError::Dtype {
                name: name.to_owned(),
                tensor: tensor.clone(),
                dtype: view.dtype().to_string(),
            });
        }
        views.push(view);
    }
    let shapes: Vec<&[usize]> = views.iter().map(TensorView::shape).collect();

    let file_meta = read_metadata(st_metadata(bytes, name)?.as_ref(), name)?;
    let config = match (&file_meta, expected) {
        (Some(meta), expected) => {
            if let Naming::Sequential { relu_after_conv2 } = naming
                && relu_after_conv2 != meta.config.relu_after_conv2
            {
                return Err(WeightsError::Metadata {
                    name: name.to_owned(),
                    detail: format!(
                        "the tensor names imply relu_after_conv2 = {relu_after_conv2} but the \"config\" metadata says {}",
                        meta.config.relu_after_conv2
                    ),
                });
            }
            if let Some(expected) = expected {
                compare(&meta.config, expected, name)?;
            }
            meta.config
        }
        (None, Some(expected)) => {
            // Shapes cannot tell a non-square input or another stride from the square guess,
            // so a file that fits the expected network is taken as that network.
            // (An invalid `expected` fits nothing, and its shapes are never computed.)
            let fits = check_config(expected, name).is_ok()
                && Params::<f32>::shapes(expected).iter().zip(&shapes).all(|(e, s)| e.as_slice() == *s);
            let relu_ok = naming.relu_after_conv2().is_none_or(|r| r == expected.relu_after_conv2);
            if fits && relu_ok {
                *expected
            } else {
                let relu = naming.relu_after_conv2().unwrap_or(expected.relu_after_conv2);
                let inferred = infer_config(&shapes, &file_names, relu, name)?;
                compare(&inferred, expected, name)?;
                inferred
            }
        }
        (None, None) => infer_config(&shapes, &file_names, naming.relu_after_conv2().unwrap_or(false), name)?,
    };
    check_config(&config, name)?;

    let needed = Params::<f32>::shapes(&config);
    let mut data: [Vec<f32>; 8] = Default::default();
    for (((view, tensor), expected), out) in views.iter().zip(&file_names).zip(needed).zip(data.iter_mut()) {
        if view.shape() != expected.as_slice() {
            return Err(WeightsError::Shape {
                name: name.to_owned(),
                tensor: tensor.clone(),
                found: view.shape().to_vec(),
                expected,
            });
        }
        *out = to_f32(view);
    }
    let params = Params::from_vecs(&config, data).ok_or_else(|| WeightsError::Infer {
        name: name.to_owned(),
        detail: "the tensor sizes do not match the configuration".into(),
    })?;
    let meta = file_meta.unwrap_or_else(|| WeightsMeta::new(config));
    Ok((params, WeightsMeta { config, ..meta }))
}

/// The `__metadata__` map of an already validated file.
fn st_metadata(bytes: &[u8], name: &str) -> Result<Option<HashMap<String, String>>, WeightsError> {
    // `SafeTensors` does not expose its metadata map; `read_metadata` parses the header again,
    // which is cheap next to the tensors.
    let (_, metadata) =
        SafeTensors::read_metadata(bytes).map_err(|source| WeightsError::Corrupt { name: name.to_owned(), source })?;
    Ok(metadata.metadata().clone())
}

/// Our metadata, `None` for a file written elsewhere (no `format`, or another tool's).
fn read_metadata(map: Option<&HashMap<String, String>>, name: &str) -> Result<Option<WeightsMeta>, WeightsError> {
    let Some(map) = map else { return Ok(None) };
    let bad = |detail: String| WeightsError::Metadata { name: name.to_owned(), detail };
    match map.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        Some(other) if other.starts_with("cnn-stepper") => {
            return Err(bad(format!("format {other:?} is not one this version reads ({FORMAT:?})")));
        }
        // PyTorch tools write e.g. `"format": "pt"`; such files get their config from shapes.
        _ => return Ok(None),
    }
    let config = map.get("config").ok_or_else(|| bad("metadata has no \"config\" entry".into()))?;
    let config: ModelConfig = serde_json::from_str(config)
        .map_err(|e| bad(format!("metadata \"config\" is not a network configuration: {e}")))?;
    let number = |key: &str| -> Result<Option<u64>, WeightsError> {
        map.get(key)
            .map(|v| v.parse::<u64>().map_err(|_| bad(format!("metadata {key:?} = {v:?} is not a whole number"))))
            .transpose()
    };
    Ok(Some(WeightsMeta { config, preset: map.get("preset").cloned(), seed: number("seed")?, step: number("step")? }))
}

/// The names a file uses for the eight parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Naming {
    /// [`PARAM_NAMES`].
    Ours,
    /// `torch.nn.Sequential` indices; a ReLU after conv2 shifts fc1 and fc2 by one.
    Sequential { relu_after_conv2: bool },
}

impl Naming {
    const ALL: [Naming; 3] =
        [Naming::Ours, Naming::Sequential { relu_after_conv2: false }, Naming::Sequential { relu_after_conv2: true }];

    fn names(self) -> Vec<String> {
        let layers: [&str; 4] = match self {
            Naming::Ours => return PARAM_NAMES.iter().map(|n| (*n).to_owned()).collect(),
            Naming::Sequential { relu_after_conv2: false } => ["0", "2", "4", "6"],
            Naming::Sequential { relu_after_conv2: true } => ["0", "2", "5", "7"],
        };
        layers.iter().flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")]).collect()
    }

    /// The scheme sharing the most names with the file, so that the error for a file that
    /// fits none lists the fewest differences. Ties go to our own names.
    fn best_for(present: &BTreeSet<&str>) -> Self {
        let score = |n: &Naming| n.names().iter().filter(|name| present.contains(name.as_str())).count();
        let mut best = Naming::Ours;
        for candidate in Naming::ALL {
            if score(&candidate) > score(&best) {
                best = candidate;
            }
        }
        best
    }

    /// What the names say about a ReLU after conv2 (our names say nothing).
    fn relu_after_conv2(self) -> Option<bool> {
        match self {
            Naming::Ours => None,
            Naming::Sequential { relu_after_conv2 } => Some(relu_after_conv2),
        }
    }
}

/// The configuration implied by the shapes (in [`PARAM_NAMES`] order) of a file without ours.
fn infer_config(
    shapes: &[&[usize]],
    names: &[String],
    relu_after_conv2: bool,
    name: &str,
) -> Result<ModelConfig, WeightsError> {
    let err = |detail: String| WeightsError::Infer { name: name.to_owned(), detail };
    let &[f1, channels, kernel, kernel_w] = shapes[0] else {
        return Err(err(format!(
            "\"{}\" has shape {:?}; a Conv2d weight is [filters, channels, k, k]",
            names[0], shapes[0]
        )));
    };
    if kernel != kernel_w {
        return Err(err(format!("\"{}\" has shape {:?}; only square kernels are supported", names[0], shapes[0])));
    }
    let &[f2, ..] = shapes[2] else {
        return Err(err(format!(
            "\"{}\" has shape {:?}; a Conv2d weight is [filters, channels, k, k]",
            names[2], shapes[2]
        )));
    };
    let &[hidden, flat] = shapes[4] else {
        return Err(err(format!("\"{}\" has shape {:?}; a Linear weight is [out, in]", names[4], shapes[4])));
    };
    let &[classes, _] = shapes[6] else {
        return Err(err(format!("\"{}\" has shape {:?}; a Linear weight is [out, in]", names[6], shapes[6])));
    };
    let pad = kernel.saturating_sub(1) / 2;
    let per_filter = match (flat.checked_div(f2), flat.checked_rem(f2)) {
        (Some(per), Some(0)) => per,
        _ => {
            return Err(err(format!(
                "\"{}\" has {flat} inputs, which is not a multiple of conv2's {f2} filters",
                names[4]
            )));
        }
    };
    let side = per_filter.isqrt();
    if side * side != per_filter {
        return Err(err(format!(
            "\"{}\" has {flat} inputs = {f2} filters × {per_filter}, and {per_filter} is not a square side × side",
            names[4]
        )));
    }
    // Stride 1 and pad (K−1)/2 keep the size for odd K and lose one pixel per conv for even K.
    let shrink = kernel.saturating_sub(1 + 2 * pad);
    Ok(ModelConfig {
        in_channels: channels,
        in_height: side + 2 * shrink,
        in_width: side + 2 * shrink,
        conv1_filters: f1,
        conv2_filters: f2,
        kernel,
        stride: 1,
        pad,
        hidden,
        classes,
        relu_after_conv2,
    })
}

/// Refuses sizes no file of ours has, before any shape arithmetic could overflow on them.
fn check_config(cfg: &ModelConfig, name: &str) -> Result<(), WeightsError> {
    let sizes = [
        ("in_channels", cfg.in_channels),
        ("in_height", cfg.in_height),
        ("in_width", cfg.in_width),
        ("conv1_filters", cfg.conv1_filters),
        ("conv2_filters", cfg.conv2_filters),
        ("kernel", cfg.kernel),
        ("stride", cfg.stride),
        ("pad", cfg.pad),
        ("hidden", cfg.hidden),
        ("classes", cfg.classes),
    ];
    if let Some((field, v)) = sizes.iter().find(|(_, v)| *v > MAX_CONFIG_SIZE) {
        return Err(WeightsError::Config {
            name: name.to_owned(),
            source: EngineError::Config(format!("{field} = {v} is above the limit of {MAX_CONFIG_SIZE}")),
        });
    }
    cfg.validate().map_err(|source| WeightsError::Config { name: name.to_owned(), source })
}

/// Every field on which `file` and `expected` differ, as an error; `Ok` if none.
fn compare(file: &ModelConfig, expected: &ModelConfig, name: &str) -> Result<(), WeightsError> {
    if file == expected {
        return Ok(());
    }
    // Going through JSON lists every field, including ones added to ModelConfig later.
    let (Ok(serde_json::Value::Object(f)), Ok(serde_json::Value::Object(e))) =
        (serde_json::to_value(file), serde_json::to_value(expected))
    else {
        return Err(WeightsError::ConfigMismatch { name: name.to_owned(), differences: Vec::new() });
    };
    let differences = f
        .iter()
        .filter_map(|(field, fv)| {
            let ev = e.get(field)?;
            (fv != ev).then(|| ConfigDiff { field: field.clone(), file: fv.to_string(), expected: ev.to_string() })
        })
        .collect();
    Err(WeightsError::ConfigMismatch { name: name.to_owned(), differences })
}

/// The values of an `F32` or `F64` tensor (checked by the caller) as `f32`.
fn to_f32(view: &TensorView<'_>) -> Vec<f32> {
    let data = view.data();
    if view.dtype() == Dtype::F64 {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect()
    } else {
        data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    }
}

/// Writes a weights file atomically: a crash or error leaves the old file (if any) as it was.
pub fn save(path: &Path, params: &Params<f32>, meta: &WeightsMeta) -> Result<(), WeightsError> {
    let bytes = encode(params, meta, &path.display().to_string())?;
    write_atomically(path, &bytes).map_err(|source| WeightsError::Io { path: path.to_owned(), source })
}

/// Reads a weights file; see [`from_bytes`] for what is accepted and what `expected` does.
pub fn load(path: &Path, expected: Option<&ModelConfig>) -> Result<(Params<f32>, WeightsMeta), WeightsError> {
    let bytes = fs::read(path).map_err(|source| WeightsError::Io { path: path.to_owned(), source })?;
    from_bytes(&bytes, &path.display().to_string(), expected)
}

/// Tells apart temporary files of concurrent writes from one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` so that readers see the old file or the new one, never a part.
///
/// Writes `.NAME.tmp-PID-N` next to `path` (same directory, hence same file system, so the
/// rename is atomic), syncs it to disk, then renames it over `path`. On any error the temporary
/// file is removed and `path` is untouched. The error message names the step and file that
/// failed; callers add the target path.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), io::Error> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{} does not name a file", path.display()))
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".tmp-{}-{n}", std::process::id()));
    let temp = dir.join(temp_name);

    let context = |what: &str, p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()));
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| context("cannot create temporary file", &temp, e))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| context("cannot write temporary file", &temp, e));
    drop(file);
    let renamed = written.and_then(|()| {
        fs::rename(&temp, path).map_err(|e| context(&format!("cannot replace {} with", path.display()), &temp, e))
    });
    if let Err(e) = renamed {
        // Best effort: the write already failed, and that is the error worth reporting.
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    // Make the rename itself durable. Best effort: the data is already on disk and some
    // platforms cannot open a directory for syncing.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
