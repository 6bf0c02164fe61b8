"""Layers of wengert.nn: initialisation (shapes, dtypes), apply (values, shapes, state) and
derivatives of every layer with respect to its learnables and its input (check_grads, both
modes, order 2, float64)."""

import numpy as np
import pytest

import wengert
import wengert.nn as nn
from wengert import check_grads
from wengert.nn import functional as F
from wengert.tree import tree_structure

RNG = np.random.default_rng(0)


def _x(shape, dtype=np.float64, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# (layer, example shape) for every layer with learnables or a non-trivial apply
CASES = [
    (lambda: nn.Linear(3), (4,)),
    (lambda: nn.Linear(3, bias=False), (2, 4)),
    (lambda: nn.Conv2d(3, 3, padding="same"), (2, 5, 5)),
    (lambda: nn.Conv2d(4, (2, 3), stride=2, padding=1, groups=2), (2, 5, 6)),
    (lambda: nn.Conv1d(3, 3, dilation=2), (2, 7)),
    (lambda: nn.ConvTranspose2d(2, 3, stride=2, padding=1, output_padding=1), (3, 3, 3)),
    (lambda: nn.BatchNorm(), (3, 2, 2)),
    (lambda: nn.BatchNorm(), (3,)),
    (lambda: nn.LayerNorm(), (3, 4)),
    (lambda: nn.LayerNorm(), (2, 3, 3)),
    (lambda: nn.GroupNorm(2), (4, 2, 2)),
    (lambda: nn.InstanceNorm(), (2, 3, 3)),
    (lambda: nn.LSTM(3), (4, 2)),
    (lambda: nn.LSTM(3, return_sequences=False), (3, 2)),
    (lambda: nn.GRU(3), (4, 2)),
    (lambda: nn.MultiHeadAttention(2, causal=True), (3, 4)),
    (lambda: nn.MaxPool2d(2), (2, 4, 4)),
    (lambda: nn.AvgPool2d(2, stride=1), (2, 3, 3)),
    (lambda: nn.GlobalAvgPool(), (2, 3, 3)),
    (lambda: nn.Flatten(), (2, 3, 3)),
    (lambda: nn.Reshape((3, -1)), (2, 3, 2)),
    (lambda: nn.ReLU(), (5,)),
    (lambda: nn.LeakyReLU(0.2), (5,)),
    (lambda: nn.ELU(), (5,)),
    (lambda: nn.GELU(), (5,)),
    (lambda: nn.SiLU(), (5,)),
    (lambda: nn.Softplus(), (5,)),
    (lambda: nn.Tanh(), (5,)),
    (lambda: nn.Sigmoid(), (5,)),
    (lambda: nn.Softmax(), (5,)),
    (lambda: nn.LogSoftmax(), (5,)),
]
IDS = [repr(make()) + str(shape) for make, shape in CASES]


@pytest.mark.parametrize("make,shape", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_and_apply_shapes_and_dtypes(make, shape, dtype):
    layer = make()
    params, state = layer.init(np.random.default_rng(0), shape, dtype)
    for leaf in wengert.tree_leaves((params, state)):
        assert leaf.dtype == dtype
    x = _x((2,) + shape, dtype)
    for training in (False, True):
        y, new_state = layer.apply(params, state, x, training, np.random.default_rng(0))
        assert y.dtype == dtype
        assert y.shape[1:] == layer.output_shape(shape, dtype)
        assert tree_structure(new_state) == tree_structure(state)


@pytest.mark.parametrize("make,shape", CASES, ids=IDS)
def test_check_grads_params_and_input(make, shape):
    layer = make()
    params, state = layer.init(np.random.default_rng(0), shape, np.float64)
    # nudge parameters away from symmetric values (ones/zeros) so every path is exercised
    params = wengert.tree_map(lambda p: p + 0.1 * _x(p.shape, seed=p.size), params)
    x = _x((2,) + shape, seed=3)
    if isinstance(layer, nn.MaxPool2d):
        x = np.arange(x.size, dtype=float).reshape(x.shape) % 7 + 0.01 * x  # no ties

    def f(p, x):
        return layer.apply(p, state, x, True, None)[0]

    if params:
        check_grads(f, (params, x), order=2, modes=("fwd", "rev"))
    else:
        check_grads(lambda x: f(params, x), (x,), order=2, modes=("fwd", "rev"))


def test_linear_matches_formula():
    layer = nn.Linear(3)
    p, _ = layer.init(RNG, (4,), np.float64)
    x = _x((5, 4))
    y, _ = layer.apply(p, {}, x)
    np.testing.assert_allclose(y, x @ p["weight"].T + p["bias"])
    assert p["weight"].shape == (3, 4) and p["bias"].shape == (3,)
    assert FullyConnectedIsLinear()


def FullyConnectedIsLinear():
    return nn.FullyConnected is nn.Linear


def test_conv_layers_use_functional_ops():
    layer = nn.Conv2d(4, 3, stride=2, padding="same", bias=True)
    p, _ = layer.init(RNG, (2, 6, 6), np.float64)
    assert p["weight"].shape == (4, 2, 3, 3)
    x = _x((3, 2, 6, 6))
    y, _ = layer.apply(p, {}, x)
    np.testing.assert_allclose(y, F.conv2d(x, p["weight"], p["bias"], stride=2, padding="same"))
    t = nn.ConvTranspose2d(5, 4, stride=2, padding=1)
    pt, _ = t.init(RNG, (2, 3, 3), np.float64)
    assert pt["weight"].shape == (2, 5, 4, 4)
    assert t.apply(pt, {}, _x((1, 2, 3, 3)))[0].shape == (1, 5, 6, 6)


def test_batchnorm_training_updates_running_stats_and_inference_uses_them():
    bn = nn.BatchNorm(momentum=0.2, eps=1e-5)
    p, s = bn.init(RNG, (3, 2, 2), np.float64)
    assert set(p) == {"gamma", "beta"} and set(s) == {"mean", "var"}
    x = _x((4, 3, 2, 2)) * 2 + 1
    y, s2 = bn.apply(p, s, x, training=True)
    m = x.mean(axis=(0, 2, 3))
    v = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(s2["mean"], 0.8 * 0 + 0.2 * m)
    n = 4 * 2 * 2
    np.testing.assert_allclose(s2["var"], 0.8 * 1 + 0.2 * v * n / (n - 1))
    assert s["mean"].sum() == 0  # the input state is untouched
    y_inf, s3 = bn.apply(p, s2, x, training=False)
    assert s3 is s2
    expect = (x - s2["mean"][:, None, None]) / np.sqrt(s2["var"][:, None, None] + 1e-5)
    np.testing.assert_allclose(y_inf, expect)


def test_dropout_layer():
    d = nn.Dropout(0.5)
    x = np.ones((100, 10), np.float32)
    y, _ = d.apply({}, {}, x, training=False)
    assert y is x
    y, _ = d.apply({}, {}, x, training=True, rng=np.random.default_rng(0))
    assert set(np.unique(y)) <= {0.0, 2.0} and y.dtype == np.float32
    assert 0.4 < (y == 0).mean() < 0.6
    with pytest.raises(ValueError, match="rng"):
        d.apply({}, {}, x, training=True)
    with pytest.raises(ValueError, match="p must"):
        nn.Dropout(1.0)


def test_dropout_gradient_uses_the_same_mask():
    d = nn.Dropout(0.3)
    x = _x((4, 5))
    g = wengert.grad(lambda x: d.apply({}, {}, x, True, np.random.default_rng(5))[0].sum())(x)
    y = d.apply({}, {}, x, True, np.random.default_rng(5))[0]
    np.testing.assert_allclose(g, np.where(y != 0, 1 / 0.7, 0.0))


def test_embedding_layer_and_its_gradient():
    e = nn.Embedding(6, 3)
    p, _ = e.init(RNG, (4,), np.float64)
    idx = np.array([[0, 2, 2, 5], [1, 1, 1, 1]])
    y, _ = e.apply(p, {}, idx)
    np.testing.assert_array_equal(y, p["weight"][idx])
    g = wengert.grad(lambda p: (e.apply(p, {}, idx)[0] ** 2).sum())(p)
    expect = np.zeros_like(p["weight"])
    np.add.at(expect, idx, 2 * p["weight"][idx])
    np.testing.assert_allclose(g["weight"], expect)
    check_grads(lambda w: e.apply({"weight": w}, {}, idx)[0], (p["weight"],), order=2)


def test_lstm_uses_unit_forget_gate_and_matches_functional():
    layer = nn.LSTM(4)
    p, _ = layer.init(RNG, (5, 3), np.float64)
    assert p["weight_ih"].shape == (16, 3) and p["weight_hh"].shape == (16, 4)
    np.testing.assert_array_equal(p["bias"], np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    x = _x((2, 5, 3))
    y, _ = layer.apply(p, {}, x)
    ys, h, _ = F.lstm(x, None, None, p["weight_ih"], p["weight_hh"], p["bias"])
    np.testing.assert_allclose(y, ys)
    last, _ = nn.LSTM(4, return_sequences=False).apply(p, {}, x)
    np.testing.assert_allclose(last, h)


def test_attention_layer_key_padding_mask():
    layer = nn.MultiHeadAttention(2)
    p, _ = layer.init(RNG, (4, 6), np.float64)
    x = _x((2, 4, 6))
    pad = np.array([[False, False, True, True], [False, False, False, False]])
    y, _ = layer.apply(p, {}, (x, pad))
    x2 = x.copy()
    x2[0, 2:] = 99.0  # changing padded positions does not change the unpadded outputs
    y2, _ = layer.apply(p, {}, (x2, pad))
    np.testing.assert_allclose(y[0, :2], y2[0, :2])
    np.testing.assert_allclose(y[1], y2[1])


def test_sequential_names_params_and_state():
    seq = nn.Sequential(nn.Conv2d(2, 3), nn.BatchNorm(), nn.ReLU(), ("head", nn.Linear(2)))
    assert seq.names == ["conv2d_0", "batchnorm_1", "relu_2", "head"]
    params, state = seq.init(RNG, (1, 4, 4), np.float32)
    assert set(params) == {"conv2d_0", "batchnorm_1", "head"}
    assert set(state) == {"batchnorm_1"}
    assert seq["head"] is seq[3]
    shapes = dict(seq.shapes((1, 4, 4)))
    assert shapes["conv2d_0"] == (2, 2, 2) and shapes["head"] == (2, 2, 2)
    seq2 = nn.Sequential([nn.Linear(3), nn.Tanh()])
    assert len(seq2) == 2
    with pytest.raises(ValueError, match="two layers"):
        nn.Sequential(("a", nn.ReLU()), ("a", nn.Tanh()))
    with pytest.raises(TypeError, match="not a Layer"):
        nn.Sequential(nn.ReLU(), np.tanh)


def test_sequential_check_grads_whole_model():
    seq = nn.Sequential(
        nn.Conv2d(2, 2, padding=1), nn.BatchNorm(), nn.Tanh(), nn.Flatten(), nn.Linear(2)
    )
    params, state = seq.init(np.random.default_rng(0), (1, 3, 3), np.float64)
    x = _x((3, 1, 3, 3))
    check_grads(lambda p: seq.apply(p, state, x, True)[0], (params,), order=2)


def test_activation_and_lambda_layers():
    a = nn.Activation(F.leaky_relu, alpha=0.3)
    x = _x((3, 4))
    np.testing.assert_allclose(a.apply({}, {}, x)[0], np.where(x > 0, x, 0.3 * x))
    lam = nn.Lambda(lambda x: x * 2)
    np.testing.assert_allclose(lam.apply({}, {}, x)[0], 2 * x)
    assert "leaky_relu" in repr(a)


def test_initializers_by_name_and_callable():
    lin = nn.Linear(
        3, weight_init="zeros", bias_init=lambda rng, shape, dtype: np.full(shape, 7, dtype)
    )
    p, _ = lin.init(RNG, (2,), np.float32)
    assert not p["weight"].any() and (p["bias"] == 7).all() and p["bias"].dtype == np.float32
    with pytest.raises(ValueError, match="unknown initializer"):
        nn.Linear(3, weight_init="no_such_init")


def test_bad_input_shapes_give_clear_errors():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        nn.Conv2d(3, 3).init(RNG, (8, 8), np.float32)
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 3, groups=2).init(RNG, (4, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"\(N, T, C\)"):
        nn.LSTM(3).init(RNG, (4,), np.float32)
    with pytest.raises(ValueError, match="num_heads"):
        nn.MultiHeadAttention(3).init(RNG, (2, 4), np.float32)
    with pytest.raises(ValueError, match="groups"):
        nn.GroupNorm(3).init(RNG, (4, 2, 2), np.float32)
