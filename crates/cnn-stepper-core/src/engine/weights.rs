//! Weights files: safetensors in PyTorch's layout, so a model moves between this app and
//! PyTorch without conversion.
//!
//! Two formats, both read by [`load_model`] (see [`model_file`] for the one any network uses):
//! - **model files** ([`MODEL_FORMAT`], written by [`save_model`]): any network of
//!   [`crate::engine::model`], its tensors under PyTorch's `nn.Sequential` names
//!   (`<index>.weight`, `<index>.bias`) and its model line, input shape and class names in the
//!   metadata;
//! - **post files** ([`FORMAT`], written by [`save`], described below): the post's network only,
//!   as files were written before networks became lines.
//!
//! The checksums, the header checks and what loading refuses (below) are the same for both.
//!
//! # Post files
//! A post file holds the eight tensors under the names of [`PARAM_NAMES`] (`conv1.weight`
//! `[F1, C, K, K]` … `fc2.bias` `[CLASSES]`), little-endian `F32`, and a string→string
//! `__metadata__` map with `"format"` ([`FORMAT`]), `"config"` (the [`ModelConfig`] as JSON),
//! and, when known, `"preset"`, `"seed"` and `"step"`, plus `"checksums"` ([`CHECKSUMS_KEY`]).
//! The header is written in sorted key order, so the same weights always give the same bytes.
//!
//! # Checksums
//! `"checksums"` is JSON `{"metadata": {KEY: CRC, …}, "tensors": {NAME: CRC, …}}`: the CRC-32
//! (as 8 lowercase hex digits, the value of Python's `zlib.crc32`) of every other metadata
//! value and of every tensor's data bytes. Loading checks each and refuses a file where one
//! does not match, naming the key or tensor, or where a key or tensor has no checksum. Files
//! without checksums (from PyTorch, or from versions before checksums) load, and
//! [`Loaded::integrity`] says they were not checked.
//!
//! # What loading refuses
//! Besides checksum mismatches: anything [`crate::fileio::open_regular`] refuses (named pipes,
//! devices, directories, symlink loops); a header whose length field, JSON or tensor offsets do
//! not fit the file (the tensor is named, with its shape and offsets), checked before the
//! tensor data is read, so a large damaged file is refused without reading it; tensors that are
//! missing, unexpected, of the wrong shape or type; and weights that are NaN or infinite.
//!
//! The post-file reader ([`load`], [`from_bytes`]) is more lenient than the writer, because the
//! point is to take what PyTorch writes:
//! - `F64` tensors are rounded to `f32`.
//! - The state dict of the equivalent `torch.nn.Sequential` uses layer indices for names:
//!   `0.*` conv1, `2.*` conv2, `4.*` fc1, `6.*` fc2; or, with a `ReLU` after conv2, `5.*` fc1
//!   and `7.*` fc2 (which sets [`ModelConfig::relu_after_conv2`]).
//! - A file without our metadata gets its [`ModelConfig`] from the tensor shapes, assuming
//!   stride 1, "same" padding `(K − 1) / 2` and a square input.
//! - Tensors named `session.*` are skipped: the session-file format stores its state there.
//!
//! [`PARAM_NAMES`]: super::PARAM_NAMES

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorInfo, TensorView};

use super::{EngineError, ModelConfig, PARAM_NAMES, Params};
use crate::fileio::{self, FileError};

pub mod model_file;

pub use model_file::{
    CLASSES_KEY, INPUT_KEY, LoadedModel, MODEL_FORMAT, MODEL_KEY, ModelMeta, ModelWeights, Origin, from_bytes_model,
    load_model, post_family_config, post_family_spec, save_model, to_bytes_model,
};

/// The `"format"` metadata value of the files this version writes and reads.
pub const FORMAT: &str = "cnn-stepper weights v1";

/// Prefix of tensor names reserved for the session-file format; loading weights skips them.
pub const SESSION_PREFIX: &str = "session.";

/// The metadata key holding the checksums of all other keys and of every tensor.
pub const CHECKSUMS_KEY: &str = "checksums";

/// Every metadata key cnn-stepper writes (weights and session files). A file in our format
/// with any other key is damaged (a flipped bit in a key name) and is refused.
const KNOWN_KEYS: [&str; 8] =
    ["format", "config", "preset", "seed", "step", "session_format", "session", CHECKSUMS_KEY];

/// The safetensors crate's own limit on the JSON header; a length field above it is damage.
const MAX_HEADER_LEN: u64 = 100_000_000;

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

/// Whether a loaded file's contents were checked against checksums recorded in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// Every metadata value and tensor matched its recorded checksum.
    Verified,
    /// The file records no checksums (written by PyTorch or by a version before checksums),
    /// so damage to it cannot be detected.
    Unchecked,
}

impl Integrity {
    /// The note to show the user about a file named `name`, or `None` if there is nothing to
    /// say. The command line prints it and the window shows it, so that an unchecked file is
    /// never taken as a checked one.
    pub fn note(self, name: &str) -> Option<String> {
        match self {
            Integrity::Verified => None,
            Integrity::Unchecked => Some(format!(
                "{name}: the file has no checksums (written by PyTorch or by an older cnn-stepper), \
                 so damage to it could not be detected"
            )),
        }
    }
}

/// A weights file as read by [`load`] or [`from_bytes`].
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The weights and biases.
    pub params: Params<f32>,
    /// What the file says about them.
    pub meta: WeightsMeta,
    /// Whether checksums vouch for the contents; see [`Integrity::note`].
    pub integrity: Integrity,
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
#[non_exhaustive]
pub enum WeightsError {
    /// The file could not be opened, read or written (or is not a regular file).
    #[error(transparent)]
    File(#[from] FileError),
    /// The safetensors parser refused the bytes (after our own checks passed).
    #[error("{name}: not a valid safetensors file: {source}")]
    Corrupt {
        /// The weights file.
        name: String,
        /// What the safetensors parser found.
        source: SafeTensorError,
    },
    /// The 8-byte length field or the JSON header is not that of a safetensors file.
    #[error("{name}: not a valid safetensors file: {detail}")]
    Header {
        /// The weights file.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A tensor's shape, type and offsets do not fit together or do not fit the file.
    #[error("{name}: tensor \"{tensor}\" {detail}")]
    Layout {
        /// The weights file.
        name: String,
        /// The tensor, as the file names it.
        tensor: String,
        /// What does not fit, with the expected and found sizes or offsets.
        detail: String,
    },
    /// A metadata value or a tensor's bytes do not match the checksum recorded for them.
    #[error(
        "{name}: {item} does not match its recorded checksum (recorded {recorded:08x}, computed {computed:08x}): \
         the file is damaged"
    )]
    Checksum {
        /// The file.
        name: String,
        /// What failed, e.g. `tensor "fc1.weight"` or `metadata "session"`.
        item: String,
        /// The checksum in the file.
        recorded: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },
    /// The file's checksums do not account for its contents (an item without one, or one for
    /// an item that is not there): a damaged name or checksum table.
    #[error("{name}: the file is damaged: {detail}")]
    Damaged {
        /// The file.
        name: String,
        /// What is missing or extra.
        detail: String,
    },
    /// A tensor holds NaN or infinite values, which no training step of ours produces.
    #[error(
        "{name}: tensor \"{tensor}\" holds {count} value{} that {} not a finite number (the first, {first}, at index {index})",
        if *.count == 1 { "" } else { "s" },
        if *.count == 1 { "is" } else { "are" }
    )]
    NonFinite {
        /// The file.
        name: String,
        /// The tensor, as the file names it.
        tensor: String,
        /// How many of its values are NaN or infinite.
        count: usize,
        /// The flat (row-major) index of the first.
        index: usize,
        /// The first such value.
        first: f32,
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
    /// The file's network (its model line and input) is not the one the caller expects.
    #[error("{name}: the file's network differs from the expected one: {}", differences.join("; "))]
    ModelMismatch {
        /// The weights file.
        name: String,
        /// What differs, each naming both sides (the file's model line and the expected one).
        differences: Vec<String>,
    },
    /// A file without a model line (a PyTorch state dict) read without saying which network it
    /// holds.
    #[error(
        "{name}: the file does not say which network it holds (it has no cnn-stepper metadata: a PyTorch \
         state dict?); give the model line it was saved from"
    )]
    NoModelLine {
        /// The weights file.
        name: String,
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
    let entries = param_entries(params, &meta.config, "", name)?;
    let config = serde_json::to_string(&meta.config).map_err(|e| WeightsError::Metadata {
        name: name.to_owned(),
        detail: format!("cannot encode the configuration as JSON: {e}"),
    })?;
    let mut info = BTreeMap::from([("format".to_owned(), FORMAT.to_owned()), ("config".to_owned(), config)]);
    if let Some(preset) = &meta.preset {
        info.insert("preset".to_owned(), preset.clone());
    }
    if let Some(seed) = meta.seed {
        info.insert("seed".to_owned(), seed.to_string());
    }
    if let Some(step) = meta.step {
        info.insert("step".to_owned(), step.to_string());
    }
    encode_file(&entries, info, name)
}

/// One tensor to write: its name, type, shape and little-endian bytes.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<u8>,
}

/// The eight parameters as `F32` entries named `{prefix}{param name}`, after checking their
/// shapes against `config` (so that no file is written that loading would refuse).
pub(crate) fn param_entries(
    params: &Params<f32>,
    config: &ModelConfig,
    prefix: &str,
    name: &str,
) -> Result<Vec<Entry>, WeightsError> {
    let arrays = param_bytes(params);
    let shapes = Params::<f32>::shapes(config);
    let mut entries = Vec::with_capacity(arrays.len());
    for ((param, (shape, data)), expected) in PARAM_NAMES.iter().zip(arrays).zip(shapes) {
        let tensor = format!("{prefix}{param}");
        if shape != expected.as_slice() {
            return Err(WeightsError::Shape { name: name.to_owned(), tensor, found: shape.to_vec(), expected });
        }
        entries.push(Entry { name: tensor, dtype: Dtype::F32, shape: expected, data });
    }
    Ok(entries)
}

/// The `"checksums"` metadata entry: CRC-32s as 8 lowercase hex digits.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Checksums {
    /// Of each other metadata value's UTF-8 bytes, by key.
    metadata: BTreeMap<String, String>,
    /// Of each tensor's data bytes, by tensor name.
    tensors: BTreeMap<String, String>,
}

fn hex(crc: u32) -> String {
    format!("{crc:08x}")
}

/// The bytes of a safetensors file holding `entries` and `metadata`, with the checksums of
/// both added under [`CHECKSUMS_KEY`] and the header in sorted key order, so that the same
/// contents always give the same bytes.
pub(crate) fn encode_file(
    entries: &[Entry],
    mut metadata: BTreeMap<String, String>,
    name: &str,
) -> Result<Vec<u8>, WeightsError> {
    metadata.remove(CHECKSUMS_KEY);
    let checksums = Checksums {
        metadata: metadata.iter().map(|(k, v)| (k.clone(), hex(crc32fast::hash(v.as_bytes())))).collect(),
        tensors: entries.iter().map(|e| (e.name.clone(), hex(crc32fast::hash(&e.data)))).collect(),
    };
    let checksums = serde_json::to_string(&checksums).map_err(|e| WeightsError::Metadata {
        name: name.to_owned(),
        detail: format!("cannot encode the checksums as JSON: {e}"),
    })?;
    metadata.insert(CHECKSUMS_KEY.to_owned(), checksums);
    let mut views = Vec::with_capacity(entries.len());
    for e in entries {
        let view = TensorView::new(e.dtype, e.shape.clone(), &e.data).map_err(|source| WeightsError::Layout {
            name: name.to_owned(),
            tensor: e.name.clone(),
            detail: format!("cannot be encoded as {} {:?} from {} bytes: {source}", e.dtype, e.shape, e.data.len()),
        })?;
        views.push((e.name.as_str(), view));
    }
    let info: HashMap<String, String> = metadata.into_iter().collect();
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
pub fn from_bytes(bytes: &[u8], name: &str, expected: Option<&ModelConfig>) -> Result<Loaded, WeightsError> {
    Parsed::new(bytes, name)?.weights(expected)
}

/// A safetensors file whose header was checked against its length and whose checksums, if it
/// records any, all match.
pub(crate) struct Parsed<'a> {
    /// The tensors.
    pub(crate) st: SafeTensors<'a>,
    /// The `__metadata__` map, `None` if the file has none.
    pub(crate) metadata: Option<BTreeMap<String, String>>,
    /// Whether checksums vouch for the contents.
    pub(crate) integrity: Integrity,
    /// Starts every error message.
    pub(crate) name: String,
}

impl<'a> Parsed<'a> {
    /// Checks the header (every tensor's shape, type and offsets against the file's length,
    /// each error naming the tensor) and the checksums, before anything is interpreted.
    pub(crate) fn new(bytes: &'a [u8], name: &str) -> Result<Self, WeightsError> {
        let end = header_end(bytes, bytes.len() as u64, name)?;
        // `header_end` checked that the header fits in `bytes`.
        let json = bytes.get(8..end).unwrap_or_default();
        let metadata = parse_header(json, (bytes.len() - end) as u64, name)?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|source| WeightsError::Corrupt { name: name.to_owned(), source })?;
        let integrity = verify_checksums(&st, metadata.as_ref(), name)?;
        Ok(Self { st, metadata, integrity, name: name.to_owned() })
    }

    /// The eight parameters and our metadata; see [`from_bytes`].
    pub(crate) fn weights(&self, expected: Option<&ModelConfig>) -> Result<Loaded, WeightsError> {
        let name = self.name.as_str();
        let st = &self.st;
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

        let file_meta = read_metadata(self.metadata.as_ref(), self.integrity, name)?;
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
            check_finite(out, tensor, name)?;
        }
        let params = Params::from_vecs(&config, data).ok_or_else(|| WeightsError::Infer {
            name: name.to_owned(),
            detail: "the tensor sizes do not match the configuration".into(),
        })?;
        let meta = file_meta.unwrap_or_else(|| WeightsMeta::new(config));
        Ok(Loaded { params, meta: WeightsMeta { config, ..meta }, integrity: self.integrity })
    }
}

/// Refuses `values` of `tensor` if any is NaN or infinite, naming the tensor, how many there
/// are and where the first is.
pub(crate) fn check_finite(values: &[f32], tensor: &str, name: &str) -> Result<(), WeightsError> {
    let mut bad = values.iter().enumerate().filter(|(_, v)| !v.is_finite());
    match bad.next() {
        None => Ok(()),
        Some((index, &first)) => Err(WeightsError::NonFinite {
            name: name.to_owned(),
            tensor: tensor.to_owned(),
            count: 1 + bad.count(),
            index,
            first,
        }),
    }
}

/// `8 + n`, where the header ends, from the file's first bytes (`prefix`, at least 8 of them if
/// the file has that many) and its length: the length field `n` must fit the file and stay
/// under the safetensors limit.
fn header_end(prefix: &[u8], file_len: u64, name: &str) -> Result<usize, WeightsError> {
    let bad = |detail: String| WeightsError::Header { name: name.to_owned(), detail };
    let Some(field) = prefix.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return Err(bad(format!("the file has {file_len} bytes, fewer than the 8 bytes of the header length")));
    };
    let n = u64::from_le_bytes(field);
    if n > MAX_HEADER_LEN {
        return Err(bad(format!(
            "the first 8 bytes give a header length of {n} bytes, above the safetensors limit of {MAX_HEADER_LEN}"
        )));
    }
    let after = file_len - 8;
    // `{}` is the shortest JSON object; a file of zeros lands here.
    if n < 2 {
        return Err(bad(format!("the first 8 bytes give a header length of {n} bytes, too short for a JSON header")));
    }
    if n > after {
        return Err(bad(format!("the first 8 bytes give a header length of {n} bytes, but only {after} bytes follow")));
    }
    // At most MAX_HEADER_LEN + 8, which fits any usize this crate builds for.
    usize::try_from(8 + n).map_err(|_| bad(format!("a header of {n} bytes does not fit in memory")))
}

/// The metadata map of a JSON header, after checking every tensor's entry: its type and shape
/// against its data offsets, the offsets against each other (contiguous from 0) and against
/// the `data_len` bytes that follow the header. Each error names the tensor.
fn parse_header(json: &[u8], data_len: u64, name: &str) -> Result<Option<BTreeMap<String, String>>, WeightsError> {
    let header = |detail: String| WeightsError::Header { name: name.to_owned(), detail };
    let layout = |tensor: &str, detail: String| WeightsError::Layout {
        name: name.to_owned(),
        tensor: tensor.to_owned(),
        detail,
    };
    let text = std::str::from_utf8(json).map_err(|e| header(format!("the header is not UTF-8 text ({e})")))?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| header(format!("the header is not a JSON object ({e})")))?;
    let mut metadata = None;
    let mut tensors: Vec<(String, TensorInfo)> = Vec::with_capacity(map.len());
    for (key, value) in map {
        if key == "__metadata__" {
            let m = serde_json::from_value(value)
                .map_err(|e| header(format!("its \"__metadata__\" is not a map of strings ({e})")))?;
            metadata = Some(m);
            continue;
        }
        let info: TensorInfo = serde_json::from_value(value)
            .map_err(|e| layout(&key, format!("has an unreadable entry in the header ({e})")))?;
        tensors.push((key, info));
    }
    tensors.sort_by(|(a_name, a), (b_name, b)| a.data_offsets.cmp(&b.data_offsets).then_with(|| a_name.cmp(b_name)));
    let mut previous: Option<(&str, usize)> = None;
    for (tensor, info) in &tensors {
        let (start, end) = info.data_offsets;
        let (dtype, shape) = (info.dtype, &info.shape);
        let bits = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).and_then(|n| n.checked_mul(dtype.bitsize()));
        let Some(size) = bits.filter(|b| b % 8 == 0).map(|b| b / 8) else {
            return Err(layout(
                tensor,
                format!("is {dtype} {shape:?}, which is not a whole number of bytes that fits in memory"),
            ));
        };
        if end < start {
            return Err(layout(tensor, format!("has data offsets [{start}, {end}], which end before they start")));
        }
        if end - start != size {
            return Err(layout(
                tensor,
                format!(
                    "is {dtype} {shape:?}, which takes {size} bytes, but its data offsets [{start}, {end}] span {} bytes",
                    end - start
                ),
            ));
        }
        let expected_start = previous.map_or(0, |(_, end)| end);
        if start != expected_start {
            return Err(layout(
                tensor,
                match previous {
                    None => format!("starts at byte {start} of the data, but the first tensor must start at byte 0"),
                    Some((before, _)) => format!(
                        "starts at byte {start} of the data, but the tensor before it, \"{before}\", ends at byte {expected_start}"
                    ),
                },
            ));
        }
        if end as u64 > data_len {
            return Err(layout(
                tensor,
                format!(
                    "ends at byte {end} of the data, but the file holds only {data_len} bytes of tensor data: it is cut short"
                ),
            ));
        }
        previous = Some((tensor, end));
    }
    let used = previous.map_or(0, |(_, end)| end as u64);
    if used != data_len {
        return Err(header(format!(
            "{} bytes follow the end of the last tensor's data (the tensors take {used} of the {data_len} bytes after the header)",
            data_len - used
        )));
    }
    Ok(metadata)
}

/// Checks every metadata value and tensor against the file's `"checksums"` entry, and that
/// the entry covers exactly what is in the file. `Unchecked` if the file has no such entry.
fn verify_checksums(
    st: &SafeTensors<'_>,
    metadata: Option<&BTreeMap<String, String>>,
    name: &str,
) -> Result<Integrity, WeightsError> {
    let Some((metadata, recorded)) = metadata.and_then(|m| Some((m, m.get(CHECKSUMS_KEY)?))) else {
        return Ok(Integrity::Unchecked);
    };
    let damaged = |detail: String| WeightsError::Damaged { name: name.to_owned(), detail };
    let sums: Checksums = serde_json::from_str(recorded)
        .map_err(|e| damaged(format!("its \"{CHECKSUMS_KEY}\" metadata cannot be read ({e})")))?;
    let check = |item: String, recorded: &str, bytes: &[u8]| -> Result<(), WeightsError> {
        let parsed = (recorded.len() == 8).then(|| u32::from_str_radix(recorded, 16).ok()).flatten();
        let Some(recorded) = parsed else {
            return Err(damaged(format!("the checksum recorded for {item}, {recorded:?}, is not 8 hex digits")));
        };
        let computed = crc32fast::hash(bytes);
        if computed == recorded {
            Ok(())
        } else {
            Err(WeightsError::Checksum { name: name.to_owned(), item, recorded, computed })
        }
    };
    for (key, value) in metadata.iter().filter(|(k, _)| *k != CHECKSUMS_KEY) {
        let Some(sum) = sums.metadata.get(key) else {
            return Err(damaged(format!("metadata key {key:?} has no checksum (a damaged key name?)")));
        };
        check(format!("metadata {key:?}"), sum, value.as_bytes())?;
    }
    if let Some(key) = sums.metadata.keys().find(|k| !metadata.contains_key(*k)) {
        return Err(damaged(format!("metadata {key:?} is missing, though the file records a checksum for it")));
    }
    let mut names = st.names();
    names.sort_unstable();
    for tensor in &names {
        let Some(sum) = sums.tensors.get(*tensor) else {
            return Err(damaged(format!("tensor {tensor:?} has no checksum (a damaged tensor name?)")));
        };
        let view = st.tensor(tensor).map_err(|source| WeightsError::Corrupt { name: name.to_owned(), source })?;
        check(format!("tensor {tensor:?}"), sum, view.data())?;
    }
    if let Some(tensor) = sums.tensors.keys().find(|t| !names.contains(&t.as_str())) {
        return Err(damaged(format!("tensor {tensor:?} is missing, though the file records a checksum for it")));
    }
    Ok(Integrity::Verified)
}

/// Our metadata, `None` for a file written elsewhere (no `format`, or another tool's).
///
/// A file without checksums that says it is ours must hold only keys we write: a damaged key
/// name (`"sessiOn_format"`) would otherwise turn a session into plain weights unnoticed.
fn read_metadata(
    map: Option<&BTreeMap<String, String>>,
    integrity: Integrity,
    name: &str,
) -> Result<Option<WeightsMeta>, WeightsError> {
    let Some(map) = map else { return Ok(None) };
    let bad = |detail: String| WeightsError::Metadata { name: name.to_owned(), detail };
    match map.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        Some(MODEL_FORMAT) => {
            return Err(bad(format!(
                "format {MODEL_FORMAT:?} holds a network written as a model line: read it with `load_model`, \
                 not as the post's network"
            )));
        }
        Some(other) if other.starts_with("cnn-stepper") => {
            return Err(bad(format!("format {other:?} is not one this version reads ({FORMAT:?})")));
        }
        found if integrity == Integrity::Verified => {
            return Err(bad(format!(
                "the file has cnn-stepper checksums but its \"format\" is {found:?}, not {FORMAT:?}"
            )));
        }
        // PyTorch tools write e.g. `"format": "pt"`; such files get their config from shapes.
        _ => return Ok(None),
    }
    if integrity == Integrity::Unchecked
        && let Some(key) = map.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str()))
    {
        return Err(WeightsError::Damaged {
            name: name.to_owned(),
            detail: format!("metadata key {key:?} is not one cnn-stepper writes (a damaged key name?)"),
        });
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
pub(crate) fn to_f32(view: &TensorView<'_>) -> Vec<f32> {
    let data = view.data();
    if view.dtype() == Dtype::F64 {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect()
    } else {
        data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    }
}

/// Writes a weights file atomically (see [`fileio::write_atomically`]): a crash or error leaves
/// the old file (if any) as it was.
pub fn save(path: &Path, params: &Params<f32>, meta: &WeightsMeta) -> Result<(), WeightsError> {
    let bytes = encode(params, meta, &path.display().to_string())?;
    fileio::write_atomically(path, &bytes)?;
    Ok(())
}

/// Reads a weights file; see [`from_bytes`] for what is accepted and what `expected` does,
/// and [`read_file`] for how the file is read.
pub fn load(path: &Path, expected: Option<&ModelConfig>) -> Result<Loaded, WeightsError> {
    from_bytes(&read_file(path)?, &path.display().to_string(), expected)
}

/// The bytes of a safetensors file, read header first: the file must be a regular file
/// ([`fileio::open_regular`]), its header length must fit the file, and every tensor's
/// offsets must fit what follows the header, all before the tensor data is read. A damaged or
/// foreign file of any size is refused after reading at most its header.
pub fn read_file(path: &Path) -> Result<Vec<u8>, WeightsError> {
    let name = path.display().to_string();
    let mut file = fileio::open_regular(path)?;
    let read_error = |e| WeightsError::File(FileError::from_io(path, "read the file", e));
    let size = file.metadata().map_err(read_error)?.len();
    let mut bytes = Vec::with_capacity(8);
    (&mut file).take(8).read_to_end(&mut bytes).map_err(read_error)?;
    let end = header_end(&bytes, size, &name)?;
    (&mut file).take(end as u64 - 8).read_to_end(&mut bytes).map_err(read_error)?;
    let changed = |got: usize| WeightsError::Header {
        name: name.clone(),
        detail: format!("the file changed while it was read ({size} bytes, then {got})"),
    };
    if bytes.len() != end {
        return Err(changed(bytes.len()));
    }
    let json = bytes.get(8..).unwrap_or_default();
    parse_header(json, size - end as u64, &name)?;
    // The header accounts for every byte of the file, so this is as much as the file holds.
    let total = usize::try_from(size).map_err(|_| WeightsError::Header {
        name: name.clone(),
        detail: format!("{size} bytes do not fit in memory"),
    })?;
    bytes.reserve_exact(total - end);
    // One byte more than expected tells a file that grew meanwhile.
    (&mut file).take(size - end as u64 + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() != total {
        return Err(changed(bytes.len()));
    }
    Ok(bytes)
}
