"""Derivatives of derivatives, in every combination of forward and reverse mode.

Each transformation is a trace with its own level, so a value from an outer derivative is a
constant to an inner one: no perturbation confusion.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import wengert.numpy as wnp
from wengert import grad, hessian, jacfwd, jacrev, jvp, stop_gradient, value_and_grad, vjp


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


def d_fwd(f):
    """The derivative of a scalar function by forward mode."""
    return lambda x: jvp(f, (x,), (np.ones_like(x),))[1]


def d_rev(f):
    """The derivative of a scalar function by reverse mode (through vjp, not grad, so the
    inner derivative is one more independent code path)."""

    def df(x):
        out, pull = vjp(f, x)
        return pull(np.ones(wnp.shape(out), wnp.result_type(out)))[0]

    return df


def d_grad(f):
    return grad(f)


MODES = {"fwd": d_fwd, "rev": d_rev, "grad": d_grad}
PAIRS = [("fwd", "fwd"), ("fwd", "grad"), ("grad", "fwd"), ("grad", "grad"), ("rev", "rev")]


# ---------------------------------------------------------------------------------------------
# Perturbation confusion
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outer,inner", PAIRS)
def test_perturbation_confusion(outer, inner):
    """d/dx [ x · d/dy (x + y) |_{y=1} ] at x = 1 is 1: the inner derivative is 1 whatever x is.
    A system that confuses the two perturbations answers 2."""
    D_out, D_in = MODES[outer], MODES[inner]
    f = lambda x: x * D_in(lambda y: x + y)(np.array(1.0))
    close(D_out(f)(np.array(1.0)), 1.0)


@pytest.mark.parametrize("outer,inner", PAIRS)
def test_perturbation_confusion_product(outer, inner):
    """d/dx [ d/dy (x · y) |_{y=2} ] = d/dx x = 1, and d/dx [ x · d/dy (x·y) ] = 2x."""
    D_out, D_in = MODES[outer], MODES[inner]
    close(D_out(lambda x: D_in(lambda y: x * y)(np.array(2.0)))(np.array(3.0)), 1.0)
    close(D_out(lambda x: x * D_in(lambda y: x * y)(np.array(2.0)))(np.array(3.0)), 6.0)


def test_perturbation_confusion_three_levels():
    # d/dx [ x · d/dy [ y · d/dz (x + y + z) ] ] = d/dx [ x · d/dy y ] = 1
    for a, b, c in itertools.product(["fwd", "grad"], repeat=3):
        Da, Db, Dc = MODES[a], MODES[b], MODES[c]
        f = lambda x: x * Db(lambda y: y * Dc(lambda z: x + y + z)(np.array(1.0)))(np.array(1.0))
        close(Da(f)(np.array(1.0)), 1.0)


def test_closure_over_outer_variable_in_vjp_fn():
    # the inner vjp_fn closes over a tape whose values depend on the outer variable
    def f(x):
        out, pull = vjp(lambda y: y * x**2, np.array(1.0))
        return pull(np.array(1.0))[0]  # = x²

    close(grad(f)(3.0), 6.0)
    close(d_fwd(f)(np.array(3.0)), 6.0)


# ---------------------------------------------------------------------------------------------
# Higher orders
# ---------------------------------------------------------------------------------------------

# (f, [f, f', f'', f''', f''''] as functions of x)
CASES = {
    "sin": (wnp.sin, [np.sin, np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x), np.sin]),
    "x**5": (
        lambda x: x**5,
        [
            lambda x: x**5,
            lambda x: 5 * x**4,
            lambda x: 20 * x**3,
            lambda x: 60 * x**2,
            lambda x: 120 * x,
        ],
    ),  # fmt: skip
    "exp*sin": (
        lambda x: wnp.exp(x) * wnp.sin(x),
        [
            lambda x: np.exp(x) * np.sin(x),
            lambda x: np.exp(x) * (np.sin(x) + np.cos(x)),
            lambda x: 2 * np.exp(x) * np.cos(x),
            lambda x: 2 * np.exp(x) * (np.cos(x) - np.sin(x)),
            lambda x: -4 * np.exp(x) * np.sin(x),
        ],
    ),
    "log": (
        wnp.log,
        [np.log, lambda x: 1 / x, lambda x: -1 / x**2, lambda x: 2 / x**3, lambda x: -6 / x**4],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("modes", list(itertools.product(["fwd", "grad"], repeat=3)))
def test_third_derivatives_all_mode_combinations(name, modes):
    f, derivs = CASES[name]
    g = f
    for m in modes:
        g = MODES[m](g)
    x = np.array(0.7)
    close(g(x), derivs[3](0.7))


@pytest.mark.parametrize("name", list(CASES))
def test_fourth_derivative_repeated_grad(name):
    f, derivs = CASES[name]
    close(grad(grad(grad(grad(f))))(0.9), derivs[4](0.9))


@pytest.mark.parametrize("name", list(CASES))
def test_fourth_derivative_mixed(name):
    f, derivs = CASES[name]
    x = np.array(1.3)
    close(d_fwd(grad(d_fwd(grad(f))))(x), derivs[4](1.3))
    close(d_rev(d_fwd(d_rev(d_fwd(f))))(x), derivs[4](1.3))
    close(d_fwd(d_fwd(d_fwd(d_fwd(f))))(x), derivs[4](1.3))


def test_jvp_of_grad_and_grad_of_jvp_vector():
    A = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])
    f = lambda x: 0.5 * wnp.sum(x * wnp.matmul(A, x)) + wnp.sum(x**3)
    x = np.array([0.5, -1.0, 2.0])
    v = np.array([1.0, 2.0, -1.0])
    H = A + np.diag(6 * x)
    close(jvp(grad(f), (x,), (v,))[1], H @ v)  # forward over reverse
    close(grad(lambda x: jvp(f, (x,), (v,))[1])(x), H @ v)  # reverse over forward
    close(jvp(lambda x: jvp(f, (x,), (v,))[1], (x,), (v,))[1], v @ H @ v)  # fwd over fwd
    close(grad(lambda x: wnp.sum(grad(f)(x) * v))(x), H @ v)  # rev over rev


def test_hessian_four_ways_agree():
    f = lambda x: wnp.sum(wnp.sin(x[:-1]) * x[1:] ** 2) + wnp.prod(x)
    x = np.array([0.3, 1.2, -0.8, 0.5])
    H = hessian(f)(x)
    close(jacfwd(jacfwd(f))(x), H)
    close(jacrev(jacrev(f))(x), H)
    close(jacrev(jacfwd(f))(x), H)
    close(H, H.T)


def test_third_order_tensor():
    f = lambda x: x[0] ** 2 * x[1] ** 3
    x = np.array([1.5, -0.5])
    T = jacfwd(jacrev(jacrev(f)))(x)
    assert T.shape == (2, 2, 2)
    a, b = x
    expected = np.zeros((2, 2, 2))
    expected[0, 0, 1] = expected[0, 1, 0] = expected[1, 0, 0] = 6 * b**2
    expected[0, 1, 1] = expected[1, 0, 1] = expected[1, 1, 0] = 12 * a * b
    expected[1, 1, 1] = 6 * a**2
    close(T, expected)


def test_grad_of_value_and_grad_value():
    # the value returned by an inner value_and_grad is still traced by the outer grad
    f = lambda x: value_and_grad(lambda y: y**3)(x)[0]
    close(grad(f)(2.0), 12.0)
    g = lambda x: value_and_grad(lambda y: y**3)(x)[1]
    close(grad(g)(2.0), 12.0)


def test_nested_jacobians_of_gradient():
    f = lambda x, y: wnp.sum(x**2 * y)
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    # d/dy (∇ₓ f) = diag(2x)
    close(jacrev(grad(f), argnums=1)(x, y), np.diag(2 * x))
    close(jacfwd(grad(f), argnums=1)(x, y), np.diag(2 * x))


def test_stop_gradient_inner_and_outer():
    # stop_gradient strips every level: the outer derivative of the stopped factor is zero too
    f = lambda x: grad(lambda y: stop_gradient(y) * y * x)(x)  # inner: d/dy = y·x → x²
    close(f(3.0), 9.0)
    close(grad(f)(3.0), 3.0)  # d/dx [stop(x)·x] = stop(x)


def test_derivative_with_respect_to_a_cotangent_or_a_tangent():
    # vjp_fn and jvp are linear in ū and v: their derivatives are the Jacobian itself
    close(grad(lambda u: vjp(lambda y: y * y, 3.0)[1](u)[0])(1.0), 6.0)
    close(grad(lambda v: jvp(wnp.sin, (0.5,), (v,))[1])(1.0), np.cos(0.5))
    close(jvp(lambda v: jvp(wnp.sin, (0.5,), (v,))[1], (1.0,), (1.0,))[1], np.cos(0.5))
    x = np.array([0.2, 0.9])
    J = jacfwd(lambda u: vjp(wnp.sin, x)[1](u)[0])(np.ones(2))
    close(J, np.diag(np.cos(x)))


def test_forward_over_reverse_through_indexing_with_traced_adjoint():
    # x[0] and x*x both send cotangent to x; at second order the adjoint already there is a
    # tracer, so the sweep must not take the in-place scatter path.
    x = np.arange(3.0)
    g, hv = jvp(grad(lambda x: x[0] + wnp.sum(x * x)), (x,), (np.ones(3),))
    np.testing.assert_allclose(g, [1.0, 2.0, 4.0])
    np.testing.assert_allclose(hv, [2.0, 2.0, 2.0])
