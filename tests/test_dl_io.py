"""wengert.dl.save/load (MATLAB's save/load of networks, tables, dlarrays and solver states:
exact round trips, atomic writes, what needs pickling) and trainingProgressMonitor's log axes."""

import json
import os

import numpy as np
import pytest

import wengert.dl as dl
from wengert.dl import (
    Table,
    adamupdate,
    batchNormalizationLayer,
    convolution2dLayer,
    dlarray,
    dlfeval,
    dlgradient,
    dlnetwork,
    dropoutLayer,
    featureInputLayer,
    forward,
    fullyConnectedLayer,
    imageInputLayer,
    lbfgsState,
    lbfgsupdate,
    load,
    lstmLayer,
    maxPooling2dLayer,
    predict,
    reluLayer,
    save,
    sequenceInputLayer,
    softmaxLayer,
    trainingProgressMonitor,
)
from wengert.nn import io as nnio


def _cnn(seed=0):
    return dlnetwork(
        [
            imageInputLayer([6, 6, 2], normalization="zscore", name="in"),
            convolution2dLayer(3, 4, padding="same", weight_learn_rate_factor=0.5),
            batchNormalizationLayer(),
            reluLayer(),
            maxPooling2dLayer(2, stride=2),
            dropoutLayer(0.25),
            fullyConnectedLayer(3, name="head"),
            softmaxLayer(),
        ],
        rng=seed,
    )


def _images(n=4, seed=1):
    x = np.random.default_rng(seed).standard_normal((6, 6, 2, n)).astype(np.float32)
    return dlarray(x, "SSCB")


def _same_value(a, b):
    assert type(a) is type(b)
    if isinstance(a, dlarray):
        assert a.fmt == b.fmt
        _same_value(a._value, b._value)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, Table):
        assert a.layer == b.layer and a.parameter == b.parameter
        for x, y in zip(a.value, b.value):
            _same_value(x, y)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same_value(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same_value(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b and (not isinstance(a, float) or np.copysign(1, a) == np.copysign(1, b))


def _same_network(a, b):
    assert isinstance(b, dlnetwork)
    assert [ly.name for ly in a.layers] == [ly.name for ly in b.layers]
    assert [type(ly) for ly in a.layers] == [type(ly) for ly in b.layers]
    assert a.dtype == b.dtype and a.initialized == b.initialized
    assert a.input_names == b.input_names and a.output_names == b.output_names
    _same_value(a.learnables, b.learnables)
    _same_value(a.state, b.state)
    for t in a.learnables:
        assert a.learn_rate_factor(t.layer, t.parameter) == b.learn_rate_factor(
            t.layer, t.parameter
        )


# ---------------------------------------------------------------------------------------------
# Exact round trips
# ---------------------------------------------------------------------------------------------


def test_network_round_trip_is_exact(tmp_path):
    net = _cnn()
    X = _images()
    _, state = forward(net, X, rng=0)
    net.state = state  # non-trivial batch-norm statistics
    path = tmp_path / "net.mat"  # any extension: the file is an .npz
    assert save(path, net=net) == os.fspath(path)
    S = load(path)
    assert list(S) == ["net"]
    net2 = S["net"]
    _same_network(net, net2)
    assert net2.layers[0].normalization == "zscore"
    assert net2.learn_rate_factor("conv", "Weights") == 0.5
    np.testing.assert_array_equal(predict(net2, X)._value, predict(net, X)._value)
    y1, s1 = forward(net, X, rng=7)
    y2, s2 = forward(net2, X, rng=7)  # dropout from the same stream: the same mask
    np.testing.assert_array_equal(y1._value, y2._value)
    _same_value(s1, s2)

    # the loaded network trains on exactly as the original
    def model_loss(n):
        y, _ = forward(n, X, rng=3)
        ell = (y * y).sum()
        return ell, dlgradient(ell, n.learnables)

    g1 = dlfeval(model_loss, net)[1]
    g2 = dlfeval(model_loss, net2)[1]
    _same_value(g1, g2)
    a, m1, v1 = adamupdate(net, g1, None, None, 1)
    b, m2, v2 = adamupdate(net2, g2, None, None, 1)
    _same_network(a, b)
    # the loaded network owns its tables
    assert net2.learnables is not net.learnables


def test_recurrent_float64_network_and_uninitialised_network(tmp_path):
    net = dlnetwork(
        [sequenceInputLayer(3), lstmLayer(4, output_mode="last"), fullyConnectedLayer(2)],
        rng=0,
        dtype=np.float64,
    )
    X = dlarray(np.random.default_rng(2).standard_normal((3, 2, 5)), "CBT")
    _, net.state = predict(net, X, return_state=True)
    raw = dlnetwork([featureInputLayer(3), fullyConnectedLayer(2)], initialize=False)
    save(tmp_path / "r.npz", rnn=net, raw=raw)
    S = load(tmp_path / "r.npz")
    _same_network(net, S["rnn"])
    assert S["rnn"].learnables.value[0]._value.dtype == np.float64
    np.testing.assert_array_equal(predict(S["rnn"], X)._value, predict(net, X)._value)
    assert not S["raw"].initialized and S["raw"].learnables.value == [None, None]
    init = dl.initialize(S["raw"], rng=5)
    ref = dl.initialize(raw, rng=5)
    _same_value(init.learnables, ref.learnables)


def test_values_of_every_kind_round_trip_exactly(tmp_path):
    r = np.random.default_rng(0)
    t = Table(["fc", "fc"], ["Weights", "Bias"], [dlarray(np.ones((2, 3), np.float32)), None])
    variables = {
        "avgG": t,
        "X": dlarray(r.standard_normal((4, 3, 2)).astype(np.float32), "CBT"),
        "img": dlarray(r.standard_normal((2, 2, 1, 3)), "SSCB"),
        "U": dlarray(np.array([True, False])),
        "nested": {"a": [1, 2.5, None, (True, "text")], 7: (np.float32(1.5), np.int16(-3))},
        "numbers": [2**70, -0.0, float("inf"), float("nan"), 1e-310, 3 + 4j],
        "arrays": [
            r.standard_normal((3, 4)).T,  # not contiguous
            np.arange(6, dtype=np.int8).reshape(2, 3),
            np.zeros((0, 2), np.float32),
            np.array(5.0),
            np.array([1 + 2j], np.complex64),
            np.array(["cat", "dog"]),
            np.array(["2024-01-01"], dtype="datetime64[D]"),
        ],
        "dtype": np.dtype(np.float32),
        "row": t[0],  # a Row namedtuple
        "empty": {},
    }
    save(tmp_path / "v.npz", variables)
    back = load(tmp_path / "v.npz")
    assert list(back) == list(variables)
    for k in variables:
        _same_value(variables[k], back[k])
    assert type(back["row"]).__name__ == "Row" and back["row"].parameter == "Weights"


def test_lbfgs_state_round_trip_continues_identically(tmp_path):
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])
    f = lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b)
    x, st = np.array([2.0, 2.0]), lbfgsState(history_size=3)
    for _ in range(3):
        x, st = lbfgsupdate(x, f, st)
    save(tmp_path / "s.npz", x=x, solverState=st)
    S = load(tmp_path / "s.npz")
    st2 = S["solverState"]
    assert isinstance(st2, lbfgsState) and st2.iteration == 3
    assert st2.gradients_norm == st.gradients_norm and st2.step_norm == st.step_norm
    _same_value(st.step_history, st2.step_history)
    xa, sa = lbfgsupdate(x, f, st)
    xb, sb = lbfgsupdate(S["x"], f, st2)
    np.testing.assert_array_equal(xa, xb)
    assert sa.loss == sb.loss and sa.inverse_hessian_factor == sb.inverse_hessian_factor


def test_load_selected_variables_append_and_compress(tmp_path):
    p = tmp_path / "ws.npz"
    save(p, a=np.arange(3), b=dlarray(np.ones((2, 2), np.float32), "CB"))
    assert list(load(p, "b")) == ["b"]
    with pytest.raises(KeyError, match="no variable"):
        load(p, "c")
    save(p, {"b": 2.0, "c": [np.ones(2)]}, append=True)  # MATLAB's -append: add or replace
    S = load(p)
    assert list(S) == ["a", "b", "c"] and S["b"] == 2.0
    np.testing.assert_array_equal(S["a"], np.arange(3))
    np.testing.assert_array_equal(S["c"][0], np.ones(2))
    save(p, a=1)  # without append the file holds only the new variables
    assert list(load(p)) == ["a"]
    big = np.zeros((200, 200))
    save(tmp_path / "z.npz", big=big, compress=True)
    save(tmp_path / "u.npz", big=big)
    assert os.path.getsize(tmp_path / "z.npz") < os.path.getsize(tmp_path / "u.npz") / 10
    np.testing.assert_array_equal(load(tmp_path / "z.npz")["big"], big)
    # names that are also keywords: the dict form
    save(p, {"path": 1, "append": 2})
    assert load(p) == {"path": 1, "append": 2}


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------


def test_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "net.npz"
    net = _cnn()
    save(p, net=net)
    good = p.read_bytes()

    def crashing_savez(f, **arrays):
        f.write(b"PK\x03\x04 torn")
        raise OSError("disk full (simulated crash mid-save)")

    monkeypatch.setattr(np, "savez", crashing_savez)
    with pytest.raises(OSError, match="simulated"):
        save(p, net=_cnn(seed=3))
    monkeypatch.undo()
    assert p.read_bytes() == good
    assert os.listdir(tmp_path) == ["net.npz"]  # no temporary file left
    _same_network(net, load(p)["net"])

    def boom(*a, **k):
        raise KeyboardInterrupt  # interrupted just before the rename

    monkeypatch.setattr(nnio.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save(p, other=np.ones(3))
    monkeypatch.undo()
    assert p.read_bytes() == good and os.listdir(tmp_path) == ["net.npz"]


def test_unstorable_values_fail_before_writing(tmp_path):
    p = tmp_path / "x.npz"
    save(p, a=1)
    good = p.read_bytes()
    with pytest.raises(TypeError, match="allow_pickle=True"):
        save(p, a=object())
    with pytest.raises(ValueError, match="cycle"):
        loop = []
        loop.append(loop)
        save(p, a=loop)

    def inside(x):
        save(p, x=x)
        return x

    with pytest.raises(TypeError, match="traced"):
        dlfeval(inside, dlarray(np.ones(2)))
    with pytest.raises(ValueError, match="give the variables"):
        save(p)
    with pytest.raises(ValueError, match="both"):
        save(p, {"a": 1}, a=2)
    assert p.read_bytes() == good


# ---------------------------------------------------------------------------------------------
# Pickling only on request; no code runs on load otherwise
# ---------------------------------------------------------------------------------------------


def _halve(x):  # a user's normalization function (module level: picklable)
    return x * 0.5


def test_user_functions_need_allow_pickle_on_both_sides(tmp_path):
    net = dlnetwork([featureInputLayer(3, normalization=_halve), fullyConnectedLayer(2)], rng=0)
    p = tmp_path / "n.npz"
    with pytest.raises(TypeError, match="allow_pickle=True"):
        save(p, net=net)
    assert not p.exists()
    save(p, net=net, allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load(p)
    net2 = load(p, allow_pickle=True)["net"]
    X = dlarray(np.arange(6, dtype=np.float32).reshape(3, 2), "CB")
    np.testing.assert_array_equal(predict(net2, X)._value, predict(net, X)._value)
    # lambdas cannot be pickled at all: a clear error
    with pytest.raises(TypeError, match="pickle cannot"):
        save(p, f=lambda x: x, allow_pickle=True)


def test_lambda_initializers_become_stand_ins(tmp_path):
    layer = fullyConnectedLayer(2, weights_initializer=lambda sz: np.full(sz, 0.5))
    net = dlnetwork([featureInputLayer(3), layer], rng=0)
    save(tmp_path / "n.npz", net=net)  # no pickling needed: only initialisation used it
    net2 = load(tmp_path / "n.npz")["net"]
    _same_network(net, net2)
    stand_in = net2.layers[1]._initializers["Weights"]
    assert "lambda" in repr(stand_in)
    with pytest.raises(RuntimeError, match="could not"):
        stand_in((2, 3))


def _write_raw(path, variables, arrays=()):
    meta = {"format": "wengert.dl.save/1", "variables": variables, "count": len(arrays)}
    entries = {f"a{i}": a for i, a in enumerate(arrays)}
    np.savez(path, __wengert_dl__=np.array(json.dumps(meta)), **entries)


def test_files_cannot_name_other_code(tmp_path):
    p = tmp_path / "evil.npz"
    obj = {"t": "obj", "module": "subprocess", "name": "Popen", "d": {}, "s": {}}
    _write_raw(p, {"x": obj})
    with pytest.raises(ValueError, match="not allowed"):
        load(p)
    _write_raw(p, {"x": {"t": "fn", "module": "os", "name": "system"}})
    with pytest.raises(ValueError, match="not allowed"):
        load(p)
    _write_raw(p, {"x": {"t": "fn", "module": "wengert.nn.io", "name": "atomic_write"}})
    with pytest.raises(ValueError, match="not allowed"):
        load(p)
    bad_fmt = {"t": "dlarray", "fmt": "BC", "v": {"t": "nd", "i": 0}}
    _write_raw(p, {"x": bad_fmt}, [np.ones((2, 3))])
    with pytest.raises(ValueError, match="canonical"):
        load(p)
    nnio.save_pytree(tmp_path / "nn.npz", {"a": np.ones(2)})
    with pytest.raises(ValueError, match="load_pytree"):
        load(tmp_path / "nn.npz")


# ---------------------------------------------------------------------------------------------
# trainingProgressMonitor: yscale draws log axes
# ---------------------------------------------------------------------------------------------


def _capture_figures(monkeypatch):
    from matplotlib.figure import Figure

    figs = []
    real = Figure.savefig

    def savefig(self, *a, **k):
        figs.append(self)
        return real(self, *a, **k)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return figs


def test_monitor_yscale_draws_log_axes(tmp_path, monkeypatch):
    figs = _capture_figures(monkeypatch)
    mon = trainingProgressMonitor(
        metrics=["TrainingLoss", "ValidationLoss", "Accuracy", "LearnRate"],
        png=tmp_path / "m.png",
    )
    mon.group_sub_plot("Loss", ["TrainingLoss", "ValidationLoss"])
    mon.yscale("Loss", "log")  # MATLAB: yscale(monitor, "Loss", "log") on the group's axes
    mon.yscale(["LearnRate"], "log")
    for i in range(1, 6):
        mon.record_metrics(
            i, TrainingLoss=10.0**-i, ValidationLoss=2 * 10.0**-i, Accuracy=i / 5, LearnRate=0.1 / i
        )
    mon.close()
    assert os.path.getsize(tmp_path / "m.png") > 0
    axes = figs[-1].axes
    titles = [[ln.get_label() for ln in ax.get_lines()] for ax in axes]
    scales = dict(zip(map(tuple, titles), (ax.get_yscale() for ax in axes)))
    assert scales == {
        ("TrainingLoss", "ValidationLoss"): "log",
        ("Accuracy",): "linear",
        ("LearnRate",): "log",
    }
    mon.yscale("LearnRate", "linear")
    mon.yscale("ValidationLoss", "linear")  # a grouped metric: the whole group's axes
    mon.save_png()
    assert [ax.get_yscale() for ax in figs[-1].axes] == ["linear"] * 3


def test_monitor_yscale_rules(tmp_path):
    mon = trainingProgressMonitor(metrics=["a", "b", "c"])
    with pytest.raises(ValueError, match='"linear" or "log"'):
        mon.yscale("a", "semilog")
    with pytest.raises(ValueError, match="neither declared metrics"):
        mon.yscale("nope", "log")
    mon.yscale("a", "LOG")
    with pytest.raises(ValueError, match="same|different y scales"):
        mon.group_sub_plot("ab", ["a", "b"])  # MATLAB: grouped metrics share one scale
    mon.yscale("b", "log")
    mon.group_sub_plot("ab", ["a", "b"])  # both log: the group is drawn on a log axis
    mon.record_metrics(1, a=1.0, b=2.0, c=3.0)
    assert mon.save_png(tmp_path / "p.png") is not None
    assert mon._panel_scale("ab") == "log" and mon._panel_scale("c") == "linear"
