"""wengert.scipy.stats: densities and distribution functions against SciPy's, differentiable in
the argument and every parameter to order 2 in both modes."""

import numpy as np
import pytest

ss = pytest.importorskip("scipy.stats")

import wengert.scipy.stats as wst  # noqa: E402
from wengert import check_grads, grad, jacfwd, jacrev, vjp  # noqa: E402


def check(f, *args):
    check_grads(f, args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(f, *args)
    for ct, x in zip(pull(np.ones_like(out)), args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)


# (distribution, shape parameters, points inside the support)
CONTINUOUS = [
    (wst.norm, (), [-1.3, 0.2, 0.9, 2.5]),
    (wst.t, (3.5,), [-2.0, 0.2, 0.9, 2.5]),
    (wst.gamma, (2.5,), [0.3, 1.2, 2.0, 4.5]),
    (wst.chi2, (3.0,), [0.3, 1.2, 2.0, 4.5]),
    (wst.beta, (2.0, 1.5), [0.1, 0.35, 0.6, 0.9]),
]
METHODS = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"]


@pytest.mark.parametrize("dist,shapes,pts", CONTINUOUS, ids=lambda v: getattr(v, "name", ""))
@pytest.mark.parametrize("method", METHODS)
def test_continuous(dist, shapes, pts, method):
    ref = getattr(getattr(ss, dist.name), method)
    mine = getattr(dist, method)
    x = np.array(pts)
    loc, scale = -0.2, 1.3
    y = loc + scale * x
    np.testing.assert_allclose(
        mine(y, *shapes, loc=loc, scale=scale), ref(y, *shapes, loc=loc, scale=scale), rtol=1e-11
    )
    np.testing.assert_allclose(mine(x, *shapes), ref(x, *shapes), rtol=1e-11)
    # in x, loc, scale and every shape parameter at once
    f = lambda x, loc, scale, *sh: mine(x, *sh, loc=loc, scale=scale)
    check(f, y, np.float64(loc), np.float64(scale), *[np.float64(s) for s in shapes])


@pytest.mark.parametrize("dist,shapes,pts", CONTINUOUS, ids=lambda v: getattr(v, "name", ""))
def test_outside_support_and_bad_parameters(dist, shapes, pts):
    x = np.array([-3.0, 0.0, 1.0, 7.0])
    for method in METHODS:
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(
                getattr(dist, method)(x, *shapes),
                getattr(getattr(ss, dist.name), method)(x, *shapes),
                rtol=1e-11,
                atol=0,
            )
        g = grad(lambda v: getattr(dist, method)(v, *shapes).sum())(x)
        assert not np.any(np.isnan(g[[0, 3]])), (method, g)
    assert np.isnan(dist.logpdf(0.5, *shapes, scale=-1.0))


def test_poisson():
    k = np.array([-1.0, 0.0, 1.5, 3.0, 7.0])
    mu = 2.3
    for m in ["pmf", "logpmf", "cdf", "logcdf", "sf", "logsf"]:
        mine, ref = getattr(wst.poisson, m), getattr(ss.poisson, m)
        np.testing.assert_allclose(mine(k, mu), ref(k, mu), rtol=1e-12)
        np.testing.assert_allclose(mine(k, mu, loc=1), ref(k, mu, loc=1), rtol=1e-12)
        check(lambda mu: mine(np.array([0.0, 1.0, 3.0, 7.0]), mu), np.array([mu, 0.7, 5.0, 1.1]))
    # spelled out for the coverage scan:
    check(lambda mu: wst.poisson.pmf(3, mu) + wst.poisson.logpmf(2, mu), np.float64(mu))
    check(lambda mu: wst.poisson.cdf(3, mu) + wst.poisson.logcdf(2, mu), np.float64(mu))
    check(lambda mu: wst.poisson.sf(3, mu) + wst.poisson.logsf(2, mu), np.float64(mu))


def test_dirichlet():
    alpha = np.array([1.5, 2.0, 3.0])
    x = np.array([[0.2, 0.3, 0.05], [0.5, 0.1, 0.9]])  # K − 1 rows: the last is 1 − Σ
    np.testing.assert_allclose(wst.dirichlet.logpdf(x, alpha), ss.dirichlet.logpdf(x, alpha))
    np.testing.assert_allclose(wst.dirichlet.pdf(x, alpha), ss.dirichlet.pdf(x, alpha))
    full = np.concatenate([x, 1 - x.sum(0, keepdims=True)])
    np.testing.assert_allclose(wst.dirichlet.logpdf(full, alpha), ss.dirichlet.logpdf(full, alpha))
    check(wst.dirichlet.logpdf, x, alpha)
    check(wst.dirichlet.pdf, x[:, 0], alpha)
    np.testing.assert_allclose(wst.dirichlet(alpha).logpdf(x), ss.dirichlet(alpha).logpdf(x))
    with pytest.raises(ValueError, match="sum to 1"):
        wst.dirichlet.logpdf(full * 0.9, alpha)


@pytest.mark.parametrize("kind", ["full", "diagonal", "scalar"])
def test_multivariate_normal(kind):
    r = np.random.default_rng(0)
    mean = r.standard_normal(3)
    m = r.standard_normal((3, 3))
    cov = {"full": m @ m.T + np.eye(3), "diagonal": r.uniform(0.5, 2, 3), "scalar": 1.7}[kind]
    x = r.standard_normal((4, 3))
    for method in ("logpdf", "pdf"):
        mine = getattr(wst.multivariate_normal, method)
        ref = getattr(ss.multivariate_normal, method)
        np.testing.assert_allclose(mine(x, mean, cov), ref(x, mean, cov), rtol=1e-12)
        np.testing.assert_allclose(mine(x[0], mean, cov), ref(x[0], mean, cov), rtol=1e-12)
        if kind == "full":
            np.testing.assert_allclose(mine(x, None, cov), ref(x, None, cov), rtol=1e-12)
    if kind == "full":  # cov = M Mᵀ + I keeps every perturbation symmetric positive definite
        f = lambda x, mu, m: wst.multivariate_normal.logpdf(x, mu, m @ m.T + np.eye(3))
        check(f, x, mean, m)
        check(lambda m: wst.multivariate_normal.pdf(x[0], mean, m @ m.T + np.eye(3)), m)
    else:
        check(wst.multivariate_normal.logpdf, x, mean, np.asarray(cov, float))
    frozen = wst.multivariate_normal(mean, cov)
    np.testing.assert_allclose(frozen.logpdf(x), ss.multivariate_normal(mean, cov).logpdf(x))


def test_univariate_multivariate_normal():
    np.testing.assert_allclose(
        wst.multivariate_normal.logpdf(0.3, 0.1, 2.0), ss.multivariate_normal.logpdf(0.3, 0.1, 2.0)
    )
    x = np.array([0.3, -1.0])
    np.testing.assert_allclose(
        wst.multivariate_normal.logpdf(x, 0.1, 2.0), ss.multivariate_normal.logpdf(x, 0.1, 2.0)
    )


def test_frozen_and_positional_parameters():
    x = np.array([0.3, 1.1])
    np.testing.assert_allclose(wst.gamma(2.0, 0.1, 1.5).pdf(x), ss.gamma(2.0, 0.1, 1.5).pdf(x))
    np.testing.assert_allclose(wst.norm(1.0, 2.0).cdf(x), ss.norm(1.0, 2.0).cdf(x))
    np.testing.assert_allclose(wst.norm.ppf(x / 2, 1.0, 2.0), ss.norm.ppf(x / 2, 1.0, 2.0))
    np.testing.assert_allclose(wst.norm.isf(x / 2, 1.0, 2.0), ss.norm.isf(x / 2, 1.0, 2.0))
    check(lambda q, s: wst.norm.ppf(q, 0.5, s) + wst.norm.isf(q, 0.5, s), x / 2, np.float64(2.0))
    with pytest.raises(TypeError, match="missing shape"):
        wst.gamma.pdf(x)


def test_float32_and_jacobians():
    x = np.array([0.3, 1.1, 2.0], np.float32)
    assert wst.gamma.logpdf(x, np.float32(2.0)).dtype == np.float32
    assert wst.norm.cdf(x).dtype == np.float32
    f = lambda a: wst.gamma.cdf(np.array([0.3, 1.1, 2.0]), a)
    a = np.array([1.5, 2.0, 3.0])
    np.testing.assert_allclose(jacfwd(f)(a), jacrev(f)(a), rtol=1e-12)
