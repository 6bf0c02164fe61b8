"""Checkpoints (exact round trips, atomic writes that survive a crash mid-save) and the
training monitor (metrics, tqdm progress bar, headless PNG plots)."""

import io
import os

import numpy as np
import pytest

import wengert
import wengert.nn as nn
from wengert.nn import io as nnio
from wengert.tree import tree_flatten


def _net(dtype=np.float32, seed=0):
    return nn.Network(
        [nn.Conv2d(2, 3, padding=1), nn.BatchNorm(), nn.ReLU(), nn.Flatten(), nn.Linear(3)],
        input_shape=(1, 4, 4),
        rng=seed,
        dtype=dtype,
    )


def _same(a, b):
    la, ta = tree_flatten(a)
    lb, tb = tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        assert type(x) is type(y)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


def test_pytree_round_trip_is_exact(tmp_path):
    r = np.random.default_rng(0)
    tree = {
        "f32": r.standard_normal((2, 3)).astype(np.float32),
        "f64": r.standard_normal(4),
        "c128": r.standard_normal(2) + 1j * r.standard_normal(2),
        "int": np.arange(5, dtype=np.int16),
        "bool": np.array([True, False]),
        "zero_d": np.zeros((), np.int64),
        "empty": np.zeros((0, 3)),
        "np_scalar": np.float32(1.5),
        "py": [1, 2.5, True, None, (3, {"deep": np.ones(1)})],
        7: "not allowed"[:0] or np.ones(2),  # an int key
        "noncontig": np.arange(12.0).reshape(3, 4).T,
    }
    path = tmp_path / "tree.npz"
    nnio.save_pytree(path, tree, info={"note": "hello"})
    back = nnio.load_pytree(path)
    assert list(back) == list(tree)  # key order kept
    _same(back, tree)
    assert nnio.load_pytree(path, like=tree) is not None


def test_network_round_trip_exact_and_checked(tmp_path):
    net = _net()
    x = np.random.default_rng(1).standard_normal((4, 1, 4, 4)).astype(np.float32)
    _, state = net.forward(x)
    net = net.with_state(state)
    path = tmp_path / "net.npz"
    nn.save_network(path, net)
    fresh = _net(seed=5)
    loaded = nn.load_network(path, like=fresh)
    _same(loaded.params, net.params)
    _same(loaded.state, net.state)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    with pytest.raises(ValueError, match="shape"):
        nn.load_network(path, like=nn.Network(
            [nn.Conv2d(4, 3, padding=1), nn.BatchNorm(), nn.ReLU(), nn.Flatten(), nn.Linear(3)],
            input_shape=(1, 4, 4)))  # fmt: skip
    with pytest.raises(ValueError, match="dtype"):
        nn.load_network(path, like=_net(np.float64))
    with pytest.raises(ValueError, match="missing"):
        nn.load_network(path, like=nn.Network([nn.Linear(2)], input_shape=(3,)))
    nn.save_optimizer_state(tmp_path / "opt.npz", nn.adam().init(net))
    with pytest.raises(ValueError, match="not a network"):
        nn.load_network(tmp_path / "opt.npz", like=net)


def test_checkpoint_with_network_optimizer_state_and_extras(tmp_path):
    net = _net()
    opt = nn.adam(1e-3)
    st = opt.init(net)
    g = wengert.grad(lambda n: (n.predict(np.ones((2, 1, 4, 4), np.float32)) ** 2).sum())(net)
    net, st = opt.update(net, g, st)
    path = tmp_path / "ckpt.npz"
    nn.save_checkpoint(path, net=net, opt_state=st, step=np.int64(1), info={"epoch": 3})
    ck = nn.load_checkpoint(path, net=_net(seed=9))
    _same(ck["network"].params, net.params)
    _same(ck["opt_state"], st)
    assert ck["step"] == 1 and ck["info"] == {"epoch": 3}
    raw = nn.load_checkpoint(path)
    assert set(raw["network"]) == {"params", "state"}


def test_crash_mid_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    net = _net()
    path = tmp_path / "net.npz"
    nn.save_network(path, net)
    good = path.read_bytes()

    def crashing_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial garbage")  # a torn, half-written file
        raise OSError("disk full (simulated crash mid-save)")

    monkeypatch.setattr(nnio.np, "savez", crashing_savez)
    with pytest.raises(OSError, match="simulated"):
        nn.save_network(path, _net(seed=3))
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]  # no temporary file left behind
    loaded = nn.load_network(path, like=_net(seed=3))
    _same(loaded.params, net.params)


def test_crash_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "state.npz"
    nn.save_optimizer_state(path, {"step": np.zeros((), np.int64)})
    good = path.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt  # e.g. the process is interrupted at the last moment

    monkeypatch.setattr(nnio.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        nn.save_optimizer_state(path, {"step": np.ones((), np.int64)})
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["state.npz"]


def test_atomic_write_fsyncs_before_replacing(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(nnio.os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(
        nnio.os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))
    )
    nnio.save_pytree(tmp_path / "t.npz", {"a": np.ones(2)})
    assert calls[:2] == ["fsync", "replace"]


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="cannot store"):
        nnio.save_pytree(tmp_path / "x.npz", {"s": "text"})
    with pytest.raises(TypeError, match="keys"):
        nnio.save_pytree(tmp_path / "x.npz", {(1, 2): np.ones(1)})

    def f(x):
        nnio.save_pytree(tmp_path / "x.npz", {"x": x})
        return x.sum()

    with pytest.raises(TypeError, match="traced"):
        wengert.grad(f)(np.ones(2))
    assert not (tmp_path / "x.npz").exists()
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="not a wengert checkpoint"):
        nnio.load_pytree(tmp_path / "plain.npz")


# Monitor ----------------------------------------------------------------------------------


def test_monitor_records_metrics_and_epoch_means():
    mon = nn.TrainingMonitor(progress=False)
    for i in range(1, 7):
        mon.record(i, epoch=(i - 1) // 3 + 1, loss=1.0 / i, accuracy=np.float32(i / 10))
    mon.record(6, val_accuracy=0.5)
    assert mon.latest()["val_accuracy"] == 0.5
    np.testing.assert_allclose(mon.values("loss"), 1 / np.arange(1, 7))
    np.testing.assert_array_equal(mon.iterations("val_accuracy"), [6])
    epochs, means = mon.epoch_means("loss")
    np.testing.assert_array_equal(epochs, [1, 2])
    np.testing.assert_allclose(means, [np.mean([1, 1 / 2, 1 / 3]), np.mean([1 / 4, 1 / 5, 1 / 6])])
    d = mon.to_dict()
    assert d["accuracy"]["epoch"] == [1, 1, 1, 2, 2, 2]
    with pytest.raises(KeyError, match="no metric"):
        mon.values("nope")
    mon.record(loss=0.1)  # iteration defaults to the next one
    assert mon.iterations("loss")[-1] == 7
    assert mon.elapsed >= 0


def test_progress_bar_shows_loss_and_accuracy():
    buf = io.StringIO()
    with nn.TrainingMonitor(total=5, desc="fit", progress=True, file=buf) as mon:
        for i in range(1, 6):
            mon.record(i, epoch=1, loss=0.25, accuracy=0.75)
    out = buf.getvalue()
    assert "fit" in out and "loss=0.25" in out and "accuracy=0.75" in out and "5/5" in out


def test_progress_defaults_off_when_not_a_terminal():
    buf = io.StringIO()
    mon = nn.TrainingMonitor(total=3, file=buf)
    mon.record(1, loss=1.0)
    mon.close()
    assert buf.getvalue() == ""


def test_plot_writes_a_png_headless(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    mon = nn.TrainingMonitor(progress=False)
    for i in range(1, 200):
        mon.record(i, loss=np.exp(-i / 50), accuracy=1 - np.exp(-i / 40))
    mon.record(199, test_accuracy=0.9)
    path = mon.plot(
        tmp_path / "sub" / "curves.png", groups=[["loss"], ["accuracy", "test_accuracy"]], smooth=10
    )
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    one = nn.plot_curves(tmp_path / "one.png", {"a": ([1, 2, 3], [3, 2, 1])})
    assert os.path.getsize(one) > 1000
    with pytest.raises(KeyError, match="no series"):
        nn.plot_curves(tmp_path / "bad.png", {"a": ([1], [1])}, groups=[["b"]])
