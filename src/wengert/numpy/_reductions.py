"""Reductions: sum, mean, prod, max/min, var/std and logsumexp, along axes with ``keepdims``.

Axes are stored on the primitives as sorted negative integers, so the same parameters apply
unchanged to a tangent that carries leading batch axes (``jacfwd``).  Max and min share the
derivative equally among tied elements.
"""

from __future__ import annotations

import operator

import numpy as _np

from wengert.core import Primitive, primal_value

from . import _elementwise as E
from . import _shape as S


def normalize_axes(axis, ndim: int) -> tuple:
    """``axis`` (None, int or sequence) as a sorted tuple of distinct negative axes."""
    if axis is None:
        return tuple(range(-ndim, 0))
    if isinstance(axis, (tuple, list)):
        axes = axis
    else:
        axes = (axis,)
    out = set()
    for a in axes:
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(f"axis must be an integer or a tuple of integers, not {a!r}") from None
        if not -ndim <= a < ndim:
            raise _np.exceptions.AxisError(a, ndim)
        a = a - ndim if a >= 0 else a
        if a in out:
            raise ValueError(f"duplicate value in 'axis': {axis!r}")
        out.add(a)
    return tuple(sorted(out))


def _expand(g, axis, keepdims):
    """Put back the reduced axes of ``g`` as length-one axes."""
    return g if keepdims or not axis else S.expand_dims(g, axis)


def _sum_impl(x, axis, keepdims):
    return _np.sum(x, axis=axis, keepdims=keepdims)


sum_p = Primitive("sum", _sum_impl, fmt="Σ {0}")
sum_p.defjvp(lambda t, ans, x, axis, keepdims: sum_p(t, axis=axis, keepdims=keepdims))
sum_p.defvjp(lambda g, ans, x, axis, keepdims: S.broadcast_to(_expand(g, axis, keepdims), x.shape))


def sum(a, axis=None, dtype=None, keepdims=False, **kw):  # noqa: A001 - mirrors numpy
    """Σ over ``axis``.  JVP: the sum of the tangent; VJP: the cotangent broadcast back."""
    _no_out(kw, "sum")
    if dtype is not None:
        a = E.astype(a, dtype)
    return sum_p(a, axis=normalize_axes(axis, _np.ndim(primal_value(a))), keepdims=keepdims)


def _count(shape, axis) -> int:
    n = 1
    for ax in axis:
        n *= shape[ax]
    return n


def mean(a, axis=None, dtype=None, keepdims=False, **kw):
    """Arithmetic mean over ``axis``: ``sum(a) / n``."""
    _no_out(kw, "mean")
    shape = _np.shape(primal_value(a))
    axes = normalize_axes(axis, len(shape))
    if dtype is not None:
        a = E.astype(a, dtype)
    elif _np.result_type(primal_value(a)).kind in "biu":
        a = E.astype(a, float)
    return sum_p(a, axis=axes, keepdims=keepdims) / _count(shape, axes)


def _no_out(kw, name):
    if kw.get("out") is not None:
        raise TypeError(f"{name}: 'out=' would write in place, which cannot be differentiated")
    kw.pop("out", None)
    extra = set(kw) - {"where", "initial"}
    if extra:
        raise TypeError(f"{name}() got unexpected keyword arguments {sorted(extra)}")
    if kw.get("where") is not None or kw.get("initial") is not None:
        raise TypeError(f"{name}: 'where=' and 'initial=' are not supported on traced arrays")


# ---------------------------------------------------------------------------------------------
# max / min: the derivative goes to the chosen element(s), shared equally between ties.
# ---------------------------------------------------------------------------------------------


def _chosen_share(ans, x, axis, keepdims):
    xv = primal_value(x)
    hit = (
        xv == _np.expand_dims(primal_value(ans), axis) if not keepdims else xv == primal_value(ans)
    )
    hit = hit.astype(E._mask(True, x).dtype)
    return hit / _np.sum(hit, axis=axis, keepdims=True)


def _max_impl(x, axis, keepdims):
    return _np.max(x, axis=axis, keepdims=keepdims)


def _min_impl(x, axis, keepdims):
    return _np.min(x, axis=axis, keepdims=keepdims)


def _chooser_jvp(t, ans, x, axis, keepdims):
    return sum_p(t * _chosen_share(ans, x, axis, keepdims), axis=axis, keepdims=keepdims)


def _chooser_vjp(g, ans, x, axis, keepdims):
    return _expand(g, axis, keepdims) * _chosen_share(ans, x, axis, keepdims)


max_p = Primitive("max", _max_impl, fmt="max {0}").defjvp(_chooser_jvp).defvjp(_chooser_vjp)
min_p = Primitive("min", _min_impl, fmt="min {0}").defjvp(_chooser_jvp).defvjp(_chooser_vjp)


def max(a, axis=None, keepdims=False, **kw):  # noqa: A001
    """Largest element along ``axis``; tied maxima share the derivative equally."""
    _no_out(kw, "max")
    return max_p(a, axis=normalize_axes(axis, _np.ndim(primal_value(a))), keepdims=keepdims)


def min(a, axis=None, keepdims=False, **kw):  # noqa: A001
    """Smallest element along ``axis``; tied minima share the derivative equally."""
    _no_out(kw, "min")
    return min_p(a, axis=normalize_axes(axis, _np.ndim(primal_value(a))), keepdims=keepdims)


amax = max
amin = min

# ---------------------------------------------------------------------------------------------
# prod: ∂/∂x_i Π x = Π_{j≠i} x_j, computed so that zeros in the input are handled exactly.
# ---------------------------------------------------------------------------------------------


def _prod_others(ans, x, axis, keepdims):
    """Π_{j≠i} x_j for every i, exact when ``x`` has zeros."""
    xv = primal_value(x)
    zero = xv == 0
    if not zero.any():
        return _expand(ans, axis, keepdims) / x
    nz = _np.sum(zero, axis=axis, keepdims=True)
    if x is xv:  # a plain array: only the numbers are needed
        rest = _np.prod(_np.where(zero, 1, xv), axis=axis, keepdims=True)
        return _np.where(
            nz == 0, rest / _np.where(zero, 1, xv), _np.where(zero & (nz == 1), rest, 0)
        )
    # Traced below (higher orders): split x = n·d into its non-zero entries n and its zero
    # entries d (ones elsewhere), so Π_{j≠i} x_j = (Π n / n_i) · Π_{j≠i} d_j exactly.
    n = E.where(zero, 1, x)
    d = E.where(zero, x, 1)
    if nz.max() < 2:  # at most one zero per product: Π_{j≠i} d_j is 1 at the zero, else Π d
        d_others = E.where(zero, 1, prod_p(d, axis=axis, keepdims=True))
    else:
        d_others = _others_by_matrix(d, axis)
    return prod_p(n, axis=axis, keepdims=True) / n * d_others


def _others_by_matrix(d, axis):
    """Π_{j≠i} d_j by brute force: per product an n×n matrix of d with ones on the diagonal."""
    shape = _np.shape(primal_value(d))
    k, nd = len(axis), len(shape)
    ends = list(range(nd - k, nd))
    moved = S.moveaxis(d, list(axis), ends)
    n = _count(shape, axis)
    flat = S.reshape(moved, _np.shape(primal_value(moved))[: nd - k] + (1, n))
    out = prod_p(E.where(_np.eye(n, dtype=bool), 1, flat), axis=(-1,), keepdims=False)
    return S.moveaxis(S.reshape(out, _np.shape(primal_value(moved))), ends, list(axis))


def _prod_impl(x, axis, keepdims):
    return _np.prod(x, axis=axis, keepdims=keepdims)


prod_p = Primitive("prod", _prod_impl, fmt="Π {0}")
prod_p.defjvp(
    lambda t, ans, x, axis, keepdims: sum_p(
        t * _prod_others(ans, x, axis, keepdims), axis=axis, keepdims=keepdims
    )
)
prod_p.defvjp(
    lambda g, ans, x, axis, keepdims: (
        _expand(g, axis, keepdims) * _prod_others(ans, x, axis, keepdims)
    )
)


def prod(a, axis=None, dtype=None, keepdims=False, **kw):
    """Π over ``axis``.  Exact with zeros in the input (one zero or several)."""
    _no_out(kw, "prod")
    if dtype is not None:
        a = E.astype(a, dtype)
    return prod_p(a, axis=normalize_axes(axis, _np.ndim(primal_value(a))), keepdims=keepdims)


# ---------------------------------------------------------------------------------------------
# Composites: their derivatives follow from the primitives above.
# ---------------------------------------------------------------------------------------------


def var(a, axis=None, dtype=None, ddof=0, keepdims=False, **kw):
    """Variance Σ|x − mean|² / (n − ddof) over ``axis``."""
    _no_out(kw, "var")
    shape = _np.shape(primal_value(a))
    axes = normalize_axes(axis, len(shape))
    if dtype is not None:
        a = E.astype(a, dtype)
    elif _np.result_type(primal_value(a)).kind in "biu":
        a = E.astype(a, float)
    d = a - sum_p(a, axis=axes, keepdims=True) / _count(shape, axes)
    sq = E.real(d * E.conj(d)) if _np.iscomplexobj(primal_value(a)) else d * d
    return sum_p(sq, axis=axes, keepdims=keepdims) / (_count(shape, axes) - ddof)


def std(a, axis=None, dtype=None, ddof=0, keepdims=False, **kw):
    """Standard deviation √var over ``axis``."""
    return E.sqrt(var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, **kw))


def logsumexp(a, axis=None, keepdims=False):
    """log Σ exp(a) over ``axis``, shifted by the maximum so it never overflows.

    The shift m is a constant (its effect cancels exactly), so the derivative is softmax(a).
    """
    shape = _np.shape(primal_value(a))
    axes = normalize_axes(axis, len(shape))
    m = _np.max(primal_value(a), axis=axes, keepdims=True)
    m = _np.where(_np.isfinite(m), m, 0)
    out = E.log(sum_p(E.exp(a - m), axis=axes, keepdims=True)) + m
    return out if keepdims else S.squeeze(out, axes)


# What each VJP reads (see Primitive.saving): sum needs only the shape; max, min and prod
# read their input and output, so they keep the default (everything).
sum_p.saving(())
