"""NaN safety (docs/nan_safety.md): gradients through where / select / clip stay finite when the
branch not taken has an infinite or undefined derivative, in both modes and at second order;
sqrt, abs, hypot (and norms built on them) have the subgradient 0 at 0."""

import numpy as np
import pytest

import wengert.numpy as wnp
from wengert import check_grads, grad, hessian, jacfwd, jacrev, jvp, vjp


def derivatives(f, x):
    """The gradient of a scalar f by reverse and forward mode, and its Hessian by all four
    compositions of the two modes; all must agree."""
    g_rev = grad(f)(x)
    g_fwd = jacfwd(f)(x)
    hs = [
        jacfwd(jacrev(f))(x),
        jacrev(jacrev(f))(x),
        jacfwd(jacfwd(f))(x),
        jacrev(jacfwd(f))(x),
        hessian(f)(x),
    ]
    np.testing.assert_array_equal(g_rev, g_fwd)
    for h in hs[1:]:
        np.testing.assert_allclose(h, hs[0], rtol=1e-12, atol=0)
    return g_rev, hs[0]


def assert_finite(*arrays):
    for a in arrays:
        assert np.all(np.isfinite(a)), a


# The classic traps: f is the function on the taken branch, x0 holds points where the other
# branch's derivative is infinite or NaN, `want` the gradient and Hessian diagonal there.
X = np.array([-1.0, 0.0, 0.5, 2.0])
TRAPS = {
    "sqrt": (lambda x: wnp.where(x > 0, wnp.sqrt(x), 0.0), lambda x: 0.5 / np.sqrt(x)),
    "log": (lambda x: wnp.where(x > 0, wnp.log(x), 0.0), lambda x: 1 / x),
    "log2": (lambda x: wnp.where(x > 0, wnp.log2(x), 0.0), lambda x: 1 / (x * np.log(2))),
    "log10": (lambda x: wnp.where(x > 0, wnp.log10(x), 0.0), lambda x: 1 / (x * np.log(10))),
    "log1p": (lambda x: wnp.where(x > 0, wnp.log1p(x - 1), 0.0), lambda x: 1 / x),
    "1/x": (lambda x: wnp.where(x > 0, 1.0 / x, 0.0), lambda x: -1 / x**2),
    "x/x²": (lambda x: wnp.where(x > 0, x / (x * x), 0.0), lambda x: -1 / x**2),
    "reciprocal": (lambda x: wnp.where(x > 0, wnp.reciprocal(x), 0.0), lambda x: -1 / x**2),
    "x**-1": (lambda x: wnp.where(x > 0, x**-1, 0.0), lambda x: -1 / x**2),
    "x**0.5": (lambda x: wnp.where(x > 0, x**0.5, 0.0), lambda x: 0.5 / np.sqrt(x)),
    "x**1.5": (lambda x: wnp.where(x > 0, x**1.5, 0.0), lambda x: 1.5 * np.sqrt(x)),
    "arcsin": (lambda x: wnp.where(x > 0, wnp.arcsin(1 - x / 4), 0.0),
               lambda x: -0.25 / np.sqrt(1 - (1 - x / 4) ** 2)),
    "arccosh": (lambda x: wnp.where(x > 0, wnp.arccosh(1 + x), 0.0),
                lambda x: 1 / np.sqrt((1 + x) ** 2 - 1)),
    "arctanh": (lambda x: wnp.where(x > 0, wnp.arctanh(1 - x / 4), 0.0),
                lambda x: -0.25 / (1 - (1 - x / 4) ** 2)),
    "cbrt": (lambda x: wnp.where(x > 0, wnp.cbrt(x), 0.0), lambda x: x ** (-2 / 3) / 3),
}  # fmt: skip


@pytest.mark.parametrize("name", TRAPS)
def test_where_untaken_branch_gives_zero(name):
    f, d = TRAPS[name]
    with np.errstate(all="ignore"):  # the forward pass itself meets log(0), 1/0, sqrt(-1)...
        g, h = derivatives(lambda x: wnp.sum(f(x)), X)
        want = np.where(X > 0, d(np.where(X > 0, X, 1.0)), 0.0)
    assert_finite(g, h)
    np.testing.assert_allclose(g, want, rtol=1e-12)
    # the Hessian is diagonal, zero on the untaken side, finite-difference-exact on the other
    assert np.all(h[~np.eye(4, dtype=bool)] == 0) and np.all(np.diag(h)[X <= 0] == 0)
    xs = X[X > 0]
    check_grads(lambda x: f(x), (xs,), order=2)


@pytest.mark.parametrize("name", ["sqrt", "log", "1/x", "x**0.5", "arcsin"])
def test_select_untaken_choice_gives_zero(name):
    f, _ = TRAPS[name]
    with np.errstate(all="ignore"):
        sel = lambda x: wnp.sum(wnp.select([x > 0, x <= 0], [f(x), x * 0.5]))
        g, h = derivatives(sel, X)
    assert_finite(g, h)
    assert g[0] == g[1] == 0.5


@pytest.mark.parametrize(
    "f",
    [
        lambda x: wnp.clip(wnp.log(x), -3.0, 3.0),
        lambda x: wnp.clip(1.0 / x, -4.0, 4.0),
        lambda x: wnp.clip(wnp.sqrt(x), 0.1, 1.0),
        lambda x: wnp.clip(x**-2, None, 5.0),
    ],
    ids=["log", "1/x", "sqrt", "x**-2"],
)
def test_clip_at_infinite_derivative(f):
    # the clipped positions (here x = 0, where the inner derivative is infinite) get zero, in
    # forward mode too (clip's rule selects; it does not multiply ∞ by 0)
    x = np.array([0.0, 0.5, 2.0])
    with np.errstate(all="ignore"):
        g, h = derivatives(lambda a: wnp.sum(f(a)), x)
        _, t = jvp(f, (x,), (np.ones(3),))
    assert_finite(g, h, t)
    assert g[0] == 0 and t[0] == 0


def test_where_nan_free_in_forward_mode_with_several_directions():
    # jacfwd pushes all directions at once: a zero tangent meeting an infinite derivative
    # (here d/dx log(x) at x = 0 in the direction of y) gives 0, not NaN
    f = lambda x, y: wnp.log(x) + y
    with np.errstate(divide="ignore"):
        jx, jy = jacfwd(f, argnums=(0, 1))(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(jy, np.eye(2))
    assert np.isinf(jx[0, 0]) and jx[1, 1] == 1.0


def test_genuine_infinities_are_kept():
    # a strong zero is only for a zero (co)tangent: the derivative of log at 0 is still +∞
    with np.errstate(divide="ignore"):
        assert grad(wnp.log)(np.float64(0.0)) == np.inf
        assert grad(lambda x: 1.0 / x)(np.float64(0.0)) == -np.inf
        assert grad(wnp.arcsin)(np.float64(1.0)) == np.inf
    with np.errstate(invalid="ignore"):
        assert np.isnan(grad(wnp.arcsin)(np.float64(2.0)))  # outside the domain: NaN


# ---------------------------------------------------------------------------------------------
# Subgradient 0 at the kinks of sqrt, abs, hypot and the norms built on them
# ---------------------------------------------------------------------------------------------


def test_sqrt_at_zero():
    g, h = derivatives(lambda x: wnp.sum(wnp.sqrt(x)), np.array([0.0, 4.0]))
    np.testing.assert_array_equal(g, [0.0, 0.25])
    np.testing.assert_allclose(h, np.diag([0.0, -1 / 32]))
    _, t = jvp(wnp.sqrt, (np.array([0.0]),), (np.array([1.0]),))
    assert t[0] == 0.0
    assert grad(grad(grad(wnp.sqrt)))(np.float64(0.0)) == 0.0  # third order
    z = np.array([0j, 4 + 0j])  # complex sqrt at 0 too
    _, pull = vjp(wnp.sqrt, z)
    np.testing.assert_array_equal(pull(np.ones(2, complex))[0], [0.0, 0.25])


def test_euclidean_norm_at_zero():
    norm = lambda x: wnp.sqrt(wnp.sum(x * x))
    g, h = derivatives(norm, np.zeros(3))
    np.testing.assert_array_equal(g, np.zeros(3))
    assert_finite(h)
    if hasattr(wnp, "linalg") and hasattr(wnp.linalg, "norm"):
        g, h = derivatives(wnp.linalg.norm, np.zeros(3))
        np.testing.assert_array_equal(g, np.zeros(3))
        assert_finite(h)


def test_abs_at_zero():
    g, h = derivatives(lambda x: wnp.sum(wnp.abs(x)), np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(g, [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(h, np.zeros((3, 3)))
    _, pull = vjp(wnp.abs, np.array([0j, 3 + 4j]))
    np.testing.assert_allclose(pull(np.ones(2))[0], [0.0, (3 - 4j) / 5])


def test_hypot_at_origin():
    f = lambda v: wnp.hypot(v[0], v[1])
    g, h = derivatives(f, np.zeros(2))
    np.testing.assert_array_equal(g, [0.0, 0.0])
    np.testing.assert_array_equal(h, np.zeros((2, 2)))
    gx, gy = grad(lambda a, b: wnp.sum(wnp.hypot(a, b)), argnums=(0, 1))(
        np.array([0.0, 3.0]), np.array([0.0, 4.0])
    )
    np.testing.assert_array_equal(gx, [0.0, 0.6])
    np.testing.assert_array_equal(gy, [0.0, 0.8])


def test_arctan2_and_angle_at_origin():
    g, h = derivatives(lambda v: wnp.arctan2(v[0], v[1]), np.zeros(2))
    np.testing.assert_array_equal(g, [0.0, 0.0])
    assert_finite(h)
    _, pull = vjp(wnp.angle, np.array([0j, 1j]))
    assert_finite(pull(np.ones(2))[0])


def test_where_with_an_infinite_constant_branch():
    g = grad(lambda a: wnp.sum(wnp.where(a > 0, a, np.inf)))(np.array([-1.0, 2.0]))
    np.testing.assert_array_equal(g, [0.0, 1.0])


def test_strong_zero_keeps_float32():
    x = np.array([0.0, 1.0], np.float32)
    with np.errstate(divide="ignore"):
        g = grad(lambda a: wnp.sum(wnp.where(a > 0, wnp.log(a) + wnp.sqrt(a), 0.0)))(x)
    assert g.dtype == np.float32 and np.all(np.isfinite(g))


def test_documented_workaround_for_products():
    # multiply stays plain (it is the hottest rule): keep its operand finite with a second where
    f = lambda x: wnp.sum(wnp.where(x > 0, x * wnp.log(wnp.where(x > 0, x, 1.0)), 0.0))
    g, h = derivatives(f, np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(g, [0.0, 1.0, np.log(2.0) + 1])
    assert_finite(h)


def test_reverse_sweep_makes_zero_cotangent_times_infinity_zero():
    # x·log x: the untaken branch at 0 has derivative log 0 + 1 = -inf, which `multiply`
    # (a plain rule) meets with where's zero cotangent; the sweep turns the 0·∞ into 0.
    f = lambda x: wnp.sum(wnp.where(x > 0, x * wnp.log(wnp.where(x > 0, x, 0.0)), 0.0))
    x = np.array([0.0, 1.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        g = grad(f)(x)
        h = hessian(f)(x)
    np.testing.assert_allclose(g, [0.0, 1.0, 1.0 + np.log(2.0)])
    np.testing.assert_allclose(h, np.diag([0.0, 1.0, 0.5]))


def test_reverse_sweep_keeps_a_genuine_nan():
    # ∞ − ∞ with a non-zero cotangent is a real NaN, not a masked branch: it stays.
    inf = np.array([np.inf, 1.0])
    with np.errstate(invalid="ignore"):
        g = grad(lambda x: wnp.sum(x * inf - x * inf))(np.array([1.0, 1.0]))
    assert np.isnan(g[0]) and g[1] == 0.0


def test_forward_mode_products_in_an_untaken_branch():
    # jvp/jacfwd of x·log x in the branch where does not take: the selection drops the NaN
    f = lambda x: wnp.where(x > 0, x * wnp.log(x), 0.0)
    x = np.array([0.0, 1.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        _, t = jvp(f, (x,), (np.ones(3),))
        j = jacfwd(f)(x)
        h = jacfwd(jacfwd(lambda x: wnp.sum(f(x))))(x)
    np.testing.assert_allclose(t, [0.0, 1.0, 1.0 + np.log(2.0)])
    np.testing.assert_allclose(j, np.diag([0.0, 1.0, 1.0 + np.log(2.0)]))
    np.testing.assert_allclose(h, np.diag([0.0, 1.0, 0.5]))


def test_reverse_mode_after_a_broadcast():
    # x (2,) meets log(Y) with Y = x broadcast to (3, 2): the 0·(−∞) arises at (3, 2) and is
    # fixed there, before the sweep sums the cotangent down to x's shape.
    def f(x):
        y = x * wnp.ones((3, 1))
        return wnp.sum(wnp.where(y > 0, x * wnp.log(y), 0.0))

    x = np.array([0.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        g = grad(f)(x)
        h = hessian(f)(x)
        gf = jacfwd(f)(x)
    np.testing.assert_allclose(g, [0.0, 3 * (np.log(2.0) + 1)])
    np.testing.assert_allclose(gf, g)
    np.testing.assert_allclose(h, np.diag([0.0, 1.5]))


def test_overflow_in_an_untaken_branch():
    f = lambda x: wnp.where(x < 700, wnp.exp(x), 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        assert grad(f)(1000.0) == 0.0
        assert jvp(f, (1000.0,), (1.0,))[1] == 0.0
        assert grad(f)(1.0) == np.exp(1.0)


@pytest.mark.parametrize("op", [wnp.maximum, wnp.minimum, wnp.fmax, wnp.fmin])
def test_chooser_with_an_infinite_tangent_in_the_losing_argument(op):
    # the losing argument −log y (or log y) has an infinite tangent at y = 0
    sign = 1.0 if op in (wnp.maximum, wnp.fmax) else -1.0
    f = lambda x, y: op(x, sign * wnp.log(y))
    with np.errstate(divide="ignore", invalid="ignore"):
        _, t = jvp(f, (1.0, 0.0), (0.0, 1.0))
        _, tx = jvp(f, (1.0, 0.0), (1.0, 0.0))
        gx, gy = grad(f, argnums=(0, 1))(1.0, 0.0)
    assert t == 0.0 and tx == 1.0 and gx == 1.0 and gy == 0.0
