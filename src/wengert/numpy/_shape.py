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
    arrays = list(arrays)
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


def stack(arrays, axis=0):
    """Join arrays along a new axis."""
    arrays = list(arrays)
    nd = _np.ndim(primal_value(arrays[0])) + 1
    axis = operator.index(axis)
    if not -nd <= axis < nd:
        raise _np.exceptions.AxisError(axis, nd)
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis)


def hstack(arrays):
    """Stack horizontally (along axis 1, or 0 for 1-D arrays)."""
    arrays = list(arrays)
    return concatenate(arrays, axis=0 if _np.ndim(primal_value(arrays[0])) == 1 else 1)


def vstack(arrays):
    """Stack vertically (along axis 0 of at-least-2-D arrays)."""
    return concatenate(
        [a if _np.ndim(primal_value(a)) >= 2 else reshape(a, (1, -1)) for a in arrays], axis=0
    )


def split(ary, indices_or_sections, axis=0):
    """Split into pieces along ``axis`` (equal sections, or at the given indices)."""
    shape = _np.shape(primal_value(ary))
    n = shape[axis]
    if isinstance(indices_or_sections, (int, _np.integer)):
        if n % indices_or_sections:
            raise ValueError("array split does not result in an equal division")
        step = n // indices_or_sections
        bounds = list(range(0, n + 1, step)) if step else [0] * (indices_or_sections + 1)
    else:
        bounds = (
            [0]
            + [_np.clip(i, 0, n) if i >= 0 else _np.clip(n + i, 0, n) for i in indices_or_sections]
            + [n]
        )
    lead = (slice(None),) * (axis % len(shape))
    return [
        I.getitem(ary, lead + (slice(int(a), int(max(a, b))),))
        for a, b in zip(bounds[:-1], bounds[1:])
    ]


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
