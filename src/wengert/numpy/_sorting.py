"""Sorting and selection: sort, partition, take, take_along_axis, select, choose, compress,
extract, unique, and the index-valued queries (argsort, searchsorted, ...).

Every differentiable function here is a gather ``x[idx]`` whose indices come from the plain
values (a constant permutation or selection), so its derivative is the gather's: the JVP
gathers the tangent, the VJP scatters the cotangent back (adding at repeated indices).
"""

from __future__ import annotations

import numpy as _np

from wengert.core import Tracer, primal_value

from . import _elementwise as E
from . import _indexing as I
from . import _reductions as R
from . import _shape as S


def _ndim(a) -> int:
    return _np.ndim(primal_value(a))


def _shape(a) -> tuple:
    return _np.shape(primal_value(a))


def _no_out(out, name):
    if out is not None:
        raise TypeError(f"{name}: 'out=' writes in place and cannot be differentiated")


# ---------------------------------------------------------------------------------------------
# Gathers along an axis
# ---------------------------------------------------------------------------------------------


def take(a, indices, axis=None, out=None, mode="raise"):
    """Elements of ``a`` at ``indices`` along ``axis`` (of the flattened array if None).
    ``mode`` handles out-of-range indices as in NumPy: 'raise', 'wrap' or 'clip'."""
    _no_out(out, "take")
    indices = _np.asarray(primal_value(indices))
    if indices.dtype.kind not in "iu":
        raise TypeError(f"take: indices must be integers, not {indices.dtype}")
    if axis is None:
        a = S.ravel(a)
        axis = 0
    nd = _ndim(a)
    ax = R.one_axis(axis, nd) + nd
    n = _shape(a)[ax]
    if mode == "wrap":
        indices = indices % n if n else indices
    elif mode == "clip":
        indices = _np.clip(indices, 0, max(n - 1, 0))
    elif mode != "raise":
        raise ValueError(f"take: mode must be 'raise', 'wrap' or 'clip', not {mode!r}")
    return I.getitem(a, (slice(None),) * ax + (indices,))


def _along_axis_index(shape: tuple, indices: _np.ndarray, ax: int) -> tuple:
    """The advanced index that picks ``indices`` along axis ``ax`` and keeps the others."""
    nd = len(shape)
    idx = []
    for d in range(nd):
        if d == ax:
            idx.append(indices)
        else:
            idx.append(_np.arange(shape[d]).reshape((1,) * d + (-1,) + (1,) * (nd - d - 1)))
    return tuple(idx)


def take_along_axis(arr, indices, axis=-1):
    """``arr`` gathered at ``indices`` along ``axis``, as from ``argsort`` or ``argmax`` with
    ``keepdims``; ``axis=None`` works on the flattened array."""
    indices = _np.asarray(primal_value(indices))
    if indices.dtype.kind not in "iu":
        raise IndexError("`indices` must be an integer array")
    if axis is None:
        if indices.ndim != 1:
            raise ValueError("when axis=None, `indices` must have a single dimension.")
        return I.getitem(S.ravel(arr), indices)
    nd = _ndim(arr)
    if indices.ndim != nd:
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    ax = R.one_axis(axis, nd) + nd
    return I.getitem(arr, _along_axis_index(_shape(arr), indices, ax))


def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """``a`` sorted along ``axis`` (flattened if None): a gather by the plain values' argsort.
    Each output position carries the derivative of the element that landed there (of tied
    elements, the one ``argsort`` put there: array order with ``kind='stable'``)."""
    if order is not None:
        raise NotImplementedError("sort: order= (structured arrays) is not differentiable")
    if axis is None:
        a = S.ravel(a)
        axis = -1
    av = primal_value(a)
    ax = R.one_axis(axis, _np.ndim(av))
    kind = "stable" if stable else kind
    return take_along_axis(a, _np.argsort(av, axis=ax, kind=kind), axis=ax)


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """``a`` partitioned around its ``kth`` elements along ``axis``: a gather by the plain
    values' argpartition (each output position carries its element's derivative)."""
    if order is not None:
        raise NotImplementedError("partition: order= (structured arrays) is not differentiable")
    if axis is None:
        a = S.ravel(a)
        axis = -1
    av = primal_value(a)
    ax = R.one_axis(axis, _np.ndim(av))
    idx = _np.argpartition(av, primal_value(kth), axis=ax, kind=kind)
    return take_along_axis(a, idx, axis=ax)


# ---------------------------------------------------------------------------------------------
# Selections
# ---------------------------------------------------------------------------------------------


def select(condlist, choicelist, default=0):
    """The element of the first ``choicelist[k]`` whose ``condlist[k]`` holds, else
    ``default``.  Built from ``where``, so unselected choices get an exact zero derivative
    (no NaN from them, even where their own derivative is infinite)."""
    condlist, choicelist = list(condlist), list(choicelist)
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if not choicelist:
        raise ValueError("select with an empty condition list is not possible")
    conds = []
    for k, c in enumerate(condlist):
        c = _np.asarray(primal_value(c))
        if c.dtype != bool:
            raise TypeError(f"invalid entry {k} in condlist: should be boolean ndarray")
        conds.append(c)
    dts = [primal_value(c) for c in choicelist] + [primal_value(default)]
    dt = _np.result_type(*dts)  # a Python default is weak, as in NumPy
    out = default
    for c, choice in zip(reversed(conds), reversed(choicelist)):
        out = E.where_p(c, choice, out)
    shape = _np.broadcast_shapes(*[c.shape for c in conds], *[_np.shape(d) for d in dts])
    out = S.broadcast_to(out, shape)
    return out if _np.result_type(primal_value(out)) == dt else E.astype(out, dt)


def choose(a, choices, out=None, mode="raise"):
    """``choices[a[i]][i]``: the index array ``a`` (constant) picks among the broadcast
    ``choices``; ``mode`` ('raise', 'wrap', 'clip') handles out-of-range indices."""
    _no_out(out, "choose")
    idx = _np.asarray(primal_value(a))
    if idx.dtype.kind not in "iu":
        raise TypeError("choose: the index array a must hold integers")
    choices = list(choices)
    n = len(choices)
    if mode == "wrap":
        idx = idx % n
    elif mode == "clip":
        idx = _np.clip(idx, 0, n - 1)
    elif mode != "raise":
        raise ValueError(f"choose: mode must be 'raise', 'wrap' or 'clip', not {mode!r}")
    elif idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError("invalid entry in choice array")
    shape = _np.broadcast_shapes(idx.shape, *[_shape(c) for c in choices])
    dt = _np.result_type(*[primal_value(c) for c in choices])
    result = choices[-1]
    for k in range(n - 2, -1, -1):
        result = E.where_p(idx == k, choices[k], result)
    result = S.broadcast_to(result, shape)
    return result if _np.result_type(primal_value(result)) == dt else E.astype(result, dt)


def compress(condition, a, axis=None, out=None):
    """The slices of ``a`` along ``axis`` where the 1-D ``condition`` holds (a gather)."""
    _no_out(out, "compress")
    cond = _np.asarray(primal_value(condition))
    if cond.ndim != 1:
        raise ValueError("condition must be a 1-d array")
    return take(a, _np.nonzero(cond)[0], axis=axis)


def extract(condition, arr):
    """The elements of ``arr`` where ``condition`` holds, flattened (a gather)."""
    cond = _np.ravel(_np.asarray(primal_value(condition)))
    return take(S.ravel(arr), _np.nonzero(cond)[0])


def unique(
    ar,
    return_index=False,
    return_inverse=False,
    return_counts=False,
    axis=None,
    *,
    equal_nan=True,
    **kw,
):
    """The sorted unique values of ``ar`` (of its slices along ``axis``), with NumPy's
    optional index, inverse and counts (plain integer arrays).

    The values are a gather of the *first occurrence* of each value, ``ravel(ar)[index]``:
    their derivative is that element's, and later duplicates get zero.  (At a tie the
    function is not differentiable; this one-sided choice keeps ``unique(x) == x[index]``
    an identity that differentiates consistently.)
    """
    av = primal_value(ar)
    res = _np.unique(
        av, return_index=True, return_inverse=return_inverse, return_counts=return_counts,
        axis=axis, equal_nan=equal_nan, **kw,
    )  # fmt: skip
    first = res[1]
    if not isinstance(ar, Tracer):
        values = res[0]
    elif axis is None:
        values = I.getitem(S.ravel(ar), first)
    else:
        values = take(ar, first, axis=axis)
    extra = []
    if return_index:
        extra.append(first)
    extra.extend(res[2:])
    return (values, *extra) if extra else values


def unique_values(x):
    """The unique values of ``x`` (see ``unique`` for their derivative)."""
    return unique(x)


# ---------------------------------------------------------------------------------------------
# Index-valued queries: computed on the plain values, no derivative
# ---------------------------------------------------------------------------------------------


def _plain(v):
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(w) for w in v)
    return primal_value(v)


def _index_query(name):
    return E.constant_op(getattr(_np, name), "an index output, no derivative.", plain=_plain)


searchsorted = _index_query("searchsorted")
argpartition = _index_query("argpartition")
lexsort = _index_query("lexsort")
flatnonzero = _index_query("flatnonzero")
argwhere = _index_query("argwhere")
nanargmax = _index_query("nanargmax")
nanargmin = _index_query("nanargmin")
digitize = _index_query("digitize")


# ---------------------------------------------------------------------------------------------
# Array methods of traced values (installed by _array_methods)
# ---------------------------------------------------------------------------------------------


def in_place_method(name: str, instead: str):
    """A method that would modify the array in place: traced arrays refuse it clearly."""

    def method(self, *args, **kwargs):
        raise TypeError(
            f"x.{name}() modifies the array in place, which a traced array cannot do (the old "
            f"value is needed for the backward sweep). Use the functional form instead: "
            f"{instead}."
        )

    method.__name__ = name
    return method


def compress_method(self, condition, axis=None, out=None):
    """``x.compress(condition, axis)``."""
    return compress(condition, self, axis=axis, out=out)


def round_method(self, decimals=0, out=None):
    """``x.round(decimals)``: rounding is piecewise constant, so its derivative is zero and
    the result is a plain (constant) array."""
    _no_out(out, "round")
    return _np.round(primal_value(self), decimals)
