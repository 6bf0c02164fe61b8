"""Activation functions (relu, sigmoid, softmax, gelu...) and ``one_hot``.

The hot or numerically delicate ones are primitives with their rules beside them (written with
wengert's own operations, so they differentiate again); the rest are composites.
"""

from __future__ import annotations

import math

import numpy as _np

import wengert.numpy as wnp
from wengert.core import ANS, Primitive, primal_value
from wengert.nn.functional._types import Array

__all__ = [
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "silu",
    "softplus",
    "log_sigmoid",
    "erf",
    "one_hot",
]


def _axis(axis: int, nd: int) -> int:
    """``axis`` as a negative int (so it applies unchanged to batched tangents)."""
    if not -nd <= axis < nd:
        raise _np.exceptions.AxisError(axis, nd)
    return axis - nd if axis >= 0 else axis


# ---------------------------------------------------------------------------------------------
# relu: the derivative is the constant mask x > 0 (read off the output: relu(x) > 0 ⇔ x > 0)
# ---------------------------------------------------------------------------------------------


_BLOCK = 1024
_zero_blocks: dict = {}


def _relu_impl(x):
    # NumPy's maximum against a scalar 0 runs a scalar loop; against a block of zeros (both
    # operands contiguous) it runs its SIMD loop, about 3x faster.  Same result, NaN included.
    # The result keeps x's memory order (channels-last stays channels-last).
    if type(x) is _np.ndarray and x.dtype.kind == "f" and x.size % _BLOCK == 0 and x.size:
        perm = sorted(range(x.ndim), key=lambda i: -x.strides[i])  # x's memory order
        xm = x.transpose(perm)
        if xm.flags.c_contiguous:
            zeros = _zero_blocks.get(x.dtype)
            if zeros is None:
                zeros = _zero_blocks[x.dtype] = _np.zeros(_BLOCK, x.dtype)
            out = _np.empty(xm.shape, x.dtype)
            _np.maximum(xm.reshape(-1, _BLOCK), zeros, out=out.reshape(-1, _BLOCK))
            return out.transpose(_np.argsort(perm))
    return _np.maximum(x, 0)


def _relu_d(t, ans, x):
    return t * (primal_value(ans) > 0)  # a boolean mask: no float copy of it


relu_p = Primitive("relu", _relu_impl, elementwise=True, fmt="relu {0}")
relu_p.defjvp(_relu_d).defvjp(_relu_d).saving((ANS,))


def relu(x: Array) -> Array:
    """max(x, 0).  Derivative 1 for x > 0 and 0 for x ≤ 0 (the subgradient 0 at the kink)."""
    return relu_p(x)


def leaky_relu(x: Array, alpha: float = 0.01) -> Array:
    """x for x > 0, α·x otherwise: x times the constant slope mask."""
    xv = primal_value(x)
    return x * _np.where(xv > 0, _np.ones((), xv.dtype), _np.asarray(alpha, xv.dtype))


def elu(x: Array, alpha: float = 1.0) -> Array:
    """x for x > 0, α·(eˣ − 1) otherwise.  The exponential only sees x ≤ 0 (no overflow)."""
    pos = primal_value(x) > 0
    neg = wnp.where(pos, 0, x)
    return wnp.where(pos, x, alpha * wnp.expm1(neg))


# ---------------------------------------------------------------------------------------------
# sigmoid, softplus, log_sigmoid: stable for any |x|
# ---------------------------------------------------------------------------------------------


def _sigmoid_impl(x):
    e = _np.exp(-_np.abs(x))  # in (0, 1]: never overflows
    r = 1 / (1 + e)
    return _np.where(x >= 0, r, e * r)


sigmoid_p = Primitive("sigmoid", _sigmoid_impl, elementwise=True, fmt="σ({0})")
_sig_d = lambda t, ans, x: t * (ans * (1 - ans))
sigmoid_p.defjvp(_sig_d).defvjp(_sig_d).saving((ANS,))


def sigmoid(x: Array) -> Array:
    """σ(x) = 1 / (1 + e⁻ˣ), evaluated as e^{−|x|}-based branches so it never overflows.
    σ′ = σ(1 − σ)."""
    return sigmoid_p(x)


def _softplus_impl(x):
    return _np.logaddexp(_np.zeros((), _np.result_type(x)), x)


softplus_p = Primitive("softplus", _softplus_impl, elementwise=True, fmt="softplus {0}")
_sp_d = lambda t, ans, x: t * sigmoid_p(x)
softplus_p.defjvp(_sp_d).defvjp(_sp_d).saving((0,))


def softplus(x: Array, beta: float = 1.0) -> Array:
    """log(1 + eᵝˣ)/β, computed as max(z, 0) + log1p(e^{−|z|}) (z = βx): no overflow for
    large |x|.  Derivative σ(βx)."""
    if beta == 1.0:
        return softplus_p(x)
    return softplus_p(x * beta) / beta


def log_sigmoid(x: Array) -> Array:
    """log σ(x) = −softplus(−x), stable for any x."""
    return -softplus_p(-x)


def silu(x: Array) -> Array:
    """x·σ(x) (also called swish)."""
    return x * sigmoid_p(x)


def tanh(x: Array) -> Array:
    """The hyperbolic tangent (``wengert.numpy.tanh``)."""
    return wnp.tanh(x)


# ---------------------------------------------------------------------------------------------
# erf and gelu
# ---------------------------------------------------------------------------------------------

try:  # SciPy's erf is vectorised C; without SciPy fall back to the standard library's erf
    from scipy.special import erf as _erf_np
except ImportError:  # pragma: no cover - depends on the environment
    _erf_np = None
_erf_scalar = _np.frompyfunc(math.erf, 1, 1)


def _erf_impl(x):
    x = _np.asarray(x)
    if _erf_np is not None:
        return _erf_np(x).astype(x.dtype, copy=False)
    return _erf_scalar(x).astype(x.dtype if x.dtype.kind == "f" else float)


erf_p = Primitive("erf", _erf_impl, elementwise=True, fmt="erf {0}")
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
_erf_d = lambda t, ans, x: t * (_TWO_OVER_SQRT_PI * wnp.exp(-(x * x)))
erf_p.defjvp(_erf_d).defvjp(_erf_d).saving((0,))


def erf(x: Array) -> Array:
    """The error function erf(x) = 2/√π ∫₀ˣ e^{−s²} ds; derivative 2/√π·e^{−x²}."""
    return erf_p(x)


_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def gelu(x: Array, approximate: bool | str = False) -> Array:
    """Gaussian error linear unit x·Φ(x) = ½x(1 + erf(x/√2)).

    ``approximate=True`` (or ``"tanh"``) uses ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    """
    if approximate in (True, "tanh"):
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))
        return 0.5 * x * (1 + wnp.tanh(inner))
    if approximate not in (False, "none", None):
        raise ValueError(
            f"gelu: approximate must be False/'none' or True/'tanh', not {approximate!r}"
        )
    return 0.5 * x * (1 + erf_p(x * _SQRT_HALF))


# ---------------------------------------------------------------------------------------------
# softmax and log_softmax along an axis
# ---------------------------------------------------------------------------------------------


def _softmax_impl(x, axis):
    e = _np.exp(x - _np.maximum.reduce(x, axis=axis, keepdims=True))
    e /= _np.add.reduce(e, axis=axis, keepdims=True)
    return e


def _log_softmax_impl(x, axis):
    s = x - _np.maximum.reduce(x, axis=axis, keepdims=True)
    lse = _np.log(_np.add.reduce(_np.exp(s), axis=axis, keepdims=True))
    if lse.dtype != s.dtype:  # integer x
        return s - lse
    s -= lse
    return s


def _plain_same(*a) -> bool:
    """Plain arrays of one dtype (a first-order sweep): the rules below may then use NumPy in
    place on their fresh temporaries; traced values take the wengert path (same formulas)."""
    return all(type(v) is _np.ndarray and v.dtype == a[0].dtype for v in a)


def _softmax_d(t, ans, x, axis):
    """J·t = y ⊙ (t − Σ y t) (the Jacobian is symmetric, so this is also the VJP)."""
    if _plain_same(t, ans):
        r = ans * t
        _np.subtract(t, _np.add.reduce(r, axis=axis, keepdims=True), out=r)
        r *= ans
        return r
    return ans * (t - wnp.sum(ans * t, axis=axis, keepdims=True))


def _log_softmax_jvp(t, ans, x, axis):
    return t - wnp.sum(wnp.exp(ans) * t, axis=axis, keepdims=True)


def _log_softmax_vjp(g, ans, x, axis):
    if _plain_same(g, ans):
        r = _np.exp(ans)
        r *= _np.add.reduce(g, axis=axis, keepdims=True)
        _np.subtract(g, r, out=r)
        return r
    return g - wnp.exp(ans) * wnp.sum(g, axis=axis, keepdims=True)


softmax_p = Primitive("softmax", _softmax_impl, fmt="softmax {0}")
softmax_p.defjvp(_softmax_d).defvjp(_softmax_d).saving((ANS,))
log_softmax_p = Primitive("log_softmax", _log_softmax_impl, fmt="log_softmax {0}")
log_softmax_p.defjvp(_log_softmax_jvp).defvjp(_log_softmax_vjp).saving((ANS,))


def softmax(x: Array, axis: int = -1) -> Array:
    """softmax(x)ᵢ = e^{xᵢ − m} / Σⱼ e^{xⱼ − m} along ``axis`` (m = max, so nothing overflows)."""
    return softmax_p(x, axis=_axis(axis, _np.ndim(primal_value(x))))


def log_softmax(x: Array, axis: int = -1) -> Array:
    """log softmax(x) = x − logsumexp(x) along ``axis``, computed without overflow."""
    return log_softmax_p(x, axis=_axis(axis, _np.ndim(primal_value(x))))


# ---------------------------------------------------------------------------------------------
# one_hot
# ---------------------------------------------------------------------------------------------


def one_hot(labels: Array, num_classes: int, dtype=_np.float32, axis: int = -1) -> _np.ndarray:
    """A constant array with a 1 at each label along a new ``axis`` (last by default).

    ``labels`` are integers in [0, num_classes); anything else raises ``ValueError``.
    """
    lab = _np.asarray(primal_value(labels))
    if lab.dtype.kind not in "iu":
        if lab.dtype.kind == "f" and _np.all(lab == _np.round(lab)):
            lab = lab.astype(_np.int64)
        else:
            raise ValueError(f"one_hot: labels must be integers, got dtype {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must lie in [0, {num_classes}); got values in "
            f"[{lab.min()}, {lab.max()}]"
        )
    out = (lab[..., None] == _np.arange(num_classes)).astype(dtype)
    return _np.moveaxis(out, -1, axis) if axis != -1 else out
