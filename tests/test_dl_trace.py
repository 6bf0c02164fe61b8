"""wengert.dl tracing: dlfeval, dlgradient (retain_data, enable_higher_derivatives), the
container walk, and dljacobian / dldivergence / dllaplacian, against wengert's own grad,
jacrev and hessian and against analytic derivatives."""

from __future__ import annotations

from collections import OrderedDict, defaultdict, namedtuple

import numpy as np
import pytest

import wengert as W
import wengert.numpy as wnp
from wengert.dl import (
    dlarray,
    dldivergence,
    dlfeval,
    dlgradient,
    dljacobian,
    dllaplacian,
    extractdata,
    iter_dlarrays,
    map_dlarrays,
)
from wengert.dl._trace import _frames


def rng(seed=0):
    return np.random.default_rng(seed)


def close(a, b, tol=1e-10):
    a = extractdata(a)
    b = np.asarray(b)
    if a.size == b.size:
        b = b.reshape(a.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=1e-12)


def traced(x) -> bool:
    return isinstance(x._value, W.core.Tracer)


Pair = namedtuple("Pair", "a b")


class Box:
    """A container that maps its own dlarrays, like dlnetwork and its Table."""

    def __init__(self, items, tag="box"):
        self.items = list(items)
        self.tag = tag

    def _map_dlarrays(self, fn):
        return Box([fn(v) if isinstance(v, dlarray) else v for v in self.items], self.tag)


# ---------------------------------------------------------------------------------------------
# map_dlarrays / iter_dlarrays
# ---------------------------------------------------------------------------------------------


def test_map_and_iter_walk_containers_in_order_without_mutation():
    a, b, c, d, e = (dlarray(np.full(2, float(k))) for k in range(5))
    od = OrderedDict(z=c, y=d)
    dd = defaultdict(list, {"k": e})
    obj = {"p": [a, (b, 3)], "q": Pair(od, Box([dd["k"], "s"])), "r": dd, "n": None}
    found = list(iter_dlarrays(obj))
    assert [float(x._value[0]) for x in found] == [0, 1, 2, 3, 4, 4]
    out = map_dlarrays(obj, lambda x: dlarray(x._value + 10))
    assert float(out["p"][0]._value[0]) == 10 and out["p"][1][1] == 3
    assert isinstance(out["q"], Pair) and isinstance(out["q"].a, OrderedDict)
    assert list(out["q"].a) == ["z", "y"] and isinstance(out["q"].b, Box)
    assert out["q"].b.items[1] == "s" and float(out["q"].b.items[0]._value[0]) == 14
    assert isinstance(out["r"], defaultdict) and out["r"].default_factory is list
    assert out["n"] is None
    # the original is untouched
    assert obj["p"][0] is a and float(a._value[0]) == 0 and obj["q"].b.items[0] is e


def test_map_leaves_other_values_alone():
    x = np.ones(3)
    assert map_dlarrays(x, lambda d: 1 / 0) is x
    assert map_dlarrays("text", lambda d: 1 / 0) == "text"
    assert list(iter_dlarrays([1, "a", np.ones(2)])) == []


# ---------------------------------------------------------------------------------------------
# dlfeval
# ---------------------------------------------------------------------------------------------


def test_dlfeval_traces_copies_and_returns_untraced_outputs():
    x = dlarray(rng().normal(size=(3, 4)), "CB")
    v0 = x._value
    seen = {}

    def f(x, c):
        seen["traced"] = traced(x)
        seen["const"] = isinstance(c, np.ndarray)
        y = np.sin(x) * c
        return {"y": y, "pair": (y, 2.0), "box": Box([y])}

    out = dlfeval(f, x, np.full((3, 4), 2.0))
    assert seen == {"traced": True, "const": True}
    assert x._value is v0 and not traced(x)  # the user's dlarray is not changed
    assert v0.flags.writeable  # and its data is writable again
    assert not traced(out["y"]) and out["y"].fmt == "CB"
    assert not traced(out["pair"][0]) and out["pair"][1] == 2.0
    assert not traced(out["box"].items[0])
    close(out["y"], 2 * np.sin(v0))
    assert _frames.get() == ()


def test_nothing_is_recorded_outside_dlfeval():
    x = dlarray(np.array([1.0, 2.0]))
    y = np.sum(x * x)
    assert not traced(y)
    with pytest.raises(RuntimeError, match="not inside dlfeval"):
        dlgradient(y, x)


def test_logical_dlarrays_stay_constant():
    m = dlarray(np.array([True, False, True]))

    def f(m):
        return traced(m)

    assert dlfeval(f, m) is False


def test_exception_inside_fun_closes_trace_and_unlocks():
    data = rng().normal(size=4)
    x = dlarray(data)

    def bad(x):
        np.sum(x * x)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        dlfeval(bad, x)
    assert _frames.get() == ()
    x._value[0] = 1.0  # writable again
    assert W.core._trace_stack.get() == ()


def test_same_dlarray_twice_is_one_input():
    x = dlarray(np.array([1.0, 2.0, 3.0]))

    def f(a, b):
        return dlgradient(np.sum(a * b), a)

    close(dlfeval(f, x, x), 2 * x._value)


# ---------------------------------------------------------------------------------------------
# dlgradient against wengert.grad
# ---------------------------------------------------------------------------------------------


def _loss(p, x):
    h = wnp.tanh(p["W"] @ x + p["b"])
    return wnp.sum(wnp.log1p(h**2)) + wnp.sum(p["W"] ** 3) * 0.1


def test_gradient_matches_wengert_grad_with_structure_and_labels():
    g = rng(1)
    P = {"W": g.normal(size=(3, 4)), "b": g.normal(size=(3, 1))}
    X = g.normal(size=(4, 5))
    want = W.grad(_loss)(P, X)
    params = {"W": dlarray(P["W"]), "b": dlarray(P["b"], "CU")}

    def f(params, X):
        loss = dlarray(_loss({k: v._value for k, v in params.items()}, X._value))
        return loss, dlgradient(loss, params)

    loss, grads = dlfeval(f, params, dlarray(X))
    close(loss, _loss(P, X))
    assert set(grads) == {"W", "b"} and grads["b"].fmt == "CU"
    for k in P:
        close(grads[k], want[k])
        assert not traced(grads[k])


def test_several_xs_share_one_sweep_and_keep_structure():
    x, y = dlarray(np.array([1.0, 2.0])), dlarray(np.array([3.0]), "C")

    def f(x, y):
        loss = np.sum(x * x) * np.sum(y)
        gx, gyz = dlgradient(loss, x, [y, (y,)])
        return gx, gyz

    gx, gyz = dlfeval(f, x, y)
    close(gx, 2 * x._value * 3.0)
    assert isinstance(gyz, list) and isinstance(gyz[1], tuple)
    close(gyz[0], [5.0])
    assert gyz[1][0].fmt == "C"


def test_gradient_of_unrelated_x_is_zeros_and_float32_kept():
    x = dlarray(np.ones(3, np.float32))
    z = dlarray(np.ones((2, 2), np.float32))

    def f(x, z):
        return dlgradient(np.sum(x * x), x, z)

    gx, gz = dlfeval(f, x, z)
    assert gx.dtype == np.float32 and gz.dtype == np.float32
    np.testing.assert_array_equal(extractdata(gz), np.zeros((2, 2)))


def test_gradient_with_respect_to_intermediate_value():
    x = dlarray(np.array([0.5, 1.5]))

    def f(x):
        h = np.exp(x)
        loss = np.sum(h**2)
        gh, gx = dlgradient(loss, h, x)
        return gh, gx

    gh, gx = dlfeval(f, x)
    close(gh, 2 * np.exp(x._value))
    close(gx, 2 * np.exp(2 * x._value))


def test_scalar_of_shape_one_is_accepted():
    x = dlarray(np.array([[1.0, 2.0]]), "CB")

    def f(x):
        loss = np.sum(x * x, axis=(0, 1))  # MATLAB keeps the reduced axes: shape (1, 1)
        return dlgradient(loss, x)

    g = dlfeval(f, x)
    close(g, 2 * x._value)
    assert g.fmt == "CB"


def test_table_like_container_of_learnables():
    box = Box([dlarray(np.array([1.0, 2.0])), "name", dlarray(np.array([3.0]))])

    def f(box):
        loss = np.sum(box.items[0] ** 2) + np.sum(box.items[2] ** 3)
        return dlgradient(loss, box)

    g = dlfeval(f, box)
    assert isinstance(g, Box) and g.items[1] == "name"
    close(g.items[0], [2.0, 4.0])
    close(g.items[2], [27.0])


# ---------------------------------------------------------------------------------------------
# Errors, with MATLAB's meaning
# ---------------------------------------------------------------------------------------------


def test_error_non_scalar_suggests_sum():
    x = dlarray(np.ones(3))
    with pytest.raises(ValueError, match=r"non-scalar.*sum"):
        dlfeval(lambda x: dlgradient(x * 2, x), x)


def test_error_complex_value():
    x = dlarray(np.ones(3))
    with pytest.raises(TypeError, match="complex"):
        dlfeval(lambda x: dlgradient(np.sum(x * 1j), x), x)


def test_error_value_not_traced():
    x = dlarray(np.ones(3))
    with pytest.raises(RuntimeError, match="not traced"):
        dlfeval(lambda x: dlgradient(dlarray(np.array(1.0)), x), x)
    with pytest.raises(RuntimeError, match="not traced"):
        dlfeval(lambda x: dlgradient(np.sum(dlarray(extractdata(x))), x), x)


def test_error_x_not_traced():
    x = dlarray(np.ones(3))
    other = dlarray(np.ones(3))
    with pytest.raises(RuntimeError, match="x is not traced"):
        dlfeval(lambda x: dlgradient(np.sum(x * x), other), x)


def test_error_no_x_and_bad_x():
    x = dlarray(np.ones(3))
    with pytest.raises(TypeError, match="at least one x"):
        dlfeval(lambda x: dlgradient(np.sum(x)), x)
    with pytest.raises(TypeError, match="dlarrays"):
        dlfeval(lambda x: dlgradient(np.sum(x), 3.0), x)


def test_second_call_needs_retain_data():
    x = dlarray(np.array([1.0, 2.0]))

    def f(x):
        loss = np.sum(x**2)
        dlgradient(loss, x)
        return dlgradient(loss, x)

    with pytest.raises(RuntimeError, match="retain_data=True"):
        dlfeval(f, x)

    def g(x):
        a = np.sum(x**2)
        b = np.sum(x**3)
        ga = dlgradient(a, x, retain_data=True)
        gb = dlgradient(b, x)
        return ga, gb

    ga, gb = dlfeval(g, x)
    close(ga, 2 * x._value)
    close(gb, 3 * x._value**2)


def test_gradient_after_dlfeval_returned_is_an_error():
    x = dlarray(np.array([1.0, 2.0]))
    assert not traced(dlfeval(lambda x: x, x))
    keep = {}

    def f(x):
        keep["y"] = np.sum(x * x)
        return 0

    dlfeval(f, x)
    with pytest.raises(RuntimeError, match="has returned"):
        dlfeval(lambda z: dlgradient(keep["y"], z), x)


# ---------------------------------------------------------------------------------------------
# enable_higher_derivatives
# ---------------------------------------------------------------------------------------------


def test_second_derivative_analytic():
    x = dlarray(np.array([0.3, -1.2, 2.0]))

    def f(x):
        y = np.sum(x**3 + np.sin(x))
        g = dlgradient(y, x, enable_higher_derivatives=True)
        assert traced(g)
        h = dlgradient(np.sum(g), x)
        return g, h

    g, h = dlfeval(f, x)
    v = x._value
    close(g, 3 * v**2 + np.cos(v))
    close(h, 6 * v - np.sin(v))


def test_hessian_rows_match_wengert_hessian():
    A = rng(2).normal(size=(3, 3))

    def fn(v):
        return wnp.sum(wnp.tanh(A @ v) ** 2) + wnp.prod(v)

    v = rng(3).normal(size=3)
    H = W.hessian(fn)(v)

    def f(x):
        y = dlarray(fn(x._value))
        g = dlgradient(y, x, enable_higher_derivatives=True)
        rows = [dlgradient(g[i], x, retain_data=True) for i in range(3)]
        return rows

    rows = dlfeval(f, dlarray(v))
    for i in range(3):
        close(rows[i], H[i])


def test_gradient_penalty_double_backward_through_network():
    g0 = rng(4)
    P = {"W1": g0.normal(size=(5, 3)), "W2": g0.normal(size=(1, 5))}
    X = g0.normal(size=(3, 4))

    def net(p, x):
        return p["W2"] @ wnp.tanh(p["W1"] @ x)

    def penalty(p):
        gx = W.grad(lambda x: wnp.sum(net(p, x)))(X)
        return wnp.sum(gx**2) + wnp.sum(net(p, X))

    want = W.grad(penalty)(P)

    def f(params, x):
        p = {k: v._value for k, v in params.items()}
        out = dlarray(wnp.sum(net(p, x._value)))
        gx = dlgradient(out, x, enable_higher_derivatives=True)
        loss = np.sum(gx**2) + out
        return loss, dlgradient(loss, params)

    loss, grads = dlfeval(f, {k: dlarray(v) for k, v in P.items()}, dlarray(X))
    close(loss, penalty(P))
    for k in P:
        close(grads[k], want[k])


def test_higher_derivatives_keep_the_trace():
    x = dlarray(np.array([1.0, 2.0]))

    def f(x):
        y = np.sum(x**4)
        dlgradient(y, x, enable_higher_derivatives=True)
        return dlgradient(y, x)  # still allowed: higher derivatives imply retaining

    close(dlfeval(f, x), 4 * x._value**3)


def test_nested_dlfeval_has_its_own_level():
    x = dlarray(np.array([0.7, -0.4]))

    def inner(x):
        return dlgradient(np.sum(np.sin(x) * x), x)

    def outer(x):
        g = dlfeval(inner, x)  # traced by the outer trace: differentiable again
        return dlgradient(np.sum(g), x)

    v = x._value
    # d/dx (cos x · x + sin x) = 2 cos x − x sin x
    close(dlfeval(outer, x), 2 * np.cos(v) - v * np.sin(v))


# ---------------------------------------------------------------------------------------------
# dljacobian, dldivergence, dllaplacian
# ---------------------------------------------------------------------------------------------


def _field(xv):
    """u: (3, N) from x: (2, N), one observation per column."""
    a, b = xv[0:1], xv[1:2]
    return wnp.concatenate([wnp.sin(a) * b, a * b**2, wnp.exp(a - b)], axis=0)


def test_dljacobian_per_observation_matches_jacrev():
    X = rng(5).normal(size=(2, 4))
    J = W.jacrev(_field)(X)  # (3, 4, 2, 4): block-diagonal in the observation axis
    x = dlarray(X, "CB")

    def f(x):
        return dljacobian(dlarray(_field(x._value), "CB"), x, "C")

    jac = dlfeval(f, x)
    assert jac.shape == (2, 4, 3) and jac.fmt == "CBU"
    for n in range(4):
        close(extractdata(jac)[:, n, :], J[:, n, :, n].T)
    jac0 = dlfeval(lambda x: dljacobian(dlarray(_field(x._value)), x, 0), dlarray(X))
    close(jac0, extractdata(jac))


def test_dljacobian_single_component_drops_trailing_axis():
    x = dlarray(rng(6).normal(size=(1, 5)))

    def f(x):
        u = x**3
        return dljacobian(u, x, 0)

    jac = dlfeval(f, x)
    assert jac.shape == (1, 5)
    close(jac, 3 * x._value**2)


def test_dldivergence():
    X = rng(7).normal(size=(2, 3))
    x = dlarray(X, "CB")

    def f(x):
        a, b = x[0:1], x[1:2]
        u = dlarray(wnp.concatenate([(a * b)._value, (np.sin(b) * a)._value], axis=0), "CB")
        return dldivergence(u, x, "C")

    div = dlfeval(f, x)
    assert div.shape == (1, 3) and div.fmt == "CB"
    close(div, X[1] + X[0] * np.cos(X[1]))


def test_dllaplacian_of_sin_x_times_y_squared():
    X = rng(8).normal(size=(2, 6))

    def f(x):
        u = np.sin(x[0:1]) * x[1:2] ** 2
        return dllaplacian(u, x, 0)

    lap = dlfeval(f, dlarray(X))
    assert lap.shape == (1, 6)
    close(lap, -np.sin(X[0]) * X[1] ** 2 + 2 * np.sin(X[0]))


def test_dllaplacian_several_components_and_pinn_loss_gradient():
    X = rng(9).normal(size=(2, 3))
    w = rng(10).normal(size=(2, 1))

    def u_of(wv, xv):
        return wnp.concatenate([wnp.sum(wnp.tanh(wv * xv), axis=0, keepdims=True), xv[0:1] ** 3], 0)

    def resid(wv):
        lap = 0
        for i in range(2):
            # Laplacian of component 0 by wengert: Σ ∂²u0/∂x_i² per observation
            d2 = W.hessian(lambda xv: wnp.sum(u_of(wv, xv)[0]))(X)
            lap = lap + wnp.einsum("nn->n", d2[i, :, i, :])
        return wnp.sum(lap**2)

    want_lap0 = np.asarray(
        sum(np.einsum("nn->n", W.hessian(lambda xv: wnp.sum(u_of(w, xv)[0]))(X)[i, :, i, :]) for i in range(2))
    )
    want_grad = W.grad(resid)(w)

    def f(wd, x):
        u = dlarray(u_of(wd._value, x._value))
        lap = dllaplacian(u, x, 0)  # (1, 3, 2): one Laplacian per u component
        loss = np.sum(lap[:, :, 0] ** 2)
        return lap, dlgradient(loss, wd)

    lap, g = dlfeval(f, dlarray(w), dlarray(X))
    assert lap.shape == (1, 3, 2)
    close(extractdata(lap)[0, :, 0], want_lap0)
    close(extractdata(lap)[0, :, 1], 6 * X[0])
    close(g, want_grad)


def test_differential_operator_errors():
    x = dlarray(np.ones((2, 3)), "CB")

    def f(x, which):
        u = x * 2
        if which == "label":
            return dljacobian(u, x, "T")
        if which == "unformatted":
            return dljacobian(dlarray(u._value), dlarray(x._value) * 1, "C")
        if which == "size":
            return dldivergence(np.sum(u, axis=0), x, "C")
        return dljacobian(u, x, 5)

    with pytest.raises(ValueError, match="labelled 'T'"):
        dlfeval(f, x, "label")
    with pytest.raises(ValueError, match="unformatted"):
        dlfeval(f, x, "unformatted")
    with pytest.raises(ValueError, match="components"):
        dlfeval(f, x, "size")
    with pytest.raises(ValueError, match="out of range"):
        dlfeval(f, x, "range")
    with pytest.raises(TypeError, match="dlarray"):
        dlfeval(lambda x: dljacobian(x._value, x, 0), x)
