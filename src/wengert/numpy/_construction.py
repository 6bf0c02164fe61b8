"""Building arrays: ``array``/``asarray`` of nested lists holding traced scalars, ``vander``,
``meshgrid``, and the constant ``*_like`` constructors.

Plain ``numpy.array([x, 1.0])`` cannot see tracers (NumPy converts each element itself, and a
tracer refuses to become a plain number), so ``wengert.numpy.array`` assembles such lists:
the traced leaves are joined into one vector and scattered into place, the rest is constant.
"""

from __future__ import annotations

import numpy as _np

from wengert.core import Tracer, primal_value

from . import _elementwise as E
from . import _indexing as I
from . import _reductions as R
from . import _shape as S
from . import _update


def _has_tracer(obj) -> bool:
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_tracer(o) for o in obj)
    return False


def _assemble(obj, dtype):
    """A nested list/tuple with traced leaves as one traced array (NumPy's shape and dtype)."""
    leaves: list = []

    def plain(o, path):
        if isinstance(o, Tracer):
            leaves.append((path, o))
            return primal_value(o)
        if isinstance(o, (list, tuple)):
            return [plain(e, path + (k,)) for k, e in enumerate(o)]
        return o

    base = _np.array(plain(obj, ()), dtype=dtype)
    if base.dtype.kind not in "fc":
        if base.dtype == object:
            raise ValueError(
                "wengert.numpy.array: the nested sequence is ragged (its parts differ in shape)"
            )
        return base  # an integer or boolean array: a constant, as astype would make it
    const = base.copy()
    pos = _np.arange(base.size).reshape(base.shape)
    where, parts = [], []
    for path, t in leaves:
        const[path] = 0
        where.append(_np.ravel(pos[path]))
        if _np.result_type(primal_value(t)) != base.dtype:
            t = E.astype(t, base.dtype)
        parts.append(S.reshape(t, (-1,)))
    idx = _np.concatenate(where)
    vec = parts[0] if len(parts) == 1 else S.concatenate(parts)
    out = S.reshape(I.scatter_add_p(vec, idx=(idx,), shape=(base.size,)), base.shape)
    return out if idx.size == base.size else out + const


def array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):  # noqa: A002
    """``numpy.array`` that also takes traced values, alone or inside nested lists/tuples,
    e.g. ``array([[x[0], 1.0], [x[1], x[2]]])``: the result is traced, with derivative 1 for
    each placed element.  (Plain ``numpy.array`` cannot be intercepted: use this one.)
    As in NumPy, the result is a new array unless ``copy=False`` (so ``z = array(y);
    z[0] = 0`` leaves ``y`` alone)."""
    if isinstance(object, Tracer):
        if dtype is not None:
            out = E.astype(object, dtype)
        else:
            out = _update.copy(object) if copy else object
    elif isinstance(object, (list, tuple)) and _has_tracer(object):
        out = _assemble(object, dtype)
    else:
        kw = {} if like is None else {"like": like}
        return _np.array(
            object, dtype=dtype, copy=copy, order=order, subok=subok, ndmin=ndmin, **kw
        )
    nd = _np.ndim(primal_value(out))
    if ndmin > nd:
        out = S.reshape(out, (1,) * (ndmin - nd) + _np.shape(primal_value(out)))
    return out


def asarray(a, dtype=None, order=None, *, copy=None, like=None, **kw):
    """``numpy.asarray`` that keeps traced values traced (see ``array`` for nested lists)."""
    if isinstance(a, Tracer) or (isinstance(a, (list, tuple)) and _has_tracer(a)):
        return array(a, dtype=dtype, copy=bool(copy))
    extra = {} if like is None else {"like": like}
    return _np.asarray(a, dtype=dtype, order=order, copy=copy, **extra, **kw)


def asanyarray(a, dtype=None, order=None, *, copy=None, like=None):
    """``asarray`` (traced arrays have no subclasses)."""
    return asarray(a, dtype=dtype, order=order, copy=copy, like=like)


def ascontiguousarray(a, dtype=None, *, like=None):
    """``asarray`` (memory layout does not matter to derivatives)."""
    return asarray(a, dtype=dtype, like=like)


def empty_like(prototype, dtype=None, order="K", subok=True, shape=None, **kw):
    """An uninitialised array shaped like ``prototype`` (a constant)."""
    return _np.empty_like(
        primal_value(prototype), dtype=dtype, order=order, subok=subok, shape=shape, **kw
    )


def vander(x, N=None, increasing=False):
    """Vandermonde matrix of the 1-D ``x``: columns x^(N−1) … x^0 (or increasing powers).  The
    powers are a cumulative product, so the derivative is exact at x = 0 too."""
    x = asarray(x)
    shape = _np.shape(primal_value(x))
    if len(shape) != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    n = shape[0]
    N = n if N is None else int(N)
    dt = _np.promote_types(_np.result_type(primal_value(x)), int)
    if not isinstance(x, Tracer) or N <= 1:
        return _np.vander(primal_value(x), N, increasing)
    if _np.result_type(primal_value(x)) != dt:
        x = E.astype(x, dt)
    cols = S.broadcast_to(S.reshape(x, (n, 1)), (n, N - 1))
    powers = R.cumprod(S.concatenate([_np.ones((n, 1), dt), cols], axis=1), axis=1)
    return powers if increasing else S.flip(powers, 1)


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """Coordinate arrays from 1-D coordinate vectors (Cartesian 'xy' or matrix 'ij'
    indexing): reshapes and broadcasts, so each derivative sums over the repeated copies."""
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    nd = len(xi)
    ones = (1,) * nd
    out = [S.reshape(asarray(x), ones[:i] + (-1,) + ones[i + 1 :]) for i, x in enumerate(xi)]
    if indexing == "xy" and nd > 1:
        out[0] = S.reshape(out[0], (1, -1) + ones[2:])
        out[1] = S.reshape(out[1], (-1, 1) + ones[2:])
    if not sparse:
        out = S.broadcast_arrays(*out)
    return tuple(out)


def no_array_conversion(self, dtype=None, copy=None):
    """``numpy.asarray(tracer)`` / ``numpy.array([tracer, ...])``: NumPy converts without asking
    the tracer's namespace, so refuse with a pointer to the functions that can."""
    raise TypeError(
        "cannot convert a traced value to a plain NumPy array (numpy.array / numpy.asarray "
        "cannot be intercepted, and its derivative would be lost silently). To build an array "
        "from traced values, use wengert.numpy.array(...), asarray or stack, e.g. "
        "wnp.array([[x[0], 1.0], [x[1], x[2]]]) with `import wengert.numpy as wnp`; use "
        "wengert.stop_gradient(x) if you only need the number."
    )
