"""dlaccelerate's speed-up: ``dlfeval(fun, ...)`` against ``dlfeval(dlaccelerate(fun), ...)``
in the same run, interleaved medians (benchmarks/timing.py), float32.

    .venv/bin/python benchmarks/dl_accelerate.py            # full
    .venv/bin/python benchmarks/dl_accelerate.py --quick    # smoke run

Workloads (each model-loss function calls dlgradient itself, as MATLAB's do):

* ``mlp-tanh``: a dlnetwork 64 → 64 (tanh) → 10 → softmax, crossentropy, gradient with
  respect to the learnables, digits-sized batch (128 images of 8×8); the replay runs the
  recorded backward sweep as operations ("compiled");
* ``mlp-relu``: the same with ReLU; ReLU's derivative is a mask read off its input, so the
  replay runs the VJP rules at its dlgradient ("rules");
* ``small-ops``: 40 steps of x ← sin(x)·a + x·b on a 16-vector, then the gradient: about
  200 operations on tiny arrays, where per-operation overhead is everything;
* ``pinn``: Burgers' equation residual of a 2 → 16 → 16 → 1 tanh dlnetwork at 64 points,
  u_t + u·u_x − (0.01/π)·u_xx with dljacobian/dldivergence (higher derivatives), then the
  gradient of the mean squared residual with respect to the learnables.

Before timing, the accelerated results are checked against the direct call.  BLAS runs on
one thread (unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS are set): both sides make the same
matrix products, and on a small shared machine a BLAS thread pool fighting for cores adds
milliseconds of noise to a 0.5 ms step.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import FULL, QUICK, measure_interleaved  # noqa: E402

from wengert.dl import (  # noqa: E402
    crossentropy,
    dlaccelerate,
    dlarray,
    dldivergence,
    dlfeval,
    dlgradient,
    dljacobian,
    dlnetwork,
    extractdata,
    featureInputLayer,
    forward,
    fullyConnectedLayer,
    reluLayer,
    softmaxLayer,
    stripdims,
    tanhLayer,
)

BATCH = 128


def digits_batch(n: int = BATCH) -> tuple[dlarray, dlarray]:
    try:
        from wengert.nn.data import load_digits

        x, y = load_digits(np.float32)
        x, y = x[:n].reshape(n, 64), y[:n]
    except ImportError:  # scikit-learn missing: random data of the same shapes
        g = np.random.default_rng(0)
        x, y = g.random((n, 64), np.float32), g.integers(0, 10, n)
    X = dlarray(x.T.copy(), "CB")  # (64, N): MATLAB's layout
    T = dlarray(np.eye(10, dtype=np.float32)[:, y], "CB")
    return X, T


def model_loss(net, X, T):
    Y, _ = forward(net, X)
    loss = crossentropy(Y, T)
    return loss, dlgradient(loss, net.learnables)


def mlp(act) -> dlnetwork:
    layers = [featureInputLayer(64), fullyConnectedLayer(64), act(), fullyConnectedLayer(10), softmaxLayer()]
    return dlnetwork(layers, rng=np.random.default_rng(0))


def small_ops(x, a, b):
    y = x
    for _ in range(40):
        y = np.sin(y) * a + y * b
    loss = np.sum(y * y)
    return loss, dlgradient(loss, (x, a, b))


def burgers_loss(net, X, T):
    U, _ = forward(net, np.concatenate([X, T], axis=0))
    x, t, u = stripdims(X), stripdims(T), stripdims(U)
    ux = dljacobian(u, x, 0)
    ut = dljacobian(u, t, 0)
    uxx = dldivergence(ux, x, 0)
    f = ut + u * ux - np.float32(0.01 / np.pi) * uxx
    loss = np.mean(f**2)
    return loss, dlgradient(loss, net.learnables)


def pinn_workload() -> tuple:
    layers = [featureInputLayer(2), fullyConnectedLayer(16), tanhLayer(), fullyConnectedLayer(16),
              tanhLayer(), fullyConnectedLayer(1)]  # fmt: skip
    net = dlnetwork(layers, rng=np.random.default_rng(0))
    g = np.random.default_rng(2)
    X = dlarray(g.uniform(-1, 1, (1, 64)).astype(np.float32), "CB")
    T = dlarray(g.uniform(0, 1, (1, 64)).astype(np.float32), "CB")
    return net, X, T


def workloads() -> list[tuple[str, object, tuple]]:
    X, T = digits_batch()
    g = np.random.default_rng(1)
    x = dlarray(g.normal(size=16).astype(np.float32))
    a = dlarray(np.float32(0.9) * np.ones(16, np.float32))
    b = dlarray(np.float32(0.3) * np.ones(16, np.float32))
    return [
        ("mlp-tanh", model_loss, (mlp(tanhLayer), X, T)),
        ("mlp-relu", model_loss, (mlp(reluLayer), X, T)),
        ("small-ops", small_ops, (x, a, b)),
        ("pinn", burgers_loss, pinn_workload()),
    ]


def _leaves(out) -> list:
    from wengert.dl import iter_dlarrays

    return [extractdata(v) for v in iter_dlarrays(out)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few, short samples")
    args = ap.parse_args(argv)
    settings = QUICK if args.quick else FULL
    print(f"dlaccelerate benchmark, {datetime.date.today()}, {platform.machine()}, "
          f"{platform.python_version()}, NumPy {np.__version__}")  # fmt: skip
    print(f"{'workload':<10} {'direct µs':>11} {'accelerated µs':>15} {'speed-up':>9}  backward")
    ok = True
    for name, fun, fargs in workloads():
        acc = dlaccelerate(fun)
        want = dlfeval(fun, *fargs)
        dlfeval(acc, *fargs)  # the capture
        got = dlfeval(acc, *fargs)  # a replay
        for u, v in zip(_leaves(got), _leaves(want)):
            if not np.allclose(u, v, rtol=1e-5, atol=1e-6):
                print(f"{name}: the accelerated result differs from the direct call")
                ok = False
        info = acc.cache_info()[0]
        direct, fast = measure_interleaved(
            [("direct", lambda: dlfeval(fun, *fargs)), ("accelerated", lambda: dlfeval(acc, *fargs))],
            settings,
        )
        ratio = direct.median_s / fast.median_s
        mode = info.get("backward") if info["replayable"] else "not replayable: " + info["reason"]
        print(f"{name:<10} {direct.median_us:>11.1f} {fast.median_us:>15.1f} {ratio:>8.2f}×  {mode}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
