"""``wengert.numpy.fft``: NumPy's discrete Fourier transforms, differentiable to any order.

Every transform is linear, so its JVP is the same transform of the tangent and its VJP the
transpose (no conjugation).  The DFT matrix is symmetric, so ``fft``/``ifft`` are their own
transposes; ``rfft`` and ``irfft`` are each other's, up to a conjugation and the weights
(1, 2, …, 2, 1) of the Hermitian half spectrum.  ``n`` and ``s`` zero-pad or truncate the input
first (padding and slicing), as NumPy does.
"""

from __future__ import annotations

import operator

import numpy as _np

from wengert.core import Primitive, Tracer, primal_value

from . import _elementwise as E
from . import _indexing as I
from . import _shape as S

__all__ = [
    "fft",
    "ifft",
    "rfft",
    "irfft",
    "hfft",
    "ihfft",
    "fft2",
    "ifft2",
    "rfft2",
    "irfft2",
    "fftn",
    "ifftn",
    "rfftn",
    "irfftn",
    "fftshift",
    "ifftshift",
    "fftfreq",
    "rfftfreq",
]

_NORMS = {None: "backward", "backward": "backward", "ortho": "ortho", "forward": "forward"}
_SWAP = {"backward": "forward", "ortho": "ortho", "forward": "backward"}

fftfreq = _np.fft.fftfreq
rfftfreq = _np.fft.rfftfreq


def _shape(x) -> tuple:
    return _np.shape(primal_value(x))


def _traced(*xs) -> bool:
    return any(isinstance(x, Tracer) for x in xs)


def _real_like(ct, x):
    """The cotangent of a real input is the real part (transpose of the embedding ℝ → ℂ)."""
    if not _np.iscomplexobj(primal_value(x)) and _np.iscomplexobj(primal_value(ct)):
        return E.real(ct)
    return ct


def _half_weights(n: int, axis: int, like) -> _np.ndarray:
    """(1, 2, …, 2, 1) over the n//2 + 1 bins of a Hermitian half spectrum (the last weight
    is 2 for odd n), shaped to broadcast along ``axis`` (negative)."""
    w = _np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    dt = _np.result_type(primal_value(like))
    dt = dt.type(0).real.dtype if dt.kind in "fc" else _np.dtype(float)
    return w.reshape((-1,) + (1,) * (-axis - 1)).astype(dt)


# ---------------------------------------------------------------------------------------------
# Complex-to-complex: fftn / ifftn over ``axes``.  y = F x with F symmetric, so x̄ = F ȳ.
# ---------------------------------------------------------------------------------------------


def _c2c_impl(x, axes, norm, inverse):
    return (_np.fft.ifftn if inverse else _np.fft.fftn)(x, axes=axes, norm=norm)


c2c_p = Primitive("fft", _c2c_impl, fmt="fft {0}")
c2c_p.defjvp(lambda t, ans, x, **p: c2c_p(t, **p))
c2c_p.defvjp(lambda g, ans, x, **p: _real_like(c2c_p(g, **p), x))

# ---------------------------------------------------------------------------------------------
# Real-to-complex: rfft along ``axis``: y_k = c Σ_j x_j ω^{jk}, k ≤ n/2.  Its transpose is
# x̄_j = c Re Σ_k ȳ_k ω^{jk} = irfft(conj(ȳ) / w) with the opposite normalisation name.
# ---------------------------------------------------------------------------------------------


def _rfft_impl(x, axis, norm):
    return _np.fft.rfft(x, axis=axis, norm=norm)


def _rfft_vjp(g, ans, x, axis, norm):
    n = _shape(x)[axis]
    return irfft_p(E.conj(g) / _half_weights(n, axis, g), n=n, axis=axis, norm=_SWAP[norm])


rfft_p = Primitive("rfft", _rfft_impl, fmt="rfft {0}")
rfft_p.defjvp(lambda t, ans, x, **p: rfft_p(t, **p))
rfft_p.defvjp(_rfft_vjp)

# ---------------------------------------------------------------------------------------------
# Complex-to-real: irfft of the n//2 + 1 bins along ``axis``: y_j = c Re Σ_k w_k z_k ω^{−jk}
# (so Im z_0 and, for even n, Im z_{n/2} are ignored).  Transpose: z̄ = w ∘ conj(rfft(ȳ)).
# ---------------------------------------------------------------------------------------------


def _irfft_impl(z, n, axis, norm):
    return _np.fft.irfft(z, n=n, axis=axis, norm=norm)


def _irfft_vjp(g, ans, z, n, axis, norm):
    g = E.real(g) if _np.iscomplexobj(primal_value(g)) else g
    ct = _half_weights(n, axis, g) * E.conj(rfft_p(g, axis=axis, norm=_SWAP[norm]))
    return _real_like(ct, z)


irfft_p = Primitive("irfft", _irfft_impl, fmt="irfft {0}")
irfft_p.defjvp(lambda t, ans, z, **p: irfft_p(t, **p))
irfft_p.defvjp(_irfft_vjp)

# The rules use only shapes and dtypes: the tape keeps no values for them.
for _p in (c2c_p, rfft_p, irfft_p):
    _p.saving(())


# ---------------------------------------------------------------------------------------------
# Argument handling, as numpy.fft does it
# ---------------------------------------------------------------------------------------------


def _norm(norm) -> str:
    try:
        return _NORMS[norm]
    except (KeyError, TypeError):
        raise ValueError(
            f'Invalid norm value {norm}; should be "backward", "ortho" or "forward".'
        ) from None


def _no_out(out, who: str) -> None:
    if out is not None:
        raise TypeError(f"{who}: 'out=' writes in place and cannot be differentiated")


def _axis(axis, nd: int) -> int:
    ax = operator.index(axis)
    if not -nd <= ax < nd:
        raise _np.exceptions.AxisError(ax, nd)
    return ax - nd if ax >= 0 else ax


def _points(n, who: str) -> int:
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"Invalid number of FFT data points ({n}) specified.")
    return n


def _resize(x, n: int, axis: int):
    """Truncate or zero-pad ``x`` to length n along ``axis`` (negative)."""
    size = _shape(x)[axis]
    if n == size:
        return x
    if n < size:
        return I.getitem(x, (Ellipsis, slice(0, n)) + (slice(None),) * (-axis - 1))
    widths = [(0, 0)] * len(_shape(x))
    widths[axis] = (0, n - size)
    return S.pad(x, widths)


def _cook(a, s, axes, invreal: bool = False):
    """Sizes and (negative) axes of an n-dimensional transform, as numpy.fft fills them in."""
    shape = _shape(a)
    nd = len(shape)
    shapeless = s is None
    if s is None:
        s = list(shape) if axes is None else [shape[operator.index(ax)] for ax in axes]
    s = list(s)
    if axes is None:
        axes = list(range(-len(s), 0))
    axes = [_axis(ax, nd) for ax in axes]
    if len(s) != len(axes):
        raise ValueError("Shape and axes have different lengths.")
    if invreal and shapeless:
        s[-1] = (shape[axes[-1]] - 1) * 2
    s = [shape[ax] if n is None or n == -1 else _points(n, "fftn") for n, ax in zip(s, axes)]
    return s, axes


# ---------------------------------------------------------------------------------------------
# One-dimensional transforms
# ---------------------------------------------------------------------------------------------


def _c2c_1d(a, n, axis, norm, inverse: bool, who: str):
    ax = _axis(axis, len(_shape(a)))
    n = _shape(a)[ax] if n is None else _points(n, who)
    return c2c_p(_resize(a, n, ax), axes=(ax,), norm=_norm(norm), inverse=inverse)


def fft(a, n=None, axis=-1, norm=None, out=None):
    """The discrete Fourier transform y_k = Σ_j a_j e^{−2πi jk/n} along ``axis``."""
    if not _traced(a):
        return _np.fft.fft(a, n, axis, norm, out)
    _no_out(out, "fft")
    return _c2c_1d(a, n, axis, norm, False, "fft")


def ifft(a, n=None, axis=-1, norm=None, out=None):
    """The inverse DFT y_j = (1/n) Σ_k a_k e^{2πi jk/n} along ``axis``."""
    if not _traced(a):
        return _np.fft.ifft(a, n, axis, norm, out)
    _no_out(out, "ifft")
    return _c2c_1d(a, n, axis, norm, True, "ifft")


def rfft(a, n=None, axis=-1, norm=None, out=None):
    """The DFT of real input: the n//2 + 1 non-negative frequencies."""
    if not _traced(a):
        return _np.fft.rfft(a, n, axis, norm, out)
    _no_out(out, "rfft")
    ax = _axis(axis, len(_shape(a)))
    n = _shape(a)[ax] if n is None else _points(n, "rfft")
    return rfft_p(_resize(a, n, ax), axis=ax, norm=_norm(norm))


def irfft(a, n=None, axis=-1, norm=None, out=None):
    """The inverse of ``rfft``: n real points (default 2(m − 1)) from a half spectrum."""
    if not _traced(a):
        return _np.fft.irfft(a, n, axis, norm, out)
    _no_out(out, "irfft")
    ax = _axis(axis, len(_shape(a)))
    n = (_shape(a)[ax] - 1) * 2 if n is None else _points(n, "irfft")
    if n < 1:
        raise ValueError(f"Invalid number of FFT data points ({n}) specified.")
    return irfft_p(_resize(a, n // 2 + 1, ax), n=n, axis=ax, norm=_norm(norm))


def hfft(a, n=None, axis=-1, norm=None, out=None):
    """The FFT of a Hermitian-symmetric signal given by its first half: irfft(conj(a)) with
    the opposite normalisation."""
    if not _traced(a):
        return _np.fft.hfft(a, n, axis, norm, out)
    _no_out(out, "hfft")
    return irfft(E.conj(a), n, axis, _SWAP[_norm(norm)])


def ihfft(a, n=None, axis=-1, norm=None, out=None):
    """The inverse of ``hfft``: conj(rfft(a)) with the opposite normalisation."""
    if not _traced(a):
        return _np.fft.ihfft(a, n, axis, norm, out)
    _no_out(out, "ihfft")
    return E.conj(rfft(a, n, axis, _SWAP[_norm(norm)]))


# ---------------------------------------------------------------------------------------------
# n-dimensional transforms
# ---------------------------------------------------------------------------------------------


def _c2c_nd(a, s, axes, norm, inverse: bool):
    s, axes = _cook(a, s, axes)
    if len(set(axes)) != len(axes):  # a repeated axis: transform along it repeatedly
        for n, ax in reversed(list(zip(s, axes))):
            a = _c2c_1d(a, n, ax, norm, inverse, "fftn")
        return a
    for n, ax in zip(s, axes):
        a = _resize(a, n, ax)
    if not axes:
        return a
    return c2c_p(a, axes=tuple(axes), norm=_norm(norm), inverse=inverse)


def fftn(a, s=None, axes=None, norm=None, out=None):
    """The DFT over several axes (all by default)."""
    if not _traced(a):
        return _np.fft.fftn(a, s, axes, norm, out)
    _no_out(out, "fftn")
    return _c2c_nd(a, s, axes, norm, False)


def ifftn(a, s=None, axes=None, norm=None, out=None):
    """The inverse DFT over several axes (all by default)."""
    if not _traced(a):
        return _np.fft.ifftn(a, s, axes, norm, out)
    _no_out(out, "ifftn")
    return _c2c_nd(a, s, axes, norm, True)


def fft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """The two-dimensional DFT (``fftn`` over the last two axes)."""
    if not _traced(a):
        return _np.fft.fft2(a, s, axes, norm, out)
    _no_out(out, "fft2")
    return _c2c_nd(a, s, axes, norm, False)


def ifft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """The two-dimensional inverse DFT."""
    if not _traced(a):
        return _np.fft.ifft2(a, s, axes, norm, out)
    _no_out(out, "ifft2")
    return _c2c_nd(a, s, axes, norm, True)


def rfftn(a, s=None, axes=None, norm=None, out=None):
    """The DFT of real input over several axes: ``rfft`` on the last, ``fft`` on the rest."""
    if not _traced(a):
        return _np.fft.rfftn(a, s, axes, norm, out)
    _no_out(out, "rfftn")
    s, axes = _cook(a, s, axes)
    a = rfft(a, s[-1], axes[-1], norm)
    return _c2c_nd(a, s[:-1], axes[:-1], norm, False) if len(axes) > 1 else a


def irfftn(a, s=None, axes=None, norm=None, out=None):
    """The inverse of ``rfftn``: ``ifft`` on all axes but the last, then ``irfft`` on it."""
    if not _traced(a):
        return _np.fft.irfftn(a, s, axes, norm, out)
    _no_out(out, "irfftn")
    s, axes = _cook(a, s, axes, invreal=True)
    if len(axes) > 1:
        a = _c2c_nd(a, s[:-1], axes[:-1], norm, True)
    return irfft(a, s[-1], axes[-1], norm)


def rfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """``rfftn`` over the last two axes."""
    if not _traced(a):
        return _np.fft.rfft2(a, s, axes, norm, out)
    return rfftn(a, s, axes, norm, out)


def irfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """``irfftn`` over the last two axes."""
    if not _traced(a):
        return _np.fft.irfft2(a, s, axes, norm, out)
    return irfftn(a, s, axes, norm, out)


# ---------------------------------------------------------------------------------------------
# Shifts: rotations of the axes (gathers)
# ---------------------------------------------------------------------------------------------


def _roll(x, shift: int, axis: int):
    n = _shape(x)[axis]
    shift %= n if n else 1
    if shift == 0:
        return x
    lead = (slice(None),) * (axis % len(_shape(x)))
    tail = I.getitem(x, lead + (slice(n - shift, n),))
    head = I.getitem(x, lead + (slice(0, n - shift),))
    return S.concatenate([tail, head], axis=axis)


def _shift(x, axes, sign: int):
    nd = len(_shape(x))
    if axes is None:
        axes = tuple(range(nd))
    elif isinstance(axes, (int, _np.integer)):
        axes = (axes,)
    for ax in axes:
        ax = _axis(ax, nd)
        x = _roll(x, sign * (_shape(x)[ax] // 2), ax)
    return x


def fftshift(x, axes=None):
    """Move the zero frequency to the centre (a roll by n//2 along each axis)."""
    if not _traced(x):
        return _np.fft.fftshift(x, axes)
    return _shift(x, axes, 1)


def ifftshift(x, axes=None):
    """The inverse of ``fftshift`` (a roll by −(n//2))."""
    if not _traced(x):
        return _np.fft.ifftshift(x, axes)
    return _shift(x, axes, -1)


def _routes() -> dict:
    """numpy.fft function -> its wengert version, for ``__array_function__``."""
    return {
        getattr(_np.fft, name): globals()[name]
        for name in __all__
        if name not in ("fftfreq", "rfftfreq")
    }
