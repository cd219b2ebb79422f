//! Colour images in what the window is given (issue 15 §3): the batch carries every channel of
//! every image, and the pixel inspector splits a first-layer sum into the red, green and blue
//! subtotals that, with the bias, add up to the pixel's value.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may panic: that is the failure report.

mod common;

use std::sync::Arc;

use cnn_stepper_core::data::{Dataset, Splits};
use cnn_stepper_core::engine::{ConvEngine, Preset};
use cnn_stepper_core::trainer::inspect::{COLOUR_CHANNELS, input_channel_names, reads_image_channels};
use cnn_stepper_core::trainer::{Inspection, PixelInspection, PixelRef, Session, Snapshot};

use common::{layer, step_until};

/// `n` 3×8×8 colour images of three classes: image `i` is pure red, green or blue (`i % 3`)
/// with a brightness that varies by image, so the three channels differ.
fn colour(n: usize) -> Arc<Splits> {
    let split = |n: usize| {
        let mut images = Vec::with_capacity(n * 3 * 64);
        for i in 0..n {
            for c in 0..3 {
                let v = if c == i % 3 { 120 + (i * 17 % 136) as u8 } else { (i * 7 % 40) as u8 };
                images.extend(std::iter::repeat_n(v, 64));
            }
        }
        let labels = (0..n).map(|i| (i % 3) as u8).collect();
        let names = vec!["red-ish".to_string(), "green-ish".to_string(), "blue-ish".to_string()];
        Dataset::with_channels(images, labels, 3, 8, 8, names).unwrap()
    };
    Arc::new(Splits::new(split(n), split(n), "colour test set".into(), Vec::new()).unwrap())
}

/// A small network with a pool before the first convolution, so that the convolution still reads
/// the image's channels without being layer 0.
const POOLED: &str = "maxpool(2), conv(4,3,pad=1), relu, conv(2,3,pad=1), flatten, fc(3)";

fn session(model: &str) -> Session {
    let mut s = Session::new(colour(12), 5, Preset::Recommended, model, ConvEngine::Fast).unwrap();
    let mut settings = s.settings();
    settings.batch_size = 6;
    s.set_settings(settings).unwrap();
    s
}

fn conv_pixel(snap: &Snapshot, at: PixelRef) -> PixelInspection {
    match snap.inspect_pixel(at).unwrap() {
        Inspection::Conv(c) => c,
        other => panic!("{at:?} is not a convolution pixel: {other:?}"),
    }
}

#[test]
fn the_batch_carries_every_channel_of_every_colour_image() {
    let mut s = session("conv(4,3,pad=1), relu, flatten, fc(3)");
    step_until(&mut s, "forward conv1");
    let snap = s.snapshot();
    let b = &snap.batch;
    assert_eq!(b.image_shape(), (3, 8, 8));
    assert_eq!(b.images.len(), 6 * 3 * 64, "all three channels of the six images");
    let data = colour(12);
    for (i, &index) in b.indices.iter().enumerate() {
        let bytes = data.train.image(index);
        let expected: Vec<f32> = bytes.iter().map(|&v| f32::from(v) / 255.0).collect();
        assert_eq!(b.image(i), &expected[..], "image {i} (training image {index}) channel after channel");
        assert_eq!(b.labels[i], index % 3);
    }
    assert!(b.image(6).is_empty(), "no seventh image");
    assert_eq!(snap.sample.input, b.image(snap.sample.index), "the selected image is the batch's");
}

#[test]
fn a_first_layer_pixel_splits_into_red_green_and_blue_subtotals_that_add_up_to_its_value() {
    for model in ["conv(4,3,pad=1), relu, conv(2,3,pad=1), flatten, fc(3)", POOLED] {
        let mut s = session(model);
        step_until(&mut s, "loss");
        let snap = s.snapshot();
        let conv1 = layer(&snap.model, "conv1");
        let (_, h, w) = match snap.model.plan.layers[conv1].output {
            cnn_stepper_core::engine::model::Shape::Maps { c, h, w } => (c, h, w),
            other => panic!("{other:?}"),
        };
        let mut checked = 0;
        for channel in 0..4 {
            for (y, x) in [(0, 0), (h / 2, w / 3), (h - 1, w - 1)] {
                let p = conv_pixel(&snap, PixelRef { layer: conv1, channel, y, x });
                assert_eq!(p.channels, 3);
                assert_eq!(p.channel_names(), COLOUR_CHANNELS.map(String::from), "{model}");
                assert_eq!(p.channel_name(1), "green");
                assert_eq!(p.channel_sums.len(), 3);
                // Each subtotal is its channel's products, and with the bias they are the value.
                for c in 0..3 {
                    let own: f64 = p.products[c * 9..(c + 1) * 9].iter().map(|v| f64::from(*v)).sum();
                    assert!((f64::from(p.channel_sums[c]) - own).abs() < 1e-6, "{model}: subtotal {c}");
                }
                let sum = p.channel_sums.iter().map(|v| f64::from(*v)).sum::<f64>() + f64::from(p.bias);
                let scale = p.bias.abs() + p.products.iter().map(|v| v.abs()).sum::<f32>();
                assert!(
                    (sum as f32 - p.map_value).abs() <= 1e-5 * scale + 1e-6,
                    "{model} {channel},{y},{x}: red + green + blue + bias = {sum}, the map holds {}",
                    p.map_value
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 12);
        // The second convolution reads conv1's maps, not colours.
        let conv2 = layer(&snap.model, "conv2");
        let p = conv_pixel(&snap, PixelRef { layer: conv2, channel: 0, y: 0, x: 0 });
        assert_eq!(p.channel_names(), ["channel 0", "channel 1", "channel 2", "channel 3"]);
    }
}

#[test]
fn only_a_convolution_before_any_other_sees_the_colour_channels() {
    let s = session(POOLED);
    let model = s.model();
    // maxpool(2) conv relu conv flatten fc
    let reads: Vec<bool> = (0..model.plan.layers.len()).map(|i| reads_image_channels(model, i)).collect();
    assert_eq!(reads, [true, true, false, false, false, false]);
    assert_eq!(input_channel_names(model, 1, 3), ["red", "green", "blue"]);
    assert_eq!(input_channel_names(model, 3, 4), ["channel 0", "channel 1", "channel 2", "channel 3"]);

    // A grey network never names colours.
    let grey = common::session(1, common::SMALL, ConvEngine::Fast);
    assert!(!reads_image_channels(grey.model(), 0));
    assert_eq!(input_channel_names(grey.model(), 0, 1), ["channel 0"]);
}
