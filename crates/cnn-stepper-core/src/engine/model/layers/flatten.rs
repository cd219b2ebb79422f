//! Flatten: `[N, C, H, W]` read as `[N, C·H·W]`. Row-major storage makes the two the same
//! bytes, so neither pass copies anything: flatten's output is stored in its input's buffer,
//! and the gradient of its input is the gradient of its output. [`storage_slots`] works out
//! which buffer each tensor lives in.

use super::super::spec::LayerSpec;

/// For each tensor between layers (0 = the input, `i + 1` = layer `i`'s output), the index of
/// the buffer that holds it: its own, or the buffer of the tensor before a `flatten`.
pub fn storage_slots(layers: &[LayerSpec]) -> Vec<usize> {
    let mut slots = Vec::with_capacity(layers.len() + 1);
    slots.push(0);
    for (i, l) in layers.iter().enumerate() {
        let own = if *l == LayerSpec::Flatten { slots[i] } else { i + 1 };
        slots.push(own);
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_shares_its_inputs_buffer() {
        let layers = [LayerSpec::Relu, LayerSpec::Flatten, LayerSpec::Fc { out: 2 }];
        assert_eq!(storage_slots(&layers), vec![0, 1, 1, 3]);
        assert_eq!(storage_slots(&[LayerSpec::Flatten, LayerSpec::Fc { out: 2 }]), vec![0, 0, 2]);
    }
}
