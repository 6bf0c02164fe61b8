"""wengert.nn.init: fans of dense and convolution shapes, distributions' scales, seeding,
orthogonality, dtypes and errors."""

import math

import numpy as np
import pytest

import wengert.nn.init as init


def test_fans():
    assert init.fans((10, 20)) == (20, 10)
    assert init.fans((16, 3, 5, 5)) == (75, 400)
    assert init.fans((8, 4, 3)) == (12, 24)
    assert init.fans((7,)) == (7, 7)
    assert init.fans(()) == (1, 1)
    assert init.fans(5) == (5, 5)


@pytest.mark.parametrize(
    "f, shape, var",
    [
        (init.glorot_uniform, (200, 300), 2 / 500),
        (init.glorot_normal, (200, 300), 2 / 500),
        (init.he_uniform, (64, 16, 3, 3), 2 / 144),
        (init.he_normal, (64, 16, 3, 3), 2 / 144),
        (init.narrow_normal, (300, 300), 1e-4),
    ],
)
def test_scales_seeding_dtype(f, shape, var):
    a = f(np.random.default_rng(0), shape)
    assert a.shape == shape and a.dtype == np.float32
    assert abs(a.mean()) < 0.05 * math.sqrt(var) * 10
    assert abs(a.var() / var - 1) < 0.05
    np.testing.assert_array_equal(a, f(np.random.default_rng(0), shape))
    assert not np.array_equal(a, f(np.random.default_rng(1), shape))
    assert f(np.random.default_rng(0), shape, dtype=np.float64).dtype == np.float64


def test_uniform_bounds():
    a = init.glorot_uniform(np.random.default_rng(0), (30, 20))
    assert np.abs(a).max() <= math.sqrt(6 / 50)
    b = init.he_uniform(np.random.default_rng(0), (30, 20), gain=1.0)
    assert np.abs(b).max() <= math.sqrt(3 / 20)
    c = init.uniform(np.random.default_rng(0), (100,), low=2, high=3)
    assert c.min() >= 2 and c.max() < 3
    n = init.normal(np.random.default_rng(0), (10000,), std=2.0, mean=1.0)
    assert abs(n.mean() - 1) < 0.1 and abs(n.std() - 2) < 0.1


@pytest.mark.parametrize("shape", [(5, 8), (8, 5), (6, 2, 3), (4, 4)])
def test_orthogonal(shape):
    a = init.orthogonal(np.random.default_rng(3), shape, dtype=np.float64, gain=2.0)
    m = a.reshape(shape[0], -1)
    if m.shape[0] <= m.shape[1]:
        np.testing.assert_allclose(m @ m.T, 4 * np.eye(m.shape[0]), atol=1e-12)
    else:
        np.testing.assert_allclose(m.T @ m, 4 * np.eye(m.shape[1]), atol=1e-12)
    assert init.orthogonal(np.random.default_rng(3), shape).dtype == np.float32
    with pytest.raises(ValueError, match="2 axes"):
        init.orthogonal(np.random.default_rng(3), (4,))


def test_constants_and_unit_forget_gate():
    assert np.all(init.zeros(None, (2, 3)) == 0) and init.zeros(None, 4).dtype == np.float32
    assert np.all(init.ones(np.random.default_rng(0), (2,), np.float64) == 1)
    b = init.unit_forget_gate(None, (12,))
    np.testing.assert_array_equal(b, [0] * 3 + [1] * 3 + [0] * 6)
    assert b.dtype == np.float32
    with pytest.raises(ValueError, match="hidden"):
        init.unit_forget_gate(None, (10,))


def test_errors():
    with pytest.raises(TypeError, match="Generator"):
        init.glorot_uniform(0, (2, 2))
    with pytest.raises(TypeError, match="float"):
        init.he_normal(np.random.default_rng(0), (2, 2), dtype=np.int32)
    with pytest.raises(ValueError, match="non-negative"):
        init.glorot_normal(np.random.default_rng(0), (2, -1))
