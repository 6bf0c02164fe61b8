"""MATLAB's "Specify Training Options in Custom Training Loop", ported to wengert.dl on the 8×8
digits of scikit-learn: the options ``trainingOptions`` would give ``trainnet``, written out
in a custom training loop.

* Solver: ``sgdmupdate`` (default), ``adamupdate`` or ``rmspropupdate`` (``--solver``).
* Learn rate schedule "piecewise": the learning rate is multiplied by
  ``learnRateDropFactor`` every ``learnRateDropPeriod`` epochs.
* L2 regularisation: ``dlupdate(lambda g, w: g + l2Regularization * w, ...)`` on the rows of
  the gradients table whose parameter is "Weights" (biases, offsets and scales are not
  regularised, as trainingOptions' L2Regularization).
* Gradient clipping (``--clip``): "l2norm" (each learnable's gradient scaled down to norm
  ``gradientThreshold``), "global-l2norm" (all gradients scaled together so their global norm
  is at most the threshold) or "absolute-value" (every entry clipped to
  [−threshold, threshold]); the first and last through ``dlupdate``, the second on
  ``gradients.value``.
* Validation every ``validationFrequency`` iterations (``predict`` on held-out images,
  ``crossentropy`` and accuracy) with early stopping: training stops when the validation loss
  has not gone below the value of ``validationPatience`` validations ago.
* Checkpoints every ``checkpointFrequency`` epochs (MATLAB's ``save(filename, "net", ...)``):
  the network and the solver state, written atomically with ``wengert.dl.save``; each one is
  read back with ``wengert.dl.load`` and checked (same values bit for bit, same predictions).

The network is the one of custom_training_loop.py; the curves go to ``training_options.png``.

    python examples/dl/training_options.py                       # full run (see README.md)
    python examples/dl/training_options.py --clip absolute-value  # another clipping method
    python examples/dl/training_options.py --quick                # 2 epochs
"""

from __future__ import annotations

import argparse
import datetime
import glob
import math
import os
import shutil
import tempfile
import time

import numpy as np

import wengert.dl as dl
import wengert.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
CLIP_METHODS = ("l2norm", "global-l2norm", "absolute-value")


def network_layers(numClasses: int = 10) -> list:
    """The network of "Train Network Using Custom Training Loop" (custom_training_loop.py)."""
    return [
        dl.imageInputLayer([8, 8, 1], normalization="none"),
        dl.convolution2dLayer(5, 20, padding="same"),
        dl.batchNormalizationLayer(),
        dl.reluLayer(),
        dl.convolution2dLayer(3, 20, padding="same"),
        dl.batchNormalizationLayer(),
        dl.reluLayer(),
        dl.convolution2dLayer(3, 20, padding="same"),
        dl.batchNormalizationLayer(),
        dl.reluLayer(),
        dl.fullyConnectedLayer(numClasses),
        dl.softmaxLayer(),
    ]


def model_loss(net, X, T):
    """[loss, gradients, state] = modelLoss(net, X, T)."""
    Y, state = dl.forward(net, X)
    loss = dl.crossentropy(Y, T)
    gradients = dl.dlgradient(loss, net.learnables)
    return loss, gradients, state


# ---------------------------------------------------------------------------------------------
# Gradient clipping (the MATLAB page's thresholdL2Norm, thresholdGlobalL2Norm,
# thresholdAbsoluteValue)
# ---------------------------------------------------------------------------------------------


def threshold_l2_norm(gradients, gradientThreshold: float):
    """One learnable's gradient, scaled down to L2 norm ``gradientThreshold`` if above it."""
    gradientNorm = np.sqrt(np.sum(gradients**2))
    if gradientNorm > gradientThreshold:
        gradients = gradients * (gradientThreshold / gradientNorm)
    return gradients


def threshold_global_l2_norm(gradients: list, gradientThreshold: float) -> list:
    """All gradients (a list) scaled by one factor so that their global L2 norm
    √(Σᵢ ‖gᵢ‖²) is at most ``gradientThreshold``."""
    globalL2Norm = 0
    for g in gradients:
        globalL2Norm = globalL2Norm + np.sum(g**2)
    globalL2Norm = np.sqrt(globalL2Norm)
    if globalL2Norm > gradientThreshold:
        normScale = gradientThreshold / globalL2Norm
        gradients = [g * normScale for g in gradients]
    return gradients


def threshold_absolute_value(gradients, gradientThreshold: float):
    """Every entry clipped to [−gradientThreshold, gradientThreshold]."""
    gradients = gradients.copy()  # MATLAB arrays are values: do not write into the caller's
    gradients[gradients > gradientThreshold] = gradientThreshold
    gradients[gradients < -gradientThreshold] = -gradientThreshold
    return gradients


def clip_gradients(gradients, method: str, gradientThreshold: float):
    """The gradients table clipped by ``method`` ("l2norm", "global-l2norm",
    "absolute-value")."""
    if method == "l2norm":
        return dl.dlupdate(lambda g: threshold_l2_norm(g, gradientThreshold), gradients)
    if method == "global-l2norm":
        gradients = gradients.with_values(gradients.value)  # a copy: keep the caller's table
        gradients.value = threshold_global_l2_norm(gradients.value, gradientThreshold)
        return gradients
    if method == "absolute-value":
        return dl.dlupdate(lambda g: threshold_absolute_value(g, gradientThreshold), gradients)
    raise ValueError(f"gradient threshold method must be one of {CLIP_METHODS}, got {method!r}")


def global_norm(gradients) -> float:
    """√(Σᵢ ‖gᵢ‖²) over the values of a table."""
    return float(math.sqrt(sum(float(np.sum(dl.extractdata(g) ** 2)) for g in gradients.value)))


# ---------------------------------------------------------------------------------------------
# L2 regularisation on the "Weights" rows
# ---------------------------------------------------------------------------------------------


def l2_regularize(gradients, learnables, l2Regularization: float):
    """g ← g + λ·w for the weights (not the biases, offsets and scales); MATLAB's
    ``gradients(idx,:) = dlupdate(@(g,w) g + l2Regularization*w, gradients(idx,:), ...)``."""
    idx = np.array([p == "Weights" for p in learnables.parameter])
    gradients = gradients.copy()  # the caller's table stays as it was
    gradients[idx] = dl.dlupdate(
        lambda g, w: g + l2Regularization * w, gradients[idx], learnables[idx]
    )
    return gradients


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


def _values(table) -> list:
    return [dl.extractdata(v) for v in table.value]


def save_checkpoint(path: str, net, solverState, epoch: int, iteration: int) -> str:
    """MATLAB's ``save(filename, "net", "solverState", ...)``: one atomic .npz file."""
    dl.save(path, net=net, solverState=solverState, epoch=int(epoch), iteration=int(iteration))
    return path


def load_checkpoint(path: str):
    """(net, solverState, epoch, iteration), as MATLAB's ``load(filename)``."""
    S = dl.load(path)
    return S["net"], S["solverState"], S["epoch"], S["iteration"]


def check_round_trip(path: str, net, solverState, X) -> bool:
    """Load the checkpoint and compare: every learnable, state and solver-state value bit for
    bit, and the predictions."""
    loaded, solver, _, _ = load_checkpoint(path)
    same = all(
        np.array_equal(a, b) and a.dtype == b.dtype
        for t1, t2 in ((net.learnables, loaded.learnables), (net.state, loaded.state))
        for a, b in zip(_values(t1), _values(t2))
    )
    states = solverState if isinstance(solverState, tuple) else (solverState,)
    solver = solver if isinstance(solver, tuple) else (solver,)
    for s1, s2 in zip(states, solver):
        same = same and all(np.array_equal(a, b) for a, b in zip(_values(s1), _values(s2)))
    p1 = dl.extractdata(dl.predict(net, X))
    p2 = dl.extractdata(dl.predict(loaded, X))
    return bool(same and np.array_equal(p1, p2))


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solver", choices=("sgdm", "adam", "rmsprop"), default="sgdm")
    ap.add_argument("--epochs", type=int, default=60, help="numEpochs (MaxEpochs)")
    ap.add_argument("--quick", action="store_true", help="2 epochs, validation every 4")
    ap.add_argument("--mini-batch-size", type=int, default=128)
    ap.add_argument("--learn-rate", type=float, default=None, help="InitialLearnRate")
    ap.add_argument("--drop-period", type=int, default=15, help="LearnRateDropPeriod (epochs)")
    ap.add_argument("--drop-factor", type=float, default=0.1, help="LearnRateDropFactor")
    ap.add_argument("--l2", type=float, default=1e-4, help="L2Regularization")
    ap.add_argument("--clip", choices=CLIP_METHODS, default="global-l2norm",
                    help="GradientThresholdMethod")  # fmt: skip
    ap.add_argument("--threshold", type=float, default=4.0, help="GradientThreshold")
    ap.add_argument("--validation-frequency", type=int, default=10, help="in iterations")
    ap.add_argument("--patience", type=float, default=5, help="ValidationPatience (inf: off)")
    ap.add_argument("--checkpoint-path", default=None,
                    help="CheckpointPath (default: a temporary folder, removed at the end)")  # fmt: skip
    ap.add_argument("--checkpoint-frequency", type=int, default=5, help="in epochs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=HERE, help="folder for the PNG")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.validation_frequency, args.checkpoint_frequency = 2, 4, 1

    t0 = time.perf_counter()
    gen = dl.rng(args.seed)

    # Data: training images, a validation set held out of them, and the test images
    x_train, y_train, x_test, y_test = nn.load_digits_split()
    order = np.random.default_rng(args.seed).permutation(len(y_train))
    nval = len(y_train) // 5
    val, tr = order[:nval], order[nval:]
    classes = np.arange(10)

    def images(x):
        return np.transpose(x, (2, 3, 1, 0))

    def onehot(t):
        return dl.onehotencode(t.reshape(1, -1), 0, class_names=classes)

    XTrain, TTrain = images(x_train[tr]), y_train[tr]
    XValidation = dl.dlarray(images(x_train[val]), "SSCB")
    TValidation = dl.dlarray(onehot(y_train[val]), "CB")
    XTest = dl.dlarray(images(x_test), "SSCB")

    net = dl.dlnetwork(network_layers(len(classes)))

    # Training options
    solver = args.solver
    numEpochs = args.epochs
    miniBatchSize = args.mini_batch_size
    initialLearnRate = args.learn_rate or {"sgdm": 0.01, "adam": 0.001, "rmsprop": 0.001}[solver]
    momentum = 0.9
    learnRateDropPeriod = args.drop_period
    learnRateDropFactor = args.drop_factor
    l2Regularization = args.l2
    gradientThresholdMethod = args.clip
    gradientThreshold = args.threshold
    validationFrequency = args.validation_frequency
    validationPatience = args.patience
    own_checkpoints = args.checkpoint_path is None
    checkpointPath = args.checkpoint_path or tempfile.mkdtemp(prefix="dl_checkpoints_")
    os.makedirs(checkpointPath, exist_ok=True)
    checkpointFrequency = args.checkpoint_frequency

    mbq = dl.minibatchqueue(
        dl.combine(dl.arrayDatastore(XTrain, iteration_dimension=4), dl.arrayDatastore(TTrain)),
        mini_batch_size=miniBatchSize,
        mini_batch_fcn=lambda X, T: (X, onehot(T)),
        mini_batch_format=["SSCB", "CB"],
        rng=gen,
    )

    monitor = dl.trainingProgressMonitor(
        metrics=["TrainingLoss", "ValidationLoss", "ValidationAccuracy", "GradientNorm"],
        info=["Epoch", "LearnRate"],
        x_label="Iteration",
        progress_bar=False if args.no_progress else None,
    )
    monitor.group_sub_plot("Loss", ["TrainingLoss", "ValidationLoss"])

    # Solver state: velocity (SGDM), averages (Adam), squared averages (RMSProp)
    velocity = averageGrad = averageSqGrad = None

    validationLosses = (
        [math.inf] * int(validationPatience) if math.isfinite(validationPatience) else []
    )
    earlyStop = False
    numIterations = numEpochs * len(mbq)
    learnRate = initialLearnRate
    epoch = iteration = 0
    clipped = 0
    clip_stat_max = 0.0
    checkpoints: list[str] = []
    round_trips: list[bool] = []
    best = {"loss": math.inf, "accuracy": 0.0, "iteration": 0}

    while epoch < numEpochs and not earlyStop and not monitor.stop:
        epoch += 1
        mbq.shuffle()
        while mbq.hasdata() and not earlyStop and not monitor.stop:
            iteration += 1
            X, T = mbq.next()
            loss, gradients, state = dl.dlfeval(model_loss, net, X, T)
            net.state = state

            # L2 regularisation, then gradient clipping
            gradients = l2_regularize(gradients, net.learnables, l2Regularization)
            norm_before = global_norm(gradients)
            gradients = clip_gradients(gradients, gradientThresholdMethod, gradientThreshold)
            if gradientThresholdMethod == "l2norm":
                stat = max(float(np.sqrt(np.sum(dl.extractdata(g) ** 2))) for g in gradients.value)
            elif gradientThresholdMethod == "global-l2norm":
                stat = global_norm(gradients)
            else:
                stat = max(float(np.abs(dl.extractdata(g)).max()) for g in gradients.value)
            clip_stat_max = max(clip_stat_max, stat)
            clipped += norm_before != global_norm(gradients)

            # update
            if solver == "sgdm":
                net, velocity = dl.sgdmupdate(net, gradients, velocity, learnRate, momentum)
            elif solver == "adam":
                net, averageGrad, averageSqGrad = dl.adamupdate(
                    net, gradients, averageGrad, averageSqGrad, iteration, learnRate
                )
            else:
                net, averageSqGrad = dl.rmspropupdate(net, gradients, averageSqGrad, learnRate)

            monitor.record_metrics(iteration, TrainingLoss=loss, GradientNorm=norm_before)
            monitor.update_info(Epoch=f"{epoch} of {numEpochs}", LearnRate=learnRate)
            monitor.progress = 100 * iteration / numIterations

            # validation, and early stopping
            if iteration == 1 or iteration % validationFrequency == 0:
                YValidation = dl.predict(net, XValidation)
                lossValidation = float(dl.crossentropy(YValidation, TValidation))
                accValidation = float(np.mean(
                    np.argmax(dl.extractdata(YValidation), 0) == y_train[val]
                ))  # fmt: skip
                monitor.record_metrics(
                    iteration, ValidationLoss=lossValidation, ValidationAccuracy=accValidation
                )
                if lossValidation < best["loss"]:
                    best = {
                        "loss": lossValidation,
                        "accuracy": accValidation,
                        "iteration": iteration,
                    }
                if math.isfinite(validationPatience):
                    validationLosses.append(lossValidation)
                    if min(validationLosses) == validationLosses[0]:
                        earlyStop = True
                    else:
                        validationLosses.pop(0)

        # piecewise learn rate schedule
        if epoch % learnRateDropPeriod == 0:
            learnRate *= learnRateDropFactor

        # checkpoints
        if checkpointPath and epoch % checkpointFrequency == 0:
            stamp = datetime.datetime.now().strftime("%Y_%m_%d__%H_%M_%S")
            path = os.path.join(checkpointPath, f"net_checkpoint__{iteration}__{stamp}.npz")
            solverState = {
                "sgdm": velocity, "adam": (averageGrad, averageSqGrad), "rmsprop": averageSqGrad
            }[solver]  # fmt: skip
            save_checkpoint(path, net, solverState, epoch, iteration)
            checkpoints.append(path)
            round_trips.append(check_round_trip(path, net, solverState, XValidation))

    YTest = dl.extractdata(dl.predict(net, XTest))
    accuracy = float(np.mean(np.argmax(YTest, 0) == y_test))
    elapsed = time.perf_counter() - t0
    monitor.status = f"test accuracy {accuracy:.2%}" + (" (early stop)" if earlyStop else "")
    png = monitor.save_png(os.path.join(args.out, "training_options.png"))
    monitor.close()
    files = sorted(glob.glob(os.path.join(checkpointPath, "net_checkpoint__*.npz")))
    if own_checkpoints:
        shutil.rmtree(checkpointPath, ignore_errors=True)

    losses = monitor.values("TrainingLoss")
    print(
        f"{solver}, clipping {gradientThresholdMethod} at {gradientThreshold}: {iteration} "
        f"iterations ({epoch} epochs) in {elapsed:.1f} s"
        + (f", stopped early (patience {validationPatience:g})" if earlyStop else "")
    )
    print(
        f"  gradients clipped in {clipped} of {iteration} iterations; final learn rate {learnRate:.3g}"
    )
    print(
        f"  best validation loss {best['loss']:.4f} (accuracy {best['accuracy']:.2%}) at iteration {best['iteration']}"
    )
    print(
        f"  {len(checkpoints)} checkpoints, round trips {'all exact' if all(round_trips) else 'FAILED'}"
    )
    print(f"test accuracy: {accuracy:.2%} ({len(y_test)} images)")
    print(f"curves: {png}")
    return {
        "test_accuracy": accuracy,
        "iterations": iteration,
        "epochs": epoch,
        "early_stop": earlyStop,
        "seconds": elapsed,
        "loss": losses,
        "validation_loss": monitor.values("ValidationLoss"),
        "gradient_norm": monitor.values("GradientNorm"),
        "learn_rate": learnRate,
        "clipped_iterations": clipped,
        "clip_statistic_max": clip_stat_max,
        "checkpoints": checkpoints,
        "checkpoint_files": files,
        "round_trips": round_trips,
        "png": png,
        "net": net,
    }


if __name__ == "__main__":
    main()
