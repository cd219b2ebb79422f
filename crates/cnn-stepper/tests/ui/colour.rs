//! The window on colour images (issue 15 §3): the batch's thumbnails are uploaded in colour,
//! the first convolution's filters are RGB pictures until "Per channel" splits them, the pixel
//! inspector lists a red, a green and a blue subtotal, and the class names are the data's. A grey
//! set is drawn in grey as before.
//!
//! The textures are read as the app uploads them: a recording renderer keeps every texture
//! egui hands over, so a test sees the very texels a GPU would draw.
//!
//! Every check polls: frames run until the expected state shows up, for at most [`TIMEOUT`].

// clippy.toml allows expect in `#[test]` functions only; the helpers here are test code too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cnn_stepper::app::CnnApp;
use cnn_stepper::data::{Dataset, Splits, embedded};
use cnn_stepper::ui::support::colormap::{ColorMap, gray};
use cnn_stepper::ui::support::prefs::Prefs;
use cnn_stepper::ui::support::textures::signed_rgb_pixel;
use cnn_stepper::ui::tabs::evaluation::{EVALUATE_LABEL, GalleryFilter, gallery_order};
use eframe::egui::{self, Color32, ColorImage, TextureId, TexturesDelta};
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, TestRenderer};

use crate::kittest::{has_label, has_text_containing, layer_index, started, step, wait_for};

/// Every texture the app uploaded, as the renderer would hold it.
#[derive(Clone, Default)]
struct Textures(Arc<Mutex<HashMap<TextureId, ColorImage>>>);

impl TestRenderer for Textures {
    fn handle_delta(&mut self, delta: &mut TexturesDelta) {
        let mut all = self.0.lock().unwrap();
        for (id, deltas) in delta.set.drain() {
            for d in deltas {
                let egui::ImageData::Color(patch) = d.image;
                match d.pos {
                    None => {
                        all.insert(id, (*patch).clone());
                    }
                    Some([x0, y0]) => {
                        let whole = all.get_mut(&id).expect("a patch of a texture that was set whole first");
                        let [w, h] = patch.size;
                        for y in 0..h {
                            for x in 0..w {
                                whole.pixels[(y0 + y) * whole.size[0] + x0 + x] = patch.pixels[y * w + x];
                            }
                        }
                    }
                }
            }
        }
        for id in delta.free.drain() {
            all.remove(&id);
        }
    }
}

impl Textures {
    /// The texture the app named `name` (a `TileSet`'s name), as last uploaded.
    fn named(&self, h: &Harness<'static, CnnApp>, name: &str) -> Option<ColorImage> {
        let id = h.ctx.tex_manager().read().allocated().find(|(_, meta)| meta.name == name).map(|(id, _)| *id)?;
        self.0.lock().unwrap().get(&id).cloned()
    }
}

/// The classes of [`colour_set`], in label order: a long name among them.
const CLASSES: [&str; 3] = ["red-ish", "green-ish", "circle on navy blue"];

/// What an image of each class is: pure red, pure green, or a white disc on navy.
fn pixel(class: usize, y: usize, x: usize, side: usize) -> [u8; 3] {
    match class {
        0 => [255, 0, 0],
        1 => [0, 255, 0],
        _ => {
            let c = side as f32 / 2.0 - 0.5;
            let inside = (y as f32 - c).powi(2) + (x as f32 - c).powi(2) <= (side as f32 / 3.0).powi(2);
            if inside { [255, 255, 255] } else { [0, 0, 128] }
        }
    }
}

/// Side of the colour images.
const SIDE: usize = 12;

/// `train` and `test` 3×12×12 images of the three classes of [`CLASSES`], in turn.
fn colour_set(train: usize, test: usize) -> Arc<Splits> {
    colour_set_named(train, test, CLASSES)
}

/// [`colour_set`] with other names for its three classes.
fn colour_set_named(train: usize, test: usize, names: [&str; 3]) -> Arc<Splits> {
    let split = |n: usize| {
        let mut images = Vec::with_capacity(n * 3 * SIDE * SIDE);
        for i in 0..n {
            for c in 0..3 {
                for y in 0..SIDE {
                    for x in 0..SIDE {
                        images.push(pixel(i % 3, y, x, SIDE)[c]);
                    }
                }
            }
        }
        let labels = (0..n).map(|i| (i % 3) as u8).collect();
        Dataset::with_channels(images, labels, 3, SIDE, SIDE, names.map(String::from).to_vec()).unwrap()
    };
    Arc::new(Splits::new(split(train), split(test), "colour test set".into(), Vec::new()).unwrap())
}

/// A small network for 3 classes: conv1 reads red, green and blue with 4 filters of 3×3.
const COLOUR_NET: &str = "conv(4,3,pad=1), relu, maxpool(2), conv(4,3,pad=1), relu, flatten, fc(8), relu, fc(3)";

/// The app on `data` with `model`, recording its textures, after one whole step.
fn after_a_step(data: Arc<Splits>, model: &str) -> (Harness<'static, CnnApp>, Textures) {
    let textures = Textures::default();
    let prefs = Prefs { model: Some(model.to_owned()), ..Prefs::default() };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .renderer(textures.clone())
        .build_eframe(move |cc| CnnApp::with_prefs(&cc.egui_ctx, data, 1, prefs));
    started(&mut h);
    h.get_by_label("Step batch").click();
    wait_for(&mut h, "a first step", |h| step(h) == 1);
    wait_for(&mut h, "the batch's texture", |h| textures.named(h, "batch digits").is_some());
    (h, textures)
}

/// How many texels of `image` are exactly `color`.
fn count(image: &ColorImage, color: Color32) -> usize {
    image.pixels.iter().filter(|p| **p == color).count()
}

/// Clicks at `pos` (a pixel of a map: a node's centre may fall in the gap between maps).
fn click_at(h: &mut Harness<'static, CnnApp>, pos: egui::Pos2) {
    h.hover_at(pos);
    h.step();
    h.drag_at(pos);
    h.step();
    h.drop_at(pos);
    h.step();
}

#[test]
fn colour_images_are_uploaded_in_colour_with_their_class_names() {
    let (h, textures) = after_a_step(colour_set(48, 12), COLOUR_NET);
    let snap = h.state().snapshot().unwrap();
    let labels = &snap.batch.labels;
    assert_eq!(snap.batch.image_shape(), (3, SIDE, SIDE));
    let batch = textures.named(&h, "batch digits").unwrap();
    let per = SIDE * SIDE;
    let of = |class: usize| labels.iter().filter(|l| **l == class).count();
    assert!(of(0) > 0 && of(1) > 0 && of(2) > 0, "the batch holds every class: {labels:?}");
    // A pure red image is red on screen, not the grey of its first channel (which is white).
    assert_eq!(count(&batch, Color32::from_rgb(255, 0, 0)), of(0) * per, "the red images, texel for texel");
    assert_eq!(count(&batch, Color32::from_rgb(0, 255, 0)), of(1) * per, "the green ones");
    let navy = (0..per).filter(|p| pixel(2, p / SIDE, p % SIDE, SIDE) == [0, 0, 128]).count();
    assert_eq!(count(&batch, Color32::from_rgb(0, 0, 128)), of(2) * navy, "the circles' navy background");
    assert_eq!(count(&batch, Color32::WHITE), of(2) * (per - navy), "and their white discs");

    // The selected image's thumbnail beside its outputs is the same texture's tile; the batch
    // cells and the probabilities say the data's class names.
    let first = &CLASSES[labels[0]];
    assert!(has_text_containing(&h, &format!("image 1: label {first}, predicted ")), "the first cell's name");
    assert!(has_text_containing(&h, "label circle on navy blue"), "a long name whole in the cell's label");
    // Colour pictures of shapes are not digits: the captions say "image".
    assert!(has_text_containing(&h, "Image 1 of the batch"), "the outputs' caption");
    assert!(has_text_containing(&h, "click an image to follow it"), "the batch's hint");
    assert!(!has_text_containing(&h, "digit 1"), "no digit captions on shapes");
}

#[test]
fn the_first_layers_filters_are_rgb_pictures_until_per_channel_splits_them() {
    let (mut h, textures) = after_a_step(colour_set(48, 12), COLOUR_NET);
    h.key_press(egui::Key::Num2);
    wait_for(&mut h, "the RGB filters", |h| has_text_containing(h, "4 filters · 3×3×3 (red, green, blue) as colour"));
    assert!(has_label(&h, "4 filters (columns) × 4 channels (rows) · 3×3"), "conv2 reads conv1's maps: as before");
    let snap = h.state().snapshot().unwrap().clone();
    let conv1 = snap.filters.of_layer(layer_index(&snap, "conv1")).unwrap();
    // One scale for the bank (the default), every weight of every filter.
    let scale = conv1.weight.iter().fold(0.0f32, |m, w| m.max(w.abs()));
    let rgb = textures.named(&h, "conv1 filters").unwrap();
    assert_eq!(rgb.size, [2 * 3, 2 * 3], "four 3×3 pictures, one per filter, in a 2×2 atlas");
    for f in 0..4 {
        let weights = &conv1.weight[f * 27..(f + 1) * 27];
        let (ox, oy) = ((f % 2) * 3, (f / 2) * 3);
        for p in 0..9 {
            let texel = rgb.pixels[(oy + p / 3) * rgb.size[0] + ox + p % 3];
            assert_eq!(texel, signed_rgb_pixel(weights, 9, p, scale), "filter {f}, tap {p}: ½ + ½·w/scale per colour");
        }
    }
    assert!(rgb.pixels.iter().any(|p| p.r() != p.g() || p.g() != p.b()), "the pictures have colour");

    h.get_by_label("Per channel").click();
    wait_for(&mut h, "the slices apart", |h| has_label(h, "4 filters (columns) × red, green, blue (rows) · 3×3"));
    assert!(h.state().view().filters_per_channel, "the choice is the view's, remembered with it");
    let split = textures.named(&h, "conv1 filters").unwrap();
    assert_eq!(split.size, [4 * 3, 3 * 3], "twelve 3×3 kernels (filter × channel) in a 4×3 atlas");
    // Tile f·3 + c is filter f's channel c, on the diverging map.
    for (tile, (f, c)) in [(0, (0, 0)), (5, (1, 2)), (10, (3, 1))] {
        let (ox, oy) = ((tile % 4) * 3, (tile / 4) * 3);
        let w = conv1.weight[(f * 3 + c) * 9];
        assert_eq!(split.pixels[oy * split.size[0] + ox], ColorMap::RdBu.color(w, scale), "filter {f}, channel {c}");
    }
    h.get_by_label("Per channel").click();
    wait_for(&mut h, "the pictures again", |h| has_text_containing(h, "as colour pictures"));
}

#[test]
fn a_first_layer_pixel_lists_a_red_a_green_and_a_blue_subtotal_then_the_bias_and_the_total() {
    let (mut h, _) = after_a_step(colour_set(48, 12), COLOUR_NET);
    h.key_press(egui::Key::Num1);
    wait_for(&mut h, "the conv1 maps", |h| has_label(h, "conv1 maps"));
    let rect = h.get_by_label("conv1 maps").rect();
    click_at(&mut h, rect.min + egui::vec2(8.0, 8.0));
    wait_for(&mut h, "the inspector", |h| h.state().inspected().is_some());
    let snap = h.state().snapshot().unwrap();
    let at = h.state().inspected().unwrap();
    assert_eq!(at.layer, layer_index(snap, "conv1"));
    let cnn_stepper::trainer::Inspection::Conv(insp) = snap.inspect_pixel(at).unwrap() else {
        panic!("conv1 is a convolution")
    };
    wait_for(&mut h, "the subtotals", |h| has_text_containing(h, "the sum, one input channel at a time"));
    for name in ["red", "green", "blue", "+ bias", "= total"] {
        assert!(has_label(&h, name), "the table has a row {name}");
    }
    for s in &insp.channel_sums {
        let text = cnn_stepper::ui::support::colormap::fmt_sig(*s);
        assert!(has_text_containing(&h, &text), "the subtotal {text}");
    }
    assert!(has_text_containing(&h, "(c = red, green, blue)"), "the formula names the channels");
    // A click on a colour shows its products in detail.
    h.get_by_label("blue").click();
    wait_for(&mut h, "blue in detail", |h| has_text_containing(h, "blue in detail"));
    assert!(has_text_containing(&h, "patch of input[2] (blue)"));
}

#[test]
fn the_evaluation_names_the_classes_in_the_matrix_and_the_gallery() {
    // Short names: the matrix is then narrow enough for the accuracy bars to go beside it.
    const SHORT: [&str; 3] = ["red-ish", "green-ish", "circle"];
    let (mut h, textures) = after_a_step(colour_set_named(48, 12, SHORT), COLOUR_NET);
    h.key_press(egui::Key::Num4);
    wait_for(&mut h, "the evaluation tab", |h| has_label(h, EVALUATE_LABEL));
    h.get_by_label(EVALUATE_LABEL).click();
    wait_for(&mut h, "the confusion matrix", |h| has_label(h, "true red-ish: all mistakes"));
    let matrix = h.get_by_label("predicted circle: all mistakes").rect();
    let curves = h.get_by_label("Training curves").rect();
    for name in SHORT {
        assert!(has_label(&h, &format!("predicted {name}: all mistakes")), "the column of {name}");
        assert!(has_text_containing(&h, &format!("accuracy on {name}: ")), "the accuracy of {name}");
        // Beside the small matrix, in view: not pushed under the right panel by the caption below
        // the matrix.
        let bar = h.get_by_label_contains(&format!("accuracy on {name}: ")).rect();
        assert!(bar.right() < curves.left(), "the accuracy bar of {name} at {bar:?} is left of the right panel");
        assert!(bar.left() > matrix.right(), "the accuracy bar of {name} at {bar:?} is beside the matrix {matrix:?}");
    }
    // The gallery: the mistakes (a network one step old makes some) by name and in colour.
    let result = h.state().teaching().evaluation.clone().expect("the result is kept");
    let first = *result.misclassified.first().expect("some test images are wrong after one step");
    let label =
        format!("test image {}: true {}, predicted {} (", first.index, SHORT[first.label], SHORT[first.predicted]);
    wait_for(&mut h, "the gallery", |h| has_text_containing(h, &label));
    let gallery = textures.named(&h, "evaluation gallery").expect("the gallery's texture");
    let colour = |class: usize| {
        let [r, g, b] = pixel(class, 0, 0, SIDE);
        Color32::from_rgb(r, g, b)
    };
    // The first tile is the most confident mistake; its top-left texel has its class's colour.
    let shown = result.misclassified[gallery_order(&result, GalleryFilter::All)[0]];
    assert_eq!(gallery.pixels[0], colour(shown.label), "the first mistake's corner, in colour");
}

#[test]
fn a_grey_set_is_still_drawn_in_grey_and_its_filters_have_no_colour_choice() {
    let data = Arc::new(embedded().expect("the embedded sample decodes"));
    let (mut h, textures) = after_a_step(data.clone(), crate::kittest::SMALL_POST);
    let snap = h.state().snapshot().unwrap();
    assert_eq!(snap.batch.image_shape(), (1, 28, 28));
    let batch = textures.named(&h, "batch digits").unwrap();
    // Every texel is the grey of its image's pixel, in the atlas's square-ish layout.
    let n = snap.batch.labels.len();
    let cols = (n as f32).sqrt().ceil() as usize;
    for i in [0, n / 2, n - 1] {
        let image = snap.batch.image(i);
        let (ox, oy) = ((i % cols) * 28, (i / cols) * 28);
        for p in [0, 14 * 28 + 14, 20 * 28 + 9, 28 * 28 - 1] {
            let texel = batch.pixels[(oy + p / 28) * batch.size[0] + ox + p % 28];
            assert_eq!(texel, gray(image[p]), "image {i}, pixel {p}");
        }
    }
    assert!(batch.pixels.iter().all(|p| p.r() == p.g() && p.g() == p.b()), "nothing but grey");
    h.key_press(egui::Key::Num2);
    wait_for(&mut h, "the filters", |h| has_label(h, "3 filters · 3×3"));
    assert!(!has_label(&h, "Per channel"), "no colour, no choice");
    assert_eq!(textures.named(&h, "conv1 filters").map(|t| t.size), Some([2 * 3, 2 * 3]), "3 kernels, as before");
}

#[test]
fn the_help_says_which_filters_read_colours_and_how_they_are_drawn() {
    use cnn_stepper::engine::model::resolve;
    use cnn_stepper::trainer::ModelView;
    use cnn_stepper::ui::windows::help::{HelpTopic, network_note};
    let view = |shape| ModelView { name: None, plan: resolve(COLOUR_NET, shape, 3).unwrap() };
    let colour = view((3, SIDE, SIDE));
    let filters = network_note(HelpTopic::Filters, &colour).unwrap();
    assert!(filters.contains("conv1 reads the image's red, green and blue"), "{filters}");
    let inspector = network_note(HelpTopic::Inspector, &colour).unwrap();
    assert!(inspector.contains("A conv1 pixel's sum is one subtotal per colour"), "{inspector}");
    let grey = view((1, SIDE, SIDE));
    for topic in [HelpTopic::Filters, HelpTopic::Inspector] {
        let note = network_note(topic, &grey).unwrap();
        assert!(!note.contains("red"), "a grey network's help names no colour: {note}");
    }
}
