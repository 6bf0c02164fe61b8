"""wengert.nn.losses: values against direct NumPy formulas, derivatives to order 2 in both
modes, numerical stability at extreme inputs, reductions, dtypes and errors."""

import numpy as np
import pytest
from _checks import rng

import wengert.nn.functional as F
import wengert.nn.losses as L
from wengert import check_grads, grad, vjp


def _lsm(x, axis=1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _probs(r, shape, axis=1):
    p = r.random(shape) + 0.1
    return p / p.sum(axis=axis, keepdims=True)


def check(f, *args):
    check_grads(f, args, order=2, modes=("fwd", "rev"))


def test_cross_entropy_values():
    r = rng(1)
    x = r.standard_normal((5, 4))
    t = _probs(r, (5, 4))
    np.testing.assert_allclose(L.cross_entropy(x, t), -(t * _lsm(x)).sum(1).mean())
    np.testing.assert_allclose(L.cross_entropy(x, t, reduction="sum"), -(t * _lsm(x)).sum())
    np.testing.assert_allclose(L.cross_entropy(x, t, reduction="none"), -(t * _lsm(x)).sum(1))
    w = np.array([1.0, 2.0, 0.5, 1.5])
    ts = 0.9 * t + 0.1 / 4
    np.testing.assert_allclose(
        L.cross_entropy(x, t, class_weights=w, label_smoothing=0.1),
        -(w * ts * _lsm(x)).sum(1).mean(),
    )
    # class axis 1 of (N, K, T) and a trailing class axis
    x3, t3 = r.standard_normal((2, 4, 3)), _probs(r, (2, 4, 3))
    np.testing.assert_allclose(L.cross_entropy(x3, t3), -(t3 * _lsm(x3)).sum(1).mean())
    xt, tt = np.moveaxis(x3, 1, -1), np.moveaxis(t3, 1, -1)
    np.testing.assert_allclose(L.cross_entropy(xt, tt, axis=-1), L.cross_entropy(x3, t3))


def test_cross_entropy_derivatives():
    r = rng(2)
    x, t = r.standard_normal((4, 3)), _probs(r, (4, 3))
    w = np.array([0.5, 1.0, 2.0])
    check(lambda x: L.cross_entropy(x, t, class_weights=w, label_smoothing=0.2), x)
    check(lambda x, t: L.cross_entropy(x, t), x, t)  # targets traced too (distillation)
    g = grad(lambda x: L.cross_entropy(x, t))(x)
    sm = np.exp(_lsm(x))
    np.testing.assert_allclose(g, (sm - t) / 4)


def test_cross_entropy_stable_and_float32():
    x = np.array([[1000.0, -1000.0, 0.0], [-1e4, 1e4, 0.0]])
    t = np.eye(3)[[0, 1]]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert L.cross_entropy(x, t) == 0.0
        assert np.isfinite(L.cross_entropy(x, np.eye(3)[[1, 0]]))
        assert np.all(np.isfinite(grad(lambda x: L.cross_entropy(x, np.eye(3)[[2, 2]]))(x)))
        assert np.isfinite(L.cross_entropy_from_probs(np.eye(3)[[0, 1]], np.eye(3)[[1, 1]]))
        assert np.all(
            np.isfinite(
                grad(lambda p: L.cross_entropy_from_probs(p, np.eye(3)[[1, 1]]))(np.eye(3)[[0, 1]])
            )
        )
    x32 = rng(3).standard_normal((6, 5)).astype(np.float32)
    t64 = F.one_hot(np.arange(6) % 5, 5, dtype=np.float64)
    for loss in (
        lambda x: L.cross_entropy(x, t64, label_smoothing=0.1, class_weights=np.ones(5)),
        lambda x: L.index_cross_entropy(x, np.arange(6) % 5, label_smoothing=0.1),
        lambda x: L.cross_entropy_from_probs(F.softmax(x, axis=1), t64),
        lambda x: L.binary_cross_entropy(x, (x > 0).astype(np.float64), logits=True),
        lambda x: L.mse(x, np.zeros((6, 5))),
        lambda x: L.huber(x, np.ones((6, 5))),
        lambda x: L.kl_div(x, t64, from_logits=True),
    ):
        v, pull = vjp(loss, x32)
        assert v.dtype == np.float32 and pull(np.float32(1))[0].dtype == np.float32


def test_cross_entropy_from_probs():
    r = rng(4)
    p, t = _probs(r, (4, 3)), _probs(r, (4, 3))
    np.testing.assert_allclose(L.cross_entropy_from_probs(p, t), -(t * np.log(p)).sum(1).mean())
    w = np.array([1.0, 3.0, 0.5])
    np.testing.assert_allclose(
        L.cross_entropy_from_probs(p, t, class_weights=w, label_smoothing=0.3, reduction="sum"),
        -(w * (0.7 * t + 0.1) * np.log(p)).sum(),
    )
    check(lambda p: L.cross_entropy_from_probs(p, t, class_weights=w), p)
    # the eps clip: log(0) never happens
    z = np.array([[0.0, 1.0]])
    np.testing.assert_allclose(
        L.cross_entropy_from_probs(z, np.array([[1.0, 0.0]])), -np.log(np.finfo(float).eps)
    )


def test_index_cross_entropy():
    r = rng(5)
    x = r.standard_normal((6, 4))
    y = np.array([0, 3, 1, 1, 2, 0])
    oh = F.one_hot(y, 4, dtype=np.float64)
    w = np.array([1.0, 2.0, 0.5, 3.0])
    for kw in (
        {},
        {"label_smoothing": 0.2},
        {"class_weights": w},
        {"class_weights": w, "label_smoothing": 0.1},
    ):
        for red in ("mean", "sum", "none"):
            np.testing.assert_allclose(
                L.index_cross_entropy(x, y, reduction=red, **kw),
                L.cross_entropy(x, oh, reduction=red, **kw),
            )
    check(lambda x: L.index_cross_entropy(x, y, class_weights=w, label_smoothing=0.1), x)
    # (N, K, T) with labels (N, T), and ignore_index
    x3 = r.standard_normal((2, 3, 4))
    y3 = r.integers(0, 3, (2, 4))
    np.testing.assert_allclose(
        L.index_cross_entropy(x3, y3),
        L.cross_entropy(x3, np.moveaxis(F.one_hot(y3, 3, np.float64), -1, 1)),
    )
    y3i = y3.copy()
    y3i[0, 1] = -100
    per = L.index_cross_entropy(x3, y3, reduction="none")
    keep = y3i != -100
    np.testing.assert_allclose(L.index_cross_entropy(x3, y3i, ignore_index=-100), per[keep].mean())
    check(lambda x: L.index_cross_entropy(x, y3i, ignore_index=-100), x3)
    # the plain mean (the common case, its own shorter path): derivatives, dtypes, integers
    check(lambda x: L.index_cross_entropy(x, y), x)
    check(lambda x: L.index_cross_entropy(x, y3), x3)
    assert L.index_cross_entropy(x.astype(np.float32), y).dtype == np.float32
    xi = np.array([[1, 2, 3], [3, 1, 0]])
    np.testing.assert_allclose(
        L.index_cross_entropy(xi, np.array([2, 0])),
        L.index_cross_entropy(xi.astype(float), np.array([2, 0])),
    )
    with pytest.raises(ValueError, match="lie in"):
        L.index_cross_entropy(x, y + 1)
    with pytest.raises(TypeError, match="integers"):
        L.index_cross_entropy(x, y.astype(float))
    with pytest.raises(ValueError, match="shape"):
        L.index_cross_entropy(x, y[:3])


def test_binary_cross_entropy():
    r = rng(6)
    z = r.standard_normal((4, 3)) * 3
    p = 1 / (1 + np.exp(-z))
    t = (r.random((4, 3)) > 0.5).astype(float)
    ref = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(L.binary_cross_entropy(p, t), ref.mean())
    np.testing.assert_allclose(L.binary_cross_entropy(z, t, logits=True), ref.mean())
    np.testing.assert_allclose(L.binary_cross_entropy_with_logits(z, t, reduction="none"), ref)
    wts = r.random((4, 3))
    np.testing.assert_allclose(
        L.binary_cross_entropy(p, t, weights=wts, reduction="sum"), (wts * ref).sum()
    )
    pw = 2.0
    np.testing.assert_allclose(
        L.binary_cross_entropy(z, t, logits=True, pos_weight=pw, reduction="none"),
        -(pw * t * np.log(p) + (1 - t) * np.log(1 - p)),
    )
    check(lambda p: L.binary_cross_entropy(p, t), p)
    check(lambda z: L.binary_cross_entropy(z, t, logits=True, pos_weight=pw), z)
    big = np.array([800.0, -800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(
            L.binary_cross_entropy(big, np.array([1.0, 0.0]), logits=True), 0.0
        )
        np.testing.assert_allclose(
            L.binary_cross_entropy(big, np.array([0.0, 1.0]), logits=True, reduction="none"),
            [800, 800],
        )
        assert np.isfinite(L.binary_cross_entropy(np.array([0.0, 1.0]), np.array([1.0, 0.0])))
    with pytest.raises(ValueError, match="pos_weight"):
        L.binary_cross_entropy(p, t, pos_weight=2.0)


def test_regression_losses():
    r = rng(7)
    y, t = r.standard_normal((4, 3)), r.standard_normal((4, 3))
    d = y - t
    np.testing.assert_allclose(L.mse(y, t), (d**2).mean())
    np.testing.assert_allclose(L.mse(y, t, reduction="batch"), (d**2).sum() / 4)
    np.testing.assert_allclose(L.l2(y, t), (d**2).sum() / 4)
    np.testing.assert_allclose(L.l1(y, t), np.abs(d).sum() / 4)
    np.testing.assert_allclose(L.l1(y, t, reduction="mean"), np.abs(d).mean())
    np.testing.assert_allclose(L.l2(y, t, reduction="none"), d**2)
    hub = np.where(np.abs(d) <= 0.5, 0.5 * d**2, 0.5 * (np.abs(d) - 0.25))
    np.testing.assert_allclose(L.huber(y, t, delta=0.5), hub.sum() / 4)
    np.testing.assert_allclose(L.mse(y, 0.5), ((y - 0.5) ** 2).mean())  # broadcast target
    for f in (L.mse, L.l2, L.l1, lambda y, t: L.huber(y, t, delta=0.5)):
        check(f, y, t)
    with pytest.raises(ValueError, match="reduction"):
        L.mse(y, t, reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        L.cross_entropy(y, _probs(r, (4, 3)), reduction="batch")
    with pytest.raises(ValueError, match="delta"):
        L.huber(y, t, delta=0)
    with pytest.raises(ValueError, match="match"):
        L.mse(y, t[:, :2])


def test_kl_div():
    r = rng(8)
    q, p = _probs(r, (3, 4)), _probs(r, (3, 4))
    p[0, 1] = 0.0
    p /= p.sum(1, keepdims=True)
    ref = np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0) - p * np.log(q)) / 3
    np.testing.assert_allclose(L.kl_div(q, p), ref)
    np.testing.assert_allclose(L.kl_div(np.log(q), p, log_input=True), ref)
    logits = r.standard_normal((3, 4))
    np.testing.assert_allclose(
        L.kl_div(logits, p, from_logits=True), L.kl_div(np.exp(_lsm(logits)), p)
    )
    assert abs(L.kl_div(p + 0.0, p)) < 1e-12
    check(lambda q, p: L.kl_div(q, p), q, _probs(r, (3, 4)))
    check(lambda z: L.kl_div(z, p, from_logits=True), logits)
