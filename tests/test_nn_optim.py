"""Optimizers, schedules, clipping, regularisation, and L-BFGS: each update is compared with
the formula written out in NumPy; states are pytrees that save and reload exactly."""

import math

import numpy as np
import pytest

import wengert.nn as nn
from wengert import check_grads
from wengert.nn import optim
from wengert.tree import tree_flatten, tree_map


def _params(dtype=np.float32):
    r = np.random.default_rng(0)
    return {
        "w": r.standard_normal((3, 4)).astype(dtype),
        "b": r.standard_normal(4).astype(dtype),
        "nested": [r.standard_normal(2).astype(dtype)],
    }


def _grads(params, seed):
    r = np.random.default_rng(seed)
    return tree_map(lambda p: r.standard_normal(p.shape).astype(p.dtype), params)


def _run(opt, params, steps=4):
    st = opt.init(params)
    out = []
    for k in range(steps):
        params, st = opt.update(params, _grads(params, k), st)
        out.append(params)
    return params, st, out


# NumPy references, leaf by leaf, in float64 ------------------------------------------------


def ref_run(rule, params, steps=4, slots=0):
    leaves, tdef = tree_flatten(params)
    ps = [p.astype(np.float64) for p in leaves]
    state = [[np.zeros_like(p) for p in ps] for _ in range(slots)]
    for k in range(steps):
        gs = [g.astype(np.float64) for g in tree_flatten(_grads(params, k))[0]]
        for i in range(len(ps)):
            ps[i], new = rule(ps[i], gs[i], [s[i] for s in state], k + 1)
            for j, v in enumerate(new):
                state[j][i] = v
        params = tdef.unflatten([p.astype(leaves[0].dtype) for p in ps])
    return tdef.unflatten(ps)


def assert_tree_close(a, b, rtol=1e-5, atol=1e-6):
    la, lb = tree_flatten(a)[0], tree_flatten(b)[0]
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_sgd():
    p0 = _params()
    got, st, _ = _run(nn.sgd(0.1), p0)
    assert_tree_close(got, ref_run(lambda p, g, s, t: (p - 0.1 * g, ()), p0))
    assert int(st["step"]) == 4


@pytest.mark.parametrize("nest", [False, True])
def test_momentum_and_nesterov(nest):
    p0 = _params()
    opt = nn.nesterov(0.05, 0.8) if nest else nn.momentum(0.05, 0.8)

    def rule(p, g, s, t):
        v = 0.8 * s[0] + g
        d = g + 0.8 * v if nest else v
        return p - 0.05 * d, (v,)

    got, st, _ = _run(opt, p0)
    assert_tree_close(got, ref_run(rule, p0, slots=1))
    assert set(st) == {"step", "velocity"}


def _adam_rule(lr, b1, b2, eps, wd=0.0):
    def rule(p, g, s, t):
        m = b1 * s[0] + (1 - b1) * g
        v = b2 * s[1] + (1 - b2) * g * g
        mh, vh = m / (1 - b1**t), v / (1 - b2**t)
        return p - lr * mh / (np.sqrt(vh) + eps) - lr * wd * p, (m, v)

    return rule


def test_adam():
    p0 = _params()
    got, st, _ = _run(nn.adam(0.01, 0.9, 0.99, 1e-7), p0)
    assert_tree_close(got, ref_run(_adam_rule(0.01, 0.9, 0.99, 1e-7), p0, slots=2))
    assert set(st) == {"step", "m", "v"}


def test_adamw_decoupled_weight_decay():
    p0 = _params()
    got, _, _ = _run(nn.adamw(0.01, weight_decay=0.1), p0)
    assert_tree_close(got, ref_run(_adam_rule(0.01, 0.9, 0.999, 1e-8, 0.1), p0, slots=2))


def test_rmsprop():
    p0 = _params()

    def rule(p, g, s, t):
        v = 0.9 * s[0] + 0.1 * g * g
        return p - 0.01 * g / (np.sqrt(v) + 1e-8), (v,)

    got, _, _ = _run(nn.rmsprop(0.01), p0)
    assert_tree_close(got, ref_run(rule, p0, slots=1))


def test_l2_regularisation_is_added_to_the_gradient():
    p0 = _params()
    got, _, _ = _run(nn.sgd(0.1, l2=0.5), p0)
    assert_tree_close(got, ref_run(lambda p, g, s, t: (p - 0.1 * (g + 0.5 * p), ()), p0))


def test_weight_decay_with_sgd():
    p0 = _params()
    got, _, _ = _run(nn.sgd(0.1, weight_decay=0.2), p0)
    assert_tree_close(got, ref_run(lambda p, g, s, t: (p - 0.1 * g - 0.02 * p, ()), p0))


@pytest.mark.parametrize(
    "make",
    [nn.sgd, nn.momentum, nn.nesterov, nn.adam, nn.adamw, nn.rmsprop],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_inputs_not_mutated(make, dtype):
    p0 = _params(dtype)
    copy = tree_map(np.copy, p0)
    opt = make(1e-2, weight_decay=0.01)
    st = opt.init(p0)
    st_copy = tree_map(np.copy, st)
    g = _grads(p0, 0)
    g_copy = tree_map(np.copy, g)
    p1, st1 = opt.update(p0, g, st)
    for a in tree_flatten((p1, st1))[0]:
        if a.dtype.kind == "f":
            assert a.dtype == dtype
    assert_tree_close(p0, copy, 0, 0)
    assert_tree_close(g, g_copy, 0, 0)
    assert_tree_close(st, st_copy, 0, 0)
    assert tree_flatten(p1)[1] == tree_flatten(p0)[1]


def test_structure_and_state_errors():
    p = _params()
    opt = nn.adam()
    st = opt.init(p)
    with pytest.raises(ValueError, match="structure"):
        opt.update(p, {"w": p["w"]}, st)
    bad = dict(_grads(p, 0))
    bad["b"] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="shape"):
        opt.update(p, bad, st)
    with pytest.raises(TypeError, match="init"):
        opt.update(p, _grads(p, 0), {})
    with pytest.raises(TypeError, match="float"):
        opt.init({"i": np.arange(3)})
    with pytest.raises(ValueError, match="beta1"):
        nn.adam(beta1=1.0)
    with pytest.raises(ValueError, match="clip_norm"):
        nn.sgd(clip_norm=0)
    with pytest.raises(TypeError, match="learning rate"):
        nn.sgd("fast")


# Schedules ------------------------------------------------------------------------------


def test_schedules_values():
    assert nn.constant(0.3)(100) == 0.3
    pw = nn.piecewise([10, 20], [1.0, 0.5, 0.1])
    assert [pw(t) for t in (0, 9, 10, 19, 20, 1000)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    sd = nn.step_decay(1.0, 0.5, 10)
    assert sd(9) == 1.0 and sd(10) == 0.5 and sd(25) == 0.25
    ex = nn.exponential_decay(1.0, 0.5, decay_steps=10)
    assert ex(5) == pytest.approx(0.5**0.5)
    assert nn.exponential_decay(1.0, 0.5, 10, staircase=True)(15) == 0.5
    tb = nn.time_based_decay(1.0, 0.1)
    assert tb(10) == pytest.approx(0.5)
    cos = nn.cosine_decay(1.0, 100, 0.1)
    assert cos(0) == 1.0 and cos(50) == pytest.approx(0.55) and cos(100) == pytest.approx(0.1)
    assert cos(500) == pytest.approx(0.1)


def test_warmup_and_join_compose():
    s = nn.warmup(nn.cosine_decay(1.0, 10), 5)
    assert [s(t) for t in range(5)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert s(5) == 1.0 and s(10) == pytest.approx(0.5) and s(15) == pytest.approx(0.0)
    j = nn.join([0.1, nn.exponential_decay(1.0, 0.5)], [3])
    assert [j(t) for t in range(5)] == pytest.approx([0.1, 0.1, 0.1, 1.0, 0.5])
    scaled = 2 * nn.step_decay(1.0, 0.1, 5)
    assert scaled(6) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="one more value"):
        nn.piecewise([1, 2], [1.0])
    with pytest.raises(ValueError, match="increase"):
        nn.piecewise([2, 1], [1.0, 1.0, 1.0])


def test_optimizer_uses_the_schedule_per_step():
    p0 = {"w": np.ones(2)}
    sched = nn.piecewise([2], [1.0, 0.1])
    opt = nn.sgd(sched)
    st = opt.init(p0)
    p = p0
    for _ in range(3):
        assert opt.learning_rate(st) == sched(int(st["step"]))
        p, st = opt.update(p, {"w": np.ones(2)}, st)
    np.testing.assert_allclose(p["w"], 1 - 1.0 - 1.0 - 0.1)
    f = nn.sgd(lambda t: 0.5)  # any function of the step
    assert f.learning_rate(f.init(p0)) == 0.5


# Clipping -------------------------------------------------------------------------------


def test_clipping_functions():
    g = {"a": np.array([3.0, 4.0]), "b": np.array([0.0, -12.0])}
    cv = nn.clip_by_value(g, 1.0)
    np.testing.assert_array_equal(cv["a"], [1, 1])
    np.testing.assert_array_equal(cv["b"], [0, -1])
    cn = nn.clip_by_norm(g, 5.0)
    np.testing.assert_allclose(cn["a"], [3, 4])  # norm 5: unchanged
    np.testing.assert_allclose(cn["b"], [0, -5])
    assert nn.global_norm(g) == pytest.approx(13.0)
    cg = nn.clip_by_global_norm(g, 6.5)
    np.testing.assert_allclose(cg["a"], [1.5, 2.0])
    np.testing.assert_allclose(cg["b"], [0, -6])
    small = nn.clip_by_global_norm(g, 100.0)
    np.testing.assert_array_equal(small["b"], g["b"])


def test_clipping_inside_the_optimizer():
    p = {"a": np.zeros(2), "b": np.zeros(2)}
    g = {"a": np.array([3.0, 4.0]), "b": np.array([0.0, -12.0])}
    for kw, expect in (
        ({"clip_value": 1.0}, {"a": [-1, -1], "b": [0, 1]}),
        ({"clip_norm": 5.0}, {"a": [-3, -4], "b": [0, 5]}),
        ({"clip_global_norm": 6.5}, {"a": [-1.5, -2], "b": [0, 6]}),
    ):
        opt = nn.sgd(1.0, **kw)
        p1, _ = opt.update(p, g, opt.init(p))
        for k in p:
            np.testing.assert_allclose(p1[k], expect[k])


def test_clipping_and_update_are_differentiable():
    """A step of SGD with global-norm clipping inside a loss (meta-learning style)."""

    def after_step(w):
        g = {"w": 2 * w}
        clipped = nn.clip_by_global_norm(g, 1.0)
        return (w - 0.1 * clipped["w"]) ** 3

    w = np.array([0.3, -1.2, 0.5])
    check_grads(after_step, (w,), order=2)

    def adam_step(w):
        opt = nn.adam(0.1)
        p, _ = opt.update({"w": w}, {"w": w * w}, opt.init({"w": np.zeros(3)}))
        return p["w"]

    check_grads(adam_step, (w,), order=1)


# Saving the state -------------------------------------------------------------------------


def test_state_saves_and_reloads_exactly_and_training_resumes_identically(tmp_path):
    p0 = _params()
    opt = nn.adam(nn.warmup(1e-2, 3))
    st = opt.init(p0)
    p = p0
    for k in range(3):
        p, st = opt.update(p, _grads(p, k), st)
    path = tmp_path / "opt.npz"
    nn.save_optimizer_state(path, st)
    st2 = nn.load_optimizer_state(path, like=opt.init(p0))
    assert tree_flatten(st2)[1] == tree_flatten(st)[1]
    for a, b in zip(tree_flatten(st)[0], tree_flatten(st2)[0]):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    pa, sa = opt.update(p, _grads(p, 9), st)
    pb, sb = opt.update(p, _grads(p, 9), st2)
    for a, b in zip(tree_flatten((pa, sa))[0], tree_flatten((pb, sb))[0]):
        np.testing.assert_array_equal(a, b)


# L-BFGS ---------------------------------------------------------------------------------


def rosenbrock(p):
    x = p["x"]
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


@pytest.mark.parametrize("search", ["strong_wolfe", "backtracking"])
def test_lbfgs_minimises_rosenbrock(search):
    opt = nn.lbfgs(history=8, line_search=search)
    p = {"x": np.array([-1.2, 1.0, -0.5, 0.8])}
    st = opt.init(p)
    for _ in range(300 if search == "backtracking" else 120):
        p, st, loss = opt.step(rosenbrock, p, st)
        if loss < 1e-16:
            break
    np.testing.assert_allclose(p["x"], np.ones(4), atol=1e-5)
    assert loss < 1e-10


def test_lbfgs_solves_a_quadratic_in_few_steps():
    r = np.random.default_rng(0)
    a = r.standard_normal((6, 6))
    A = a @ a.T + 6 * np.eye(6)
    b = r.standard_normal(6)
    f = lambda p: 0.5 * p["v"] @ A @ p["v"] - b @ p["v"]
    opt = nn.lbfgs(history=10)
    p = {"v": np.zeros(6)}
    st = opt.init(p)
    for _ in range(15):
        p, st, _ = opt.step(f, p, st)
    np.testing.assert_allclose(p["v"], np.linalg.solve(A, b), atol=1e-8)


def test_lbfgs_state_is_saveable_and_resumes(tmp_path):
    opt = nn.lbfgs(history=3)
    p = {"x": np.array([-1.2, 1.0])}
    st = opt.init(p)
    for _ in range(4):
        p, st, _ = opt.step(rosenbrock, p, st)
    nn.save_optimizer_state(tmp_path / "l.npz", st)
    st2 = nn.load_optimizer_state(tmp_path / "l.npz")
    a = opt.step(rosenbrock, p, st)
    b = opt.step(rosenbrock, p, st2)
    np.testing.assert_array_equal(a[0]["x"], b[0]["x"])
    assert a[2] == b[2]


def test_lbfgs_on_a_network_float32():
    net = nn.Network([nn.Linear(4), nn.Tanh(), nn.Linear(1)], input_shape=(2,))
    x = np.random.default_rng(0).standard_normal((20, 2)).astype(np.float32)
    y = (np.sin(x[:, :1]) * x[:, 1:]).astype(np.float32)
    loss = lambda n: nn.losses.mse(n.predict(x), y)
    opt = nn.lbfgs()
    st = opt.init(net)
    l0 = float(loss(net))
    for _ in range(20):
        net, st, val = opt.step(loss, net, st)
    assert isinstance(net, nn.Network)
    assert val < 0.2 * l0
    assert all(a.dtype == np.float32 for a in tree_flatten(net)[0])


def test_lbfgs_bad_options():
    with pytest.raises(ValueError, match="line_search"):
        nn.lbfgs(line_search="exact")
    with pytest.raises(ValueError, match="c1 < c2"):
        nn.lbfgs(c1=0.9, c2=0.1)


def test_repr():
    assert "adam(lr=0.001" in repr(nn.adam())
    assert "warmup" in repr(nn.sgd(nn.warmup(0.1, 5)))
    assert math.isclose(optim.cosine_decay(2.0, 4)(2), 1.0)


@pytest.mark.parametrize(
    "make", [nn.sgd, nn.momentum, nn.adam, nn.rmsprop], ids=lambda f: f.__name__
)
def test_flat_fast_path_matches_leafwise_and_never_mutates_earlier_results(make):
    """Updates on plain same-dtype leaves run on one flat vector whose pieces are returned as
    views; later updates read those views in place and must not write into them."""
    p0 = _params()
    opt = make(1e-2, weight_decay=0.01)
    st = opt.init(p0)
    history = []
    p = p0
    for k in range(4):
        p, st = opt.update(p, _grads(p, k), st)
        history.append((p, st, tree_map(np.copy, (p, st))))
    for cur, cur_st, snapshot in history:
        assert_tree_close((cur, cur_st), snapshot, 0, 0)
    assert p["w"].base is not None and p["w"].base is p["b"].base  # the flat path ran
    # the same steps leaf by leaf (float64 leaves of mixed dtype disable the flat path)
    mixed = dict(p0, extra=np.zeros(1, np.float64))
    st2 = opt.init(mixed)
    q = mixed
    for k in range(4):
        g = _grads({n: v for n, v in q.items() if n != "extra"}, k)
        g["extra"] = np.zeros(1)
        q, st2 = opt.update(q, g, st2)
    assert_tree_close(p, {k: v for k, v in q.items() if k != "extra"}, rtol=1e-6)


def test_update_fast_path_follows_structure_changes():
    """The compiled dict structure and the recognised flat buffers are never trusted blindly:
    swapped leaves, another structure or a mismatched gradient take the general path."""
    opt = nn.adam(0.1)
    p = {"a": {"w": np.ones((2, 2)), "u": np.full(3, 2.0)}, "v": np.zeros(3)}
    g = {"a": {"w": np.ones((2, 2)), "u": np.ones(3)}, "v": -np.ones(3)}
    s = opt.init(p)
    p1, s1 = opt.update(p, g, s)
    p2, s2 = opt.update(p1, g, s1)
    # two same-shaped leaves (views of one buffer) swapped: the update must follow the swap
    swapped = {"a": {"w": p2["a"]["w"], "u": p2["v"]}, "v": p2["a"]["u"]}
    out, _ = opt.update(swapped, g, s2)
    ref, _ = nn.adam(0.1).update(tree_map(np.copy, swapped), g, tree_map(np.copy, s2))
    for a, b in zip(tree_flatten(out)[0], tree_flatten(ref)[0]):
        np.testing.assert_array_equal(a, b)
    # another structure with the same optimizer
    p3 = {"x": np.ones(4), "y": [np.ones(2), np.zeros(2)]}
    g3 = {"x": np.ones(4), "y": [np.ones(2), np.ones(2)]}
    out3, _ = opt.update(p3, g3, opt.init(p3))
    assert isinstance(out3["y"], list) and out3["x"].shape == (4,)
    # a gradient of another structure or shape still gets the clear error
    with pytest.raises(ValueError, match="structure"):
        opt.update(p, {"a": {"w": np.ones((2, 2))}, "v": np.ones(3)}, s)
    with pytest.raises(ValueError, match="shape"):
        opt.update(p, {"a": {"w": np.ones((2, 2)), "u": np.ones(4)}, "v": np.ones(3)}, s)
    assert p["a"]["u"][0] == 2.0 and s["m"]["v"].sum() == 0  # inputs untouched
