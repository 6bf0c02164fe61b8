"""Convolution speed of ``wengert.nn.functional`` on digits-sized batches (float32).

Times conv2d forward alone and forward + backward (all cotangents) with 3×3 "same" kernels
for (128, 1, 8, 8) → 16, (128, 16, 8, 8) → 32 and (128, 32, 4, 4) → 64 channels, and one
training step (loss and gradient, no optimizer) of the digits CNN of benchmarks/nn_step.py
written with the functional ops.  PyTorch CPU is timed beside it when it is installed.

    .venv/bin/python benchmarks/conv_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import FULL, QUICK, measure_interleaved  # noqa: E402

import wengert  # noqa: E402
import wengert.nn.functional as F  # noqa: E402
import wengert.nn.losses as L  # noqa: E402

try:
    import torch
except ImportError:  # PyTorch is optional here
    torch = None


def conv_cases(rng):
    for cin, cout, side in ((1, 16, 8), (16, 32, 8), (32, 64, 4)):
        x = rng.standard_normal((128, cin, side, side)).astype(np.float32)
        w = (rng.standard_normal((cout, cin, 3, 3)) * 0.1).astype(np.float32)
        b = np.zeros(cout, np.float32)
        name = f"conv2d (128,{cin},{side},{side})->{cout} 3x3 same"

        def fwd(x=x, w=w, b=b):
            return F.conv2d(x, w, b, padding=1)

        def loss(x, w, b):
            return wengert.numpy.sum(F.conv2d(x, w, b, padding=1))

        g = wengert.grad(loss, (0, 1, 2))
        yield name, fwd, lambda x=x, w=w, b=b, g=g: g(x, w, b), (x, w, b)


def cnn(rng):
    """conv(1→32) batch-norm relu max-pool, conv(32→64) batch-norm relu max-pool, dense
    256→10, cross-entropy with integer labels (benchmarks/nn_step.py's CNN, without dropout)."""
    x = rng.standard_normal((128, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    p = {
        "w1": (rng.standard_normal((32, 1, 3, 3)) * 0.3).astype(np.float32),
        "b1": np.zeros(32, np.float32),
        "g1": np.ones(32, np.float32),
        "be1": np.zeros(32, np.float32),
        "w2": (rng.standard_normal((64, 32, 3, 3)) * 0.06).astype(np.float32),
        "b2": np.zeros(64, np.float32),
        "g2": np.ones(64, np.float32),
        "be2": np.zeros(64, np.float32),
        "w3": (rng.standard_normal((10, 256)) * 0.06).astype(np.float32),
        "b3": np.zeros(10, np.float32),
    }

    def loss(p):
        h = F.conv2d(x, p["w1"], p["b1"], padding=1)
        h = F.max_pool2d(F.relu(F.batch_norm(h, p["g1"], p["be1"], None, None, True)[0]), 2)
        h = F.conv2d(h, p["w2"], p["b2"], padding=1)
        h = F.max_pool2d(F.relu(F.batch_norm(h, p["g2"], p["be2"], None, None, True)[0]), 2)
        return L.index_cross_entropy(F.fully_connect(h.reshape(128, -1), p["w3"], p["b3"]), y)

    step = wengert.value_and_grad(loss)
    return lambda: step(p), (x, y, p)


def torch_versions(cases, cnn_data):
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = []
    for name, _, _, (x, w, b) in cases:
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))

        def fwd(tx=tx, tw=tw, tb=tb):
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, tb, padding=1)

        def fb(tx=tx, tw=tw, tb=tb):
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, padding=1).sum().backward()

        out += [(f"torch {name} forward", fwd), (f"torch {name} fwd+bwd", fb)]
    x, y, p = cnn_data
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx, ty = torch.tensor(x), torch.tensor(y)
    tf = torch.nn.functional

    def step():
        for v in tp.values():
            v.grad = None
        h = tf.conv2d(tx, tp["w1"], tp["b1"], padding=1)
        h = tf.max_pool2d(tf.relu(tf.batch_norm(h, None, None, tp["g1"], tp["be1"], True)), 2)
        h = tf.conv2d(h, tp["w2"], tp["b2"], padding=1)
        h = tf.max_pool2d(tf.relu(tf.batch_norm(h, None, None, tp["g2"], tp["be2"], True)), 2)
        tf.cross_entropy(tf.linear(h.reshape(128, -1), tp["w3"], tp["b3"]), ty).backward()

    out.append(("torch CNN training step", step))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples (a rough figure)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cases = list(conv_cases(rng))
    step, data = cnn(rng)
    fns = []
    for name, fwd, fb, _ in cases:
        fns += [(f"{name} forward", fwd), (f"{name} fwd+bwd", fb)]
    fns.append(("CNN training step", step))
    if torch is not None:
        fns += torch_versions(cases, data)
    for m in measure_interleaved(fns, QUICK if args.quick else FULL):
        print(f"{m.name:55s} {m.median_s * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
