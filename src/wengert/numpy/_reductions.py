"""Reductions: sum, mean, prod, max/min, var/std and logsumexp, along axes with ``keepdims``.

Axes are stored on the primitives as sorted negative integers, so the same parameters apply
unchanged to a tangent that carries leading batch axes (``jacfwd``).  Max and min share the
derivative equally among tied elements.
"""

from __future__ import annotations

import operator

import numpy as _np

from wengert.core import Primitive, Tracer, primal_value

from . import _elementwise as E
from . import _indexing as I
from . import _shape as S

_ndarray = _np.ndarray


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
    nd = _np.ndim(x)
    if (
        len(axis) > 1
        and len(axis) < nd <= 26
        and axis[0] != -len(axis)
        and _np.result_type(x).kind in "fc"
    ):
        # Several axes, not a trailing block (e.g. (0, 2, 3) of NCHW, as bias gradients need):
        # NumPy's reduce makes strided passes there; einsum is 3-5x faster.
        kept = "".join(chr(97 + k) for k in range(nd) if k - nd not in axis)
        out = _np.einsum("".join(chr(97 + k) for k in range(nd)) + "->" + kept, x)
        if keepdims:
            out = _np.expand_dims(out, axis)
        return out
    return _np.sum(x, axis=axis, keepdims=keepdims)


sum_p = Primitive("sum", _sum_impl, fmt="Σ {0}")
sum_p.defjvp(lambda t, ans, x, axis, keepdims: sum_p(t, axis=axis, keepdims=keepdims))


def _sum_vjp(g, ans, x, axis, keepdims):
    """The cotangent ``g`` broadcast back over the summed axes.  A plain ``g`` of a small
    input is copied into a fresh array (cheaper than a broadcast view here, and one the sweep
    may then add into); otherwise a broadcast view, traced when ``g`` is."""
    shape = x.shape
    if type(g) is _ndarray or isinstance(g, _np.generic):
        if not keepdims and axis and g.ndim:
            nd = len(shape)
            g = g.reshape(tuple(1 if k - nd in axis else d for k, d in enumerate(shape)))
        n = x.size
        if n > 4096 and g.size * 64 < n:
            return _np.broadcast_to(g, shape)  # large: a view, no memory
        out = _np.empty(shape, _np.result_type(g))
        out[...] = g
        return out
    return S.broadcast_to(_expand(g, axis, keepdims), shape)


sum_p.defvjp(_sum_vjp)


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


# ---------------------------------------------------------------------------------------------
# Shared argument handling for the functions below
# ---------------------------------------------------------------------------------------------

_NO_VALUE = object()  # an argument left out (NumPy's own sentinel, np._NoValue, counts too)


def _given(v) -> bool:
    return v is not _NO_VALUE and v is not getattr(_np, "_NoValue", _NO_VALUE)


def _ndim(a) -> int:
    return _np.ndim(primal_value(a))


def _shape_of(a) -> tuple:
    return _np.shape(primal_value(a))


def one_axis(axis, ndim: int) -> int:
    """A single ``axis`` as a negative integer (checked against ``ndim``)."""
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"axis must be a single integer here, not {axis!r}")
    return normalize_axes(axis, ndim)[0]


def _as_float(a, dtype=None):
    """``a`` cast to ``dtype``, or integers and booleans to float64 (as NumPy's means do)."""
    if dtype is not None:
        return E.astype(a, dtype)
    if _np.result_type(primal_value(a)).kind in "biu":
        return E.astype(a, float)
    return a


def _keep(kw) -> bool:
    k = kw.pop("keepdims", False)
    return False if not _given(k) else bool(k)


# ---------------------------------------------------------------------------------------------
# Cumulative sums and products.  cumsum and the reverse cumulative sum Σ_{j≥i} x_j are each
# other's transposes; cumprod's rules are exact with zeros in the input.
# ---------------------------------------------------------------------------------------------


def _reverse(nd: int, axis: int) -> tuple:
    return (slice(None),) * (nd + axis) + (slice(None, None, -1),)


def _cumsum_impl(x, axis):
    return _np.cumsum(x, axis=axis)


def _rcumsum_impl(x, axis):
    r = _reverse(_np.ndim(x), axis)
    return _np.cumsum(_np.asarray(x)[r], axis=axis)[r]


cumsum_p = Primitive("cumsum", _cumsum_impl, fmt="cumsum {0}")
rcumsum_p = Primitive("reverse_cumsum", _rcumsum_impl, fmt="rcumsum {0}")
cumsum_p.defjvp(lambda t, ans, x, axis: cumsum_p(t, axis=axis))
cumsum_p.defvjp(lambda g, ans, x, axis: rcumsum_p(g, axis=axis))
rcumsum_p.defjvp(lambda t, ans, x, axis: rcumsum_p(t, axis=axis))
rcumsum_p.defvjp(lambda g, ans, x, axis: cumsum_p(g, axis=axis))


def _zero_layout(x, axis):
    """Where ``x`` has zeros: (zero mask, mask of the first zero of each line, mask of the
    positions whose prefix holds exactly one zero).  None when ``x`` has no zero."""
    zero = primal_value(x) == 0
    if not zero.any():
        return None
    seen = _np.cumsum(zero, axis=axis)
    return zero, zero & (seen == 1), seen == 1


def _cumprod_jvp(t, ans, x, axis):
    # ∂y_i/∂x_j = y_i / x_j for x_j ≠ 0; at the first zero z it is Π_{k≤i, k≠z} x_k, which is
    # the running product of the non-zero entries until a second zero appears; else 0.
    lay = _zero_layout(x, axis)
    if lay is None:
        return ans * cumsum_p(t / x, axis=axis)
    zero, first, once = lay
    n = E.where_p(zero, 1, x)
    at_zero = sum_p(E.where_p(first, t, 0), axis=(axis,), keepdims=True)
    return ans * cumsum_p(E.where_p(zero, 0, t) / n, axis=axis) + E.where_p(
        once, cumprod_p(n, axis=axis) * at_zero, 0
    )


def _cumprod_vjp(g, ans, x, axis):
    lay = _zero_layout(x, axis)
    if lay is None:
        return rcumsum_p(g * ans, axis=axis) / x
    zero, first, once = lay
    n = E.where_p(zero, 1, x)
    at_zero = sum_p(E.where_p(once, g * cumprod_p(n, axis=axis), 0), axis=(axis,), keepdims=True)
    return E.where_p(zero, 0, rcumsum_p(g * ans, axis=axis) / n) + E.where_p(first, at_zero, 0)


def _cumprod_impl(x, axis):
    return _np.cumprod(x, axis=axis)


cumprod_p = Primitive("cumprod", _cumprod_impl, fmt="cumprod {0}")
cumprod_p.defjvp(_cumprod_jvp).defvjp(_cumprod_vjp)


def _cumprod_zeros(x, axis):
    """cumprod(x) for lines with two or more zeros, exact to every order: the running product
    of the non-zero entries times the running product of the zero entries, the latter a
    short loop over the zeros of each line (so it costs O(size + lines · most zeros))."""
    xv = primal_value(x)
    nd = xv.ndim
    zero = xv == 0
    running = cumprod_p(E.where_p(zero, 1, x), axis=axis)  # no zeros: the smooth rules apply
    moved_shape = _np.moveaxis(xv, axis, -1).shape
    lines, width = _count(moved_shape, tuple(range(-nd, -1))), moved_shape[-1]
    x2 = S.reshape(S.moveaxis(x, axis, -1), (lines, width))
    seen = _np.cumsum(_np.moveaxis(zero, axis, -1).reshape(lines, width), axis=1)
    line, pos = _np.nonzero(_np.moveaxis(zero, axis, -1).reshape(lines, width))
    rank = seen[line, pos] - 1
    most = int(seen[:, -1].max())
    dt = _np.result_type(xv)
    filler = _np.ones((lines, most), dt)
    filler[line, rank] = 0
    g = I.scatter_add_p(I.getitem(x2, (line, pos)), idx=(line, rank), shape=(lines, most)) + filler
    cols = [_np.ones(lines, dt)]
    for m in range(most):
        cols.append(
            I.getitem(g, (slice(None), m)) if m == 0 else cols[-1] * I.getitem(g, (slice(None), m))
        )
    zeros_part = I.getitem(S.stack(cols, axis=1), (_np.arange(lines)[:, None], seen))
    zeros_part = S.moveaxis(S.reshape(zeros_part, moved_shape), -1, axis)
    return running * zeros_part


def _cumulative(prim, name, a, axis, dtype, out):
    if out is not None:
        raise TypeError(f"{name}: 'out=' writes in place and cannot be differentiated")
    if dtype is not None:
        a = E.astype(a, dtype)
    if axis is None:
        a = S.ravel(a)
        axis = -1
    axis = one_axis(axis, _ndim(a))
    if prim is cumprod_p and isinstance(a, Tracer):
        zero = primal_value(a) == 0
        if zero.any() and (_np.cumsum(zero, axis=axis) >= 2).any():
            return _cumprod_zeros(a, axis)
    return prim(a, axis=axis)


def cumsum(a, axis=None, dtype=None, out=None):
    """Running sum y_i = Σ_{j≤i} x_j along ``axis`` (of the flattened array if None).
    Linear: the JVP is the cumsum of the tangent, the VJP the reverse cumsum Σ_{i≥j} ȳ_i."""
    return _cumulative(cumsum_p, "cumsum", a, axis, dtype, out)


def cumprod(a, axis=None, dtype=None, out=None):
    """Running product y_i = Π_{j≤i} x_j along ``axis`` (of the flattened array if None).

    ∂y_i/∂x_j = Π_{k≤i, k≠j} x_k (j ≤ i).  Without zeros this is y_i / x_j; the rules handle
    a zero exactly (only the first zero of a line has a non-zero partial, up to the next zero),
    and lines with several zeros are split into the running products of their non-zero and
    zero entries, so every order of derivative is exact there too.
    """
    return _cumulative(cumprod_p, "cumprod", a, axis, dtype, out)


def nancumsum(a, axis=None, dtype=None, out=None):
    """cumsum with NaNs counted as zero (they get a zero derivative)."""
    return cumsum(_nan_to(a, 0), axis, dtype, out)


def nancumprod(a, axis=None, dtype=None, out=None):
    """cumprod with NaNs counted as one (they get a zero derivative)."""
    return cumprod(_nan_to(a, 1), axis, dtype, out)


def diff(a, n=1, axis=-1, prepend=_NO_VALUE, append=_NO_VALUE):
    """n-th forward difference y_i = x_{i+1} − x_i along ``axis`` (``prepend``/``append``
    values are joined first; they may be traced too).  Linear in every input."""
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    if n == 0:
        return a
    nd = _ndim(a)
    if nd == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    ax = one_axis(axis, nd)
    parts = []
    for extra in (prepend, append):
        if not _given(extra):
            parts.append(None)
        elif _ndim(extra) == 0:
            shape = list(_shape_of(a))
            shape[ax] = 1
            parts.append(S.broadcast_to(extra, tuple(shape)))
        else:
            parts.append(extra)
    if parts[0] is not None or parts[1] is not None:
        a = S.concatenate([p for p in (parts[0], a, parts[1]) if p is not None], axis=ax)
    if _np.result_type(primal_value(a)).kind == "b":
        return _np.diff(primal_value(a), n=n, axis=ax)
    lead = (slice(None),) * (nd + ax)
    for _ in range(n):
        a = I.getitem(a, lead + (slice(1, None),)) - I.getitem(a, lead + (slice(None, -1),))
    return a


# ---------------------------------------------------------------------------------------------
# Weighted average, peak to peak, and the NaN-ignoring reductions (composites)
# ---------------------------------------------------------------------------------------------


def average(a, axis=None, weights=None, returned=False, **kw):
    """Weighted mean Σ w·a / Σ w over ``axis`` (``mean`` without ``weights``).

    Both ``a`` and ``weights`` may be traced.  ``weights`` has the shape of ``a``, or (with
    ``axis``) the shape of ``a`` along ``axis``.  ``returned=True`` also gives Σ w broadcast to
    the shape of the average.
    """
    keepdims = _keep(kw)
    if kw:
        raise TypeError(f"average() got unexpected keyword arguments {sorted(kw)}")
    shape = _shape_of(a)
    nd = len(shape)
    if weights is None:
        avg = mean(a, axis=axis, keepdims=keepdims)
        scl = _np.asarray(
            _count(shape, normalize_axes(axis, nd)), _np.result_type(primal_value(avg))
        )
        return (
            (avg, _np.broadcast_to(scl, _np.shape(primal_value(avg))).copy()) if returned else avg
        )
    wshape = _shape_of(weights)
    adt, wdt = _np.result_type(primal_value(a)), _np.result_type(primal_value(weights))
    dt = _np.result_type(adt, wdt, "f8") if adt.kind in "biu" else _np.result_type(adt, wdt)
    axes = normalize_axes(axis, nd)
    if wshape != shape:
        if axis is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        given = [
            operator.index(x) % nd for x in (axis if isinstance(axis, (tuple, list)) else (axis,))
        ]
        if wshape != tuple(shape[x] for x in given):
            raise ValueError(
                "Shape of weights must be consistent with shape of a along specified axis."
            )
        weights = S.transpose(weights, tuple(_np.argsort(given))) if len(given) > 1 else weights
        weights = S.reshape(weights, tuple(d if i in given else 1 for i, d in enumerate(shape)))
    weights = E.astype(weights, dt) if wdt != dt else weights
    a = E.astype(a, dt) if adt != dt else a
    scl = sum_p(S.broadcast_to(weights, shape), axis=axes, keepdims=keepdims)
    if _np.any(primal_value(scl) == 0.0):
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    avg = sum_p(a * weights, axis=axes, keepdims=keepdims) / scl
    if not returned:
        return avg
    return avg, S.broadcast_to(scl, _np.shape(primal_value(avg)))


def ptp(a, axis=None, out=None, keepdims=False):
    """Peak to peak, max − min along ``axis`` (each with the ½-share convention for ties)."""
    _no_out({"out": out}, "ptp")
    return max(a, axis=axis, keepdims=keepdims) - min(a, axis=axis, keepdims=keepdims)


def _nan_to(a, value):
    """``a`` with its NaNs replaced by the constant ``value`` (their derivative is zero)."""
    nan = _np.isnan(primal_value(a))
    return E.where_p(nan, value, a) if nan.any() else a


def _nan_chooser(red, fill, a, axis, keepdims, kw, name):
    _no_out(kw, name)
    xv = primal_value(a)
    nan = _np.isnan(xv)
    if not nan.any():
        return red(a, axis=axis, keepdims=keepdims)
    out = red(E.where_p(nan, fill, a), axis=axis, keepdims=keepdims)
    allnan = _np.all(nan, axis=normalize_axes(axis, xv.ndim), keepdims=keepdims)
    if allnan.any():
        import warnings

        warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=3)
        out = E.where_p(allnan, _np.nan, out)
    return out


def nanmax(a, axis=None, out=None, keepdims=False, **kw):
    """Largest element along ``axis``, ignoring NaNs (NaN for an all-NaN slice).  As in
    ``max``, tied maxima share the derivative equally (½ each for two); NaNs get zero."""
    kw["out"] = out
    return _nan_chooser(max, -_np.inf, a, axis, keepdims, kw, "nanmax")


def nanmin(a, axis=None, out=None, keepdims=False, **kw):
    """Smallest element along ``axis``, ignoring NaNs (NaN for an all-NaN slice).  As in
    ``min``, tied minima share the derivative equally (½ each for two); NaNs get zero."""
    kw["out"] = out
    return _nan_chooser(min, _np.inf, a, axis, keepdims, kw, "nanmin")


def nansum(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    """Σ over ``axis`` with NaNs counted as zero; NaN entries get a zero derivative."""
    return sum(_nan_to(a, 0), axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)


def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    """Π over ``axis`` with NaNs counted as one; NaN entries get a zero derivative."""
    return prod(_nan_to(a, 1), axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)


def _valid_count(a, axes, keepdims):
    return _np.sum(~_np.isnan(primal_value(a)), axis=axes, keepdims=keepdims)


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    """Mean of the non-NaN entries Σ' x / n' along ``axis`` (NaN for an all-NaN slice)."""
    _no_out(dict(kw, out=out), "nanmean")
    a = _as_float(a, dtype)
    axes = normalize_axes(axis, _ndim(a))
    cnt = _valid_count(a, axes, keepdims)
    total = sum_p(_nan_to(a, 0), axis=axes, keepdims=keepdims)
    return _safe_divide(total, cnt, "Mean of empty slice")


def _safe_divide(total, cnt, message):
    """total / cnt, NaN (with NumPy's warning) where cnt ≤ 0, with a zero derivative there."""
    bad = _np.asarray(cnt <= 0)
    rdt = _real_dtype(total)
    if not bad.any():
        return total / _np.asarray(cnt, rdt)
    import warnings

    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return E.where_p(bad, _np.nan, total / _np.where(bad, 1, cnt).astype(rdt))


def _real_dtype(x):
    """The real dtype matching ``x``'s (float64 for integers)."""
    dt = _np.result_type(primal_value(x))
    return dt.type(0).real.dtype if dt.kind in "fc" else _np.dtype(float)


def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    """Variance of the non-NaN entries Σ'|x − m|² / (n' − ddof) along ``axis``."""
    _no_out(dict(kw, out=out), "nanvar")
    a = _as_float(a, dtype)
    axes = normalize_axes(axis, _ndim(a))
    nan = _np.isnan(primal_value(a))
    cnt = _valid_count(a, axes, True)
    m = sum_p(_nan_to(a, 0), axis=axes, keepdims=True) / _np.where(cnt == 0, 1, cnt).astype(
        _real_dtype(a)
    )
    d = E.where_p(nan, 0, a - m) if nan.any() else a - m
    sq = E.real(d * E.conj(d)) if _np.iscomplexobj(primal_value(a)) else d * d
    dof = cnt - ddof if keepdims else _np.squeeze(cnt, axis=axes) - ddof
    return _safe_divide(
        sum_p(sq, axis=axes, keepdims=keepdims), dof, "Degrees of freedom <= 0 for slice."
    )


def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    """Standard deviation √nanvar of the non-NaN entries along ``axis``."""
    return E.sqrt(nanvar(a, axis, dtype, out, ddof, keepdims, **kw))


# ---------------------------------------------------------------------------------------------
# Order statistics: median, quantile, percentile (and their NaN-ignoring forms).  The sample
# is sorted by value (a constant permutation), the one or two neighbouring order statistics
# are gathered, and interpolated with weight γ: y = (1 − γ)·x₍ₖ₎ + γ·x₍ₖ₊₁₎.  So ∂y/∂x goes
# to those two elements with weights 1 − γ and γ, and for the continuous methods γ depends on
# q, giving ∂y/∂q = (x₍ₖ₊₁₎ − x₍ₖ₎)·∂(virtual index)/∂q.
# ---------------------------------------------------------------------------------------------

# (α, β) of Hyndman & Fan's continuous methods: virtual index n·q + α + q·(1 − α − β) − 1
_CONTINUOUS = {
    "linear": (1.0, 1.0),
    "weibull": (0.0, 0.0),
    "hazen": (0.5, 0.5),
    "median_unbiased": (1 / 3.0, 1 / 3.0),
    "normal_unbiased": (3 / 8.0, 3 / 8.0),
    "interpolated_inverted_cdf": (0.0, 1.0),
}
_DISCRETE = ("inverted_cdf", "closest_observation", "lower", "higher", "nearest")
_HALVES = ("averaged_inverted_cdf", "midpoint", "median")  # γ is 0, ½ or 1: a constant
QUANTILE_METHODS = tuple(_CONTINUOUS) + _DISCRETE + _HALVES[:2]


def _virtual(method, n, q):
    """NumPy's virtual index for ``method`` on plain values, and (α, β) when it is continuous."""
    if method == "linear":
        return (n - 1) * q
    alpha, beta = _CONTINUOUS[method]
    return n * q + (alpha + q * (1 - alpha - beta)) - 1


def _discrete_index(method, n, q):
    if method == "lower":
        return _np.floor((n - 1) * q)
    if method == "higher":
        return _np.ceil((n - 1) * q)
    if method == "nearest":
        return _np.around((n - 1) * q)
    v = n * q - 1 - (0.5 if method == "closest_observation" else 0.0)
    prev = _np.floor(v)
    at_prev = (v - prev == 0) & ((prev % 2 == 1) if method == "closest_observation" else True)
    return _np.where(at_prev, prev, prev + 1)


def _order_stats(a2, order, ranks, m):
    """The order statistics of rank ``ranks`` (…, M) of each column of ``a2`` (N, M)."""
    cols = _np.arange(m)
    rows = _np.take_along_axis(order, ranks.reshape(-1, m), axis=0)
    return I.getitem(a2, (rows.reshape(ranks.shape), _np.broadcast_to(cols, ranks.shape)))


def _quantile_lines(a2, q, method, counts):
    """Quantiles of every column of ``a2`` (N, M), the sample first; ``q`` has shape Q.
    ``counts`` (M,) is the number of leading valid values of each sorted column (NaNs sort
    last), or None for all N.  Returns shape Q + (M,)."""
    av = primal_value(a2)
    big_n, m = av.shape
    order = _np.argsort(av, axis=0)
    qv = _np.asarray(primal_value(q), dtype=float)
    qshape = qv.shape
    qb = qv.reshape(qshape + (1,))
    n = _np.full(m, big_n) if counts is None else counts
    last = _np.maximum(n - 1, 0)
    full = qshape + (m,)
    if method in _DISCRETE:
        rank = _np.clip(_discrete_index(method, n, qb), 0, last).astype(_np.intp)
        return _order_stats(a2, order, _np.broadcast_to(rank, full), m)
    if method == "median":
        vi = _np.broadcast_to(0.5 * (n - 1), full)
    elif method == "midpoint":
        vi = 0.5 * (_np.floor((n - 1) * qb) + _np.ceil((n - 1) * qb))
    elif method == "averaged_inverted_cdf":
        vi = n * qb - 1
    else:
        vi = _virtual(method, n, qb)
    vi = _np.broadcast_to(vi, full)
    floor = _np.floor(vi)
    prev = _np.where(vi < 0, 0, _np.where(vi >= n - 1, last, floor))
    step = _np.ceil(vi) if method == "median" else floor + 1
    nxt = _np.where(vi < 0, 0, _np.where(vi >= n - 1, last, step))
    both = _order_stats(a2, order, _np.stack([prev, nxt]).astype(_np.intp), m)
    lo, hi = I.getitem(both, 0), I.getitem(both, 1)
    if method == "median":  # NumPy's median is the mean of the two middle values
        return (lo + hi) / 2
    dt = _real_dtype(lo)
    if method == "midpoint":
        gamma = _np.where(vi % 1 == 0, 0.0, 0.5).astype(dt)
    elif method == "averaged_inverted_cdf":
        gamma = _np.where(vi - floor == 0, 0.5, 1.0).astype(dt)
    elif isinstance(q, Tracer):  # γ = virtual index − ⌊virtual index⌋, traced through q
        nq = _np.asarray(n, dt)
        q2 = S.reshape(q, qshape + (1,))
        if method == "linear":
            gamma = (nq - 1) * q2 - floor.astype(dt)
        else:
            alpha, beta = _CONTINUOUS[method]
            gamma = nq * q2 + (alpha + q2 * (1 - alpha - beta)) - 1 - floor.astype(dt)
    else:
        gamma = (vi - floor).astype(dt)
    diff_ = hi - lo
    # NumPy's two-sided lerp (exact at both ends); both forms have the same derivative
    return E.where_p(
        _np.asarray(primal_value(gamma)) >= 0.5, hi - diff_ * (1 - gamma), lo + diff_ * gamma
    )


def _quantile(a, q, axis, method, keepdims, omit_nan, name):
    if method not in QUANTILE_METHODS and method != "median":
        raise ValueError(f"{method!r} is not a valid method. Use one of: {QUANTILE_METHODS}")
    av = primal_value(a)
    if _np.result_type(av).kind == "c":
        raise TypeError(f"{name}: a must be real, not complex")
    qv = _np.asarray(primal_value(q))
    if qv.size and not (_np.all(qv >= 0) and _np.all(qv <= 1)):
        raise ValueError("Quantiles must be in the range [0, 1]")
    if qv.ndim > 2 and name != "median":
        raise ValueError("q must be a scalar or 1d")
    a = _as_float(a)
    # NumPy's result dtype: a Python number q is weak (float32 data stays float32)
    qdt = q if type(q) in (int, float) else qv.dtype
    dt = _np.result_type(_np.result_type(primal_value(a)), qdt)
    if dt.kind != "f":
        dt = _np.dtype(float)
    if _np.result_type(primal_value(a)) != dt:
        a = E.astype(a, dt)
    shape = _np.shape(av)
    nd = len(shape)
    axes = normalize_axes(axis, nd)
    kept = tuple(1 if i - nd in axes else d for i, d in enumerate(shape))
    rest = tuple(d for i, d in enumerate(shape) if i - nd not in axes)
    big_n = _count(shape, axes)
    if big_n == 0:
        raise ValueError(f"{name}: cannot take a quantile of an empty slice")
    moved = S.moveaxis(a, [x + nd for x in axes], list(range(len(axes)))) if axes else a
    m = _count(rest, tuple(range(-len(rest), 0)))
    a2 = S.reshape(moved, (big_n, m))
    nan = _np.isnan(primal_value(a2))
    counts = None
    if omit_nan and nan.any():
        counts = _np.sum(~nan, axis=0)
    out = _quantile_lines(a2, q, method, counts)
    bad = (counts == 0) if counts is not None else (nan.any(axis=0) if not omit_nan else None)
    if bad is not None and bad.any():
        if omit_nan:
            import warnings

            warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=3)
        out = E.where_p(bad, _np.nan, out)
    return S.reshape(out, qv.shape + (kept if keepdims else rest))


def _quantile_args(kw, name):
    out = kw.pop("out", None)
    if out is not None:
        raise TypeError(f"{name}: 'out=' writes in place and cannot be differentiated")
    kw.pop("overwrite_input", None)
    if kw.pop("weights", None) is not None:
        raise NotImplementedError(f"{name}: weights= is not supported on traced arrays")
    if kw.pop("interpolation", None) is not None:
        raise TypeError(f"{name}: interpolation= was renamed method= in NumPy")
    if kw:
        raise TypeError(f"{name}() got unexpected keyword arguments {sorted(kw)}")


def quantile(a, q, axis=None, method="linear", keepdims=False, **kw):
    """The q-th quantiles (0 ≤ q ≤ 1) along ``axis`` with NumPy's ``method``s.

    The result interpolates two order statistics: y = (1 − γ)·x₍ₖ₎ + γ·x₍ₖ₊₁₎, so ∂y/∂x is
    1 − γ and γ at those elements (of tied values, those argsort ranks there).  ``q`` may be traced too: for the continuous methods
    ('linear', 'weibull', 'hazen', 'median_unbiased', 'normal_unbiased',
    'interpolated_inverted_cdf') ∂y/∂q = (x₍ₖ₊₁₎ − x₍ₖ₎)·∂(virtual index)/∂q; the discrete ones
    ('lower', 'higher', 'nearest', 'inverted_cdf', 'closest_observation', 'midpoint',
    'averaged_inverted_cdf') are piecewise constant in q.  A slice holding a NaN gives NaN.
    """
    _quantile_args(kw, "quantile")
    return _quantile(a, q, axis, method, keepdims, False, "quantile")


def percentile(a, q, axis=None, method="linear", keepdims=False, **kw):
    """The q-th percentiles (0 ≤ q ≤ 100): ``quantile(a, q / 100, ...)``."""
    _quantile_args(kw, "percentile")
    if _np.any(_np.asarray(primal_value(q)) > 100) or _np.any(_np.asarray(primal_value(q)) < 0):
        raise ValueError("Percentiles must be in the range [0, 100]")
    return _quantile(a, _percent(q), axis, method, keepdims, False, "percentile")


def _percent(q):
    """q / 100, keeping a Python number a Python number (weak in NumPy's promotion)."""
    if isinstance(q, Tracer) or type(q) in (int, float):
        return q / 100
    return _np.true_divide(q, 100)


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """The median along ``axis``: the middle order statistic, or the mean of the two middle
    ones, which then share the derivative ½ each.  A slice holding a NaN gives NaN."""
    _quantile_args({"out": out}, "median")
    return _quantile(a, 0.5, axis, "median", keepdims, False, "median")


def nanquantile(a, q, axis=None, method="linear", keepdims=False, **kw):
    """``quantile`` of the non-NaN entries of each slice (NaN for an all-NaN slice)."""
    _quantile_args(kw, "nanquantile")
    return _quantile(a, q, axis, method, keepdims, True, "nanquantile")


def nanpercentile(a, q, axis=None, method="linear", keepdims=False, **kw):
    """``percentile`` of the non-NaN entries of each slice (NaN for an all-NaN slice)."""
    _quantile_args(kw, "nanpercentile")
    if _np.any(_np.asarray(primal_value(q)) > 100) or _np.any(_np.asarray(primal_value(q)) < 0):
        raise ValueError("Percentiles must be in the range [0, 100]")
    return _quantile(a, _percent(q), axis, method, keepdims, True, "nanpercentile")


def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """``median`` of the non-NaN entries of each slice (NaN for an all-NaN slice)."""
    _quantile_args({"out": out}, "nanmedian")
    return _quantile(a, 0.5, axis, "median", keepdims, True, "nanmedian")


# The cumulative sums read nothing but shapes; cumprod reads its input and output (default).
cumsum_p.saving(())
rcumsum_p.saving(())
