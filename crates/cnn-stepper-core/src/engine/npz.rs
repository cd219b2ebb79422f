//! Weights as a NumPy `.npz`, so numpy code can load them: `np.load("w.npz")["c1_filters"]`.
//!
//! # The post's network
//! The post's family of networks ([`post_family_config`] recognises it: `post`, `post-relu` and
//! the same layers with other sizes) keeps the blog post's own names, so the post's numpy code
//! loads them as they are:
//!
//! | npz name     | shape           | from                         |
//! |--------------|-----------------|------------------------------|
//! | `c1_filters` | `[F1, C, K, K]` | `conv1.weight` (`0.weight`)  |
//! | `c1_b`       | `[F1]`          | `conv1.bias`                 |
//! | `c2_filters` | `[F2, F1, K, K]`| `conv2.weight` (`2.weight`)  |
//! | `c2_b`       | `[F2]`          | `conv2.bias`                 |
//! | `fc_W1`      | `[FLAT, HIDDEN]`| `fc1.weight` **transposed**  |
//! | `fc_b1`      | `[HIDDEN]`      | `fc1.bias`                   |
//! | `fc_W2`      | `[HIDDEN, CLASSES]` | `fc2.weight` **transposed** |
//! | `fc_b2`      | `[CLASSES]`     | `fc2.bias`                   |
//!
//! The post computes `X @ W` where PyTorch computes `x @ W.T`, hence the transposes.
//!
//! # Any other network
//! Each layer's tensors are named after the layer as a student names it (the [`Plan`]'s
//! `conv1`, `conv2`, …, `fc1`, `fc2`, …), with the post's conventions:
//!
//! | npz name   | shape          | from                                          |
//! |------------|----------------|-----------------------------------------------|
//! | `convN_W`  | `[F, C, K, K]` | the N-th conv's `<index>.weight`              |
//! | `convN_b`  | `[F]`          | its `<index>.bias`                            |
//! | `fcN_W`    | `[IN, OUT]`    | the N-th fc's `<index>.weight` **transposed** |
//! | `fcN_b`    | `[OUT]`        | its `<index>.bias`                            |
//!
//! so that `x @ fc1_W + fc1_b` is the layer, as in the post. LeNet-5's are `conv1_W`, `conv1_b`,
//! `conv2_W`, `conv2_b`, `fc1_W`, `fc1_b`, `fc2_W`, `fc2_b`, `fc3_W`, `fc3_b`.
//!
//! # Format
//! An `.npz` is a zip of `.npy` files. This writer stores them uncompressed (zip method 0,
//! "stored") with a CRC-32 per member, which `numpy.load` and every unzip read; little-endian
//! `float32` (`'<f4'`), C order, `.npy` format version 1.0.

use std::path::Path;

use ndarray::{ArrayBase, ArrayViewD, Data, Dimension, IxDyn};

use super::Params;
use super::model::{LayerSpec, ParamTensor, Plan};
use super::weights::post_family_config;
use crate::fileio::{FileError, write_atomically};

/// Why an `.npz` could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    /// The archive would need ZIP64, which this writer does not make.
    #[error("{what} is too large for a zip without ZIP64 (4 GiB, 65,535 members, 65,535-byte names)")]
    TooLarge {
        /// What is too large: "the archive", a member's name, ….
        what: String,
    },
    /// Writing the file failed (the error names it).
    #[error(transparent)]
    File(#[from] FileError),
    /// The tensors given are not those of the network (a missing tensor, a wrong shape).
    #[error("cannot export the weights as .npz: {0}")]
    Tensors(String),
}

/// The npz member names, in the order they are written.
pub const NPZ_NAMES: [&str; 8] = ["c1_filters", "c1_b", "c2_filters", "c2_b", "fc_W1", "fc_b1", "fc_W2", "fc_b2"];

/// One `.npy` file (format 1.0): magic, header dict padded to a multiple of 64 bytes, then the
/// values of `a` in logical (row-major) order as little-endian `f32`.
pub fn npy_f32<S: Data<Elem = f32>, D: Dimension>(a: &ArrayBase<S, D>) -> Vec<u8> {
    let shape = match a.shape() {
        [n] => format!("({n},)"),
        dims => format!("({})", dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + header length (2) + header, ending in '\n', to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * a.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    // At most a few hundred bytes: the shape has at most 4 dimensions.
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in a.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// A zip archive of `(name, bytes)` members, stored uncompressed. Fails only if the archive
/// would need ZIP64 (a member or the whole over 4 GiB, or over 65,535 members).
pub fn zip_stored(members: &[(String, Vec<u8>)]) -> Result<Vec<u8>, NpzError> {
    // 1980-01-01 00:00, the earliest DOS date: the files carry no meaningful time, and a fixed
    // one makes the same weights give the same bytes.
    const DOS_TIME: u16 = 0;
    const DOS_DATE: u16 = (1 << 5) | 1;
    let too_big = |what: &str| NpzError::TooLarge { what: what.to_owned() };
    let count = u16::try_from(members.len()).map_err(|_| too_big("the number of members"))?;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let offset = u32::try_from(out.len()).map_err(|_| too_big("the archive"))?;
        let size = u32::try_from(data.len()).map_err(|_| too_big(name))?;
        let name_len = u16::try_from(name.len()).map_err(|_| too_big(&format!("member name {name:?}")))?;
        let crc = crc32fast::hash(data);
        // Local file header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for v in [20u16, 0, 0, DOS_TIME, DOS_DATE] {
            out.extend_from_slice(&v.to_le_bytes()); // version needed, flags, method, time, date
        }
        for v in [crc, size, size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra field length
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Central directory entry.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        for v in [20u16, 20, 0, 0, DOS_TIME, DOS_DATE] {
            central.extend_from_slice(&v.to_le_bytes()); // made by, needed, flags, method, time, date
        }
        for v in [crc, size, size] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [name_len, 0, 0, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes()); // name, extra, comment, disk, internal attrs
        }
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = u32::try_from(out.len()).map_err(|_| too_big("the archive"))?;
    let central_size = u32::try_from(central.len()).map_err(|_| too_big("the central directory"))?;
    out.extend_from_slice(&central);
    // End of central directory record.
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, count, count] {
        out.extend_from_slice(&v.to_le_bytes()); // this disk, disk with directory, entries ×2
    }
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    Ok(out)
}

/// The parameters as the bytes of an `.npz` under [`NPZ_NAMES`].
pub fn to_bytes(p: &Params<f32>) -> Result<Vec<u8>, NpzError> {
    let members = [
        npy_f32(&p.conv1_w),
        npy_f32(&p.conv1_b),
        npy_f32(&p.conv2_w),
        npy_f32(&p.conv2_b),
        npy_f32(&p.fc1_w.t()),
        npy_f32(&p.fc1_b),
        npy_f32(&p.fc2_w.t()),
        npy_f32(&p.fc2_b),
    ];
    let members: Vec<(String, Vec<u8>)> =
        NPZ_NAMES.iter().zip(members).map(|(n, data)| (format!("{n}.npy"), data)).collect();
    zip_stored(&members)
}

/// Writes the parameters as an `.npz` file, atomically (see [`write_atomically`]: a symbolic
/// link's target is replaced, and a device, pipe or directory at `path` is refused).
pub fn save(path: &Path, p: &Params<f32>) -> Result<(), NpzError> {
    let bytes = to_bytes(p)?;
    Ok(write_atomically(path, &bytes)?)
}

/// One tensor of a network as the `.npz` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpzName {
    /// The tensor's PyTorch name, `<index>.weight` or `<index>.bias`.
    pub tensor: String,
    /// Its name in the `.npz` (without `.npy`): `c1_filters`, `conv2_W`, `fc1_b`, ….
    pub npz: String,
    /// True for fc weights, stored `[IN, OUT]` (transposed from PyTorch's `[OUT, IN]`).
    pub transposed: bool,
}

/// The `.npz` name of every parameter tensor of `plan`, in `state_dict` order: the post's names
/// for the post's family, else `<layer>_W` / `<layer>_b` (see the [module documentation](self)).
pub fn model_names(plan: &Plan) -> Vec<NpzName> {
    let post = post_family_config(plan).is_some();
    let mut out = Vec::new();
    for layer in plan.layers.iter().filter(|l| l.spec.has_params()) {
        let fc = matches!(layer.spec, LayerSpec::Fc { .. });
        for (i, (tensor, _)) in layer.param_shapes().into_iter().enumerate() {
            let weight = i == 0;
            let npz = if post {
                NPZ_NAMES.get(out.len()).map_or_else(|| tensor.clone(), |n| (*n).to_owned())
            } else {
                format!("{}_{}", layer.name, if weight { "W" } else { "b" })
            };
            out.push(NpzName { tensor, npz, transposed: fc && weight });
        }
    }
    out
}

/// The weights `tensors` of `plan`'s network as the bytes of an `.npz` under [`model_names`].
/// Every tensor of the plan must be there with its shape.
pub fn to_bytes_model(plan: &Plan, tensors: &[ParamTensor<f32>]) -> Result<Vec<u8>, NpzError> {
    let shapes = plan.param_shapes();
    let mut members = Vec::with_capacity(shapes.len());
    for (n, (tensor, shape)) in model_names(plan).into_iter().zip(shapes) {
        let Some(t) = tensors.iter().find(|t| t.name == tensor) else {
            return Err(NpzError::Tensors(format!("tensor \"{tensor}\" is missing")));
        };
        if t.shape != shape {
            return Err(NpzError::Tensors(format!(
                "tensor \"{tensor}\" has shape {:?} but this network needs {shape:?}",
                t.shape
            )));
        }
        let view = ArrayViewD::from_shape(IxDyn(&shape), &t.data).map_err(|_| {
            NpzError::Tensors(format!(
                "tensor \"{tensor}\" holds {} values, but its shape {shape:?} takes {}",
                t.data.len(),
                shape.iter().product::<usize>()
            ))
        })?;
        let bytes = if n.transposed { npy_f32(&view.reversed_axes()) } else { npy_f32(&view) };
        members.push((format!("{}.npy", n.npz), bytes));
    }
    zip_stored(&members)
}

/// Writes the weights `tensors` of `plan`'s network as an `.npz` file under [`model_names`],
/// atomically (see [`write_atomically`]).
pub fn save_model(path: &Path, plan: &Plan, tensors: &[ParamTensor<f32>]) -> Result<(), NpzError> {
    let bytes = to_bytes_model(plan, tensors)?;
    Ok(write_atomically(path, &bytes)?)
}
