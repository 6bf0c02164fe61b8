"""``wengert.nn.functional``: the differentiable ops of deep learning, batched and channel-first.

Inputs are (N, C, *spatial) like PyTorch; convolution weights (C_out, C_in/groups, *kernel);
dense weights (out_features, in_features).  Every op has forward- and reverse-mode rules of
every order; float32 stays float32.
"""

from ._activations import (
    elu,
    erf,
    gelu,
    leaky_relu,
    log_sigmoid,
    log_softmax,
    one_hot,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from ._attention import attention, causal_mask, multi_head_attention
from ._conv import (
    conv1d,
    conv2d,
    conv3d,
    conv_general,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from ._dense import dropout, embedding, fully_connect
from ._norm import batch_norm, group_norm, instance_norm, layer_norm
from ._pool import (
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    global_avg_pool,
    global_max_pool,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    max_unpool1d,
    max_unpool2d,
)
from ._recurrent import gru, gru_cell, lstm, lstm_cell

__all__ = [n for n in dir() if not n.startswith("_")]
