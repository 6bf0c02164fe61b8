"""Element-wise primitives of wengert.numpy: derivatives to order 2 in both modes."""

import numpy as np
import pytest
from _checks import check, check_jacobians, rng

import wengert.numpy as wnp
from wengert import check_grads, grad, is_traced, jacfwd, jacrev, jvp, vjp

# ---------------------------------------------------------------------------------------------
# Unary functions, each on a domain away from its singularities
# ---------------------------------------------------------------------------------------------


def ANY(r, s=(2, 3)):
    return r.standard_normal(s)


def POS(r, s=(2, 3)):
    return r.uniform(0.5, 2.0, s)


def UNIT(r, s=(2, 3)):
    return r.uniform(-0.8, 0.8, s)


def ABOVE1(r, s=(2, 3)):
    return r.uniform(1.2, 3.0, s)


def NONZERO(r, s=(2, 3)):
    return r.uniform(0.5, 2.0, s) * r.choice([-1.0, 1.0], s)


UNARY = [
    (wnp.negative, ANY),
    (wnp.positive, ANY),
    (wnp.square, ANY),
    (wnp.reciprocal, NONZERO),
    (wnp.exp, ANY),
    (wnp.expm1, ANY),
    (wnp.log, POS),
    (wnp.log1p, POS),
    (wnp.sqrt, POS),
    (wnp.sin, ANY),
    (wnp.cos, ANY),
    (wnp.tan, UNIT),
    (wnp.arcsin, UNIT),
    (wnp.arccos, UNIT),
    (wnp.arctan, ANY),
    (wnp.sinh, ANY),
    (wnp.cosh, ANY),
    (wnp.tanh, ANY),
    (wnp.arcsinh, ANY),
    (wnp.arccosh, ABOVE1),
    (wnp.arctanh, UNIT),
    (wnp.absolute, NONZERO),
    (wnp.abs, NONZERO),
    (wnp.real, ANY),
    (wnp.conj, ANY),
    (wnp.conjugate, ANY),
    (lambda x: wnp.astype(x, np.float64), ANY),
]


@pytest.mark.parametrize("f, domain", UNARY, ids=lambda p: getattr(p, "__name__", ""))
def test_unary(f, domain):
    x = domain(rng())
    check(f, x)
    check_jacobians(f, x)


@pytest.mark.parametrize("f, domain", UNARY, ids=lambda p: getattr(p, "__name__", ""))
def test_unary_scalar_input(f, domain):
    x = domain(rng(1))[0, 0]
    check(f, np.float64(x))


def test_imag_of_real_is_zero():
    x = rng().standard_normal(3)
    assert np.all(jacrev(wnp.imag)(x) == 0)


@pytest.mark.parametrize(
    "f",
    [
        lambda z: wnp.real(wnp.sin(z) * z),
        lambda z: wnp.imag(wnp.exp(z)),
        lambda z: wnp.abs(z),
        lambda z: wnp.real(wnp.conj(z) * wnp.log(z)),
        lambda z: wnp.real(wnp.sqrt(z) + wnp.tanh(z)),
        # real-valued intermediates that receive complex cotangents
        lambda z: wnp.abs(z) * (1 + 2j),
        lambda z: wnp.real(z) * (1 - 1j) + wnp.imag(z) * 2j,
        lambda z: wnp.exp(wnp.abs(z)) * z,
    ],
)
def test_complex_input(f):
    r = rng()
    z = r.uniform(0.5, 1.5, (2, 2)) + 1j * r.uniform(0.5, 1.5, (2, 2))
    check(f, z)


def test_complex_holomorphic_vjp_is_transpose_of_jvp():
    # no conjugation: vjp(u) of a holomorphic f is u * f'(z)
    z = np.array([0.3 + 0.4j, -1.0 + 0.2j])
    u = np.array([1.0 - 2.0j, 0.5j])
    _, pull = vjp(wnp.sin, z)
    np.testing.assert_allclose(pull(u)[0], u * np.cos(z))
    _, t = jvp(wnp.sin, (z,), (u,))
    np.testing.assert_allclose(t, u * np.cos(z))


# ---------------------------------------------------------------------------------------------
# Binary functions, same shape and broadcasting between ranks
# ---------------------------------------------------------------------------------------------

BINARY = [
    (wnp.add, ANY, ANY),
    (wnp.subtract, ANY, ANY),
    (wnp.multiply, ANY, ANY),
    (wnp.true_divide, ANY, NONZERO),
    (wnp.divide, ANY, NONZERO),
    (wnp.power, POS, ANY),
    (wnp.maximum, ANY, ANY),
    (wnp.minimum, ANY, ANY),
]

SHAPES = [
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((3,), (2, 3)),
    ((2, 3), ()),
    ((), (2, 3)),
    ((2, 1), (1, 3)),
    ((4, 1, 3), (2, 1)),
    ((1,), (2, 3)),
]


@pytest.mark.parametrize("f, dx, dy", BINARY, ids=lambda p: getattr(p, "__name__", ""))
@pytest.mark.parametrize("sx, sy", SHAPES, ids=str)
def test_binary(f, dx, dy, sx, sy):
    r = rng(2)
    x, y = np.asarray(dx(r, sx)), np.asarray(dy(r, sy))
    check(f, x, y)
    check_jacobians(f, x, y)


@pytest.mark.parametrize("f, dx, dy", BINARY, ids=lambda p: getattr(p, "__name__", ""))
def test_binary_with_constant(f, dx, dy):
    r = rng(3)
    x, y = dx(r), dy(r)
    check(lambda a: f(a, y), x)
    check(lambda b: f(x, b), y)
    check(lambda a: f(a, 1.5), x)
    check(lambda b: f(1.5, b), y)


@pytest.mark.parametrize(
    "f",
    [
        lambda x, y: x + y,
        lambda x, y: x - y,
        lambda x, y: x * y,
        lambda x, y: x / y,
        lambda x, y: x**y,
        lambda x, y: 2.0 - x * 3.0 / y + 1.0,
        lambda x, y: 2.0**x + x**2 + x**0.5 + y**-1,
        lambda x, y: -x + (+y) + abs(y),
        lambda x, y: 1.0 / x - 3 - y + 2 * (1 - x) / (0.5 + y),  # reflected operators
    ],
)
def test_operators(f):
    r = rng(4)
    check(f, r.uniform(0.5, 2, (2, 3)), r.uniform(0.5, 2, (3,)))


def test_power_integer_exponent_and_zero_base():
    # x**2 at x = 0: d/dx = 0; with a traced exponent d/dy = x**y log x = 0 at x = 0
    x = np.array([0.0, 1.5, -2.0])
    check(lambda a: a**2, x)
    check(lambda a: wnp.power(a, 3), x)
    g = grad(lambda y: wnp.sum(wnp.power(np.array([0.0, 2.0]), y)))(np.array([2.0, 2.0]))
    np.testing.assert_allclose(g, [0.0, 4 * np.log(2.0)])


def test_power_vjp_float32():
    x = np.array([1.0, 2.0], np.float32)
    g = grad(lambda a: wnp.sum(a**3))(x)
    assert g.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# Selections: maximum/minimum ties, clip, where
# ---------------------------------------------------------------------------------------------


def test_maximum_minimum_ties_share_half():
    # At a tie max(x, y) is not differentiable; wengert gives each side ½ (a subgradient,
    # and the average of the two one-sided derivatives).
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 0.0, 3.0])
    for f in (wnp.maximum, wnp.minimum):
        gx, gy = grad(lambda a, b: wnp.sum(f(a, b)), argnums=(0, 1))(x, y)
        assert gx[0] == gx[2] == 0.5 and gy[0] == gy[2] == 0.5
        _, t = jvp(f, (x, y), (np.ones(3), np.zeros(3)))
        assert t[0] == t[2] == 0.5
    gx, gy = grad(lambda a, b: wnp.sum(wnp.maximum(a, b)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [0.5, 1.0, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 0.0, 0.5])
    # a tie against a broadcast scalar: each element's share is ½
    g = grad(lambda a: wnp.sum(wnp.maximum(a, 0.0)))(np.array([-1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(g, [0.0, 0.5, 1.0])


def test_maximum_second_order_away_from_ties():
    r = rng(5)
    check(lambda a, b: wnp.maximum(a * a, b), r.standard_normal((2, 3)), r.standard_normal(3))


def test_clip():
    x = np.array([-2.0, -0.5, 0.0, 0.3, 0.9, 3.0])
    check(lambda a: wnp.clip(a, -1.0, 1.0), x)
    check(lambda a: wnp.clip(a, None, 0.5), x)
    check(lambda a: wnp.clip(a, -0.2, None), x)
    lo, hi = np.full(6, -1.0), np.full(6, 1.0)
    check(wnp.clip, x, lo, hi)
    check_jacobians(wnp.clip, x, lo, hi)
    # broadcast bounds of lower rank
    x2 = rng().standard_normal((3, 4)) * 2
    check(wnp.clip, x2, np.array([-1.0, -0.5, 0.0, -2.0]), np.array(1.0))
    check_jacobians(wnp.clip, x2, np.array([-1.0, -0.5, 0.0, -2.0]), np.array(1.0))
    # At an end point clip is not differentiable: x and the bound tie, and share the
    # derivative ½ each, exactly as clip(x, lo, hi) = minimum(maximum(x, lo), hi) would.
    g = grad(lambda a: wnp.sum(wnp.clip(a, -1.0, 1.0)))(np.array([-1.0, 1.0, 2.0]))
    np.testing.assert_array_equal(g, [0.5, 0.5, 0.0])
    x3, lo3, hi3 = np.array([-1.0, 0.0, 1.0, 3.0]), np.full(4, -1.0), np.array([1.0, 1.0, 1.0, 0.5])
    gs = grad(lambda a, b, c: wnp.sum(wnp.clip(a, b, c)), argnums=(0, 1, 2))(x3, lo3, hi3)
    np.testing.assert_array_equal(gs[0], [0.5, 1.0, 0.5, 0.0])
    np.testing.assert_array_equal(gs[1], [0.5, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(gs[2], [0.0, 0.0, 0.5, 1.0])
    composed = lambda a, b, c: wnp.minimum(wnp.maximum(a, b), c)
    for a_, b_ in zip(
        jacfwd(wnp.clip, argnums=(0, 1, 2))(x3, lo3, hi3),
        jacfwd(composed, argnums=(0, 1, 2))(x3, lo3, hi3),
    ):
        np.testing.assert_array_equal(a_, b_)
    # lo > hi: NumPy returns hi, which then takes the whole derivative
    gs = grad(lambda b, c: wnp.sum(wnp.clip(x3, b, c)), argnums=(0, 1))(np.full(4, 2.0), hi3)
    np.testing.assert_array_equal(gs[0], np.zeros(4))
    np.testing.assert_array_equal(gs[1], np.ones(4))
    # a bound of higher rank than x, traced alone: the tangent has the output's shape
    _, t = jvp(lambda c: wnp.clip(x3, -2.0, c), (np.full((2, 4), 0.5),), (np.ones((2, 4)),))
    np.testing.assert_array_equal(t, [[0, 0, 1, 1]] * 2)
    j = jacfwd(lambda c: wnp.clip(x3, lo3, c))(np.float64(0.5))
    np.testing.assert_array_equal(j, [0, 0, 1, 1])
    with pytest.raises(ValueError):
        wnp.clip(x, None, None)


def test_clip_method():
    x = rng().standard_normal(5) * 2
    check(lambda a: a.clip(-1, 1), x)


def test_where():
    r = rng(6)
    c = r.standard_normal((2, 3)) > 0
    x, y = r.standard_normal((2, 3)), r.standard_normal((3,))
    check(lambda a, b: wnp.where(c, a, b), x, y)
    check(lambda a, b: wnp.where(c, a, b), y, x)
    check(lambda a: wnp.where(c, a, 0.0), x)
    check(lambda a: wnp.where(c[0], 2.0, a), x)
    check(lambda a: wnp.where(a > 0, a, -a), x)  # condition computed from a tracer
    check_jacobians(lambda a, b: wnp.where(c, a, b), x, y)
    # the branch not taken gets exactly zero; with its input kept in the domain by a second
    # where, an infinite derivative there (sqrt at 0) cannot turn into NaN
    safe = lambda a: wnp.sum(wnp.where(a > 0, wnp.sqrt(wnp.where(a > 0, a, 1.0)), 0.0))
    np.testing.assert_array_equal(grad(safe)(np.array([0.0, 4.0])), [0.0, 0.25])
    g = grad(lambda a: wnp.sum(wnp.where(a > 0, a, np.inf)))(np.array([-1.0, 2.0]))
    np.testing.assert_array_equal(g, [0.0, 1.0])
    np.testing.assert_array_equal(wnp.where(np.array([1, 0, 2]))[0], [0, 2])
    with pytest.raises(ValueError):
        wnp.where(c, x)


def test_astype_complex_round_trip():
    x = rng().standard_normal(3)
    check(lambda a: wnp.real(wnp.astype(a, np.complex128) * (1 + 2j)), x)
    assert wnp.astype(x, int).dtype == int


def test_constant_functions_have_zero_derivative():
    x = rng().standard_normal(4)
    for f in (wnp.sign, wnp.floor, wnp.ceil, wnp.rint, wnp.trunc):
        g = grad(lambda a: wnp.sum(f(a) * 1.0 + a))(x)
        np.testing.assert_array_equal(g, np.ones(4))
    assert not np.any(jacfwd(lambda a: wnp.zeros_like(a) + wnp.ones_like(a))(x))
    binary = ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
              "logical_and", "logical_or", "logical_xor", "floor_divide"]  # fmt: skip
    unary = ["isfinite", "isnan", "isinf", "signbit", "logical_not", "argmin", "argmax",
             "argsort", "nonzero", "isrealobj", "iscomplexobj"]  # fmt: skip

    def f(a):
        for name in binary:
            out = getattr(wnp, name)(a, 0.1)
            assert not is_traced(out)
            np.testing.assert_array_equal(out, getattr(np, name)(x, 0.1))
        for name in unary:
            out = getattr(wnp, name)(a)
            assert not is_traced(out) and not any(is_traced(o) for o in np.atleast_1d(out))
            np.testing.assert_array_equal(out, getattr(np, name)(x))
        assert wnp.array_equal(a, x) and wnp.shape(a) == (4,) and wnp.size(a) == 4
        return a * wnp.pi * wnp.e + wnp.floor_divide(a, 0.3) + a[wnp.newaxis, 0]

    np.testing.assert_allclose(
        grad(lambda a: wnp.sum(f(a)))(x), np.full(4, np.pi * np.e) + [4, 0, 0, 0]
    )
    np.testing.assert_array_equal(wnp.full_like(x, 2.0), np.full(4, 2.0))


# ---------------------------------------------------------------------------------------------
# Compositions, third order and float32
# ---------------------------------------------------------------------------------------------


def test_composition_third_order():
    x = rng(7).uniform(0.5, 1.5, (3,))
    f = lambda a: wnp.sum(wnp.tanh(a) * wnp.log(a) / (1 + wnp.exp(-a)))
    check_grads(f, (x,), order=3)


def test_batched_tangents_with_broadcasting():
    # jacfwd carries a batch axis through binary ops whose operands have different ranks
    r = rng(8)
    x, y = r.standard_normal((2, 3)), r.uniform(0.5, 2, (3,))
    f = lambda a, b: wnp.sin(a) * b / (b + a**2) - wnp.maximum(a, b) + wnp.where(a > 0, a, b)
    check_jacobians(f, x, y)
    check_jacobians(lambda b: wnp.exp(b) * x, y)


@pytest.mark.parametrize(
    "f",
    [
        lambda a: wnp.sin(a) * a,
        lambda a: wnp.exp(a) / (1 + a * a),
        lambda a: wnp.sqrt(wnp.abs(a) + 1) ** 2.5,
        lambda a: wnp.maximum(a, 0.1) - wnp.clip(a, -0.5, 0.5),
        lambda a: wnp.where(a > 0, wnp.tanh(a), wnp.arctan(a)),
        lambda a: 2 * a + 1,
        lambda a: a / 3 - 0.5 ** (a * a),
        lambda a: wnp.log1p(a * a) + wnp.expm1(a),
    ],
)
def test_float32_stays_float32(f):
    x = rng(9).standard_normal((2, 3)).astype(np.float32)
    assert f(x).dtype == np.float32
    g = grad(lambda a: wnp.sum(f(a)))(x)
    assert g.dtype == np.float32
    j = jacfwd(f)(x)
    assert j.dtype == np.float32
    _, t = jvp(f, (x,), (np.ones_like(x),))
    assert t.dtype == np.float32
    h = jacfwd(grad(lambda a: wnp.sum(f(a) * a)))(x)
    assert h.dtype == np.float32
    check_grads(f, (x,), order=2)


def test_mixed_real_complex_binary():
    r = rng(10)
    x = r.uniform(0.5, 1.5, (2, 3))
    z = r.standard_normal(3) + 1j * r.standard_normal(3)
    check(lambda a, b: a * b + wnp.exp(a) / b, x, z)
    check(lambda a, b: wnp.abs(b * a) ** 2, x, z)


def check_hessians(f, x):
    """The four ways to a Hessian agree; three of them carry batched tangents (jacfwd) through
    the primitives' derivative rules, and through the rules' own derivatives."""
    h = jacrev(jacrev(f))(x)
    for other in (jacfwd(jacrev(f)), jacfwd(jacfwd(f)), jacrev(jacfwd(f))):
        np.testing.assert_allclose(other(x), h, rtol=1e-9, atol=1e-10)


HESSIANS = {
    "broadcasting": lambda x: wnp.sum(wnp.sin(x) * x[0] / (x[:, :1] + 1) - x[1] ** 2 * x),
    "unary chain": lambda x: wnp.sum(wnp.tanh(wnp.exp(x) * wnp.log(x)) / wnp.sqrt(x)),
    "clip": lambda x: wnp.sum(wnp.clip(x, 0.8, 1.2) ** 3),
    "clip traced bounds": lambda x: wnp.sum(wnp.clip(x, x[0] * 0.9, x[:, 1:2] + 0.1) ** 3),
    "where": lambda x: wnp.sum(wnp.where(x > 1, x**3, wnp.sin(x[0]))),
    "maximum": lambda x: wnp.sum(wnp.maximum(x**2, x[0]) ** 2 + wnp.minimum(x, 1.0) ** 3),
    "abs": lambda x: wnp.sum(wnp.abs(x - 1) ** 3),
    "power both traced": lambda x: wnp.sum(x ** x[0] + 1.3**x),
    "divide": lambda x: wnp.sum(x[0] / x + x / x[:, :1]),
    "astype complex": lambda x: wnp.sum(wnp.real(wnp.astype(x, complex) ** 3 * (1 + 1j))),
}


@pytest.mark.parametrize("f", HESSIANS.values(), ids=HESSIANS.keys())
def test_hessians(f):
    check_hessians(f, rng(11).uniform(0.5, 1.5, (3, 4)))
