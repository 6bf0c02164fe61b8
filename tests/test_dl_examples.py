"""Short runs of the wengert.dl ports of MATLAB's examples (examples/dl/), each with an
assertion on the outcome."""

import importlib.util
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    path = os.path.join(ROOT, "examples", "dl", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"dl_example_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _normal_tape(monkeypatch):
    """Examples run with the engine's normal stand-in threshold (speed, not rule checking)."""
    import wengert.core

    monkeypatch.setattr(wengert.core, "_STAND_IN_SIZE", 4096)


def _png(path):
    assert os.path.isfile(path)
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def _quick(name, tmp_path, *extra):
    return _load(name).main(["--quick", "--out", str(tmp_path), "--no-progress", *extra])


def _decreased(losses, factor):
    """The mean of the last few losses is below ``factor`` times the mean of the first few."""
    losses = np.asarray(losses, float)
    k = max(len(losses) // 5, 1)
    assert np.isfinite(losses).all()
    assert losses[-k:].mean() < factor * losses[:k].mean(), (losses[:k], losses[-k:])


def test_custom_training_loop_quick(tmp_path, capsys):
    out = _quick("custom_training_loop", tmp_path)
    assert out["epochs"] == 2 and out["iterations"] == 24  # 1438 images, mini-batches of 128
    assert out["test_accuracy"] > 0.6  # chance is 0.1
    _decreased(out["loss"], 0.5)
    assert out["learn_rate"] == pytest.approx(0.01 / (1 + 0.01 * 24))  # time-based decay
    _png(out["png"])
    assert "test accuracy" in capsys.readouterr().out


def test_gan_quick(tmp_path):
    out = _quick("gan", tmp_path)
    assert out["iterations"] == 56  # 4 epochs of 14 full mini-batches (partial ones discarded)
    images = out["images"]
    assert images.shape == (8, 8, 1, 25) and images.dtype == np.float32
    assert np.abs(images).max() <= 1.0 and images.std() > 0.05  # tanh range, not constant
    sg, sd = out["generator_score"], out["discriminator_score"]
    assert len(sg) == len(sd) == 56
    assert np.all((sg > 0) & (sg < 1)) and np.all((sd > 0) & (sd < 1))
    _png(out["grid_png"])
    _png(out["scores_png"])


def test_model_function_quick(tmp_path):
    out = _quick("model_function", tmp_path)
    assert out["iterations"] == 24
    assert out["test_accuracy"] > 0.5
    _decreased(out["loss"], 0.7)
    p = out["parameters"]
    assert set(p) == {"conv1", "batchnorm1", "conv2", "batchnorm2", "conv3", "batchnorm3",
                      "convSkip", "batchnormSkip", "fc1"}  # fmt: skip
    assert p["conv1"]["Weights"].shape == (5, 5, 1, 20) and p["fc1"]["Weights"].shape == (10, 320)
    assert all(v.dtype == np.float32 for layer in p.values() for v in layer.values())
    # the batch-norm statistics moved away from their initial zeros and ones
    st = out["state"]["batchnorm1"]
    assert np.abs(np.asarray(st["TrainedMean"])).max() > 0
    _png(out["png"])


def test_initialize_params_checks_pass(tmp_path):
    out = _load("initialize_params").main(["--quick"])
    failed = [k for k, (ok, _) in out["checks"].items() if not ok]
    assert not failed, failed
    assert out["used"]["lstm"] == ("CBT", (16, 4, 7))
    assert out["used"]["dlconv"] == ("SSCB", (8, 8, 20, 4))


def test_initializers_follow_matlab_definitions():
    mod = _load("initialize_params")
    rng = np.random.default_rng(0)
    w = mod.initializeGlorot([40, 30], 40, 30, rng=rng)
    assert w.dtype == np.float32 and w.shape == (40, 30) and w.fmt == ""
    assert np.abs(np.asarray(w)).max() <= np.sqrt(6 / 70)
    q = np.asarray(mod.initializeOrthogonal([12, 3], "double", rng=rng))
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-12)
    b = np.asarray(mod.initializeUnitForgetGate(3)).ravel()
    np.testing.assert_array_equal(b, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="single"):
        mod.initializeZeros([2], "int8")


def test_training_options_quick(tmp_path):
    ckpt = tmp_path / "ckpt"
    out = _quick("training_options", tmp_path, "--checkpoint-path", str(ckpt))
    assert out["epochs"] == 2
    assert out["test_accuracy"] > 0.5
    _decreased(out["loss"], 0.7)
    assert len(out["checkpoints"]) == 2 and all(out["round_trips"])
    assert len(out["checkpoint_files"]) == 2 and all(os.path.isfile(f) for f in out["checkpoints"])
    assert out["clip_statistic_max"] <= 4.0 + 1e-4  # global-l2norm at the default threshold
    _png(out["png"])


@pytest.mark.parametrize("method,threshold", [("l2norm", 0.5), ("absolute-value", 0.01)])
def test_training_options_clipping_methods(tmp_path, method, threshold):
    out = _load("training_options").main([
        "--epochs", "1", "--out", str(tmp_path), "--no-progress", "--clip", method,
        "--threshold", str(threshold), "--checkpoint-frequency", "100",
    ])  # fmt: skip
    assert out["clipped_iterations"] == out["iterations"] == 9  # every step was clipped
    assert out["clip_statistic_max"] <= threshold * (1 + 1e-5)
    assert out["checkpoints"] == []


def test_clipping_functions():
    mod = _load("training_options")
    import wengert.dl as dl

    g = dl.dlarray(np.array([3.0, -4.0], np.float32))
    np.testing.assert_allclose(np.asarray(mod.threshold_l2_norm(g, 1.0)), [0.6, -0.8], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(mod.threshold_l2_norm(g, 10.0)), [3.0, -4.0])
    h = mod.threshold_global_l2_norm([g, dl.dlarray(np.array([12.0], np.float32))], 6.5)
    np.testing.assert_allclose(np.asarray(h[1]), [6.0], rtol=1e-6)  # global norm 13 -> 6.5
    a = mod.threshold_absolute_value(g, 3.5)
    np.testing.assert_array_equal(np.asarray(a), [3.0, -3.5])
    np.testing.assert_array_equal(np.asarray(g), [3.0, -4.0])  # the input is not changed


def test_early_stopping_rule(tmp_path):
    out = _load("training_options").main([
        "--epochs", "3", "--out", str(tmp_path), "--no-progress", "--validation-frequency", "1",
        "--patience", "1", "--learn-rate", "1e-9", "--checkpoint-frequency", "100",
    ])  # fmt: skip
    # with a negligible learning rate the validation loss stops improving at once
    assert out["early_stop"] and out["iterations"] < 27


def test_pinn_quick(tmp_path):
    out = _quick("pinn", tmp_path)
    e = out["errors"]
    assert e["lbfgs"] < 0.5 * e["initial"] and e["adam"] < 0.5 * e["initial"]
    assert out["loss"][-1] < 1e-2 * out["loss"][0]
    assert out["lbfgs_iterations"] >= 1
    assert all(
        v.dtype == np.float64 for layer in out["parameters"].values() for v in layer.values()
    )
    _png(out["png"])


def test_pinn_laplacian_two_ways_agree():
    """dllaplacian and two dlgradient(..., enable_higher_derivatives=True) calls give the same
    loss and gradients, with and without dlaccelerate; and −Δ of the exact solution is F."""
    mod = _load("pinn")
    import wengert.dl as dl

    rng = np.random.default_rng(3)
    X, F, XB, UB = mod.collocation_points(40, 5, rng)
    params = mod.initialize_parameters(3, 8, rng=rng)
    results = []
    for residual in ("dllaplacian", "dlgradient"):
        f = mod.make_model_loss(residual)
        for fun in (f, dl.dlaccelerate(f)):
            for _ in range(2):  # the accelerated function's second call replays its cache
                loss, grads = dl.dlfeval(fun, params, X, F, XB, UB)
                results.append((float(loss), [np.asarray(v) for v in dl.iter_dlarrays(grads)]))
    for loss, grads in results[1:]:
        assert loss == pytest.approx(results[0][0], rel=1e-10)
        for a, b in zip(grads, results[0][1]):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)

    def exact_residual(X):
        x, y = X[0:1, :], X[1:2, :]
        U = np.sin(np.pi * x) * np.sin(np.pi * y)
        return dl.dllaplacian(U, X, "C")

    lap = dl.dlfeval(exact_residual, X)
    np.testing.assert_allclose(-np.asarray(lap), np.asarray(F), rtol=1e-10)
