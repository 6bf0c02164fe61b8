"""Functional updates of arrays, and in-place assignment to traced arrays.

``at(x)[idx].set(v)`` (also ``.add``, ``.subtract``, ``.multiply``, ``.divide``, ``.get``)
returns a new array and never touches ``x``.  ``x[idx] = v`` on a traced ``x`` records the
same functional update and rebinds the tracer ``x`` to its result: later uses of ``x`` see
the new value while the tape keeps the old one for the backward sweep.
"""

from __future__ import annotations

import bisect
import sys
from typing import Any

import numpy as _np

from wengert.core import Primitive, Tracer, VJPTracer, primal_value, top_trace

from . import _elementwise as E
from . import _indexing as I
from . import _shape as S

__all__ = ["at", "copy", "setitem", "ViewAssignmentError"]


class ViewAssignmentError(TypeError):
    """``x[idx] = v`` on a traced array that is a view of another array: NumPy would write
    through to the other array, which wengert cannot follow."""


# ---------------------------------------------------------------------------------------------
# The update primitive.  Every index is first turned into ``target``, the flat positions of the
# elements ``x[idx]`` reads, shaped like ``x[idx]``; the rules then need only one gather and one
# scatter on the flattened array, with leading batch axes (jacfwd) in front.
# ---------------------------------------------------------------------------------------------


def _update_impl(x, v, target, shape, mode, unique):
    x = _np.asarray(x)
    nb = x.ndim - len(shape)
    out = _np.array(x, order="C", copy=True)
    flat = out.reshape(x.shape[:nb] + (int(_np.prod(shape, dtype=int)),))
    key = (Ellipsis, target)
    if mode == "set":
        flat[key] = v
    elif unique:
        flat[key] += v
    else:
        _np.add.at(flat, key, v)  # repeated positions accumulate
    return out


def _zeros(lead, shape, like):
    return _np.zeros(lead + shape, _np.result_type(primal_value(like)))


def _align(tv, v, target):
    """A (possibly batched) tangent of ``v`` reshaped to broadcast against ``x[idx]``: unit axes
    between its batch axes and its own axes."""
    vnd = _np.ndim(primal_value(v))
    missing = target.ndim - vnd
    if missing <= 0:
        return tv
    nb = tv.ndim - vnd
    return S.reshape(tv, tv.shape[:nb] + (1,) * missing + tv.shape[nb:])


def _update_jvp(tangents, ans, x, v, *, target, shape, mode, unique):
    tx, tv = tangents
    if tv is None and mode == "add":
        return tx
    lead = tx.shape[: tx.ndim - len(shape)] if tx is not None else None
    if tv is not None:
        if lead is None:
            lead = tv.shape[: tv.ndim - _np.ndim(primal_value(v))]
        tv = _align(tv, v, target)
    base = tx if tx is not None else _zeros(lead, shape, ans)
    return update_p(base, 0 if tv is None else tv, target=target, shape=shape, mode=mode,
                    unique=unique)  # fmt: skip


def _winners(target) -> _np.ndarray:
    """Where ``target`` repeats a position, ``set`` keeps the last value written: True for the
    occurrences that end up in the result."""
    flat = target.ravel()
    order = _np.arange(flat.size)
    last = _np.full(int(flat.max()) + 1 if flat.size else 0, -1)
    last[flat] = order  # the same assignment as the update itself, so the same winner
    return (last[flat] == order).reshape(target.shape)


def _update_vjp_x(g, ans, x, v, *, target, shape, mode, unique):
    """set: the overwritten positions get no cotangent; add: the identity."""
    if mode == "add":
        return g
    return update_p(g, 0, target=target, shape=shape, mode="set", unique=unique)


def _update_vjp_v(g, ans, x, v, *, target, shape, mode, unique):
    """The cotangent at the updated positions, summed over the positions ``v`` was broadcast
    to (and, for add, over repeated positions); for set only the value that was kept counts."""
    size = int(_np.prod(shape, dtype=int))
    nb = g.ndim - len(shape)  # leading batch axes, where a JVP rule called this primitive
    flat = S.reshape(g, g.shape[:nb] + (size,))
    gi = I.getitem_p(flat, idx=(slice(None),) * nb + (target,))
    if mode == "set" and not unique:
        gi = E.where_p(_winners(target), gi, 0)
    if _np.iscomplexobj(primal_value(gi)) and not _np.iscomplexobj(primal_value(v)):
        gi = E.real(gi)
    return E.unbroadcast(gi, v)


update_p = Primitive("update", _update_impl, fmt="{0} with [·] ← {1}")
update_p.jvp_all = _update_jvp
update_p.defvjp(_update_vjp_x, _update_vjp_v)
update_p.saving((), ())


def _copy_impl(x):
    return _np.array(x, copy=True)


copy_p = Primitive("copy", _copy_impl, elementwise=True, fmt="copy {0}")
copy_p.defjvp(lambda t, ans, x: t).defvjp(lambda g, ans, x: g)
copy_p.saving(())


def copy(a: Any, order: str = "K", subok: bool = False) -> Any:
    """A copy of ``a``.  For a traced ``a`` a new traced value (derivative: the identity), so
    that assigning into the copy (``y = x.copy(); y[0] = 0``) leaves ``x`` alone."""
    if isinstance(a, Tracer):
        return copy_p(a)
    return _np.copy(a, order=order, subok=subok)


# ---------------------------------------------------------------------------------------------
# at(x)[idx].set(v) and friends
# ---------------------------------------------------------------------------------------------


def _as_value(v):
    """``v`` as an array or tracer; nested lists holding traced values are assembled."""
    if isinstance(v, (list, tuple)):
        from . import _construction as B

        return B.array(v)
    return v


def _is_unique(target) -> bool:
    return _np.unique(target).size == target.size


def _prepare(x, idx, v, what):
    """Check and canonicalise an update of ``x[idx]`` by ``v``."""
    xv = primal_value(x)
    if not isinstance(x, Tracer):
        x = xv = _np.asarray(x)
    shape = _np.shape(xv)
    nidx = I.normalize_index(idx)
    target = _np.asarray(_np.arange(int(_np.prod(shape, dtype=int)), dtype=_np.intp)
                         .reshape(shape)[nidx])  # fmt: skip
    v = _as_value(v)
    vv = primal_value(v)
    xdt, vdt = _np.result_type(xv), _np.result_type(vv)
    if vdt.kind == "c" and xdt.kind != "c":
        raise TypeError(
            f"{what}: cannot store complex values in an array of dtype {xdt} (the imaginary part "
            "would be lost); convert the array first, e.g. x.astype(complex)"
        )
    if isinstance(v, Tracer) and xdt.kind not in "fc":
        raise TypeError(
            f"{what}: the array has dtype {xdt}, so the traced value would be rounded to it and "
            "its derivative lost; convert the array to float first (x.astype(float))"
        )
    vshape = _np.shape(vv)
    try:
        ok = _np.broadcast_shapes(vshape, target.shape) == target.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{what}: could not broadcast a value of shape {vshape} into the selection of shape "
            f"{target.shape}"
        )
    if len(vshape) > target.ndim:  # leading unit axes, which NumPy also accepts: drop them
        keep = vshape[len(vshape) - target.ndim :]
        v = S.reshape(v, keep) if isinstance(v, Tracer) else _np.reshape(vv, keep)
    unique = I._is_basic(nidx) or _is_unique(target)
    return x, v, target, shape, unique


def _update(x, idx, v, mode, what):
    x, v, target, shape, unique = _prepare(x, idx, v, what)
    return update_p(x, v, target=target, shape=shape, mode=mode, unique=unique)


def _multiply(x, idx, v, what):
    """x with x[idx] multiplied by v (repeated positions multiply by each of their values):
    x · M, where M is 1 except at the updated positions.  Each layer of M sets distinct
    positions, so M is built from the (linear) set update and needs no division."""
    if not isinstance(x, Tracer) and not isinstance(_as_value(v), Tracer):
        out = _np.array(x, copy=True)
        _np.multiply.at(out, I.normalize_index(idx), primal_value(v))
        return out
    x, v, target, shape, unique = _prepare(x, idx, v, what)
    ones = _np.ones(shape, _np.result_type(primal_value(x)))
    if unique:
        m = update_p(ones, v, target=target, shape=shape, mode="set", unique=True)
        return E.multiply(x, m)
    vb = S.broadcast_to(v, target.shape) if isinstance(v, Tracer) else _np.broadcast_to(
        primal_value(v), target.shape)  # fmt: skip
    vflat = S.reshape(vb, (-1,)) if isinstance(vb, Tracer) else _np.reshape(vb, (-1,))
    tflat = target.ravel()
    order = _np.argsort(tflat, kind="stable")
    st = tflat[order]
    starts = _np.flatnonzero(_np.r_[True, st[1:] != st[:-1]])
    rank = _np.empty(tflat.size, _np.intp)
    rank[order] = _np.arange(tflat.size) - _np.repeat(starts, _np.diff(_np.r_[starts, st.size]))
    m = None
    for r in range(int(rank.max()) + 1):
        sel = _np.flatnonzero(rank == r)
        layer = update_p(ones, I.getitem(vflat, sel), target=tflat[sel], shape=shape, mode="set",
                         unique=True)  # fmt: skip
        m = layer if m is None else m * layer
    return E.multiply(x, m)


class _IndexedUpdate:
    """``at(x)[idx]``: the updates of the elements ``x[idx]``, each returning a new array."""

    __slots__ = ("array", "index")

    def __init__(self, array: Any, index: Any) -> None:
        self.array = array
        self.index = index

    def get(self) -> Any:
        """``x[idx]``."""
        return I.getitem(self.array, self.index)

    def set(self, values: Any) -> Any:
        """A copy of x with ``x[idx] = values``.  Where idx repeats a position the last value
        wins, as in NumPy.  ∂/∂x: the identity except at the overwritten positions (0);
        ∂/∂values: the cotangent at those positions, summed where values was broadcast."""
        return _update(self.array, self.index, values, "set", "at(x)[idx].set")

    def add(self, values: Any) -> Any:
        """A copy of x with ``values`` added at ``x[idx]``; a repeated position gets every value
        added (like ``numpy.add.at``, unlike ``x[idx] += values``).  Linear in x and values."""
        return _update(self.array, self.index, values, "add", "at(x)[idx].add")

    def subtract(self, values: Any) -> Any:
        """``add(-values)``."""
        values = _as_value(values)
        neg = E.negative(values) if isinstance(values, Tracer) else _np.negative(values)
        return self.add(neg)

    def multiply(self, values: Any) -> Any:
        """A copy of x with ``x[idx]`` multiplied by ``values`` (each value at a repeated
        position, like ``numpy.multiply.at``).  ∂/∂x: the product of the values hitting each
        position; ∂/∂values: x times the other values at that position."""
        return _multiply(self.array, self.index, values, "at(x)[idx].multiply")

    def divide(self, values: Any) -> Any:
        """``multiply(1 / values)``."""
        values = _as_value(values)
        return self.multiply(1.0 / values if isinstance(values, Tracer) else
                             _np.true_divide(1.0, values))  # fmt: skip


class _At:
    __slots__ = ("array",)

    def __init__(self, array: Any) -> None:
        self.array = array

    def __getitem__(self, index: Any) -> _IndexedUpdate:
        return _IndexedUpdate(self.array, index)


def at(x: Any) -> _At:
    """Functional indexed updates, as in JAX: ``at(x)[idx].set(v)``, ``.add(v)``,
    ``.subtract(v)``, ``.multiply(v)``, ``.divide(v)`` and ``.get()`` each return a new array;
    ``x`` itself (traced or a plain NumPy array) is never modified.  Differentiable in ``x`` and
    ``v`` to any order."""
    return _At(x)


# ---------------------------------------------------------------------------------------------
# x[idx] = v on a tracer
# ---------------------------------------------------------------------------------------------


def _producer(trace, vid):
    """The tape entry that computed value ``vid`` (None for an input of the trace)."""
    tape = trace.tape
    k = bisect.bisect_right(tape, vid, key=lambda e: e.out) - 1
    if k < 0:
        return None
    e = tape[k]
    n = len(e.ans) if e.prim.multiple_results else 1
    return e if e.out <= vid < e.out + n else None


def _is_stand_in(a) -> bool:
    return a.ndim > 0 and not any(a.strides) and a.base is not None and a.base.ndim == 0


def _made_as_view(e, arr) -> bool:
    """Is ``arr``, computed by tape entry ``e``, a view of one of that entry's inputs?"""
    if type(arr) is not _np.ndarray or arr.base is None:
        return False
    if e.prim is I.getitem_p:  # basic indexing gives a view, advanced indexing a copy
        return I._is_basic(e.params["idx"])
    for pos, _ in e.links:
        p = primal_value(e.primals[pos])
        if type(p) is not _np.ndarray or _is_stand_in(p):
            return True  # the input is no longer at hand: it is a view of something
        if _np.may_share_memory(arr, p):
            return True
    return False


def _shared_base(arr) -> bool:
    """Forward mode keeps no record of where a value came from: ``arr`` is taken for a view of
    another live array if its base is referenced from anywhere but ``arr`` itself."""
    if type(arr) is not _np.ndarray or arr.base is None:
        return False
    count = getattr(sys, "getrefcount", None)
    return count is None or count(arr.base) > 2


def _view_error(x) -> ViewAssignmentError:
    return ViewAssignmentError(
        f"x[idx] = v: this traced array (shape {x.shape}) is a view of another array -- made by "
        "basic indexing, reshape, transpose, ravel or the like, or an argument passed as a "
        "view. NumPy would write through to that other array; wengert cannot follow writes "
        "through views, so the other array would silently keep its old value. Assign into the "
        "original array instead, or make an explicit copy first (y = y.copy(); y[idx] = v), or "
        "use y = wengert.numpy.at(y)[idx].set(v)."
    )


def _check_rebindable(x) -> None:
    v = x
    while isinstance(v, Tracer) and type(v) is not VJPTracer:
        v = v.primal
    if not isinstance(v, VJPTracer):  # forward mode only
        if _shared_base(primal_value(x)):
            raise _view_error(x)
        return
    e = _producer(v._trace, v.idx)
    if e is None:
        if v is x:
            raise TypeError(
                "x[idx] = v: x is an argument of the function being differentiated in reverse "
                "mode. wengert never modifies its inputs, and needs this one unchanged to report "
                "its derivative; assign into a copy instead (x = x.copy(); x[idx] = v), or build "
                "the new array functionally: x = wengert.numpy.at(x)[idx].set(v), or "
                "wengert.numpy.where(mask, v, x)."
            )
    elif _made_as_view(e, primal_value(x)):
        raise _view_error(x)


def setitem(x: Tracer, key: Any, value: Any) -> None:
    """``x[key] = value`` for a traced ``x``: records ``at(x)[key].set(value)`` and makes the
    tracer ``x`` stand for the result from now on (earlier uses keep the old value on the
    tape).  Writes through views are not followed (docs/in_place.md): assigning into a view
    that wengert detects raises :class:`ViewAssignmentError`."""
    value = _as_value(value)
    top = top_trace([x, value])
    if top is not x._trace:
        raise TypeError(
            "x[idx] = v: v is traced by a transformation nested inside the one that traces x "
            "(v depends on the argument of an inner grad/jvp, x does not), so x cannot be made "
            "to depend on it in place. Use y = wengert.numpy.at(x)[idx].set(v) instead."
        )
    _check_rebindable(x)
    new = _update(x, key, value, "set", "x[idx] = v")
    if type(new) is not type(x) or new._trace is not x._trace:  # pragma: no cover - defensive
        raise TypeError("x[idx] = v: internal error: the update left x's transformation")
    if type(x) is VJPTracer:
        x.primal, x.idx = new.primal, new.idx
    else:
        x.primal, x.tangent = new.primal, new.tangent
