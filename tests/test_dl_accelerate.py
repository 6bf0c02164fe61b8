"""dlaccelerate: a replay equals a direct call (values and gradients), the cache keys, hits,
misses and statistics, and the detection of what a trace would freeze."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from wengert.dl import (
    AcceleratedFunction,
    adamupdate,
    crossentropy,
    dlaccelerate,
    dlarray,
    dlfeval,
    dlgradient,
    dllaplacian,
    dlnetwork,
    extractdata,
    featureInputLayer,
    forward,
    fullyConnectedLayer,
    softmaxLayer,
    tanhLayer,
)
from wengert.dl._trace import _frames
from wengert.nn.functional import relu


def rng(seed=0):
    return np.random.default_rng(seed)


def same(a, b, tol=0.0):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            same(u, v, tol)
        return
    if not isinstance(a, dlarray):
        assert a == b
        return
    a, b = extractdata(a), extractdata(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    if tol:
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(a, b)


def params(seed=0, dtype=np.float64):
    g = rng(seed)
    return {
        "W1": dlarray(g.normal(size=(8, 4)).astype(dtype)),
        "b1": dlarray(np.zeros((8, 1), dtype)),
        "W2": dlarray(g.normal(size=(3, 8)).astype(dtype)),
    }


def batch(seed, n=5, dtype=np.float64):
    g = rng(100 + seed)
    return dlarray(g.normal(size=(4, n)).astype(dtype), "CB"), dlarray(
        g.normal(size=(3, n)).astype(dtype), "CB"
    )


def tanh_loss(p, X, T):
    h = np.tanh(p["W1"] @ X + p["b1"])
    loss = np.mean((p["W2"] @ h - T) ** 2)
    return loss, dlgradient(loss, p)


def relu_loss(p, X, T):
    h = dlarray(relu((p["W1"] @ X + p["b1"])._value))
    loss = np.mean((p["W2"] @ h - T) ** 2)
    return loss, dlgradient(loss, p)


def check_replays(fun, p, n_batches=3, tol=0.0, **kw):
    acc = dlaccelerate(fun)
    for k in range(n_batches):
        X, T = batch(k, **kw)
        want = dlfeval(fun, p, X, T)
        got = dlfeval(acc, p, X, T)
        same(got[0], want[0], tol)
        for name in p:
            same(got[1][name], want[1][name], tol)
    assert acc.hits == n_batches - 1 and acc.misses == 1
    return acc


# ---------------------------------------------------------------------------------------------
# Replays equal direct calls
# ---------------------------------------------------------------------------------------------


def test_model_loss_replay_is_bitwise_equal_with_compiled_backward():
    acc = check_replays(tanh_loss, params())
    (info,) = acc.cache_info()
    assert info["replayable"] and info["backward"] == "compiled"


def test_relu_mask_rule_is_called_again_inside_the_compiled_backward():
    acc = check_replays(relu_loss, params())
    assert acc.cache_info()[0]["backward"] == "compiled, 1 rule call(s)"


def test_nan_in_a_compiled_backward_falls_back_to_the_rules():
    def f(x, c):
        y = np.sum(c * np.sqrt(x))
        return y, dlgradient(y, x)

    acc = dlaccelerate(f)
    x0 = dlarray(np.array([0.05, 0.1, 0.2, 0.15]))
    c0 = dlarray(np.array([1.0, 2.0, 1.0, 3.0]))
    dlfeval(acc, x0, c0)
    assert acc.cache_info()[0]["backward"] == "compiled"
    # sqrt'(0)·0: the rules give an exact 0 where the cotangent is 0 (NaN safety)
    x, c = dlarray(np.array([0.0, 0.1, 0.2, 0.1])), dlarray(np.array([0.0, 1.0, 1.0, 1.0]))
    want = dlfeval(f, x, c)
    got = dlfeval(acc, x, c)
    assert acc.hits == 1 and extractdata(want[1])[0] == 0.0
    same(got[1], want[1])


def test_float32_is_kept():
    p = params(dtype=np.float32)
    acc = check_replays(tanh_loss, p, dtype=np.float32)
    X, T = batch(7, dtype=np.float32)
    loss, g = dlfeval(acc, p, X, T)
    assert loss.dtype == np.float32 and g["W1"].dtype == np.float32


def test_dlnetwork_model_loss_hits_across_updated_networks():
    net = dlnetwork(
        [featureInputLayer(4), fullyConnectedLayer(6), tanhLayer(), fullyConnectedLayer(3), softmaxLayer()],
        rng=np.random.default_rng(1),
    )
    g = rng(2)

    def model_loss(net, X, T):
        Y, _ = forward(net, X)
        loss = crossentropy(Y, T)
        return loss, dlgradient(loss, net.learnables)

    acc = dlaccelerate(model_loss)
    avg = avg_sq = None
    for it in range(3):
        X = dlarray(g.normal(size=(4, 8)).astype(np.float32), "CB")
        T = dlarray(np.eye(3, dtype=np.float32)[:, g.integers(0, 3, 8)], "CB")
        want = dlfeval(model_loss, net, X, T)
        got = dlfeval(acc, net, X, T)
        same(got[0], want[0])
        for a, b in zip(got[1].value, want[1].value):
            same(a, b)
        net, avg, avg_sq = adamupdate(net, got[1], avg, avg_sq, it + 1)  # a new network object
    assert acc.hits == 2 and acc.num_traces == 1


def test_higher_derivatives_inside_the_accelerated_function():
    g = rng(3)
    p = {"W": dlarray(g.normal(size=(5, 2))), "v": dlarray(g.normal(size=(1, 5)))}

    def pinn_loss(p, X):
        u = p["v"] @ np.tanh(p["W"] @ X)
        lap = dllaplacian(u, X, 0)
        loss = np.mean((lap + u) ** 2)
        return loss, dlgradient(loss, p)

    acc = dlaccelerate(pinn_loss)
    for k in range(3):
        X = dlarray(rng(10 + k).normal(size=(2, 6)))
        want = dlfeval(pinn_loss, p, X)
        got = dlfeval(acc, p, X)
        same(got[0], want[0], 1e-12)
        for name in p:
            same(got[1][name], want[1][name], 1e-12)
    assert acc.hits == 2


def test_two_gradients_with_retain_data_as_in_a_gan():
    g = rng(4)
    p = {"G": dlarray(g.normal(size=(3, 2))), "D": dlarray(g.normal(size=(1, 3)))}

    def gan_loss(p, Z):
        fake = np.tanh(p["G"] @ Z)
        score = p["D"] @ fake
        loss_g = -np.mean(score)
        loss_d = np.mean(score**2)
        grad_g = dlgradient(loss_g, p["G"], retain_data=True)
        grad_d = dlgradient(loss_d, p["D"])
        return grad_g, grad_d, score

    acc = dlaccelerate(gan_loss)
    for k in range(3):
        Z = dlarray(rng(20 + k).normal(size=(2, 4)))
        want = dlfeval(gan_loss, p, Z)
        got = dlfeval(acc, p, Z)
        for a, b in zip(got, want):
            same(a, b)
    assert acc.hits == 2


def test_accelerated_subfunction_differentiated_outside():
    p = params()

    def model(p, X):
        return p["W2"] @ np.tanh(p["W1"] @ X + p["b1"])

    acc = dlaccelerate(model)

    def loss_fn(p, X, m):
        y = m(p, X)
        loss = np.sum(y**2)
        return loss, dlgradient(loss, p)

    for k in range(3):
        X, _ = batch(k)
        want = dlfeval(loss_fn, p, X, model)
        got = dlfeval(loss_fn, p, X, acc)
        same(got[0], want[0])
        for name in p:
            same(got[1][name], want[1][name])
    assert acc.hits == 2


def test_outside_dlfeval_runs_untraced():
    p = params()

    def model(p, X):
        return np.tanh(p["W1"] @ X)

    acc = dlaccelerate(model)
    for k in range(2):
        X, _ = batch(k)
        same(acc(p, X), model(p, X))
    assert acc.hits == 1

    def needs_trace(x):
        return dlgradient(np.sum(x * x), x)

    with pytest.raises(RuntimeError, match="not inside dlfeval"):
        dlaccelerate(needs_trace)(dlarray(np.ones(2)))


# ---------------------------------------------------------------------------------------------
# The cache: keys, statistics, options
# ---------------------------------------------------------------------------------------------


def test_cache_keys():
    calls = []

    def f(x, scale, table, flag="a"):
        calls.append(1)
        return x * scale + np.sum(dlarray(table))

    acc = dlaccelerate(f)
    t = np.arange(3.0)
    x = dlarray(np.ones((2, 3)), "CB")
    acc(x, 2.0, t)  # miss
    acc(dlarray(np.full((2, 3), 5.0), "CB"), 2.0, t.copy())  # values differ only: hit
    assert (acc.hits, acc.misses) == (1, 1)
    acc(dlarray(np.ones((2, 4)), "CB"), 2.0, t)  # shape
    acc(dlarray(np.ones((2, 3)), "CB"), 3.0, t)  # a Python number's value
    acc(dlarray(np.ones((2, 3)), "SB"), 2.0, t)  # format
    acc(dlarray(np.ones((2, 3), np.float32), "CB"), 2.0, t)  # dtype
    acc(x, 2.0, t + 1)  # a plain array's value (MATLAB: non-dlarray inputs by value)
    acc(x, 2.0, t, flag="b")  # a keyword's value
    assert (acc.hits, acc.misses) == (1, 7) and acc.num_traces == 7
    acc(x, 2.0, t, flag="b")
    assert acc.hits == 2
    assert acc.hit_rate == pytest.approx(100 * 2 / 9)
    assert acc.occupancy == pytest.approx(100 * 7 / 50)
    acc.clear_cache()
    assert (acc.hits, acc.misses, acc.num_traces, acc.hit_rate, acc.occupancy) == (0, 0, 0, 0.0, 0.0)


def test_aliasing_is_part_of_the_key():
    def f(a, b):
        return a * b

    acc = dlaccelerate(f)
    x, y = dlarray(np.array([2.0])), dlarray(np.array([3.0]))
    same(acc(x, x), dlarray(np.array([4.0])))
    same(acc(x, y), dlarray(np.array([6.0])))
    assert acc.num_traces == 2


def test_cache_size_and_enabled():
    acc = dlaccelerate(lambda x: x * 2, cache_size=1)
    acc(dlarray(np.ones(2)))
    with pytest.warns(RuntimeWarning, match="cache is full"):
        out = acc(dlarray(np.ones(3)))
    same(out, dlarray(np.full(3, 2.0)))
    assert acc.num_traces == 1 and acc.occupancy == 100.0
    acc.enabled = False
    acc(dlarray(np.ones(2)))
    assert acc.hits == 0
    with pytest.raises(ValueError, match="check_mode"):
        dlaccelerate(lambda x: x, check_mode="always")
    assert isinstance(dlaccelerate(acc), AcceleratedFunction) and dlaccelerate(acc).function is acc.function
    assert "AcceleratedFunction(function=<lambda>" in repr(acc)


def test_outputs_are_fresh_objects():
    const = np.array([1.0, 2.0])

    def f(x):
        return x * 2, dlarray(const), {"k": const}

    acc = dlaccelerate(f)
    x = dlarray(np.ones(2))
    acc(x)
    a, c, d = acc(x)
    extractdata(c)[0] = 99.0
    d["k"][1] = 99.0
    a2, c2, d2 = acc(x)
    same(c2, dlarray(np.array([1.0, 2.0])))
    np.testing.assert_array_equal(d2["k"], [1.0, 2.0])


# ---------------------------------------------------------------------------------------------
# What a trace would freeze is detected, and the function then runs directly
# ---------------------------------------------------------------------------------------------


def _runs_directly(fun, *arg_sets, match):
    acc = dlaccelerate(fun)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for args in arg_sets:
            same(acc(*args), fun(*args))
    assert any(match in str(m.message) for m in w), [str(m.message) for m in w]
    assert acc.hits == 0 and not acc.cache_info()[0]["replayable"]


def test_value_dependent_control_flow_is_detected():
    def f(x):
        if extractdata(np.sum(x)) > 0:
            return x * 2
        return x * 3

    x = dlarray(np.array([1.0, 2.0]))
    _runs_directly(f, (x,), (-x,), (x,), match="computed from the input values")


def test_random_numbers_are_detected():
    g = np.random.default_rng(0)

    def f(x):
        return x * dlarray(g.random(2))

    x = dlarray(np.array([1.0, 2.0]))
    acc = dlaccelerate(f)
    with pytest.warns(RuntimeWarning, match="random"):
        acc(x)
    acc(x)
    assert acc.hits == 0


def test_extractdata_output_is_detected():
    def f(x):
        return x * 2, float(extractdata(np.sum(x)))

    x = dlarray(np.array([1.0, 2.0]))
    _runs_directly(f, (x,), (x * 3,), match="output is computed")


def test_mask_from_plain_numpy_is_detected():
    def f(x):
        return x * dlarray((extractdata(x) > 0).astype(float))

    x = dlarray(np.array([1.0, -2.0, 3.0]))
    _runs_directly(f, (x,), (-x,), match="mask")


def test_traced_closure_value_runs_directly():
    def outer(x, y):
        acc = dlaccelerate(lambda a: a * y)  # y: traced by the enclosing dlfeval
        return dlgradient(np.sum(acc(x)), y)

    x, y = dlarray(np.array([1.0, 2.0])), dlarray(np.array([3.0, 4.0]))
    with pytest.warns(RuntimeWarning, match="not one of its arguments"):
        g = dlfeval(outer, x, y)
    same(g, x)


def test_side_effects_happen_only_when_tracing():
    calls = []

    def f(x):
        calls.append(1)
        return x + 1

    acc = dlaccelerate(f)
    for _ in range(4):
        acc(dlarray(np.ones(2)))
    assert len(calls) == 2  # the capture and its check run; the replays run no Python of f


def test_check_mode_tolerance_warns_when_the_trace_is_stale():
    state = {"c": 1.0}

    def f(x):
        return x * state["c"]

    acc = dlaccelerate(f, check_mode="tolerance")
    x = dlarray(np.ones(2))
    acc(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acc(x)  # unchanged: no warning
    state["c"] = 2.0
    with pytest.warns(RuntimeWarning, match="check_tolerance"):
        acc(x)


# ---------------------------------------------------------------------------------------------
# Interplay with dlfeval
# ---------------------------------------------------------------------------------------------


def test_internal_gradient_without_retain_ends_the_dlfeval_trace():
    p = params()
    acc = dlaccelerate(tanh_loss)

    def outer(p, X, T):
        loss, _ = acc(p, X, T)
        return dlgradient(loss, p)

    X, T = batch(0)
    for _ in range(2):  # the capture and a replay behave alike
        with pytest.raises(RuntimeError, match="retain_data=True"):
            dlfeval(outer, p, X, T)


def test_exception_during_capture_is_raised_and_not_cached():
    def f(x):
        raise ValueError("bad input")

    acc = dlaccelerate(f)
    with pytest.raises(ValueError, match="bad input"):
        dlfeval(acc, dlarray(np.ones(2)))
    assert acc.num_traces == 0 and _frames.get() == ()


def test_in_place_write_to_a_used_array_runs_directly():
    def f(x):
        buf = np.ones(2)
        y = x * buf
        buf[0] = 5.0  # fine in a direct call; the capture guards every constant it keeps
        return y * buf

    acc = dlaccelerate(f)
    x = dlarray(np.array([1.0, 2.0]))
    with pytest.warns(RuntimeWarning, match="writes in place"):
        out = acc(x)
    same(out, f(x))
    same(acc(x), f(x))
    assert acc.hits == 0


def test_retained_internal_gradient_leaves_the_outputs_differentiable():
    def inner(x):
        loss = np.sum(np.sin(x) * x)
        g = dlgradient(loss, x, retain_data=True)
        return loss, g

    acc = dlaccelerate(inner)

    def outer(x, f):
        loss, g = f(x)
        return g, dlgradient(loss * 2, x)

    x = dlarray(np.array([0.3, 1.1]))
    want = dlfeval(outer, x, inner)
    for _ in range(2):
        got = dlfeval(outer, x, acc)
        same(got[0], want[0])
        same(got[1], want[1])
    assert acc.hits == 1


def test_traced_and_untraced_calls_are_different_patterns():
    acc = dlaccelerate(lambda x: x * 3)
    x = dlarray(np.ones(2))
    acc(x)
    dlfeval(acc, x)
    assert acc.num_traces == 2


def test_gradient_with_respect_to_an_untraced_argument_is_an_error():
    def inner(x, c):
        return dlgradient(np.sum(x * c), c)

    acc = dlaccelerate(inner)

    def outer(x):
        return acc(x, dlarray(np.ones(2)))  # c is made inside dlfeval: not traced

    with pytest.raises(RuntimeError, match="not traced"):
        dlfeval(outer, dlarray(np.ones(2)))
