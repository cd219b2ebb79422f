#!/usr/bin/env python3
"""Checks cnn-stepper's layer engine (`engine::model`) against PyTorch, in both directions.

Needs `pip install torch safetensors numpy`.

    python3 scripts/pytorch_model_check.py fixture
        For each network in FIXTURES (small lines that together use every layer kind and
        option), builds the equivalent torch.nn.Sequential with torch.manual_seed(0) and
        PyTorch's default initialisation, and writes beside the Rust tests:
          crates/cnn-stepper-core/tests/fixtures/torch_model_<name>.safetensors
              the state_dict (float32, names `<index>.weight` / `<index>.bias`);
          crates/cnn-stepper-core/tests/fixtures/torch_model_<name>.json
              the line, the input shape, the fixed inputs and labels, the hyper-parameters, and
              for float32 and for float64 (the same float32 weights and inputs, cast): the
              logits, the losses, the gradient of every parameter, and the parameters after
              one and after two training steps on the same batch with SGD with momentum and
              with Adam (with the loss before each step).
        `cargo test -p cnn-stepper-core --test model_torch` loads them and compares.

    python3 scripts/pytorch_model_check.py files
        For each network in FILES_LINES (a small one using every layer kind, and LeNet-5 on
        1×28×28), builds the torch.nn.Sequential with torch.manual_seed(0) and PyTorch's default
        initialisation and writes beside the Rust tests:
          crates/cnn-stepper-core/tests/fixtures/torch_file_<name>.safetensors
              the state dict, saved with safetensors.torch.save_file (no metadata);
          crates/cnn-stepper-core/tests/fixtures/torch_file_<name>.json
              the line, the input shape, the classes and PyTorch's float32 logits and predicted
              classes on the fixed inputs.
        `cargo test -p cnn-stepper-core --test model_files_torch` loads them with
        `weights::load_model` (the line given, as `eval --model` gives it) and compares.

    python3 scripts/pytorch_model_check.py check WEIGHTS [--model LINE --input C,H,W]
            [--images N] [--expect JSON] [--tol T]
        The reverse direction: loads a safetensors file that cnn-stepper wrote (names
        `<index>.weight` / `<index>.bias`, any float dtype) into the equivalent Sequential and
        prints PyTorch's logits on the fixed inputs. A model file names its network in its
        metadata ("model": the line, "input": C×H×W), so --model and --input are only needed for
        files without it. With --expect (the JSON the Rust tests write: the test
        `model_files_torch::our_model_files_load_in_pytorch`, or the ignored
        `model_torch::sequential_weights_for_pytorch`) it compares and exits 1 on a mismatch.

The loss is the mean cross-entropy plus 0.5·reg·ΣW² over the weights of every Linear (not
their biases, not the convolutions), as cnn-stepper defines it; its gradient reg·W therefore
reaches both optimizers through autograd (for Adam this is Adam(weight_decay=reg) restricted to
the Linear weights, not AdamW).

Hyper-parameters: cnn-stepper keeps lr, momentum and reg as float32 (`engine::Hyper`), so the
script uses those float32 values (0.1 → 0.10000000149011612, …) in both precisions; Adam's
β1 = 0.9, β2 = 0.999, ε = 1e-8 are float64 on both sides.

SGD with momentum: cnn-stepper's update (`engine::params::sgd_update`, `model::optim::sgd_step`)
is `v = μ·v − lr·g; p = p + v`, while torch.optim.SGD does `b = μ·b + g; p = p − lr·b` (with
b = g on the first step). For a constant lr the two are the same sequence (v = −lr·b), but
they round differently, so the expected values are computed here with cnn-stepper's formula
from PyTorch's gradients; the script also runs torch.optim.SGD and prints how far it is from
them (a few float32 ulps in float32, ~1e-17 in float64). Adam is torch.optim.Adam itself
(foreach=False: the single-tensor implementation cnn-stepper follows).

The fixed inputs (as in scripts/pytorch_interop.py): pixel i of the flattened [N, C, H, W] batch
is ((i * 37 + 11) % 101) / 50 - 1, computed in float32. Labels: image n has class (3n + 1) mod K.
"""

import argparse
import json
import os
import re
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "cnn-stepper-core", "tests", "fixtures")

# name: (line, input (C, H, W), classes, images). Together: conv with stride 2 and padding,
# 1×1 conv, conv whose stride leaves a remainder, maxpool and avgpool with a remainder and with
# stride ≠ window (overlapping and skipping), relu, tanh, sigmoid, flatten first and after maps,
# several fc.
FIXTURES_LINES = {
    # 12 → conv s2 p1 → 6 → maxpool 3 s2 → 2 (row/col 5 never read) → 1×1 conv → fc, fc.
    "strided": (
        "conv(4,3,stride=2,pad=1), relu, maxpool(3,stride=2), conv(6,1), tanh, flatten, fc(8), sigmoid, fc(3)",
        (1, 12, 12), 3, 4,
    ),
    # 3 channels; 10 → conv 3 → 8 → avgpool 3 → 2 (rows/cols 6, 7 never read) → 1×1 conv → fc, fc.
    "avg": (
        "conv(5,3), sigmoid, avgpool(3), conv(4,1), relu, flatten, fc(6), tanh, fc(4)",
        (3, 10, 10), 4, 4,
    ),
    # 12 → conv 5 p2 → 12 → avgpool 3 s2 → 5 (row/col 11 never read) → conv 3 s2 p1 → 3 →
    # maxpool 2 s1 → 2 (overlapping windows) → three fc.
    "overlap": (
        "conv(3,5,pad=2), relu, avgpool(3,stride=2), conv(4,3,stride=2,pad=1), tanh, maxpool(2,stride=1), "
        "flatten, fc(10), relu, fc(6), relu, fc(2)",
        (1, 12, 12), 2, 3,
    ),
    # 3 channels; 10 → conv 4 s3 → 3 (row/col 9 never read) → maxpool 2 → 1 (remainder) → fc.
    "remainder": (
        "conv(6,4,stride=3), relu, maxpool(2), flatten, fc(5), sigmoid, fc(3)",
        (3, 10, 10), 3, 4,
    ),
    # No maps at all: flatten first, then a multi-layer perceptron.
    "mlp": (
        "flatten, fc(8), tanh, fc(5), sigmoid, fc(3)",
        (2, 4, 4), 3, 4,
    ),
}

# name: (line, input (C, H, W), classes, images): state dicts for `weights::load_model`.
FILES_LINES = {
    # 12 → conv s2 p1 → 6 → maxpool 2 → 3 → conv 3 p1 → 3 → avgpool 2 s1 → 2 → fc, fc: every
    # layer kind, a conv with stride and padding, both pools.
    "kinds": (
        "conv(4,3,stride=2,pad=1), tanh, maxpool(2), conv(5,3,pad=1), sigmoid, avgpool(2,stride=1), flatten, "
        "fc(6), relu, fc(3)",
        (1, 12, 12), 3, 4,
    ),
    "lenet5": (
        "conv(6,5,pad=2), relu, maxpool(2), conv(16,5), relu, maxpool(2), flatten, fc(120), relu, fc(84), relu, fc(10)",
        (1, 28, 28), 10, 4,
    ),
}

SGD_LR = float(np.float32(0.1))
MOMENTUM = float(np.float32(0.9))
ADAM_LR = float(np.float32(0.01))
REG = float(np.float32(0.01))
BETAS = (0.9, 0.999)
EPS = 1e-8

LAYER = re.compile(r"^\s*([a-zA-Z]+)\s*(?:\((.*)\))?\s*$")


def parse_line(line):
    """cnn-stepper's model line as [(kind, positional numbers, {key: number})]."""
    layers = []
    depth, start, items = 0, 0, []
    for i, ch in enumerate(line):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(line[start:i])
            start = i + 1
    items.append(line[start:])
    for item in items:
        m = LAYER.match(item)
        if not m:
            raise SystemExit(f"cannot read layer {item.strip()!r} of {line!r}")
        kind, args = m.group(1).lower(), (m.group(2) or "").strip()
        pos, kw = [], {}
        try:
            for a in filter(None, (x.strip() for x in args.split(","))):
                if "=" in a:
                    k, v = a.split("=", 1)
                    kw[k.strip().lower()] = int(v)
                else:
                    pos.append(int(a))
        except ValueError:
            raise SystemExit(f"cannot read the numbers of layer {item.strip()!r} of {line!r}") from None
        layers.append((kind, pos, kw))
    return layers


def build(line, input_shape):
    """The torch.nn.Sequential equivalent to `line` on images of `input_shape` (C, H, W),
    created in line order so that torch.manual_seed fixes its initial parameters."""
    shape = list(input_shape)
    modules = []
    for kind, pos, kw in parse_line(line):
        if kind == "conv":
            f, k = pos
            s, p = kw.get("stride", 1), kw.get("pad", 0)
            modules.append(torch.nn.Conv2d(shape[0], f, k, stride=s, padding=p))
            shape = [f, (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]
        elif kind in ("maxpool", "avgpool"):
            (k,) = pos
            s = kw.get("stride", k)
            cls = torch.nn.MaxPool2d if kind == "maxpool" else torch.nn.AvgPool2d
            modules.append(cls(k, stride=s))
            shape = [shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1]
        elif kind == "relu":
            modules.append(torch.nn.ReLU())
        elif kind == "tanh":
            modules.append(torch.nn.Tanh())
        elif kind == "sigmoid":
            modules.append(torch.nn.Sigmoid())
        elif kind == "flatten":
            modules.append(torch.nn.Flatten())
            shape = [int(np.prod(shape))]
        elif kind == "fc":
            (out,) = pos
            modules.append(torch.nn.Linear(shape[0], out))
            shape = [out]
        else:
            raise SystemExit(f"unknown layer kind {kind!r} in {line!r}")
    return torch.nn.Sequential(*modules)


def fixed_inputs(n, c, h, w):
    """The documented fixed batch [n, c, h, w] (float32)."""
    i = torch.arange(n * c * h * w, dtype=torch.int64)
    return (((i * 37 + 11) % 101).to(torch.float32) / 50.0 - 1.0).reshape(n, c, h, w)


def labels_for(n, classes):
    return torch.tensor([(3 * i + 1) % classes for i in range(n)], dtype=torch.int64)


def linear_weights(model):
    return [m.weight for m in model if isinstance(m, torch.nn.Linear)]


def losses(model, x, y):
    """(data loss, L2 term, logits): mean cross-entropy and 0.5·reg·ΣW² over the Linear weights."""
    logits = model(x)
    data = torch.nn.functional.cross_entropy(logits, y)
    reg = 0.5 * REG * sum((w * w).sum() for w in linear_weights(model))
    return data, reg, logits


def values(t):
    """A tensor as a flat list of Python floats that round-trip: float64 values exactly,
    float32 values as their shortest float32 decimal (read back as float32, the same value)."""
    t = t.detach().flatten()
    if t.dtype == torch.float32:
        return [float(str(v)) for v in t.numpy()]
    return t.tolist()


def named_values(model):
    return {name: values(p) for name, p in model.named_parameters()}


def train_two_steps(state, line, input_shape, x, y, dtype, optimizer):
    """Two training steps on the same batch from `state`: [(loss before the step, params after)]."""
    model = build(line, input_shape).to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()})
    params = list(model.parameters())
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=ADAM_LR, betas=BETAS, eps=EPS, foreach=False)
    else:
        opt = None
        velocity = [torch.zeros_like(p) for p in params]
    out = []
    for _ in range(2):
        model.zero_grad()
        data, reg, _ = losses(model, x.to(dtype), y)
        loss = data + reg
        loss.backward()
        if opt is not None:
            opt.step()
        else:
            with torch.no_grad():
                # cnn-stepper's form: v = μ·v − lr·g; p = p + v.
                for p, v in zip(params, velocity):
                    v.mul_(MOMENTUM).sub_(SGD_LR * p.grad)
                    p.add_(v)
        out.append({"loss": loss.item(), "params": named_values(model)})
    return out


def torch_sgd_two_steps(state, line, input_shape, x, y, dtype):
    """The same two SGD steps with torch.optim.SGD, for the printed comparison."""
    model = build(line, input_shape).to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()})
    opt = torch.optim.SGD(model.parameters(), lr=SGD_LR, momentum=MOMENTUM, foreach=False)
    for _ in range(2):
        model.zero_grad()
        data, reg, _ = losses(model, x.to(dtype), y)
        (data + reg).backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def reference(state, line, input_shape, x, y, dtype):
    model = build(line, input_shape).to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()})
    data, reg, logits = losses(model, x.to(dtype), y)
    (data + reg).backward()
    out = {
        "logits": [values(row) for row in logits],
        "data_loss": data.item(),
        "reg_loss": reg.item(),
        "loss": (data + reg).item(),
        "grads": {name: values(p.grad) for name, p in model.named_parameters()},
        "sgd": train_two_steps(state, line, input_shape, x, y, dtype, "sgd"),
        "adam": train_two_steps(state, line, input_shape, x, y, dtype, "adam"),
    }
    theirs = torch_sgd_two_steps(state, line, input_shape, x, y, dtype)
    ours = out["sgd"][1]["params"]
    gap = max(
        (theirs[k] - torch.tensor(ours[k], dtype=dtype).reshape(theirs[k].shape)).abs().max().item() for k in ours
    )
    print(f"  {str(dtype):14} loss {out['loss']:.6f}; torch.optim.SGD vs v = μv − lr·g after two steps: "
          f"max |diff| {gap:.3e}")
    return out


def fixture(_args):
    os.makedirs(FIXTURES, exist_ok=True)
    for name, (line, input_shape, classes, n) in FIXTURES_LINES.items():
        torch.manual_seed(0)
        model = build(line, input_shape)
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        stem = os.path.join(FIXTURES, f"torch_model_{name}")
        save_file(state, stem + ".safetensors")
        os.chmod(stem + ".safetensors", 0o644)  # save_file writes a private temp file (mode 600)
        x = fixed_inputs(n, *input_shape)
        y = labels_for(n, classes)
        print(f"{name}: {line} on {input_shape}, {classes} classes; {sum(v.numel() for v in state.values())} "
              f"parameters")
        doc = {
            "torch_version": torch.__version__,
            "model": line,
            "torch_model": repr(model),
            "input_shape": [n, *input_shape],
            "classes": classes,
            "inputs_formula": "((i * 37 + 11) % 101) / 50 - 1 over the flattened batch, float32",
            "inputs": values(x),
            "labels": y.tolist(),
            "hyper": {"sgd_lr": SGD_LR, "momentum": MOMENTUM, "adam_lr": ADAM_LR, "reg": REG,
                      "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS},
            "param_names": list(state.keys()),
            "float32": reference(state, line, input_shape, x, y, torch.float32),
            "float64": reference(state, line, input_shape, x, y, torch.float64),
        }
        with open(stem + ".json", "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print(f"  wrote {stem}.safetensors and .json")


def files(_args):
    os.makedirs(FIXTURES, exist_ok=True)
    for name, (line, input_shape, classes, n) in FILES_LINES.items():
        torch.manual_seed(0)
        model = build(line, input_shape).eval()
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        stem = os.path.join(FIXTURES, f"torch_file_{name}")
        save_file(state, stem + ".safetensors")
        os.chmod(stem + ".safetensors", 0o644)  # save_file writes a private temp file (mode 600)
        x = fixed_inputs(n, *input_shape)
        with torch.no_grad():
            logits = model(x)
        doc = {
            "torch_version": torch.__version__,
            "model": line,
            "input_shape": [n, *input_shape],
            "classes": classes,
            "inputs_formula": "((i * 37 + 11) % 101) / 50 - 1 over the flattened batch, float32",
            "logits": [values(row) for row in logits],
            "predicted": logits.argmax(dim=1).tolist(),
        }
        with open(stem + ".json", "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        size = os.path.getsize(stem + ".safetensors")
        print(f"{name}: {line} on {input_shape}; wrote {stem}.safetensors ({size} bytes) and .json")


def read_input(text):
    """`1×28×28` (a model file's "input") or `1,28,28` (--input) as (C, H, W)."""
    parts = re.split(r"[×xX,]", text)
    try:
        shape = tuple(int(v) for v in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise SystemExit(f"input shape {text!r}: give C,H,W")
    return shape


def check(args):
    with safe_open(args.weights, framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k).to(torch.float32) for k in f.keys() if not k.startswith("session.")}
    line = args.model or meta.get("model")
    input_text = args.input or meta.get("input")
    if line is None or input_text is None:
        raise SystemExit(f"{args.weights} does not name its network (no \"model\" and \"input\" metadata): "
                         "give --model and --input")
    input_shape = read_input(input_text)
    model = build(line, input_shape)
    if "classes" in meta:
        print(f"classes: {json.loads(meta['classes'])}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise SystemExit(f"{args.weights} does not hold the tensors of `{line}` on {input_text}: {e}")
    model.eval()
    expect = None
    if args.expect:
        with open(args.expect) as f:
            expect = json.load(f)
    n = len(expect["logits"]) if expect else args.images
    x = fixed_inputs(n, *input_shape)
    if expect and "inputs" in expect:
        given = torch.tensor(expect["inputs"], dtype=torch.float32).reshape(x.shape)
        if not torch.equal(given, x):
            print("note: using the inputs stored in", args.expect)
        x = given
    print(f"model: {model}")
    with torch.no_grad():
        logits = model(x).to(torch.float64)
    classes = logits.argmax(dim=1).tolist()
    for i, row in enumerate(logits.tolist()):
        print(f"image {i}: class {classes[i]}  logits {[f'{v:.7g}' for v in row]}")
    if expect is None:
        return 0
    want = torch.tensor(expect["logits"], dtype=torch.float64)
    diff = (logits - want).abs()
    max_abs = diff.max().item()
    max_rel = (diff.max() / want.abs().max()).item()
    same = classes == expect["classes"]
    print(f"max |torch - rust| = {max_abs:.3e} ({max_rel:.3e} of the largest logit), "
          f"rust classes {expect['classes']}, same classes: {same}")
    ok = same and bool((diff <= args.tol * (1 + want.abs())).all())
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fixture", help="write tests/fixtures/torch_model_*")
    sub.add_parser("files", help="write tests/fixtures/torch_file_* (state dicts for load_model)")
    c = sub.add_parser("check", help="run a weights file cnn-stepper wrote for a model line in PyTorch")
    c.add_argument("weights")
    c.add_argument("--model", help="the model line, e.g. 'conv(6,5,pad=2), relu, ..., fc(10)' "
                   "(default: the file's \"model\" metadata)")
    c.add_argument("--input", help="one image's C,H,W, e.g. 1,28,28 (default: the file's \"input\" metadata)")
    c.add_argument("--expect", help="JSON with the Rust side's inputs, logits and classes")
    c.add_argument("--images", type=int, default=3, help="fixed inputs to run without --expect")
    c.add_argument("--tol", type=float, default=1e-4, help="allowed |diff| / (1 + |logit|)")
    args = parser.parse_args()
    return {"fixture": fixture, "files": files, "check": check}[args.command](args)


if __name__ == "__main__":
    sys.exit(main() or 0)
