"""Dense layers' ops: ``fully_connect``, ``embedding`` and (inverted) ``dropout``.

``fully_connect`` is one primitive (x·Wᵀ + b, with matrix-product rules); the others are
composites of wengert.numpy operations, so their derivatives of every order come free.
"""

from __future__ import annotations

import numpy as _np

import wengert.numpy as wnp
from wengert.core import Primitive, primal_value
from wengert.nn.functional._types import Array

__all__ = ["fully_connect", "embedding", "dropout"]


def _shape(v):
    return _np.shape(primal_value(v))


def _dense_impl(x, w, b):
    y = x @ w.T
    if b is None:
        return y
    if _np.result_type(y, b) == y.dtype:
        y += b  # the product is a fresh array: add in place
        return y
    return y + b


def _bias_jvp(t, ans, x, w, b):
    """A bias tangent (..., out) spread over the N rows of the output."""
    nb = t.ndim - 1
    t = wnp.reshape(t, t.shape[:nb] + (1,) + t.shape[nb:])
    return wnp.broadcast_to(t, t.shape[:nb] + _shape(ans))


def _plain(*a) -> bool:
    """All plain arrays (a first-order sweep): the rules may call NumPy directly, which saves
    the dispatch of a few small wengert operations per layer; traced values take the wengert
    path, so higher orders see the same formulas."""
    return all(type(v) is _np.ndarray for v in a)


dense_p = Primitive("fully_connect", _dense_impl, fmt="{0}·{1}ᵀ + {2}")
dense_p.defjvp(
    lambda t, ans, x, w, b: wnp.matmul(t, wnp.transpose(w)),
    lambda t, ans, x, w, b: wnp.matmul(x, wnp.swapaxes(t, -1, -2)),
    _bias_jvp,
)
dense_p.defvjp(
    lambda g, ans, x, w, b: g @ w if _plain(g, w) else wnp.matmul(g, w),
    lambda g, ans, x, w, b: g.T @ x if _plain(g, x) else wnp.matmul(wnp.transpose(g), x),
    lambda g, ans, x, w, b: g.sum(axis=0) if _plain(g) else wnp.sum(g, axis=0),
)
dense_p.saving((1,), (0,), ())


def fully_connect(x: Array, weight: Array, bias: Array | None = None) -> Array:
    """y = x·Wᵀ + b over the last axis: ``x`` (N, ..., in), ``weight`` (out, in), ``bias``
    (out,) → (N, ..., out).  Leading axes are folded into one matrix product (BLAS)."""
    xs, ws = _shape(x), _shape(weight)
    if len(ws) != 2:
        raise ValueError(f"fully_connect: weight must be (out_features, in_features), got {ws}")
    if not xs or xs[-1] != ws[1]:
        raise ValueError(
            f"fully_connect: x's last axis must have in_features={ws[1]} (weight {ws}); got x {xs}. "
            "Flatten convolutional features first, e.g. x.reshape(len(x), -1)."
        )
    if bias is not None and _shape(bias) != (ws[0],):
        raise ValueError(f"fully_connect: bias must have shape ({ws[0]},), got {_shape(bias)}")
    x2 = wnp.reshape(x, (-1, ws[1])) if len(xs) != 2 else x
    y = dense_p(x2, weight, bias)
    return wnp.reshape(y, xs[:-1] + (ws[0],)) if len(xs) != 2 else y


def embedding(indices: Array, weight: Array) -> Array:
    """Rows of ``weight`` (num_embeddings, dim) at the integer ``indices`` (any shape) →
    indices.shape + (dim,).  The gradient adds up at repeated indices."""
    idx = _np.asarray(primal_value(indices))
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    n = _shape(weight)[0]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"embedding: indices must lie in [0, {n}), got [{idx.min()}, {idx.max()}]")
    return weight[idx]


def dropout(
    x: Array, p: float = 0.5, training: bool = True, rng: _np.random.Generator | None = None
) -> Array:
    """Inverted dropout: each element is kept with probability 1 − p and scaled by 1/(1 − p),
    so the expectation is unchanged; identity when ``training`` is False or p == 0.

    The mask is drawn from ``rng`` (a NumPy Generator), so the result is deterministic given
    its state; it is a constant for differentiation.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must lie in [0, 1), got {p}")
    if not training or p == 0:
        return x
    if rng is None:
        raise ValueError("dropout: pass rng=numpy.random.default_rng(seed) when training")
    dt = _np.result_type(primal_value(x))
    keep = rng.random(_shape(x)) >= p
    return x * (keep.astype(dt) * dt.type(1 / (1 - p)))
