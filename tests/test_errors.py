"""Errors that say how to fix them; in-place changes to saved arrays; leaked tracers; the tape
and its saved values are freed."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import wengert as W
import wengert.numpy as wnp
from wengert import UnexpectedTracerError, grad, hessian, jacfwd, jacrev, jvp, value_and_grad, vjp
from wengert.api import SavedArrayMutatedError
from wengert.core import VJPTrace, primal_value

X3 = np.array([0.3, -0.7, 1.1])


# ---------------------------------------------------------------------------------------------
# Outputs and arguments
# ---------------------------------------------------------------------------------------------


def test_grad_of_non_scalar_output_suggests_sum_or_vjp():
    with pytest.raises(TypeError) as e:
        grad(lambda x: x * 2)(X3)
    msg = str(e.value)
    assert "shape (3,)" in msg and ".sum()" in msg and "vjp" in msg and "jacrev" in msg


def test_grad_of_tuple_output_suggests_has_aux():
    with pytest.raises(TypeError, match="has_aux=True"):
        grad(lambda x: (wnp.sum(x), x))(X3)


def test_grad_of_complex_output_suggests_holomorphic():
    with pytest.raises(TypeError, match="holomorphic=True"):
        grad(lambda x: x * 1j)(1.0)


def test_has_aux_without_a_pair():
    with pytest.raises(TypeError, match=r"pair \(output, aux\)"):
        grad(lambda x: x, has_aux=True)(1.0)
    with pytest.raises(TypeError, match=r"pair \(output, aux\)"):
        vjp(lambda x: x, 1.0, has_aux=True)


def test_cotangent_of_wrong_shape():
    out, pull = vjp(lambda x: x * 2, X3)
    with pytest.raises(ValueError, match=r"shape \(2,\).*output it pairs with has shape \(3,\)"):
        pull(np.ones(2))


def test_cotangent_of_wrong_dtype():
    out, pull = vjp(lambda x: x * 2, X3)
    with pytest.raises(TypeError, match=r"dtype float32.*astype\(np.float64\)"):
        pull(np.ones(3, np.float32))


def test_cotangent_of_wrong_structure():
    out, pull = vjp(lambda x: (x, x * 2), X3)
    with pytest.raises(ValueError, match="structure of the output"):
        pull(np.ones(3))


def test_tangent_of_wrong_shape():
    with pytest.raises(ValueError, match=r"argument 0 has shape \(2,\).*primal has shape \(3,\)"):
        jvp(lambda x: x, (X3,), (np.ones(2),))


def test_tangent_of_wrong_dtype():
    with pytest.raises(TypeError, match=r"dtype float32.*astype\(np.float64\)"):
        jvp(lambda x: x, (X3,), (np.ones(3, np.float32),))
    with pytest.raises(TypeError, match="complex"):
        jvp(lambda x: x, (1.0,), (1j,))


def test_tangent_structure_and_count():
    with pytest.raises(ValueError, match="one tangent per primal"):
        jvp(lambda x, y: x, (1.0, 2.0), (1.0,))
    with pytest.raises(ValueError, match="structure of primals"):
        jvp(lambda p: p["a"], ({"a": 1.0},), ({"b": 1.0},))
    with pytest.raises(TypeError, match="must be tuples"):
        jvp(lambda x: x, 1.0, 1.0)


@pytest.mark.parametrize("argnums", [1, -2, (0, 1), (0, 5)])
def test_argnums_out_of_range(argnums):
    for t in (grad, jacfwd, jacrev):
        with pytest.raises(ValueError, match=r"out of range.*1 positional argument.*0\.\.0"):
            t(lambda x: x, argnums=argnums)(1.0)


def test_argnums_not_an_integer():
    with pytest.raises(TypeError, match="argnums must be integers"):
        grad(lambda x: x, argnums="x")(1.0)


@pytest.mark.parametrize(
    "value, what",
    [("abc", "which is 'abc'"), (None, "which is None"), (b"x", "which is b'x'")],
)
def test_differentiating_wrt_str_or_none_names_the_argument(value, what):
    with pytest.raises(TypeError, match=rf"argument 1, {what}.*Move it out of argnums"):
        grad(lambda x, y: x, argnums=1)(1.0, value)


def test_nothing_to_differentiate():
    with pytest.raises(TypeError, match="nothing to differentiate"):
        grad(lambda x: 1.0)(())


def test_output_not_depending_on_input_is_zeros_not_an_error():
    g = grad(lambda x, y: y * 2.0, argnums=0)(X3, 1.0)
    assert isinstance(g, np.ndarray) and g.shape == (3,) and not g.any()
    (ct,) = vjp(lambda x: np.ones(2), X3)[1](np.ones(2))
    assert ct.shape == (3,) and not ct.any()
    _, t = jvp(lambda x: np.ones(2), (X3,), (X3,))
    assert t.shape == (2,) and not t.any()


# ---------------------------------------------------------------------------------------------
# Tracers outside their transformation, conversions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["grad", "jvp"])
def test_leaked_tracer_raises(mode):
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2

    if mode == "grad":
        grad(f)(1.0)
    else:
        jvp(f, (1.0,), (1.0,))
    with pytest.raises(UnexpectedTracerError, match="stop_gradient"):
        leaked[0] * 3
    with pytest.raises(UnexpectedTracerError):
        wnp.sin(leaked[0])
    with pytest.raises(UnexpectedTracerError):
        grad(lambda y: y * leaked[0])(1.0)


def test_leaked_tracer_into_custom_rules_raises():
    leaked = []
    grad(lambda x: leaked.append(x) or x)(1.0)

    @W.custom_vjp
    def f(x):
        return x

    f.defvjp(lambda x: (x, None), lambda r, g: (g,))
    with pytest.raises(UnexpectedTracerError):
        f(leaked[0])
    with pytest.raises(UnexpectedTracerError):
        W.checkpoint(wnp.sin)(leaked[0])


@pytest.mark.parametrize(
    "convert", [float, int, complex, np.asarray, lambda t: t.item(), lambda t: [0, 1][t]]
)
def test_converting_a_tracer_is_a_clear_error(convert):
    with pytest.raises(TypeError, match="stop_gradient"):
        grad(lambda x: convert(x))(1.0)


def test_bool_of_tracer_is_allowed_for_control_flow():
    assert grad(lambda x: x * 2 if x else x)(1.0) == 2.0


def test_assigning_into_a_tracer_is_a_clear_error():
    def f(x):
        x[0] = 1.0
        return wnp.sum(x)

    with pytest.raises(TypeError, match="wengert.numpy.where"):
        grad(f)(X3)


# ---------------------------------------------------------------------------------------------
# Arrays saved for the backward sweep and then written in place
# ---------------------------------------------------------------------------------------------


def test_constant_written_inside_f_names_the_operation():
    c = np.array([1.0, 2.0, 3.0])

    def f(x):
        y = wnp.sin(x) * c
        c[0] = 10.0
        return wnp.sum(y)

    with pytest.raises(SavedArrayMutatedError) as e:
        grad(f)(X3)
    msg = str(e.value)
    assert "'c'" in msg and "'multiply'" in msg and "copy()" in msg
    assert isinstance(e.value, ValueError)
    assert c.flags.writeable and c[0] == 1.0


def test_in_place_operator_on_saved_constant():
    box = {"c": np.array([1.0, 2.0])}

    def f(x):
        c = box["c"]
        y = wnp.exp(x) + c * x
        c += 1
        return wnp.sum(y)

    with pytest.raises(SavedArrayMutatedError, match="'multiply'"):
        grad(f)(np.ones(2))
    assert box["c"].flags.writeable


@pytest.mark.parametrize("how", ["method", "out", "view", "multiline"])
def test_other_ways_of_writing_a_saved_constant(how):
    c = np.array([1.0, 2.0, 3.0])

    def f(x):
        y = x * c
        if how == "method":
            c.fill(3.0)
        elif how == "out":
            np.add(c, 1.0, out=c)
        elif how == "view":
            v = c[1:]
            v[0] = 4.0
        else:
            c[
                0  # a statement over several lines
            ] = 4.0
        return wnp.sum(y)

    with pytest.raises(SavedArrayMutatedError) as e:
        grad(f)(X3)
    name = "'v' (a view of an array" if how == "view" else "'c' (shape (3,)"
    assert name in str(e.value) and "'multiply'" in str(e.value)
    np.testing.assert_array_equal(c, [1.0, 2.0, 3.0])


def test_unrelated_read_only_write_is_not_blamed_on_a_saved_array():
    c = np.array([1.0, 2.0, 3.0])

    def f(x):
        y = x * c
        np.broadcast_to(np.ones(1), (3,))[0] = 2.0  # read-only for NumPy's own reasons
        return wnp.sum(y)

    with pytest.raises(ValueError) as e:
        grad(f)(X3)
    msg = str(e.value)
    assert "'c'" not in msg and "If you wrote to one of them" in msg


def test_input_written_inside_f_names_argument():
    x = X3.copy()

    def f(xt):
        y = wnp.sin(xt)  # sin's VJP reads its input (tanh's would read only its output)
        x[1] = 5.0
        return wnp.sum(y)

    with pytest.raises(SavedArrayMutatedError, match=r"argument 0 .*'sin'"):
        grad(f)(x)
    assert x.flags.writeable and x[1] == X3[1]


def test_input_written_between_vjp_and_vjp_fn():
    x = X3.copy()
    out, pull = vjp(lambda x: wnp.sum(wnp.sin(x)), x)
    assert x.flags.writeable  # the user's array stays usable
    x[0] = 2.0
    with pytest.raises(SavedArrayMutatedError, match=r"vjp_fn: argument 0 .*'sin'"):
        pull(1.0)
    x[0] = X3[0]  # changed back: the tape is consistent again
    np.testing.assert_allclose(pull(1.0)[0], np.cos(X3))


def test_constant_and_output_written_between_vjp_and_vjp_fn():
    c = np.array([1.0, 2.0, 3.0])
    out, pull = vjp(lambda x: wnp.exp(x * c), X3)
    c[2] = 0.0
    with pytest.raises(SavedArrayMutatedError, match="'multiply'"):
        pull(np.ones(3))
    c[2] = 3.0
    out[0] = 0.0  # exp's VJP uses its output
    with pytest.raises(SavedArrayMutatedError, match="the output .*'exp'"):
        pull(np.ones(3))


def test_nested_inner_grad_does_not_unguard_the_outer_tape():
    c = np.array([1.0, 2.0, 3.0])

    def outer(x):
        g = grad(lambda y: wnp.sum(c * y * x))(x)  # inner and outer both save c
        c[0] = 100.0  # the outer tape still needs c
        return wnp.sum(g)

    with pytest.raises(SavedArrayMutatedError, match="'c'"):
        grad(outer)(np.ones(3))
    assert c.flags.writeable and c[0] == 1.0


def test_arrays_writable_and_unchanged_after_grad_and_after_errors():
    x = X3.copy()
    c = np.array([2.0, 3.0, 4.0])
    view = c[:2]
    grad(lambda x: wnp.sum(x[:2] * view) + wnp.sum(x * c))(x)  # a view saved before its base
    assert x.flags.writeable and c.flags.writeable and view.flags.writeable
    np.testing.assert_array_equal(x, X3)
    np.testing.assert_array_equal(c, [2.0, 3.0, 4.0])

    def boom(x):
        wnp.sum(x * c)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        grad(boom)(x)
    with pytest.raises(ValueError, match="boom"):
        vjp(boom, x)
    assert x.flags.writeable and c.flags.writeable
    hessian(lambda x: wnp.sum(x**3 * c))(x)
    jacrev(lambda x: x * c)(x)
    assert x.flags.writeable and c.flags.writeable


def test_read_only_input_stays_read_only():
    x = X3.copy()
    x.flags.writeable = False
    grad(lambda x: wnp.sum(x**2))(x)
    assert not x.flags.writeable


def test_returned_gradient_does_not_alias_the_cotangent():
    u = np.ones(3)
    out, pull = vjp(lambda x: x + 1.0, X3)
    (ct,) = pull(u)
    ct[0] = 7.0
    assert u[0] == 1.0


def test_user_inputs_are_not_mutated():
    x, c = X3.copy(), np.array([1.0, 2.0, 3.0])
    before = (x.copy(), c.copy())
    grad(lambda x: wnp.sum(wnp.sin(x) * c))(x)
    value_and_grad(lambda x: wnp.sum(x * x))(x)
    jacfwd(lambda x: x * c)(x)
    vjp(lambda x: x * c, x)[1](np.ones(3))
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(c, before[1])


# ---------------------------------------------------------------------------------------------
# Memory: the tape dies with the transformation; the sweep frees saved values as it goes
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def traces(monkeypatch):
    """Weak references to every VJPTrace created during the test."""
    refs: list = []
    original = VJPTrace.__init__

    def init(self, level):
        original(self, level)
        refs.append(weakref.ref(self))

    monkeypatch.setattr(VJPTrace, "__init__", init)
    return refs


def test_tape_freed_after_grad(traces):
    f = lambda x: wnp.sum(wnp.sin(x) * wnp.exp(x))
    grad(f)(X3)
    assert len(traces) == 1
    assert traces[0]() is None  # freed by reference counting alone
    hessian(f)(X3)
    grad(grad(lambda x: wnp.sin(x) ** 2))(0.3)
    gc.collect()
    assert all(r() is None for r in traces)


def test_tape_freed_after_error(traces):
    with pytest.raises(ZeroDivisionError):
        grad(lambda x: x * (1 / 0))(1.0)
    gc.collect()
    assert traces and all(r() is None for r in traces)


def test_vjp_tape_lives_as_long_as_vjp_fn(traces):
    out, pull = vjp(lambda x: wnp.sin(x) * x, X3)
    pull(np.ones(3))
    assert traces[0]() is not None
    del pull
    gc.collect()
    assert traces[0]() is None


def test_saved_values_released_during_the_sweep():
    """An intermediate saved for the sweep is freed as soon as the sweep has passed the
    operations that saved it, before the sweep reaches the start of the tape."""
    refs: dict = {}
    seen: dict = {}

    @W.custom_vjp
    def probe(x):
        return x

    def bwd(_, g):  # runs last in the sweep: probe is the first operation
        seen["alive"] = refs["mid"]() is not None
        return (g,)

    probe.defvjp(lambda x: (x, None), bwd)

    def f(x):
        a = probe(x)
        b = wnp.exp(a)
        mid = wnp.sin(b)  # saved by cos below, as its input
        refs["mid"] = weakref.ref(primal_value(mid))
        return wnp.sum(wnp.cos(mid))

    g = grad(f)(X3)
    assert seen["alive"] is False
    assert refs["mid"]() is None
    expected = -np.sin(np.sin(np.exp(X3))) * np.cos(np.exp(X3)) * np.exp(X3)
    np.testing.assert_allclose(g, expected)


def test_vjp_fn_keeps_saved_values_for_repeated_calls():
    out, pull = vjp(lambda x: wnp.cos(wnp.sin(x)), X3)
    a = pull(np.ones(3))[0]
    b = pull(np.ones(3))[0]
    np.testing.assert_allclose(a, b)
