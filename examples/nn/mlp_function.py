"""The model-function style: no layer objects.  The model is a plain function of a params
dict, initialised explicitly, and trained with Adam on the digits.

    model(params, x) = W₃·relu(W₂·relu(W₁·x + b₁) + b₂) + b₃

The parameters are an ordinary dict of arrays (a pytree), so ``wengert.grad`` returns a dict
of the same shape and the optimizer updates it leaf by leaf.

    python examples/nn/mlp_function.py            # full run
    python examples/nn/mlp_function.py --quick    # a short run
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import wengert
import wengert.nn as nn
from wengert.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def init_params(rng: np.random.Generator, sizes=(64, 128, 64, 10), dtype=np.float32) -> dict:
    """Glorot-uniform weights (out, in) and zero biases, one entry per layer."""
    params = {}
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{k}"] = nn.init.glorot_uniform(rng, (n_out, n_in), dtype)
        params[f"b{k}"] = nn.init.zeros(rng, (n_out,), dtype)
    return params


def model(params: dict, x):
    """The MLP: fully connected layers with ReLU between them; returns logits (N, 10)."""
    h = x.reshape(len(x), -1)
    n = len(params) // 2
    for k in range(1, n + 1):
        h = F.fully_connect(h, params[f"W{k}"], params[f"b{k}"])
        if k < n:
            h = F.relu(h)
    return h


def loss_fn(params: dict, x, y, l2: float = 1e-4):
    """Softmax cross-entropy plus a small L2 penalty on the weights."""
    logits = model(params, x)
    penalty = sum((params[k] ** 2).sum() for k in params if k.startswith("W"))
    return nn.losses.index_cross_entropy(logits, y) + l2 * penalty


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="short run: 150 updates")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "output"))
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.quick and args.steps is None:
        args.steps = 150

    t0 = time.perf_counter()
    x_train, y_train, x_test, y_test = nn.load_digits_split()
    rng = np.random.default_rng(args.seed)
    params = init_params(rng)
    opt = nn.adam(1e-3)
    opt_state = opt.init(params)
    grad_fn = wengert.value_and_grad(loss_fn)
    batches = nn.MinibatchIterator(x_train, y_train, batch_size=args.batch_size, rng=rng)
    total = args.epochs * len(batches) if args.steps is None else args.steps
    monitor = nn.TrainingMonitor(
        total=total, desc="mlp", progress=False if args.no_progress else None
    )
    it = epoch = 0
    while it < total:
        epoch += 1
        for xb, yb in batches:
            loss, grads = grad_fn(params, xb, yb)
            params, opt_state = opt.update(params, grads, opt_state)
            it += 1
            monitor.record(it, epoch=epoch, loss=loss)
            if it >= total:
                break
        monitor.record(it, test_accuracy=nn.accuracy(model(params, x_test), y_test))
    monitor.close()
    acc = monitor.latest()["test_accuracy"]
    png = monitor.plot(
        os.path.join(args.out, "mlp_function_curves.png"), smooth=20,
        title=f"MLP (model function) on digits: test accuracy {acc:.2%}",
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    print(f"{it} updates in {elapsed:.1f} s; test accuracy {acc:.2%}")
    print(f"curves: {png}")
    return {"test_accuracy": acc, "params": params, "steps": it, "seconds": elapsed, "png": png}


if __name__ == "__main__":
    main()
