"""Layers: small objects that know how to initialise their learnables and apply themselves.

A layer holds only its hyper-parameters.  ``init(rng, input_shape, dtype) -> (params, state)``
makes the learnables (a dict of arrays) and the state (e.g. batch-norm running statistics),
for inputs of shape ``(N,) + input_shape``; ``apply(params, state, x, training, rng) -> (y,
new_state)`` is pure: it never mutates anything, so it can be differentiated with respect to
``params`` (and ``x``) to any order.  :class:`Sequential` chains layers; a
:class:`~wengert.nn.Network` bundles a layer with its params and state.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import wengert.numpy as wnp
from wengert.core import primal_value
from wengert.nn import functional as F
from wengert.nn import init as I

__all__ = [
    "Layer",
    "Linear",
    "FullyConnected",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "BatchNorm",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm",
    "Dropout",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "GELU",
    "SiLU",
    "Softplus",
    "Tanh",
    "Sigmoid",
    "Softmax",
    "LogSoftmax",
    "Flatten",
    "Reshape",
    "Lambda",
    "MaxPool2d",
    "AvgPool2d",
    "GlobalAvgPool",
    "Embedding",
    "LSTM",
    "GRU",
    "MultiHeadAttention",
    "Sequential",
]

Shape = tuple


def _shape(v) -> tuple:
    return np.shape(primal_value(v))


def _initializer(spec: str | Callable, who: str) -> Callable:
    """An initializer from ``wengert.nn.init`` by name, or a callable ``(rng, shape, dtype)``."""
    if callable(spec):
        return spec
    fn = getattr(I, spec, None)
    if fn is None or not callable(fn):
        raise ValueError(f"{who}: unknown initializer {spec!r}; use a name from wengert.nn.init")
    return fn


def _ints(v, d: int, name: str) -> tuple:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * d
    v = tuple(operator.index(a) for a in v)
    if len(v) != d:
        raise ValueError(f"{name} must be an int or {d} ints, got {v!r}")
    return v


class Layer:
    """Base class.  Subclasses set ``init`` and ``apply``; the defaults have no learnables."""

    #: what the layer takes: "float" arrays, or "int" indices (embeddings)
    input_kind = "float"

    def init(self, rng: np.random.Generator, input_shape: Shape, dtype: Any = np.float32) -> tuple:
        """``(params, state)`` for inputs of shape ``(N,) + input_shape``."""
        return {}, {}

    def apply(
        self,
        params: dict,
        state: dict,
        x: Any,
        training: bool = False,
        rng: np.random.Generator | None = None,
    ) -> tuple:
        """``(y, new_state)``; pure."""
        raise NotImplementedError

    def output_shape(self, input_shape: Shape, dtype: Any = np.float32) -> Shape:
        """The shape of one output example (without the batch axis), by a dry run on zeros."""
        params, state = self.init(np.random.default_rng(0), tuple(input_shape), dtype)
        dt = np.int64 if self.input_kind == "int" else dtype
        y, _ = self.apply(params, state, np.zeros((1,) + tuple(input_shape), dt), False, None)
        return _shape(y)[1:]

    def _args(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args()})"


# ---------------------------------------------------------------------------------------------
# Dense, convolution, embedding
# ---------------------------------------------------------------------------------------------


class Linear(Layer):
    """Fully connected: y = x·Wᵀ + b over the last axis; W (out, in), b (out,).

    ``weight_init``/``bias_init``: a name from :mod:`wengert.nn.init` or ``f(rng, shape, dtype)``.
    """

    def __init__(
        self,
        out_features: int,
        bias: bool = True,
        weight_init: str | Callable = "glorot_uniform",
        bias_init: str | Callable = "zeros",
    ) -> None:
        self.out_features = int(out_features)
        self.bias = bias
        self.weight_init = _initializer(weight_init, "Linear")
        self.bias_init = _initializer(bias_init, "Linear")

    def init(self, rng, input_shape, dtype=np.float32):
        if not input_shape:
            raise ValueError("Linear: inputs need a feature axis, got input_shape ()")
        fan_in = input_shape[-1]
        p = {"weight": self.weight_init(rng, (self.out_features, fan_in), dtype)}
        if self.bias:
            p["bias"] = self.bias_init(rng, (self.out_features,), dtype)
        return p, {}

    def apply(self, params, state, x, training=False, rng=None):
        return F.fully_connect(x, params["weight"], params.get("bias")), state

    def _args(self):
        return f"{self.out_features}" + ("" if self.bias else ", bias=False")


FullyConnected = Linear


class _ConvNd(Layer):
    nd = 2

    def __init__(
        self,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: Any = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        weight_init: str | Callable = "glorot_uniform",
        bias_init: str | Callable = "zeros",
    ) -> None:
        self.out_channels = int(out_channels)
        self.kernel_size = _ints(kernel_size, self.nd, "kernel_size")
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = int(groups)
        self.bias = bias
        self.weight_init = _initializer(weight_init, type(self).__name__)
        self.bias_init = _initializer(bias_init, type(self).__name__)

    def init(self, rng, input_shape, dtype=np.float32):
        if len(input_shape) != self.nd + 1:
            raise ValueError(
                f"{type(self).__name__}: inputs must be (N, C, {'L' if self.nd == 1 else 'H, W'})"
                f", got input_shape {tuple(input_shape)} (without the batch axis)"
            )
        cin = input_shape[0]
        if cin % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"{type(self).__name__}: channels ({cin} in, {self.out_channels} out) must be "
                f"divisible by groups={self.groups}"
            )
        shape = (self.out_channels, cin // self.groups) + self.kernel_size
        p = {"weight": self.weight_init(rng, shape, dtype)}
        if self.bias:
            p["bias"] = self.bias_init(rng, (self.out_channels,), dtype)
        return p, {}

    def apply(self, params, state, x, training=False, rng=None):
        conv = F.conv1d if self.nd == 1 else F.conv2d
        y = conv(
            x,
            params["weight"],
            params.get("bias"),
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
        )
        return y, state

    def _args(self):
        s = f"{self.out_channels}, {self.kernel_size}"
        for nm, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
            v = getattr(self, nm)
            if v != default:
                s += f", {nm}={v!r}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution of (N, C_in, H, W) with a weight (C_out, C_in/groups, kH, kW) and bias
    (C_out,); ``padding``: int, per-axis ints, ``"same"`` or ``"valid"``."""

    nd = 2


class Conv1d(_ConvNd):
    """1-D convolution of (N, C_in, L) with a weight (C_out, C_in/groups, K)."""

    nd = 1


class ConvTranspose2d(Layer):
    """2-D transposed convolution of (N, C_in, H, W) with a weight (C_in, C_out/groups, kH, kW):
    H_out = (H − 1)·stride − 2·padding + kH + output_padding (and likewise W)."""

    def __init__(
        self,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: Any = 0,
        output_padding: int | Sequence[int] = 0,
        groups: int = 1,
        bias: bool = True,
        weight_init: str | Callable = "glorot_uniform",
        bias_init: str | Callable = "zeros",
    ) -> None:
        self.out_channels = int(out_channels)
        self.kernel_size = _ints(kernel_size, 2, "kernel_size")
        self.stride = stride
        self.padding = padding
        self.output_padding = output_padding
        self.groups = int(groups)
        self.bias = bias
        self.weight_init = _initializer(weight_init, "ConvTranspose2d")
        self.bias_init = _initializer(bias_init, "ConvTranspose2d")

    def init(self, rng, input_shape, dtype=np.float32):
        if len(input_shape) != 3:
            raise ValueError(
                f"ConvTranspose2d: inputs must be (N, C, H, W), got input_shape {tuple(input_shape)}"
            )
        cin = input_shape[0]
        if cin % self.groups or self.out_channels % self.groups:
            raise ValueError("ConvTranspose2d: channels must be divisible by groups")
        shape = (cin, self.out_channels // self.groups) + self.kernel_size
        p = {"weight": self.weight_init(rng, shape, dtype)}
        if self.bias:
            p["bias"] = self.bias_init(rng, (self.out_channels,), dtype)
        return p, {}

    def apply(self, params, state, x, training=False, rng=None):
        y = F.conv_transpose2d(
            x,
            params["weight"],
            params.get("bias"),
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
            groups=self.groups,
        )
        return y, state

    def _args(self):
        return f"{self.out_channels}, {self.kernel_size}, stride={self.stride!r}, padding={self.padding!r}"


class Embedding(Layer):
    """Rows of a table (num_embeddings, dim) at integer indices: (N, ...) → (N, ..., dim)."""

    input_kind = "int"

    def __init__(
        self, num_embeddings: int, dim: int, weight_init: str | Callable = "narrow_normal"
    ):
        self.num_embeddings = int(num_embeddings)
        self.dim = int(dim)
        self.weight_init = _initializer(weight_init, "Embedding")

    def init(self, rng, input_shape, dtype=np.float32):
        return {"weight": self.weight_init(rng, (self.num_embeddings, self.dim), dtype)}, {}

    def apply(self, params, state, x, training=False, rng=None):
        return F.embedding(x, params["weight"]), state

    def _args(self):
        return f"{self.num_embeddings}, {self.dim}"


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------


class BatchNorm(Layer):
    """Batch normalisation over every axis but the channels (axis 1): (N, C) or (N, C, ...).

    Training: normalise with the batch statistics and return updated running statistics
    (state ``mean``, ``var``) with ``momentum``; inference: normalise with the running ones.
    Learnables ``gamma`` (scale, ones) and ``beta`` (offset, zeros), shape (C,).
    """

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5) -> None:
        self.momentum = float(momentum)
        self.eps = float(eps)

    def init(self, rng, input_shape, dtype=np.float32):
        if not input_shape:
            raise ValueError("BatchNorm: inputs must be (N, C, ...)")
        c = input_shape[0]
        params = {"gamma": np.ones(c, dtype), "beta": np.zeros(c, dtype)}
        state = {"mean": np.zeros(c, dtype), "var": np.ones(c, dtype)}
        return params, state

    def apply(self, params, state, x, training=False, rng=None):
        if training:
            y, m, v = F.batch_norm(
                x,
                params["gamma"],
                params["beta"],
                state["mean"],
                state["var"],
                training=True,
                momentum=self.momentum,
                eps=self.eps,
            )
            return y, {"mean": m, "var": v}
        y = F.batch_norm(
            x,
            params["gamma"],
            params["beta"],
            state["mean"],
            state["var"],
            training=False,
            momentum=self.momentum,
            eps=self.eps,
        )
        return y, state

    def _args(self):
        return f"momentum={self.momentum}, eps={self.eps}"


class LayerNorm(Layer):
    """Layer normalisation of each example over its last ``num_axes`` axes, with learnable
    ``gamma``/``beta`` of their shape.  Default (as MATLAB): the feature axis of vectors and
    sequences, (N, C) and (N, T, C); all of C, H, W for images (N, C, H, W)."""

    def __init__(self, num_axes: int | None = None, eps: float = 1e-5) -> None:
        self.num_axes = num_axes
        self.eps = float(eps)

    def _norm_shape(self, input_shape):
        if self.num_axes is None:
            k = 1 if len(input_shape) <= 2 else len(input_shape)
        else:
            k = self.num_axes
        return tuple(input_shape[len(input_shape) - k :])

    def init(self, rng, input_shape, dtype=np.float32):
        s = self._norm_shape(input_shape)
        return {"gamma": np.ones(s, dtype), "beta": np.zeros(s, dtype)}, {}

    def apply(self, params, state, x, training=False, rng=None):
        g = params["gamma"]
        return F.layer_norm(x, _shape(g), g, params["beta"], eps=self.eps), state

    def _args(self):
        return f"eps={self.eps}"


class GroupNorm(Layer):
    """Group normalisation of (N, C, ...): statistics per example over each of ``num_groups``
    channel groups; learnable per-channel ``gamma``/``beta``."""

    def __init__(self, num_groups: int, eps: float = 1e-5) -> None:
        self.num_groups = int(num_groups)
        self.eps = float(eps)

    def init(self, rng, input_shape, dtype=np.float32):
        c = input_shape[0]
        if c % self.num_groups:
            raise ValueError(f"GroupNorm: {c} channels do not split into {self.num_groups} groups")
        return {"gamma": np.ones(c, dtype), "beta": np.zeros(c, dtype)}, {}

    def apply(self, params, state, x, training=False, rng=None):
        y = F.group_norm(x, self.num_groups, params["gamma"], params["beta"], eps=self.eps)
        return y, state

    def _args(self):
        return f"{self.num_groups}"


class InstanceNorm(Layer):
    """Instance normalisation of (N, C, ...): per example and channel over the spatial axes."""

    def __init__(self, eps: float = 1e-5) -> None:
        self.eps = float(eps)

    def init(self, rng, input_shape, dtype=np.float32):
        c = input_shape[0]
        return {"gamma": np.ones(c, dtype), "beta": np.zeros(c, dtype)}, {}

    def apply(self, params, state, x, training=False, rng=None):
        return F.instance_norm(x, params["gamma"], params["beta"], eps=self.eps), state


class Dropout(Layer):
    """Inverted dropout with probability ``p`` while training (needs ``rng``); identity in
    inference."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must lie in [0, 1), got {p}")
        self.p = float(p)

    def apply(self, params, state, x, training=False, rng=None):
        if training and self.p > 0 and rng is None:
            raise ValueError(
                "Dropout: training needs randomness; pass rng=np.random.default_rng(seed) to "
                "forward/apply"
            )
        return F.dropout(x, self.p, training=training, rng=rng), state

    def _args(self):
        return f"{self.p}"


# ---------------------------------------------------------------------------------------------
# Activations and reshaping
# ---------------------------------------------------------------------------------------------


class Activation(Layer):
    """An elementwise (or per-example) function with no learnables: ``Activation(F.relu)``."""

    def __init__(self, fn: Callable, **kwargs: Any) -> None:
        self.fn = fn
        self.kwargs = kwargs

    def apply(self, params, state, x, training=False, rng=None):
        return self.fn(x, **self.kwargs), state

    def output_shape(self, input_shape, dtype=np.float32):
        return tuple(input_shape)

    def _args(self):
        if type(self) is Activation:
            return getattr(self.fn, "__name__", "fn")
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())


class ReLU(Activation):
    """max(x, 0)."""

    def __init__(self) -> None:
        super().__init__(F.relu)


class LeakyReLU(Activation):
    """x for x > 0, alpha·x otherwise."""

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__(F.leaky_relu, alpha=alpha)


class ELU(Activation):
    """x for x > 0, alpha·(eˣ − 1) otherwise."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(F.elu, alpha=alpha)


class GELU(Activation):
    """x·Φ(x) (``approximate="tanh"`` for the tanh form)."""

    def __init__(self, approximate: bool | str = False) -> None:
        super().__init__(F.gelu, approximate=approximate)


class SiLU(Activation):
    """x·σ(x)."""

    def __init__(self) -> None:
        super().__init__(F.silu)


class Softplus(Activation):
    """log(1 + eˣ)."""

    def __init__(self) -> None:
        super().__init__(F.softplus)


class Tanh(Activation):
    """tanh x."""

    def __init__(self) -> None:
        super().__init__(F.tanh)


class Sigmoid(Activation):
    """σ(x) = 1 / (1 + e⁻ˣ)."""

    def __init__(self) -> None:
        super().__init__(F.sigmoid)


class Softmax(Activation):
    """exp(x) / Σ exp(x) along ``axis`` (default the last)."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__(F.softmax, axis=axis)


class LogSoftmax(Activation):
    """x − logsumexp(x) along ``axis``."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__(F.log_softmax, axis=axis)


class Flatten(Layer):
    """(N, d1, d2, ...) → (N, d1·d2·...)."""

    def apply(self, params, state, x, training=False, rng=None):
        s = _shape(x)
        return wnp.reshape(x, (s[0], -1)), state

    def output_shape(self, input_shape, dtype=np.float32):
        return (int(np.prod(input_shape)),)


class Reshape(Layer):
    """(N, ...) → (N,) + ``shape`` (one entry may be −1)."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(int(s) for s in shape)

    def apply(self, params, state, x, training=False, rng=None):
        return wnp.reshape(x, (_shape(x)[0],) + self.shape), state

    def _args(self):
        return f"{self.shape}"


class Lambda(Layer):
    """Any function of the input with no learnables, e.g. ``Lambda(lambda x: x * 2)``."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def apply(self, params, state, x, training=False, rng=None):
        return self.fn(x), state

    def _args(self):
        return getattr(self.fn, "__name__", "fn")


class MaxPool2d(Layer):
    """2-D max pooling (stride defaults to the kernel size)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def apply(self, params, state, x, training=False, rng=None):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding), state

    def _args(self):
        return f"{self.kernel_size!r}, stride={self.stride!r}, padding={self.padding!r}"


class AvgPool2d(MaxPool2d):
    """2-D average pooling (stride defaults to the kernel size)."""

    def apply(self, params, state, x, training=False, rng=None):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding), state


class GlobalAvgPool(Layer):
    """Mean over every spatial axis: (N, C, *S) → (N, C)."""

    def apply(self, params, state, x, training=False, rng=None):
        return F.global_avg_pool(x), state

    def output_shape(self, input_shape, dtype=np.float32):
        return (input_shape[0],)


# ---------------------------------------------------------------------------------------------
# Recurrent and attention layers
# ---------------------------------------------------------------------------------------------


class LSTM(Layer):
    """Long short-term memory over whole sequences: (N, T, C) → all hidden states (N, T, H),
    or the last one (N, H) with ``return_sequences=False``.  Gates (input, forget, cell,
    output); learnables ``weight_ih`` (4H, C) Glorot, ``weight_hh`` (4H, H) orthogonal,
    ``bias`` (4H,) with the forget-gate entries 1 (unit forget gate).  Initial states zero."""

    def __init__(self, hidden_size: int, return_sequences: bool = True) -> None:
        self.hidden_size = int(hidden_size)
        self.return_sequences = return_sequences

    def init(self, rng, input_shape, dtype=np.float32):
        if len(input_shape) != 2:
            raise ValueError(
                f"LSTM: inputs must be (N, T, C), got input_shape {tuple(input_shape)}"
            )
        h, c = self.hidden_size, input_shape[-1]
        return {
            "weight_ih": I.glorot_uniform(rng, (4 * h, c), dtype),
            "weight_hh": I.orthogonal(rng, (4 * h, h), dtype),
            "bias": I.unit_forget_gate(rng, (4 * h,), dtype),
        }, {}

    def apply(self, params, state, x, training=False, rng=None):
        ys, h, _ = F.lstm(x, None, None, params["weight_ih"], params["weight_hh"], params["bias"])
        return (ys if self.return_sequences else h), state

    def _args(self):
        return f"{self.hidden_size}, return_sequences={self.return_sequences}"


class GRU(Layer):
    """Gated recurrent unit over whole sequences: (N, T, C) → (N, T, H) (or (N, H)).  Gates
    (reset, update, candidate), reset applied after the recurrent product; learnables
    ``weight_ih`` (3H, C), ``weight_hh`` (3H, H), ``bias_ih``, ``bias_hh`` (3H,)."""

    def __init__(self, hidden_size: int, return_sequences: bool = True) -> None:
        self.hidden_size = int(hidden_size)
        self.return_sequences = return_sequences

    def init(self, rng, input_shape, dtype=np.float32):
        if len(input_shape) != 2:
            raise ValueError(f"GRU: inputs must be (N, T, C), got input_shape {tuple(input_shape)}")
        h, c = self.hidden_size, input_shape[-1]
        return {
            "weight_ih": I.glorot_uniform(rng, (3 * h, c), dtype),
            "weight_hh": I.orthogonal(rng, (3 * h, h), dtype),
            "bias_ih": I.zeros(rng, (3 * h,), dtype),
            "bias_hh": I.zeros(rng, (3 * h,), dtype),
        }, {}

    def apply(self, params, state, x, training=False, rng=None):
        ys, h = F.gru(
            x, None, params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"]
        )
        return (ys if self.return_sequences else h), state

    def _args(self):
        return f"{self.hidden_size}, return_sequences={self.return_sequences}"


class MultiHeadAttention(Layer):
    """Multi-head self-attention over (N, T, E): per head softmax(q·kᵀ/√d)·v, heads
    concatenated and projected.  ``causal`` masks later positions; ``dropout`` drops attention
    weights while training.  The input may be ``(x, key_padding_mask)`` with the mask (N, T)
    True at padding.  Learnables ``w_q``, ``w_k``, ``w_v``, ``w_o`` (E, E), biases (E,)."""

    def __init__(self, num_heads: int, causal: bool = False, dropout: float = 0.0) -> None:
        self.num_heads = int(num_heads)
        self.causal = causal
        self.dropout = float(dropout)

    def init(self, rng, input_shape, dtype=np.float32):
        if len(input_shape) != 2:
            raise ValueError(
                f"MultiHeadAttention: inputs must be (N, T, E), got input_shape {tuple(input_shape)}"
            )
        e = input_shape[-1]
        if e % self.num_heads:
            raise ValueError(
                f"MultiHeadAttention: E={e} must be divisible by num_heads={self.num_heads}"
            )
        p = {}
        for nm in ("q", "k", "v", "o"):
            p[f"w_{nm}"] = I.glorot_uniform(rng, (e, e), dtype)
            p[f"b_{nm}"] = I.zeros(rng, (e,), dtype)
        return p, {}

    def apply(self, params, state, x, training=False, rng=None):
        pad = None
        if isinstance(x, tuple):
            x, pad = x
        y = F.multi_head_attention(
            x, x, params["w_q"], params["w_k"], params["w_v"], params["w_o"],
            params["b_q"], params["b_k"], params["b_v"], params["b_o"],
            num_heads=self.num_heads, causal=self.causal, key_padding_mask=pad,
            dropout_p=self.dropout, rng=rng, training=training,
        )  # fmt: skip
        return y, state

    def _args(self):
        return f"{self.num_heads}, causal={self.causal}"


# ---------------------------------------------------------------------------------------------
# Sequential
# ---------------------------------------------------------------------------------------------


class Sequential(Layer):
    """Layers applied one after another.  Params and state are dicts keyed by layer name
    (``"<kind>_<index>"``, e.g. ``"conv2d_0"``, or the name given as ``(name, layer)``); layers
    with no learnables (or no state) have no entry."""

    def __init__(self, *layers: Layer | tuple[str, Layer] | Sequence) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)) and not _is_named(layers[0]):
            layers = tuple(layers[0])
        self.names: list[str] = []
        self.layers: list[Layer] = []
        for i, item in enumerate(layers):
            if _is_named(item):
                name, layer = item
            else:
                name, layer = f"{type(item).__name__.lower()}_{i}", item
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Layer")
            if name in self.names:
                raise ValueError(f"Sequential: two layers are named {name!r}")
            self.names.append(name)
            self.layers.append(layer)
        self.input_kind = self.layers[0].input_kind if self.layers else "float"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int | str) -> Layer:
        if isinstance(i, str):
            return self.layers[self.names.index(i)]
        return self.layers[i]

    def init(self, rng, input_shape, dtype=np.float32):
        params: dict = {}
        state: dict = {}
        shape = tuple(input_shape)
        dt = np.int64 if self.input_kind == "int" else dtype
        x = np.zeros((1,) + shape, dt)
        for name, layer in zip(self.names, self.layers):
            p, s = layer.init(rng, _shape(x)[1:], dtype)
            if p:
                params[name] = p
            if s:
                state[name] = s
            x, _ = layer.apply(p, s, x, False, None)
        return params, state

    def apply(self, params, state, x, training=False, rng=None):
        new_state = dict(state)
        for name, layer in zip(self.names, self.layers):
            x, s = layer.apply(params.get(name, {}), state.get(name, {}), x, training, rng)
            if name in state:
                new_state[name] = s
        return x, new_state

    def shapes(self, input_shape: Shape, dtype: Any = np.float32) -> list[tuple[str, Shape]]:
        """``(name, output shape)`` of every layer for inputs of shape ``(N,) + input_shape``."""
        out = []
        params, state = self.init(np.random.default_rng(0), input_shape, dtype)
        dt = np.int64 if self.input_kind == "int" else dtype
        x = np.zeros((1,) + tuple(input_shape), dt)
        for name, layer in zip(self.names, self.layers):
            x, _ = layer.apply(params.get(name, {}), state.get(name, {}), x, False, None)
            out.append((name, _shape(x)[1:]))
        return out

    def __repr__(self) -> str:
        body = ",\n".join(f"  {n}: {layer!r}" for n, layer in zip(self.names, self.layers))
        return f"Sequential(\n{body}\n)"


def _is_named(item) -> bool:
    return (
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], Layer)
    )
