"""Coverage of NumPy's reductions: cumulative sums and products, diff, average, ptp, the NaN
reductions, median, quantile and percentile; values against NumPy, derivatives by
check_grads in both modes to order 2, Jacobians forward against reverse."""

import warnings

import numpy as np
import pytest
from _checks import rng

import wengert.numpy as wnp
from wengert import check_grads, grad, jacfwd, jacrev, jvp, vjp


def check(f, *args, ref=None, jac=True):
    """Value against ``ref`` (NumPy), derivatives to order 2 in both modes (composed with sin so
    second derivatives are not trivially zero), cotangent shapes/dtypes, jacfwd == jacrev."""
    if ref is not None:
        np.testing.assert_allclose(f(*args), ref(*args), rtol=1e-12, atol=1e-14)
    g = lambda *a: wnp.sin(f(*a))
    check_grads(g, args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(g, *args)
    for ct, x in zip(pull(np.ones_like(out)), args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)
    if jac:
        nums = tuple(range(len(args)))
        for a, b in zip(jacfwd(g, argnums=nums)(*args), jacrev(g, argnums=nums)(*args)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


X = rng().standard_normal((3, 4))
X3 = rng(1).standard_normal((2, 3, 4))

# ---------------------------------------------------------------------------------------------
# cumsum, cumprod
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, -3])
def test_cumulative(name, axis):
    f = getattr(wnp, name)
    ref = getattr(np, name)
    check(lambda a: f(a, axis=axis), X3, ref=lambda a: ref(a, axis=axis), jac=axis in (None, -1))


def test_cumulative_scalar_and_dtype():
    check(lambda a: wnp.cumsum(a), np.float64(0.3), ref=np.cumsum)
    x32 = X.astype(np.float32)
    assert wnp.cumprod(x32, 1).dtype == np.float32
    assert grad(lambda a: wnp.cumprod(a, 1).sum())(x32).dtype == np.float32
    assert jvp(lambda a: wnp.cumsum(a, dtype=np.float64), (x32,), (x32,))[1].dtype == np.float64
    with pytest.raises(TypeError, match="out="):
        wnp.cumsum(X, out=np.empty(12))


@pytest.mark.parametrize(
    "row",
    [
        [0.0, 1.3, -0.7, 2.0],  # zero first
        [1.3, 0.0, -0.7, 2.0],  # one zero
        [1.3, -0.7, 2.0, 0.0],  # zero last
        [1.3, 0.0, -0.7, 0.0, 2.0],  # two zeros
        [0.0, 0.0, 1.5, 0.0],  # three zeros
    ],
    ids=str,
)
def test_cumprod_with_zeros(row):
    x = np.array(row)
    check(lambda a: wnp.cumprod(a), x, ref=np.cumprod)
    # the Jacobian: ∂y_i/∂x_j = Π_{k ≤ i, k ≠ j} x_k (j ≤ i), 0 above
    n = len(row)
    expected = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            expected[i, j] = np.prod([x[k] for k in range(i + 1) if k != j])
    np.testing.assert_allclose(jacrev(wnp.cumprod)(x), expected, atol=1e-15)
    np.testing.assert_allclose(jacfwd(wnp.cumprod)(x), expected, atol=1e-15)


def test_cumprod_zeros_2d_and_complex():
    x = X.copy()
    x[0, 1] = x[2, 0] = x[2, 3] = x[1, 3] = 0.0
    check(lambda a: wnp.cumprod(a, axis=1), x, ref=lambda a: np.cumprod(a, axis=1))
    check(lambda a: wnp.cumprod(a, axis=0), x, ref=lambda a: np.cumprod(a, axis=0))
    z = X + 1j * X[::-1]
    z[1, 2] = 0
    check_grads(lambda a: wnp.cumprod(a, axis=1), (z,), order=2)
    check_grads(lambda a: wnp.cumsum(a, axis=0), (z,), order=2)


def test_nancumulative():
    x = X.copy()
    x[0, 1] = x[2, 2] = np.nan
    for name in ("nancumsum", "nancumprod"):
        f, ref = getattr(wnp, name), getattr(np, name)
        np.testing.assert_allclose(f(x, axis=1), ref(x, axis=1))
        g = grad(lambda a, f=f: f(a, axis=1).sum())(x)
        assert g[0, 1] == 0 and g[2, 2] == 0 and np.all(np.isfinite(g))
    check(lambda a: wnp.nancumprod(a, axis=0), X, ref=lambda a: np.nancumprod(a, axis=0))


# ---------------------------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"n": 2},
        {"n": 3, "axis": 0},
        {"axis": -2},
        {"n": 0},
        {"prepend": 0.5},
        {"append": np.ones((3, 1)), "n": 2},
        {"prepend": 1.0, "append": 2.0, "axis": 0},
    ],
    ids=str,
)
def test_diff(kw):
    check(lambda a: wnp.diff(a, **kw), X, ref=lambda a: np.diff(a, **kw))


def test_diff_traced_prepend_and_errors():
    check(
        lambda a, p: wnp.diff(a, prepend=p, append=p[:, ::-1]),
        X,
        X[:, :2],
        ref=lambda a, p: np.diff(a, prepend=p, append=p[:, ::-1]),
    )
    check(lambda a, p: wnp.diff(a, prepend=p), X, np.float64(0.4))
    with pytest.raises(ValueError, match="non-negative"):
        wnp.diff(X, n=-1)
    with pytest.raises(ValueError, match="one dimensional"):
        wnp.diff(np.float64(1.0))
    np.testing.assert_array_equal(wnp.diff(np.array([True, False, False])), [True, False])


# ---------------------------------------------------------------------------------------------
# average, ptp
# ---------------------------------------------------------------------------------------------

W3 = rng(2).uniform(0.5, 2.0, (2, 3, 4))


@pytest.mark.parametrize(
    "axis, weights",
    [
        (None, None),
        (1, None),
        (None, W3),
        ((0, 2), W3),
        (-1, W3[0, 0]),
        (1, W3[0, :, 0]),
        ((2, 0), W3[:, 0, :].T),
    ],
    ids=["mean", "axis", "full weights", "tuple axis", "1-D weights", "1-D weights axis 1", "2-D"],
)
@pytest.mark.parametrize("keepdims", [False, True])
def test_average(axis, weights, keepdims):
    ref = lambda a: np.average(a, axis=axis, weights=weights, keepdims=keepdims)
    check(lambda a: wnp.average(a, axis=axis, weights=weights, keepdims=keepdims), X3, ref=ref)
    if weights is not None:  # traced weights too
        f = lambda a, w: wnp.average(a, axis=axis, weights=w, keepdims=keepdims)
        check(f, X3, weights, ref=lambda a, w: np.average(a, axis, w, keepdims=keepdims))


def test_average_returned_and_errors():
    avg, scl = wnp.average(X, axis=1, weights=X[0], returned=True)
    ref_avg, ref_scl = np.average(X, axis=1, weights=X[0], returned=True)
    np.testing.assert_allclose(avg, ref_avg)
    np.testing.assert_allclose(scl, ref_scl)
    check(lambda a, w: wnp.average(a, 0, w, returned=True)[1] * 2, X, X + 3)
    _, s = wnp.average(X, axis=0, returned=True)
    np.testing.assert_array_equal(s, np.average(X, axis=0, returned=True)[1])
    with pytest.raises(ZeroDivisionError):
        wnp.average(X, axis=0, weights=np.zeros(3))
    with pytest.raises(TypeError, match="Axis must be specified"):
        wnp.average(X, weights=np.ones(4))
    with pytest.raises(ValueError, match="consistent"):
        wnp.average(X, axis=0, weights=np.ones(4))
    assert wnp.average(X.astype(np.float32), axis=0).dtype == np.float32


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), ()], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_ptp(axis, keepdims):
    check(
        lambda a: wnp.ptp(a, axis=axis, keepdims=keepdims),
        X3,
        ref=lambda a: np.ptp(a, axis=axis, keepdims=keepdims),
    )


# ---------------------------------------------------------------------------------------------
# NaN-ignoring reductions
# ---------------------------------------------------------------------------------------------

X33 = rng(3).standard_normal((3, 3, 4))
XN = X33.copy()  # every slice keeps at least two numbers
XN[0, 1, 2] = XN[1, 0, 0] = XN[1, 2, 3] = np.nan

NAN_FUNCS = ["nanmax", "nanmin", "nansum", "nanmean", "nanvar", "nanstd", "nanprod"]


@pytest.mark.parametrize("name", NAN_FUNCS)
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_nan_reductions(name, axis, keepdims):
    f, ref = getattr(wnp, name), getattr(np, name)
    kw = {"axis": axis, "keepdims": keepdims}
    np.testing.assert_allclose(f(XN, **kw), ref(XN, **kw), rtol=1e-12)
    check(lambda a: f(a, **kw), XN, jac=axis is None)
    g = grad(lambda a: wnp.sum(f(a, **kw)))(XN)
    assert np.all(np.isfinite(g)) and g[0, 1, 2] == 0 and g[1, 0, 0] == 0
    check(lambda a: f(a, **kw), X33, ref=lambda a: ref(a, **kw), jac=False)  # no NaN at all


def test_nanvar_ddof_and_float32():
    check(lambda a: wnp.nanvar(a, axis=1, ddof=1), XN, ref=lambda a: np.nanvar(a, axis=1, ddof=1))
    check(lambda a: wnp.nanstd(a, axis=0, ddof=1), XN, ref=lambda a: np.nanstd(a, axis=0, ddof=1))
    x32 = XN.astype(np.float32)
    for name in NAN_FUNCS:
        assert getattr(wnp, name)(x32, axis=0).dtype == np.float32, name
        assert grad(lambda a, n=name: wnp.sum(getattr(wnp, n)(a, axis=0)))(x32).dtype == np.float32


def test_nan_all_nan_slice():
    x = X.copy()
    x[:, 1] = np.nan
    for name in ("nanmax", "nanmin", "nanmean", "nanvar"):
        f, ref = getattr(wnp, name), getattr(np, name)
        with pytest.warns(RuntimeWarning):
            out = f(x, axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_allclose(out, ref(x, axis=0))
            g = grad(lambda a, f=f: wnp.sum(wnp.where(np.isnan(out), 0.0, f(a, axis=0))))(x)
        assert np.all(np.isfinite(g)) and np.all(g[:, 1] == 0)


def test_nanmax_ties_share_equally():
    x = np.array([1.0, 3.0, np.nan, 3.0, 2.0])
    np.testing.assert_allclose(grad(wnp.nanmax)(x), [0, 0.5, 0, 0.5, 0])
    np.testing.assert_allclose(jvp(wnp.nanmin, (x,), (np.arange(5.0),))[1], 0.0)
    np.testing.assert_allclose(grad(wnp.ptp)(np.array([2.0, 2.0, 0.0])), [0.5, 0.5, -1])
    np.testing.assert_allclose(grad(wnp.amax)(np.array([2.0, 2.0, 0.0])), [0.5, 0.5, 0])


def test_prod_with_zeros_exists():
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 1.5], [1.0, 2.0, 3.0]])
    check(lambda a: wnp.prod(a, axis=1), x, ref=lambda a: np.prod(a, axis=1))
    np.testing.assert_allclose(grad(wnp.prod)(np.array([0.0, 2.0, 3.0])), [6, 0, 0])


# ---------------------------------------------------------------------------------------------
# median, quantile, percentile
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), ()], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_median(axis, keepdims):
    kw = {"axis": axis, "keepdims": keepdims}
    check(lambda a: wnp.median(a, **kw), X3, ref=lambda a: np.median(a, **kw), jac=axis is None)
    check(lambda a: wnp.median(a, **kw), X3[:, :, :3], ref=lambda a: np.median(a, **kw), jac=False)


def test_median_derivative_is_middle_share():
    np.testing.assert_allclose(grad(wnp.median)(np.array([3.0, 1.0, 2.0, 5.0])), [0.5, 0, 0.5, 0])
    np.testing.assert_allclose(grad(wnp.median)(np.array([3.0, 1.0, 2.0])), [0, 0, 1])
    x = X.copy()
    x[1, 2] = np.nan
    np.testing.assert_allclose(wnp.median(x, axis=1), np.median(x, axis=1))
    np.testing.assert_allclose(wnp.nanmedian(x, axis=1), np.nanmedian(x, axis=1))
    check(lambda a: wnp.nanmedian(a, axis=1), x, jac=False)


CONTINUOUS = [
    "linear",
    "weibull",
    "hazen",
    "median_unbiased",
    "normal_unbiased",
    "interpolated_inverted_cdf",
]
DISCRETE = [
    "lower",
    "higher",
    "nearest",
    "midpoint",
    "inverted_cdf",
    "averaged_inverted_cdf",
    "closest_observation",
]


@pytest.mark.parametrize("method", CONTINUOUS + DISCRETE)
def test_quantile_methods(method):
    q = np.array([0.0, 0.13, 0.5, 0.81, 1.0])
    for x, axis in ((X3, 1), (X3, (0, 2)), (X, None)):
        for qq in (q, 0.37):
            got = wnp.quantile(x, qq, axis=axis, method=method)
            np.testing.assert_allclose(got, np.quantile(x, qq, axis=axis, method=method))
    qi = np.array([0.13, 0.81])
    check(lambda a: wnp.quantile(a, qi, axis=1, method=method, keepdims=True), X3, jac=False)
    if method in CONTINUOUS:  # traced q: the derivative goes through the interpolation weight
        f = lambda a, p: wnp.quantile(a, p, axis=1, method=method)
        check(f, X3, qi, ref=lambda a, p: np.quantile(a, p, axis=1, method=method))
        check(lambda p: wnp.quantile(X[0], p, method=method), np.float64(0.42))


def test_quantile_weights_and_q_derivative():
    x = np.array([4.0, 1.0, 3.0, 2.0])  # sorted 1 2 3 4; q = 0.5 -> index 1.5
    np.testing.assert_allclose(grad(lambda a: wnp.quantile(a, 0.5))(x), [0, 0, 0.5, 0.5])
    np.testing.assert_allclose(grad(lambda a: wnp.quantile(a, 0.4))(x), [0, 0, 0.2, 0.8])
    # ∂/∂q of the linear method = (n − 1)·(x₍ₖ₊₁₎ − x₍ₖ₎) = 3
    np.testing.assert_allclose(grad(lambda p: wnp.quantile(x, p))(0.4), 3.0)
    np.testing.assert_allclose(grad(lambda p: wnp.percentile(x, p))(40.0), 0.03)


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)], ids=str)
def test_percentile_and_nan_quantiles(axis):
    q = np.array([10.0, 55.0, 90.0])
    check(
        lambda a, p: wnp.percentile(a, p, axis=axis, keepdims=True),
        X3,
        q,
        ref=lambda a, p: np.percentile(a, p, axis=axis, keepdims=True),
        jac=False,
    )
    for name in ("nanquantile", "nanpercentile"):
        qq = q if name == "nanpercentile" else q / 100
        f, ref = getattr(wnp, name), getattr(np, name)
        np.testing.assert_allclose(f(XN, qq, axis=axis), ref(XN, qq, axis=axis))
        check(lambda a, f=f, qq=qq: f(a, qq, axis=axis), XN, jac=False)
    nan_ref = np.quantile(XN, 0.3, axis=axis)
    np.testing.assert_allclose(wnp.quantile(XN, 0.3, axis=axis), nan_ref)


def test_quantile_dtypes_and_errors():
    x32 = X.astype(np.float32)
    assert wnp.quantile(x32, 0.3).dtype == np.float32
    assert wnp.median(x32, axis=0).dtype == np.float32
    assert grad(lambda a: wnp.percentile(a, 30.0))(x32).dtype == np.float32
    np.testing.assert_allclose(wnp.median(np.arange(5)), 2.0)
    with pytest.raises(ValueError, match="range"):
        wnp.quantile(X, 1.5)
    with pytest.raises(ValueError, match="range"):
        wnp.percentile(X, -1.0)
    with pytest.raises(ValueError, match="valid method"):
        wnp.quantile(X, 0.5, method="cubic")
    with pytest.raises(NotImplementedError, match="weights"):
        wnp.quantile(X, 0.5, method="inverted_cdf", weights=np.ones_like(X))


# ---------------------------------------------------------------------------------------------
# through plain NumPy (__array_function__)
# ---------------------------------------------------------------------------------------------

PLAIN = {
    "np.cumsum": lambda x: np.cumsum(x, axis=0),
    "np.cumprod": lambda x: np.cumprod(x),
    "np.diff": lambda x: np.diff(x, n=2, prepend=0.0),
    "np.average": lambda x: np.average(x, axis=1, weights=np.arange(1.0, 5.0)),
    "np.ptp": lambda x: np.ptp(x, axis=0),
    "np.nanmax": lambda x: np.nanmax(x, axis=1) + np.nanmin(x),
    "np.nanmean": lambda x: np.nanmean(x, axis=0) * np.nansum(x) + np.nanstd(x),
    "np.median": lambda x: np.median(x, axis=0),
    "np.quantile": lambda x: np.quantile(x, [0.2, 0.7], axis=1),
    "np.percentile": lambda x: np.percentile(x, 35.0),
    "x.cumsum()": lambda x: x.cumsum(axis=1) * x.cumprod(0),
}


@pytest.mark.parametrize("name", PLAIN)
def test_plain_numpy(name):
    f = PLAIN[name]
    check(f, X, jac=False)
    np.testing.assert_allclose(jvp(f, (X,), (X,))[0], f(X), rtol=1e-13)


def test_nan_quantile_traced_q_and_keepdims():
    f = lambda a, p: wnp.nanquantile(a, p, axis=(0, 2), keepdims=True)
    q = np.array([0.27, 0.63])  # virtual indices away from integers (kinks in q)
    np.testing.assert_allclose(f(XN, q), np.nanquantile(XN, q, axis=(0, 2), keepdims=True))
    check(f, XN, q, jac=False)
    check(lambda a: wnp.nanmedian(a, axis=-1, keepdims=True), XN, jac=False)


def test_cumprod_several_zeros_float32_and_batched():
    x = np.array([[1.5, 0.0, 2.0, 0.0, -1.0], [0.0, 0.0, 0.0, 3.0, 1.0]], np.float32)
    assert wnp.cumprod(x, axis=1).dtype == np.float32
    assert grad(lambda a: wnp.sum(wnp.cumprod(a, axis=1)))(x).dtype == np.float32
    x64 = x.astype(float)
    np.testing.assert_allclose(
        jacfwd(lambda a: wnp.cumprod(a, 1))(x64), jacrev(lambda a: wnp.cumprod(a, 1))(x64)
    )
    check(lambda a: wnp.cumprod(a, axis=0), x64.T.copy())
