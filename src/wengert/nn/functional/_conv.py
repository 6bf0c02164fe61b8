"""Convolution in 1, 2 and 3 dimensions, and transposed convolution, as three primitives.

The trilinear form T(x, w, g) = ⟨g, conv(x, w)⟩ has three partial maps, each a primitive:
``conv`` (x, w ↦ y), ``conv_input_grad`` (g, w ↦ x̄, the transposed convolution) and
``conv_weight_grad`` (x, g ↦ w̄, a correlation of input and output gradient).  Every VJP of one
is another of the three, so derivatives of any order stay convolutions.  Each runs as one
batched matrix product over an im2col view (``as_strided``, no Python loop over pixels); the
transposed one adds its columns back with one strided add per kernel offset.  The columns
take one of three layouts, chosen by shape: plain im2col, a "flat grid" for stride 1 (long
contiguous runs), or channels-last for many channels on small grids.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass

import numpy as _np
from numpy.lib.stride_tricks import as_strided

import wengert.numpy as wnp
from wengert.core import Primitive, primal_value
from wengert.nn.functional._norm import add_channel_bias
from wengert.nn.functional._types import Array, Size

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_general",
    "Geometry",
]


@dataclass(frozen=True)
class Geometry:
    """Where a convolution's windows sit: per spatial axis the stride, the zero padding before
    (``lo``) and after (``hi``), the dilation of the kernel, and the number of channel groups."""

    stride: tuple
    lo: tuple
    hi: tuple
    dilation: tuple
    groups: int = 1

    def out_shape(self, spatial: tuple, kernel: tuple) -> tuple:
        return tuple(
            (n + a + b - d * (k - 1) - 1) // s + 1
            for n, a, b, d, k, s in zip(
                spatial, self.lo, self.hi, self.dilation, kernel, self.stride
            )
        )


def _prod(t) -> int:
    n = 1
    for v in t:
        n *= v
    return n


# ---------------------------------------------------------------------------------------------
# NumPy kernels
# ---------------------------------------------------------------------------------------------


# When the flat grid pays (measured on 8×8 and 4×4 digits-sized batches, 3×3 kernels): with at
# least this many column rows (channels per group × kernel size) -- below it the columns are
# too few for the long runs to matter -- and at most this many wasted extra columns per output.
_FLAT_MIN_ROWS = 16
_FLAT_MAX_WASTE = 1.0


def _layout(spatial: tuple, kernel: tuple, geom: Geometry, rows: int):
    """Where the columns live: ``(padded shape, grid, out, flat)``.

    ``out`` is the output's spatial shape.  With stride 1 in 2+ dimensions (and enough
    ``rows``, few enough wasted columns: see ``_FLAT_MIN_ROWS``), the columns are taken on
    a *flat grid*: the output rows keep the padded input's full width, so that each kernel
    offset sees one contiguous run of every padded plane, and im2col / col2im move long runs
    instead of rows of a few elements.  The extra columns hold garbage (forward) or zeros
    (backward) and are cut off; a few extra zero rows at the end keep every run inside its
    plane.  ``grid`` is the spatial shape of the columns (``out`` when not flat).
    """
    out = geom.out_shape(spatial, kernel)
    padded = tuple(n + a + b for n, a, b in zip(spatial, geom.lo, geom.hi))
    flat = len(out) > 1 and all(s == 1 for s in geom.stride)
    wasteful = _prod(padded[1:]) > (1 + _FLAT_MAX_WASTE) * _prod(out[1:])
    if not flat or wasteful or rows < _FLAT_MIN_ROWS:
        return padded, out, out, False
    inner = _prod(padded[1:])
    reach = sum(
        (k - 1) * r * _prod(padded[i + 1 :]) for i, (k, r) in enumerate(zip(kernel, geom.dilation))
    )
    need = reach + out[0] * inner  # one past the last element any offset reads
    extra = max(0, -(-(need - _prod(padded)) // inner))
    padded = (padded[0] + extra,) + padded[1:]
    return padded, (out[0],) + padded[1:], out, True


def _pad_to(x, geom: Geometry, padded: tuple):
    """x (N, C, *S) zero-padded by ``geom.lo`` before and up to ``padded`` after."""
    if x.shape[2:] == padded:
        return x
    xp = _np.zeros(x.shape[:2] + padded, x.dtype)
    xp[(Ellipsis,) + tuple(slice(a, a + n) for a, n in zip(geom.lo, x.shape[2:]))] = x
    return xp


def _window_view(xp, kernel: tuple, geom: Geometry, grid: tuple, flat: bool):
    """A read-only view (G, Cg, *K, N, *grid) of the padded input's windows."""
    n, c = xp.shape[:2]
    d = len(kernel)
    g = geom.groups
    st = xp.strides
    if flat:  # one contiguous run per (channel, offset, sample)
        tail = (_prod(grid),)
        tail_st = (xp.itemsize,)
    else:
        tail = tuple(grid)
        tail_st = tuple(st[2 + i] * geom.stride[i] for i in range(d))
    shape = (g, c // g) + tuple(kernel) + (n,) + tail
    strides = (
        (st[1] * (c // g), st[1])
        + tuple(st[2 + i] * geom.dilation[i] for i in range(d))
        + (st[0],)
        + tail_st
    )
    return as_strided(xp, shape, strides, writeable=False)


def _im2col(x, kernel: tuple, geom: Geometry):
    """Columns (G, Cg·∏K, N·∏grid) of the padded input (channel and kernel offset down,
    sample and grid position across), the grid and the output spatial shape."""
    rows = x.shape[1] // geom.groups * _prod(kernel)
    padded, grid, out, flat = _layout(x.shape[2:], kernel, geom, rows)
    xp = _pad_to(x, geom, padded)
    n, c = x.shape[:2]
    g = geom.groups
    win = _window_view(xp, kernel, geom, grid, flat)
    return win.reshape(g, (c // g) * _prod(kernel), n * _prod(grid)), grid, out


def _channels_first(gy, g, grid):
    """(N, C_out, *O) → (G, C_out/G, N·∏grid), contiguous; zeros in the grid's extra columns."""
    n, co = gy.shape[:2]
    out = gy.shape[2:]
    if tuple(grid) == out:
        t = _np.ascontiguousarray(_np.moveaxis(gy, 1, 0))
    else:
        t = _np.zeros((co, n) + tuple(grid), gy.dtype)
        t[(Ellipsis,) + tuple(slice(0, o) for o in out)] = _np.moveaxis(gy, 1, 0)
    return t.reshape(g, co // g, -1)


# ---------------------------------------------------------------------------------------------
# The channels-last path: for many channels on a small grid (4×4, 8×8...) the planes' rows are
# too short for the layouts above; with the channel axis innermost every window row is one
# run of kernel width × channels, and the matrix products need no transposed operands.
# ---------------------------------------------------------------------------------------------

_NHWC_MIN_CHANNELS = 8  # at least this many input channels (one group) ...
_NHWC_MAX_POSITIONS = 100  # ... and at most this many output positions per sample


def _channels_last(c: int, out: tuple, geom: Geometry) -> bool:
    return geom.groups == 1 and c >= _NHWC_MIN_CHANNELS and _prod(out) <= _NHWC_MAX_POSITIONS


def _last_padded(x, geom: Geometry, padded: tuple):
    """x (N, C, *S) as (N, *padded, C), zero-padded by ``geom.lo`` before."""
    n, c = x.shape[:2]
    xp = _np.zeros((n,) + tuple(padded) + (c,), x.dtype)
    inner = tuple(slice(a, a + m) for a, m in zip(geom.lo, x.shape[2:]))
    xp[(slice(None),) + inner] = _np.moveaxis(x, 1, -1)
    return xp


def _nhwc_cols(x, kernel: tuple, geom: Geometry, out: tuple):
    """Columns (N·∏O, ∏K·C): sample and output position down, kernel offset and channel across."""
    d = len(kernel)
    padded = tuple(n + a + b for n, a, b in zip(x.shape[2:], geom.lo, geom.hi))
    xp = _last_padded(x, geom, padded)
    st = xp.strides
    shape = (x.shape[0],) + tuple(out) + tuple(kernel) + (x.shape[1],)
    strides = (
        (st[0],)
        + tuple(st[1 + i] * geom.stride[i] for i in range(d))
        + tuple(st[1 + i] * geom.dilation[i] for i in range(d))
        + (st[-1],)
    )
    win = as_strided(xp, shape, strides, writeable=False)
    return win.reshape(x.shape[0] * _prod(out), -1)


def _nhwc_weight(w):
    """(C_out, C_in, *K) → (C_out, ∏K·C_in), kernel offset major."""
    return _np.moveaxis(w, 1, -1).reshape(w.shape[0], -1)


def _nhwc_grad(gy):
    """(N, C_out, *O) → (N·∏O, C_out), contiguous."""
    return _np.ascontiguousarray(_np.moveaxis(gy, 1, -1)).reshape(-1, gy.shape[1])


def _nhwc_conv(x, w, geom, out):
    y = _nhwc_cols(x, w.shape[2:], geom, out) @ _nhwc_weight(w).T  # (N·∏O, C_out)
    y = y.reshape((x.shape[0],) + tuple(out) + (w.shape[0],))
    return _np.ascontiguousarray(_np.moveaxis(y, -1, 1))


def _nhwc_weight_grad(x, gy, geom, kernel):
    wg = _nhwc_grad(gy).T @ _nhwc_cols(x, kernel, geom, gy.shape[2:])  # (C_out, ∏K·C_in)
    wg = wg.reshape((gy.shape[1],) + tuple(kernel) + (x.shape[1],))
    return _np.ascontiguousarray(_np.moveaxis(wg, -1, 1))


def _nhwc_input_grad(gy, w, geom, spatial):
    n = gy.shape[0]
    c = w.shape[1]
    kernel = tuple(w.shape[2:])
    d = len(kernel)
    out = gy.shape[2:]
    cols = _nhwc_grad(gy) @ _nhwc_weight(w)  # (N·∏O, ∏K·C_in)
    cols = cols.reshape((n,) + tuple(out) + kernel + (c,))
    padded = tuple(
        max(m + a + b, (o - 1) * st + dl * (k - 1) + 1)
        for m, a, b, o, st, dl, k in zip(
            spatial, geom.lo, geom.hi, out, geom.stride, geom.dilation, kernel
        )
    )
    xp = _np.zeros((n,) + padded + (c,), cols.dtype)
    lead = (slice(None),) * (1 + d)
    for kidx in itertools.product(*[range(k) for k in kernel]):
        sl = tuple(
            slice(ki * dl, ki * dl + st * (o - 1) + 1, st)
            for ki, dl, st, o in zip(kidx, geom.dilation, geom.stride, out)
        )
        xp[(slice(None),) + sl] += cols[lead + kidx]
    crop = tuple(slice(a, a + m) for a, m in zip(geom.lo, spatial))
    return _np.ascontiguousarray(_np.moveaxis(xp[(slice(None),) + crop], -1, 1))


def _conv_impl(x, w, geom):
    out = geom.out_shape(x.shape[2:], w.shape[2:])
    if _channels_last(x.shape[1], out, geom):
        return _nhwc_conv(x, w, geom, out)
    n = x.shape[0]
    co = w.shape[0]
    g = geom.groups
    cols, grid, out = _im2col(x, w.shape[2:], geom)
    y = _np.matmul(w.reshape(g, co // g, -1), cols)  # (G, Cog, N·∏grid)
    y = y.reshape((co, n) + grid)[(Ellipsis,) + tuple(slice(0, o) for o in out)]
    return _np.ascontiguousarray(_np.moveaxis(y, 0, 1))


def _conv_input_grad_impl(gy, w, geom, spatial):
    """Σ over output positions and output channels of g·w, added back into the input grid."""
    n, co = gy.shape[:2]
    g = geom.groups
    cg = w.shape[1]
    kernel = tuple(w.shape[2:])
    d = len(kernel)
    padded, grid, out, flat = _layout(spatial, kernel, geom, cg * _prod(kernel))
    if tuple(out) != gy.shape[2:]:
        raise ValueError(f"conv_input_grad: cotangent of shape {gy.shape} for outputs {out}")
    if _channels_last(cg * g, out, geom):
        return _nhwc_input_grad(gy, w, geom, spatial)
    wm = w.reshape(g, co // g, cg * _prod(kernel)).transpose(0, 2, 1)
    cols = _np.matmul(wm, _channels_first(gy, g, grid))  # (G, Cg·∏K, N·∏grid)
    cols = cols.reshape((g * cg,) + kernel + (n, _prod(grid)))
    if not flat:
        padded = tuple(
            max(p, (o - 1) * st + dl * (k - 1) + 1)
            for p, o, st, dl, k in zip(padded, out, geom.stride, geom.dilation, kernel)
        )
    xp = _np.zeros((n, g * cg) + padded, cols.dtype)
    pst = [_prod(padded[i + 1 :]) for i in range(d)]
    buf = xp.reshape(-1)
    isz = xp.itemsize
    for kidx in itertools.product(*[range(k) for k in kernel]):
        src = cols[(slice(None),) + kidx]  # (C, N, ∏grid)
        if flat:
            off = sum(ki * dl * ps for ki, dl, ps in zip(kidx, geom.dilation, pst))
            dst = as_strided(buf[off:], src.shape, (xp.strides[1], xp.strides[0], isz))
        else:
            sl = tuple(
                slice(ki * dl, ki * dl + st * (o - 1) + 1, st)
                for ki, dl, st, o in zip(kidx, geom.dilation, geom.stride, out)
            )
            dst = _np.moveaxis(xp[(Ellipsis,) + sl], 1, 0)
            src = src.reshape(dst.shape)
        dst += src
    crop = tuple(slice(a, a + s) for a, s in zip(geom.lo, spatial))
    return _np.ascontiguousarray(xp[(Ellipsis,) + crop])


def _conv_weight_grad_impl(x, gy, geom, kernel):
    """Σ over the batch and output positions of g ⊗ (input window)."""
    co = gy.shape[1]
    g = geom.groups
    if _channels_last(x.shape[1], gy.shape[2:], geom):
        return _nhwc_weight_grad(x, gy, geom, kernel)
    cols, grid, _ = _im2col(x, kernel, geom)
    gm = _channels_first(gy, g, grid)
    wg = _np.matmul(gm, cols.transpose(0, 2, 1))  # (G, Cog, Cg·∏K)
    return wg.reshape((co, x.shape[1] // g) + tuple(kernel))


# ---------------------------------------------------------------------------------------------
# Batched tangents (jacfwd): fold leading batch axes into N, or loop over the directions
# ---------------------------------------------------------------------------------------------


def _fold(f, t, nb):
    """Apply ``f`` (which maps each sample independently) to ``t`` with ``nb`` leading batch
    axes by folding them into the sample axis."""
    if nb == 0:
        return f(t)
    lead = t.shape[:nb]
    y = f(wnp.reshape(t, (-1,) + t.shape[nb + 1 :]))
    return wnp.reshape(y, lead + (t.shape[nb],) + y.shape[1:])


def _into_channels(t, nb, axis, groups):
    """Fold the ``nb`` leading batch axes of ``t`` into its channel ``axis`` (counted without
    the batch axes), inside each of ``groups`` channel groups: (B, ..., G·c, ...) →
    (..., G·B·c, ...) ordered (group, direction, channel)."""
    b = _prod(t.shape[:nb])
    core = t.shape[nb:]
    c = core[axis] // groups
    t = wnp.reshape(t, (b,) + core[:axis] + (groups, c) + core[axis + 1 :])
    t = wnp.moveaxis(t, 0, axis + 1)
    return wnp.reshape(t, core[:axis] + (groups * b * c,) + core[axis + 1 :])


def _out_of_channels(y, lead, axis, groups):
    """The inverse of ``_into_channels`` on a result: (..., G·B·c, ...) → (B, ..., G·c, ...)."""
    b = _prod(lead)
    s = y.shape
    c = s[axis] // (groups * b)
    y = wnp.reshape(y, s[:axis] + (groups, b, c) + s[axis + 1 :])
    y = wnp.moveaxis(y, axis + 1, 0)
    return wnp.reshape(y, tuple(lead) + s[:axis] + (groups * c,) + s[axis + 1 :])


def _merged(f, t, nb, axis_in, groups_in, axis_out, groups_out):
    """Push ``nb``-batched tangents through a convolution primitive ``f`` (linear in this
    argument) in one call, the directions riding along as extra channels."""
    if nb == 0:
        return f(t)
    y = f(_into_channels(t, nb, axis_in, groups_in))
    return _out_of_channels(y, t.shape[:nb], axis_out, groups_out)


def _nb(t, x):
    return t.ndim - _np.ndim(primal_value(x))


# ---------------------------------------------------------------------------------------------
# The three primitives and their rules
# ---------------------------------------------------------------------------------------------


def _shape(v):
    return _np.shape(primal_value(v))


conv_p = Primitive("conv", _conv_impl, fmt="conv({0}, {1})")
conv_input_grad_p = Primitive("conv_input_grad", _conv_input_grad_impl, fmt="convᵀ({0}, {1})")
conv_weight_grad_p = Primitive("conv_weight_grad", _conv_weight_grad_impl, fmt="conv_w({0}, {1})")

conv_p.defjvp(
    lambda t, ans, x, w, geom: _fold(lambda u: conv_p(u, w, geom=geom), t, _nb(t, x)),
    lambda t, ans, x, w, geom: _merged(
        lambda u: conv_p(x, u, geom=geom), t, _nb(t, w), 0, geom.groups, 1, geom.groups
    ),
)
conv_p.defvjp(
    lambda g, ans, x, w, geom: conv_input_grad_p(g, w, geom=geom, spatial=_shape(x)[2:]),
    lambda g, ans, x, w, geom: conv_weight_grad_p(x, g, geom=geom, kernel=_shape(w)[2:]),
)

conv_input_grad_p.defjvp(
    lambda t, ans, g, w, geom, spatial: _fold(
        lambda u: conv_input_grad_p(u, w, geom=geom, spatial=spatial), t, _nb(t, g)
    ),
    lambda t, ans, g, w, geom, spatial: _merged(
        lambda u: conv_input_grad_p(g, u, geom=geom, spatial=spatial),
        t,
        _nb(t, w),
        1,
        1,
        1,
        geom.groups,
    ),  # fmt: skip
)
conv_input_grad_p.defvjp(
    lambda c, ans, g, w, geom, spatial: conv_p(c, w, geom=geom),
    lambda c, ans, g, w, geom, spatial: conv_weight_grad_p(c, g, geom=geom, kernel=_shape(w)[2:]),
)

conv_weight_grad_p.defjvp(
    lambda t, ans, x, g, geom, kernel: _merged(
        lambda u: conv_weight_grad_p(u, g, geom=geom, kernel=kernel),
        t,
        _nb(t, x),
        1,
        geom.groups,
        1,
        1,
    ),  # fmt: skip
    lambda t, ans, x, g, geom, kernel: _merged(
        lambda u: conv_weight_grad_p(x, u, geom=geom, kernel=kernel),
        t,
        _nb(t, g),
        1,
        geom.groups,
        0,
        geom.groups,
    ),  # fmt: skip
)
conv_weight_grad_p.defvjp(
    lambda c, ans, x, g, geom, kernel: conv_input_grad_p(g, c, geom=geom, spatial=_shape(x)[2:]),
    lambda c, ans, x, g, geom, kernel: conv_p(x, c, geom=geom),
)

# Each cotangent rule reads only the other operand.
for _p in (conv_p, conv_input_grad_p, conv_weight_grad_p):
    _p.saving((1,), (0,))


# ---------------------------------------------------------------------------------------------
# Public wrappers
# ---------------------------------------------------------------------------------------------


def _ints(v, d: int, name: str) -> tuple:
    if isinstance(v, (int, _np.integer)):
        v = (v,) * d
    v = tuple(operator.index(a) for a in v)
    if len(v) != d:
        raise ValueError(f"{name} must be an int or a tuple of {d} ints, got {v!r}")
    return v


def resolve_padding(
    padding: Size | str, d, spatial, kernel, stride: Size, dilation: Size, who
) -> tuple[tuple, tuple]:
    """Padding as (lo, hi) per spatial axis.  Accepts an int, ``"valid"`` (none), ``"same"``
    (output size ⌈n / stride⌉, the extra element after, as TensorFlow), one int per axis, or a
    ``(lo, hi)`` pair per axis."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * d, (0,) * d
        if padding == "same":
            lo, hi = [], []
            for n, k, s, r in zip(spatial, kernel, stride, dilation):
                total = max((-(-n // s) - 1) * s + r * (k - 1) + 1 - n, 0)
                lo.append(total // 2)
                hi.append(total - total // 2)
            return tuple(lo), tuple(hi)
        raise ValueError(
            f"{who}: padding must be 'same', 'valid', ints or (lo, hi) pairs, not {padding!r}"
        )
    if isinstance(padding, (int, _np.integer)):
        padding = (padding,) * d
    padding = tuple(padding)
    if len(padding) != d:
        raise ValueError(
            f"{who}: padding needs {d} entries (one per spatial axis), got {padding!r}"
        )
    lo, hi = [], []
    for p in padding:
        if isinstance(p, (tuple, list)):
            a, b = (operator.index(v) for v in p)
        else:
            a = b = operator.index(p)
        if a < 0 or b < 0:
            raise ValueError(f"{who}: padding must be non-negative, got {padding!r}")
        lo.append(a)
        hi.append(b)
    return tuple(lo), tuple(hi)


def _check_float(x, who, what):
    dt = _np.result_type(primal_value(x))
    if dt.kind not in "fc":
        raise TypeError(f"{who}: {what} must be a float array, got dtype {dt}; cast it first")


def _add_bias(y, bias, d, who):
    if bias is None:
        return y
    co = _shape(y)[1]
    if _shape(bias) != (co,):
        raise ValueError(f"{who}: bias must have shape ({co},), got {_shape(bias)}")
    return add_channel_bias(y, bias, (co,) + (1,) * d)


def conv_general(
    x: Array,
    weight: Array,
    bias: Array | None = None,
    stride: Size = 1,
    padding: Size | str = 0,
    dilation: Size = 1,
    groups: int = 1,
    *,
    who="conv",
) -> Array:
    """N-dimensional convolution (cross-correlation, as in deep learning) of
    ``x`` (N, C_in, *S) with ``weight`` (C_out, C_in/groups, *K):

        y[n, o, p] = Σ_{c, k} x_pad[n, g(o)·C_in/groups + c, p·stride + k·dilation] · w[o, c, k]
                     + bias[o]
    """
    xs, ws = _shape(x), _shape(weight)
    d = len(ws) - 2
    if d < 1 or len(xs) != d + 2:
        raise ValueError(
            f"{who}: x must be (N, C, *spatial) and weight (C_out, C_in/groups, *kernel) with the "
            f"same number of spatial axes; got x {xs} and weight {ws}"
        )
    _check_float(x, who, "x")
    _check_float(weight, who, "weight")
    groups = operator.index(groups)
    if groups < 1 or xs[1] % groups or ws[0] % groups or ws[1] * groups != xs[1]:
        raise ValueError(
            f"{who}: with groups={groups}, x has {xs[1]} channels so weight must be "
            f"(C_out, {xs[1] // max(groups, 1)}, ...) with C_out divisible by groups; got {ws}"
        )
    stride = _ints(stride, d, "stride")
    dilation = _ints(dilation, d, "dilation")
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{who}: stride and dilation must be positive")
    lo, hi = resolve_padding(padding, d, xs[2:], ws[2:], stride, dilation, who)
    geom = Geometry(stride, lo, hi, dilation, groups)
    out = geom.out_shape(xs[2:], ws[2:])
    if min(out) < 1:
        raise ValueError(
            f"{who}: the (dilated) kernel {ws[2:]} is larger than the padded input {xs[2:]}"
        )
    return _add_bias(conv_p(x, weight, geom=geom), bias, d, who)


def conv1d(
    x: Array,
    weight: Array,
    bias: Array | None = None,
    stride: Size = 1,
    padding: Size | str = 0,
    dilation: Size = 1,
    groups: int = 1,
) -> Array:
    """1-D convolution: ``x`` (N, C_in, L), ``weight`` (C_out, C_in/groups, K) → (N, C_out, L_out),
    L_out = ⌊(L + pad_lo + pad_hi − dilation·(K − 1) − 1) / stride⌋ + 1.  ``padding``: int,
    ``"same"``, ``"valid"`` or a (lo, hi) pair per axis."""
    _need(x, 3, "conv1d")
    return conv_general(x, weight, bias, stride, padding, dilation, groups, who="conv1d")


def conv2d(
    x: Array,
    weight: Array,
    bias: Array | None = None,
    stride: Size = 1,
    padding: Size | str = 0,
    dilation: Size = 1,
    groups: int = 1,
) -> Array:
    """2-D convolution (cross-correlation): ``x`` (N, C_in, H, W), ``weight``
    (C_out, C_in/groups, kH, kW) → (N, C_out, H_out, W_out) with
    y[n, o, i, j] = Σ_{c,a,b} x_pad[n, c, i·s + a·d, j·s + b·d]·w[o, c, a, b] + bias[o].
    ``padding``: int, ``"same"``, ``"valid"``, one int per axis or a (lo, hi) pair per axis."""
    _need(x, 4, "conv2d")
    return conv_general(x, weight, bias, stride, padding, dilation, groups, who="conv2d")


def conv3d(
    x: Array,
    weight: Array,
    bias: Array | None = None,
    stride: Size = 1,
    padding: Size | str = 0,
    dilation: Size = 1,
    groups: int = 1,
) -> Array:
    """3-D convolution: ``x`` (N, C_in, D, H, W), ``weight`` (C_out, C_in/groups, kD, kH, kW)."""
    _need(x, 5, "conv3d")
    return conv_general(x, weight, bias, stride, padding, dilation, groups, who="conv3d")


def _need(x, nd, who):
    if _np.ndim(primal_value(x)) != nd:
        raise ValueError(f"{who}: x must have {nd} axes (N, C, *spatial), got shape {_shape(x)}")


def conv_transpose_general(
    x: Array, weight: Array, bias: Array=None, stride: Size=1, padding: Size | str=0, output_padding: Size=0, dilation: Size=1, groups: int = 1,
    *, who="conv_transpose",
) -> Array:  # fmt: skip
    """Transposed convolution: the input-gradient of ``conv_general`` applied to ``x``.

    ``x`` (N, C_in, *S), ``weight`` (C_in, C_out/groups, *K) → (N, C_out, *S_out) with
    S_out = (S − 1)·stride − pad_lo − pad_hi + dilation·(K − 1) + output_padding + 1.
    """
    xs, ws = _shape(x), _shape(weight)
    d = len(ws) - 2
    if d < 1 or len(xs) != d + 2:
        raise ValueError(
            f"{who}: x must be (N, C_in, *spatial) and weight (C_in, C_out/groups, *kernel); "
            f"got x {xs} and weight {ws}"
        )
    _check_float(x, who, "x")
    _check_float(weight, who, "weight")
    groups = operator.index(groups)
    if groups < 1 or ws[0] != xs[1] or xs[1] % groups:
        raise ValueError(
            f"{who}: weight must be (C_in={xs[1]}, C_out/groups, *kernel) with C_in divisible "
            f"by groups={groups}; got {ws}"
        )
    stride = _ints(stride, d, "stride")
    dilation = _ints(dilation, d, "dilation")
    opad = _ints(output_padding, d, "output_padding")
    if isinstance(padding, str):
        if padding != "valid":
            raise ValueError(f"{who}: padding must be ints, (lo, hi) pairs or 'valid'")
        padding = 0
    lo, hi = resolve_padding(padding, d, xs[2:], ws[2:], stride, dilation, who)
    for o, s in zip(opad, stride):
        if not 0 <= o < s:
            raise ValueError(f"{who}: output_padding must lie in [0, stride), got {opad}")
    spatial = tuple(
        (n - 1) * s - a - b + r * (k - 1) + o + 1
        for n, s, a, b, r, k, o in zip(xs[2:], stride, lo, hi, dilation, ws[2:], opad)
    )
    if min(spatial) < 1:
        raise ValueError(f"{who}: the padding {padding!r} leaves an empty output")
    geom = Geometry(stride, lo, hi, dilation, groups)
    y = conv_input_grad_p(x, weight, geom=geom, spatial=spatial)
    return _add_bias(y, bias, d, who)


def conv_transpose1d(x: Array, weight: Array, bias: Array=None, stride: Size=1, padding: Size | str=0, output_padding: Size=0, dilation: Size=1, groups: int = 1) -> Array:  # fmt: skip
    """1-D transposed convolution: ``x`` (N, C_in, L), ``weight`` (C_in, C_out/groups, K) →
    (N, C_out, (L − 1)·stride − 2·padding + dilation·(K − 1) + output_padding + 1)."""
    _need(x, 3, "conv_transpose1d")
    return conv_transpose_general(
        x, weight, bias, stride, padding, output_padding, dilation, groups, who="conv_transpose1d"
    )


def conv_transpose2d(x: Array, weight: Array, bias: Array=None, stride: Size=1, padding: Size | str=0, output_padding: Size=0, dilation: Size=1, groups: int = 1) -> Array:  # fmt: skip
    """2-D transposed convolution (the adjoint of ``conv2d`` in x): ``x`` (N, C_in, H, W),
    ``weight`` (C_in, C_out/groups, kH, kW) → (N, C_out, H_out, W_out) with
    H_out = (H − 1)·stride − 2·padding + dilation·(kH − 1) + output_padding + 1."""
    _need(x, 4, "conv_transpose2d")
    return conv_transpose_general(
        x, weight, bias, stride, padding, output_padding, dilation, groups, who="conv_transpose2d"
    )


def conv_transpose3d(x: Array, weight: Array, bias: Array=None, stride: Size=1, padding: Size | str=0, output_padding: Size=0, dilation: Size=1, groups: int = 1) -> Array:  # fmt: skip
    """3-D transposed convolution: ``x`` (N, C_in, D, H, W), ``weight`` (C_in, C_out/groups, *K)."""
    _need(x, 5, "conv_transpose3d")
    return conv_transpose_general(
        x, weight, bias, stride, padding, output_padding, dilation, groups, who="conv_transpose3d"
    )
