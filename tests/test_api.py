"""The functional API against analytic derivatives: grad, value_and_grad, vjp, jvp, jacfwd,
jacrev, hessian, hvp, stop_gradient, holomorphic_grad; control flow; threads; check_grads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import wengert as W
import wengert.numpy as wnp
from wengert import (
    check_grads,
    grad,
    hessian,
    holomorphic_grad,
    hvp,
    jacfwd,
    jacrev,
    jvp,
    stop_gradient,
    value_and_grad,
    vjp,
)
from wengert.core import Primitive

RNG = np.random.default_rng(0)
X3 = np.array([0.3, -0.7, 1.1])


def close(a, b, **kw):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12, **kw)


# ---------------------------------------------------------------------------------------------
# grad and value_and_grad
# ---------------------------------------------------------------------------------------------


def test_grad_scalar_analytic():
    f = lambda x: wnp.sin(x) * x**2
    for x in (0.3, -1.2, 2.0):
        close(grad(f)(x), np.cos(x) * x**2 + 2 * x * np.sin(x))


def test_grad_vector_analytic():
    f = lambda x: wnp.sum(wnp.exp(x) * wnp.tanh(x))
    g = grad(f)(X3)
    close(g, np.exp(X3) * np.tanh(X3) + np.exp(X3) / np.cosh(X3) ** 2)
    assert g.shape == X3.shape


def test_grad_returns_arrays_with_input_shape():
    g = grad(lambda x: x * x)(3.0)
    assert isinstance(g, np.ndarray) and g.shape == ()
    close(g, 6.0)


def test_grad_argnums_int_and_tuple():
    f = lambda x, y, z: x * y**2 + wnp.sin(z)
    close(grad(f, argnums=1)(2.0, 3.0, 0.5), 2 * 2.0 * 3.0)
    close(grad(f, argnums=2)(2.0, 3.0, 0.5), np.cos(0.5))
    gx, gz = grad(f, argnums=(0, 2))(2.0, 3.0, 0.5)
    close(gx, 9.0)
    close(gz, np.cos(0.5))
    (gy,) = grad(f, argnums=(1,))(2.0, 3.0, 0.5)
    close(gy, 12.0)


def test_grad_negative_argnums():
    f = lambda x, y: x * wnp.exp(y)
    close(grad(f, argnums=-1)(2.0, 0.0), 2.0)


def test_grad_has_aux():
    def f(x):
        y = wnp.sum(x**2)
        return y, {"y": y, "x2": x * 2}

    g, aux = grad(f, has_aux=True)(X3)
    close(g, 2 * X3)
    close(aux["y"], np.sum(X3**2))
    close(aux["x2"], 2 * X3)
    assert not W.is_traced(aux["y"]) and not W.is_traced(aux["x2"])


def test_value_and_grad():
    f = lambda x, y: wnp.sum(wnp.log(x) * y)
    x, y = np.array([1.5, 2.5]), np.array([2.0, -1.0])
    v, (gx, gy) = value_and_grad(f, argnums=(0, 1))(x, y)
    close(v, np.sum(np.log(x) * y))
    close(gx, y / x)
    close(gy, np.log(x))


def test_value_and_grad_has_aux():
    (v, aux), g = value_and_grad(lambda x: (wnp.sum(x**3), "note"), has_aux=True)(X3)
    close(v, np.sum(X3**3))
    assert aux == "note"
    close(g, 3 * X3**2)


def test_grad_kwargs_are_passed_through_and_not_differentiated():
    f = lambda x, scale=1.0: scale * wnp.sum(x**2)
    close(grad(f)(X3, scale=3.0), 6 * X3)


def test_grad_plain_numpy_code_through_protocols():
    # np.* functions on traced arrays dispatch to wengert's primitives
    f = lambda x: np.sum(np.sin(x) ** 2) + np.mean(np.exp(x))
    close(grad(f)(X3), 2 * np.sin(X3) * np.cos(X3) + np.exp(X3) / 3)


def test_grad_of_output_not_depending_on_input_is_zeros():
    for f in (lambda x: 3.0, lambda x: np.float64(1.0), lambda x: wnp.sum(np.ones(4))):
        g = grad(f)(X3)
        assert isinstance(g, np.ndarray) and g.shape == X3.shape
        close(g, np.zeros(3))
    # a differentiated argument that f ignores
    gx, gy = grad(lambda x, y: wnp.sum(x), argnums=(0, 1))(X3, np.ones((2, 2)))
    close(gx, np.ones(3))
    close(gy, np.zeros((2, 2)))


def test_grad_wrapped_name():
    def loss(x):
        """A loss."""
        return x

    assert grad(loss).__name__ == "grad(loss)"
    assert "A loss." in grad(loss).__doc__


# ---------------------------------------------------------------------------------------------
# vjp and jvp
# ---------------------------------------------------------------------------------------------


def test_vjp_one_primal():
    f = lambda x: wnp.sin(x) * 2.0
    out, pull = vjp(f, X3)
    close(out, 2 * np.sin(X3))
    u = np.array([1.0, -2.0, 0.5])
    (ct,) = pull(u)
    close(ct, u * 2 * np.cos(X3))


def test_vjp_several_primals_returns_one_cotangent_each():
    A = RNG.standard_normal((3, 4))
    x = RNG.standard_normal(4)
    out, pull = vjp(lambda A, x: wnp.matmul(A, x), A, x)
    u = RNG.standard_normal(3)
    cts = pull(u)
    assert isinstance(cts, tuple) and len(cts) == 2
    close(cts[0], np.outer(u, x))
    close(cts[1], A.T @ u)


def test_vjp_fn_can_be_called_repeatedly():
    out, pull = vjp(lambda x: x**3, X3)
    for _ in range(3):
        u = RNG.standard_normal(3)
        close(pull(u)[0], 3 * X3**2 * u)


def test_vjp_has_aux():
    out, pull, aux = vjp(lambda x: (x * 2, x + 1), X3, has_aux=True)
    close(out, 2 * X3)
    close(aux, X3 + 1)
    close(pull(np.ones(3))[0], 2 * np.ones(3))


def test_vjp_python_scalar_cotangent_for_scalar_output():
    out, pull = vjp(lambda x: wnp.sum(x**2), X3)
    close(pull(1.0)[0], 2 * X3)


def test_vjp_output_pytree():
    out, pull = vjp(lambda x: {"a": x * 2, "b": (wnp.sum(x), x[0])}, X3)
    (ct,) = pull({"a": np.ones(3), "b": (np.array(1.0), np.array(2.0))})
    close(ct, 2 + 1 + np.array([2.0, 0, 0]))


def test_jvp_analytic():
    f = lambda x, y: wnp.sin(x) * y
    x, y = np.array([0.1, 0.2]), np.array([3.0, 4.0])
    vx, vy = np.array([1.0, 0.5]), np.array([-1.0, 2.0])
    out, t = jvp(f, (x, y), (vx, vy))
    close(out, np.sin(x) * y)
    close(t, np.cos(x) * y * vx + np.sin(x) * vy)


def test_jvp_has_aux_and_lists():
    out, t, aux = jvp(lambda x: (x**2, "aux"), [2.0], [1.0], has_aux=True)
    close(out, 4.0)
    close(t, 4.0)
    assert aux == "aux"


def test_jvp_output_not_depending_on_input():
    out, t = jvp(lambda x: np.ones(2), (X3,), (np.ones(3),))
    close(t, np.zeros(2))


# ---------------------------------------------------------------------------------------------
# Jacobians, Hessians
# ---------------------------------------------------------------------------------------------


def _jac_f(x):
    return wnp.stack([x[0] * x[1], wnp.sin(x[2]), x[0] ** 2 * x[2], wnp.exp(x[1])])


def _jac_expected(x):
    return np.array(
        [
            [x[1], x[0], 0],
            [0, 0, np.cos(x[2])],
            [2 * x[0] * x[2], 0, x[0] ** 2],
            [0, np.exp(x[1]), 0],
        ]
    )


@pytest.mark.parametrize("jac", [jacfwd, jacrev])
def test_jacobian_analytic(jac):
    J = jac(_jac_f)(X3)
    assert J.shape == (4, 3)
    close(J, _jac_expected(X3))


@pytest.mark.parametrize("jac", [jacfwd, jacrev])
def test_jacobian_shapes_out_plus_in(jac):
    f = lambda x: wnp.reshape(x, (3, 2)) * 2.0
    J = jac(f)(np.ones((2, 3)))
    assert J.shape == (3, 2, 2, 3)
    close(np.reshape(J, (6, 6)), 2 * np.eye(6))


@pytest.mark.parametrize("jac", [jacfwd, jacrev])
def test_jacobian_argnums_tuple(jac):
    f = lambda x, y: x * y
    Jx, Jy = jac(f, argnums=(0, 1))(X3, 2.0)
    close(Jx, 2 * np.eye(3))
    close(Jy, X3)
    assert Jy.shape == (3,)


@pytest.mark.parametrize("jac", [jacfwd, jacrev])
def test_jacobian_has_aux(jac):
    J, aux = jac(lambda x: (x**2, x.shape), has_aux=True)(X3)
    close(J, np.diag(2 * X3))
    assert aux == (3,)


@pytest.mark.parametrize("jac", [jacfwd, jacrev])
def test_jacobian_of_constant_output(jac):
    J = jac(lambda x: np.ones(2))(X3)
    assert J.shape == (2, 3)
    close(J, np.zeros((2, 3)))


def test_jacfwd_is_one_vectorised_pass():
    calls = []

    def f(x):
        calls.append(1)
        return wnp.sin(x)

    jacfwd(f)(np.ones(5))
    assert len(calls) == 1


def test_jacrev_tapes_once():
    calls = []

    def f(x):
        calls.append(1)
        return wnp.sin(x)

    jacrev(f)(np.ones(5))
    assert len(calls) == 1


def test_hessian_analytic():
    f = lambda x: x[0] ** 2 * x[1] + wnp.sin(x[1]) * x[2] ** 3
    x = X3
    H = hessian(f)(x)
    expected = np.array(
        [
            [2 * x[1], 2 * x[0], 0],
            [2 * x[0], -np.sin(x[1]) * x[2] ** 3, 3 * np.cos(x[1]) * x[2] ** 2],
            [0, 3 * np.cos(x[1]) * x[2] ** 2, 6 * np.sin(x[1]) * x[2]],
        ]
    )
    close(H, expected)
    close(H, H.T)


def test_hessian_argnums_tuple_blocks():
    f = lambda x, y: wnp.sum(x**2) * y**3
    (Hxx, Hxy), (Hyx, Hyy) = hessian(f, argnums=(0, 1))(X3, 2.0)
    close(Hxx, 2 * np.eye(3) * 8.0)
    close(Hxy, 2 * X3 * 3 * 4.0)
    close(Hyx, 2 * X3 * 3 * 4.0)
    close(Hyy, np.sum(X3**2) * 6 * 2.0)


def test_hessian_has_aux():
    H, aux = hessian(lambda x: (wnp.sum(x**3), {"s": wnp.sum(x), "n": 3}), has_aux=True)(X3)
    close(H, np.diag(6 * X3))
    close(aux["s"], np.sum(X3))
    assert aux["n"] == 3 and not W.is_traced(aux["s"])


def test_hessian_matrix_input_shape():
    f = lambda A: wnp.sum(A**3)
    A = RNG.standard_normal((2, 3))
    H = hessian(f)(A)
    assert H.shape == (2, 3, 2, 3)
    close(H.reshape(6, 6), np.diag(6 * A.ravel()))


def test_hvp_matches_hessian():
    A = RNG.standard_normal((3, 3))
    f = lambda x: wnp.sum(wnp.sin(wnp.matmul(A, x)) * x)
    v = RNG.standard_normal(3)
    close(hvp(f, (X3,), (v,)), hessian(f)(X3) @ v)


def test_hvp_several_primals():
    f = lambda x, y: wnp.sum(x**2) * y
    hx, hy = hvp(f, (X3, 2.0), (np.ones(3), 1.0))
    # H = [[2y I, 2x], [2xᵀ, 0]]
    close(hx, 2 * 2.0 * np.ones(3) + 2 * X3)
    close(hy, 2 * np.sum(X3))


# ---------------------------------------------------------------------------------------------
# stop_gradient, holomorphic_grad
# ---------------------------------------------------------------------------------------------


def test_stop_gradient():
    f = lambda x: x * stop_gradient(x) ** 2
    close(grad(f)(3.0), 9.0)
    close(jvp(f, (3.0,), (1.0,))[1], 9.0)


def test_stop_gradient_on_pytree_and_plain_values():
    out = stop_gradient({"a": 1.0, "b": [np.ones(2)]})
    assert out["a"] == 1.0
    close(out["b"][0], np.ones(2))

    def f(p):
        q = stop_gradient(p)
        return p["a"] * q["a"] + wnp.sum(q["b"] * p["b"])

    g = grad(f)({"a": 2.0, "b": np.array([1.0, 2.0])})
    close(g["a"], 2.0)
    close(g["b"], [1.0, 2.0])


def test_stop_gradient_at_one_level_only_drops_that_levels_derivative():
    # inner derivative sees x as a constant either way; stop_gradient inside the inner function
    # kills the outer derivative of the factor too
    f = lambda x: grad(lambda y: y * stop_gradient(x) ** 2)(1.0)
    close(grad(f)(3.0), 0.0)
    g = lambda x: grad(lambda y: y * x**2)(1.0)
    close(grad(g)(3.0), 6.0)


def test_holomorphic_grad():
    z = np.array(0.3 + 0.4j)
    close(holomorphic_grad(lambda z: z**3)(z), 3 * z**2)
    close(holomorphic_grad(wnp.exp)(z), np.exp(z))
    close(grad(lambda z: wnp.sin(z), holomorphic=True)(z), np.cos(z))


def test_holomorphic_grad_elementwise_and_argnums():
    z = np.array([0.1 + 1j, 2 - 0.5j])
    close(holomorphic_grad(lambda z: wnp.sum(z**2))(z), 2 * z)
    gw = holomorphic_grad(lambda z, w: wnp.sum(z * w), argnums=1)(z, z + 1)
    close(gw, z)


# ---------------------------------------------------------------------------------------------
# Control flow
# ---------------------------------------------------------------------------------------------


def test_if_branches():
    def f(x):
        if x > 0:
            return x**2
        return -(x**3)

    close(grad(f)(2.0), 4.0)
    close(grad(f)(-2.0), -12.0)
    close(jvp(f, (-2.0,), (1.0,))[1], -12.0)


def test_for_loop():
    def f(x, n):
        y = x
        for _ in range(n):
            y = wnp.sin(y)
        return y

    x = 0.7
    expected = 1.0
    y = x
    for _ in range(4):
        expected *= np.cos(y)
        y = np.sin(y)
    close(grad(f)(x, 4), expected)
    close(jvp(lambda x: f(x, 4), (x,), (1.0,))[1], expected)


def test_while_loop_on_traced_condition():
    def f(x):
        y, n = x, 0
        while y < 10:
            y = y * 2
            n += 1
        return y

    # 1.5 -> 3 -> 6 -> 12: y = 8x
    close(grad(f)(1.5), 8.0)
    close(jvp(f, (1.5,), (1.0,))[1], 8.0)


def test_recursion():
    def power(x, n):
        return 1.0 if n == 0 else x * power(x, n - 1)

    close(grad(power)(2.0, 5), 5 * 2.0**4)
    close(grad(grad(power))(2.0, 5), 20 * 2.0**3)


def test_loop_over_array_elements():
    def f(x):
        total = 0.0
        for xi in x:
            total = total + xi**2
        return total

    close(grad(f)(X3), 2 * X3)


# ---------------------------------------------------------------------------------------------
# Threads: the trace stack is a context variable
# ---------------------------------------------------------------------------------------------


def test_concurrent_grads_in_threads():
    results: dict = {}
    errors: list = []
    barrier = threading.Barrier(6)

    def work(i):
        try:
            x = np.linspace(0, 1, 20) + i
            barrier.wait()
            for _ in range(15):
                g = grad(lambda x: wnp.sum(wnp.sin(x) * x))(x)
                h = grad(grad(lambda s: s**3 * i))(float(i + 1))
            results[i] = (g, x, h)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, (g, x, h) in results.items():
        close(g, np.cos(x) * x + np.sin(x))
        close(h, 6 * (i + 1) * i)


def test_trace_stack_is_empty_after_use_and_per_thread():
    from wengert.core import _trace_stack

    seen = []

    def f(x):
        seen.append(len(_trace_stack.get()))
        t = threading.Thread(target=lambda: seen.append(len(_trace_stack.get())))
        t.start()
        t.join()
        return x * x

    grad(grad(f))(1.0)
    assert seen[0] == 2 and seen[1] == 0
    assert _trace_stack.get() == ()


# ---------------------------------------------------------------------------------------------
# check_grads
# ---------------------------------------------------------------------------------------------


def _sin_prim(name, jvp_scale=1.0, vjp_scale=1.0):
    p = Primitive(name, np.sin, elementwise=True)
    p.defjvp(lambda t, ans, x: t * (jvp_scale * wnp.cos(x)))
    p.defvjp(lambda g, ans, x: g * (vjp_scale * wnp.cos(x)))
    return p


def test_check_grads_passes_correct_rules():
    good = _sin_prim("good_sin")
    check_grads(good, (X3,), order=2)
    check_grads(lambda x, y: wnp.sum(wnp.exp(x) * y), (X3, np.ones(3)), order=2)


def test_check_grads_catches_wrong_vjp():
    bad = _sin_prim("bad_vjp_sin", vjp_scale=1.05)
    check_grads(bad, (X3,), order=1, modes=("fwd",))  # the forward rule is right
    with pytest.raises(AssertionError, match="reverse mode"):
        check_grads(bad, (X3,), order=1, modes=("rev",))


def test_check_grads_catches_wrong_jvp():
    bad = _sin_prim("bad_jvp_sin", jvp_scale=0.97)
    check_grads(bad, (X3,), order=1, modes=("rev",))
    with pytest.raises(AssertionError, match="forward mode"):
        check_grads(bad, (X3,), order=1, modes=("fwd",))


def test_check_grads_catches_wrong_second_order():
    # first derivatives right, but the rule is not differentiable itself (it hides x)
    p = Primitive("flat_rule_sin", np.sin, elementwise=True)
    p.defjvp(lambda t, ans, x: t * np.cos(stop_gradient(x)))
    p.defvjp(lambda g, ans, x: g * np.cos(stop_gradient(x)))
    check_grads(p, (X3,), order=1)
    for modes in (("fwd",), ("rev",)):
        with pytest.raises(AssertionError):
            check_grads(p, (X3,), order=2, modes=modes)


def test_check_grads_float32_and_complex():
    check_grads(lambda x: wnp.tanh(x) * x, (X3.astype(np.float32),), order=1)
    check_grads(lambda z: z * z + wnp.exp(z), (np.array([0.1 + 0.2j, -0.3j]),), order=2)
    check_grads(lambda z: wnp.abs(z) ** 2, (np.array([0.1 + 0.2j, 1 - 0.3j]),), order=1)


def test_check_grads_holds_integer_arguments_fixed():
    check_grads(lambda x, n: x**n, (1.3, 3), order=2)


def test_check_grads_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown mode"):
        check_grads(wnp.sin, (1.0,), modes=("sideways",))


def test_check_grads_catches_vjp_of_the_wrong_shape():
    # A VJP that forgets to sum a broadcast cotangent back down must fail, even though the
    # wrong-shaped cotangent would broadcast against the direction in the inner product.
    p = Primitive("bcast_bad", lambda x: np.broadcast_to(x, (2, 3)))
    p.defjvp(lambda t, ans, x: wnp.broadcast_to(t, (2, 3)))
    p.defvjp(lambda g, ans, x: g)
    with pytest.raises(AssertionError, match="shape"):
        check_grads(p, (np.ones((1, 3)),), order=1, modes=("rev",))
