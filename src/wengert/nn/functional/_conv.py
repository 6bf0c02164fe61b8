"""Convolution in 1, 2 and 3 dimensions, and transposed convolution, as three primitives.

The trilinear form T(x, w, g) = ⟨g, conv(x, w)⟩ has three partial maps, each a primitive:
``conv`` (x, w ↦ y), ``conv_input_grad`` (g, w ↦ x̄, the transposed convolution) and
``conv_weight_grad`` (x, g ↦ w̄, a correlation of input and output gradient).  Every VJP of one
is another of the three, so derivatives of any order stay convolutions (``conv_bias``, the
convolution with its bias added in place, differentiates into the same three).  Each runs as one
batched matrix product over an im2col view (``as_strided``, no Python loop over pixels); the
transposed one adds its columns back with one strided add per kernel offset.  The columns
take one of three layouts, chosen by shape: plain im2col, a "flat grid" for stride 1 (long
contiguous runs), or channels-last for small grids -- whose results stay channels-last in
memory (the arrays are (N, C, *S) as always; only their strides differ).
"""

from __future__ import annotations

import itertools
import operator
import threading
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
# Scratch memory.  The columns are large, short-lived arrays that never leave a kernel; a fresh
# allocation for them each call costs more than the copy into them (the allocator hands the
# pages back to the system between training steps, and every page touched again is a page
# fault), so each thread keeps one buffer per use and reuses it.
# ---------------------------------------------------------------------------------------------

_SCRATCH_MAX = 16 << 20  # bytes per slot: larger requests get a fresh array, not kept
_scratch_local = threading.local()


def _scratch(slot: str, shape: tuple, dtype) -> _np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` in this thread's buffer ``slot``; valid
    until the next request for the same slot, so it must never be returned to a caller."""
    dtype = _np.dtype(dtype)
    nbytes = _prod(shape) * dtype.itemsize
    if nbytes > _SCRATCH_MAX:
        return _np.empty(shape, dtype)
    bufs = _scratch_local.__dict__
    buf = bufs.get(slot)
    if buf is None or buf.size < nbytes:
        buf = bufs[slot] = _np.empty(max(nbytes, 4096), _np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


# ---------------------------------------------------------------------------------------------
# NumPy kernels
# ---------------------------------------------------------------------------------------------


# When the flat grid pays (measured on 8×8 and 4×4 digits-sized batches, 3×3 kernels): with at
# least this many column rows (channels per group × kernel size) -- below it the columns are
# too few for the long runs to matter -- and at most this many wasted extra columns per output.
_FLAT_MIN_ROWS = 16
_FLAT_MAX_WASTE = 1.0


def _layout(spatial: tuple, kernel: tuple, geom: Geometry, rows: int, allow_flat: bool = True):
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
    if not (flat and allow_flat) or wasteful or rows < _FLAT_MIN_ROWS:
        return padded, out, out, False
    inner = _prod(padded[1:])
    reach = sum(
        (k - 1) * r * _prod(padded[i + 1 :]) for i, (k, r) in enumerate(zip(kernel, geom.dilation))
    )
    need = reach + out[0] * inner  # one past the last element any offset reads
    extra = max(0, -(-(need - _prod(padded)) // inner))
    padded = (padded[0] + extra,) + padded[1:]
    return padded, (out[0],) + padded[1:], out, True


def _pad_to(x, geom: Geometry, padded: tuple, flat: bool):
    """x (N, C, *S) zero-padded by ``geom.lo`` before and up to ``padded`` after (scratch
    memory), C-contiguous when ``flat`` (the flat grid reads runs across rows)."""
    if x.shape[2:] == padded and (not flat or x.flags.c_contiguous):
        return x
    xp = _scratch("pad", x.shape[:2] + padded, x.dtype)
    _zero_border(xp, 2, geom.lo, x.shape[2:])
    xp[(Ellipsis,) + tuple(slice(a, a + n) for a, n in zip(geom.lo, x.shape[2:]))] = x
    return xp


def _zero_border(xp, first: int, lo: tuple, inner: tuple) -> None:
    """Zero what lies outside [lo, lo + inner) on the spatial axes first, first + 1, ... of xp."""
    for i, (a, n) in enumerate(zip(lo, inner)):
        ax = first + i
        pre = (slice(None),) * ax
        if a:
            xp[pre + (slice(0, a),)] = 0
        if a + n < xp.shape[ax]:
            xp[pre + (slice(a + n, None),)] = 0


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


def _im2col(x, kernel: tuple, geom: Geometry, allow_flat: bool = True):
    """Columns (G, Cg·∏K, N·∏grid) of the padded input (channel and kernel offset down,
    sample and grid position across), the grid and the output spatial shape."""
    rows = x.shape[1] // geom.groups * _prod(kernel)
    padded, grid, out, flat = _layout(x.shape[2:], kernel, geom, rows, allow_flat)
    xp = _pad_to(x, geom, padded, flat)
    n, c = x.shape[:2]
    g = geom.groups
    win = _window_view(xp, kernel, geom, grid, flat)
    cols = _scratch("cols", win.shape, x.dtype)
    _np.copyto(cols, win)
    return cols.reshape(g, (c // g) * _prod(kernel), n * _prod(grid)), grid, out


def _channels_first(gy, g, grid):
    """(N, C_out, *O) → (G, C_out/G, N·∏grid), contiguous (scratch memory); zeros in the
    grid's extra columns."""
    n, co = gy.shape[:2]
    out = gy.shape[2:]
    t = _scratch("grad", (co, n) + tuple(grid), gy.dtype)
    if tuple(grid) != out:
        t.fill(0)
    t[(Ellipsis,) + tuple(slice(0, o) for o in out)] = _np.moveaxis(gy, 1, 0)
    return t.reshape(g, co // g, -1)


# ---------------------------------------------------------------------------------------------
# The channels-last path: for small grids (4×4, 8×8...) the planes' rows are too short for the
# layouts above; with the channel axis innermost every window row is one run of kernel width ×
# channels, and the matrix products need no transposed operands.  Its results are returned
# channels-last *in memory* -- (N, C, *S) views of (N, *S, C) arrays -- and it reads inputs in
# either memory order, so a stack of such layers (with the element-wise ops, normalisation and
# pooling between them, which keep their input's memory order) never transposes a batch.
# ---------------------------------------------------------------------------------------------

_NHWC_MIN_CHANNELS = 1  # at least this many input channels (one group) ...
_NHWC_MAX_POSITIONS = 100  # ... and at most this many output positions per sample
_NHWC_COLUMN_RUN = 1.0  # channels-last columns when C·K_w ≥ this × W_out, else plain ones


def _channels_last(c: int, out: tuple, geom: Geometry) -> bool:
    return geom.groups == 1 and c >= _NHWC_MIN_CHANNELS and _prod(out) <= _NHWC_MAX_POSITIONS


def _nhwc_columns(c: int, kernel: tuple, out: tuple) -> bool:
    """Which columns the channels-last path copies: channels-last ones (N·∏O, ∏K·C) move
    runs of K_w·C elements, plain ones (C·∏K, N·∏O) runs of W_out; few channels (the first
    layer) take the plain ones, and a transposed product still gives a channels-last result."""
    return c * kernel[-1] >= _NHWC_COLUMN_RUN * out[-1]


def _last(a):
    """(N, C, *S) → the (N, *S, C) view."""
    return _np.moveaxis(a, 1, -1)


def _last_padded(x, geom: Geometry, padded: tuple):
    """x (N, C, *S) as (N, *padded, C), zero-padded by ``geom.lo`` before: a scratch copy, or
    x's own channels-last view when there is no padding."""
    xl = _last(x)
    if tuple(padded) == x.shape[2:]:
        return xl
    n, c = x.shape[:2]
    xp = _scratch("pad", (n,) + tuple(padded) + (c,), x.dtype)
    _zero_border(xp, 1, geom.lo, x.shape[2:])
    xp[(slice(None),) + tuple(slice(a, a + m) for a, m in zip(geom.lo, x.shape[2:]))] = xl
    return xp


def _nhwc_cols(x, kernel: tuple, geom: Geometry, out: tuple):
    """Columns (N·∏O, ∏K·C) (sample and output position down, kernel offset and channel
    across), in scratch memory."""
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
    cols = _scratch("cols", shape, x.dtype)
    _np.copyto(cols, as_strided(xp, shape, strides, writeable=False))
    return cols.reshape(x.shape[0] * _prod(out), -1)


def _nhwc_weight(w):
    """(C_out, C_in, *K) → (C_out, ∏K·C_in), kernel offset major."""
    return _np.moveaxis(w, 1, -1).reshape(w.shape[0], -1)


def _nhwc_grad(gy):
    """(N, C_out, *O) → (N·∏O, C_out): a view when gy is channels-last in memory."""
    gl = _last(gy)
    if not gl.flags.c_contiguous:
        buf = _scratch("grad", gl.shape, gy.dtype)
        _np.copyto(buf, gl)
        gl = buf
    return gl.reshape(-1, gy.shape[1])


def _nhwc_conv(x, w, geom, out):
    y = _nhwc_cols(x, w.shape[2:], geom, out) @ _nhwc_weight(w).T  # (N·∏O, C_out)
    return _np.moveaxis(y.reshape((x.shape[0],) + tuple(out) + (w.shape[0],)), -1, 1)


def _nhwc_weight_grad(x, gy, geom, kernel):
    wg = _nhwc_grad(gy).T @ _nhwc_cols(x, kernel, geom, gy.shape[2:])  # (C_out, ∏K·C_in)
    wg = wg.reshape((gy.shape[1],) + tuple(kernel) + (x.shape[1],))
    return _np.ascontiguousarray(_np.moveaxis(wg, -1, 1))


def _clip(o: int, s: int, off: int, n: int):
    """The outputs p ∈ [0, o) whose input index p·s + off lies in [0, n), as (slice of p,
    slice of the input), or None when there are none."""
    p0 = max(0, -(off // s))
    p1 = min(o - 1, (n - 1 - off) // s)
    if p1 < p0:
        return None
    i0 = p0 * s + off
    return slice(p0, p1 + 1), slice(i0, i0 + (p1 - p0) * s + 1, s)


def _nhwc_input_grad(gy, w, geom, spatial):
    n = gy.shape[0]
    c = w.shape[1]
    kernel = tuple(w.shape[2:])
    out = gy.shape[2:]
    gyf = _nhwc_grad(gy)
    wm = _nhwc_weight(w)
    dt = _np.result_type(gyf, wm)
    cols = _np.matmul(gyf, wm, out=_scratch("cols", (gyf.shape[0], wm.shape[1]), dt))
    cols = cols.reshape((n,) + tuple(out) + kernel + (c,))
    lead = (slice(None),)
    adds = []  # (input slices, column slices) per kernel offset that reaches the input
    for kidx in itertools.product(*[range(k) for k in kernel]):
        cl = [
            _clip(o, st, ki * dl - lo, m)
            for o, st, ki, dl, lo, m in zip(out, geom.stride, kidx, geom.dilation, geom.lo, spatial)
        ]
        if None not in cl:
            adds.append((lead + tuple(i for _, i in cl), lead + tuple(p for p, _ in cl) + kidx))
    whole = lead + tuple(slice(0, m, 1) for m in spatial)
    first = next((a for a in adds if a[0] == whole), None)  # an offset that covers every input
    if first is None:
        xg = _np.zeros((n,) + tuple(spatial) + (c,), cols.dtype)
    else:  # start from its columns: no zero fill, one add fewer
        adds.remove(first)
        xg = _np.empty((n,) + tuple(spatial) + (c,), cols.dtype)
        xg[...] = cols[first[1]]
    for dst, src in adds:
        xg[dst] += cols[src]
    return _np.moveaxis(xg, -1, 1)


def _conv_impl(x, w, geom):
    out = geom.out_shape(x.shape[2:], w.shape[2:])
    n = x.shape[0]
    co = w.shape[0]
    if _channels_last(x.shape[1], out, geom):
        if _nhwc_columns(x.shape[1], w.shape[2:], out):
            return _nhwc_conv(x, w, geom, out)
        cols = _im2col(x, w.shape[2:], geom, allow_flat=False)[0][0]  # (C·∏K, N·∏O)
        y = cols.T @ w.reshape(co, -1).T  # (N·∏O, C_out)
        return _np.moveaxis(y.reshape((n,) + tuple(out) + (co,)), -1, 1)
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
    if _channels_last(cg * g, out, geom) and _nhwc_columns(cg, kernel, out):
        return _nhwc_input_grad(gy, w, geom, spatial)
    wm = w.reshape(g, co // g, cg * _prod(kernel)).transpose(0, 2, 1)
    gm = _channels_first(gy, g, grid)
    dt = _np.result_type(wm, gm)
    cols = _np.matmul(wm, gm, out=_scratch("cols", (g, wm.shape[1], gm.shape[2]), dt))
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
        if _nhwc_columns(x.shape[1], kernel, gy.shape[2:]):
            return _nhwc_weight_grad(x, gy, geom, kernel)
        cols = _im2col(x, kernel, geom, allow_flat=False)[0][0]  # (C·∏K, N·∏O)
        wg = _nhwc_grad(gy).T @ cols.T  # (C_out, C·∏K)
        return wg.reshape((co, x.shape[1]) + tuple(kernel))
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


# Convolution plus a per-channel bias, one primitive: the bias is added in place into the fresh
# result (no second full-size array), and its cotangent is the sum of g over batch and space.
def _conv_bias_impl(x, w, b, geom):
    y = _conv_impl(x, w, geom)
    if _np.result_type(y, b) != y.dtype:
        return y + b.reshape((-1,) + (1,) * (y.ndim - 2))
    y += b.reshape((-1,) + (1,) * (y.ndim - 2))
    return y


def _channel_bias_jvp(t, ans, x, w, b, geom):
    """A bias tangent (..., C_out) spread over the batch and the output positions."""
    nb = t.ndim - 1
    d = len(geom.stride)
    t = wnp.reshape(t, t.shape[:nb] + (1,) + t.shape[nb:] + (1,) * d)
    return wnp.broadcast_to(t, t.shape[:nb] + _shape(ans))


conv_bias_p = Primitive("conv_bias", _conv_bias_impl, fmt="conv({0}, {1}) + {2}")
conv_bias_p.defjvp(
    lambda t, ans, x, w, b, geom: _fold(lambda u: conv_p(u, w, geom=geom), t, _nb(t, x)),
    lambda t, ans, x, w, b, geom: _merged(
        lambda u: conv_p(x, u, geom=geom), t, _nb(t, w), 0, geom.groups, 1, geom.groups
    ),
    _channel_bias_jvp,
)
conv_bias_p.defvjp(
    lambda g, ans, x, w, b, geom: conv_input_grad_p(g, w, geom=geom, spatial=_shape(x)[2:]),
    lambda g, ans, x, w, b, geom: conv_weight_grad_p(x, g, geom=geom, kernel=_shape(w)[2:]),
    lambda g, ans, x, w, b, geom: wnp.sum(
        g, axis=(0,) + tuple(range(2, _np.ndim(primal_value(g))))
    ),
)
conv_bias_p.saving((1,), (0,), ())


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
    if bias is None:
        return conv_p(x, weight, geom=geom)
    if _shape(bias) != (ws[0],):
        raise ValueError(f"{who}: bias must have shape ({ws[0]},), got {_shape(bias)}")
    return conv_bias_p(x, weight, bias, geom=geom)


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
