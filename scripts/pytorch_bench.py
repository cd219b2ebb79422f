#!/usr/bin/env python3
"""PyTorch's speed on the same training step as `cnn-stepper bench`, to run beside it.

Needs `pip install torch safetensors numpy` (it reads model lines with
pytorch_model_check.py's `build`). The step is the one `bench` times: forward, softmax cross-entropy
plus 0.5·reg·ΣW² over the Linear weights, backward, SGD with momentum (lr 0.01, momentum 0.9,
reg 1e-3, He init), on 2 threads, float32. Run both in one session so machine drift cancels:

    cargo run --release -- bench --engine fast --batch 8 32 128
    python3 scripts/pytorch_bench.py --model post --batch 8 32 128

--model takes a named network (post, post-relu, lenet5) or a line in cnn-stepper's layer
syntax, e.g. "conv(6,5,pad=2), relu, maxpool(2), flatten, fc(10)". The input is 1×28×28 with
10 classes (MNIST). Prints one `batch N: X images/s` line per batch size (the median step over
at least --secs seconds after a warm-up), as `bench` does.
"""

import argparse
import statistics
import time

import torch
from torch import nn

# The same reading of a model line as the PyTorch checks of the layer engine use.
from pytorch_model_check import build

NAMED = {
    "post": "conv(16,5,pad=2), relu, conv(32,5,pad=2), flatten, fc(100), relu, fc(10)",
    "post-relu": "conv(16,5,pad=2), relu, conv(32,5,pad=2), relu, flatten, fc(100), relu, fc(10)",
    "lenet5": "conv(6,5,pad=2), relu, maxpool(2), conv(16,5), relu, maxpool(2), flatten, "
    "fc(120), relu, fc(84), relu, fc(10)",
}

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="post")
    ap.add_argument("--batch", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--secs", type=float, default=3.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = build(NAMED.get(a.model, a.model), (1, 28, 28))
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    linears = [m.weight for m in model if isinstance(m, nn.Linear)]
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    reg = 1e-3
    print(f"PyTorch {torch.__version__}, {a.threads} threads, model: {NAMED.get(a.model, a.model)}")
    for n in a.batch:
        x = (torch.arange(n * 28 * 28, dtype=torch.float32).reshape(n, 1, 28, 28) * 7919 % 255) / 255
        y = torch.arange(n) % 10

        def step():
            opt.zero_grad(set_to_none=False)
            loss = nn.functional.cross_entropy(model(x), y) + 0.5 * reg * sum((w * w).sum() for w in linears)
            loss.backward()
            opt.step()

        for _ in range(3):
            step()
        times, started = [], time.perf_counter()
        while len(times) < 3 or (time.perf_counter() - started < a.secs and len(times) < 200):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"batch {n}: {n / med:.0f} images/s ({med * 1000:.1f} ms/step)")


if __name__ == "__main__":
    main()
