"""Normalisation: batch, layer, group and instance norm.

Built on three small primitives -- standardisation x̂ = (x − μ)/σ (one closed-form rule that
is both its JVP and its VJP), the affine map γ·x̂ + β, and a multi-axis sum -- whose rules use
wengert's own ops, so every order differentiates.  The running statistics batch norm keeps
are plain constants, updated outside the trace.
"""

from __future__ import annotations

import numpy as _np

import wengert.numpy as wnp
from wengert.core import ANS, Primitive, primal_value
from wengert.nn.functional._types import Array
from wengert.numpy._elementwise import to_out_shape
from wengert.numpy._reductions import normalize_axes

__all__ = ["batch_norm", "layer_norm", "group_norm", "instance_norm", "normalize"]


def _shape(v):
    return _np.shape(primal_value(v))


# ---------------------------------------------------------------------------------------------
# Sums over several axes.  NumPy's reduce is slow over non-contiguous axis sets such as
# (N, H, W) of an NCHW array; einsum's summation loops are several times faster there.
# ---------------------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _channel_rows(a, axes):
    """``a`` (N, C, *S) as an (M, C) matrix *view* when ``axes`` are all but the channel axis
    and ``a``'s memory is channels-last (as convolution outputs on small grids are), else
    None.  Per-channel sums then become one matrix-vector product (BLAS), 3-4x faster than
    a strided reduction."""
    nd = a.ndim
    if nd < 2 or len(axes) != nd - 1 or (1 - nd) in axes or a.dtype.kind != "f":
        return None
    t = a.transpose((0,) + tuple(range(2, nd)) + (1,)) if nd > 2 else a
    if not t.flags.c_contiguous:
        return None
    return t.reshape(-1, a.shape[1])


def _keep_shape(a, axes):
    nd = a.ndim
    return tuple(1 if i - nd in axes else n for i, n in enumerate(a.shape))


def _sum_keep_impl(x, axes):
    nd = x.ndim
    if x.size < 4096 or x.dtype.kind != "f" or nd > len(_LETTERS):
        return _np.sum(x, axis=axes, keepdims=True)
    rows = _channel_rows(x, axes)
    if rows is not None:
        return (_np.ones(rows.shape[0], x.dtype) @ rows).reshape(_keep_shape(x, axes))
    src = _LETTERS[:nd]
    kept = "".join(c for i, c in enumerate(src) if i - nd not in axes)
    out = _np.einsum(src + "->" + kept, x)
    return out.reshape(tuple(1 if i - nd in axes else n for i, n in enumerate(x.shape)))


sum_keep_p = Primitive("sum", _sum_keep_impl, fmt="Σ {0}")
sum_keep_p.defjvp(lambda t, ans, x, axes: sum_keep_p(t, axes=axes))
sum_keep_p.defvjp(lambda g, ans, x, axes: wnp.broadcast_to(g, _shape(x)))
sum_keep_p.saving(())


def _mean_keep(x, axes):
    shape = _shape(x)
    n = 1
    for a in axes:
        n *= shape[a]
    return sum_keep_p(x, axes=axes) * (1 / n)


def _unbroadcast(g, shape):
    """Sum the cotangent ``g`` down to ``shape`` (fast sums; the inverse of broadcasting)."""
    gs = _shape(g)
    if gs == tuple(shape):
        return g
    lead = len(gs) - len(shape)
    axes = tuple(range(-len(gs), -len(shape))) + tuple(
        i - len(shape) for i, d in enumerate(shape) if d == 1 and gs[lead + i] != 1
    )
    out = sum_keep_p(g, axes=axes) if axes else g
    return wnp.reshape(out, shape)


# ---------------------------------------------------------------------------------------------
# Standardisation x̂ = (x − μ)/√(σ² + eps) and the per-channel affine map γ·x̂ + β
# ---------------------------------------------------------------------------------------------


def _moments(x, axes):
    """Mean and biased variance of a plain array over ``axes`` (keepdims)."""
    n = 1
    for a in axes:
        n *= x.shape[a]
    mean = _sum_keep_impl(x, axes) / x.dtype.type(n) if x.dtype.kind == "f" else None
    if mean is None:
        return _np.mean(x, axis=axes, keepdims=True), _np.var(x, axis=axes, keepdims=True)
    xc = x - mean
    return mean, _sum_keep_impl(xc * xc, axes) / x.dtype.type(n)


def _standardize_impl(x, axes, eps, stats=None):
    mean, var = _moments(x, axes) if stats is None else stats
    xc = x - mean
    xc /= _np.sqrt(var + _np.asarray(eps, var.dtype))
    return xc


def _sigma(x, axes, eps, stats):
    """√(var + eps) over ``axes`` (keepdims): from the precomputed statistics when x is a
    plain array, else differentiably (inside higher-order derivatives)."""
    if stats is not None and type(x) is _np.ndarray:
        return _np.sqrt(stats[1] + _np.asarray(eps, stats[1].dtype))
    m = _mean_keep(x, axes)
    xc = x - m
    return wnp.sqrt(_mean_keep(xc * xc, axes) + eps)


def _standardize_d(t, ans, x, axes, eps, stats=None):
    """The Jacobian of x̂ = (x − μ)/σ is symmetric: J·t = (t − mean t − x̂·mean(x̂ t)) / σ, so
    this one rule is both the JVP and the VJP."""
    m1 = _mean_keep(t, axes)
    m2 = _mean_keep(t * ans, axes)
    return (t - m1 - ans * m2) / _sigma(x, axes, eps, stats)


standardize_p = Primitive("standardize", _standardize_impl, fmt="standardize {0}")
standardize_p.defjvp(_standardize_d).defvjp(_standardize_d).saving((0, ANS))


def normalize(x: Array, axes: tuple, eps: float, stats=None) -> Array:
    """x̂ = (x − μ) / √(σ² + eps) with μ, σ² (biased) over ``axes``: one primitive whose
    derivative rule is the closed form above (cheaper than differentiating the steps).
    ``stats`` may pass the plain (mean, var) of x, already computed, keepdims."""
    nd = _np.ndim(primal_value(x))
    return standardize_p(x, axes=normalize_axes(axes, nd), eps=eps, stats=stats)


def _scale_shift_impl(x, s, b):
    y = x * s
    y += b
    return y


scale_shift_p = Primitive("scale_shift", _scale_shift_impl, elementwise=True, fmt="{0}·{1} + {2}")
scale_shift_p.defjvp(
    lambda t, ans, x, s, b: to_out_shape(t * s, ans),
    lambda t, ans, x, s, b: to_out_shape(x * t, ans),
    lambda t, ans, x, s, b: to_out_shape(t, ans),
)
scale_shift_p.defvjp(
    lambda g, ans, x, s, b: _unbroadcast(g * s, _shape(x)),
    lambda g, ans, x, s, b: _unbroadcast(g * x, _shape(s)),
    lambda g, ans, x, s, b: _unbroadcast(g, _shape(b)),
)
scale_shift_p.saving((1,), (0,), ())


shift_p = Primitive("shift", _np.add, elementwise=True, fmt="{0} + {1}")
shift_p.defjvp(lambda t, ans, x, b: to_out_shape(t, ans), lambda t, ans, x, b: to_out_shape(t, ans))
shift_p.defvjp(
    lambda g, ans, x, b: _unbroadcast(g, _shape(x)), lambda g, ans, x, b: _unbroadcast(g, _shape(b))
)
shift_p.saving((), ())


def add_channel_bias(y, bias, shape):
    """y + bias reshaped to ``shape`` (e.g. (C, 1, 1)); its cotangent sums with the fast sums."""
    return shift_p(y, wnp.reshape(bias, shape))


def _affine(y, gamma, beta, shape):
    """γ·y + β with γ, β reshaped to ``shape`` (broadcasting against y's trailing axes)."""
    if gamma is not None and beta is not None:
        return scale_shift_p(y, wnp.reshape(gamma, shape), wnp.reshape(beta, shape))
    if gamma is not None:
        y = y * wnp.reshape(gamma, shape)
    if beta is not None:
        y = shift_p(y, wnp.reshape(beta, shape))
    return y


# ---------------------------------------------------------------------------------------------
# Batch norm in training: one primitive for y = γ·(x − μ)/√(σ² + eps) + β with the batch
# statistics μ, σ² as further outputs, so the forward pass makes one array and the backward
# pass a few (instead of the temporaries of standardise, then scale and shift).
# ---------------------------------------------------------------------------------------------


def _dot_keep(a, b, axes):
    """Σ a·b over ``axes`` (keepdims) of two plain arrays of one shape, without the product
    as a temporary."""
    nd = a.ndim
    if a.size < 4096 or a.dtype.kind != "f" or nd > len(_LETTERS):
        return _np.sum(a * b, axis=axes, keepdims=True)
    ra = _channel_rows(a, axes)
    rb = None if ra is None or b.dtype != a.dtype else _channel_rows(b, axes)
    if rb is not None:  # channels-last: the product, then one matrix-vector product
        return (_np.ones(ra.shape[0], a.dtype) @ (ra * rb)).reshape(_keep_shape(a, axes))
    src = _LETTERS[:nd]
    kept = "".join(c for i, c in enumerate(src) if i - nd not in axes)
    out = _np.einsum(f"{src},{src}->{kept}", a, b)
    return out.reshape(tuple(1 if i - nd in axes else n for i, n in enumerate(a.shape)))


def _count(shape, axes):
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _wide(rows):
    """An (M, C) matrix as a wider (M/k, k·C) view, k ≤ 32 dividing M: per-channel
    broadcasts then run NumPy's inner loops over k·C elements instead of C."""
    m = rows.shape[0]
    k = 32
    while m % k:
        k //= 2
    return rows.reshape(m // k, k * rows.shape[1]), k


def _bn_impl_rows(x, rows, gamma, beta, axes, eps):
    """``_bn_impl`` for channels-last ``x`` seen as ``rows`` (M, C): sums by matrix-vector
    products, broadcasts on the wide view; the output has ``x``'s memory order."""
    m, c = rows.shape
    dt = x.dtype
    inv_n = dt.type(1 / m)
    ones = _np.ones(m, dt)
    mean = (ones @ rows) * inv_n
    xw, k = _wide(rows)
    y = xw - _np.tile(mean, k)
    var = (_np.ones(y.shape[0], dt) @ (y * y)).reshape(k, c).sum(0) * inv_n
    scale = gamma.reshape(c).astype(dt, copy=False) / _np.sqrt(var + _np.asarray(eps, dt))
    y *= _np.tile(scale, k)
    y += _np.tile(beta.reshape(c).astype(dt, copy=False), k)
    nd = x.ndim
    last = (x.shape[0],) + x.shape[2:] + (c,)
    y = y.reshape(last).transpose((0, nd - 1) + tuple(range(1, nd - 1)))
    keep = _keep_shape(x, axes)
    return y, mean.reshape(keep), var.reshape(keep)


def _bn_impl(x, gamma, beta, axes, eps):
    if x.size >= 4096 and _np.size(gamma) == x.shape[1] and _np.size(beta) == x.shape[1]:
        rows = _channel_rows(x, axes)
        if rows is not None:
            return _bn_impl_rows(x, rows, gamma, beta, axes, eps)
    inv_n = x.dtype.type(1 / _count(x.shape, axes))
    mean = _sum_keep_impl(x, axes) * inv_n
    y = x - mean
    var = _dot_keep(y, y, axes) * inv_n
    y *= gamma / _np.sqrt(var + _np.asarray(eps, var.dtype))
    y += beta
    return y, mean, var


def _bn_parts(x, axes, eps):
    """x − μ, x̂ and σ = √(σ² + eps), differentiably (for the rules' general path)."""
    xc = x - _mean_keep(x, axes)
    sigma = wnp.sqrt(_mean_keep(xc * xc, axes) + eps)
    return xc, xc / sigma, sigma


def _bn_jvp(tangents, ans, x, gamma, beta, axes, eps):
    """ẏ = γ·(ẋ − mean ẋ − x̂·mean(x̂ ẋ))/σ + γ̇·x̂ + β̇,  μ̇ = mean ẋ,  (σ²)˙ = 2σ·mean(x̂ ẋ)."""
    tx, tg, tb = tangents
    xc, xh, sigma = _bn_parts(x, axes, eps)
    ty = tm = tv = None
    if tx is not None:
        tm = _mean_keep(tx, axes)
        m2 = _mean_keep(xh * tx, axes)
        ty = gamma * ((tx - tm - xh * m2) / sigma)
        tv = 2.0 * sigma * m2
    xnd = len(_shape(x))
    for t, p, with_xh in ((tg, gamma, True), (tb, beta, False)):
        if t is None:
            continue
        nb = len(_shape(t)) - len(_shape(p))
        ts = _shape(t)
        t = wnp.reshape(t, ts[:nb] + (1,) * (xnd - len(_shape(p))) + ts[nb:])
        c = t * xh if with_xh else to_out_shape(t, xh)
        ty = c if ty is None else ty + c
    return ty, tm, tv


def _bn_vjp(g, ans, needed, x, gamma, beta, axes, eps):
    """x̄ = γ·(ȳ − mean ȳ − x̂·mean(x̂ ȳ))/σ + μ̄/n + 2σ̄²·(x − μ)/n,  γ̄ = Σ ȳ·x̂,  β̄ = Σ ȳ
    (sums over the normalised axes)."""
    gy, gm, gv = g
    if type(gy) is _np.ndarray and type(x) is _np.ndarray and type(gamma) is _np.ndarray:
        return _bn_vjp_plain(gy, gm, gv, ans, needed, x, gamma, axes, eps)
    n = _count(_shape(x), axes)
    out = [None, None, None]
    if 2 in needed:
        out[2] = _unbroadcast(gy, _shape(beta))
    if 0 not in needed and 1 not in needed:
        return tuple(out)
    xc, xh, sigma = _bn_parts(x, axes, eps)
    if 1 in needed:
        out[1] = _unbroadcast(gy * xh, _shape(gamma))
    if 0 in needed:
        gh = gy * gamma
        dx = (gh - _mean_keep(gh, axes) - xh * _mean_keep(gh * xh, axes)) / sigma
        out[0] = dx + gm * (1.0 / n) + xc * (gv * (2.0 / n))
    return tuple(out)


def _bn_vjp_plain(gy, gm, gv, ans, needed, x, gamma, axes, eps):
    """The same on plain arrays, with the saved statistics, two reductions and in-place
    arithmetic on fresh arrays."""
    _, mean, var = ans
    dt = x.dtype.type
    inv_n = dt(1 / _count(x.shape, axes))
    out = [None, None, None]
    s1 = _sum_keep_impl(gy, axes)
    if 2 in needed:
        out[2] = s1.reshape(gamma.shape)
    if 0 not in needed and 1 not in needed:
        return tuple(out)
    rstd = 1 / _np.sqrt(var + _np.asarray(eps, var.dtype))
    rows = _channel_rows(x, axes) if x.size >= 4096 else None
    gyr = None if rows is None or gy.dtype != x.dtype else _channel_rows(gy, axes)
    if gyr is not None:  # channels-last x and ȳ: on the wide views
        return _bn_vjp_rows(gy, gyr, gm, gv, rows, mean, rstd, s1, needed, x, gamma, inv_n, out)
    xc = x - mean
    s2 = _dot_keep(gy, xc, axes)  # Σ ȳ·(x − μ)
    if 1 in needed:
        out[1] = (s2 * rstd).reshape(gamma.shape)
    if 0 in needed:
        a = gamma * rstd  # x̄ = a·ȳ + k·(x − μ) + c, per channel
        k = -a * (s2 * inv_n) * rstd * rstd
        c = -a * (s1 * inv_n)
        if gv.any():
            k = k + gv * (2 * inv_n)
        if gm.any():
            c = c + gm * inv_n
        xc *= k
        xc += c
        xc += gy * a
        out[0] = xc
    return tuple(out)


def _bn_vjp_rows(gy, gyr, gm, gv, rows, mean, rstd, s1, needed, x, gamma, inv_n, out):
    """``_bn_vjp_plain``'s x̄ and γ̄ for channels-last x and ȳ, as their (M, C) ``rows``:
    per-channel sums by matrix-vector products, broadcasts on the wide views."""
    m, c = rows.shape
    dt = x.dtype
    xw, k = _wide(rows)
    gw = gyr.reshape(xw.shape)
    xc = xw - _np.tile(mean.reshape(c), k)
    s2 = (_np.ones(xw.shape[0], dt) @ (gw * xc)).reshape(k, c).sum(0).reshape(s1.shape)
    if 1 in needed:
        out[1] = (s2 * rstd).reshape(gamma.shape)
    if 0 in needed:
        a = gamma.reshape(s1.shape) * rstd  # x̄ = a·ȳ + kx·(x − μ) + b, per channel
        kx = -a * (s2 * inv_n) * rstd * rstd
        b = -a * (s1 * inv_n)
        if gv.any():
            kx = kx + gv * (2 * inv_n)
        if gm.any():
            b = b + gm * inv_n
        xc *= _np.tile(kx.reshape(c).astype(dt, copy=False), k)
        xc += _np.tile(b.reshape(c).astype(dt, copy=False), k)
        xc += gw * _np.tile(a.reshape(c).astype(dt, copy=False), k)
        nd = x.ndim
        last = (x.shape[0],) + x.shape[2:] + (c,)
        out[0] = xc.reshape(last).transpose((0, nd - 1) + tuple(range(1, nd - 1)))
    return tuple(out)


batch_norm_p = Primitive("batch_norm", _bn_impl, multiple_results=True, fmt="batch_norm {0}")
batch_norm_p.jvp_all = _bn_jvp
batch_norm_p.vjp_all = _bn_vjp
batch_norm_p.saving((0, 1, ANS), (0, ANS), ())


def _check_param(p, size, who, name):
    if p is not None and _np.size(primal_value(p)) != size:
        raise ValueError(f"{who}: {name} must have {size} elements, got shape {_shape(p)}")


def batch_norm(
    x: Array,
    gamma: Array | None = None,
    beta: Array | None = None,
    running_mean: Array | None = None,
    running_var: Array | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Array | tuple[Array, Array, Array]:
    """Batch normalisation over the batch and spatial axes of ``x`` (N, C, *S), per channel:

        y = γ · (x − μ) / √(σ² + eps) + β

    Training: μ, σ² are the batch statistics (biased variance), and the function returns
    ``(y, new_running_mean, new_running_var)`` with new = (1 − momentum)·old + momentum·batch
    (the running variance takes the unbiased batch variance); these are plain constants, not
    traced.  With ``running_mean``/``running_var`` None, they start at 0 and 1.
    Inference (``training=False``): μ, σ² are the running statistics and only y is returned.
    """
    xs = _shape(x)
    if len(xs) < 2:
        raise ValueError(f"batch_norm: x must be (N, C, *spatial), got shape {xs}")
    c = xs[1]
    for name, p in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)):  # fmt: skip
        _check_param(p, c, "batch_norm", name)
    shape = (c,) + (1,) * (len(xs) - 2)
    dt = _np.result_type(primal_value(x))
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(
                "batch_norm: inference (training=False) needs running_mean and running_var"
            )
        rm = wnp.reshape(wnp.astype(running_mean, dt), shape)
        rv = wnp.reshape(wnp.astype(running_var, dt), shape)
        return _affine((x - rm) / wnp.sqrt(rv + eps), gamma, beta, shape)
    axes = normalize_axes((0,) + tuple(range(2, len(xs))), len(xs))
    if gamma is not None and beta is not None and dt.kind == "f":
        g = wnp.reshape(gamma, shape)
        b = wnp.reshape(beta, shape)
        if _np.result_type(primal_value(g)) != dt:
            g = wnp.astype(g, dt)
        if _np.result_type(primal_value(b)) != dt:
            b = wnp.astype(b, dt)
        y, mean, var = batch_norm_p(x, g, b, axes=axes, eps=eps)
        stats = (_np.asarray(primal_value(mean)), _np.asarray(primal_value(var)))
    else:
        stats = _moments(_np.asarray(primal_value(x)), axes)
        y = _affine(normalize(x, axes, eps, stats), gamma, beta, shape)
    n = xs[0] * int(_np.prod(xs[2:], dtype=int))
    bm = stats[0].reshape(c)
    bv = stats[1].reshape(c) * (n / max(n - 1, 1))
    old_m = _np.zeros(c, dt) if running_mean is None else _np.asarray(primal_value(running_mean))
    old_v = _np.ones(c, dt) if running_var is None else _np.asarray(primal_value(running_var))
    new_m = ((1 - momentum) * old_m + momentum * bm).astype(old_m.dtype, copy=False)
    new_v = ((1 - momentum) * old_v + momentum * bv).astype(old_v.dtype, copy=False)
    return y, new_m.reshape(_np.shape(old_m)), new_v.reshape(_np.shape(old_v))


def layer_norm(
    x: Array,
    normalized_shape=None,
    gamma: Array | None = None,
    beta: Array | None = None,
    eps: float = 1e-5,
    axes=None,
) -> Array:
    """Layer normalisation over the trailing axes given by ``normalized_shape`` (a shape,
    as PyTorch; default: the last axis) or explicitly by ``axes``:
    y = γ·(x − μ)/√(σ² + eps) + β with μ, σ² over those axes of each sample; γ and β have
    the normalised shape (for ``axes``: the shape of x at those axes, others broadcast)."""
    xs = _shape(x)
    nd = len(xs)
    if axes is not None:
        axes = tuple(sorted(a % nd for a in ((axes,) if isinstance(axes, int) else axes)))
        pshape = tuple(xs[i] if i in axes else 1 for i in range(min(axes), nd))
    else:
        if normalized_shape is None:
            normalized_shape = xs[-1:]
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        normalized_shape = tuple(normalized_shape)
        k = len(normalized_shape)
        if k == 0 or k > nd or xs[nd - k :] != normalized_shape:
            raise ValueError(
                f"layer_norm: normalized_shape {normalized_shape} must match the trailing axes of x {xs}"
            )
        axes = tuple(range(nd - k, nd))
        pshape = normalized_shape
    size = int(_np.prod(pshape, dtype=int))
    _check_param(gamma, size, "layer_norm", "gamma")
    _check_param(beta, size, "layer_norm", "beta")
    return _affine(normalize(x, axes, eps), gamma, beta, pshape)


def group_norm(
    x: Array,
    num_groups: int,
    gamma: Array | None = None,
    beta: Array | None = None,
    eps: float = 1e-5,
) -> Array:
    """Group normalisation: the C channels of ``x`` (N, C, *S) split into ``num_groups``
    groups, each normalised over its channels and the spatial axes per sample; then the
    per-channel affine map γ, β (shape (C,))."""
    xs = _shape(x)
    if len(xs) < 2 or xs[1] % num_groups:
        raise ValueError(
            f"group_norm: C={xs[1] if len(xs) > 1 else '?'} must be divisible by num_groups={num_groups}"
        )
    c = xs[1]
    _check_param(gamma, c, "group_norm", "gamma")
    _check_param(beta, c, "group_norm", "beta")
    xg = wnp.reshape(x, (xs[0], num_groups, -1))
    y = wnp.reshape(normalize(xg, (2,), eps), xs)
    return _affine(y, gamma, beta, (c,) + (1,) * (len(xs) - 2))


def instance_norm(
    x: Array, gamma: Array | None = None, beta: Array | None = None, eps: float = 1e-5
) -> Array:
    """Instance normalisation: each channel of each sample of ``x`` (N, C, *S) normalised
    over its spatial axes; then the per-channel affine map γ, β."""
    xs = _shape(x)
    if len(xs) < 3:
        raise ValueError(f"instance_norm: x must be (N, C, *spatial), got shape {xs}")
    c = xs[1]
    _check_param(gamma, c, "instance_norm", "gamma")
    _check_param(beta, c, "instance_norm", "beta")
    y = normalize(x, tuple(range(2, len(xs))), eps)
    return _affine(y, gamma, beta, (c,) + (1,) * (len(xs) - 2))
