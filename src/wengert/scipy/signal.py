"""``wengert.scipy.signal``: N-dimensional convolution and correlation, differentiable in both
inputs to any order.

One primitive, the full convolution (bilinear: its JVP is two more convolutions, its VJP
convolves the cotangent with the flipped other input and keeps the 'valid' part); the modes
'same' and 'valid' slice the full result, and correlation convolves with the flipped,
conjugated second input, as SciPy defines it.
"""

from __future__ import annotations

from typing import Any

import numpy as _np
import scipy.signal as _ss

import wengert.numpy as wnp
from wengert.core import Primitive, primal_value

__all__ = ["convolve", "correlate", "fftconvolve"]


def _shape(x) -> tuple:
    return tuple(_np.shape(primal_value(x)))


def _conv_impl(x, y, method):
    return _ss.convolve(x, y, mode="full", method=method)


def _lead(v, nb):
    """``v`` with ``nb`` leading unit axes (a kernel of length one along tangent batch axes)."""
    return wnp.reshape(v, (1,) * nb + _shape(v)) if nb else v


def _conv_jvp(ts, ans, x, y, method):
    out = None
    for k, t in enumerate(ts):
        if t is None:
            continue
        nb = t.ndim - len(_shape((x, y)[k]))
        other = _lead((y, x)[k], nb)
        c = conv_p(t, other, method=method) if k == 0 else conv_p(other, t, method=method)
        out = c if out is None else out + c
    return out


def _flip(v):
    return v[(slice(None, None, -1),) * _np.ndim(primal_value(v))]


def _conv_vjp(g, ans, needed, x, y, method):
    # The transpose of t ↦ t * y is g ↦ (g * flip(y)) restricted to positions ny−1 … ny−1+nx−1.
    cts = []
    for k in (0, 1):
        if k not in needed:
            cts.append(None)
            continue
        me, other = (x, y)[k], (y, x)[k]
        full = conv_p(g, _flip(other), method=method)
        cut = tuple(slice(m - 1, m - 1 + n) for n, m in zip(_shape(me), _shape(other)))
        cts.append(full[cut])
    return tuple(cts)


conv_p = Primitive("convolve", _conv_impl, fmt="{0} ∗ {1}")
conv_p.jvp_all = _conv_jvp
conv_p.vjp_all = _conv_vjp


def _centered(full, shape):
    start = [(f - s) // 2 for f, s in zip(full.shape, shape)]
    return full[tuple(slice(a, a + s) for a, s in zip(start, shape))]


def convolve(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """The N-dimensional convolution (in1 ∗ in2)[k] = Σ_j in1[j]·in2[k − j].

    ``mode`` 'full' (every overlap), 'same' (the size of in1, centered) or 'valid' (complete
    overlaps only; one input must be at least as large as the other along every axis).
    Bilinear: ∂/∂in1 is convolution with in2, and the VJP convolves with the flipped input."""
    s1, s2 = _shape(in1), _shape(in2)
    if len(s1) != len(s2):
        raise ValueError("convolve: in1 and in2 should have the same dimensionality")
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"convolve: mode must be 'full', 'same' or 'valid', not {mode!r}")
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"convolve: method must be 'auto', 'direct' or 'fft', not {method!r}")
    if 0 in s1 or 0 in s2:
        return _ss.convolve(primal_value(in1), primal_value(in2), mode=mode, method=method)
    full = conv_p(in1, in2, method=method)
    if mode == "full":
        return full
    if mode == "same":
        return _centered(full, s1)
    if all(a >= b for a, b in zip(s1, s2)) or all(b >= a for a, b in zip(s1, s2)):
        return _centered(full, tuple(abs(a - b) + 1 for a, b in zip(s1, s2)))
    raise ValueError(
        "convolve: for 'valid' mode, one input must be at least as large as the other in "
        "every dimension"
    )


def correlate(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """The N-dimensional cross-correlation z[k] = Σ_l in1[l]·conj(in2[l − k + N − 1]), as in
    SciPy: a convolution of in1 with the flipped, conjugated in2."""
    s1, s2 = _shape(in1), _shape(in2)
    if mode == "valid" and not all(a >= b for a, b in zip(s1, s2)):
        if all(b >= a for a, b in zip(s1, s2)):  # SciPy swaps the inputs here
            out = correlate(in2, in1, mode, method)
            return wnp.conj(_flip(out)) if _np.iscomplexobj(primal_value(out)) else _flip(out)
    other = _flip(in2)
    if _np.iscomplexobj(primal_value(in2)):
        other = wnp.conj(other)
    return convolve(in1, other, mode=mode, method=method)


def fftconvolve(in1: Any, in2: Any, mode: str = "full", axes: Any = None) -> Any:
    """:func:`convolve` computed with FFTs (all axes; ``axes`` is not supported)."""
    if axes is not None:
        raise NotImplementedError("fftconvolve: 'axes' is not supported on traced arrays")
    return convolve(in1, in2, mode=mode, method="fft")
