"""Recurrent layers over whole sequences: ``lstm`` and ``gru``.

Composites: the input projections of all time steps are one matrix product, then a loop over
time applies the cell.  Being built from differentiable ops, they differentiate to any order
(MATLAB's ``lstm`` and ``gru`` stop at first derivatives).

Gate layout (as PyTorch and MATLAB): LSTM weights stack the gates (input i, forget f, cell
candidate g, output o) along the first axis, so ``weight_ih`` is (4H, C), ``weight_hh``
(4H, H), biases (4H,); GRU stacks (reset r, update z, candidate n): (3H, C), (3H, H), (3H,).
"""

from __future__ import annotations

import numpy as _np

import wengert.numpy as wnp
from wengert.core import primal_value
from wengert.nn.functional._types import Array

from ._activations import sigmoid_p

__all__ = ["lstm", "gru", "lstm_cell", "gru_cell"]


def _shape(v):
    return _np.shape(primal_value(v))


def _check(x, h0, weight_ih, weight_hh, gates, who, c0=None):
    xs = _shape(x)
    if len(xs) != 3:
        raise ValueError(f"{who}: x must be (N, T, C), got shape {xs}")
    wi, wh = _shape(weight_ih), _shape(weight_hh)
    if len(wi) != 2 or wi[0] % gates:
        raise ValueError(f"{who}: weight_ih must be ({gates}·H, C), got {wi}")
    h = wi[0] // gates
    if wi[1] != xs[2]:
        raise ValueError(f"{who}: weight_ih {wi} does not match the {xs[2]} input channels of x")
    if wh != (gates * h, h):
        raise ValueError(f"{who}: weight_hh must be ({gates * h}, {h}), got {wh}")
    for name, s in (("h0", h0), ("c0", c0)):
        if s is not None and _shape(s) != (xs[0], h):
            raise ValueError(f"{who}: {name} must be (N, H) = {(xs[0], h)}, got {_shape(s)}")
    return xs[0], xs[1], h


def _project(x, weight_ih, bias):
    """x (N, T, C) → x·W_ihᵀ + b for all steps, time-major (T, N, kH)."""
    n, t, c = _shape(x)
    xt = wnp.reshape(wnp.transpose(x, (1, 0, 2)), (t * n, c))
    z = wnp.matmul(xt, wnp.transpose(weight_ih))
    if bias is not None:
        z = z + bias
    return wnp.reshape(z, (t, n, -1))


def lstm_cell(z: Array, c: Array, h_dim: int) -> tuple[Array, Array]:
    """One LSTM step from the pre-activations z (N, 4H) = x·W_ihᵀ + h·W_hhᵀ + b:
    i, f, o = σ(·), g = tanh(·), c' = f⊙c + i⊙g, h' = o⊙tanh(c')."""
    s = sigmoid_p(z[:, : 2 * h_dim])
    i, f = s[:, :h_dim], s[:, h_dim:]
    g = wnp.tanh(z[:, 2 * h_dim : 3 * h_dim])
    o = sigmoid_p(z[:, 3 * h_dim :])
    c = f * c + i * g
    return o * wnp.tanh(c), c


def lstm(
    x: Array,
    h0: Array,
    c0: Array,
    weight_ih: Array,
    weight_hh: Array,
    bias: Array | None = None,
    bias_hh: Array | None = None,
) -> tuple[Array, Array, Array]:
    """Long short-term memory over a whole sequence.

    ``x`` (N, T, C); ``h0``, ``c0`` (N, H) (None: zeros); ``weight_ih`` (4H, C), ``weight_hh``
    (4H, H), ``bias`` (4H,) and optionally a second ``bias_hh`` (4H,), gates ordered
    (input, forget, cell candidate, output).  Per step:

        z = x_t·W_ihᵀ + h·W_hhᵀ + b;  i, f, o = σ(z_i), σ(z_f), σ(z_o);  g = tanh(z_g)
        c ← f⊙c + i⊙g;  h ← o⊙tanh(c)

    Returns ``(y, h_T, c_T)``: all hidden states y (N, T, H) and the final states.
    """
    n, t, h = _check(x, h0, weight_ih, weight_hh, 4, "lstm", c0)
    dt = _np.result_type(primal_value(x))
    if bias is not None and bias_hh is not None:
        bias = bias + bias_hh
    elif bias is None:
        bias = bias_hh
    hs = wnp.zeros((n, h), dt) if h0 is None else h0
    cs = wnp.zeros((n, h), dt) if c0 is None else c0
    zx = _project(x, weight_ih, bias)
    whh = wnp.transpose(weight_hh)
    ys = []
    for k in range(t):
        hs, cs = lstm_cell(zx[k] + wnp.matmul(hs, whh), cs, h)
        ys.append(hs)
    return wnp.stack(ys, axis=1), hs, cs


def gru_cell(zx: Array, zh: Array, h: Array, h_dim: int) -> Array:
    """One GRU step from zx = x·W_ihᵀ + b_ih and zh = h·W_hhᵀ + b_hh (N, 3H):
    r = σ(zx_r + zh_r), u = σ(zx_z + zh_z), n = tanh(zx_n + r⊙zh_n), h' = (1 − u)⊙n + u⊙h."""
    s = sigmoid_p(zx[:, : 2 * h_dim] + zh[:, : 2 * h_dim])
    r, u = s[:, :h_dim], s[:, h_dim:]
    cand = wnp.tanh(zx[:, 2 * h_dim :] + r * zh[:, 2 * h_dim :])
    return cand + u * (h - cand)


def gru(
    x: Array,
    h0: Array,
    weight_ih: Array,
    weight_hh: Array,
    bias_ih: Array | None = None,
    bias_hh: Array | None = None,
) -> tuple[Array, Array]:
    """Gated recurrent unit over a whole sequence (the reset gate applied after the recurrent
    product, as PyTorch and MATLAB's default "after-multiplication").

    ``x`` (N, T, C), ``h0`` (N, H) (None: zeros), ``weight_ih`` (3H, C), ``weight_hh``
    (3H, H), biases (3H,), gates ordered (reset, update, candidate).  Per step:

        r = σ(W_ir x + b_ir + W_hr h + b_hr);  u = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn));  h ← (1 − u)⊙n + u⊙h

    Returns ``(y, h_T)``: all hidden states (N, T, H) and the final one.
    """
    n, t, h = _check(x, h0, weight_ih, weight_hh, 3, "gru")
    dt = _np.result_type(primal_value(x))
    hs = wnp.zeros((n, h), dt) if h0 is None else h0
    zx = _project(x, weight_ih, bias_ih)
    whh = wnp.transpose(weight_hh)
    ys = []
    for k in range(t):
        zh = wnp.matmul(hs, whh)
        if bias_hh is not None:
            zh = zh + bias_hh
        hs = gru_cell(zx[k], zh, hs, h)
        ys.append(hs)
    return wnp.stack(ys, axis=1), hs
