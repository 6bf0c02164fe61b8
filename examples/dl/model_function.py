"""MATLAB's "Train Network Using Model Function" (with the model loss function of "Define Model
Loss Function for Custom Training Loop"), ported to wengert.dl on the 8×8 digits of
scikit-learn.

No layer objects: the model is a function of a ``parameters`` dict (MATLAB's struct), with
one entry per operation (``parameters["conv1"]["Weights"]``...) initialised explicitly by the
functions of initialize_params.py (``initializeGlorot``, ``initializeZeros``,
``initializeOnes``), and the batch-normalisation statistics in a ``state`` dict.  Same
structure and names as the MATLAB page:

* ``model(parameters, X, doTraining, state)``: ``dlconv`` (5×5, 20) → ``batchnorm`` →
  ``relu``; a main branch ``dlconv`` (3×3, stride 2) → ``batchnorm`` → ``relu`` → ``dlconv``
  (3×3) → ``batchnorm``; a skip branch ``dlconv`` (1×1, stride 2) → ``batchnorm``; their sum →
  ``relu`` → ``fullyconnect`` → ``softmax``;
* ``model_loss(parameters, X, T, state)`` = model + ``crossentropy`` +
  ``dlgradient(loss, parameters)`` (gradients in a dict of the same structure), evaluated with
  ``dlfeval``;
* ``adamupdate(parameters, gradients, trailingAvg, trailingAvgSq, iteration)`` on the dict;
* the test accuracy from ``model_predictions`` (``doTraining`` false: the trained
  statistics), and the loss/accuracy curves in ``model_function.png``.

    python examples/dl/model_function.py            # full run: 10 epochs (see README.md)
    python examples/dl/model_function.py --quick    # 2 epochs
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import time

import numpy as np

import wengert.dl as dl
import wengert.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


def _sibling(name: str):
    """Import another script of this folder (also when this one is loaded by path)."""
    spec = importlib.util.spec_from_file_location(
        f"dl_example_{name}", os.path.join(HERE, f"{name}.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_init = _sibling("initialize_params")
initializeGlorot = _init.initializeGlorot
initializeZeros = _init.initializeZeros
initializeOnes = _init.initializeOnes


# ---------------------------------------------------------------------------------------------
# Parameters and state
# ---------------------------------------------------------------------------------------------


def initialize_model(numClasses: int = 10, inputSize=(8, 8, 1), rng=None) -> tuple[dict, dict]:
    """(parameters, state): the learnables of every operation and the batch-norm statistics."""
    parameters: dict = {}
    state: dict = {}

    def conv(name, filterSize, numChannels, numFilters):
        sz = [*filterSize, numChannels, numFilters]
        numOut = math.prod(filterSize) * numFilters
        numIn = math.prod(filterSize) * numChannels
        parameters[name] = {
            "Weights": initializeGlorot(sz, numOut, numIn, rng=rng),
            "Bias": initializeZeros([numFilters, 1]),
        }

    def batchnorm(name, numChannels):
        parameters[name] = {
            "Offset": initializeZeros([numChannels, 1]),
            "Scale": initializeOnes([numChannels, 1]),
        }
        state[name] = {
            "TrainedMean": initializeZeros([numChannels, 1]),
            "TrainedVariance": initializeOnes([numChannels, 1]),
        }

    numChannels = inputSize[2]
    conv("conv1", (5, 5), numChannels, 20)
    batchnorm("batchnorm1", 20)
    conv("conv2", (3, 3), 20, 20)
    batchnorm("batchnorm2", 20)
    conv("conv3", (3, 3), 20, 20)
    batchnorm("batchnorm3", 20)
    conv("convSkip", (1, 1), 20, 20)
    batchnorm("batchnormSkip", 20)
    # fully connect: the 20 channels of the (H/2)×(W/2) maps after the stride-2 convolutions
    numIn = math.ceil(inputSize[0] / 2) * math.ceil(inputSize[1] / 2) * 20
    parameters["fc1"] = {
        "Weights": initializeGlorot([numClasses, numIn], numClasses, numIn, rng=rng),
        "Bias": initializeZeros([numClasses, 1]),
    }
    return parameters, state


# ---------------------------------------------------------------------------------------------
# The model function and its loss
# ---------------------------------------------------------------------------------------------


def _batchnorm(Y, parameters, state, name, doTraining):
    """Batch normalisation with the named parameters; updates ``state[name]`` when training."""
    offset = parameters[name]["Offset"]
    scale = parameters[name]["Scale"]
    trainedMean = state[name]["TrainedMean"]
    trainedVariance = state[name]["TrainedVariance"]
    if doTraining:
        Y, trainedMean, trainedVariance = dl.batchnorm(
            Y, offset, scale, trainedMean, trainedVariance
        )
        state[name] = {"TrainedMean": trainedMean, "TrainedVariance": trainedVariance}
    else:
        Y = dl.batchnorm(Y, offset, scale, trainedMean, trainedVariance, training=False)
    return Y


def model(parameters: dict, X, doTraining: bool, state: dict):
    """[Y, state] = model(parameters, X, doTraining, state) of the MATLAB page."""
    state = {k: dict(v) for k, v in state.items()}  # MATLAB structs are values: keep the input

    # Initial operations: convolution, batch normalisation, ReLU
    weights = parameters["conv1"]["Weights"]
    bias = parameters["conv1"]["Bias"]
    Y = dl.dlconv(X, weights, bias, padding="same")
    Y = _batchnorm(Y, parameters, state, "batchnorm1", doTraining)
    Y = dl.relu(Y)

    # Main branch: convolution (stride 2), batch normalisation, ReLU, convolution, batch norm
    weights = parameters["conv2"]["Weights"]
    bias = parameters["conv2"]["Bias"]
    YnoSkip = dl.dlconv(Y, weights, bias, padding="same", stride=2)
    YnoSkip = _batchnorm(YnoSkip, parameters, state, "batchnorm2", doTraining)
    YnoSkip = dl.relu(YnoSkip)

    weights = parameters["conv3"]["Weights"]
    bias = parameters["conv3"]["Bias"]
    YnoSkip = dl.dlconv(YnoSkip, weights, bias, padding="same")
    YnoSkip = _batchnorm(YnoSkip, parameters, state, "batchnorm3", doTraining)

    # Skip connection: 1×1 convolution (stride 2), batch normalisation
    weights = parameters["convSkip"]["Weights"]
    bias = parameters["convSkip"]["Bias"]
    YSkip = dl.dlconv(Y, weights, bias, stride=2)
    YSkip = _batchnorm(YSkip, parameters, state, "batchnormSkip", doTraining)

    # Final operations: addition, ReLU, fully connect, softmax
    Y = YSkip + YnoSkip
    Y = dl.relu(Y)
    weights = parameters["fc1"]["Weights"]
    bias = parameters["fc1"]["Bias"]
    Y = dl.fullyconnect(Y, weights, bias)
    Y = dl.softmax(Y)
    return Y, state


def model_loss(parameters: dict, X, T, state: dict):
    """[loss, gradients, state] = modelLoss(parameters, X, T, state): the gradients have the
    structure of ``parameters`` (a dict of dicts of dlarrays)."""
    doTraining = True
    Y, state = model(parameters, X, doTraining, state)
    loss = dl.crossentropy(Y, T)
    gradients = dl.dlgradient(loss, parameters)
    return loss, gradients, state


def model_predictions(parameters: dict, state: dict, mbq, classes) -> np.ndarray:
    """The predicted class of every observation of ``mbq`` (inference: trained statistics)."""
    doTraining = False
    Y = []
    while mbq.hasdata():
        X = mbq.next()
        scores, _ = model(parameters, X, doTraining, state)
        Y.append(dl.onehotdecode(dl.extractdata(scores), classes, 0).ravel())
    mbq.reset()
    return np.concatenate(Y)


def preprocess_mini_batch(dataX, dataT, classes):
    """[X, T]: the images, and the labels one-hot encoded (C×N, one row per class)."""
    return dataX, dl.onehotencode(dataT.reshape(1, -1), 0, class_names=classes)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10, help="numEpochs")
    ap.add_argument("--quick", action="store_true", help="2 epochs")
    ap.add_argument("--mini-batch-size", type=int, default=128)
    ap.add_argument("--learn-rate", type=float, default=0.001, help="Adam's learning rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=HERE, help="folder for the PNG")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = 2

    t0 = time.perf_counter()
    gen = dl.rng(args.seed)  # the global generator: shuffling; also the initialisation below

    x_train, y_train, x_test, y_test = nn.load_digits_split()
    XTrain, TTrain = np.transpose(x_train, (2, 3, 1, 0)), y_train
    XTest, TTest = np.transpose(x_test, (2, 3, 1, 0)), y_test
    classes = np.arange(10)

    parameters, state = initialize_model(len(classes), XTrain.shape[:3], rng=gen)

    numEpochs = args.epochs
    miniBatchSize = args.mini_batch_size
    mbq = dl.minibatchqueue(
        dl.combine(dl.arrayDatastore(XTrain, iteration_dimension=4), dl.arrayDatastore(TTrain)),
        mini_batch_size=miniBatchSize,
        mini_batch_fcn=lambda X, T: preprocess_mini_batch(X, T, classes),
        mini_batch_format=["SSCB", "CB"],
    )
    mbqTest = dl.minibatchqueue(
        dl.arrayDatastore(XTest, iteration_dimension=4),
        mini_batch_size=miniBatchSize,
        mini_batch_format="SSCB",
    )
    trailingAvg = None
    trailingAvgSq = None

    numIterations = numEpochs * len(mbq)
    monitor = dl.trainingProgressMonitor(
        metrics=["Loss", "TestAccuracy"],
        info=["Epoch"],
        x_label="Iteration",
        progress_bar=False if args.no_progress else None,
    )

    epoch = 0
    iteration = 0
    while epoch < numEpochs and not monitor.stop:
        epoch += 1
        mbq.shuffle()
        while mbq.hasdata() and not monitor.stop:
            iteration += 1
            X, T = mbq.next()

            loss, gradients, state = dl.dlfeval(model_loss, parameters, X, T, state)

            parameters, trailingAvg, trailingAvgSq = dl.adamupdate(
                parameters, gradients, trailingAvg, trailingAvgSq, iteration, args.learn_rate
            )

            monitor.record_metrics(iteration, Loss=loss)
            monitor.update_info(Epoch=f"{epoch} of {numEpochs}")
            monitor.progress = 100 * iteration / numIterations
        acc = float(np.mean(model_predictions(parameters, state, mbqTest, classes) == TTest))
        monitor.record_metrics(iteration, TestAccuracy=acc)

    YTest = model_predictions(parameters, state, mbqTest, classes)
    accuracy = float(np.mean(YTest == TTest))
    elapsed = time.perf_counter() - t0
    monitor.status = f"test accuracy {accuracy:.2%}"
    png = monitor.save_png(os.path.join(args.out, "model_function.png"))
    monitor.close()

    print(f"{iteration} iterations ({epoch} epochs) in {elapsed:.1f} s")
    print(f"test accuracy: {accuracy:.2%} ({len(TTest)} images)")
    print(f"curves: {png}")
    return {
        "test_accuracy": accuracy,
        "iterations": iteration,
        "epochs": epoch,
        "seconds": elapsed,
        "loss": monitor.values("Loss"),
        "parameters": parameters,
        "state": state,
        "png": png,
    }


if __name__ == "__main__":
    main()
