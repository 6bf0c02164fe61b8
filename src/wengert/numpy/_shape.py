"""Shape primitives: reshape, transpose, broadcast_to, concatenate, pad, and what builds on them.

All of these are linear, so each JVP applies the same operation to the tangent (after leading
batch axes, if the tangent has any: ``nb = t.ndim - x.ndim``), and each VJP applies the
inverse rearrangement to the cotangent.
"""

from __future__ import annotations

import operator

import numpy as _np

from wengert.core import Primitive, Tracer, primal_value

from . import _elementwise as E
from . import _indexing as I

# ---------------------------------------------------------------------------------------------
# reshape (also expand_dims, squeeze, ravel)
# ---------------------------------------------------------------------------------------------


def _reshape_impl(x, shape):
    return _np.reshape(x, shape)


reshape_p = Primitive("reshape", _reshape_impl, fmt="reshape {0}")
reshape_p.defjvp(lambda t, ans, x, shape: reshape_p(t, shape=t.shape[: t.ndim - x.ndim] + shape))
reshape_p.defvjp(lambda g, ans, x, shape: reshape_p(g, shape=x.shape))


def _resolve_shape(old: tuple, new) -> tuple:
    if isinstance(new, (int, _np.integer)):
        new = (new,)
    new = tuple(operator.index(d) for d in new)
    size = 1
    for d in old:
        size *= d
    if new.count(-1) > 1:
        raise ValueError("reshape: can only specify one unknown dimension (-1)")
    known = 1
    for d in new:
        if d != -1:
            known *= d
    if -1 in new:
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of shape {old} into shape {new}")
        new = tuple(size // known if d == -1 else d for d in new)
    elif known != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {new}")
    return new


def reshape(a, shape=None, order="C", **kw):
    """Give ``a`` a new shape with the same elements (C order)."""
    if shape is None:
        shape = kw.pop("newshape")
    if order != "C":
        raise NotImplementedError("reshape: only order='C' is supported on traced arrays")
    old = _np.shape(primal_value(a))
    new = _resolve_shape(old, shape)
    if new == old:
        return a
    return reshape_p(a, shape=new)


def expand_dims(a, axis):
    """Insert length-one axes at the positions ``axis`` (of the result)."""
    shape = _np.shape(primal_value(a))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = len(shape) + len(axes)
    axes = sorted(operator.index(ax) % nd if -nd <= ax < nd else _axis_error(ax, nd) for ax in axes)
    out = list(shape)
    for ax in axes:
        out.insert(ax, 1)
    return reshape_p(a, shape=tuple(out))


def _axis_error(ax, nd):
    raise _np.exceptions.AxisError(ax, nd)


def squeeze(a, axis=None):
    """Remove length-one axes (all of them, or those in ``axis``)."""
    shape = _np.shape(primal_value(a))
    if axis is None:
        axes = {i for i, d in enumerate(shape) if d == 1}
    else:
        axes = {
            operator.index(ax) % len(shape)
            for ax in (axis if isinstance(axis, (tuple, list)) else (axis,))
        }
        for ax in axes:
            if shape[ax] != 1:
                raise ValueError(
                    "cannot select an axis to squeeze out which has size not equal to one"
                )
    new = tuple(d for i, d in enumerate(shape) if i not in axes)
    return a if new == shape else reshape_p(a, shape=new)


def ravel(a, order="C"):
    """The elements of ``a`` as a 1-D array."""
    return reshape(a, (-1,), order=order)


# ---------------------------------------------------------------------------------------------
# transpose (also moveaxis, swapaxes)
# ---------------------------------------------------------------------------------------------


def _transpose_impl(x, axes):
    return _np.transpose(x, axes)


def _batched_axes(axes, nb):
    return tuple(range(nb)) + tuple(a + nb for a in axes)


transpose_p = Primitive("transpose", _transpose_impl, fmt="{0}ᵀ")
transpose_p.defjvp(
    lambda t, ans, x, axes: transpose_p(t, axes=_batched_axes(axes, t.ndim - len(axes)))
)
transpose_p.defvjp(lambda g, ans, x, axes: transpose_p(g, axes=tuple(_np.argsort(axes))))


def transpose(a, axes=None):
    """Permute the axes of ``a`` (reverse them when ``axes`` is None)."""
    nd = _np.ndim(primal_value(a))
    if axes is None:
        axes = tuple(range(nd - 1, -1, -1))
    else:
        axes = tuple(operator.index(ax) % nd if nd else ax for ax in axes)
        if sorted(axes) != list(range(nd)):
            raise ValueError(f"axes {axes} don't match array of {nd} dimensions")
    if axes == tuple(range(nd)):
        return a
    return transpose_p(a, axes=axes)


def moveaxis(a, source, destination):
    """Move axes of ``a`` from ``source`` to ``destination`` positions."""
    nd = _np.ndim(primal_value(a))
    src = [s % nd for s in (source if isinstance(source, (tuple, list)) else (source,))]
    dst = [
        d % nd for d in (destination if isinstance(destination, (tuple, list)) else (destination,))
    ]
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must have the same number of elements")
    order = [n for n in range(nd) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def swapaxes(a, axis1, axis2):
    """Exchange two axes of ``a``."""
    nd = _np.ndim(primal_value(a))
    order = list(range(nd))
    i, j = axis1 % nd, axis2 % nd
    order[i], order[j] = order[j], order[i]
    return transpose(a, order)


# ---------------------------------------------------------------------------------------------
# broadcast_to
# ---------------------------------------------------------------------------------------------


def _broadcast_impl(x, shape):
    return _np.broadcast_to(x, shape)


def _broadcast_jvp(t, ans, x, shape):
    nb = t.ndim - _np.ndim(primal_value(x))
    missing = len(shape) - (t.ndim - nb)
    if missing:
        t = reshape_p(t, shape=t.shape[:nb] + (1,) * missing + t.shape[nb:])
    return broadcast_p(t, shape=t.shape[:nb] + shape)


broadcast_p = Primitive("broadcast_to", _broadcast_impl, fmt="broadcast {0}")
broadcast_p.defjvp(_broadcast_jvp)
broadcast_p.defvjp(lambda g, ans, x, shape: E.unbroadcast(g, x))


def broadcast_to(a, shape):
    """``a`` repeated along new or length-one axes to ``shape`` (a read-only view)."""
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if _np.shape(primal_value(a)) == shape:
        return a
    return broadcast_p(a, shape=shape)


def broadcast_arrays(*args):
    """Broadcast all ``args`` against each other."""
    shape = _np.broadcast_shapes(*[_np.shape(primal_value(a)) for a in args])
    return [broadcast_to(a, shape) for a in args]


# ---------------------------------------------------------------------------------------------
# concatenate (also stack, split, hstack, vstack)
# ---------------------------------------------------------------------------------------------


def _concat_impl(*xs, axis):
    return _np.concatenate(xs, axis=axis)


def _concat_jvp(tangents, ans, *xs, axis):
    k = next(i for i, t in enumerate(tangents) if t is not None)
    nb = tangents[k].ndim - _np.ndim(primal_value(xs[k]))
    batch = tangents[k].shape[:nb]
    parts = [
        _np.zeros(batch + _np.shape(primal_value(x)), _np.result_type(primal_value(ans)))
        if t is None
        else t
        for t, x in zip(tangents, xs)
    ]
    return concat_p(*parts, axis=axis)


def _concat_vjp(g, ans, needed, *xs, axis):
    out = [None] * len(xs)
    start = 0
    nd = g.ndim
    for i, x in enumerate(xs):
        n = _np.shape(primal_value(x))[axis]
        if i in needed:
            idx = (slice(None),) * (nd + axis) + (slice(start, start + n),)
            out[i] = I.getitem(g, idx)
        start += n
    return out


concat_p = Primitive("concatenate", _concat_impl, fmt="concat")
concat_p.jvp_all = _concat_jvp
concat_p.vjp_all = _concat_vjp


def concatenate(arrays, axis=0, **kw):
    """Join arrays along an existing axis."""
    if kw.get("out") is not None:
        raise TypeError("concatenate: 'out=' cannot be differentiated")
    unknown = set(kw) - {"out", "dtype", "casting"}
    if unknown:
        raise TypeError(f"concatenate() got unexpected keyword arguments {sorted(unknown)}")
    arrays = _arrays(arrays)
    if kw.get("dtype") is not None:
        arrays = [E.astype(a, kw["dtype"]) for a in arrays]
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    nd = _np.ndim(primal_value(arrays[0]))
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    if not -nd <= axis < nd:
        raise _np.exceptions.AxisError(axis, nd)
    return concat_p(*arrays, axis=axis - nd if axis >= 0 else axis)


def _arrays(arrays) -> list:
    """The sequence ``arrays`` as a list, nested lists holding tracers assembled into arrays."""
    from ._construction import asarray

    return [asarray(a) if isinstance(a, (list, tuple)) else a for a in arrays]


def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """Join arrays of one shape along a new axis."""
    if out is not None:
        raise TypeError("stack: 'out=' cannot be differentiated")
    arrays = _arrays(arrays)
    if not arrays:
        raise ValueError("need at least one array to stack")
    shapes = {_np.shape(primal_value(a)) for a in arrays}
    if len(shapes) != 1:
        raise ValueError("all input arrays must have the same shape")
    nd = _np.ndim(primal_value(arrays[0])) + 1
    axis = operator.index(axis)
    if not -nd <= axis < nd:
        raise _np.exceptions.AxisError(axis, nd)
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis, dtype=dtype)


def hstack(tup, *, dtype=None, casting="same_kind"):
    """Stack horizontally: along axis 1, or 0 for 1-D arrays (0-D ones count as 1-D)."""
    arrays = [atleast_1d(a) for a in _arrays(tup)]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    axis = 0 if _np.ndim(primal_value(arrays[0])) == 1 else 1
    return concatenate(arrays, axis=axis, dtype=dtype)


def vstack(tup, *, dtype=None, casting="same_kind"):
    """Stack vertically: along axis 0 of the arrays made at least 2-D."""
    return concatenate([atleast_2d(a) for a in _arrays(tup)], axis=0, dtype=dtype)


row_stack = vstack


def dstack(tup):
    """Stack along the third axis of the arrays made at least 3-D."""
    return concatenate([atleast_3d(a) for a in _arrays(tup)], axis=2)


def column_stack(tup):
    """Stack 1-D arrays as columns (2-D arrays as they are) into a 2-D array."""
    cols = []
    for a in _arrays(tup):
        nd = _np.ndim(primal_value(a))
        cols.append(reshape(a, (-1, 1)) if nd < 2 else a)
    return concatenate(cols, axis=1)


def _at_least(a, n: int):
    """``a`` with NumPy's atleast_nd shapes: 0-D -> ones; 1-D (k,) -> (1, k) or (1, k, 1);
    2-D (m, k) -> (m, k, 1) for n = 3."""
    from ._construction import asarray

    a = asarray(a)
    shape = _np.shape(primal_value(a))
    if len(shape) >= n:
        return a
    if len(shape) == 0:
        new = (1,) * n
    elif len(shape) == 1:
        new = (1,) + shape + (1,) * (n - 2)
    else:
        new = shape + (1,)
    return reshape(a, new)


def _each(n, arys):
    res = [_at_least(a, n) for a in arys]
    return res[0] if len(res) == 1 else tuple(res)


def atleast_1d(*arys):
    """Each argument with at least one axis (a tuple of them if several)."""
    return _each(1, arys)


def atleast_2d(*arys):
    """Each argument with at least two axes (a 1-D array becomes a row)."""
    return _each(2, arys)


def atleast_3d(*arys):
    """Each argument with at least three axes ((k,) -> (1, k, 1), (m, k) -> (m, k, 1))."""
    return _each(3, arys)


def array_split(ary, indices_or_sections, axis=0):
    """Split into pieces along ``axis``: ``n`` sections as equal as can be (the first ones
    one longer), or at the given indices (Python slice rules)."""
    shape = _np.shape(primal_value(ary))
    ax = _axis(axis, len(shape))
    total = shape[ax]
    try:
        points = [0] + list(indices_or_sections) + [total]
    except TypeError:
        sections = operator.index(indices_or_sections)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0.") from None
        each, extras = divmod(total, sections)
        sizes = [0] + extras * [each + 1] + (sections - extras) * [each]
        points = _np.cumsum(sizes).tolist()
    lead = (slice(None),) * ax
    return [
        I.getitem(ary, lead + (slice(int(a), int(b)),)) for a, b in zip(points[:-1], points[1:])
    ]


def split(ary, indices_or_sections, axis=0):
    """Split into equal sections along ``axis``, or at the given indices."""
    if not hasattr(indices_or_sections, "__len__"):
        n = _np.shape(primal_value(ary))[_axis(axis, _np.ndim(primal_value(ary)))]
        if n % operator.index(indices_or_sections):
            raise ValueError("array split does not result in an equal division")
    return array_split(ary, indices_or_sections, axis)


def hsplit(ary, indices_or_sections):
    """``split`` along axis 1 (axis 0 for 1-D arrays)."""
    nd = _np.ndim(primal_value(ary))
    if nd == 0:
        raise ValueError("hsplit only works on arrays of 1 or more dimensions")
    return split(ary, indices_or_sections, 1 if nd > 1 else 0)


def vsplit(ary, indices_or_sections):
    """``split`` along axis 0 of an array of at least 2 dimensions."""
    if _np.ndim(primal_value(ary)) < 2:
        raise ValueError("vsplit only works on arrays of 2 or more dimensions")
    return split(ary, indices_or_sections, 0)


def dsplit(ary, indices_or_sections):
    """``split`` along axis 2 of an array of at least 3 dimensions."""
    if _np.ndim(primal_value(ary)) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return split(ary, indices_or_sections, 2)


def _axis(axis, nd: int) -> int:
    """``axis`` as a non-negative integer below ``nd``."""
    axis = operator.index(axis)
    if not -nd <= axis < nd:
        raise _np.exceptions.AxisError(axis, nd)
    return axis % nd


# ---------------------------------------------------------------------------------------------
# pad
# ---------------------------------------------------------------------------------------------


def _pad_impl(x, pad_width, value):
    return _np.pad(x, pad_width, mode="constant", constant_values=value)


def _pad_jvp(t, ans, x, pad_width, value):
    nb = t.ndim - len(pad_width)
    return pad_p(t, pad_width=((0, 0),) * nb + pad_width, value=0)


def _pad_vjp(g, ans, x, pad_width, value):
    return I.getitem(g, tuple(slice(lo, g.shape[k] - hi) for k, (lo, hi) in enumerate(pad_width)))


pad_p = Primitive("pad", _pad_impl, fmt="pad {0}").defjvp(_pad_jvp).defvjp(_pad_vjp)

_GATHER_MODES = ("edge", "reflect", "symmetric", "wrap")


def pad(array, pad_width, mode="constant", **kwargs):
    """Pad ``array``.  ``constant`` pads with a constant value; ``edge``, ``reflect``,
    ``symmetric`` and ``wrap`` copy elements of ``array``, so they are gathers (indexing)."""
    shape = _np.shape(primal_value(array))
    widths = tuple(
        (int(lo), int(hi))
        for lo, hi in _np.broadcast_to(_np.asarray(pad_width, int), (len(shape), 2))
    )
    if mode == "constant":
        value = kwargs.pop("constant_values", 0)
        if kwargs:
            raise TypeError(f"pad: unexpected arguments {sorted(kwargs)}")
        if _np.ndim(primal_value(value)) != 0:
            raise NotImplementedError("pad: traced arrays take a scalar constant_values")
        if not isinstance(value, Tracer):
            return pad_p(array, pad_width=widths, value=value)
        border = _np.pad(_np.zeros(shape, bool), widths, constant_values=True)
        return pad_p(array, pad_width=widths, value=0) + value * E._mask(border, array)
    if mode in _GATHER_MODES:
        where_from = _np.pad(
            _np.arange(_np.prod(shape, dtype=int)).reshape(shape), widths, mode=mode, **kwargs
        )
        return I.getitem(ravel(array), where_from)
    raise NotImplementedError(
        f"pad: mode {mode!r} is not differentiable in wengert yet; use one of "
        f"'constant', {', '.join(map(repr, _GATHER_MODES))}"
    )


# What each VJP reads: only shapes, so the tape keeps no values (see Primitive.saving).
for _p in (reshape_p, transpose_p, broadcast_p, concat_p, pad_p):
    _p.saving(())


# ---------------------------------------------------------------------------------------------
# Rearrangements built from the primitives above and from slicing (composites: their
# derivatives are the same rearrangement of the tangent, and its transpose for the cotangent)
# ---------------------------------------------------------------------------------------------


def _nd(a) -> int:
    return _np.ndim(primal_value(a))


def rollaxis(a, axis, start=0):
    """Move ``axis`` to sit before position ``start`` (NumPy's older form of moveaxis)."""
    n = _nd(a)
    axis = _axis(axis, n)
    start = operator.index(start)
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise _np.exceptions.AxisError(
            f"'start' arg requires {-n} <= start < {n + 1}, but {start} was passed in"
        )
    if axis < start:
        start -= 1
    if axis == start:
        return a
    order = [k for k in range(n) if k != axis]
    order.insert(start, axis)
    return transpose(a, order)


def flip(m, axis=None):
    """Reverse the order of elements along ``axis`` (all axes if None): a strided slice."""
    n = _nd(m)
    axes = range(n) if axis is None else axis if isinstance(axis, (tuple, list)) else (axis,)
    idx = [slice(None)] * n
    for ax in axes:
        idx[_axis(ax, n)] = slice(None, None, -1)
    return I.getitem(m, tuple(idx)) if n else m


def fliplr(m):
    """Reverse the columns (axis 1)."""
    if _nd(m) < 2:
        raise ValueError("Input must be >= 2-d.")
    return flip(m, 1)


def flipud(m):
    """Reverse the rows (axis 0)."""
    if _nd(m) < 1:
        raise ValueError("Input must be >= 1-d.")
    return flip(m, 0)


def rot90(m, k=1, axes=(0, 1)):
    """Rotate by 90° ``k`` times in the plane ``axes``, from the first axis toward the second
    (flips and a transpose)."""
    axes = tuple(axes)
    n = _nd(m)
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    if axes[0] == axes[1] or abs(axes[0] - axes[1]) == n:
        raise ValueError("Axes must be different.")
    if not (-n <= axes[0] < n and -n <= axes[1] < n):
        raise ValueError(f"Axes={axes} out of range for array of ndim={n}.")
    k = operator.index(k) % 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, axes[0]), axes[1])
    order = list(range(n))
    i, j = axes[0] % n, axes[1] % n
    order[i], order[j] = order[j], order[i]
    if k == 1:
        return transpose(flip(m, axes[1]), order)
    return flip(transpose(m, order), axes[1])


def roll(a, shift, axis=None):
    """Shift elements cyclically by ``shift`` along ``axis`` (the flattened array if None):
    two slices joined in the other order."""
    if axis is None:
        shape = _np.shape(primal_value(a))
        return reshape(roll(ravel(a), shift, 0), shape)
    n = _nd(a)
    b = _np.broadcast(_np.asarray(primal_value(shift)), _np.asarray(axis))
    if b.ndim > 1:
        raise ValueError("'shift' and 'axis' should be scalars or 1D sequences")
    total: dict = {}
    for s, ax in b:
        ax = _axis(int(ax), n)
        total[ax] = total.get(ax, 0) + int(s)
    for ax, s in total.items():
        size = _np.shape(primal_value(a))[ax]
        s = s % size if size else 0
        if s:
            lead = (slice(None),) * ax
            a = concatenate(
                [
                    I.getitem(a, lead + (slice(size - s, None),)),
                    I.getitem(a, lead + (slice(0, size - s),)),
                ],
                axis=ax,
            )
    return a


def tile(A, reps):
    """Repeat the whole of ``A`` ``reps`` times along each axis: a broadcast between
    interleaved axes (its VJP sums the copies)."""
    from ._construction import asarray

    A = asarray(A)
    reps = tuple(operator.index(r) for r in (reps if hasattr(reps, "__len__") else (reps,)))
    shape = _np.shape(primal_value(A))
    if len(shape) < len(reps):
        shape = (1,) * (len(reps) - len(shape)) + shape
        A = reshape(A, shape)
    reps = (1,) * (len(shape) - len(reps)) + reps
    if all(r == 1 for r in reps):
        return A
    A = reshape(A, tuple(x for s in shape for x in (1, s)))
    A = broadcast_to(A, tuple(x for r, s in zip(reps, shape) for x in (r, s)))
    return reshape(A, tuple(r * s for r, s in zip(reps, shape)))


def repeat(a, repeats, axis=None):
    """Repeat each element ``repeats`` times along ``axis`` (of the flattened array if None):
    a broadcast for a single count, a gather for one count per element."""
    from ._construction import asarray

    a = asarray(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    shape = _np.shape(primal_value(a))
    ax = _axis(axis, len(shape))
    r = _np.asarray(primal_value(repeats))
    if r.dtype.kind not in "iub":
        raise TypeError(f"repeat: repeats must be integers, not {r.dtype}")
    if r.size == 1 and r.ndim <= 1:
        r = int(r.reshape(()))
        if r < 0:
            raise ValueError("repeat: negative repeats are not allowed")
        a = broadcast_to(expand_dims(a, ax + 1), shape[: ax + 1] + (r,) + shape[ax + 1 :])
        return reshape(a, shape[:ax] + (shape[ax] * r,) + shape[ax + 1 :])
    idx = _np.repeat(_np.arange(shape[ax]), r)
    return I.getitem(a, (slice(None),) * ax + (idx,))


# ---------------------------------------------------------------------------------------------
# Triangles and diagonals
# ---------------------------------------------------------------------------------------------


def tril(m, k=0):
    """The lower triangle (on and below diagonal ``k``) of the last two axes; zeros elsewhere
    (a ``where`` with a constant mask, so masked entries get an exact zero derivative)."""
    shape = _np.shape(primal_value(m))
    mask = _np.tri(*shape[-2:], k=k, dtype=bool)
    return E.where_p(mask, m, 0)


def triu(m, k=0):
    """The upper triangle (on and above diagonal ``k``) of the last two axes; zeros elsewhere."""
    shape = _np.shape(primal_value(m))
    mask = _np.tri(*shape[-2:], k=k - 1, dtype=bool)
    return E.where_p(mask, 0, m)


def diagonal(a, offset=0, axis1=0, axis2=1):
    """The diagonal ``offset`` of the (``axis1``, ``axis2``) planes, as the last axis.  A strided
    slice of the flattened plane, so both derivatives are plain (basic) indexing."""
    shape = _np.shape(primal_value(a))
    n = len(shape)
    if n < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    i, j = _axis(axis1, n), _axis(axis2, n)
    if i == j:
        raise ValueError("axis1 and axis2 cannot be the same")
    rows, cols = shape[i], shape[j]
    k = operator.index(offset)
    a = moveaxis(a, [i, j], [n - 2, n - 1])
    lead = _np.shape(primal_value(a))[:-2]
    flat = reshape(a, lead + (rows * cols,))
    length = max(0, min(rows, cols - k) if k >= 0 else min(rows + k, cols))
    start = k if k >= 0 else -k * cols
    stop = start + (length - 1) * (cols + 1) + 1 if length else start
    return I.getitem(flat, (slice(None),) * len(lead) + (slice(start, stop, cols + 1),))


def diag(v, k=0):
    """A 1-D ``v`` laid on diagonal ``k`` of a square matrix, or diagonal ``k`` of a 2-D ``v``.
    The matrix is built by padding and reshaping (no scatter), so both modes stay cheap."""
    from ._construction import asarray

    v = asarray(v)
    nd = _nd(v)
    k = operator.index(k)
    if nd == 2:
        return diagonal(v, k)
    if nd != 1:
        raise ValueError("Input must be 1- or 2-d.")
    n = _np.shape(primal_value(v))[0]
    if n == 0 or not isinstance(v, Tracer):
        return _np.diag(primal_value(v), k)
    # row i of the (n, n+1) padded column is v_i then n zeros: read flat, the v_i sit n+1 apart
    rows = pad_p(reshape(v, (n, 1)), pad_width=((0, 0), (0, n)), value=0)
    d = reshape(I.getitem(reshape(rows, (n * (n + 1),)), slice(0, n * n)), (n, n))
    if k > 0:
        d = pad_p(d, pad_width=((0, k), (k, 0)), value=0)
    elif k < 0:
        d = pad_p(d, pad_width=((-k, 0), (0, -k)), value=0)
    return d


def diagflat(v, k=0):
    """The flattened ``v`` laid on diagonal ``k`` of a square matrix."""
    return diag(ravel(v), k)


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """Σ of the diagonal ``offset`` of the (``axis1``, ``axis2``) planes."""
    from . import _reductions as R

    if out is not None:
        raise TypeError("trace: 'out=' writes in place and cannot be differentiated")
    return R.sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)
