"""MATLAB's "Train Generative Adversarial Network (GAN)" example, ported to wengert.dl on the
8×8 digits of scikit-learn (MATLAB's page uses 64×64 flower photos).

Same structure and names as the MATLAB page:

* the generator ``netG``: ``featureInputLayer`` (latent Z) → ``projectAndReshapeLayer`` →
  ``transposedConv2dLayer`` (5×5 filters, stride 2, cropping "same") + ``batchNormalizationLayer`` +
  ``reluLayer`` blocks → a last transposed convolution to one channel → ``tanhLayer``;
* the discriminator ``netD``: ``imageInputLayer`` → ``dropoutLayer`` → strided
  ``convolution2dLayer`` (5×5) + ``leakyReluLayer(0.2)`` blocks → a convolution to 1×1×1 →
  ``sigmoidLayer`` (the probability that an image is real);
* ``model_loss(netG, netD, X, Z, flipProb)`` runs both networks in one trace, computes the
  scores *before* flipping the real labels (probability ``flipProb`` = 0.35), then the GAN
  losses, and both gradients from the same trace:
  ``dlgradient(lossG, netG.learnables, retain_data=True)`` then
  ``dlgradient(lossD, netD.learnables)``;
* ``adamupdate`` for each network (learn rate 2e-4, gradient decay 0.5, squared gradient
  decay 0.999); a ``trainingProgressMonitor`` records the generator and discriminator scores;
* a fixed validation batch of 25 latent vectors ``ZValidation`` shows the generator's
  progress as a 5×5 image grid (``gan_digits.png``); the score curves go to
  ``gan_scores.png``.

Differences from the MATLAB page: the image sizes are scaled down (8×8×1 instead of 64×64×3,
so two up-sampling blocks instead of four; a 32-element latent vector instead of 100);
the discriminator has no batch normalisation layers (MATLAB's has them after its inner
convolutions) and a dropout probability of 0.3 instead of 0.5, as examples/nn/gan_digits.py;
no data augmentation (mirrored digits are not digits).

    python examples/dl/gan.py            # full run (≈ 5000 iterations; see README.md)
    python examples/dl/gan.py --quick    # 4 epochs: a smoke test
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import wengert.dl as dl
import wengert.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))

# MATLAB draws from one global generator (rng(seed)); main() installs it with dl.rng(seed) and
# keeps it here for the rand/randn calls of this script.
RNG = np.random.default_rng(0)


def rand(*size: int) -> np.ndarray:
    """MATLAB's ``rand(size)``: uniform samples in [0, 1) from the global generator."""
    return RNG.random(size)


def randn(*size: int, dtype=np.float32) -> np.ndarray:
    """MATLAB's ``randn(size, "single")``."""
    return RNG.standard_normal(size).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------


def generator_layers(num_latent_inputs: int = 32, num_filters: int = 64, filter_size: int = 5):
    """The generator: latent "CB" vectors → 8×8×1 images in [−1, 1] ("SSCB")."""
    projection_size = [2, 2, 2 * num_filters]
    return [
        dl.featureInputLayer(num_latent_inputs),
        dl.projectAndReshapeLayer(projection_size),
        dl.batchNormalizationLayer(),
        dl.reluLayer(),
        dl.transposedConv2dLayer(filter_size, num_filters, stride=2, cropping="same"),  # 4×4
        dl.batchNormalizationLayer(),
        dl.reluLayer(),
        dl.transposedConv2dLayer(filter_size, 1, stride=2, cropping="same"),  # 8×8
        dl.tanhLayer(),
    ]


def discriminator_layers(
    input_size=(8, 8, 1), num_filters: int = 64, filter_size: int = 5, dropout_prob: float = 0.3,
    scale: float = 0.2,
):  # fmt: skip
    """The discriminator: 8×8×1 images → the probability that each is real (1×1×1×N)."""
    return [
        dl.imageInputLayer(list(input_size), normalization="none"),
        dl.dropoutLayer(dropout_prob),
        dl.convolution2dLayer(filter_size, num_filters, stride=2, padding="same"),  # 4×4
        dl.leakyReluLayer(scale),
        dl.convolution2dLayer(filter_size, 2 * num_filters, stride=2, padding="same"),  # 2×2
        dl.leakyReluLayer(scale),
        dl.convolution2dLayer(2, 1),  # 1×1
        dl.sigmoidLayer(),
    ]


# ---------------------------------------------------------------------------------------------
# Model loss (the MATLAB page's modelLoss and ganLoss)
# ---------------------------------------------------------------------------------------------


def gan_loss(YReal, YGenerated):
    """lossD = −mean(log(YReal)) − mean(log(1 − YGenerated)), lossG = −mean(log(YGenerated))."""
    lossD = -np.mean(np.log(YReal)) - np.mean(np.log(1 - YGenerated))
    lossG = -np.mean(np.log(YGenerated))
    return lossG, lossD


def model_loss(netG, netD, X, Z, flipProb):
    """[lossG, lossD, gradientsG, gradientsD, stateG, scoreG, scoreD] of the MATLAB page:
    both networks' gradients from one trace (``retain_data=True`` on the first call)."""
    # the discriminator's predictions for the real data
    YReal, _ = dl.forward(netD, X)
    # ... and for the generated data
    XGenerated, stateG = dl.forward(netG, Z)
    YGenerated, _ = dl.forward(netD, XGenerated)

    # the scores, before the labels are flipped
    scoreD = (np.mean(YReal) + np.mean(1 - YGenerated)) / 2
    scoreG = np.mean(YGenerated)

    # randomly flip the labels of the real images
    numObservations = YReal.shape[dl.finddim(YReal, "B")[0]]
    idx = rand(numObservations) < flipProb
    YReal[:, :, :, idx] = 1 - YReal[:, :, :, idx]

    lossG, lossD = gan_loss(YReal, YGenerated)

    # each network's gradients from the same trace
    gradientsG = dl.dlgradient(lossG, netG.learnables, retain_data=True)
    gradientsD = dl.dlgradient(lossD, netD.learnables)
    return lossG, lossD, gradientsG, gradientsD, stateG, scoreG, scoreD


def preprocess_mini_batch(X):
    """Rescale the images from [0, 1] to [−1, 1] (the range of the generator's tanh)."""
    return 2 * X - 1


# ---------------------------------------------------------------------------------------------
# The image grid (MATLAB's imtile + imshow)
# ---------------------------------------------------------------------------------------------


def imtile(images: np.ndarray, pad: int = 1) -> np.ndarray:
    """H×W×1×N images in [−1, 1] → one √N×√N tiled image in [0, 1] (dark ink on white)."""
    h, w, _, n = images.shape
    k = int(np.ceil(np.sqrt(n)))
    out = np.ones((k * (h + pad) + pad, k * (w + pad) + pad), np.float32)
    for i in range(n):
        r, c = divmod(i, k)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y : y + h, x : x + w] = 1 - (images[:, :, 0, i] + 1) / 2
    return out


def save_image(path: str, tiled: np.ndarray, title: str) -> str:
    """Write the tiled image as a PNG (matplotlib's Agg backend, no display needed)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 4.3), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(tiled, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=350, help="numEpochs (14 iterations each)")
    ap.add_argument("--quick", action="store_true", help="4 epochs (56 iterations)")
    ap.add_argument("--mini-batch-size", type=int, default=128)
    ap.add_argument("--flip-prob", type=float, default=0.35)
    ap.add_argument("--validation-frequency", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=HERE, help="folder for the PNGs")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--blas-threads", type=int, default=1,
        help="BLAS threads (default 1: these small products run as fast on one thread, much "
        "faster when the cores are shared, and the run is reproducible bit for bit; 0: the "
        "library's default)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = 4
    with _blas_threads(args.blas_threads):
        return train(args)


def _blas_threads(n: int):
    """A context limiting the BLAS thread pool to ``n`` threads (no limit for n = 0, or
    without threadpoolctl, which scikit-learn installs)."""
    import contextlib

    if n <= 0:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def train(args: argparse.Namespace) -> dict:
    """The MATLAB page's training loop, for the options parsed by :func:`main`."""
    global RNG
    t0 = time.perf_counter()
    RNG = dl.rng(args.seed)  # the global generator: initialisation, dropout, shuffling, Z

    # Load the data: all 1797 digits as an 8×8×1×N array (MATLAB's layout)
    x_train, _, x_test, _ = nn.load_digits_split()
    XTrain = np.transpose(np.concatenate([x_train, x_test]), (2, 3, 1, 0))
    dsTrain = dl.arrayDatastore(XTrain, iteration_dimension=4)

    # Define the networks
    numLatentInputs = 32
    netG = dl.dlnetwork(generator_layers(numLatentInputs))
    netD = dl.dlnetwork(discriminator_layers())

    # Training options
    numEpochs = args.epochs
    miniBatchSize = args.mini_batch_size
    learnRate = 0.0002
    gradientDecayFactor = 0.5
    squaredGradientDecayFactor = 0.999
    flipProb = args.flip_prob
    validationFrequency = args.validation_frequency

    mbq = dl.minibatchqueue(
        dsTrain,
        mini_batch_size=miniBatchSize,
        partial_mini_batch="discard",
        mini_batch_fcn=preprocess_mini_batch,
        mini_batch_format="SSCB",
    )

    trailingAvgG = trailingAvgSqG = None
    trailingAvg = trailingAvgSqD = None

    # a fixed batch of latent vectors to watch the generator learn
    numValidationImages = 25
    ZValidation = dl.dlarray(
        np.random.default_rng(1234)
        .standard_normal((numLatentInputs, numValidationImages))
        .astype(np.float32),
        "CB",
    )

    monitor = dl.trainingProgressMonitor(
        metrics=["GeneratorScore", "DiscriminatorScore"],
        info=["Epoch", "Iteration"],
        x_label="Iteration",
        progress_bar=False if args.no_progress else None,
    )
    monitor.group_sub_plot("Score", ["GeneratorScore", "DiscriminatorScore"])

    grid_png = os.path.join(args.out, "gan_digits.png")
    numIterations = numEpochs * len(mbq)
    epoch = 0
    iteration = 0
    while epoch < numEpochs and not monitor.stop:
        epoch += 1
        mbq.shuffle()
        while mbq.hasdata() and not monitor.stop:
            iteration += 1
            X = mbq.next()
            Z = dl.dlarray(randn(numLatentInputs, miniBatchSize), "CB")

            _, _, gradientsG, gradientsD, stateG, scoreG, scoreD = dl.dlfeval(
                model_loss, netG, netD, X, Z, flipProb
            )
            netG.state = stateG

            netD, trailingAvg, trailingAvgSqD = dl.adamupdate(
                netD, gradientsD, trailingAvg, trailingAvgSqD, iteration,
                learnRate, gradientDecayFactor, squaredGradientDecayFactor,
            )  # fmt: skip
            netG, trailingAvgG, trailingAvgSqG = dl.adamupdate(
                netG, gradientsG, trailingAvgG, trailingAvgSqG, iteration,
                learnRate, gradientDecayFactor, squaredGradientDecayFactor,
            )  # fmt: skip

            if iteration % validationFrequency == 0 or iteration == 1:
                XGeneratedValidation = dl.predict(netG, ZValidation)
                I = imtile(dl.extractdata(XGeneratedValidation))
                save_image(grid_png, I, f"Epoch: {epoch}, Iteration: {iteration}")

            monitor.record_metrics(iteration, GeneratorScore=scoreG, DiscriminatorScore=scoreD)
            monitor.update_info(Epoch=epoch, Iteration=iteration)
            monitor.progress = 100 * iteration / numIterations

    # the final generated images from the fixed validation latent batch
    XGeneratedValidation = dl.extractdata(dl.predict(netG, ZValidation))
    save_image(grid_png, imtile(XGeneratedValidation), f"Generated digits, {iteration} iterations")
    scores_png = monitor.save_png(os.path.join(args.out, "gan_scores.png"))
    monitor.close()
    elapsed = time.perf_counter() - t0

    sG, sD = monitor.values("GeneratorScore"), monitor.values("DiscriminatorScore")
    tail = max(len(sG) // 10, 1)
    print(
        f"{iteration} iterations ({epoch} epochs) in {elapsed:.1f} s; mean scores over the last "
        f"{tail} iterations: generator {sG[-tail:].mean():.3f}, discriminator "
        f"{sD[-tail:].mean():.3f}"
    )
    print(f"images: {grid_png}\nscores: {scores_png}")
    return {
        "iterations": iteration,
        "epochs": epoch,
        "seconds": elapsed,
        "images": XGeneratedValidation,
        "grid_png": grid_png,
        "scores_png": scores_png,
        "generator_score": sG,
        "discriminator_score": sD,
        "netG": netG,
        "netD": netD,
    }


if __name__ == "__main__":
    main()
