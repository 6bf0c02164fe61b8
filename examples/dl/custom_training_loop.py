"""MATLAB's "Train Network Using Custom Training Loop" example, ported to wengert.dl on the 8×8
digits of scikit-learn (MATLAB's page uses its 28×28 digits).

Same structure and names as the MATLAB page:

* a ``dlnetwork`` of MATLAB layers: ``imageInputLayer([8 8 1])``, three
  ``convolution2dLayer`` + ``batchNormalizationLayer`` + ``reluLayer`` blocks,
  ``fullyConnectedLayer(numClasses)``, ``softmaxLayer``;
* a ``minibatchqueue`` whose ``mini_batch_fcn`` (``preprocess_mini_batch``) one-hot encodes
  the labels, with mini-batch formats "SSCB" (images) and "CB" (targets);
* ``model_loss(net, X, T)`` = ``forward`` + ``crossentropy`` + ``dlgradient(loss,
  net.learnables)``, evaluated with ``dlfeval``; the batch-norm state kept with
  ``net.state = state``;
* ``sgdmupdate`` with time-based learning-rate decay,
  learnRate = initialLearnRate / (1 + decay·iteration);
* a ``trainingProgressMonitor`` (metric Loss, info Epoch and LearnRate); here it also
  records the test accuracy after each epoch, and its curves go to
  ``custom_training_loop.png``;
* the test accuracy from ``model_predictions`` (``predict`` + ``onehotdecode``).

    python examples/dl/custom_training_loop.py            # full run: 10 epochs (see README.md)
    python examples/dl/custom_training_loop.py --quick    # 2 epochs
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import wengert.dl as dl
import wengert.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


def network_layers(inputSize=(8, 8, 1), numClasses: int = 10) -> list:
    """The layers of the MATLAB page (filter sizes 5, 3, 3 with 20 filters each)."""
    return [
        dl.imageInputLayer(list(inputSize), normalization="none"),
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
    """[loss, gradients, state] = modelLoss(net, X, T) of the MATLAB page."""
    Y, state = dl.forward(net, X)
    loss = dl.crossentropy(Y, T)
    gradients = dl.dlgradient(loss, net.learnables)
    return loss, gradients, state


def preprocess_mini_batch_predictors(dataX):
    """The images as they are (already H×W×C×N in [0, 1])."""
    return dataX


def preprocess_mini_batch(dataX, dataT, classes):
    """[X, T]: the images, and the labels one-hot encoded along the first dimension (C×N);
    ``classes`` fixes the rows (a mini-batch may lack a class)."""
    X = preprocess_mini_batch_predictors(dataX)
    T = dl.onehotencode(dataT.reshape(1, -1), 0, class_names=classes)
    return X, T


def model_predictions(net, mbq, classes) -> np.ndarray:
    """The predicted class of every observation of ``mbq``."""
    Y = []
    while mbq.hasdata():
        X = mbq.next()
        scores = dl.predict(net, X)
        scores = dl.extractdata(scores)
        labels = dl.onehotdecode(scores, classes, 0).ravel()
        Y.append(labels)
    mbq.reset()
    return np.concatenate(Y)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10, help="numEpochs")
    ap.add_argument("--quick", action="store_true", help="2 epochs")
    ap.add_argument("--mini-batch-size", type=int, default=128)
    ap.add_argument("--initial-learn-rate", type=float, default=0.01)
    ap.add_argument("--decay", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=HERE, help="folder for the PNG")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = 2

    t0 = time.perf_counter()
    dl.rng(args.seed)  # the global generator: initialisation and shuffling

    # Load the training and test data: images H×W×C×N (MATLAB's layout), labels 0..9
    x_train, y_train, x_test, y_test = nn.load_digits_split()
    XTrain, TTrain = np.transpose(x_train, (2, 3, 1, 0)), y_train
    XTest, TTest = np.transpose(x_test, (2, 3, 1, 0)), y_test
    classes = np.arange(10)
    numClasses = len(classes)
    dsTrain = dl.combine(
        dl.arrayDatastore(XTrain, iteration_dimension=4), dl.arrayDatastore(TTrain)
    )

    # Define the network
    net = dl.dlnetwork(network_layers((8, 8, 1), numClasses))

    # Training options
    numEpochs = args.epochs
    miniBatchSize = args.mini_batch_size
    initialLearnRate = args.initial_learn_rate
    decay = args.decay
    momentum = args.momentum

    mbq = dl.minibatchqueue(
        dsTrain,
        2,
        mini_batch_size=miniBatchSize,
        mini_batch_fcn=lambda X, T: preprocess_mini_batch(X, T, classes),
        mini_batch_format=["SSCB", "CB"],
    )
    mbqTest = dl.minibatchqueue(
        dl.arrayDatastore(XTest, iteration_dimension=4),
        1,
        mini_batch_size=miniBatchSize,
        mini_batch_fcn=preprocess_mini_batch_predictors,
        mini_batch_format="SSCB",
    )
    velocity = None

    numIterationsPerEpoch = len(mbq)  # ceil(numObservations / miniBatchSize)
    numIterations = numEpochs * numIterationsPerEpoch

    monitor = dl.trainingProgressMonitor(
        metrics=["Loss", "TestAccuracy"],
        info=["Epoch", "LearnRate"],
        x_label="Iteration",
        progress_bar=False if args.no_progress else None,
    )

    # Train the network
    epoch = 0
    iteration = 0
    learnRate = initialLearnRate
    while epoch < numEpochs and not monitor.stop:
        epoch += 1
        mbq.shuffle()
        while mbq.hasdata() and not monitor.stop:
            iteration += 1
            X, T = mbq.next()

            loss, gradients, state = dl.dlfeval(model_loss, net, X, T)
            net.state = state

            # time-based decay of the learning rate
            learnRate = initialLearnRate / (1 + decay * iteration)
            net, velocity = dl.sgdmupdate(net, gradients, velocity, learnRate, momentum)

            monitor.record_metrics(iteration, Loss=loss)
            monitor.update_info(Epoch=f"{epoch} of {numEpochs}", LearnRate=learnRate)
            monitor.progress = 100 * iteration / numIterations
        # (beyond the MATLAB page) the test accuracy after each epoch, for the curves
        accuracy = float(np.mean(model_predictions(net, mbqTest, classes) == TTest))
        monitor.record_metrics(iteration, TestAccuracy=accuracy)

    # Test the network
    YTest = model_predictions(net, mbqTest, classes)
    accuracy = float(np.mean(TTest == YTest))
    elapsed = time.perf_counter() - t0
    monitor.status = f"test accuracy {accuracy:.2%}"
    png = monitor.save_png(os.path.join(args.out, "custom_training_loop.png"))
    monitor.close()

    losses = monitor.values("Loss")
    print(
        f"{iteration} iterations ({epoch} epochs) in {elapsed:.1f} s; final learn rate {learnRate:.4g}"
    )
    print(f"test accuracy: {accuracy:.2%} ({len(TTest)} images)")
    print(f"curves: {png}")
    return {
        "test_accuracy": accuracy,
        "iterations": iteration,
        "epochs": epoch,
        "seconds": elapsed,
        "loss": losses,
        "learn_rate": learnRate,
        "png": png,
        "net": net,
    }


if __name__ == "__main__":
    main()
