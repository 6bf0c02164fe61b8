"""wengert.scipy.special: values against SciPy, derivatives to order 2 in both modes."""

import numpy as np
import pytest

sp = pytest.importorskip("scipy.special")

from _checks import rng  # noqa: E402

import wengert.scipy.special as ws  # noqa: E402
from wengert import check_grads, grad, jacfwd, jacrev, jvp, vjp  # noqa: E402


def check(f, *args, **kw):
    """Order-2 derivatives in both modes, and cotangents shaped and typed like the inputs."""
    check_grads(f, args, order=2, modes=("fwd", "rev"), **kw)
    out, pull = vjp(f, *args)
    cts = pull(np.ones_like(out))
    for ct, x in zip(cts, args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)


def ANY(r, s=(2, 3)):
    return r.standard_normal(s)


def POS(r, s=(2, 3)):
    return r.uniform(0.5, 2.5, s)


def PROB(r, s=(2, 3)):
    return r.uniform(0.1, 0.9, s)


def TWO(r, s=(2, 3)):
    return r.uniform(0.1, 1.9, s)


def NONZERO(r, s=(2, 3)):
    return r.uniform(0.3, 2.0, s) * r.choice([-1.0, 1.0], s)


UNARY = [
    (ws.gammaln, POS),
    (ws.digamma, POS),
    (ws.psi, POS),
    (ws.gamma, POS),
    (ws.erf, ANY),
    (ws.erfc, ANY),
    (ws.erfcx, ANY),
    (ws.erfinv, PROB),
    (ws.erfcinv, TWO),
    (ws.expit, ANY),
    (ws.logit, PROB),
    (ws.log_expit, ANY),
    (ws.ndtr, ANY),
    (ws.log_ndtr, ANY),
    (ws.ndtri, PROB),
    (ws.entr, POS),
    (ws.i0, ANY),
    (ws.i1, ANY),
    (ws.i0e, NONZERO),
    (ws.i1e, NONZERO),
    (ws.j0, ANY),
    (ws.j1, ANY),
]


@pytest.mark.parametrize("f,dom", UNARY, ids=lambda v: getattr(v, "__name__", ""))
def test_unary(f, dom):
    x = dom(rng())
    np.testing.assert_allclose(f(x), getattr(sp, f.__name__)(x), rtol=1e-13)
    check(f, x)
    y = f(x.astype(np.float32))
    assert y.dtype == np.float32
    assert grad(lambda a: f(a).sum())(x.astype(np.float32)).dtype == np.float32


BINARY = [
    (ws.beta, POS, POS),
    (ws.betaln, POS, POS),
    (ws.xlogy, ANY, POS),
    (ws.xlog1py, ANY, PROB),
    (ws.rel_entr, POS, POS),
    (ws.kl_div, POS, POS),
]


@pytest.mark.parametrize("f,d1,d2", BINARY, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("shapes", [((2, 3), (2, 3)), ((2, 3), (3,)), ((1, 3), (2, 1))], ids=str)
def test_binary(f, d1, d2, shapes):
    r = rng(1)
    x, y = d1(r, shapes[0]), d2(r, shapes[1])
    np.testing.assert_allclose(f(x, y), getattr(sp, f.__name__)(x, y), rtol=1e-13)
    check(f, x, y)


@pytest.mark.parametrize("n", [0, 1, 2, np.array([[1], [3]])], ids=str)
def test_polygamma(n):
    x = POS(rng())
    np.testing.assert_allclose(ws.polygamma(n, x), sp.polygamma(n, x))
    check(lambda x: ws.polygamma(n, x), x)
    assert ws.polygamma(n, x.astype(np.float32)).dtype == np.float32


BESSEL = [ws.iv, ws.ive, ws.jv, ws.yv, ws.kv, ws.kve]


@pytest.mark.parametrize("f", BESSEL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("v", [0, 1.5, np.array([[0.5], [2.0]])], ids=str)
def test_bessel(f, v):
    x = POS(rng(2))
    np.testing.assert_allclose(f(v, x), getattr(sp, f.__name__)(v, x), rtol=1e-13)
    check(lambda x: f(v, x), x)
    assert f(v, x.astype(np.float32)).dtype == np.float32


def test_ive_negative_argument():
    x = NONZERO(rng(3))
    np.testing.assert_allclose(ws.ive(1, x), sp.ive(1, x))
    check(lambda x: ws.ive(1, x), x)
    check(lambda x: ws.jv(2, x), x)


def test_jv_order_derivative_by_series():
    v, x = np.array([0.5, 1.5, 2.0, -0.5]), np.array([0.7, 3.0, 9.0, 20.0])
    h = 1e-6
    fd = (sp.jv(v + h, x) - sp.jv(v - h, x)) / (2 * h)
    np.testing.assert_allclose(grad(lambda v: ws.jv(v, x).sum())(v), fd, rtol=1e-6, atol=1e-8)
    check(lambda v, x: ws.jv(v, x), v[:3], x[:3])  # both arguments, both modes, order 2
    with pytest.raises(NotImplementedError, match="0 < x ≤ 25"):
        grad(lambda v: ws.jv(v, 30.0))(1.0)


@pytest.mark.parametrize("f", [ws.iv, ws.polygamma], ids=lambda f: f.__name__)
def test_order_argument_is_not_differentiable(f):
    with pytest.raises(NotImplementedError, match="no derivative with respect to"):
        grad(lambda v: f(v, 2.0))(1.0)
    with pytest.raises(NotImplementedError, match="stop_gradient"):
        jvp(lambda v: f(v, 2.0), (1.0,), (1.0,))


def test_zero_log_zero_conventions():
    """0·log 0 = 0, and its derivative in y at x = 0 is 0 (no NaN)."""
    assert ws.xlogy(0.0, 0.0) == 0 and ws.xlog1py(0.0, -1.0) == 0 and ws.entr(0.0) == 0
    assert grad(lambda y: ws.xlogy(0.0, y))(0.0) == 0
    assert grad(lambda y: ws.xlogy(0.0, y))(2.0) == 0
    assert grad(lambda y: ws.xlog1py(0.0, y))(-1.0) == 0
    assert grad(lambda y: ws.rel_entr(0.0, y))(0.0) == 0
    assert grad(lambda x: ws.xlogy(x, 2.0))(0.0) == np.log(2.0)
    # the y-derivative at x = 0 stays exact to second order: ∂²/∂x∂y x·log y = 1/y
    assert grad(grad(lambda x, y: ws.xlogy(x, y), 1))(0.0, 4.0) == 0.25
    check(lambda y: ws.xlogy(np.array([0.0, 1.0]), y), np.array([0.5, 2.0]))


# ---------------------------------------------------------------------------------------------
# Incomplete gamma and beta functions: derivatives in the shape parameters too
# ---------------------------------------------------------------------------------------------


def test_gammainc():
    a = np.array([0.3, 1.0, 2.5, 8.0, 3.0])
    x = np.array([0.2, 1.5, 2.0, 30.0, 0.01])
    for f in (ws.gammainc, ws.gammaincc):
        np.testing.assert_allclose(f(a, x), getattr(sp, f.__name__)(a, x), rtol=1e-14)
        check(f, a, x)
    np.testing.assert_allclose(ws.gammainc(2.0, 0.0), 0.0)
    assert grad(ws.gammainc)(2.0, 0.0) == 0


def test_gammainc_parameter_derivative_matches_differences():
    a, x, h = np.array([0.7, 4.0, 50.0]), np.array([0.5, 9.0, 45.0]), 1e-6
    fd = (sp.gammainc(a + h, x) - sp.gammainc(a - h, x)) / (2 * h)
    np.testing.assert_allclose(jacfwd(ws.gammainc)(a, x).diagonal(), fd, rtol=1e-6)


@pytest.mark.parametrize("f", [ws.betainc, ws.betaincc], ids=lambda f: f.__name__)
def test_betainc(f):
    a = np.array([0.6, 2.0, 5.0, 1.3])
    b = np.array([2.0, 0.7, 4.0, 1.1])
    x = np.array([0.1, 0.9, 0.5, 0.75])  # both sides of the series' switch point
    np.testing.assert_allclose(f(a, b, x), getattr(sp, f.__name__)(a, b, x), rtol=1e-13)
    check(f, a, b, x)


def test_stdtr():
    df = np.array([1.5, 4.0, 10.0, 3.0])
    t = np.array([-2.0, 0.3, 1.7, -0.1])
    np.testing.assert_allclose(ws.stdtr(df, t), sp.stdtr(df, t), rtol=1e-13)
    check(ws.stdtr, df, t)
    d_df, d_t = grad(ws.stdtr, argnums=(0, 1))(3.0, 0.0)  # at t = 0: F = ½ for every df
    assert d_df == 0 and np.isclose(
        d_t, np.exp(sp.gammaln(2) - sp.gammaln(1.5)) / np.sqrt(3 * np.pi)
    )


# ---------------------------------------------------------------------------------------------
# logsumexp, softmax, multigammaln
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), ()], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp(axis, keepdims):
    x = ANY(rng(4), (2, 3, 2))
    f = lambda a: ws.logsumexp(a, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(f(x), sp.logsumexp(x, axis=axis, keepdims=keepdims))
    check(f, x)


def test_logsumexp_with_b_and_sign():
    r = rng(5)
    a, b = ANY(r, (3, 4)), r.uniform(-1, 2, (4,))
    out, sign = ws.logsumexp(a, axis=1, b=b, return_sign=True)
    ref, ref_sign = sp.logsumexp(a, axis=1, b=b, return_sign=True)
    np.testing.assert_allclose(out, ref)
    np.testing.assert_array_equal(sign, ref_sign)
    check(lambda a, b: ws.logsumexp(a, axis=1, b=b, return_sign=True)[0], a, b)
    bp = np.abs(b) + 0.1
    np.testing.assert_allclose(ws.logsumexp(a, b=bp), sp.logsumexp(a, b=bp))
    check(lambda a, b: ws.logsumexp(a, b=b, keepdims=True), a, bp)


def test_logsumexp_infinities():
    a = np.array([0.0, -np.inf, 1.0])
    np.testing.assert_allclose(ws.logsumexp(a), sp.logsumexp(a))
    g = grad(ws.logsumexp)(a)
    np.testing.assert_allclose(g, sp.softmax(a))
    b = np.array([1.0, 0.0, 2.0])
    np.testing.assert_allclose(
        ws.logsumexp(np.array([0.0, 1e300, 1.0]), b=b), sp.logsumexp([0, 1e300, 1.0], b=b)
    )


@pytest.mark.parametrize("f", [ws.softmax, ws.log_softmax], ids=lambda f: f.__name__)
@pytest.mark.parametrize("axis", [None, 0, -1], ids=str)
def test_softmax(f, axis):
    x = ANY(rng(6))
    np.testing.assert_allclose(f(x, axis=axis), getattr(sp, f.__name__)(x, axis=axis))
    check(lambda x: f(x, axis=axis), x)
    assert f(x.astype(np.float32), axis=axis).dtype == np.float32


@pytest.mark.parametrize("d", [1, 2, 3])
def test_multigammaln(d):
    a = POS(rng(7)) + 1.5
    np.testing.assert_allclose(ws.multigammaln(a, d), sp.multigammaln(a, d))
    check(lambda a: ws.multigammaln(a, d), a)
    with pytest.raises(ValueError, match="greater than"):
        ws.multigammaln(0.2, 3)


def test_jacobians_agree():
    x = POS(rng(8), (3,))
    for f in (ws.gammaln, ws.erf, ws.i1e, lambda v: ws.jv(1.0, v), ws.softmax):
        np.testing.assert_allclose(jacfwd(f)(x), jacrev(f)(x), rtol=1e-12, atol=1e-14)
