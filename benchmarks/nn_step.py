"""One training step (forward, backward, Adam) of the digits CNN and of an MLP: wengert.nn
beside PyTorch CPU eager, in the same process, float32, batch 128, as samples per second.

    .venv-bench/bin/python benchmarks/nn_step.py            # with PyTorch
    .venv/bin/python benchmarks/nn_step.py --quick          # wengert only if torch is missing

Models (identical in both libraries; PyTorch's weights are copied from wengert's and the loss
and gradients are compared before anything is timed):

* CNN (examples/nn/cnn_digits.py): conv 3×3 (1→32, same) → batch norm → ReLU → max-pool 2 →
  conv 3×3 (32→64, same) → batch norm → ReLU → max-pool 2 → flatten → dropout 0.25 →
  fully connected (256→10); input (128, 1, 8, 8);
* MLP: 64 → 256 → 256 → 10 with ReLU; input (128, 64).

Loss: softmax cross-entropy with integer labels (mean).  Optimizer: Adam, lr 1e-3.  A step
is ``value_and_grad`` of the loss with respect to the network + ``adam.update`` (wengert), or
``zero_grad`` + ``loss.backward()`` + ``Adam.step()`` (PyTorch, default for-each Adam).
Times are medians over interleaved rounds (benchmarks/timing.py).  Targets: wengert ≥ 0.7×
PyTorch's throughput on the CNN, ≥ 1.0× on the MLP.  The tables also give the minor page
faults per step (fresh memory the allocator had returned to the system: a microsecond or more
each on a small VM; how many depends on the allocator's state, which both libraries share in
this process) and the load average, since other work on a 2-core machine moves every number.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import FULL, QUICK, measure_interleaved  # noqa: E402

import wengert  # noqa: E402
import wengert.nn as nn  # noqa: E402

BATCH = 128
TARGETS = {"cnn": 0.7, "mlp": 1.0}


# ---------------------------------------------------------------------------------------------
# wengert
# ---------------------------------------------------------------------------------------------


def wengert_cnn(dropout: float = 0.25) -> nn.Network:
    return nn.Network(
        [
            nn.Conv2d(32, 3, padding="same"),
            nn.BatchNorm(),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 3, padding="same"),
            nn.BatchNorm(),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(10),
        ],
        input_shape=(1, 8, 8),
        rng=0,
    )


def wengert_mlp() -> nn.Network:
    return nn.Network(
        [nn.Linear(256), nn.ReLU(), nn.Linear(256), nn.ReLU(), nn.Linear(10)],
        input_shape=(64,),
        rng=0,
    )


def _loss(net, x, y, rng):
    logits, state = net.forward(x, rng=rng)
    return nn.losses.index_cross_entropy(logits, y), state


class WengertStep:
    """One training step; keeps the network and the optimizer state between calls."""

    def __init__(self, net: nn.Network, x: np.ndarray, y: np.ndarray) -> None:
        self.net = net
        self.opt = nn.adam(1e-3)
        self.opt_state = self.opt.init(net)
        self.x, self.y = x, y
        self.rng = np.random.default_rng(0)
        self.vg = wengert.value_and_grad(_loss, has_aux=True)

    def grads(self):
        return self.vg(self.net, self.x, self.y, self.rng)

    def __call__(self):
        (loss, state), g = self.grads()
        net, self.opt_state = self.opt.update(self.net, g, self.opt_state)
        self.net = net.with_state(state)
        return loss


# ---------------------------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------------------------


def load_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_model(torch, kind: str, net: nn.Network, dropout: float = 0.25):
    """The same model in PyTorch, with wengert's initial weights copied in."""
    tnn = torch.nn
    if kind == "cnn":
        m = tnn.Sequential(
            tnn.Conv2d(1, 32, 3, padding=1),
            tnn.BatchNorm2d(32),
            tnn.ReLU(),
            tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 3, padding=1),
            tnn.BatchNorm2d(64),
            tnn.ReLU(),
            tnn.MaxPool2d(2),
            tnn.Flatten(),
            tnn.Dropout(dropout),
            tnn.Linear(256, 10),
        )
        pairs = [
            (0, "conv2d_0"),
            (1, "batchnorm_1"),
            (4, "conv2d_4"),
            (5, "batchnorm_5"),
            (10, "linear_10"),
        ]
    else:
        m = tnn.Sequential(
            tnn.Linear(64, 256), tnn.ReLU(), tnn.Linear(256, 256), tnn.ReLU(), tnn.Linear(256, 10)
        )
        pairs = [(0, "linear_0"), (2, "linear_2"), (4, "linear_4")]
    with torch.no_grad():
        for i, name in pairs:
            p = net.params[name]
            if "weight" in p:
                m[i].weight.copy_(torch.from_numpy(p["weight"]))
                m[i].bias.copy_(torch.from_numpy(p["bias"]))
            else:
                m[i].weight.copy_(torch.from_numpy(p["gamma"]))
                m[i].bias.copy_(torch.from_numpy(p["beta"]))
    return m.float(), pairs


class TorchStep:
    def __init__(self, torch, model, x, y) -> None:
        self.torch = torch
        self.model = model.train()
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.x = torch.from_numpy(x)
        self.y = torch.from_numpy(y)
        self.lossf = torch.nn.functional.cross_entropy

    def __call__(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.lossf(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return loss


def check_against_torch(torch, kind, x, y) -> float:
    """Same weights, same batch (no dropout): max relative difference of loss and gradients."""
    net = wengert_cnn(0.0) if kind == "cnn" else wengert_mlp()
    model, pairs = torch_model(torch, kind, net, 0.0)
    model.train()
    loss_t = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss_t.backward()
    loss_t = loss_t.item()
    (loss_w, _), g = wengert.value_and_grad(_loss, has_aux=True)(net, x, y, None)
    worst = abs(float(loss_w) - loss_t) / abs(loss_t)
    for i, name in pairs:
        gw = g.params[name]
        a = gw.get("weight", gw.get("gamma"))
        b = model[i].weight.grad.numpy()
        worst = max(worst, float(np.abs(a - b).max() / (np.abs(b).max() + 1e-30)))
    return worst


# ---------------------------------------------------------------------------------------------
# Where wengert's time goes
# ---------------------------------------------------------------------------------------------


def breakdown(step: WengertStep, reps: int = 30) -> dict:
    """Median ms of: the forward pass alone (no tape), value_and_grad (forward with taping +
    backward sweep), and the Adam update."""
    x = step.x
    out = {}

    def med(fn):
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return 1e3 * float(np.median(ts))

    out["forward (no tape)"] = med(lambda: step.net.forward(x, rng=step.rng))
    out["value_and_grad"] = med(step.grads)
    (_, _), g = step.grads()
    out["adam update"] = med(lambda: step.opt.update(step.net, g, step.opt_state))
    return out


def hottest(step: WengertStep, reps: int = 100, top: int = 12) -> str:
    """cProfile of ``reps`` steps: the functions with the most time of their own."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(reps):
        step()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def page_faults(fn, reps: int = 30) -> float:
    """Minor page faults per call of ``fn`` (memory the allocator took back from the system
    between calls and touches again): on small VMs each costs a microsecond or more."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return float("nan")
    fn()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(reps):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / reps


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):  # pragma: no cover - not on POSIX
        return "?"


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="wengert.nn training step vs PyTorch CPU")
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    ap.add_argument("--only", default="cnn,mlp", help="cnn, mlp or both")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also print wengert's hottest functions")
    args = ap.parse_args(argv)
    settings = QUICK if args.quick else FULL
    torch = None if args.no_torch else load_torch()
    r = np.random.default_rng(0)
    versions = (
        f"Python {platform.python_version()}, NumPy {np.__version__}, wengert {wengert.__version__}"
    )
    if torch is not None:
        versions += f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
    print(f"# wengert.nn training step, batch {BATCH}, float32 — {datetime.date.today()}")
    print(f"# {versions}")
    if torch is None:
        print("# PyTorch not importable: wengert only (run with .venv-bench/bin/python)")
    rows = []
    status = 0
    for kind in [k.strip() for k in args.only.split(",") if k.strip()]:
        if kind == "cnn":
            x = r.random((BATCH, 1, 8, 8), dtype=np.float32)
            net = wengert_cnn()
        elif kind == "mlp":
            x = r.standard_normal((BATCH, 64), dtype=np.float32)
            net = wengert_mlp()
        else:
            raise SystemExit(f"unknown workload {kind!r}")
        y = r.integers(0, 10, BATCH)
        ws = WengertStep(net, x, y)
        fns = [("wengert", ws)]
        if torch is not None:
            diff = check_against_torch(torch, kind, x, y)
            print(
                f"# {kind}: wengert vs PyTorch loss/gradients, max relative difference {diff:.1e}"
            )
            if diff > 1e-3:
                print("# MISMATCH: the two models do not compute the same thing")
                status = 1
            model, _ = torch_model(torch, kind, net)
            fns.append(("PyTorch eager", TorchStep(torch, model, x, y)))
        load0 = _load()
        ms = measure_interleaved(fns, settings)
        base = ms[0].median_s
        print(f"\n## {kind.upper()} (target wengert ≥ {TARGETS[kind]}× PyTorch)\n")
        print(
            "| implementation | ms / step | samples / s | throughput vs PyTorch "
            "| page faults / step |"
        )
        print("|---|---:|---:|---:|---:|")
        tmed = ms[1].median_s if len(ms) > 1 else None
        for m in ms:
            ratio = f"{tmed / m.median_s:.2f}×" if tmed else "—"
            print(
                f"| {m.name} | {m.median_s * 1e3:.2f} | {BATCH / m.median_s:,.0f} | {ratio} "
                f"| {page_faults(m.fn):.0f} |"
            )
        print(f"\nload average (1 min) before / after timing: {load0} / {_load()}")
        bd = breakdown(ws)
        print(
            "\nwengert breakdown (median ms): " + ", ".join(f"{k} {v:.2f}" for k, v in bd.items())
        )
        if args.profile:
            print(hottest(ws))
        if tmed:
            rows.append((kind, tmed / base))
    for kind, ratio in rows:
        verdict = "met" if ratio >= TARGETS[kind] else "MISSED"
        print(
            f"# {kind}: wengert/PyTorch throughput {ratio:.2f}× (target {TARGETS[kind]}×): {verdict}"
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
