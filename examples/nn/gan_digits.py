"""A generative adversarial network on the 8×8 digits.

* Generator: latent z (32) → fully connected → 128×2×2 → batch norm → ReLU → transposed
  convolution (4×4, stride 2) → 64×4×4 → batch norm → ReLU → transposed convolution → 1×8×8
  → tanh.
* Discriminator: dropout on the input → strided convolutions (3×3, stride 2) with leaky ReLU
  (0.2) → fully connected → sigmoid, the probability that an image is real.
* Each update takes a discriminator step (real and generated images in one batch), then a
  generator step whose gradient flows back through the discriminator: two
  ``wengert.value_and_grad`` calls, each with respect to one network.
* Label flipping: each real image's target is flipped to "fake" with probability 0.35, so the
  discriminator cannot become too sure of itself.  Adam with lr 2e-4, β₁ 0.5.

Writes a 5×5 grid of digits generated from a fixed latent batch, and the generator and
discriminator score curves.

    python examples/nn/gan_digits.py            # full run: 5000 updates, 3-6 minutes on 2 cores
    python examples/nn/gan_digits.py --quick    # 60 updates: a smoke test
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import wengert
import wengert.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
LATENT = 32


def build_generator(seed: int = 1, width: int = 64) -> nn.Network:
    layers = [
        nn.Linear(2 * width * 2 * 2),
        nn.Reshape((2 * width, 2, 2)),
        nn.BatchNorm(),
        nn.ReLU(),
        nn.ConvTranspose2d(width, 4, stride=2, padding=1),  # 4×4
        nn.BatchNorm(),
        nn.ReLU(),
        nn.ConvTranspose2d(1, 4, stride=2, padding=1),  # 8×8
        nn.Tanh(),
    ]
    return nn.Network(layers, input_shape=(LATENT,), rng=seed)


def build_discriminator(seed: int = 2, width: int = 64, dropout: float = 0.3) -> nn.Network:
    layers = [
        nn.Dropout(dropout),
        nn.Conv2d(width, 3, stride=2, padding=1),  # 4×4
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 3, stride=2, padding=1),  # 2×2
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(1),
        nn.Sigmoid(),
    ]
    return nn.Network(layers, input_shape=(1, 8, 8), rng=seed)


def discriminator_loss(disc, gen, x_real, z, flip, rng):
    """loss_D = BCE(D(x), t) + BCE(D(G(z)), 0), t = 1 except the flipped real targets (0).

    Real and generated images go through the discriminator as one batch."""
    x_fake = gen.forward(z, rng=rng)[0]  # the generator is a constant here
    p, d_state = disc.forward(np.concatenate([x_real, x_fake]), rng=rng)
    n = len(x_real)
    t = np.concatenate([~flip, np.zeros(len(z), bool)]).astype(np.float32)[:, None]
    loss = nn.losses.binary_cross_entropy(p, t, reduction="sum") / n
    return loss, (d_state, p[:n], p[n:])


def generator_loss(gen, disc, z, rng):
    """loss_G = BCE(D(G(z)), 1) = −mean log D(G(z)), through the discriminator."""
    x_fake, g_state = gen.forward(z, rng=rng)
    p_fake = disc.forward(x_fake, rng=rng)[0]
    loss = nn.losses.binary_cross_entropy(p_fake, np.ones(p_fake.shape, np.float32))
    return loss, g_state


def save_grid(path: str, images: np.ndarray, title: str = "") -> str:
    """A 5×5 grid of 8×8 images in [−1, 1], as a PNG (matplotlib, headless)."""
    from matplotlib.figure import Figure

    n = int(np.sqrt(len(images)))
    img = images[: n * n, 0]
    tiles = np.ones((n * 9 + 1, n * 9 + 1), np.float32)  # one-pixel white borders
    for k, im in enumerate(img):
        r, c = divmod(k, n)
        tiles[1 + 9 * r : 9 * r + 9, 1 + 9 * c : 9 * c + 9] = 1 - (im + 1) / 2  # dark ink
    fig = Figure(figsize=(4, 4.3), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(tiles, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--quick", action="store_true", help="60 updates")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--flip", type=float, default=0.35, help="probability to flip a real label")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "output"))
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps = 60

    t0 = time.perf_counter()
    x_train, _, x_test, _ = nn.load_digits_split()
    images = np.concatenate([x_train, x_test]) * 2 - 1  # all 1797 digits, scaled to [−1, 1]
    rng = np.random.default_rng(args.seed)
    batches = nn.MinibatchIterator(images, batch_size=args.batch_size, rng=rng, drop_last=True)
    gen, disc = build_generator(args.seed + 1), build_discriminator(args.seed + 2)
    opt = nn.adam(2e-4, beta1=0.5, beta2=0.999)
    g_opt, d_opt = opt.init(gen), opt.init(disc)
    z_fixed = np.random.default_rng(1234).standard_normal((25, LATENT)).astype(np.float32)
    d_step = wengert.value_and_grad(discriminator_loss, has_aux=True)
    g_step = wengert.value_and_grad(generator_loss, has_aux=True)
    monitor = nn.TrainingMonitor(
        total=args.steps, desc="gan", progress=False if args.no_progress else None,
        show=("score_g", "score_d"),
    )  # fmt: skip
    it = 0
    epoch = 0
    while it < args.steps:
        epoch += 1
        for x in batches:
            z = rng.standard_normal((len(x), LATENT)).astype(np.float32)
            flip = rng.random(len(x)) < args.flip
            # the discriminator's step, then the generator's against the updated discriminator
            (loss_d, (d_state, p_real, p_fake)), grad_d = d_step(disc, gen, x, z, flip, rng)
            disc, d_opt = opt.update(disc, grad_d, d_opt)
            disc = disc.with_state(d_state)
            (loss_g, g_state), grad_g = g_step(gen, disc, z, rng)
            gen, g_opt = opt.update(gen, grad_g, g_opt)
            gen = gen.with_state(g_state)
            it += 1
            score_g = float(np.mean(p_fake))
            score_d = 0.5 * (float(np.mean(p_real)) + float(np.mean(1 - p_fake)))
            monitor.record(
                it, epoch=epoch, loss_g=loss_g, loss_d=loss_d, score_g=score_g, score_d=score_d
            )
            if it >= args.steps:
                break
    monitor.close()
    samples = np.asarray(gen.predict(z_fixed))
    grid = save_grid(
        os.path.join(args.out, "gan_digits_samples.png"), samples, f"generated, {it} updates"
    )
    curves = monitor.plot(
        os.path.join(args.out, "gan_digits_scores.png"),
        groups=[["score_g", "score_d"], ["loss_g", "loss_d"]],
        smooth=25,
        title="GAN on digits: generator and discriminator scores",
    )
    elapsed = time.perf_counter() - t0
    last = monitor.latest()
    print(f"{it} updates in {elapsed:.1f} s; final scores: generator {last['score_g']:.3f}, "
          f"discriminator {last['score_d']:.3f}")  # fmt: skip
    print(f"samples: {grid}\nscores: {curves}")
    return {
        "steps": it,
        "seconds": elapsed,
        "samples": samples,
        "grid_png": grid,
        "scores_png": curves,
        "loss_g": monitor.values("loss_g"),
        "loss_d": monitor.values("loss_d"),
        "generator": gen,
        "discriminator": disc,
    }


if __name__ == "__main__":
    main()
