"""The Network object: a pytree of (params, state) that grad differentiates directly; forward
(training, state returned, nothing mutated) and predict (inference); float32 by default and
float64 when asked; higher-order derivatives through a network."""

import numpy as np
import pytest

import wengert
import wengert.nn as nn
from wengert import check_grads
from wengert.tree import tree_flatten, tree_map


def small_cnn(dtype=np.float32, seed=0):
    layers = [
        nn.Conv2d(3, 3, padding="same"),
        nn.BatchNorm(),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(4),
    ]
    return nn.Network(layers, input_shape=(1, 4, 4), rng=seed, dtype=dtype)


def mlp(dtype=np.float64, seed=0):
    return nn.Network(
        [nn.Linear(5), nn.Tanh(), nn.Linear(2)], input_shape=(3,), rng=seed, dtype=dtype
    )


def _data(n=6, seed=0, dtype=np.float32):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, 1, 4, 4)).astype(dtype), r.integers(0, 4, n)


def test_network_holds_params_and_state_float32_by_default():
    net = small_cnn()
    assert net.dtype == np.float32
    leaves = tree_flatten(net)[0]
    assert leaves and all(a.dtype == np.float32 for a in leaves)
    assert set(net.params) == {"conv2d_0", "batchnorm_1", "linear_6"}
    assert set(net.state) == {"batchnorm_1"}
    assert net.num_params == 3 * 9 + 3 + 6 + 4 * 12 + 4
    x, _ = _data()
    assert net.predict(x).dtype == np.float32
    y, state = net.forward(x, rng=np.random.default_rng(0))
    assert y.shape == (6, 4) and y.dtype == np.float32


def test_float64_when_asked_and_astype():
    net = small_cnn(np.float64)
    assert all(a.dtype == np.float64 for a in tree_flatten(net)[0])
    x, _ = _data(dtype=np.float64)
    assert net.predict(x).dtype == np.float64
    net32 = net.astype(np.float32)
    assert all(a.dtype == np.float32 for a in tree_flatten(net32)[0])
    assert net32.predict(x).dtype == np.float32  # a plain float64 input takes the net's dtype
    with pytest.raises(TypeError, match="float"):
        nn.Network([nn.Linear(2)], (3,), dtype=np.int32)


def test_same_seed_same_network():
    a, b, c = small_cnn(seed=1), small_cnn(seed=1), small_cnn(seed=2)
    for u, v in zip(tree_flatten(a)[0], tree_flatten(b)[0]):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.params["conv2d_0"]["weight"], c.params["conv2d_0"]["weight"])


def test_forward_returns_state_and_does_not_mutate():
    net = small_cnn()
    before = [a.copy() for a in tree_flatten(net)[0]]
    x, _ = _data()
    y, state = net.forward(x, rng=np.random.default_rng(0))
    for a, b in zip(tree_flatten(net)[0], before):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(state["batchnorm_1"]["mean"], net.state["batchnorm_1"]["mean"])
    net2 = net.with_state(state)
    assert net2.state is state and net2.params is net.params and net.state is not state
    # predict uses the running statistics: differs from the training-mode output
    assert not np.allclose(net2.predict(x), y)


def test_predict_is_deterministic_and_chunks():
    net = small_cnn()
    x, _ = _data(n=10)
    full = net.predict(x)
    np.testing.assert_allclose(net.predict(x, batch_size=3), full, rtol=1e-6)
    np.testing.assert_array_equal(net(x), full)


def test_dropout_needs_rng_in_forward():
    net = small_cnn()
    x, _ = _data()
    with pytest.raises(ValueError, match="rng"):
        net.forward(x)


def loss_fn(net, x, y):
    logits, state = net.forward(x, rng=np.random.default_rng(0))
    return nn.losses.index_cross_entropy(logits, y), state


def test_grad_works_on_the_network_directly():
    net = small_cnn(np.float64)
    x, y = _data(dtype=np.float64)
    (loss, state), g = wengert.value_and_grad(loss_fn, has_aux=True)(net, x, y)
    assert isinstance(g, nn.Network)
    assert tree_flatten(g)[1] == tree_flatten(net)[1]
    assert not isinstance(state["batchnorm_1"]["mean"], wengert.core.Tracer)

    # the same gradient through the pure apply function of the params pytree
    def by_params(p):
        logits, _ = net.apply(p, net.state, x, True, np.random.default_rng(0))
        return nn.losses.index_cross_entropy(logits, y)

    gp = wengert.grad(by_params)(net.params)
    for a, b in zip(tree_flatten(g.params)[0], tree_flatten(gp)[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # the state gets a zero gradient
    assert all(not a.any() for a in tree_flatten(g.state)[0])
    # float32 network: float32 gradients
    net32 = small_cnn()
    g32 = wengert.grad(lambda n: loss_fn(n, *_data())[0])(net32)
    assert all(a.dtype == np.float32 for a in tree_flatten(g32)[0])


def test_check_grads_through_network_order_2():
    net = mlp()
    x = np.random.default_rng(1).standard_normal((4, 3))

    def f(params):
        return net.with_params(params).predict(x)

    check_grads(f, (net.params,), order=2, modes=("fwd", "rev"))


def test_hessian_vector_product_through_network():
    net = mlp()
    x = np.random.default_rng(1).standard_normal((4, 3))
    y = np.array([0, 1, 1, 0])

    def loss(params):
        return nn.losses.index_cross_entropy(net.apply(params, {}, x)[0], y)

    v = tree_map(lambda p: np.random.default_rng(p.size).standard_normal(p.shape), net.params)
    hv = wengert.hvp(loss, (net.params,), (v,))
    eps = 1e-6
    gp = wengert.grad(loss)(tree_map(lambda p, d: p + eps * d, net.params, v))
    gm = wengert.grad(loss)(tree_map(lambda p, d: p - eps * d, net.params, v))
    fd = tree_map(lambda a, b: (a - b) / (2 * eps), gp, gm)
    for a, b in zip(tree_flatten(hv)[0], tree_flatten(fd)[0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)


def test_gradient_penalty_input_gradient_then_param_gradient():
    """WGAN-GP style: the penalty (‖∇ₓ D(x)‖ − 1)² differentiated with respect to the params."""
    net = nn.Network([nn.Linear(4), nn.Tanh(), nn.Linear(1)], input_shape=(3,), dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((5, 3))

    def penalty(params):
        gx = wengert.grad(lambda x: net.apply(params, {}, x)[0].sum())(x)
        norms = ((gx * gx).sum(axis=1) + 1e-12) ** 0.5
        return ((norms - 1) ** 2).mean()

    check_grads(penalty, (net.params,), order=1, modes=("fwd", "rev"))


def test_physics_informed_second_derivative_in_input():
    """u(x) = net(x); the residual u'' + u uses the second derivative in the input."""
    net = nn.Network([nn.Linear(6), nn.Tanh(), nn.Linear(1)], input_shape=(1,), dtype=np.float64)
    xs = np.linspace(0, 1, 5)

    def u(params, x):
        return net.apply(params, {}, x.reshape(1, 1))[0][0, 0]

    def residual(params):
        total = 0.0
        for x in xs:
            d2 = wengert.grad(wengert.grad(lambda s: u(params, s)))(x)
            total = total + (d2 + u(params, x)) ** 2
        return total

    g = wengert.grad(residual)(net.params)
    assert set(g) == set(net.params)
    check_grads(residual, (net.params,), order=1, modes=("rev",))


def test_optimizer_updates_a_network():
    net = small_cnn()
    x, y = _data()
    opt = nn.adam(1e-2)
    st = opt.init(net)
    losses = []
    for _ in range(15):
        (loss, state), g = wengert.value_and_grad(loss_fn, has_aux=True)(net, x, y)
        net, st = opt.update(net, g, st)
        net = net.with_state(state)
        losses.append(float(loss))
    assert isinstance(net, nn.Network)
    assert losses[-1] < losses[0]
    assert all(a.dtype == np.float32 for a in tree_flatten(net)[0])


def test_summary_and_repr():
    net = small_cnn()
    s = net.summary()
    assert "conv2d_0" in s and "(3, 4, 4)" in s and f"total learnables: {net.num_params}" in s
    assert "Network(input_shape=(1, 4, 4)" in repr(net)
    assert len(net.layers) == 7


def test_accuracy():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert nn.accuracy(scores, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert nn.accuracy(scores, np.eye(2)[[1, 0, 1]]) == 1.0


def test_single_layer_network_and_embedding_input():
    net = nn.Network(nn.Embedding(10, 3), input_shape=(4,))
    idx = np.array([[1, 2, 3, 4]])
    assert net.predict(idx).shape == (1, 4, 3)
    seq = nn.Network([nn.Embedding(10, 4), nn.LSTM(5, return_sequences=False), nn.Linear(2)], (6,))
    assert seq.predict(np.zeros((3, 6), np.int64)).shape == (3, 2)
