"""The rest of NumPy's ufuncs: derivatives to order 2 in both modes, dispatch from plain NumPy,
the zero-derivative ufuncs, and power with negative bases."""

import numpy as np
import pytest
from _checks import rng

import wengert.numpy as wnp
from wengert import check_grads, grad, hessian, is_traced, jacfwd, jacrev, jvp, vjp


def check(f, *args, order=2):
    """check_grads in both modes; the cotangents also have their inputs' shapes and dtypes."""
    check_grads(f, args, order=order, modes=("fwd", "rev"))
    out, pull = vjp(f, *args)
    cts = pull(np.ones_like(out))
    for ct, x in zip(cts, args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)


def check_jacobians(f, *args):
    nums = tuple(range(len(args)))
    for a, b in zip(jacfwd(f, argnums=nums)(*args), jacrev(f, argnums=nums)(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def ANY(r, s=(2, 3)):
    return r.standard_normal(s)


def POS(r, s=(2, 3)):
    return r.uniform(0.5, 2.0, s)


def NONZERO(r, s=(2, 3)):
    return r.uniform(0.5, 2.0, s) * r.choice([-1.0, 1.0], s)


def FRACTIONAL(r, s=(2, 3)):
    """Numbers whose quotient by NONZERO-sized divisors stays away from whole numbers."""
    return (r.integers(-4, 5, s) + r.uniform(0.2, 0.4, s)) * 1.5


# ---------------------------------------------------------------------------------------------
# Unary ufuncs
# ---------------------------------------------------------------------------------------------

UNARY = [
    (wnp.cbrt, NONZERO),
    (wnp.exp2, ANY),
    (wnp.log2, POS),
    (wnp.log10, POS),
    (wnp.sinc, ANY),
    (wnp.fabs, NONZERO),
    (wnp.deg2rad, ANY),
    (wnp.radians, ANY),
    (wnp.rad2deg, ANY),
    (wnp.degrees, ANY),
    (lambda x: wnp.frexp(x)[0], NONZERO),
    (lambda x: wnp.modf(x)[0], FRACTIONAL),
]


@pytest.mark.parametrize("f, domain", UNARY, ids=lambda p: getattr(p, "__name__", ""))
def test_unary(f, domain):
    x = domain(rng())
    check(f, x)
    check_jacobians(f, x)


@pytest.mark.parametrize("f, domain", UNARY, ids=lambda p: getattr(p, "__name__", ""))
def test_unary_float32_and_values(f, domain):
    x = domain(rng(1)).astype(np.float32)
    name = getattr(f, "__name__", "")
    if name in ("cbrt", "exp2", "log2", "log10", "sinc", "fabs", "deg2rad", "rad2deg"):
        np.testing.assert_array_equal(f(x), getattr(np, name)(x))  # NumPy's own values
    g = grad(lambda a: wnp.sum(f(a)))(x)
    assert g.dtype == np.float32
    _, t = jvp(f, (x,), (np.ones_like(x),))
    assert t.dtype == np.float32


@pytest.mark.parametrize(
    "f",
    [wnp.exp2, wnp.log2, wnp.log10, wnp.sinc, wnp.cbrt, lambda z: wnp.angle(z) * z],
    ids=["exp2", "log2", "log10", "sinc", "cbrt-of-real-part", "angle"],
)
def test_unary_complex(f):
    r = rng(2)
    z = r.uniform(0.5, 1.5, (2, 2)) + 1j * r.uniform(0.5, 1.5, (2, 2))
    if f is wnp.cbrt:  # cbrt is real-only: take it of the real part
        check(lambda w: wnp.cbrt(wnp.real(w)) * w, z)
    else:
        check(f, z)


def test_sinc_at_zero_to_high_order():
    # sinc(x) = 1 − (πx)²/6 + (πx)⁴/120 − ...: sinc′(0) = 0, sinc″(0) = −π²/3, sinc⁗(0) = π⁴/5
    d1 = grad(wnp.sinc)
    d2 = grad(d1)
    d3 = grad(d2)
    d4 = grad(d3)
    x0 = np.float64(0.0)
    assert d1(x0) == 0.0
    np.testing.assert_allclose(d2(x0), -np.pi**2 / 3, rtol=1e-12)
    assert d3(x0) == 0.0
    np.testing.assert_allclose(d4(x0), np.pi**4 / 5, rtol=1e-12)
    # away from 0 the closed form agrees with finite differences, and near 0 it is continuous
    check(wnp.sinc, np.array([0.0, 1e-3, -0.5, 1.0, 2.5]))
    np.testing.assert_allclose(d2(np.float64(1e-4)), -np.pi**2 / 3, rtol=1e-6)


def test_cbrt_at_zero_is_infinite_but_strong_zero():
    assert np.isinf(grad(wnp.cbrt)(np.float64(0.0)))
    f = lambda x: wnp.sum(wnp.where(x != 0, wnp.cbrt(x), 0.0))
    np.testing.assert_array_equal(grad(f)(np.array([0.0, 8.0])), [0.0, 1 / 12])


# ---------------------------------------------------------------------------------------------
# Binary ufuncs, with broadcasting
# ---------------------------------------------------------------------------------------------

BINARY = [
    (wnp.arctan2, ANY, NONZERO),
    (wnp.hypot, NONZERO, ANY),
    (wnp.logaddexp, ANY, ANY),
    (wnp.logaddexp2, ANY, ANY),
    (wnp.float_power, POS, ANY),
    (wnp.fmod, FRACTIONAL, POS),
    (wnp.remainder, FRACTIONAL, NONZERO),
    (wnp.mod, FRACTIONAL, POS),
    (wnp.copysign, NONZERO, NONZERO),
    (wnp.fmax, ANY, ANY),
    (wnp.fmin, ANY, ANY),
    (lambda x, y: wnp.divmod(x, y)[1], FRACTIONAL, POS),
]

SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((), (2, 3)), ((2, 1), (1, 3))]


@pytest.mark.parametrize("f, dx, dy", BINARY, ids=lambda p: getattr(p, "__name__", ""))
@pytest.mark.parametrize("sx, sy", SHAPES, ids=str)
def test_binary(f, dx, dy, sx, sy):
    r = rng(3)
    x, y = np.asarray(dx(r, sx)), np.asarray(dy(r, sy))
    check(f, x, y)
    check_jacobians(f, x, y)


@pytest.mark.parametrize("f, dx, dy", BINARY, ids=lambda p: getattr(p, "__name__", ""))
def test_binary_with_constant_and_float32(f, dx, dy):
    r = rng(4)
    x, y = dx(r), dy(r)
    check(lambda a: f(a, y), x)
    check(lambda b: f(x, b), y)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    gx, gy = grad(lambda a, b: wnp.sum(f(a, b)), argnums=(0, 1))(x32, y32)
    want = np.float64 if f is wnp.float_power else np.float32
    assert f(x32, y32).dtype == want and gx.dtype == gy.dtype == np.float32


def test_binary_values_match_numpy():
    r = rng(5)
    x, y = FRACTIONAL(r), NONZERO(r)
    for name in ("arctan2", "hypot", "logaddexp", "logaddexp2", "fmod", "remainder",
                 "copysign", "fmax", "fmin", "heaviside"):  # fmt: skip
        np.testing.assert_array_equal(getattr(wnp, name)(x, y), getattr(np, name)(x, y))


def test_arctan2_hypot_formulas():
    y, x = np.array([1.0, -2.0, 0.5]), np.array([2.0, 1.0, -3.0])
    gy, gx = grad(lambda a, b: wnp.sum(wnp.arctan2(a, b)), argnums=(0, 1))(y, x)
    np.testing.assert_allclose(gy, x / (x**2 + y**2))
    np.testing.assert_allclose(gx, -y / (x**2 + y**2))
    gx, gy = grad(lambda a, b: wnp.sum(wnp.hypot(a, b)), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, x / np.hypot(x, y))
    np.testing.assert_allclose(gy, y / np.hypot(x, y))


def test_logaddexp_infinities():
    # the weights are the softmax of (x, y); with both at -inf (or one at +inf) the limits
    ninf = -np.inf
    x = np.array([ninf, ninf, np.inf, 0.0, np.inf])
    y = np.array([ninf, 0.0, 1.0, ninf, np.inf])
    gx, gy = grad(lambda a, b: wnp.sum(wnp.logaddexp(a, b)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [0.5, 0.0, 1.0, 1.0, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 1.0, 0.0, 0.0, 0.5])
    gx, gy = grad(lambda a, b: wnp.sum(wnp.logaddexp2(a, b)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [0.5, 0.0, 1.0, 1.0, 0.5])


def test_fmod_remainder_quotients():
    x, y = np.array([7.5, -7.5, 7.5, -7.5]), np.array([2.0, 2.0, -2.0, -2.0])
    for f in (wnp.fmod, wnp.remainder):
        gy = grad(lambda b: wnp.sum(f(x, b)))(y)
        q = (x - getattr(np, f.name)(x, y)) / y
        np.testing.assert_array_equal(gy, -q)
        np.testing.assert_array_equal(grad(lambda a: wnp.sum(f(a, y)))(x), np.ones(4))


def test_heaviside():
    x = np.array([-1.0, 0.0, 2.0, 0.0])
    h = np.array([0.3, 0.5, 0.7, 0.2])
    out = wnp.heaviside(x, h)
    np.testing.assert_array_equal(out, np.heaviside(x, h))
    _, t = jvp(lambda a: wnp.heaviside(a, h), (x,), (np.ones(4),))
    np.testing.assert_array_equal(t, np.zeros(4))  # piecewise constant in x
    np.testing.assert_array_equal(grad(lambda a: wnp.sum(wnp.heaviside(a, h)))(x), np.zeros(4))
    np.testing.assert_array_equal(grad(lambda b: wnp.sum(wnp.heaviside(x, b)))(h), [0, 1, 0, 1])
    check(lambda b: wnp.heaviside(x, b), h)
    check(lambda b: wnp.heaviside(x[:, None], b) * b, np.array([0.2, 0.9]))


def test_copysign_at_zero_and_y_constant():
    x = np.array([-2.0, 0.0, 3.0])
    g = grad(lambda a: wnp.sum(wnp.copysign(a, -1.0)))(x)
    np.testing.assert_array_equal(g, [1.0, 0.0, -1.0])  # |x|'s subgradient 0 at x = 0
    assert np.all(grad(lambda b: wnp.sum(wnp.copysign(x, b)))(np.array([1.0, -1.0, 2.0])) == 0)


def test_fmax_fmin_nan_and_ties():
    nan = np.nan
    x = np.array([nan, 1.0, 2.0, nan, 3.0])
    y = np.array([1.0, nan, 2.0, nan, 0.0])
    for f in (wnp.fmax, wnp.fmin):
        gx, gy = grad(lambda a, b: wnp.sum(wnp.where(np.isnan(f(x, y)), 0.0, f(a, b))),
                      argnums=(0, 1))(x, y)  # fmt: skip
        # the non-NaN argument takes the derivative; ties share ½; both NaN: neither
        np.testing.assert_array_equal(gx, [0.0, 1.0, 0.5, 0.0, 1.0 if f is wnp.fmax else 0.0])
        np.testing.assert_array_equal(gy, [1.0, 0.0, 0.5, 0.0, 0.0 if f is wnp.fmax else 1.0])
        _, t = jvp(f, (x, y), (np.ones(5), np.zeros(5)))
        np.testing.assert_array_equal(t[:3], [0.0, 1.0, 0.5])


def test_ldexp_frexp():
    r = rng(6)
    x = r.standard_normal((2, 3)) * 100
    i = r.integers(-5, 6, (2, 3))
    check(lambda a: wnp.ldexp(a, i), x)
    check(lambda a: wnp.ldexp(a, np.array([1, -2, 3])), x)  # broadcast exponent
    np.testing.assert_array_equal(wnp.ldexp(x, i), np.ldexp(x, i))
    np.testing.assert_array_equal(grad(lambda a: wnp.sum(wnp.ldexp(a, i)))(x), np.ldexp(1.0, i))
    m, e = wnp.frexp(x)
    np.testing.assert_array_equal(m, np.frexp(x)[0])
    np.testing.assert_array_equal(e, np.frexp(x)[1])
    np.testing.assert_array_equal(grad(lambda a: wnp.sum(wnp.frexp(a)[0]))(x), 2.0 ** -e)
    with pytest.raises(TypeError, match="integer"):
        wnp.ldexp(x, 1.5)


def test_modf_divmod():
    x = np.array([-2.5, 0.75, 3.25])
    frac, whole = wnp.modf(x)
    np.testing.assert_array_equal(frac, np.modf(x)[0])
    np.testing.assert_array_equal(whole, np.modf(x)[1])
    np.testing.assert_array_equal(grad(lambda a: wnp.sum(wnp.modf(a)[0]))(x), np.ones(3))
    q, rem = wnp.divmod(x, 0.5 + x * 0)
    np.testing.assert_array_equal(q, np.divmod(x, 0.5)[0])
    np.testing.assert_array_equal(rem, np.divmod(x, 0.5)[1])


# ---------------------------------------------------------------------------------------------
# Plain NumPy code reaches all of them through __array_ufunc__ / __array_function__
# ---------------------------------------------------------------------------------------------


def test_dispatch_from_plain_numpy():
    r = rng(7)
    x, y = POS(r), NONZERO(r)

    def f(a, b):
        out = np.arctan2(a, b) + np.hypot(a, b) + np.logaddexp(a, b) + np.logaddexp2(a, b)
        out = out + np.float_power(a, b) + np.fmod(a, b) + np.remainder(a, b) + np.mod(a, b)
        out = out + np.cbrt(b) + np.deg2rad(a) + np.rad2deg(a) + np.radians(a) + np.degrees(a)
        out = out + np.exp2(a) + np.log2(a) + np.log10(a) + np.fabs(b) + np.fmax(a, b)
        out = out + np.fmin(a, b) + np.heaviside(b, a) + np.copysign(a, b) + np.sinc(a)
        out = out + np.ldexp(a, 2) + np.frexp(a)[0] + np.modf(a)[0] + np.divmod(a, b)[1]
        out = out + np.round(a, 1) + np.around(a) + np.fix(a) + np.spacing(a) + np.pow(a, 2.0)
        return out * np.sign(b) + np.isreal(a) + np.iscomplex(a) + np.isposinf(a) + np.isneginf(b)

    check(f, x, y, order=1)
    want = f(x, y)
    np.testing.assert_allclose(grad(lambda a, b: np.sum(f(a, b)))(x, y), jacfwd(
        lambda a: np.sum(f(a, y)))(x))  # fmt: skip
    assert want.shape == (2, 3)


@pytest.mark.skipif(not hasattr(np, "matvec"), reason="NumPy < 2.2 has no matvec/vecmat")
def test_contraction_ufuncs():
    r = rng(10)
    a, v, w = r.standard_normal((2, 3, 4)), r.standard_normal(4), r.standard_normal(3)
    z, u = a + 1j * r.standard_normal(a.shape), w + 0.5j * w[::-1]
    for f, args in [(np.vecdot, (a, v)), (np.vecdot, (z, z)), (np.matvec, (a, v)),
                    (np.vecmat, (w, a)), (np.vecmat, (u, z))]:  # fmt: skip
        np.testing.assert_allclose(jvp(f, args, args)[0], f(*args))
        check_grads(f, args, order=2)


def test_unsupported_ufunc_names_itself():
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="nextafter"):
        grad(lambda a: np.sum(np.nextafter(a, 0.0)))(x)


# ---------------------------------------------------------------------------------------------
# The zero-derivative ufuncs and functions
# ---------------------------------------------------------------------------------------------

CONSTANT = [
    lambda a: wnp.floor(a), lambda a: wnp.ceil(a), lambda a: wnp.rint(a),
    lambda a: wnp.trunc(a), lambda a: wnp.round(a, 1), lambda a: wnp.around(a),
    lambda a: wnp.fix(a), lambda a: wnp.sign(a), lambda a: wnp.spacing(a),
    lambda a: wnp.floor_divide(a, 0.3), lambda a: wnp.divmod(a, 0.3)[0],
    lambda a: wnp.frexp(a)[1], lambda a: wnp.modf(a)[1],
    lambda a: wnp.less(a, 0.1), lambda a: a >= 0.2, lambda a: wnp.equal(a, a),
    lambda a: wnp.logical_and(a > 0, a < 1), lambda a: wnp.logical_not(a > 0),
    lambda a: wnp.isreal(a), lambda a: wnp.isposinf(a), lambda a: wnp.angle(a),
]  # fmt: skip


@pytest.mark.parametrize("f", CONSTANT)
def test_zero_derivative(f):
    x = rng(8).standard_normal(5)
    g = grad(lambda a: wnp.sum(f(a) * 1.0 + a))(x)
    np.testing.assert_array_equal(g, np.ones(5))
    _, t = jvp(lambda a: f(a) * 1.0 + a, (x,), (np.ones(5),))
    np.testing.assert_array_equal(t, np.ones(5))
    assert not is_traced(f(x))


def test_complex_sign_is_differentiable():
    # NumPy 2: sign(z) = z/|z| for complex z; 0 at z = 0 (the subgradient)
    r = rng(9)
    z = r.standard_normal((2, 2)) + 1j * r.standard_normal((2, 2))
    np.testing.assert_allclose(wnp.sign(z), np.sign(z))
    check(wnp.sign, z)
    _, pull = vjp(wnp.sign, np.array([0j, 1 + 1j]))
    assert np.all(np.isfinite(pull(np.ones(2, complex))[0]))


# ---------------------------------------------------------------------------------------------
# power: negative bases, integer exponents, zero bases
# ---------------------------------------------------------------------------------------------


def test_power_negative_base_integer_exponent():
    x = np.array([-2.0, -0.5, -1.5, 3.0])
    for y in (2, 3, -1, -2, 2.0, 3.0):
        check(lambda a: a**y, x)
        np.testing.assert_allclose(grad(lambda a: wnp.sum(a**y))(x), y * x ** (y - 1))
    yarr = np.array([2.0, 3.0, -1.0, 0.5])
    check(lambda a: wnp.power(a, yarr), x)


def test_power_exponent_derivative_at_negative_base_does_not_poison():
    # d/dy x**y at x < 0 is undefined (x**y is real only at whole y); wengert gives
    # x**y·log|x| (the y-derivative of Re x**y there), which is finite, so a forward pass that
    # carries both directions at once (jacfwd) keeps the x-derivative intact
    x = np.array([-2.0, -0.5, 3.0])
    y = np.array([3.0, 2.0, 1.5])
    jx, jy = jacfwd(wnp.power, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(np.diag(jx), y * x ** (y - 1))
    np.testing.assert_allclose(np.diag(jy), x**y * np.log(np.abs(x)))
    rx, ry = jacrev(wnp.power, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(rx, jx)
    np.testing.assert_allclose(ry, jy)
    # a fractional exponent at a negative base: NaN value and derivative, as NumPy
    with np.errstate(invalid="ignore"):
        g = grad(lambda a: wnp.sum(a**0.5))(np.array([-1.0]))
    assert np.isnan(g[0])


def test_power_zero_base():
    x = np.array([0.0, 2.0])
    assert grad(lambda a: wnp.sum(a**0))(x).tolist() == [0.0, 0.0]
    assert grad(lambda a: wnp.sum(a**1.0))(x).tolist() == [1.0, 1.0]
    # d/dy 0**y := 0 for every y (x**y·log x with log 0 taken as 0), never NaN
    for y in (2.0, 0.0, -1.0):
        with np.errstate(divide="ignore"):
            g = grad(lambda b: wnp.sum(wnp.power(np.array([0.0]), b)))(np.array([y]))
        assert g[0] == 0.0
    with np.errstate(divide="ignore"):
        g = grad(lambda b: 0.0**b)(np.float64(-1.0))  # a Python base
    assert g == 0.0


def test_power_complex_exponent_with_negative_real_base():
    x = np.array([-2.0, 1.5])
    y = np.array([0.5 + 0.3j, 2.0 - 1j])
    check(lambda b: wnp.power(x.astype(complex), b), y)
    _, t = jvp(lambda b: wnp.power(x, b), (y,), (np.ones(2, complex),))
    np.testing.assert_allclose(t, x.astype(complex) ** y * np.log(x.astype(complex)))


def test_float_power_promotes():
    x = np.array([1.5, 2.0], np.float32)
    out = wnp.float_power(x, 2)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.float_power(x, 2))
    g = grad(lambda a: wnp.sum(wnp.float_power(a, 3)))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 3 * x.astype(float) ** 2, rtol=1e-6)


def test_nan_free_hessians_at_edges():
    # second derivatives at singular points come out finite where a strong zero applies
    x = np.array([0.0, 1.0])
    h = hessian(lambda a: wnp.sum(wnp.where(a > 0, wnp.log2(a) + wnp.log10(a), 0.0)))(x)
    assert np.all(np.isfinite(h))
