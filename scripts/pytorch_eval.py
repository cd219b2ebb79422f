#!/usr/bin/env python3
"""Test accuracy of a cnn-stepper weights or session file in PyTorch.

    python3 scripts/pytorch_eval.py WEIGHTS --data DIR [--model LINE]

Reads the file with safetensors, drops the `session.*` tensors (momentum, curves), builds the
torch.nn.Sequential of the file's model line (its `model` metadata, or --model for a state dict
without it) with pytorch_model_check.build, loads the state dict strictly, and classifies the
folder's t10k IDX files (raw or .gz) with pixels scaled to [0, 1] as cnn-stepper does. Prints
`accuracy X% (correct/count)`: the number `cnn-stepper eval` prints for the same file.
"""

import argparse
import gzip
import json
import os
import sys

import numpy as np
import torch
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_model_check import build  # noqa: E402

NAMED = {
    "post": "conv(16,5,pad=2), relu, conv(32,5,pad=2), flatten, fc(100), relu, fc(10)",
    "post-relu": "conv(16,5,pad=2), relu, conv(32,5,pad=2), relu, flatten, fc(100), relu, fc(10)",
    "lenet5": "conv(6,5,pad=2), relu, maxpool(2), conv(16,5), relu, maxpool(2), flatten, fc(120), relu, "
    "fc(84), relu, fc(10)",
    "tiny": "conv(16,5,pad=2), relu, maxpool(2), conv(32,5,pad=2), relu, maxpool(2), flatten, fc(10)",
}


def idx(folder, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            data = open(path, "rb").read()
            return gzip.decompress(data) if name.endswith(".gz") else data
    raise SystemExit(f"{folder}: no {stem}(.gz)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights")
    parser.add_argument("--data", required=True, help="MNIST-style folder with t10k-images/labels IDX files")
    parser.add_argument("--model", help="the model line (or name) of a file without `model` metadata")
    args = parser.parse_args()

    with safe_open(args.weights, framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("session.")}
    line = args.model or meta.get("model")
    if line is None:
        raise SystemExit(f"{args.weights}: no `model` metadata; give --model")
    line = NAMED.get(line.strip(), line)
    c, h, w = (int(v) for v in meta.get("input", "1×28×28").replace("x", "×").split("×"))

    images = idx(args.data, "t10k-images-idx3-ubyte")
    labels = idx(args.data, "t10k-labels-idx1-ubyte")
    count = int.from_bytes(labels[4:8], "big")
    x = np.frombuffer(images, dtype=np.uint8, offset=16).reshape(count, c, h, w).astype(np.float32) / 255.0
    y = np.frombuffer(labels, dtype=np.uint8, offset=8).astype(np.int64)

    torch.set_num_threads(2)
    model = build(line, (c, h, w))
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(torch.from_numpy(x[i : i + 1000])).argmax(1) for i in range(0, count, 1000)])
    correct = int((predicted.numpy() == y).sum())
    print(json.dumps({"model": line, "count": count, "correct": correct}))
    print(f"accuracy {100.0 * correct / count:.2f}% ({correct}/{count})")


if __name__ == "__main__":
    main()
