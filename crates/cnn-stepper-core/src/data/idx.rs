//! Reading IDX files (the format MNIST ships in), raw or gzip-compressed.
//!
//! An IDX file is a big-endian `u32` magic number, one big-endian `u32` per dimension, then the
//! data as unsigned bytes in row-major order. MNIST uses two kinds:
//! images (`0x00000803`: count × rows × cols) and labels (`0x00000801`: count).
//!
//! The header is untrusted: nothing is allocated from the counts it claims. When the size of a
//! raw (uncompressed) file is known, the counts are checked against it before any data is read;
//! otherwise (gzip, or a plain reader) data is read with a limit of what the header promises plus
//! one byte, so memory only grows with bytes that are really there, and a file with extra bytes
//! is noticed without reading all of them.

use std::io::{self, Read, Write};

use flate2::read::MultiGzDecoder;

use super::DataError;

/// Magic number of an IDX file holding unsigned-byte images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file holding unsigned-byte labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Initial buffer size for data of unknown size (gzip); beyond it the buffer grows as real bytes
/// arrive, so a lying header cannot make us reserve memory up front.
const MAX_PREALLOC: usize = 1 << 20;

/// How many surplus bytes to count before reporting "at least N"; a gzip bomb appended to a
/// file should not keep the reader busy for minutes just to produce an exact number.
const MAX_TRAILING_COUNT: u64 = 1 << 20;

/// The images of one IDX image file.
#[derive(Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` bytes, image after image, each row-major; 0 is background.
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for IdxImages {
    // The derived Debug would print up to 47 million numbers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdxImages")
            .field("count", &self.count)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("pixels", &format_args!("[{} bytes]", self.pixels.len()))
            .finish()
    }
}

/// The largest image side an IDX folder may have (the same as the engine's input limit).
const MAX_SIDE: usize = 4096;

/// Reads an IDX image file (raw or gzip, detected from its first bytes) and checks that every
/// image is `expected_rows × expected_cols`.
///
/// `name` is only used in error messages; pass the file name or path.
///
/// # Errors
/// [`DataError::Empty`], [`DataError::BadMagic`], [`DataError::TruncatedHeader`],
/// [`DataError::WrongDims`], [`DataError::Truncated`], [`DataError::TrailingBytes`],
/// [`DataError::CorruptGzip`] or [`DataError::Io`], each naming the file.
pub fn read_images<R: Read>(
    reader: R,
    name: &str,
    expected_rows: usize,
    expected_cols: usize,
) -> Result<IdxImages, DataError> {
    read_images_sized(reader, None, name, Some((expected_rows, expected_cols)))
}

/// [`read_images`] from a reader of `size` bytes (a file's length), which lets a raw file's
/// header be checked against its size before the data is read.
pub(crate) fn read_images_sized<R: Read>(
    reader: R,
    size: Option<u64>,
    name: &str,
    expected: Option<(usize, usize)>,
) -> Result<IdxImages, DataError> {
    let mut input = Input::open(reader, size, name)?;
    let dims = input.header(IMAGES_MAGIC)?;
    let [count, rows, cols] = [dims[0], dims[1], dims[2]].map(|d| d as usize);
    let (expected_rows, expected_cols) = match expected {
        Some(size) => size,
        // Any size a network can take; a zero or absurd side is a damaged header.
        None if (1..=MAX_SIDE).contains(&rows) && (1..=MAX_SIDE).contains(&cols) => (rows, cols),
        None => (rows.clamp(1, MAX_SIDE), cols.clamp(1, MAX_SIDE)),
    };
    if rows != expected_rows || cols != expected_cols {
        return Err(DataError::WrongDims { name: name.to_owned(), rows, cols, expected_rows, expected_cols });
    }
    // u128 so that no header (u32 count) times any caller-supplied size can overflow silently;
    // saturation only matters for sizes no file can have, which then read as truncated.
    let per_image = (rows as u128).saturating_mul(cols as u128);
    let pixels = input.data(u64::from(dims[0]), per_image, "images")?;
    Ok(IdxImages { count, rows, cols, pixels })
}

/// Reads an IDX label file (raw or gzip, detected from its first bytes) and checks that every
/// label is below `num_classes`.
///
/// `name` is only used in error messages; pass the file name or path.
///
/// # Errors
/// [`DataError::Empty`], [`DataError::BadMagic`], [`DataError::TruncatedHeader`],
/// [`DataError::Truncated`], [`DataError::TrailingBytes`], [`DataError::LabelOutOfRange`],
/// [`DataError::CorruptGzip`] or [`DataError::Io`], each naming the file.
pub fn read_labels<R: Read>(reader: R, name: &str, num_classes: usize) -> Result<Vec<u8>, DataError> {
    read_labels_sized(reader, None, name, num_classes)
}

/// [`read_labels`] from a reader of `size` bytes; see [`read_images_sized`].
pub(crate) fn read_labels_sized<R: Read>(
    reader: R,
    size: Option<u64>,
    name: &str,
    num_classes: usize,
) -> Result<Vec<u8>, DataError> {
    let mut input = Input::open(reader, size, name)?;
    let dims = input.header(LABELS_MAGIC)?;
    let labels = input.data(u64::from(dims[0]), 1, "labels")?;
    if let Some((index, &label)) = labels.iter().enumerate().find(|&(_, &label)| usize::from(label) >= num_classes) {
        return Err(DataError::LabelOutOfRange { name: name.to_owned(), index, label, num_classes });
    }
    Ok(labels)
}

/// Writes images as an IDX image file (uncompressed; wrap `writer` in a gzip encoder to compress).
///
/// `pixels` must hold `count * rows * cols` bytes.
///
/// # Errors
/// [`DataError::InconsistentDataset`] if the sizes do not fit in an IDX header or do not match
/// `pixels`, [`DataError::Io`] if writing fails.
pub fn write_images<W: Write>(
    mut writer: W,
    name: &str,
    rows: usize,
    cols: usize,
    pixels: &[u8],
) -> Result<(), DataError> {
    let per_image = rows.saturating_mul(cols);
    let count = pixels.len().checked_div(per_image).unwrap_or(0);
    if count.saturating_mul(per_image) != pixels.len() {
        return Err(DataError::InconsistentDataset {
            reason: format!("{} pixel bytes are not a whole number of {rows}×{cols} images", pixels.len()),
        });
    }
    let header = [IMAGES_MAGIC, to_u32(count)?, to_u32(rows)?, to_u32(cols)?];
    write_idx(&mut writer, name, &header, pixels)
}

/// Writes labels as an IDX label file (uncompressed; wrap `writer` in a gzip encoder to compress).
///
/// # Errors
/// [`DataError::InconsistentDataset`] if there are more labels than an IDX header can count,
/// [`DataError::Io`] if writing fails.
pub fn write_labels<W: Write>(mut writer: W, name: &str, labels: &[u8]) -> Result<(), DataError> {
    let header = [LABELS_MAGIC, to_u32(labels.len())?];
    write_idx(&mut writer, name, &header, labels)
}

fn to_u32(n: usize) -> Result<u32, DataError> {
    u32::try_from(n).map_err(|_| DataError::InconsistentDataset {
        reason: format!("{n} does not fit in an IDX header (at most {})", u32::MAX),
    })
}

fn write_idx<W: Write>(writer: &mut W, name: &str, header: &[u32], data: &[u8]) -> Result<(), DataError> {
    let io_err = |source| DataError::Io { name: name.to_owned(), source };
    for word in header {
        writer.write_all(&word.to_be_bytes()).map_err(io_err)?;
    }
    writer.write_all(data).map_err(io_err)?;
    writer.flush().map_err(io_err)
}

/// An IDX byte stream after gzip detection, with the bookkeeping needed for good messages.
struct Input<'a> {
    reader: Box<dyn Read + 'a>,
    name: &'a str,
    gzip: bool,
    /// Header bytes consumed so far (for "ends after N bytes").
    consumed: usize,
    /// The length of a raw file, when known: the data's length is checked against it first.
    size: Option<u64>,
}

impl<'a> Input<'a> {
    /// Peeks at the first two bytes to decide between raw and gzip; the file name is not
    /// trusted because unpacked files keep `.gz` names and packed ones lose them.
    fn open<R: Read + 'a>(mut reader: R, size: Option<u64>, name: &'a str) -> Result<Self, DataError> {
        let mut prefix = [0u8; 2];
        let got =
            read_up_to(&mut reader, &mut prefix).map_err(|source| DataError::Io { name: name.to_owned(), source })?;
        let prefix = prefix[..got].to_vec();
        let gzip = prefix == GZIP_MAGIC;
        let chained = io::Cursor::new(prefix).chain(reader);
        let reader: Box<dyn Read + 'a> = if gzip {
            // Multi-member so that bytes after the first gzip member are decoded (or rejected
            // as corrupt) instead of being silently ignored as a single-member decoder would.
            Box::new(MultiGzDecoder::new(chained))
        } else {
            Box::new(chained)
        };
        // A gzip file's size says nothing about its content's.
        Ok(Input { reader, name, gzip, consumed: 0, size: size.filter(|_| !gzip) })
    }

    /// Turns a read failure into the right variant: inside a gzip stream, malformed data shows
    /// up as an I/O error, but it is the file's content that is wrong, not the disk.
    fn read_error(&self, source: io::Error) -> DataError {
        let name = self.name.to_owned();
        let content_error = matches!(
            source.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
        );
        if self.gzip && content_error {
            DataError::CorruptGzip { name, source }
        } else {
            DataError::Io { name, source }
        }
    }

    /// Reads and checks the magic number, then returns the dimensions it announces.
    fn header(&mut self, magic: u32) -> Result<Vec<u32>, DataError> {
        let ndims = (magic & 0xff) as usize;
        let header_len = 4 * (1 + ndims);
        let found = self.read_u32(header_len)?;
        if found != magic {
            return Err(DataError::BadMagic { name: self.name.to_owned(), expected: magic, found });
        }
        (0..ndims).map(|_| self.read_u32(header_len)).collect()
    }

    fn read_u32(&mut self, header_len: usize) -> Result<u32, DataError> {
        let mut word = [0u8; 4];
        let got = read_up_to(&mut self.reader, &mut word).map_err(|e| self.read_error(e))?;
        self.consumed += got;
        if got < word.len() {
            return Err(if self.consumed == 0 {
                DataError::Empty { name: self.name.to_owned() }
            } else {
                DataError::TruncatedHeader { name: self.name.to_owned(), header_len, actual: self.consumed }
            });
        }
        Ok(u32::from_be_bytes(word))
    }

    /// Reads exactly `count * item_len` data bytes and makes sure nothing follows them.
    fn data(&mut self, count: u64, item_len: u128, what: &'static str) -> Result<Vec<u8>, DataError> {
        let expected = u128::from(count).saturating_mul(item_len);
        let mut prealloc = usize::try_from(expected).map_or(MAX_PREALLOC, |e| e.min(MAX_PREALLOC));
        if let Some(size) = self.size {
            // Judge the header by the file's size before reading (or allocating) anything.
            let available = size.saturating_sub(self.consumed as u64);
            if u128::from(available) < expected {
                return Err(DataError::Truncated {
                    name: self.name.to_owned(),
                    what,
                    count,
                    expected_bytes: expected,
                    actual_bytes: available,
                });
            }
            if u128::from(available) > expected {
                return Err(DataError::TrailingBytes {
                    name: self.name.to_owned(),
                    what,
                    count,
                    extra_bytes: u64::try_from(u128::from(available) - expected).unwrap_or(u64::MAX),
                    at_least: false,
                });
            }
            // The file holds exactly this many bytes, so this memory is backed by real data.
            prealloc = usize::try_from(expected).unwrap_or(prealloc);
        }
        // One byte more than promised is enough to tell "too long" from "exact".
        let limit = u64::try_from(expected.saturating_add(1)).unwrap_or(u64::MAX);
        let mut data = Vec::with_capacity(prealloc);
        (&mut self.reader).take(limit).read_to_end(&mut data).map_err(|e| self.read_error(e))?;
        let actual = data.len() as u128;
        if actual < expected {
            return Err(DataError::Truncated {
                name: self.name.to_owned(),
                what,
                count,
                expected_bytes: expected,
                actual_bytes: data.len() as u64,
            });
        }
        if actual > expected {
            let counted = io::copy(&mut (&mut self.reader).take(MAX_TRAILING_COUNT), &mut io::sink())
                .map_err(|e| self.read_error(e))?;
            let mut probe = [0u8; 1];
            let more = read_up_to(&mut self.reader, &mut probe).map_err(|e| self.read_error(e))?;
            return Err(DataError::TrailingBytes {
                name: self.name.to_owned(),
                what,
                count,
                extra_bytes: 1 + counted,
                at_least: more > 0,
            });
        }
        Ok(data)
    }
}

/// Like `read_exact`, but reports how many bytes were there instead of failing at end of input.
fn read_up_to<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
