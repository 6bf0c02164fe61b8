"""wengert.dl: MATLAB's Deep Learning Toolbox workflow under its MATLAB names.

``dlarray`` with format labels, ``dlfeval``/``dlgradient`` tracing, ``dlnetwork``, the update
functions, ``minibatchqueue`` and ``trainingProgressMonitor``: a thin face over
:mod:`wengert.nn` and the engine (no op is implemented twice).  docs/dl.md maps MATLAB's
name-value options to the keywords used here.
"""

from wengert.dl._accelerate import AcceleratedFunction, dlaccelerate
from wengert.dl._data import arrayDatastore, combine, hasdata, minibatchqueue, reset, shuffle
from wengert.dl._dlarray import dims, dlarray, extractdata, finddim, isdlarray, stripdims
from wengert.dl._io import load, save
from wengert.dl._monitor import trainingProgressMonitor
from wengert.dl._network import (
    Table,
    averagePooling2dLayer,
    batchNormalizationLayer,
    convolution2dLayer,
    dlnetwork,
    dropoutLayer,
    featureInputLayer,
    flattenLayer,
    forward,
    fullyConnectedLayer,
    globalAveragePooling2dLayer,
    gruLayer,
    imageInputLayer,
    initialize,
    layerNormalizationLayer,
    leakyReluLayer,
    lstmLayer,
    maxPooling2dLayer,
    predict,
    projectAndReshapeLayer,
    reluLayer,
    resetState,
    rng,
    sequenceInputLayer,
    sigmoidLayer,
    softmaxLayer,
    tanhLayer,
    transposedConv2dLayer,
)
from wengert.dl._ops import (
    attention,
    avgpool,
    batchnorm,
    crossentropy,
    dlconv,
    dltranspconv,
    embed,
    fullyconnect,
    gelu,
    groupnorm,
    gru,
    huber,
    indexcrossentropy,
    instancenorm,
    l1loss,
    l2loss,
    layernorm,
    leakyrelu,
    lstm,
    maxpool,
    mse,
    onehotdecode,
    onehotencode,
    relu,
    sigmoid,
    softmax,
)
from wengert.dl._trace import (
    dldivergence,
    dlfeval,
    dlgradient,
    dljacobian,
    dllaplacian,
    iter_dlarrays,
    map_dlarrays,
)
from wengert.dl._update import (
    adamupdate,
    dlupdate,
    lbfgsState,
    lbfgsupdate,
    rmspropupdate,
    sgdmupdate,
)

__all__ = ["dlarray", "isdlarray", "dims", "finddim", "stripdims", "extractdata"]
__all__ += [
    "fullyconnect", "dlconv", "dltranspconv", "batchnorm", "layernorm", "instancenorm",
    "groupnorm", "maxpool", "avgpool", "lstm", "gru", "attention", "embed", "relu",
    "leakyrelu", "gelu", "sigmoid", "softmax", "crossentropy", "indexcrossentropy", "mse",
    "l1loss", "l2loss", "huber", "onehotencode", "onehotdecode",
]  # fmt: skip
__all__ += [
    "dlnetwork", "Table", "forward", "predict", "initialize", "resetState", "rng",
    "imageInputLayer", "featureInputLayer", "sequenceInputLayer", "convolution2dLayer",
    "transposedConv2dLayer", "fullyConnectedLayer", "batchNormalizationLayer",
    "layerNormalizationLayer", "reluLayer", "leakyReluLayer", "tanhLayer", "sigmoidLayer",
    "softmaxLayer", "dropoutLayer", "maxPooling2dLayer", "averagePooling2dLayer",
    "globalAveragePooling2dLayer", "flattenLayer", "lstmLayer", "gruLayer",
    "projectAndReshapeLayer", "adamupdate", "sgdmupdate", "rmspropupdate", "lbfgsupdate",
    "lbfgsState", "dlupdate", "minibatchqueue", "arrayDatastore", "combine", "hasdata",
    "shuffle", "reset", "trainingProgressMonitor",
]  # fmt: skip
__all__ += [
    "dlfeval", "dlgradient", "dljacobian", "dldivergence", "dllaplacian", "map_dlarrays",
    "iter_dlarrays", "dlaccelerate", "AcceleratedFunction",
]  # fmt: skip
__all__ += ["save", "load"]
