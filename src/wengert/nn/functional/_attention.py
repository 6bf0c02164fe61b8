"""Scaled dot-product attention and multi-head attention, with causal and padding masks.

Composites of matmul, softmax and reshapes, so every order of derivative is available.
"""

from __future__ import annotations

import math

import numpy as _np

import wengert.numpy as wnp
from wengert.core import primal_value
from wengert.nn.functional._types import Array

from ._activations import softmax
from ._dense import dropout, fully_connect

__all__ = ["attention", "multi_head_attention", "causal_mask"]


def _shape(v):
    return _np.shape(primal_value(v))


def causal_mask(tq: int, tk: int | None = None) -> _np.ndarray:
    """Boolean (Tq, Tk) mask, True where query i may attend to key j (j ≤ i + Tk − Tq)."""
    tk = tq if tk is None else tk
    return _np.tril(_np.ones((tq, tk), bool), k=tk - tq)


def attention(
    q: Array, k: Array, v: Array, mask: Array=None, causal: bool = False, dropout_p: float = 0.0, rng=None,
    training: bool = True, scale: float | None = None, return_weights: bool = False,
) -> Array:  # fmt: skip
    """Scaled dot-product attention  softmax(q·kᵀ·scale + masking)·v.

    ``q`` (..., Tq, d), ``k`` (..., Tk, d), ``v`` (..., Tk, dv) → (..., Tq, dv);
    ``scale`` defaults to 1/√d.  ``mask``: a boolean array broadcastable to (..., Tq, Tk),
    True where attention is allowed (a float mask is added to the scores instead);
    ``causal=True`` also forbids keys after each query.  Forbidden scores are set to the
    dtype's most negative value, so a fully masked row gives uniform weights, never NaN.
    ``dropout_p`` drops attention weights (inverted dropout, with ``rng``) when training.
    """
    qs, ks, vs = _shape(q), _shape(k), _shape(v)
    if len(qs) < 2 or qs[-1] != ks[-1] or ks[-2] != vs[-2]:
        raise ValueError(
            f"attention: need q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv); got {qs}, {ks}, {vs}"
        )
    dt = _np.result_type(primal_value(q))
    if scale is None:
        scale = 1.0 / math.sqrt(qs[-1])
    scores = wnp.matmul(q, wnp.swapaxes(k, -1, -2)) * dt.type(scale)
    allowed = None
    if mask is not None:
        m = _np.asarray(primal_value(mask))
        if m.dtype == bool:
            allowed = m
        else:
            scores = scores + m.astype(dt, copy=False)
    if causal:
        cm = causal_mask(qs[-2], ks[-2])
        allowed = cm if allowed is None else allowed & cm
    if allowed is not None:
        scores = wnp.where(allowed, scores, _np.finfo(dt).min)
    weights = softmax(scores, axis=-1)
    if dropout_p and training:
        weights = dropout(weights, dropout_p, True, rng)
    out = wnp.matmul(weights, v)
    return (out, weights) if return_weights else out


def _split_heads(x, h):
    n, t, e = _shape(x)
    return wnp.transpose(wnp.reshape(x, (n, t, h, e // h)), (0, 2, 1, 3))


def multi_head_attention(
    x_q: Array, x_kv: Array, w_q: Array, w_k: Array, w_v: Array, w_o: Array, b_q: Array=None, b_k: Array=None, b_v: Array=None, b_o: Array=None, *,
    num_heads: int, causal: bool = False, key_padding_mask: Array=None, mask: Array=None,
    dropout_p: float = 0.0, rng=None, training: bool = True, return_weights: bool = False,
) -> Array:  # fmt: skip
    """Multi-head attention of queries ``x_q`` (N, Tq, E_q) over ``x_kv`` (N, Tk, E_kv)
    (pass the same array for self-attention).

    Projections are dense weights (out, in): ``w_q`` (E, E_q), ``w_k`` (E, E_kv), ``w_v``
    (E, E_kv), ``w_o`` (E_out, E), with optional biases; E splits into ``num_heads`` heads
    of E/num_heads.  Per head: ``attention(q_h, k_h, v_h)``; the heads are concatenated and
    projected by ``w_o``.  ``key_padding_mask`` (N, Tk) is True at padding keys to ignore
    (PyTorch's convention); ``mask`` is broadcast to (N, heads, Tq, Tk), True = allowed.
    Returns (N, Tq, E_out) (and the attention weights (N, heads, Tq, Tk) if asked).
    """
    e = _shape(w_q)[0]
    if e % num_heads:
        raise ValueError(
            f"multi_head_attention: embedding size {e} is not divisible by num_heads={num_heads}"
        )
    n, tq = _shape(x_q)[:2]
    tk = _shape(x_kv)[1]
    q = _split_heads(fully_connect(x_q, w_q, b_q), num_heads)
    k = _split_heads(fully_connect(x_kv, w_k, b_k), num_heads)
    v = _split_heads(fully_connect(x_kv, w_v, b_v), num_heads)
    allowed = None if mask is None else _np.asarray(primal_value(mask))
    if key_padding_mask is not None:
        kp = _np.asarray(primal_value(key_padding_mask), bool)
        if kp.shape != (n, tk):
            raise ValueError(
                f"multi_head_attention: key_padding_mask must be (N, Tk) = {(n, tk)}, got {kp.shape}"
            )
        keep = ~kp[:, None, None, :]
        allowed = keep if allowed is None else allowed & keep
    out = attention(q, k, v, mask=allowed, causal=causal, dropout_p=dropout_p, rng=rng,
                    training=training, return_weights=return_weights)  # fmt: skip
    if return_weights:
        out, weights = out
    out = wnp.reshape(wnp.transpose(out, (0, 2, 1, 3)), (n, tq, e))
    out = fully_connect(out, w_o, b_o)
    return (out, weights) if return_weights else out
