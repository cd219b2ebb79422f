#!/usr/bin/env python3
"""Checks that cnn-stepper's weights files and PyTorch agree, in both directions.

Needs `pip install torch safetensors numpy` (safetensors.torch saves through numpy).

    python3 scripts/pytorch_interop.py fixture
        Builds the small test network as a torch.nn.Sequential with torch.manual_seed(0),
        saves its state_dict to crates/cnn-stepper-core/tests/fixtures/torch_small.safetensors
        and its logits on three fixed inputs to torch_small_logits.json beside it; the same
        again with a ReLU after conv2 as torch_small_relu_conv2.*.
        `cargo test -p cnn-stepper-core --test weights` loads them and checks that the Rust
        network computes the same logits.

    python3 scripts/pytorch_interop.py check WEIGHTS [--expect LOGITS_JSON] [--images N]
        Loads a weights file written by cnn-stepper (or any file in the Sequential's naming)
        into the equivalent Sequential, prints its logits and classes on the fixed inputs, and,
        with --expect (a JSON file like the one the ignored Rust test
        `full_size_network_for_pytorch` writes), compares them and exits 1 on a mismatch.

The fixed inputs: pixel i of the flattened [N, C, H, W] batch is ((i * 37 + 11) % 101) / 50 - 1,
computed in float32: deterministic values in [-1, 1] that differ between images and pixels.
Signed on purpose: with inputs in [0, 1] the seed-0 small network's conv1 filters (mostly negative
weights, negative biases) output zero after the ReLU almost everywhere, and the logits would be
little more than the biases, which would check the convolutions' layout weakly.
"""

import argparse
import json
import math
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "cnn-stepper-core", "tests", "fixtures")
FORMAT = "cnn-stepper weights v1"
OUR_NAMES = ["conv1", "conv2", "fc1", "fc2"]

# The small configuration of the Rust tests: 1×8×8 input, 2 and 3 filters, 3×3 kernels,
# padding 1, stride 1, 5 hidden units, 4 classes, no ReLU after conv2.
SMALL = dict(
    in_channels=1, in_height=8, in_width=8, conv1_filters=2, conv2_filters=3, kernel=3,
    stride=1, pad=1, hidden=5, classes=4, relu_after_conv2=False,
)


def fixed_inputs(n, c, h, w):
    """The documented fixed batch [n, c, h, w] (float32)."""
    i = torch.arange(n * c * h * w, dtype=torch.int64)
    return (((i * 37 + 11) % 101).to(torch.float32) / 50.0 - 1.0).reshape(n, c, h, w)


def conv_out(size, cfg):
    return (size + 2 * cfg["pad"] - cfg["kernel"]) // cfg["stride"] + 1


def build(cfg):
    """The Sequential with cnn-stepper's layer order and PyTorch's default init."""
    k, s, p = cfg["kernel"], cfg["stride"], cfg["pad"]
    h2 = conv_out(conv_out(cfg["in_height"], cfg), cfg)
    w2 = conv_out(conv_out(cfg["in_width"], cfg), cfg)
    layers = [
        torch.nn.Conv2d(cfg["in_channels"], cfg["conv1_filters"], k, stride=s, padding=p),
        torch.nn.ReLU(),
        torch.nn.Conv2d(cfg["conv1_filters"], cfg["conv2_filters"], k, stride=s, padding=p),
    ]
    if cfg["relu_after_conv2"]:
        layers.append(torch.nn.ReLU())
    layers += [
        torch.nn.Flatten(),
        torch.nn.Linear(cfg["conv2_filters"] * h2 * w2, cfg["hidden"]),
        torch.nn.ReLU(),
        torch.nn.Linear(cfg["hidden"], cfg["classes"]),
    ]
    return torch.nn.Sequential(*layers)


def sequential_indices(relu_after_conv2):
    return [0, 2, 5, 7] if relu_after_conv2 else [0, 2, 4, 6]


def infer_config(tensors, relu_after_conv2):
    """What cnn-stepper infers from shapes alone: stride 1, pad (k-1)/2, square input."""
    f1, c, k, _ = tensors["conv1.weight"].shape
    f2 = tensors["conv2.weight"].shape[0]
    hidden, flat = tensors["fc1.weight"].shape
    classes = tensors["fc2.weight"].shape[0]
    pad = (k - 1) // 2
    side = math.isqrt(flat // f2)
    side += 2 * (k - 1 - 2 * pad)
    return dict(
        in_channels=c, in_height=side, in_width=side, conv1_filters=f1, conv2_filters=f2, kernel=k,
        stride=1, pad=pad, hidden=hidden, classes=classes, relu_after_conv2=relu_after_conv2,
    )


def load(path):
    """A weights file (our names or Sequential indices) as (Sequential, config)."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        raw = {name: f.get_tensor(name) for name in f.keys() if not name.startswith("session.")}
    if meta.get("format") == FORMAT:
        cfg = json.loads(meta["config"])
    else:
        cfg = None
    if "conv1.weight" in raw:
        ours = raw
        relu = cfg["relu_after_conv2"] if cfg else False
    else:
        relu = "7.weight" in raw
        ours = {}
        for our, idx in zip(OUR_NAMES, sequential_indices(relu)):
            for kind in ("weight", "bias"):
                ours[f"{our}.{kind}"] = raw[f"{idx}.{kind}"]
    if cfg is None:
        cfg = infer_config(ours, relu)
    model = build(cfg)
    state = {}
    for our, idx in zip(OUR_NAMES, sequential_indices(cfg["relu_after_conv2"])):
        for kind in ("weight", "bias"):
            state[f"{idx}.{kind}"] = ours[f"{our}.{kind}"].to(torch.float32)
    model.load_state_dict(state, strict=True)
    return model.eval(), cfg


def fixture(_args):
    """Writes the plain small network and, to cover the shifted indices, one with a ReLU after
    conv2 (state-dict keys 0, 2, 5, 7 instead of 0, 2, 4, 6)."""
    os.makedirs(FIXTURES, exist_ok=True)
    for stem, relu in (("torch_small", False), ("torch_small_relu_conv2", True)):
        cfg = dict(SMALL, relu_after_conv2=relu)
        torch.manual_seed(0)
        model = build(cfg).eval()
        weights = os.path.join(FIXTURES, f"{stem}.safetensors")
        save_file(model.state_dict(), weights)
        os.chmod(weights, 0o644)  # save_file writes through a private temp file (mode 600)
        x = fixed_inputs(3, 1, cfg["in_height"], cfg["in_width"])
        with torch.no_grad():
            logits = model(x)
        out = {
            "torch_version": torch.__version__,
            "model": repr(model),
            "inputs_formula": "((i * 37 + 11) % 101) / 50 - 1 over the flattened [3, 1, 8, 8] batch, float32",
            "input_shape": list(x.shape),
            "inputs": x.flatten().tolist(),
            "logits": logits.tolist(),
            "classes": logits.argmax(dim=1).tolist(),
        }
        path = os.path.join(FIXTURES, f"{stem}_logits.json")
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print(f"wrote {weights} and {path}; classes {out['classes']}")


def check(args):
    model, cfg = load(args.weights)
    print("config:", json.dumps(cfg))
    expect = None
    if args.expect:
        with open(args.expect) as f:
            expect = json.load(f)
        n = len(expect["logits"])
    else:
        n = args.images
    shape = (n, cfg["in_channels"], cfg["in_height"], cfg["in_width"])
    x = fixed_inputs(*shape)
    if expect and "inputs" in expect:
        given = torch.tensor(expect["inputs"], dtype=torch.float32).reshape(shape)
        if not torch.equal(given, x):
            print("note: using the inputs stored in", args.expect)
        x = given
    with torch.no_grad():
        logits = model(x).to(torch.float64)
    classes = logits.argmax(dim=1).tolist()
    for i, row in enumerate(logits.tolist()):
        print(f"image {i}: class {classes[i]}  logits {[f'{v:.7g}' for v in row]}")
    if expect is None:
        return 0
    want = torch.tensor(expect["logits"], dtype=torch.float64)
    diff = (logits - want).abs()
    rel = diff / want.abs().clamp_min(1e-12)
    max_abs = diff.max().item()
    max_rel = rel.max().item()
    same_classes = classes == expect["classes"]
    print(f"max |torch - rust| = {max_abs:.3e}, max relative = {max_rel:.3e}, "
          f"rust classes {expect['classes']}, same classes: {same_classes}")
    ok = same_classes and bool((diff <= args.tol * (1 + want.abs())).all())
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fixture", help="write tests/fixtures/torch_small.*")
    c = sub.add_parser("check", help="run a cnn-stepper weights file in PyTorch")
    c.add_argument("weights")
    c.add_argument("--expect", help="JSON with the Rust side's inputs, logits and classes")
    c.add_argument("--images", type=int, default=3, help="fixed inputs to run without --expect")
    c.add_argument("--tol", type=float, default=1e-4, help="allowed |diff| / (1 + |logit|)")
    args = parser.parse_args()
    return fixture(args) if args.command == "fixture" else check(args)


if __name__ == "__main__":
    sys.exit(main() or 0)
