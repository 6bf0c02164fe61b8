"""Pooling: max and average pooling in 1-3 dimensions, global pooling, and max unpooling.

Average pooling is linear: a window-sum primitive and its transpose (a window-spread), each
the other's VJP.  Max pooling over tiling windows (stride = kernel, the common case) is one
primitive working on a strided view of the tiles, in x's own memory order; its derivative
spreads the cotangent onto each tile's maximum (ties share it) with a pair of linear
primitives.  Other max pooling picks, per window, the flat in-plane index of its maximum (a
constant) and gathers there -- the gather and the matching scatter-add are each other's VJP.
Every kernel loops over kernel offsets only (a handful of strided slices), never over pixels.
"""

from __future__ import annotations

import itertools

import numpy as _np
from numpy.lib.stride_tricks import as_strided

import wengert.numpy as wnp
from wengert.core import ANS, Primitive, primal_value
from wengert.nn.functional._types import Array, Size

from ._conv import Geometry, _ints, _shape, resolve_padding

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "global_avg_pool",
    "global_max_pool",
    "max_unpool1d",
    "max_unpool2d",
]


def _prod(t) -> int:
    n = 1
    for v in t:
        n *= v
    return n


def _offsets(kernel, geom: Geometry, out):
    """(kernel offset, slices of the padded grid that this offset sees for every output)."""
    for kidx in itertools.product(*[range(k) for k in kernel]):
        yield (
            kidx,
            tuple(
                slice(ki * r, ki * r + s * (o - 1) + 1, s)
                for ki, r, s, o in zip(kidx, geom.dilation, geom.stride, out)
            ),
        )


def _pad_last(x, geom: Geometry, value=0):
    d = len(geom.lo)
    if not any(geom.lo) and not any(geom.hi):
        return x
    width = [(0, 0)] * (x.ndim - d) + list(zip(geom.lo, geom.hi))
    return _np.pad(x, width, constant_values=value)


# ---------------------------------------------------------------------------------------------
# Window sum and its transpose (average pooling)
# ---------------------------------------------------------------------------------------------


def _is_tiling(geom: Geometry, kernel) -> bool:
    """Windows that tile the input: stride = kernel, no padding, no dilation."""
    return (
        tuple(geom.stride) == tuple(kernel)
        and not any(geom.lo + geom.hi)
        and all(r == 1 for r in geom.dilation)
    )


def _window_sum_impl(x, geom, kernel):
    d = len(kernel)
    out = geom.out_shape(x.shape[-d:], kernel)
    xp = _pad_last(x, geom)
    acc = None
    for _, sl in _offsets(kernel, geom, out):
        v = xp[(Ellipsis,) + sl]
        acc = v.copy() if acc is None else _np.add(acc, v, out=acc)
    return acc


def _window_spread_impl(g, geom, kernel, spatial):
    d = len(kernel)
    out = g.shape[-d:]
    if _is_tiling(geom, kernel):  # each input element in at most one window: repeat
        up = _upsample(g, kernel)
        if up.shape[-d:] == tuple(spatial):
            return up
        xp = _np.zeros(g.shape[:-d] + tuple(spatial), g.dtype)
        xp[(Ellipsis,) + tuple(slice(0, n) for n in up.shape[-d:])] = up
        return xp
    full = tuple(
        max(n + a + b, (o - 1) * s + r * (k - 1) + 1)
        for n, a, b, o, s, r, k in zip(
            spatial, geom.lo, geom.hi, out, geom.stride, geom.dilation, kernel
        )
    )
    xp = _np.zeros(g.shape[:-d] + full, g.dtype)
    for _, sl in _offsets(kernel, geom, out):
        xp[(Ellipsis,) + sl] += g
    return xp[(Ellipsis,) + tuple(slice(a, a + n) for a, n in zip(geom.lo, spatial))]


window_sum_p = Primitive("window_sum", _window_sum_impl, fmt="window_sum {0}")
window_spread_p = Primitive("window_spread", _window_spread_impl, fmt="window_spread {0}")
window_sum_p.defjvp(lambda t, ans, x, geom, kernel: window_sum_p(t, geom=geom, kernel=kernel))
window_sum_p.defvjp(
    lambda g, ans, x, geom, kernel: window_spread_p(
        g, geom=geom, kernel=kernel, spatial=_shape(x)[-len(kernel) :]
    )
)
window_spread_p.defjvp(
    lambda t, ans, g, geom, kernel, spatial: window_spread_p(
        t, geom=geom, kernel=kernel, spatial=spatial
    )
)
window_spread_p.defvjp(
    lambda c, ans, g, geom, kernel, spatial: window_sum_p(c, geom=geom, kernel=kernel)
)
window_sum_p.saving(())
window_spread_p.saving(())

# ---------------------------------------------------------------------------------------------
# Gather at / scatter-add to flat in-plane indices (max pooling, max unpooling)
# ---------------------------------------------------------------------------------------------


def _gather_impl(x, idx, nsp, unique):
    """x (..., *S) and idx (..., *O) of flat indices into S → x at idx, shape (..., *O)."""
    lead = x.shape[: x.ndim - nsp]
    x2 = x.reshape(lead + (-1,))
    i2 = idx.reshape(idx.shape[: idx.ndim - nsp] + (-1,))
    i2 = i2.reshape((1,) * (x2.ndim - i2.ndim) + i2.shape)
    y = _np.take_along_axis(x2, i2, axis=-1)
    return y.reshape(lead + idx.shape[idx.ndim - nsp :])


def _scatter_impl(g, idx, nsp, spatial, unique):
    """The transpose of the gather: zeros of shape (..., *spatial) with g added at idx."""
    lead = g.shape[: g.ndim - nsp]
    p = _prod(spatial)
    g2 = g.reshape(lead + (-1,))
    i2 = idx.reshape(idx.shape[: idx.ndim - nsp] + (-1,))
    i2 = _np.broadcast_to(i2.reshape((1,) * (g2.ndim - i2.ndim) + i2.shape), g2.shape)
    if unique:
        out = _np.zeros(lead + (p,), g.dtype)
        _np.put_along_axis(out, i2, g2, axis=-1)
    elif g.dtype.kind == "f":
        rows = _np.arange(_prod(lead)).reshape(lead + (1,)) * p
        out = _np.bincount((rows + i2).ravel(), weights=g2.ravel(), minlength=_prod(lead) * p)
        out = out.astype(g.dtype, copy=False).reshape(lead + (p,))
    else:
        out = _np.zeros(lead + (p,), g.dtype)
        rows = _np.indices(g2.shape, sparse=True)
        _np.add.at(out, tuple(rows[:-1]) + (i2,), g2)
    return out.reshape(lead + tuple(spatial))


gather_p = Primitive("plane_gather", _gather_impl, fmt="{0}[argmax]")
scatter_p = Primitive("plane_scatter_add", _scatter_impl, fmt="scatter {0}")
gather_p.defjvp(lambda t, ans, x, idx, nsp, unique: gather_p(t, idx=idx, nsp=nsp, unique=unique))
gather_p.defvjp(
    lambda g, ans, x, idx, nsp, unique: scatter_p(
        g, idx=idx, nsp=nsp, spatial=_shape(x)[-nsp:], unique=unique
    )
)
scatter_p.defjvp(
    lambda t, ans, g, idx, nsp, spatial, unique: scatter_p(
        t, idx=idx, nsp=nsp, spatial=spatial, unique=unique
    )
)
scatter_p.defvjp(
    lambda c, ans, g, idx, nsp, spatial, unique: gather_p(c, idx=idx, nsp=nsp, unique=unique)
)
gather_p.saving(())
scatter_p.saving(())


def _argmax_indices(xv, kernel, geom: Geometry):
    """Flat in-plane index of each window's maximum (the first one on ties), shape (..., *O)."""
    d = len(kernel)
    spatial = xv.shape[-d:]
    out = geom.out_shape(spatial, kernel)
    fill = -_np.inf if xv.dtype.kind == "f" else _np.iinfo(xv.dtype).min
    xp = _pad_last(xv, geom, value=fill)
    best = arg = None
    for n, (_, sl) in enumerate(_offsets(kernel, geom, out)):
        v = xp[(Ellipsis,) + sl]
        if best is None:
            best = v.copy()
            arg = _np.zeros(v.shape, _np.intp)
        else:
            better = v > best
            _np.copyto(best, v, where=better)
            arg[better] = n
    plane = _np.array([_prod(spatial[i + 1 :]) for i in range(d)])
    koff = _np.array(
        [
            sum(ki * r * ps for ki, r, ps in zip(kidx, geom.dilation, plane))
            for kidx, _ in _offsets(kernel, geom, out)
        ]
    )
    base = 0
    for i in range(d):
        o = _np.arange(out[i]) * geom.stride[i] - geom.lo[i]
        base = _np.add.outer(base, o * plane[i]) if i else o * plane[i]
    return base + koff[arg], best


# ---------------------------------------------------------------------------------------------
# Public pooling functions
# ---------------------------------------------------------------------------------------------


def _geometry(x, d, kernel_size, stride, padding, dilation, who):
    xs = _shape(x)
    if len(xs) < d + 1:
        raise ValueError(f"{who}: x must be (N, C, *spatial) with {d} spatial axes, got {xs}")
    kernel = _ints(kernel_size, d, "kernel_size")
    stride = kernel if stride is None else _ints(stride, d, "stride")
    dilation = _ints(dilation, d, "dilation")
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{who}: kernel_size, stride and dilation must be positive")
    lo, hi = resolve_padding(padding, d, xs[-d:], kernel, stride, dilation, who)
    for a, b, k, r in zip(lo, hi, kernel, dilation):
        if max(a, b) > (r * (k - 1) + 1) // 2:
            raise ValueError(
                f"{who}: padding {padding!r} exceeds half the (dilated) kernel {kernel}: some "
                "windows would see only padding"
            )
    geom = Geometry(stride, lo, hi, dilation, 1)
    if min(geom.out_shape(xs[-d:], kernel)) < 1:
        raise ValueError(f"{who}: kernel {kernel} is larger than the padded input {xs[-d:]}")
    return kernel, geom


# ---------------------------------------------------------------------------------------------
# Max pooling over tiling windows (stride = kernel, no padding or dilation: the common case).
# The tiles are a strided view (..., O₁, k₁, ..., O_d, k_d) of x -- no copy, in x's own memory
# layout (channels-last arrays keep long contiguous runs) -- and the maximum is taken one tile
# offset at a time.  The derivative goes to each tile's maximum, tied maxima sharing it
# equally (as ``wengert.numpy.max``): ``tile_spread`` puts g·share on the tiles, ``tile_gather``
# sums c·share over each tile; the two are each other's transpose, and the share (a constant:
# a mask of the maxima and, when some tile has ties, 1/count per tile) comes from the primal.
# ---------------------------------------------------------------------------------------------


def _upsample(a, kernel):
    """Each element of ``a`` repeated over its tile (last len(kernel) axes)."""
    d = len(kernel)
    for i, k in enumerate(kernel):
        a = _np.repeat(a, k, axis=a.ndim - d + i)
    return a


def _tiles(a, kernel, writeable=False):
    """The view (..., O₁, k₁, ..., O_d, k_d) of the whole tiles of ``a``'s last d axes."""
    d = len(kernel)
    shape, strides = a.shape[: a.ndim - d], a.strides[: a.ndim - d]
    for n, s, k in zip(a.shape[a.ndim - d :], a.strides[a.ndim - d :], kernel):
        shape += (n // k, k)
        strides += (s * k, s)
    return as_strided(a, shape, strides, writeable=writeable)


def _at_offsets(t, kernel):
    """For each offset within a tile, the (..., O₁, ..., O_d) view of the tile view ``t``."""
    lead = (slice(None),) * (t.ndim - 2 * len(kernel))
    for kidx in itertools.product(*[range(k) for k in kernel]):
        yield t[lead + sum(((slice(None), j) for j in kidx), ())]


def _per_tile(a, d):
    """(..., O₁, ..., O_d) → (..., O₁, 1, ..., O_d, 1): one value per tile, broadcastable."""
    return a.reshape(a.shape[: a.ndim - d] + sum(((o, 1) for o in a.shape[a.ndim - d :]), ()))


def _order(a):
    """a's axes from the largest stride to the smallest (its memory order)."""
    return sorted(range(a.ndim), key=lambda i: -abs(a.strides[i]))


def _tile_max_impl(x, kernel):
    views = _at_offsets(_tiles(x, kernel), kernel)
    y = next(views)
    second = next(views, None)
    if second is None:  # 1×1 tiles
        return y.copy()
    y = _np.maximum(y, second)  # allocated in x's memory order
    for v in views:
        _np.maximum(y, v, out=y)
    return y


def _tiled_innermost(a, d):
    """Is a's smallest stride on one of its last d (tiled) axes?  Then tile views have short
    inner loops (tiles are runs of a few elements), and NumPy's repeat does better."""
    return _order(a)[-1] >= a.ndim - d


def _tile_share(x, y, kernel):
    """(mask, inv): ``mask`` (bool, x's shape and memory order) marks each tile's maxima (its
    NaNs when it has any); ``inv`` is 1/(their count) per tile in x's dtype, or None when
    every tile has exactly one."""
    x, y = _np.asarray(primal_value(x)), _np.asarray(primal_value(y))
    d = len(kernel)
    if _tiled_innermost(x, d):
        mask = x == _upsample(y, kernel)
    else:
        mask = (_tiles(x, kernel) == _per_tile(y, d)).reshape(x.shape)  # a view: x's order
    if y.dtype.kind in "fc" and _np.isnan(y).any():
        mask |= _np.isnan(x)
    if _np.count_nonzero(mask) == y.size:  # each tile has ≥ 1 hit: exactly one each
        return mask, None
    dt = _np.uint8 if _prod(kernel) < 256 else _np.int64
    hits = list(_at_offsets(_tiles(mask, kernel), kernel))  # ≥ 2: 1×1 tiles returned above
    cnt = _np.add(hits[0], hits[1], dtype=dt)
    for h in hits[2:]:
        _np.add(cnt, h, out=cnt, dtype=dt)
    return mask, _np.reciprocal(cnt, dtype=x.dtype)


def _tile_spread_impl(g, mask, inv, kernel):
    """g·share on the tiles: (..., *O) → (..., *(O·k)), in the memory order of the mask."""
    d = len(kernel)
    if _tiled_innermost(mask, d):
        return _upsample(g if inv is None else g * inv, kernel) * mask
    t = _tiles(mask, kernel)
    first = t[(Ellipsis,) + (0, slice(None)) * (d - 1) + (0,)]  # (..., *O) in x's order
    if g.ndim == first.ndim and _order(g) != _order(first):
        # a cotangent in another memory order than x: a small copy into x's order first, else
        # the product below runs in a poor iteration order
        g = _np.multiply(g, 1 if inv is None else inv, out=_np.empty_like(first, dtype=g.dtype))
    elif inv is not None:
        g = g * inv
    ge = _per_tile(g, d)
    if ge.ndim == t.ndim:
        out = _np.empty_like(mask, dtype=g.dtype)  # x's layout, so its tile view is a view
        _np.multiply(ge, t, out=_tiles(out, kernel, writeable=True))
        return out
    out = _np.multiply(ge, t, dtype=g.dtype)  # leading batch axes (forward mode)
    return out.reshape(out.shape[: out.ndim - 2 * d] + mask.shape[mask.ndim - d :])


def _tile_gather_impl(c, mask, inv, kernel):
    """Σ over each tile of c·share: (..., *(O·k)) → (..., *O)."""
    prods = _at_offsets(_tiles(c * mask, kernel), kernel)
    s = next(prods).copy()
    for v in prods:
        s += v
    if inv is not None:
        s *= inv
    return s


tile_max_p = Primitive("tile_max_pool", _tile_max_impl, fmt="max_pool {0}")
tile_spread_p = Primitive("tile_spread", _tile_spread_impl, fmt="tile_spread {0}")
tile_gather_p = Primitive("tile_gather", _tile_gather_impl, fmt="tile_gather {0}")


def _share_kw(ans, x, kernel):
    mask, inv = _tile_share(x, ans, kernel)
    return {"mask": mask, "inv": inv, "kernel": kernel}


tile_max_p.defjvp(lambda t, ans, x, kernel: tile_gather_p(t, **_share_kw(ans, x, kernel)))
tile_max_p.defvjp(lambda g, ans, x, kernel: tile_spread_p(g, **_share_kw(ans, x, kernel)))
tile_max_p.saving((0, ANS))
for _p, _q in ((tile_spread_p, tile_gather_p), (tile_gather_p, tile_spread_p)):
    _p.defjvp(lambda t, ans, c, mask, inv, kernel, _p=_p: _p(t, mask=mask, inv=inv, kernel=kernel))
    _p.defvjp(lambda g, ans, c, mask, inv, kernel, _q=_q: _q(g, mask=mask, inv=inv, kernel=kernel))
    _p.saving(())


def _tile_max_pool(x, kernel):
    shape = _shape(x)
    d = len(kernel)
    nl = len(shape) - d
    out = tuple(n // k for n, k in zip(shape[nl:], kernel))
    if any(o * k != n for o, k, n in zip(out, kernel, shape[nl:])):  # drop the partial tiles
        x = x[(Ellipsis,) + tuple(slice(0, o * k) for o, k in zip(out, kernel))]
    return tile_max_p(x, kernel=kernel)


def _max_pool(x, d, kernel_size, stride, padding, dilation, return_indices, who):
    kernel, geom = _geometry(x, d, kernel_size, stride, padding, dilation, who)
    if _is_tiling(geom, kernel) and not return_indices:
        return _tile_max_pool(x, kernel)
    xv = primal_value(x)
    idx, best = _argmax_indices(_np.asarray(xv), kernel, geom)
    # windows that do not overlap pick distinct elements: the scatter can assign, not add
    unique = all(s >= r * (k - 1) + 1 for s, r, k in zip(geom.stride, geom.dilation, kernel))
    y = best if x is xv else gather_p(x, idx=idx, nsp=d, unique=unique)
    return (y, idx) if return_indices else y


def max_pool1d(
    x: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size | str = 0,
    dilation: Size = 1,
    return_indices: bool = False,
) -> Array:
    """1-D max pooling of ``x`` (N, C, L) (stride defaults to kernel_size; padding with −∞)."""
    return _max_pool(x, 1, kernel_size, stride, padding, dilation, return_indices, "max_pool1d")


def max_pool2d(
    x: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size | str = 0,
    dilation: Size = 1,
    return_indices: bool = False,
) -> Array:
    """2-D max pooling: y[n, c, i, j] = max over the window of x_pad (padding with −∞).

    The derivative goes to each window's maximum: when the windows tile the input (stride =
    kernel, no padding or dilation) tied maxima share it equally, as ``wengert.numpy.max``;
    otherwise the first maximum takes it.  With
    ``return_indices=True`` also returns the flat index of that element within its (H, W)
    plane, as ``max_unpool2d`` takes it.  ``stride`` defaults to ``kernel_size``.
    """
    return _max_pool(x, 2, kernel_size, stride, padding, dilation, return_indices, "max_pool2d")


def max_pool3d(
    x: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size | str = 0,
    dilation: Size = 1,
    return_indices: bool = False,
) -> Array:
    """3-D max pooling of ``x`` (N, C, D, H, W)."""
    return _max_pool(x, 3, kernel_size, stride, padding, dilation, return_indices, "max_pool3d")


def _avg_pool(x, d, kernel_size, stride, padding, count_include_pad, who):
    kernel, geom = _geometry(x, d, kernel_size, stride, padding, 1, who)
    s = window_sum_p(x, geom=geom, kernel=kernel)
    dt = _np.result_type(primal_value(x))
    if count_include_pad or not (any(geom.lo) or any(geom.hi)):
        return s * dt.type(1 / _prod(kernel))
    counts = _window_sum_impl(_np.ones(_shape(x)[-d:], dt), geom, kernel)
    return s / counts


def avg_pool1d(
    x: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size | str = 0,
    count_include_pad: bool = True,
) -> Array:
    """1-D average pooling of ``x`` (N, C, L)."""
    return _avg_pool(x, 1, kernel_size, stride, padding, count_include_pad, "avg_pool1d")


def avg_pool2d(
    x: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size | str = 0,
    count_include_pad: bool = True,
) -> Array:
    """2-D average pooling: the window sums over zero-padded x divided by the window size
    (``count_include_pad=True``) or by the number of real elements in each window."""
    return _avg_pool(x, 2, kernel_size, stride, padding, count_include_pad, "avg_pool2d")


def avg_pool3d(
    x: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size | str = 0,
    count_include_pad: bool = True,
) -> Array:
    """3-D average pooling of ``x`` (N, C, D, H, W)."""
    return _avg_pool(x, 3, kernel_size, stride, padding, count_include_pad, "avg_pool3d")


def global_avg_pool(x: Array, keepdims: bool = False) -> Array:
    """Mean over every spatial axis: (N, C, *S) → (N, C) (or (N, C, 1, ...) with keepdims)."""
    return wnp.mean(x, axis=tuple(range(2, _np.ndim(primal_value(x)))), keepdims=keepdims)


def global_max_pool(x: Array, keepdims: bool = False) -> Array:
    """Max over every spatial axis: (N, C, *S) → (N, C); tied maxima share the derivative."""
    return wnp.max(x, axis=tuple(range(2, _np.ndim(primal_value(x)))), keepdims=keepdims)


def _max_unpool(x, indices, d, kernel_size, stride, padding, output_size, who):
    xs = _shape(x)
    kernel = _ints(kernel_size, d, "kernel_size")
    stride = kernel if stride is None else _ints(stride, d, "stride")
    pad = _ints(padding, d, "padding")
    idx = _np.asarray(primal_value(indices))
    if idx.shape != xs:
        raise ValueError(f"{who}: indices must have x's shape {xs}, got {idx.shape}")
    if output_size is None:
        spatial = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(xs[-d:], stride, pad, kernel))
    else:
        spatial = tuple(output_size)[-d:]
    if idx.size and (idx.min() < 0 or idx.max() >= _prod(spatial)):
        raise ValueError(f"{who}: indices out of range for an output of spatial shape {spatial}")
    return scatter_p(x, idx=idx, nsp=d, spatial=spatial, unique=False)


def max_unpool1d(
    x: Array,
    indices: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size | str = 0,
    output_size: tuple | None = None,
) -> Array:
    """The partial inverse of ``max_pool1d``: zeros with x put at ``indices``."""
    return _max_unpool(x, indices, 1, kernel_size, stride, padding, output_size, "max_unpool1d")


def max_unpool2d(
    x: Array,
    indices: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size | str = 0,
    output_size: tuple | None = None,
) -> Array:
    """The partial inverse of ``max_pool2d``: a zero (N, C, H, W) array with each value of
    ``x`` placed at its flat in-plane index from ``max_pool2d(..., return_indices=True)``
    (values landing on the same place add up).  H = (H_in − 1)·stride − 2·padding + kernel
    unless ``output_size`` says otherwise."""
    return _max_unpool(x, indices, 2, kernel_size, stride, padding, output_size, "max_unpool2d")
