"""Dense layers' ops: ``fully_connect``, ``embedding`` and (inverted) ``dropout``.

All composites of wengert.numpy operations, so their derivatives of every order come free.
"""

from __future__ import annotations

import numpy as _np

import wengert.numpy as wnp
from wengert.core import primal_value
from wengert.nn.functional._types import Array

__all__ = ["fully_connect", "embedding", "dropout"]


def _shape(v):
    return _np.shape(primal_value(v))


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
    x2 = wnp.reshape(x, (-1, ws[1])) if len(xs) != 2 else x
    y = wnp.matmul(x2, wnp.transpose(weight))
    if bias is not None:
        if _shape(bias) != (ws[0],):
            raise ValueError(f"fully_connect: bias must have shape ({ws[0]},), got {_shape(bias)}")
        y = y + bias
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
