"""wengert.nn.functional convolution and pooling: against direct loops, derivatives to order 2
in both modes (float64), jacfwd = jacrev through batched tangents, float32 kept, errors."""

import itertools

import numpy as np
import pytest
from _checks import rng

import wengert.nn.functional as F
from wengert import check_grads, grad, hvp, jacfwd, jacrev, vjp

# ---------------------------------------------------------------------------------------------
# Naive references: direct loops over every output element
# ---------------------------------------------------------------------------------------------


def naive_conv(x, w, stride, lo, dilation, groups, out_shape):
    n, c = x.shape[:2]
    co, cg = w.shape[:2]
    k = w.shape[2:]
    d = len(k)
    cog = co // groups
    y = np.zeros((n, co) + tuple(out_shape))
    for b, o in itertools.product(range(n), range(co)):
        g = o // cog
        for p in itertools.product(*[range(m) for m in out_shape]):
            acc = 0.0
            for ci in range(cg):
                for kk in itertools.product(*[range(m) for m in k]):
                    pos = [p[i] * stride[i] + kk[i] * dilation[i] - lo[i] for i in range(d)]
                    if all(0 <= pos[i] < x.shape[2 + i] for i in range(d)):
                        acc += x[(b, g * cg + ci) + tuple(pos)] * w[(o, ci) + kk]
            y[(b, o) + p] = acc
    return y


def naive_conv_transpose(x, w, stride, pad, dilation, groups, out_shape):
    n, cin = x.shape[:2]
    cog = w.shape[1]
    k = w.shape[2:]
    d = len(k)
    cig = cin // groups
    y = np.zeros((n, cog * groups) + tuple(out_shape))
    for b, ci in itertools.product(range(n), range(cin)):
        g = ci // cig
        for p in itertools.product(*[range(m) for m in x.shape[2:]]):
            for o in range(cog):
                for kk in itertools.product(*[range(m) for m in k]):
                    pos = [p[i] * stride[i] + kk[i] * dilation[i] - pad[i] for i in range(d)]
                    if all(0 <= pos[i] < out_shape[i] for i in range(d)):
                        y[(b, g * cog + o) + tuple(pos)] += x[(b, ci) + p] * w[(ci, o) + kk]
    return y


def naive_pool(x, k, stride, pad, op):
    d = len(k)
    sp = x.shape[2:]
    out = [(sp[i] + 2 * pad[i] - k[i]) // stride[i] + 1 for i in range(d)]
    y = np.zeros(x.shape[:2] + tuple(out))
    for b, c in itertools.product(*[range(m) for m in x.shape[:2]]):
        for p in itertools.product(*[range(m) for m in out]):
            vals = []
            for kk in itertools.product(*[range(m) for m in k]):
                pos = [p[i] * stride[i] + kk[i] - pad[i] for i in range(d)]
                if all(0 <= pos[i] < sp[i] for i in range(d)):
                    vals.append(x[(b, c) + tuple(pos)])
                else:
                    vals.append(-np.inf if op == "max" else 0.0)
            y[(b, c) + p] = max(vals) if op == "max" else sum(vals) / len(vals)
    return y


# ---------------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------------

CONV2D = [
    # (C_in, C_out, H, W, kernel, stride, padding, dilation, groups)
    (2, 3, 5, 6, (3, 3), 1, 0, 1, 1),
    (2, 3, 5, 6, (3, 2), (2, 1), 1, (1, 2), 1),
    (4, 6, 5, 5, (3, 3), 2, "same", 1, 2),
    (3, 3, 4, 5, (2, 2), 1, ((1, 0), (0, 2)), 1, 3),  # depthwise, per-side padding
    (2, 2, 6, 4, (1, 1), 3, 0, 1, 1),
    (1, 2, 6, 5, (3, 3), 1, "valid", 2, 1),
]


def _resolve(padding, spatial, k, stride, dilation):
    from wengert.nn.functional._conv import _ints, resolve_padding

    d = len(k)
    return resolve_padding(
        padding, d, spatial, k, _ints(stride, d, "s"), _ints(dilation, d, "d"), "t"
    )


@pytest.mark.parametrize("case", CONV2D)
def test_conv2d_matches_loops_and_derivatives(case):
    ci, co, h, w_, k, stride, padding, dilation, groups = case
    r = rng(1)
    x = r.standard_normal((2, ci, h, w_))
    w = r.standard_normal((co, ci // groups) + k)
    b = r.standard_normal(co)
    y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    lo, hi = _resolve(padding, (h, w_), k, stride, dilation)
    s2 = (stride, stride) if isinstance(stride, int) else stride
    d2 = (dilation, dilation) if isinstance(dilation, int) else dilation
    xpad = np.pad(x, ((0, 0), (0, 0), (0, hi[0]), (0, hi[1])))
    ref = naive_conv(xpad, w, s2, lo, d2, groups, y.shape[2:]) + b[:, None, None]
    np.testing.assert_allclose(y, ref, atol=1e-12)

    def f(x, w, b):
        return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    check_grads(f, (x, w, b), order=2, modes=("fwd", "rev"))


def test_conv1d_and_conv3d():
    r = rng(2)
    x1 = r.standard_normal((2, 2, 7))
    w1 = r.standard_normal((3, 2, 3))
    y1 = F.conv1d(x1, w1, stride=2, padding=1, dilation=1)
    np.testing.assert_allclose(
        y1, naive_conv(x1, w1, (2,), (1,), (1,), 1, y1.shape[2:]), atol=1e-12
    )
    check_grads(lambda x, w: F.conv1d(x, w, padding="same", dilation=2), (x1, w1))
    x3 = r.standard_normal((1, 2, 3, 4, 3))
    w3 = r.standard_normal((2, 1, 2, 2, 2))
    y3 = F.conv3d(x3, w3, padding=1, groups=2)
    np.testing.assert_allclose(
        y3, naive_conv(x3, w3, (1,) * 3, (1,) * 3, (1,) * 3, 2, y3.shape[2:]), atol=1e-12
    )
    check_grads(lambda x, w: F.conv3d(x, w, stride=(1, 2, 1), groups=2), (x3, w3))


@pytest.mark.parametrize(
    "case",
    [
        # (C_in, C_out/groups, H, W, kernel, stride, padding, output_padding, dilation, groups)
        (2, 3, 3, 4, (3, 3), 1, 0, 0, 1, 1),
        (2, 2, 3, 3, (4, 4), 2, 1, 0, 1, 1),
        (4, 1, 3, 2, (3, 2), (2, 3), (1, 0), (1, 2), (1, 1), 2),
        (2, 2, 2, 3, (2, 2), 1, 0, 0, 2, 1),
    ],
)
def test_conv_transpose2d(case):
    ci, cog, h, w_, k, stride, padding, opad, dilation, groups = case
    r = rng(3)
    x = r.standard_normal((2, ci, h, w_))
    w = r.standard_normal((ci, cog) + k)
    b = r.standard_normal(cog * groups)

    def f(x, w, b):
        return F.conv_transpose2d(x, w, b, stride, padding, opad, dilation, groups)

    y = f(x, w, b)
    s2 = (stride,) * 2 if isinstance(stride, int) else stride
    p2 = (padding,) * 2 if isinstance(padding, int) else padding
    d2 = (dilation,) * 2 if isinstance(dilation, int) else dilation
    o2 = (opad,) * 2 if isinstance(opad, int) else opad
    out = tuple(
        (n - 1) * s - 2 * p + dl * (kk - 1) + o + 1
        for n, s, p, dl, kk, o in zip((h, w_), s2, p2, d2, k, o2)
    )
    assert y.shape == (2, cog * groups) + out
    ref = naive_conv_transpose(x, w, s2, p2, d2, groups, out) + b[:, None, None]
    np.testing.assert_allclose(y, ref, atol=1e-12)
    check_grads(f, (x, w, b), order=2, modes=("fwd", "rev"))


def test_conv_transpose_is_adjoint_of_conv():
    """⟨conv(x, w), u⟩ = ⟨x, conv_transpose(u, w)⟩ with the same geometry."""
    r = rng(4)
    x = r.standard_normal((2, 3, 7, 6))
    w = r.standard_normal((4, 3, 3, 3))
    y = F.conv2d(x, w, stride=2, padding=1)
    u = r.standard_normal(y.shape)
    xt = F.conv_transpose2d(u, w, stride=2, padding=1, output_padding=(0, 1))
    assert xt.shape == x.shape
    np.testing.assert_allclose(np.sum(y * u), np.sum(x * xt), rtol=1e-12)
    x1 = r.standard_normal((2, 2, 9))
    w1 = r.standard_normal((3, 2, 2))
    y1 = F.conv1d(x1, w1, stride=3)
    u1 = r.standard_normal(y1.shape)
    np.testing.assert_allclose(
        np.sum(y1 * u1), np.sum(x1 * F.conv_transpose1d(u1, w1, stride=3, output_padding=1))
    )


def test_conv_jacobians_batched_tangents():
    """jacfwd pushes many tangents at once through the convolution rules (folded into the
    batch axis or looped); it must agree with jacrev, also for the derivative primitives."""
    r = rng(5)
    x = r.standard_normal((2, 2, 4, 4))
    w = r.standard_normal((2, 1, 3, 3))

    bias = r.standard_normal(2)

    def f(x, w, b=bias):
        return F.conv2d(x, w, b, padding=1, stride=(1, 2), groups=2)

    for a, b in zip(jacfwd(f, (0, 1, 2))(x, w, bias), jacrev(f, (0, 1, 2))(x, w, bias)):
        np.testing.assert_allclose(a, b, atol=1e-12)

    def loss(x, w):
        return np.sum(np.tanh(f(x, w)))

    hf = jacfwd(grad(loss, (0, 1)), (0, 1))(x, w)
    hr = jacrev(grad(loss, (0, 1)), (0, 1))(x, w)
    for row_f, row_r in zip(hf, hr):
        for a, b in zip(row_f, row_r):
            np.testing.assert_allclose(a, b, atol=1e-10)

    def t(x, w):
        return F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)

    xt = r.standard_normal((1, 2, 3, 3))
    wt = r.standard_normal((2, 2, 3, 3))
    for a, b in zip(jacfwd(t, (0, 1))(xt, wt), jacrev(t, (0, 1))(xt, wt)):
        np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
def test_derivative_primitives_batched_tangents(stride):
    """The three convolution primitives fold many directions into channels (groups kept):
    jacfwd through each, in each argument, equals jacrev."""
    from wengert.nn.functional._conv import (
        Geometry,
        conv_input_grad_p,
        conv_p,
        conv_weight_grad_p,
    )

    r = rng(15)
    geom = Geometry((stride, stride), (1, 0), (1, 1), (1, 1), 2)
    x = r.standard_normal((2, 4, 5, 4))
    w = r.standard_normal((6, 2, 3, 2))
    y = conv_p(x, w, geom=geom)
    g = r.standard_normal(y.shape)
    fns = [
        (lambda x, w: conv_p(x, w, geom=geom), (x, w)),
        (lambda g, w: conv_input_grad_p(g, w, geom=geom, spatial=(5, 4)), (g, w)),
        (lambda x, g: conv_weight_grad_p(x, g, geom=geom, kernel=(3, 2)), (x, g)),
    ]
    for f, args in fns:
        for a, b in zip(jacfwd(f, (0, 1))(*args), jacrev(f, (0, 1))(*args)):
            np.testing.assert_allclose(a, b, atol=1e-11)
        check_grads(f, args, order=2)


def test_conv_gradient_penalty_third_order():
    """A gradient penalty ‖∂L/∂x‖² differentiated in w needs conv's second derivatives; check
    its gradient (third order of the convolution) against finite differences."""
    r = rng(6)
    x = r.standard_normal((2, 1, 5, 5))
    w = r.standard_normal((2, 1, 3, 3))

    def penalty(w):
        gx = grad(lambda x: np.sum(F.softplus(F.conv2d(x, w, padding=1)) ** 2))(x)
        return np.sum(gx * gx)

    check_grads(penalty, (w,), order=1)
    v = r.standard_normal(w.shape)
    hv = hvp(lambda w: np.sum(np.tanh(F.conv2d(x, w, stride=2))), (w,), (v,))
    eps = 1e-5
    g = grad(lambda w: np.sum(np.tanh(F.conv2d(x, w, stride=2))))
    np.testing.assert_allclose(hv, (g(w + eps * v) - g(w - eps * v)) / (2 * eps), atol=1e-6)


def test_conv_float32_kept():
    r = rng(7)
    x = r.standard_normal((3, 2, 6, 6)).astype(np.float32)
    w = r.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    y, pull = vjp(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding="same"), x, w, b)
    assert y.dtype == np.float32 and y.shape == (3, 4, 3, 3)
    for ct, a in zip(pull(np.ones_like(y)), (x, w, b)):
        assert ct.dtype == np.float32 and ct.shape == a.shape
    z, pull = vjp(lambda x, w: F.conv_transpose2d(x, w, stride=2), y, w)
    assert z.dtype == np.float32
    assert all(c.dtype == np.float32 for c in pull(np.ones_like(z)))
    y64 = F.conv2d(x.astype(np.float64), w.astype(np.float64), stride=2, padding="same")
    np.testing.assert_allclose(y, y64, rtol=1e-4, atol=1e-4)


def test_conv_errors():
    x = np.zeros((2, 3, 5, 5))
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="axes"):
        F.conv2d(x[0], np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="larger"):
        F.conv2d(x, np.zeros((4, 3, 7, 7)))
    with pytest.raises(ValueError, match="padding"):
        F.conv2d(x, np.zeros((4, 3, 3, 3)), padding="full")
    with pytest.raises(ValueError, match="non-negative"):
        F.conv2d(x, np.zeros((4, 3, 3, 3)), padding=-1)
    with pytest.raises(TypeError, match="float"):
        F.conv2d(x.astype(int), np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(x, np.zeros((4, 3, 3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, np.zeros((3, 2, 3, 3)), stride=2, output_padding=2)


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "k, stride, pad",
    [((2, 2), None, 0), ((3, 3), 2, 1), ((2, 3), (1, 2), (1, 1)), ((3, 2), 1, 0)],
)
def test_pool2d_matches_loops_and_derivatives(k, stride, pad):
    r = rng(8)
    x = r.standard_normal((2, 2, 5, 6))
    s2 = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    p2 = (pad,) * 2 if isinstance(pad, int) else pad
    np.testing.assert_allclose(F.max_pool2d(x, k, stride, pad), naive_pool(x, k, s2, p2, "max"))
    np.testing.assert_allclose(
        F.avg_pool2d(x, k, stride, pad), naive_pool(x, k, s2, p2, "avg"), atol=1e-12
    )
    check_grads(lambda x: F.max_pool2d(x, k, stride, pad), (x,), order=2)
    check_grads(lambda x: F.avg_pool2d(x, k, stride, pad), (x,), order=2)


def test_pool_count_exclude_pad_1d_3d_and_global():
    r = rng(9)
    x = r.standard_normal((2, 3, 4, 5))
    y = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    np.testing.assert_allclose(y[0, 0, 0, 0], x[0, 0, :2, :2].mean())
    np.testing.assert_allclose(y[1, 2, 1, 2], x[1, 2, 0:3, 1:4].mean())
    check_grads(lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (x,))
    x1 = r.standard_normal((2, 2, 7))
    np.testing.assert_allclose(F.max_pool1d(x1, 3, 2), naive_pool(x1, (3,), (2,), (0,), "max"))
    np.testing.assert_allclose(F.avg_pool1d(x1, 2), naive_pool(x1, (2,), (2,), (0,), "avg"))
    check_grads(lambda x: F.max_pool1d(x, 3, 2, 1), (x1,))
    x3 = r.standard_normal((1, 2, 4, 4, 3))
    np.testing.assert_allclose(
        F.max_pool3d(x3, 2, 1), naive_pool(x3, (2,) * 3, (1,) * 3, (0,) * 3, "max")
    )
    check_grads(lambda x: F.avg_pool3d(x, (2, 2, 3)), (x3,))
    np.testing.assert_allclose(F.global_avg_pool(x), x.mean(axis=(2, 3)))
    np.testing.assert_allclose(
        F.global_max_pool(x, keepdims=True), x.max(axis=(2, 3), keepdims=True)
    )
    check_grads(F.global_avg_pool, (x,))
    check_grads(F.global_max_pool, (x,))


def test_max_pool_dilation_and_jacobians():
    r = rng(10)
    x = r.standard_normal((1, 2, 6, 6))
    y = F.max_pool2d(x, 2, 2, dilation=2)
    assert y.shape == (1, 2, 2, 2)  # effective window 3, stride 2
    ref = np.max(
        np.stack([x[:, :, a : a + 3 : 2, b : b + 3 : 2] for a in (0, 2) for b in (0, 2)]), 0
    )
    np.testing.assert_allclose(y, ref)

    def f(x):
        return F.max_pool2d(np.tanh(x), 3, 2, 1)

    np.testing.assert_allclose(jacfwd(f)(x), jacrev(f)(x))
    check_grads(lambda x: F.max_pool2d(x, 2, 2, dilation=2), (x,))


def test_max_pool_indices_and_unpool():
    r = rng(11)
    x = r.standard_normal((2, 3, 4, 6))
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    flat = x.reshape(2, 3, -1)
    np.testing.assert_array_equal(
        np.take_along_axis(flat, idx.reshape(2, 3, -1), -1).reshape(y.shape), y
    )
    u = F.max_unpool2d(y, idx, 2)
    assert u.shape == x.shape
    np.testing.assert_array_equal(u, np.where(u != 0, x, 0))
    assert np.count_nonzero(u) == y.size
    check_grads(lambda y: F.max_unpool2d(y, idx, 2), (y,))
    check_grads(lambda x: F.max_unpool2d(F.max_pool2d(x, 2), idx, 2), (x,))
    # overlapping windows: indices repeat, unpooling adds them up
    y2, idx2 = F.max_pool2d(x, 3, 1, return_indices=True)
    u2 = F.max_unpool2d(y2, idx2, 3, 1, output_size=x.shape)
    np.testing.assert_allclose(u2.sum(), y2.sum())
    x1 = r.standard_normal((2, 2, 8))
    y1, i1 = F.max_pool1d(x1, 2, return_indices=True)
    check_grads(lambda y: F.max_unpool1d(y, i1, 2), (y1,))


def test_pool_float32_and_errors():
    x = rng(12).standard_normal((2, 3, 6, 6)).astype(np.float32)
    for f in (lambda x: F.max_pool2d(x, 2), lambda x: F.avg_pool2d(x, 3, 1, 1), F.global_avg_pool):
        y, pull = vjp(f, x)
        assert y.dtype == np.float32 and pull(np.ones_like(y))[0].dtype == np.float32
    with pytest.raises(ValueError, match="half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="larger"):
        F.max_pool2d(x, 7)
    with pytest.raises(ValueError, match="indices"):
        F.max_unpool2d(x, np.zeros((1,), int), 2)


def test_tiling_max_pool_ties_and_jacobians():
    """Stride = kernel max pooling (the fast path): ties share the derivative equally, a
    cropped border gets none, and jacfwd equals jacrev."""
    x = np.zeros((1, 1, 5, 4))
    x[0, 0, 0, 0] = 1.0
    x[0, 0, 2:4, 2:4] = 3.0
    g = grad(lambda x: np.sum(F.max_pool2d(x, 2)))(x)
    expect = np.zeros((5, 4))
    expect[0, 0] = 1
    expect[0:2, 2:4] = 0.25
    expect[2:4, 0:2] = 0.25
    expect[2:4, 2:4] = 0.25
    np.testing.assert_array_equal(g[0, 0], expect)
    r = rng(16)
    x = r.standard_normal((2, 2, 5, 6))
    f = lambda x: F.max_pool2d(np.sin(x), (2, 3))
    np.testing.assert_allclose(jacfwd(f)(x), jacrev(f)(x), atol=1e-12)
    x32 = x.astype(np.float32)
    y, pull = vjp(lambda x: F.max_pool2d(x, 2), x32)
    assert y.dtype == np.float32 and pull(np.ones_like(y))[0].dtype == np.float32
    x3 = r.standard_normal((1, 2, 4, 4, 6))
    np.testing.assert_allclose(
        F.max_pool3d(x3, 2), naive_pool(x3, (2,) * 3, (2,) * 3, (0,) * 3, "max")
    )
    check_grads(lambda x: F.max_pool3d(x, 2), (x3,))


LAYOUTS = {
    "plain": {"_FLAT_MAX_WASTE": -1.0, "_NHWC_MIN_CHANNELS": 10**9},
    "flat": {"_FLAT_MAX_WASTE": 100.0, "_FLAT_MIN_ROWS": 0, "_NHWC_MIN_CHANNELS": 10**9},
    "channels_last": {"_NHWC_MIN_CHANNELS": 1, "_NHWC_MAX_POSITIONS": 10**9, "_NHWC_COLUMN_RUN": 0},
    "channels_last_plain_columns": {
        "_NHWC_MIN_CHANNELS": 1,
        "_NHWC_MAX_POSITIONS": 10**9,
        "_NHWC_COLUMN_RUN": 10**9,
    },
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_column_layout(monkeypatch, layout):
    """Convolutions pick a column layout (plain im2col, flat grid, channels-last) by shape;
    force each one on every geometry and check values and derivatives."""
    import wengert.nn.functional._conv as C

    for name, value in LAYOUTS[layout].items():
        monkeypatch.setattr(C, name, value)
    r = rng(17)
    cases = [
        ((2, 2, 4, 5), (3, 2, 3, 3), 1, 1, 1),
        ((1, 2, 5, 4, 3), (2, 2, 2, 3, 2), ((1, 0), (0, 1), (2, 1)), (1, 1, 2), 1),
        ((2, 3, 6, 5), (2, 3, 2, 3), 0, (2, 1), 1),
        ((2, 3, 7, 6), (4, 3, 3, 2), ((2, 1), (0, 1)), 1, (2, 3)),
        ((2, 2, 9), (3, 2, 3), 2, 2, 2),
    ]
    for xs, ws, pad, dil, stride in cases:
        x, w = r.standard_normal(xs), r.standard_normal(ws)

        def f(x, w, pad=pad, dil=dil, stride=stride):
            return C.conv_general(x, w, stride=stride, padding=pad, dilation=dil)

        y = f(x, w)
        d = len(ws) - 2
        lo, hi = _resolve(pad, xs[2:], ws[2:], stride, dil)
        xpad = np.pad(x, ((0, 0), (0, 0)) + tuple((0, h) for h in hi))
        dl = dil if isinstance(dil, tuple) else (dil,) * d
        st = stride if isinstance(stride, tuple) else (stride,) * d
        np.testing.assert_allclose(y, naive_conv(xpad, w, st, lo, dl, 1, y.shape[2:]), atol=1e-12)
        check_grads(f, (x, w))
    xt, wt = r.standard_normal((2, 3, 3, 2)), r.standard_normal((3, 2, 4, 3))
    ref = naive_conv_transpose(xt, wt, (2, 1), (1, 0), (1, 1), 1, (6, 4))
    g = lambda x, w: F.conv_transpose2d(x, w, stride=(2, 1), padding=(1, 0))
    np.testing.assert_allclose(g(xt, wt), ref, atol=1e-12)
    check_grads(g, (xt, wt))
    y32 = f(x.astype(np.float32), w.astype(np.float32))
    assert y32.dtype == np.float32


def _channels_last_memory(a):
    """The same values stored channels-last: an (N, C, *S) view of an (N, *S, C) array."""
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)


def _memory_orders(a):
    """``a`` stored C-ordered, channels-last, Fortran-ordered, and as a strided slice."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return [a, _channels_last_memory(a), np.asfortranarray(a), wide[..., ::2]]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_conv_any_memory_order(monkeypatch, layout):
    """Inputs and cotangents in any memory order give the same numbers on every column
    layout (a width-1 kernel on the flat grid once read a non-contiguous input wrongly);
    channels-last results are views of channels-last arrays."""
    import wengert.nn.functional._conv as C

    for name, value in LAYOUTS[layout].items():
        monkeypatch.setattr(C, name, value)
    r = rng(18)
    for xs, ws, pad, stride in [
        ((2, 3, 5, 4), (2, 3, 3, 1), 0, 1),
        ((2, 3, 4, 5), (4, 3, 3, 3), "same", 1),
        ((2, 2, 6, 5), (3, 2, 2, 3), 1, 2),
    ]:
        x, w = r.standard_normal(xs), r.standard_normal(ws)
        f = lambda x, w, pad=pad, stride=stride: C.conv_general(x, w, stride=stride, padding=pad)
        y, pull = vjp(f, x, w)
        g = r.standard_normal(y.shape)
        gx, gw = pull(g)
        for xo in _memory_orders(x):
            for go in _memory_orders(g)[:2]:
                y2, pull2 = vjp(f, xo, w)
                np.testing.assert_allclose(y2, y, atol=1e-12)
                for a, b in zip(pull2(go), (gx, gw)):
                    np.testing.assert_allclose(a, b, atol=1e-12)
        check_grads(f, (_channels_last_memory(x), w))
    b = r.standard_normal(w.shape[0])
    fb = lambda x, w, b: C.conv_general(x, w, b, padding=1)
    check_grads(fb, (_channels_last_memory(x), w, b))
    np.testing.assert_allclose(jacfwd(fb, 2)(x, w, b), jacrev(fb, 2)(x, w, b), atol=1e-12)
    if layout.startswith("channels_last"):
        y = C.conv_general(x, w, padding=1)
        assert np.moveaxis(y, 1, -1).flags.c_contiguous


def test_tiling_max_pool_memory_orders_and_nan():
    """Tiling max pooling reads x in its own memory order (channels-last stays channels-last)
    and gives the same values and derivatives in every order; ties share the derivative; a NaN
    is the maximum of its tile and takes its derivative."""
    r = rng(19)
    x = np.round(r.standard_normal((2, 3, 6, 4)), 1)  # rounding makes ties
    x[0, 0, :2, :2] = 0.5  # a tile of four equal maxima
    f = lambda x: F.max_pool2d(x, 2)
    y, pull = vjp(f, x)
    g = r.standard_normal(y.shape)
    (gx,) = pull(g)
    np.testing.assert_allclose(gx[0, 0, :2, :2], np.full((2, 2), g[0, 0, 0, 0] / 4))
    np.testing.assert_allclose(gx.reshape(2, 3, 3, 2, 2, 2).sum(axis=(3, 5)), g, atol=1e-12)
    for xo in _memory_orders(x):
        y2, pull2 = vjp(f, xo)
        np.testing.assert_array_equal(y2, y)
        for go in _memory_orders(g):
            np.testing.assert_allclose(pull2(go)[0], gx, atol=1e-15)
    xl = _channels_last_memory(r.standard_normal((2, 3, 4, 6)))
    assert np.moveaxis(f(xl), 1, -1).flags.c_contiguous
    check_grads(f, (xl,))
    np.testing.assert_allclose(jacfwd(f)(xl), jacrev(f)(xl), atol=1e-12)
    xn = x.copy()
    xn[1, 2, 2, 1] = np.nan
    y, pull = vjp(f, xn)
    (gn,) = pull(np.ones_like(y))
    assert np.isnan(y[1, 2, 1, 0]) and np.isnan(y).sum() == 1
    assert gn[1, 2, 2, 1] == 1 and gn[1, 2, 2:4, 0:2].sum() == 1
