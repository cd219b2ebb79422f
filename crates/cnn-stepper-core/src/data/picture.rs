//! One picture file (PNG, JPEG, BMP or GIF) turned into the bytes a network takes: decoded,
//! alpha composited on black, resized and kept in colour or made grey.
//!
//! Image folders, `predict` and the window's "Classify an image" all prepare pictures here, so
//! a picture is seen the same way in training and afterwards.

mod digit;

use std::io::Read;
use std::path::Path;

use image::imageops::FilterType;
use image::{ImageFormat, RgbImage};

use super::{DataError, MNIST_SIDE};
use crate::fileio;

/// The file extensions read as pictures (lower case); anything else in an image folder is
/// skipped and counted.
pub const EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "gif", "jfif"];

/// The largest picture file read (a photo from a phone is a few MB).
const MAX_FILE_BYTES: u64 = 256 << 20;

/// The most pixels a decoded picture may have: a bomb that claims 100,000² pixels is refused
/// before anything is allocated.
const MAX_PIXELS: u64 = 100_000_000;

/// A decoded picture: red, green, blue bytes per pixel, row after row, alpha already
/// composited on black.
#[derive(Clone, PartialEq, Eq)]
pub struct Picture {
    rgb: RgbImage,
    colour: bool,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picture")
            .field("width", &self.rgb.width())
            .field("height", &self.rgb.height())
            .field("colour", &self.colour)
            .finish()
    }
}

/// Whether `path` has a picture's extension ([`EXTENSIONS`], any case).
#[must_use]
pub fn is_picture(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|known| known.eq_ignore_ascii_case(e)))
}

impl Picture {
    /// Reads and decodes the picture at `path` (the format from its content, not its name).
    ///
    /// # Errors
    /// [`DataError::File`] for a missing file or one that is not a regular file,
    /// [`DataError::Io`], and [`DataError::Picture`] naming the file and what the decoder said.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let name = path.display().to_string();
        let file = fileio::open_regular(path)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| DataError::Io { name: name.clone(), source })?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(DataError::Picture { name, reason: format!("larger than {} MB", MAX_FILE_BYTES >> 20) });
        }
        Self::decode(&bytes, &name)
    }

    /// Decodes a picture held in memory; `name` is used in messages.
    ///
    /// # Errors
    /// [`DataError::Picture`] naming `name` and what the decoder said.
    pub fn decode(bytes: &[u8], name: &str) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::Picture { name: name.to_owned(), reason };
        let format = image::guess_format(bytes).map_err(|_| {
            bad(if bytes.is_empty() {
                "the file is empty".to_owned()
            } else {
                "not a PNG, JPEG, BMP or GIF picture (unknown content)".to_owned()
            })
        })?;
        if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Bmp | ImageFormat::Gif) {
            return Err(bad(format!("{format:?} pictures are not read; save it as PNG or JPEG")));
        }
        let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(MAX_PIXELS * 4);
        reader.limits(limits);
        let decoded = reader.decode().map_err(|e| bad(e.to_string()))?;
        let (w, h) = (decoded.width(), decoded.height());
        if w == 0 || h == 0 {
            return Err(bad("the picture has no pixels".to_owned()));
        }
        if u64::from(w) * u64::from(h) > MAX_PIXELS {
            return Err(bad(format!("{w}×{h} pixels is too large")));
        }
        // Alpha on black, so a transparent background becomes the dark background the networks
        // see in MNIST-style data.
        if !decoded.color().has_alpha() {
            // Opaque (a photo): the same bytes, without a copy through RGBA (a quarter of a
            // second for a 12-megapixel photo).
            let rgb = decoded.into_rgb8();
            let colour = rgb.pixels().any(|p| p.0[0] != p.0[1] || p.0[1] != p.0[2]);
            return Ok(Picture { rgb, colour });
        }
        let rgba = decoded.to_rgba8();
        let mut rgb = RgbImage::new(w, h);
        let mut colour = false;
        for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
            let [r, g, b, a] = src.0;
            let over = |v: u8| ((u16::from(v) * u16::from(a) + 127) / 255) as u8;
            dst.0 = [over(r), over(g), over(b)];
            colour |= dst.0[0] != dst.0[1] || dst.0[1] != dst.0[2];
        }
        Ok(Picture { rgb, colour })
    }

    /// Width and height in pixels.
    #[must_use]
    pub fn size(&self) -> (usize, usize) {
        (self.rgb.width() as usize, self.rgb.height() as usize)
    }

    /// Whether any pixel has colour (red, green and blue not all equal).
    #[must_use]
    pub fn is_colour(&self) -> bool {
        self.colour
    }

    /// The picture resized to `rows × cols` (the whole picture, stretched if its aspect differs,
    /// as torchvision's `Resize((h, w))` does) as `channels × rows × cols` bytes: 3 keeps red,
    /// green and blue, 1 makes it grey with the ITU-R 601 weights (as PIL's `convert("L")`).
    ///
    /// Shrinking averages (a triangle filter over the covered area), so a large photo does not
    /// alias into noise. A picture at least four times the size asked in both directions is
    /// first averaged over blocks of `k × k` pixels (`k` half the smaller ratio), which the
    /// triangle filter then finishes: within a grey level or so of the triangle filter alone
    /// (mean difference under 1 on photos), and eight times faster on a 12-megapixel photo
    /// (0.84 s → 0.10 s), which the image crate's filter takes a second over.
    #[must_use]
    pub fn to_bytes(&self, channels: usize, rows: usize, cols: usize) -> Vec<u8> {
        let (w, h) = (cols.max(1) as u32, rows.max(1) as u32);
        let (sw, sh) = self.rgb.dimensions();
        let k = ((sw / w).min(sh / h) / 2).max(1);
        let small = if (sw, sh) == (w, h) {
            self.rgb.clone()
        } else if k >= 2 {
            image::imageops::resize(&block_mean(&self.rgb, k), w, h, FilterType::Triangle)
        } else {
            image::imageops::resize(&self.rgb, w, h, FilterType::Triangle)
        };
        let plane = (w * h) as usize;
        if channels == 3 {
            let mut out = vec![0u8; 3 * plane];
            for (i, p) in small.pixels().enumerate() {
                for c in 0..3 {
                    out[c * plane + i] = p.0[c];
                }
            }
            out
        } else {
            small.pixels().map(|p| grey(p.0)).collect()
        }
    }

    /// The picture as grey levels in `[0, 1]` at its own size, row after row.
    #[must_use]
    pub fn grey_levels(&self) -> Vec<f32> {
        self.rgb.pixels().map(|p| f32::from(grey(p.0)) / 255.0).collect()
    }
}

/// `src` shrunk `k` times: each pixel the rounded mean of a `k × k` block (the blocks at the
/// right and bottom edges narrower when the size is not a multiple of `k`).
fn block_mean(src: &RgbImage, k: u32) -> RgbImage {
    let (w, h) = src.dimensions();
    let (cols, rows) = (w.div_ceil(k), h.div_ceil(k));
    let k = k as usize;
    // Per block: the sums of red, green and blue, and the pixel count.
    let mut sums = vec![[0u32; 4]; cols as usize * rows as usize];
    for (y, row) in src.rows().enumerate() {
        let base = y / k * cols as usize;
        for (x, p) in row.enumerate() {
            let s = &mut sums[base + x / k];
            for c in 0..3 {
                s[c] += u32::from(p.0[c]);
            }
            s[3] += 1;
        }
    }
    RgbImage::from_fn(cols, rows, |x, y| {
        let s = sums[(y * cols + x) as usize];
        let n = s[3].max(1);
        image::Rgb([0, 1, 2].map(|c| ((s[c] + n / 2) / n) as u8))
    })
}

/// ITU-R 601 luma, rounded: the grey PIL and torchvision's `Grayscale` give.
fn grey([r, g, b]: [u8; 3]) -> u8 {
    ((299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b) + 500) / 1000) as u8
}

/// Opens the picture at `path` and prepares it for a network taking `channels × rows × cols`
/// images, as [`Picture::to_bytes`] does.
///
/// # Errors
/// As [`Picture::open`].
pub fn prepare_file(path: &Path, (channels, rows, cols): (usize, usize, usize)) -> Result<Vec<u8>, DataError> {
    Ok(Picture::open(path)?.to_bytes(channels, rows, cols))
}

/// The picture as a network taking `channels × rows × cols` images sees it: `f32` values in
/// `[0, 1]`, channel after channel, prepared as the training images were.
///
/// - A grey 1×28×28 input (an MNIST-style network) gets a drawn digit's preparation: grey
///   levels, inverted when the paper is lighter than the ink (decided from the border), the
///   paper's level, shading and grain taken away and the ink stretched to full strength, specks
///   dropped, hairlines thickened to MNIST's stroke width, then
///   [`draw::mnist_from_grey`](super::draw::mnist_from_grey): the ink box scaled into 20×20 and
///   centred by mass. A picture without ink gives all zeros.
/// - A colour input (3 channels): the picture resized in colour ([`Picture::to_bytes`]` / 255`).
/// - Any other grey input: the picture resized in grey (the same grey for every channel when
///   a network takes some other number of channels).
#[must_use]
pub fn for_input(picture: &Picture, (channels, rows, cols): (usize, usize, usize)) -> Vec<f32> {
    if (channels, rows, cols) == (1, MNIST_SIDE, MNIST_SIDE) {
        return digit::prepare(picture);
    }
    let bytes = picture.to_bytes(if channels == 3 { 3 } else { 1 }, rows, cols);
    let plane: Vec<f32> = bytes.iter().map(|&b| f32::from(b) / 255.0).collect();
    if channels == 3 || channels == 1 { plane } else { plane.repeat(channels) }
}

/// Opens the picture at `path` and prepares it for a network taking `input` = `(channels, rows,
/// cols)` images, as [`for_input`] does: what `predict` and the window's "Classify an image" run
/// through the network.
///
/// # Errors
/// As [`Picture::open`]: the error names the file and what is wrong with it.
pub fn file_for_input(path: &Path, input: (usize, usize, usize)) -> Result<Vec<f32>, DataError> {
    Ok(for_input(&Picture::open(path)?, input))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 4]) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba(f(x, y)));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn colour_is_kept_channel_after_channel_and_alpha_goes_on_black() {
        let bytes = png(2, 1, |x, _| if x == 0 { [255, 0, 0, 255] } else { [0, 0, 255, 128] });
        let p = Picture::decode(&bytes, "two.png").unwrap();
        assert!(p.is_colour());
        assert_eq!(p.to_bytes(3, 1, 2), vec![255, 0, 0, 0, 0, 128]);
        assert_eq!(p.to_bytes(1, 1, 2), vec![76, 15]);
    }

    #[test]
    fn a_grey_picture_is_not_colour_and_resizing_averages() {
        let bytes = png(4, 4, |x, _| if x < 2 { [0, 0, 0, 255] } else { [200, 200, 200, 255] });
        let p = Picture::decode(&bytes, "grey.png").unwrap();
        assert!(!p.is_colour());
        let small = p.to_bytes(1, 1, 2);
        assert!(small[0] < 60 && small[1] > 140, "{small:?}");
    }

    #[test]
    fn undecodable_bytes_name_the_file_and_the_reason() {
        let err = Picture::decode(b"hello, not a picture", "notes.png").unwrap_err().to_string();
        assert!(err.contains("notes.png") && err.contains("not a PNG"), "{err}");
        let mut cut = png(8, 8, |_, _| [1, 2, 3, 255]);
        cut.truncate(cut.len() / 2);
        let err = Picture::decode(&cut, "cut.png").unwrap_err().to_string();
        assert!(err.starts_with("cut.png: "), "{err}");
        let err = Picture::decode(&[], "empty.png").unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn for_input_resizes_colour_and_grey_inputs_as_training_did() {
        let bytes = png(4, 2, |x, y| [(60 * x) as u8, (100 * y) as u8, 200, 255]);
        let p = Picture::decode(&bytes, "p.png").unwrap();
        let scaled = |b: Vec<u8>| b.into_iter().map(|v| f32::from(v) / 255.0).collect::<Vec<f32>>();
        assert_eq!(for_input(&p, (3, 2, 4)), scaled(p.to_bytes(3, 2, 4)));
        assert_eq!(for_input(&p, (3, 5, 3)), scaled(p.to_bytes(3, 5, 3)));
        assert_eq!(for_input(&p, (1, 16, 16)), scaled(p.to_bytes(1, 16, 16)));
        let grey = scaled(p.to_bytes(1, 3, 3));
        assert_eq!(for_input(&p, (2, 3, 3)), [grey.clone(), grey].concat(), "each channel the same grey");
    }

    #[test]
    fn an_mnist_input_gets_bright_ink_on_black_whichever_the_paper() {
        // A bar drawn dark on light paper and light on dark paper come out the same.
        let bar = |x: u32, y: u32| (20..44).contains(&x) && (10..50).contains(&y);
        let dark_on_light = png(64, 64, |x, y| if bar(x, y) { [30, 30, 30, 255] } else { [230, 230, 230, 255] });
        let light_on_dark = png(64, 64, |x, y| if bar(x, y) { [240, 240, 240, 255] } else { [10, 10, 10, 255] });
        let a = for_input(&Picture::decode(&dark_on_light, "a.png").unwrap(), (1, 28, 28));
        let b = for_input(&Picture::decode(&light_on_dark, "b.png").unwrap(), (1, 28, 28));
        assert_eq!(a.len(), 28 * 28);
        assert_eq!(a[0], 0.0, "the paper is black");
        assert!((a[14 * 28 + 14] - 1.0).abs() < 1e-6, "the ink is full");
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0_f32, f32::max);
        assert!(diff < 0.02, "largest difference {diff}");
        // Scaled so that its height is the 20-pixel box.
        let rows = (0..28).filter(|r| a[r * 28..(r + 1) * 28].iter().any(|&v| v > 0.5)).count();
        assert!((19..=20).contains(&rows), "{rows} rows of ink");
    }

    #[test]
    fn a_picture_without_ink_is_a_blank_digit() {
        let plain = png(40, 30, |_, _| [200, 200, 200, 255]);
        let out = for_input(&Picture::decode(&plain, "plain.png").unwrap(), (1, 28, 28));
        assert_eq!(out, vec![0.0; 28 * 28]);
    }

    #[test]
    fn a_large_picture_shrinks_fast_to_about_what_the_triangle_filter_gives() {
        // A textured 600×480 picture shrunk to 32×32 (blocks of 7) and to 100×80 (blocks of 3).
        let img = RgbImage::from_fn(600, 480, |x, y| {
            image::Rgb([(x / 3) as u8, (y / 2) as u8, (((x * 7) ^ (y * 13)) % 256) as u8])
        });
        let p = Picture { rgb: img.clone(), colour: true };
        for (rows, cols) in [(32, 32), (80, 100)] {
            let direct = image::imageops::resize(&img, cols, rows, FilterType::Triangle);
            let fast = p.to_bytes(3, rows as usize, cols as usize);
            let plane = (rows * cols) as usize;
            let mut worst = 0;
            for (i, px) in direct.pixels().enumerate() {
                for c in 0..3 {
                    worst = worst.max(px.0[c].abs_diff(fast[c * plane + i]));
                }
            }
            assert!(worst <= 16, "{rows}×{cols}: largest difference {worst}");
        }
        assert_eq!(block_mean(&img, 7).dimensions(), (86, 69));
        let flat = RgbImage::from_pixel(10, 10, image::Rgb([9, 99, 199]));
        assert!(block_mean(&flat, 3).pixels().all(|p| p.0 == [9, 99, 199]), "edge blocks are means too");
    }
}
