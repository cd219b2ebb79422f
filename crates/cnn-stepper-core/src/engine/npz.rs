//! Weights as a NumPy `.npz` under the blog post's own names, so the post's numpy code can
//! load them: `np.load("w.npz")["c1_filters"]`.
//!
//! | npz name     | shape           | from                         |
//! |--------------|-----------------|------------------------------|
//! | `c1_filters` | `[F1, C, K, K]` | `conv1.weight`               |
//! | `c1_b`       | `[F1]`          | `conv1.bias`                 |
//! | `c2_filters` | `[F2, F1, K, K]`| `conv2.weight`               |
//! | `c2_b`       | `[F2]`          | `conv2.bias`                 |
//! | `fc_W1`      | `[FLAT, HIDDEN]`| `fc1.weight` **transposed**  |
//! | `fc_b1`      | `[HIDDEN]`      | `fc1.bias`                   |
//! | `fc_W2`      | `[HIDDEN, CLASSES]` | `fc2.weight` **transposed** |
//! | `fc_b2`      | `[CLASSES]`     | `fc2.bias`                   |
//!
//! The post computes `X @ W` where PyTorch computes `x @ W.T`, hence the transposes.
//!
//! An `.npz` is a zip of `.npy` files. This writer stores them uncompressed (zip method 0,
//! "stored") with a CRC-32 per member, which `numpy.load` and every unzip read; little-endian
//! `float32` (`'<f4'`), C order, `.npy` format version 1.0.

use std::path::Path;

use ndarray::{ArrayBase, Data, Dimension};

use super::Params;
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

/// Writes the weights of any network: the post's family under the post's names (as [`save`]),
/// any other with one member per tensor named after its layer (`conv1_W`, `conv1_b`, `fc1_W`,
/// …; fc weights transposed to `[IN, OUT]` as the post's are).
pub fn save_model(
    path: &Path,
    plan: &crate::engine::model::Plan,
    tensors: &[crate::engine::model::ParamTensor<f32>],
) -> Result<(), NpzError> {
    let mut members = Vec::with_capacity(tensors.len());
    let post = is_post_family(plan) && tensors.len() == NPZ_NAMES.len();
    for (i, t) in tensors.iter().enumerate() {
        let layer = plan.layers.get(t.layer).map_or("layer", |l| l.name.as_str());
        let is_weight = t.name.ends_with(".weight");
        let member = if post {
            format!("{}.npy", NPZ_NAMES[i])
        } else {
            format!("{layer}_{}.npy", if is_weight { "W" } else { "b" })
        };
        let a = ndarray::ArrayD::from_shape_vec(t.shape.clone(), t.data.clone())
            .map_err(|e| NpzError::TooLarge { what: format!("{}: {e}", t.name) })?;
        let a = if is_weight && t.shape.len() == 2 { a.reversed_axes() } else { a };
        members.push((member, npy_f32(&a)));
    }
    write_atomically(path, &zip_stored(&members)?)?;
    Ok(())
}

/// True for the networks of the post's shape, `conv, relu, conv[, relu], flatten, fc, relu, fc`
/// (those the post-only engine built, whatever their sizes): their `.npz` keeps the post's names,
/// so the post's numpy code loads it.
fn is_post_family(plan: &crate::engine::model::Plan) -> bool {
    let kinds: Vec<&str> = plan.layers.iter().map(|l| l.spec.kind()).collect();
    matches!(
        kinds.as_slice(),
        ["conv", "relu", "conv", "flatten", "fc", "relu", "fc"]
            | ["conv", "relu", "conv", "relu", "flatten", "fc", "relu", "fc"]
    )
}
