"""wengert.nn.functional (activations, dense ops, normalisation, recurrent layers, attention):
values against NumPy references, derivatives to order 2 in both modes, stability, dtypes."""

import math

import numpy as np
import pytest
from _checks import rng

import wengert
import wengert.nn.functional as F
import wengert.numpy
from wengert import check_grads, grad, hvp, jacfwd, jacrev, jvp, vjp


def check(f, *args):
    """Order-2 derivatives in both modes, and cotangents shaped and typed like the inputs."""
    check_grads(f, args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(f, *args)
    leaves = out if isinstance(out, tuple) else (out,)
    cts = pull(
        tuple(np.ones_like(o) for o in leaves) if isinstance(out, tuple) else np.ones_like(out)
    )
    for ct, x in zip(cts, args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------


def _sig(x):
    return 1 / (1 + np.exp(-x))


_erf = np.vectorize(math.erf)

ACTIVATIONS = [
    (F.relu, lambda x: np.maximum(x, 0)),
    (lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (lambda x: F.elu(x, 1.5), lambda x: np.where(x > 0, x, 1.5 * np.expm1(x))),
    (F.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    (
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    ),
    (F.sigmoid, _sig),
    (F.tanh, np.tanh),
    (F.silu, lambda x: x * _sig(x)),
    (F.softplus, lambda x: np.log1p(np.exp(x))),
    (lambda x: F.softplus(x, beta=2.0), lambda x: np.log1p(np.exp(2 * x)) / 2),
    (F.log_sigmoid, lambda x: np.log(_sig(x))),
    (F.erf, _erf),
    (lambda x: F.softmax(x, axis=0), lambda x: np.exp(x) / np.exp(x).sum(0)),
    (F.softmax, lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    (lambda x: F.log_softmax(x, axis=1), lambda x: x - np.log(np.exp(x).sum(1, keepdims=True))),
]


@pytest.mark.parametrize("f, ref", ACTIVATIONS)
def test_activation_values_derivatives_dtype(f, ref):
    r = rng(1)
    x = r.uniform(0.2, 2.0, (3, 4)) * r.choice([-1.0, 1.0], (3, 4))  # away from the kinks
    np.testing.assert_allclose(f(x), ref(x), rtol=1e-12, atol=1e-14)
    check(f, x)
    x32 = x.astype(np.float32)
    y, pull = vjp(f, x32)
    assert y.dtype == np.float32 and pull(np.ones_like(y))[0].dtype == np.float32
    _, t = jvp(f, (x32,), (np.ones_like(x32),))
    assert t.dtype == np.float32
    np.testing.assert_allclose(jacfwd(f)(x), jacrev(f)(x), atol=1e-12)


def test_activations_stable_at_extremes():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(F.sigmoid(x), [0, _sig(-50.0), 0.5, 1, 1])
        np.testing.assert_allclose(F.softplus(x), [0, np.log1p(np.exp(-50.0)), np.log(2), 50, 1000])
        np.testing.assert_allclose(
            F.log_sigmoid(x), [-1000, -50, -np.log(2), -np.log1p(np.exp(-50.0)), 0]
        )
        np.testing.assert_allclose(grad(lambda x: np.sum(F.softplus(x)))(x), F.sigmoid(x))
        s = F.softmax(np.array([[1000.0, 0.0, -1000.0]]))
        np.testing.assert_allclose(s, [[1, 0, 0]])
        np.testing.assert_allclose(F.log_softmax(np.array([1000.0, 0.0])), [0, -1000])
        np.testing.assert_allclose(F.elu(x), [-1, np.expm1(-50.0), 0, 50, 1000])
    assert F.sigmoid(np.float32(-100.0)) > 0  # the tail keeps relative precision
    x32 = np.array([-100.0, 100.0], np.float32)
    assert np.all(np.isfinite(F.softplus(x32))) and F.softplus(x32).dtype == np.float32


def test_erf_without_scipy(monkeypatch):
    import wengert.nn.functional._activations as A

    monkeypatch.setattr(A, "_erf_np", None)
    x = np.linspace(-4, 4, 9)
    np.testing.assert_allclose(F.erf(x), _erf(x), rtol=1e-15)
    assert F.erf(x.astype(np.float32)).dtype == np.float32
    check(F.gelu, x)


def test_relu_kink_and_second_derivative():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(grad(lambda x: np.sum(F.relu(x)))(x), [0, 0, 1])
    h = jacfwd(grad(lambda x: np.sum(F.relu(x) ** 2)))(x)
    np.testing.assert_array_equal(h, np.diag([0.0, 0.0, 2.0]))


def test_relu_large_arrays_keep_memory_order_nan_and_dtype():
    """The block-of-zeros fast path (sizes divisible by 1024): same values as maximum(x, 0),
    NaN kept, −∞ → 0, memory order and float32 kept, derivative the mask x > 0."""
    x = rng(3).standard_normal((4, 8, 8, 8)).astype(np.float32)
    x[0, 0, 0, :3] = [np.nan, -np.inf, np.inf]
    xl = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)  # channels-last memory
    for a in (x, xl, np.asfortranarray(x)):
        y = F.relu(a)
        np.testing.assert_array_equal(y, np.maximum(x, 0))
        assert y.dtype == np.float32 and y.strides == a.strides
        y, pull = vjp(F.relu, a)
        np.testing.assert_array_equal(pull(np.ones_like(y))[0], (x > 0).astype(np.float32))
    check(F.relu, rng(4).standard_normal((2, 512)))


def test_softmax_batched_tangents_and_axis_errors():
    x = rng(2).standard_normal((2, 3, 4))
    for ax in (0, 1, -1):
        f = lambda x, ax=ax: F.log_softmax(x, axis=ax)
        np.testing.assert_allclose(jacfwd(f)(x), jacrev(f)(x), atol=1e-12)
    with pytest.raises(np.exceptions.AxisError):
        F.softmax(x, axis=3)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(x, approximate="fast")


def test_one_hot():
    y = F.one_hot(np.array([2, 0, 1]), 3)
    np.testing.assert_array_equal(y, np.eye(3, dtype=np.float32)[[2, 0, 1]])
    assert y.dtype == np.float32
    assert F.one_hot([1], 2, dtype=np.float64).dtype == np.float64
    assert F.one_hot(np.zeros((2, 5), int), 4, axis=1).shape == (2, 4, 5)
    with pytest.raises(ValueError, match="lie in"):
        F.one_hot([3], 3)
    with pytest.raises(ValueError, match="integers"):
        F.one_hot([0.5], 3)


# ---------------------------------------------------------------------------------------------
# Dense, embedding, dropout
# ---------------------------------------------------------------------------------------------


def test_fully_connect():
    r = rng(3)
    x = r.standard_normal((2, 3, 4))
    w = r.standard_normal((5, 4))
    b = r.standard_normal(5)
    np.testing.assert_allclose(F.fully_connect(x, w, b), x @ w.T + b)
    np.testing.assert_allclose(F.fully_connect(x[0], w), x[0] @ w.T)
    check(F.fully_connect, x, w, b)
    check(F.fully_connect, x[0], w, b)
    check(F.fully_connect, x[0, 0], w, b)
    for a, c in zip(
        jacfwd(F.fully_connect, (0, 1, 2))(x, w, b), jacrev(F.fully_connect, (0, 1, 2))(x, w, b)
    ):
        np.testing.assert_allclose(a, c, atol=1e-12)
    y = F.fully_connect(x.astype(np.float32), w.astype(np.float32), b)  # float64 bias: promotes
    assert y.dtype == np.float64
    y, pull = vjp(F.fully_connect, *(a.astype(np.float32) for a in (x, w, b)))
    assert y.dtype == np.float32 and all(c.dtype == np.float32 for c in pull(np.ones_like(y)))
    with pytest.raises(ValueError, match="in_features"):
        F.fully_connect(x, w.T)
    with pytest.raises(ValueError, match="bias"):
        F.fully_connect(x, w, b[:2])


def test_embedding_repeats_and_higher_order():
    r = rng(4)
    w = r.standard_normal((5, 3))
    idx = np.array([[0, 2, 2], [4, 0, 2]])
    np.testing.assert_array_equal(F.embedding(idx, w), w[idx])
    g = grad(lambda w: np.sum(F.embedding(idx, w)))(w)
    np.testing.assert_array_equal(g[:, 0], [2, 0, 3, 0, 1])
    check(lambda w: F.embedding(idx, w) ** 2, w)
    with pytest.raises(IndexError):
        F.embedding(np.array([5]), w)
    with pytest.raises(TypeError, match="integers"):
        F.embedding(np.array([0.0]), w)


def test_dropout():
    x = np.ones((200, 50), np.float32)
    y1 = F.dropout(x, 0.3, True, np.random.default_rng(7))
    y2 = F.dropout(x, 0.3, True, np.random.default_rng(7))
    np.testing.assert_array_equal(y1, y2)
    assert y1.dtype == np.float32
    assert set(np.unique(y1)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((y1 == 0).mean() - 0.3) < 0.02 and abs(y1.mean() - 1) < 0.05
    assert F.dropout(x, 0.3, False) is x
    xs = rng(5).standard_normal((4, 3))
    mask = F.dropout(np.ones_like(xs), 0.5, True, np.random.default_rng(1))
    check(lambda x: F.dropout(x, 0.5, True, np.random.default_rng(1)), xs)
    np.testing.assert_allclose(
        grad(lambda x: np.sum(F.dropout(x, 0.5, True, np.random.default_rng(1))))(xs), mask
    )
    with pytest.raises(ValueError, match="rng"):
        F.dropout(x, 0.5, True)
    with pytest.raises(ValueError, match="p must"):
        F.dropout(x, 1.0, True, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------


def test_batch_norm_training_and_inference():
    r = rng(6)
    x = r.standard_normal((4, 3, 2, 2)) * 2 + 1
    gamma, beta = r.standard_normal(3), r.standard_normal(3)
    rm, rv = np.zeros(3), np.ones(3)
    y, nm, nv = F.batch_norm(x, gamma, beta, rm, rv, training=True, momentum=0.1)
    mu = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    ref = (x - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * gamma[
        :, None, None
    ] + beta[:, None, None]
    np.testing.assert_allclose(y, ref, atol=1e-12)
    np.testing.assert_allclose(nm, 0.1 * mu)
    np.testing.assert_allclose(nv, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1))
    assert rm.sum() == 0 and rv.sum() == 3  # inputs untouched
    yi = F.batch_norm(x, gamma, beta, nm, nv, training=False)
    np.testing.assert_allclose(
        yi,
        (x - nm[:, None, None]) / np.sqrt(nv[:, None, None] + 1e-5) * gamma[:, None, None]
        + beta[:, None, None],
    )
    check(lambda x, g, b: F.batch_norm(x, g, b, rm, rv, True)[0], x, gamma, beta)
    check(lambda x, g, b: F.batch_norm(x, g, b, nm, nv, False), x, gamma, beta)
    # the running statistics are constants: the traced call returns plain arrays
    out, pull = vjp(lambda x: F.batch_norm(x, gamma, beta, rm, rv, True)[0], x)
    _, nm2, nv2 = F.batch_norm(x, gamma, beta, None, None, True)
    np.testing.assert_allclose(nm2, nm)
    x1 = r.standard_normal((5, 3))  # (N, C): dense batch norm
    check(lambda x: F.batch_norm(x, None, None, None, None, True)[0], x1)
    with pytest.raises(ValueError, match="running"):
        F.batch_norm(x, gamma, beta, training=False)
    with pytest.raises(ValueError, match="gamma"):
        F.batch_norm(x, gamma[:2], beta)


def test_batch_norm_float32():
    x = rng(7).standard_normal((8, 4, 3, 3)).astype(np.float32)
    g, b = np.ones(4, np.float32), np.zeros(4, np.float32)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    (y, nm, nv), pull = vjp(lambda x, g, b: F.batch_norm(x, g, b, rm, rv, True), x, g, b)
    assert y.dtype == nm.dtype == nv.dtype == np.float32
    assert all(
        c.dtype == np.float32 for c in pull((np.ones_like(y), np.zeros_like(nm), np.zeros_like(nv)))
    )
    assert F.batch_norm(x, g, b, rm, rv, False).dtype == np.float32


def test_norm_jacobians_and_large_inputs():
    """Batched tangents (jacfwd) through the standardisation and affine primitives, and the
    fast (einsum) sums taken for inputs of 4096+ elements."""
    r = rng(14)
    x = r.standard_normal((3, 2, 2, 2))
    g, b = r.standard_normal(2), r.standard_normal(2)
    fns = [
        lambda x, g, b: F.batch_norm(x, g, b, None, None, True)[0],
        lambda x, g, b: F.group_norm(x, 2, g, b),
        lambda x, g, b: F.layer_norm(x, (2,), g, b),
        lambda x, g, b: F.instance_norm(x, g, b),
    ]
    for f in fns:
        for a, c in zip(jacfwd(f, (0, 1, 2))(x, g, b), jacrev(f, (0, 1, 2))(x, g, b)):
            np.testing.assert_allclose(a, c, atol=1e-12)
    big = r.standard_normal((8, 4, 16, 16)) * 3 + 2
    gb, bb = r.standard_normal(4), r.standard_normal(4)
    y, nm, nv = F.batch_norm(big, gb, bb, None, None, True, momentum=1.0)
    mu, var = big.mean(axis=(0, 2, 3)), big.var(axis=(0, 2, 3))
    ref = (big - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, ref * gb[:, None, None] + bb[:, None, None], atol=1e-12)
    np.testing.assert_allclose(nm, mu)
    np.testing.assert_allclose(nv, big.var(axis=(0, 2, 3), ddof=1))
    check_grads(lambda x, g, b: F.batch_norm(x, g, b, None, None, True)[0], (big, gb, bb))
    y32 = F.batch_norm(big.astype(np.float32), gb, bb, None, None, True)[0]
    np.testing.assert_allclose(y32, y, atol=1e-4)


def test_batch_norm_primitive_all_outputs():
    """The fused training primitive with its statistics as outputs: every cotangent path
    (ȳ, μ̄, σ̄²), each argument alone (so unread values may be stand-ins), both the plain fast
    path (large inputs) and the general one, and float32 kept."""
    from wengert.nn.functional._norm import batch_norm_p

    r = rng(15)
    for shape, axes in (
        ((4, 3, 2, 2), (-4, -2, -1)),
        ((6, 3), (-2,)),
        ((8, 4, 16, 16), (-4, -2, -1)),
    ):
        x = r.standard_normal(shape) * 2 + 1
        pshape = (shape[1],) + (1,) * (len(shape) - 2)
        g, b = r.standard_normal(pshape), r.standard_normal(pshape)
        wy = r.standard_normal(shape)

        def f(x, g, b, w=wy):
            y, m, v = batch_norm_p(x, g, b, axes=axes, eps=1e-5)
            return (y * w).sum() + (m * m).sum() + (v * m).sum() + (v * v).sum()

        order = 2 if len(shape) == 2 or shape[0] == 4 else 1
        check_grads(f, (x, g, b), order=order)
        for k in range(3):
            check_grads(lambda a, k=k: f(*[a if i == k else v for i, v in enumerate((x, g, b))]),
                        ((x, g, b)[k],), order=order)  # fmt: skip
        x32, g32, b32 = (a.astype(np.float32) for a in (x, g, b))
        (y, m, v), pull = vjp(lambda *a: batch_norm_p(*a, axes=axes, eps=1e-5), x32, g32, b32)
        assert y.dtype == m.dtype == v.dtype == np.float32
        cts = pull((np.ones_like(y), np.ones_like(m), np.ones_like(v)))
        assert all(c.dtype == np.float32 and c.shape == a.shape for c, a in zip(cts, (x, g, b)))


def test_layer_group_instance_norm():
    r = rng(8)
    x = r.standard_normal((2, 4, 3, 2))

    def ref(x, axes):
        m = x.mean(axis=axes, keepdims=True)
        return (x - m) / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)

    g, b = r.standard_normal((3, 2)), r.standard_normal((3, 2))
    np.testing.assert_allclose(F.layer_norm(x, (3, 2), g, b), ref(x, (2, 3)) * g + b, atol=1e-12)
    np.testing.assert_allclose(F.layer_norm(x), ref(x, (3,)), atol=1e-12)
    np.testing.assert_allclose(F.layer_norm(x, axes=(1, 2, 3)), ref(x, (1, 2, 3)), atol=1e-12)
    check(lambda x, g, b: F.layer_norm(x, (3, 2), g, b), x, g, b)
    gc, bc = r.standard_normal(4), r.standard_normal(4)
    xg = ref(x.reshape(2, 2, -1), (2,)).reshape(x.shape)
    np.testing.assert_allclose(
        F.group_norm(x, 2, gc, bc), xg * gc[:, None, None] + bc[:, None, None], atol=1e-12
    )
    check(lambda x, g, b: F.group_norm(x, 2, g, b), x, gc, bc)
    np.testing.assert_allclose(
        F.instance_norm(x, gc, bc),
        ref(x, (2, 3)) * gc[:, None, None] + bc[:, None, None],
        atol=1e-12,
    )
    check(lambda x, g, b: F.instance_norm(x, g, b), x, gc, bc)
    with pytest.raises(ValueError, match="divisible"):
        F.group_norm(x, 3)
    with pytest.raises(ValueError, match="trailing"):
        F.layer_norm(x, (4,))


# ---------------------------------------------------------------------------------------------
# Recurrent layers
# ---------------------------------------------------------------------------------------------


def _lstm_ref(x, h, c, wi, wh, b):
    hd = h.shape[1]
    ys = []
    for t in range(x.shape[1]):
        z = x[:, t] @ wi.T + h @ wh.T + b
        i, f, g, o = (
            _sig(z[:, :hd]),
            _sig(z[:, hd : 2 * hd]),
            np.tanh(z[:, 2 * hd : 3 * hd]),
            _sig(z[:, 3 * hd :]),
        )
        c = f * c + i * g
        h = o * np.tanh(c)
        ys.append(h)
    return np.stack(ys, 1), h, c


def _gru_ref(x, h, wi, wh, bi, bh):
    hd = h.shape[1]
    ys = []
    for t in range(x.shape[1]):
        a = x[:, t] @ wi.T + bi
        bb = h @ wh.T + bh
        r = _sig(a[:, :hd] + bb[:, :hd])
        z = _sig(a[:, hd : 2 * hd] + bb[:, hd : 2 * hd])
        n = np.tanh(a[:, 2 * hd :] + r * bb[:, 2 * hd :])
        h = (1 - z) * n + z * h
        ys.append(h)
    return np.stack(ys, 1), h


def test_lstm():
    r = rng(9)
    n, t, c, h = 2, 3, 3, 2
    x = r.standard_normal((n, t, c))
    wi, wh = r.standard_normal((4 * h, c)) * 0.5, r.standard_normal((4 * h, h)) * 0.5
    b, h0, c0 = r.standard_normal(4 * h), r.standard_normal((n, h)), r.standard_normal((n, h))
    y, hT, cT = F.lstm(x, h0, c0, wi, wh, b)
    for a, e in zip((y, hT, cT), _lstm_ref(x, h0, c0, wi, wh, b)):
        np.testing.assert_allclose(a, e, atol=1e-12)
    y0 = F.lstm(x, None, None, wi, wh, b * 0.5, bias_hh=b * 0.5)[0]
    np.testing.assert_allclose(y0, _lstm_ref(x, 0 * h0, 0 * c0, wi, wh, b)[0], atol=1e-12)
    check(lambda x, wi, wh, b, h0, c0: F.lstm(x, h0, c0, wi, wh, b), x, wi, wh, b, h0, c0)
    x32 = x.astype(np.float32)
    out = F.lstm(
        x32, None, None, wi.astype(np.float32), wh.astype(np.float32), b.astype(np.float32)
    )
    assert all(o.dtype == np.float32 for o in out)
    with pytest.raises(ValueError, match="weight_hh"):
        F.lstm(x, h0, c0, wi, wh[:, :1], b)


def test_gru():
    r = rng(10)
    n, t, c, h = 2, 3, 2, 3
    x = r.standard_normal((n, t, c))
    wi, wh = r.standard_normal((3 * h, c)) * 0.5, r.standard_normal((3 * h, h)) * 0.5
    bi, bh, h0 = r.standard_normal(3 * h), r.standard_normal(3 * h), r.standard_normal((n, h))
    y, hT = F.gru(x, h0, wi, wh, bi, bh)
    for a, e in zip((y, hT), _gru_ref(x, h0, wi, wh, bi, bh)):
        np.testing.assert_allclose(a, e, atol=1e-12)
    check(lambda x, wi, wh, bi, bh, h0: F.gru(x, h0, wi, wh, bi, bh), x, wi, wh, bi, bh, h0)
    with pytest.raises(ValueError, match="x must"):
        F.gru(x[0], h0, wi, wh)


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------


def _attn_ref(q, k, v, allowed=None):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    s = s - s.max(-1, keepdims=True)
    w = np.exp(s) / np.exp(s).sum(-1, keepdims=True)
    return w @ v


def test_attention():
    r = rng(11)
    q, k, v = (
        r.standard_normal((2, 3, 4)),
        r.standard_normal((2, 5, 4)),
        r.standard_normal((2, 5, 3)),
    )
    np.testing.assert_allclose(F.attention(q, k, v), _attn_ref(q, k, v), atol=1e-12)
    causal = np.tril(np.ones((3, 5), bool), k=2)
    np.testing.assert_allclose(
        F.attention(q, k, v, causal=True), _attn_ref(q, k, v, causal), atol=1e-12
    )
    m = r.random((2, 1, 5)) > 0.3
    m[:, :, 0] = True
    np.testing.assert_allclose(F.attention(q, k, v, mask=m), _attn_ref(q, k, v, m), atol=1e-12)
    check(lambda q, k, v: F.attention(q, k, v, mask=m, causal=True), q, k, v)
    full = np.zeros((2, 3, 5), bool)
    assert np.all(np.isfinite(F.attention(q, k, v, mask=full)))  # nothing allowed: no NaN
    out, w = F.attention(q, k, v, return_weights=True)
    np.testing.assert_allclose(w.sum(-1), 1)
    q32 = q.astype(np.float32)
    assert (
        F.attention(q32, k.astype(np.float32), v.astype(np.float32), causal=True).dtype
        == np.float32
    )
    with pytest.raises(ValueError, match="attention"):
        F.attention(q, k[..., :3], v)


def test_multi_head_attention():
    r = rng(12)
    n, tq, tk, e, heads = 2, 3, 4, 4, 2
    xq, xkv = r.standard_normal((n, tq, e)), r.standard_normal((n, tk, 3))
    wq, wk, wv, wo = (
        r.standard_normal((e, e)),
        r.standard_normal((e, 3)),
        r.standard_normal((e, 3)),
        r.standard_normal((5, e)),
    )
    bq, bo = r.standard_normal(e), r.standard_normal(5)
    pad = np.array([[False] * 4, [False, False, True, True]])
    y = F.multi_head_attention(
        xq, xkv, wq, wk, wv, wo, bq, None, None, bo, num_heads=heads, key_padding_mask=pad
    )
    q = (xq @ wq.T + bq).reshape(n, tq, heads, 2).transpose(0, 2, 1, 3)
    k = (xkv @ wk.T).reshape(n, tk, heads, 2).transpose(0, 2, 1, 3)
    v = (xkv @ wv.T).reshape(n, tk, heads, 2).transpose(0, 2, 1, 3)
    o = _attn_ref(q, k, v, ~pad[:, None, None, :]).transpose(0, 2, 1, 3).reshape(n, tq, e)
    np.testing.assert_allclose(y, o @ wo.T + bo, atol=1e-12)

    def f(xq, wq, wk, wv, wo):
        return F.multi_head_attention(xq, xq, wq, wk, wv, wo, num_heads=2, causal=True)

    check(f, xq, wq, r.standard_normal((e, e)), r.standard_normal((e, e)), wo)
    with pytest.raises(ValueError, match="divisible"):
        F.multi_head_attention(xq, xq, wq, wq, wq, wo, num_heads=3)


# ---------------------------------------------------------------------------------------------
# Higher order through a small network
# ---------------------------------------------------------------------------------------------


def test_hessian_vector_product_through_a_cnn():
    """H·v of a CNN loss in its weights (forward over reverse) equals the finite difference of
    gradients, and a physics-style input-gradient penalty differentiates once more."""
    r = rng(13)
    x = r.standard_normal((3, 1, 6, 6))
    params = (
        r.standard_normal((2, 1, 3, 3)) * 0.5,
        r.standard_normal(2),
        r.standard_normal((2, 2)) * 0.5,
    )

    def loss(w1, b1, gamma):
        h = F.conv2d(x, w1, b1, padding=1)
        h = F.batch_norm(h, gamma[0], gamma[1], None, None, True)[0]
        h = F.max_pool2d(F.gelu(h), 2)
        return np.sum(F.log_softmax(F.global_avg_pool(h), axis=1) ** 2)

    v = tuple(r.standard_normal(p.shape) for p in params)
    hv = hvp(loss, params, v)
    g = grad(loss, (0, 1, 2))
    eps = 1e-6
    plus = g(*(p + eps * d for p, d in zip(params, v)))
    minus = g(*(p - eps * d for p, d in zip(params, v)))
    for a, p_, m_ in zip(hv, plus, minus):
        np.testing.assert_allclose(a, (p_ - m_) / (2 * eps), rtol=1e-5, atol=1e-7)

    def penalty(w1):
        gx = grad(lambda x: np.sum(F.silu(F.conv2d(x, w1, padding=1))))(x)
        return np.sum(gx**2)

    check_grads(penalty, (params[0],), order=1)


@pytest.mark.parametrize("shape, perm", [((64, 8, 8, 32), (0, 3, 1, 2)), ((8, 4, 4, 4, 16), (0, 4, 1, 2, 3)), ((66, 6, 6, 20), (0, 3, 1, 2))])
def test_batch_norm_channels_last_matches_contiguous(shape, perm):
    """Channels-last activations (as convolutions return on small grids) take the matrix-view
    path of batch norm: same outputs, statistics and gradients as a C-ordered copy."""
    from wengert.nn.functional import _norm

    rng = np.random.default_rng(3)
    x = rng.normal(size=shape).astype(np.float32).transpose(perm)
    c = x.shape[1]
    g = rng.normal(size=c).astype(np.float32)
    b = rng.normal(size=c).astype(np.float32)
    nd = x.ndim
    axes = tuple(a - nd for a in [0] + list(range(2, nd)))
    assert _norm._channel_rows(x, axes) is not None
    w = rng.normal(size=x.shape).astype(np.float32)

    def loss(x, g, b):
        y, _, _ = F.batch_norm(x, g, b, training=True)
        return wengert.numpy.sum(y * w)

    got = wengert.value_and_grad(loss, argnums=(0, 1, 2))(x, g, b)
    want = wengert.value_and_grad(loss, argnums=(0, 1, 2))(np.ascontiguousarray(x), g, b)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    for a, e in zip(got[1], want[1]):
        assert a.dtype == np.float32 and a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-5)
