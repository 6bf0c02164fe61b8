"""A custom training loop: a small CNN on the 8×8 digits, trained with Adam.

Each step computes the loss and its gradient with respect to the whole network
(``wengert.value_and_grad`` on a ``Network``), updates the learnables with Adam, and keeps
the batch-norm statistics that ``forward`` returned.  Prints the test accuracy and writes the
loss/accuracy curves to a PNG.

    python examples/nn/cnn_digits.py             # full run: ≥ 98 % test accuracy, ~5-10 s
    python examples/nn/cnn_digits.py --quick     # 200 updates
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import wengert
import wengert.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


def build_network(seed: int = 0, dtype=np.float32) -> nn.Network:
    """conv 3×3 (32) → BN → ReLU → max-pool 2 → conv 3×3 (64) → BN → ReLU → max-pool 2 →
    dropout → fully connected (10)."""
    layers = [
        nn.Conv2d(32, 3, padding="same"),
        nn.BatchNorm(),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 3, padding="same"),
        nn.BatchNorm(),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(10),
    ]
    return nn.Network(layers, input_shape=(1, 8, 8), rng=seed, dtype=dtype)


def augment(rng: np.random.Generator):
    """Random shifts by up to one pixel (zero fill): cheap augmentation for 8×8 digits."""

    def shift(x, y):
        n = len(x)
        out = np.zeros_like(x)
        dy, dx = rng.integers(-1, 2, size=2)
        src = x[:, :, max(dy, 0) : 8 + min(dy, 0), max(dx, 0) : 8 + min(dx, 0)]
        out[:, :, max(-dy, 0) : 8 + min(-dy, 0), max(-dx, 0) : 8 + min(-dx, 0)] = src
        keep = rng.random(n) < 0.5  # half the batch stays unshifted
        out[keep] = x[keep]
        return out, y

    return shift


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--steps", type=int, default=None, help="stop after this many updates")
    ap.add_argument("--quick", action="store_true", help="short run: 200 updates")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "output"), help="folder for the PNG")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.quick and args.steps is None:
        args.steps = 200

    t0 = time.perf_counter()
    x_train, y_train, x_test, y_test = nn.load_digits_split()
    rng = np.random.default_rng(args.seed)
    batches = nn.MinibatchIterator(
        x_train, y_train, batch_size=args.batch_size, rng=rng, drop_last=True,
        preprocess=augment(rng),
    )  # fmt: skip
    total = args.epochs * len(batches)
    if args.steps is not None:
        total = min(total, args.steps)
    net = build_network(args.seed)
    opt = nn.adam(nn.warmup(nn.cosine_decay(args.lr, max(total - 50, 1), args.lr / 50), 50))
    opt_state = opt.init(net)

    def loss_fn(net, x, y):
        logits, state = net.forward(x, rng=rng)
        return nn.losses.index_cross_entropy(logits, y), (state, logits)

    step_fn = wengert.value_and_grad(loss_fn, has_aux=True)
    monitor = nn.TrainingMonitor(
        total=total, desc="cnn", progress=False if args.no_progress else None
    )
    it = 0
    epoch = 0
    while it < total:
        epoch += 1
        for xb, yb in batches:
            (loss, (state, logits)), grads = step_fn(net, xb, yb)
            net, opt_state = opt.update(net, grads, opt_state)
            net = net.with_state(state)
            it += 1
            monitor.record(it, epoch=epoch, loss=loss, accuracy=nn.accuracy(logits, yb))
            if it >= total:
                break
        test_acc = nn.accuracy(net.predict(x_test), y_test)
        monitor.record(it, test_accuracy=test_acc)
    monitor.close()
    elapsed = time.perf_counter() - t0
    test_acc = monitor.latest()["test_accuracy"]
    png = monitor.plot(
        os.path.join(args.out, "cnn_digits_curves.png"),
        groups=[["loss"], ["accuracy", "test_accuracy"]],
        smooth=20,
        title=f"CNN on digits: test accuracy {test_acc:.2%}",
    )
    print(f"{it} updates ({epoch} epochs) in {elapsed:.1f} s")
    print(f"test accuracy: {test_acc:.2%} ({len(y_test)} images)")
    print(f"curves: {png}")
    return {"test_accuracy": test_acc, "steps": it, "seconds": elapsed, "png": png, "net": net}


if __name__ == "__main__":
    main()
