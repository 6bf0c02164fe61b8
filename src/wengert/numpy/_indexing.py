"""Indexing: ``x[idx]`` (basic, advanced and boolean) and its transpose, the scatter-add.

``getitem`` gathers; its VJP scatters the cotangent into zeros of the input's shape (adding at
repeated indices), and the scatter's own VJP is the gather again, so any order works.
"""

from __future__ import annotations

import numpy as _np

from wengert.core import Primitive, primal_value


def normalize_index(idx) -> tuple:
    """``idx`` as a tuple of ints, slices, None, Ellipsis and integer arrays (no booleans)."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for i in idx:
        i = primal_value(i)
        if isinstance(i, list):
            i = _np.asarray([primal_value(v) for v in i]) if i else _np.asarray(i, dtype=_np.intp)
        if isinstance(i, _np.ndarray):
            if i.dtype == bool:
                if i.ndim == 0:
                    out.append(i)  # x[True] / x[False]: NumPy's own meaning
                else:
                    out.extend(_np.nonzero(i))
                continue
            if i.dtype.kind not in "iu":
                raise IndexError(
                    "only integers, slices, ellipsis, None, and integer or boolean arrays are "
                    f"valid indices (got an array of dtype {i.dtype})"
                )
        elif isinstance(i, (float, complex, _np.floating)):
            raise IndexError(f"only integers can index an array, not {i!r}")
        out.append(i)
    return tuple(out)


def _is_basic(idx: tuple) -> bool:
    return not any(isinstance(i, _np.ndarray) for i in idx)


def _advanced_layout(idx: tuple):
    """For an index with non-adjacent advanced parts (which NumPy moves to the front), the
    number of broadcast advanced axes; else None."""
    if _is_basic(idx):
        return None
    pos = [k for k, i in enumerate(idx) if isinstance(i, (_np.ndarray, int, _np.integer))]
    if pos == list(range(pos[0], pos[0] + len(pos))):
        return None
    return _np.broadcast(*[i for i in idx if isinstance(i, (_np.ndarray, int, _np.integer))]).nd


def _batch(idx: tuple, nb: int) -> tuple:
    return (slice(None),) * nb + idx


def _moveaxes(a, src, dst):
    from . import _shape as S

    return S.moveaxis(a, src, dst)


def _getitem_impl(x, idx):
    return x[idx]


def _getitem_jvp(t, ans, x, idx):
    nb = t.ndim - _np.ndim(primal_value(x))
    if nb == 0:
        return getitem_p(t, idx=idx)
    out = getitem_p(t, idx=_batch(idx, nb))
    k = _advanced_layout(idx)
    if k is not None:  # NumPy put the advanced axes in front of the batch axes: swap back
        out = _moveaxes(out, list(range(k, k + nb)), list(range(nb)))
    return out


getitem_p = Primitive("getitem", _getitem_impl, fmt="{0}[·]")
getitem_p.defjvp(_getitem_jvp)
getitem_p.defvjp(lambda g, ans, x, idx: scatter_add_p(g, idx=idx, shape=_np.shape(primal_value(x))))


def _scatter_add_impl(g, idx, shape):
    out = _np.zeros(shape, _np.result_type(g))
    if _is_basic(idx):
        out[idx] = g
    else:
        _np.add.at(out, idx, g)
    return out


def _scatter_add_jvp(t, ans, g, idx, shape):
    nb = t.ndim - _np.ndim(primal_value(g))
    if nb == 0:
        return scatter_add_p(t, idx=idx, shape=shape)
    batch = t.shape[:nb]
    k = _advanced_layout(idx)
    if k is not None:
        t = _moveaxes(t, list(range(nb)), list(range(k, k + nb)))
    return scatter_add_p(t, idx=_batch(idx, nb), shape=batch + shape)


scatter_add_p = Primitive("scatter_add", _scatter_add_impl, fmt="scatter {0}")
scatter_add_p.defjvp(_scatter_add_jvp)
scatter_add_p.defvjp(lambda g, ans, x, idx, shape: getitem_p(g, idx=idx))


def getitem(x, idx):
    """``x[idx]`` for any NumPy index; tracers inside the index are used by value."""
    return getitem_p(x, idx=normalize_index(idx))


def take(a, indices, axis=None):
    """Elements of ``a`` at ``indices`` along ``axis`` (of the flattened array if None)."""
    from . import _shape as S

    indices = _np.asarray(primal_value(indices))
    if axis is None:
        return getitem(S.ravel(a), indices)
    nd = _np.ndim(primal_value(a))
    return getitem(a, (slice(None),) * (axis % nd) + (indices,))


def _getitem_add_into(acc, g, x, idx):
    """The sweep's in-place form of getitem's VJP: acc[idx] += g (adding at repeats)."""
    if _is_basic(idx):
        acc[idx] += g
    else:
        _np.add.at(acc, idx, g)


getitem_p.vjp_add_into = _getitem_add_into

# What each VJP reads: only shapes, so the tape keeps no values (see Primitive.saving).
getitem_p.saving(())
scatter_add_p.saving(())
