"""wengert.nn: a deep-learning toolkit for custom training loops, built on the engine.

Functional ops (``wengert.nn.functional``), losses and initializers; layers and a ``Network``
whose learnables and state are pytrees; optimizers, data iterators, a training monitor and
checkpoints.
"""

from wengert.nn import data, functional, init, io, layers, losses, monitor, optim
from wengert.nn.data import MinibatchIterator, load_digits, load_digits_split, minibatches
from wengert.nn.io import (
    load_checkpoint,
    load_network,
    load_optimizer_state,
    load_pytree,
    save_checkpoint,
    save_network,
    save_optimizer_state,
    save_pytree,
)
from wengert.nn.layers import (
    ELU,
    GELU,
    GRU,
    LSTM,
    Activation,
    AvgPool2d,
    BatchNorm,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Embedding,
    Flatten,
    FullyConnected,
    GlobalAvgPool,
    GroupNorm,
    InstanceNorm,
    Lambda,
    Layer,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    MultiHeadAttention,
    ReLU,
    Reshape,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from wengert.nn.monitor import TrainingMonitor, plot_curves
from wengert.nn.network import Network, accuracy
from wengert.nn.optim import (
    LBFGS,
    Optimizer,
    Schedule,
    adam,
    adamw,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    constant,
    cosine_decay,
    exponential_decay,
    global_norm,
    join,
    lbfgs,
    momentum,
    nesterov,
    piecewise,
    rmsprop,
    sgd,
    step_decay,
    time_based_decay,
    warmup,
)

__all__ = [n for n in dir() if not n.startswith("_")]
