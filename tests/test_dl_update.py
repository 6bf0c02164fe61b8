"""wengert.dl update functions against MATLAB's documented formulas, step by step, on every
kind of parameter container; L-BFGS with each line search."""

import numpy as np
import pytest

from wengert.dl import (
    Table,
    adamupdate,
    convolution2dLayer,
    dlarray,
    dlnetwork,
    dlupdate,
    featureInputLayer,
    fullyConnectedLayer,
    imageInputLayer,
    lbfgsState,
    lbfgsupdate,
    predict,
    rmspropupdate,
    sgdmupdate,
    tanhLayer,
)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _params(seed=0, dtype=np.float64):
    r = _rng(seed)
    return {
        "w": r.standard_normal((3, 2)).astype(dtype),
        "b": r.standard_normal((2, 1)).astype(dtype),
    }


def _grads(k, dtype=np.float64):
    return _params(100 + k, dtype)


# ---------------------------------------------------------------------------------------------
# Adam, SGDM, RMSProp: MATLAB's formulas by hand
# ---------------------------------------------------------------------------------------------


def test_adamupdate_matches_matlab_formula_for_several_steps():
    lr, b1, b2, eps = 0.05, 0.8, 0.99, 1e-6
    p, m, v = _params(), None, None
    ref = {k: a.copy() for k, a in _params().items()}
    rm = {k: np.zeros_like(a) for k, a in ref.items()}
    rv = {k: np.zeros_like(a) for k, a in ref.items()}
    for t in range(1, 5):
        g = _grads(t)
        p, m, v = adamupdate(p, g, m, v, t, lr, b1, b2, eps)
        for k in ref:
            rm[k] = b1 * rm[k] + (1 - b1) * g[k]
            rv[k] = b2 * rv[k] + (1 - b2) * g[k] ** 2
            mhat = rm[k] / (1 - b1**t)
            vhat = rv[k] / (1 - b2**t)
            ref[k] = ref[k] - lr * mhat / (np.sqrt(vhat) + eps)
            np.testing.assert_allclose(p[k], ref[k], rtol=1e-12)
            np.testing.assert_allclose(m[k], rm[k], rtol=1e-12)
            np.testing.assert_allclose(v[k], rv[k], rtol=1e-12)
    assert isinstance(p, dict) and set(m) == {"w", "b"}


def test_adamupdate_defaults_keep_float32_and_dlarrays():
    w = dlarray(np.ones((2, 2), np.float32))
    g = dlarray(np.full((2, 2), 0.5, np.float32))
    w2, m, v = adamupdate(w, g, None, None, 1)
    assert isinstance(w2, dlarray) and isinstance(m, dlarray) and w2.dtype == np.float32
    # first step: m̂ = g, v̂ = g², so w − α·g/(|g| + ε) = 1 − 0.001
    np.testing.assert_allclose(np.asarray(w2._value), 1 - 0.001, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(m._value), 0.05, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(v._value), 0.00025, rtol=1e-6)
    with pytest.raises(ValueError, match="iteration"):
        adamupdate(w, g, None, None, 0)
    with pytest.raises(ValueError, match="grad_decay"):
        adamupdate(w, g, None, None, 1, grad_decay=1.0)


def test_sgdmupdate_matches_matlab_formula():
    lr, mu = 0.1, 0.7
    p, vel = [a for a in _params().values()], None
    ref = [a.copy() for a in _params().values()]
    rv = [np.zeros_like(a) for a in ref]
    for t in range(1, 5):
        g = list(_grads(t).values())
        p, vel = sgdmupdate(p, g, vel, lr, mu)
        for k in range(2):
            rv[k] = mu * rv[k] - lr * g[k]
            ref[k] = ref[k] + rv[k]
            np.testing.assert_allclose(p[k], ref[k], rtol=1e-12)
            np.testing.assert_allclose(vel[k], rv[k], rtol=1e-12)
    assert isinstance(p, list) and isinstance(vel, list)
    tp, tv = sgdmupdate(tuple(p), tuple(g), None)  # defaults lr 0.01, momentum 0.9
    np.testing.assert_allclose(tp[0], p[0] - 0.01 * g[0], rtol=1e-12)
    assert isinstance(tp, tuple)


def test_rmspropupdate_matches_matlab_formula():
    lr, rho, eps = 0.01, 0.95, 1e-7
    p, s = _params(), None
    ref = {k: a.copy() for k, a in _params().items()}
    rs = {k: np.zeros_like(a) for k, a in ref.items()}
    for t in range(1, 4):
        g = _grads(t)
        p, s = rmspropupdate(p, g, s, lr, rho, eps)
        for k in ref:
            rs[k] = rho * rs[k] + (1 - rho) * g[k] ** 2
            ref[k] = ref[k] - lr * g[k] / (np.sqrt(rs[k]) + eps)
            np.testing.assert_allclose(p[k], ref[k], rtol=1e-12)
            np.testing.assert_allclose(s[k], rs[k], rtol=1e-12)


def test_updates_do_not_mutate_inputs():
    p, g = _params(), _grads(1)
    keep = {k: a.copy() for k, a in p.items()}
    p2, m, v = adamupdate(p, g, None, None, 1)
    p3, m3, v3 = adamupdate(p2, g, m, v, 2)
    p4, vel = sgdmupdate(p, g, None)
    for k in p:
        np.testing.assert_array_equal(p[k], keep[k])
    assert not np.allclose(p3["w"], p2["w"])


# ---------------------------------------------------------------------------------------------
# Networks and tables
# ---------------------------------------------------------------------------------------------


def _net():
    return dlnetwork(
        [
            imageInputLayer([4, 4, 1], normalization="none"),
            convolution2dLayer(3, 2, weight_learn_rate_factor=0),
            fullyConnectedLayer(3, bias_learn_rate_factor=2),
        ],
        rng=0,
    )


def _grad_table(net, seed=1):
    r = _rng(seed)
    return net.learnables.with_values(
        [dlarray(r.standard_normal(v.shape).astype(np.float32)) for v in net.learnables.value]
    )


def test_updates_on_a_network_return_network_and_tables_with_learn_rate_factors():
    net = _net()
    g = _grad_table(net)
    net2, avg, sq = adamupdate(net, g, None, None, 1, learn_rate=0.1)
    assert isinstance(net2, dlnetwork) and isinstance(avg, Table) and isinstance(sq, Table)
    assert avg.layer == net.learnables.layer and net2.layers == net.layers
    old = [np.asarray(v._value) for v in net.learnables.value]
    new = [np.asarray(v._value) for v in net2.learnables.value]
    np.testing.assert_array_equal(new[0], old[0])  # WeightLearnRateFactor 0: not updated
    assert not np.allclose(new[1], old[1])
    gv = [np.asarray(v._value) for v in g.value]
    step = lambda gg: gg / (np.abs(gg) + 1e-8)  # first Adam step direction
    np.testing.assert_allclose(new[2], old[2] - 0.1 * step(gv[2]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new[3], old[3] - 0.2 * step(gv[3]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(avg.value[0]._value), 0.1 * gv[0], rtol=1e-6)
    assert all(v.dtype == np.float32 for v in net2.learnables.value)
    net3, vel = sgdmupdate(net, g, None, learn_rate=0.5)
    np.testing.assert_allclose(
        np.asarray(net3.learnables.value[3]._value), old[3] - 1.0 * gv[3], rtol=1e-6
    )
    np.testing.assert_array_equal(np.asarray(net3.learnables.value[0]._value), old[0])
    net4, s = rmspropupdate(net, g, None)
    assert isinstance(net4, dlnetwork) and isinstance(s, Table)
    t2, _, _ = adamupdate(net.learnables, g, None, None, 1)  # a bare Table: no factors
    assert isinstance(t2, Table)
    assert not np.allclose(np.asarray(t2.value[0]._value), old[0])


def test_structure_mismatches_are_errors():
    net = _net()
    g = _grad_table(net)
    with pytest.raises(ValueError, match="rows"):
        adamupdate(net, g[[1, 0, 2, 3]], None, None, 1)
    with pytest.raises(ValueError, match="arrays"):
        sgdmupdate({"a": np.ones(2)}, {"a": np.ones(2), "b": np.ones(1)}, None)
    with pytest.raises(ValueError, match="size"):
        rmspropupdate(np.ones(3), np.ones(2), None)
    with pytest.raises(TypeError, match="cannot update"):
        sgdmupdate("w", "g", None)


# ---------------------------------------------------------------------------------------------
# dlupdate
# ---------------------------------------------------------------------------------------------


def test_dlupdate_l2_regularisation_and_clipping():
    net = _net()
    g = _grad_table(net)
    l2 = 1e-2
    g2 = dlupdate(lambda gg, w: gg + l2 * w, g, net.learnables)
    assert isinstance(g2, Table) and all(isinstance(v, dlarray) for v in g2.value)
    for a, b, w in zip(g2.value, g.value, net.learnables.value):
        np.testing.assert_allclose(
            np.asarray(a._value), np.asarray(b._value) + l2 * np.asarray(w._value), rtol=1e-6
        )

    def clip_l2(gg, thr=1.0):  # MATLAB's "l2norm" gradient threshold
        n = float(np.sqrt((np.asarray(gg._value) ** 2).sum()))
        return gg * (thr / n) if n > thr else gg

    g3 = dlupdate(clip_l2, g)
    for a in g3.value:
        assert np.sqrt((np.asarray(a._value) ** 2).sum()) <= 1 + 1e-5
    g4 = dlupdate(
        lambda gg: np.clip(np.asarray(gg._value), -0.1, 0.1), g
    )  # plain results rewrapped
    assert all(isinstance(v, dlarray) and np.abs(v._value).max() <= 0.1 for v in g4.value)
    net2 = dlupdate(lambda w: w * 0, net)
    assert isinstance(net2, dlnetwork) and not np.any(net2.learnables.value[2]._value)


def test_dlupdate_on_dicts_and_multiple_outputs():
    p = {"a": np.arange(3.0), "b": [np.ones(2), np.full(1, 2.0)]}
    doubled, halves = dlupdate(lambda x: (2 * x, x / 2), p)
    np.testing.assert_array_equal(doubled["a"], [0, 2, 4])
    np.testing.assert_array_equal(halves["b"][1], [1.0])
    s = dlupdate(lambda x, y: x + y, p, p)
    np.testing.assert_array_equal(s["b"][0], [2, 2])
    with pytest.raises(TypeError, match="function"):
        dlupdate(p, p)


# ---------------------------------------------------------------------------------------------
# L-BFGS
# ---------------------------------------------------------------------------------------------

A = np.diag([1.0, 4.0, 25.0, 100.0])
B = np.array([1.0, -2.0, 0.5, 3.0])


def _quad(x):
    return 0.5 * x @ A @ x - B @ x, A @ x - B


@pytest.mark.parametrize("method", ["weak-wolfe", "strong-wolfe", "backtracking"])
def test_lbfgs_converges_on_a_quadratic(method):
    x, st = np.zeros(4), None
    for _ in range(30):
        x, st = lbfgsupdate(x, _quad, st, line_search_method=method)
    np.testing.assert_allclose(x, np.linalg.solve(A, B), rtol=1e-6, atol=1e-8)
    assert st.line_search_method == method and st.iteration == 30
    assert len(st.step_history) <= st.history_size


def test_lbfgs_first_step_uses_initial_inverse_hessian_factor_and_state_is_new():
    x0 = np.array([2.0, -1.0])
    f = lambda x: (0.5 * x @ x, x)
    x1, s1 = lbfgsupdate(x0, f, lbfgsState(initial_inverse_hessian_factor=0.5))
    np.testing.assert_allclose(x1, 0.5 * x0)  # step 1 along −λ₀·g accepted (weak Wolfe)
    assert s1.line_search_status == "completed" and s1.loss == pytest.approx(0.25 * 2.5)
    s0 = lbfgsState(history_size=2)
    x, s = x0, s0
    a2, b2 = A[1:3, 1:3], B[1:3]
    for _ in range(4):
        x, s = lbfgsupdate(x, lambda v: (0.5 * v @ a2 @ v - b2 @ v, a2 @ v - b2), s)
    assert len(s.step_history) <= 2 and s0.iteration == 0 and s0.loss is None
    assert s.inverse_hessian_factor > 0 and "lbfgsState" in repr(s)


def test_lbfgs_failed_line_search_keeps_parameters():
    x0 = np.array([1.0, 1.0])

    def f(x):  # a descent direction leading only to NaN
        if np.allclose(x, x0):
            return 1.0, np.ones(2)
        return np.nan, np.ones(2)

    x1, st = lbfgsupdate(x0, f, None, max_num_line_search_iterations=5)
    np.testing.assert_array_equal(x1, x0)
    assert st.line_search_status == "failed"


def test_lbfgs_trains_a_network_with_dlfeval():
    tr = pytest.importorskip("wengert.dl._trace")
    net = dlnetwork(
        [featureInputLayer(1), fullyConnectedLayer(8), tanhLayer(), fullyConnectedLayer(1)],
        rng=0,
        dtype=np.float64,
    )
    x = np.linspace(-1, 1, 20).reshape(1, 20)
    X = dlarray(x, "CB")
    T = np.sin(2 * x)

    def model_loss(net, X):
        Y = predict(net, X)
        loss = dlarray(((Y._value - T) ** 2).mean())
        return loss, tr.dlgradient(loss, net.learnables)

    loss_fcn = lambda n: tr.dlfeval(model_loss, n, X)
    st = lbfgsState()
    first = float(np.asarray(loss_fcn(net)[0]._value))
    for _ in range(40):
        net, st = lbfgsupdate(net, loss_fcn, st)
    assert isinstance(net, dlnetwork) and isinstance(st.gradients, Table)
    assert float(np.asarray(st.loss._value)) < 1e-2 * first
    with pytest.raises(ValueError, match="line_search_method"):
        lbfgsupdate(net, loss_fcn, st, line_search_method="wolfe")


def test_matlab_empty_state_starts_fresh():
    p, g = _params(), _grads(1)
    a = adamupdate(p, g, [], [], 1)
    b = adamupdate(p, g, None, None, 1)
    np.testing.assert_array_equal(a[0]["w"], b[0]["w"])
    v = sgdmupdate(p, g, [])[1]
    np.testing.assert_allclose(v["b"], -0.01 * g["b"])
    x, st = lbfgsupdate(np.ones(2), lambda x: (0.5 * x @ x, x), [])
    assert isinstance(st, lbfgsState)


def test_lbfgs_gradients_norm_and_step_norm():
    st0 = lbfgsState()
    assert st0.gradients_norm is None and st0.step_norm is None  # MATLAB's [] before a step
    x0 = np.array([2.0, -1.0])
    f = lambda x: (0.5 * x @ x, x)
    x1, s1 = lbfgsupdate(x0, f, st0)
    np.testing.assert_allclose(x1, 0.0, atol=1e-15)  # step 1 along −g lands on the minimum
    assert s1.step_norm == pytest.approx(np.linalg.norm(x0))
    assert s1.gradients_norm == pytest.approx(np.linalg.norm(x1), abs=1e-15)
    assert isinstance(s1.step_norm, float) and isinstance(s1.gradients_norm, float)
    assert st0.gradients_norm is None  # the state passed in is unchanged
    assert "gradients_norm=" in repr(s1) and "step_norm=" in repr(s1)
    # over several learnables (a dict of float32 arrays): norms over all of them together
    p = {"w": np.array([[1.0, 2.0]], np.float32), "b": np.array([3.0], np.float32)}
    loss = lambda q: (
        float((q["w"] ** 2).sum() + (q["b"] ** 2).sum()) / 2,
        {"w": q["w"], "b": q["b"]},
    )
    q, s = lbfgsupdate(p, loss, lbfgsState(initial_inverse_hessian_factor=0.25))
    want_step = 0.25 * np.sqrt(1 + 4 + 9)
    assert s.step_norm == pytest.approx(want_step, rel=1e-6)
    g_now = np.concatenate([q["w"].ravel(), q["b"]])
    assert s.gradients_norm == pytest.approx(float(np.linalg.norm(g_now)), rel=1e-6)
    # a failed line search takes no step
    x0 = np.array([1.0, 1.0])
    bad = lambda x: (1.0, np.ones(2)) if np.allclose(x, x0) else (np.nan, np.ones(2))
    _, sf = lbfgsupdate(x0, bad, None, max_num_line_search_iterations=3)
    assert sf.step_norm == 0.0 and sf.gradients_norm == pytest.approx(np.sqrt(2))
    # MATLAB's stopping test on a quadratic
    x, st = np.zeros(4), None
    for _ in range(100):
        x, st = lbfgsupdate(x, _quad, st)
        if st.gradients_norm < 1e-8 or st.step_norm < 1e-12:
            break
    assert st.iteration < 100
    np.testing.assert_allclose(x, np.linalg.solve(A, B), rtol=1e-6)
