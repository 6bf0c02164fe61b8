"""Short runs of the wengert.nn examples (examples/nn/), each with an assertion on the outcome."""

import importlib.util
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    path = os.path.join(ROOT, "examples", "nn", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"nn_example_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _normal_tape(monkeypatch):
    """Examples run with the engine's normal stand-in threshold (speed, not rule checking)."""
    import wengert.core

    monkeypatch.setattr(wengert.core, "_STAND_IN_SIZE", 4096)


def _png(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_cnn_short_run_beats_80_percent(tmp_path, capsys):
    out = _load("cnn_digits").main(["--steps", "150", "--out", str(tmp_path), "--no-progress"])
    assert out["steps"] == 150
    assert out["test_accuracy"] > 0.80
    _png(out["png"])
    assert "test accuracy" in capsys.readouterr().out


def test_gan_short_run_finite_losses_and_pngs(tmp_path):
    out = _load("gan_digits").main(["--quick", "--out", str(tmp_path), "--no-progress"])
    assert out["steps"] == 60
    assert np.isfinite(out["loss_g"]).all() and np.isfinite(out["loss_d"]).all()
    s = out["samples"]
    assert s.shape == (25, 1, 8, 8) and s.dtype == np.float32
    assert np.abs(s).max() <= 1.0 and s.std() > 0.05  # tanh range, not a constant image
    _png(out["grid_png"])
    _png(out["scores_png"])


def test_model_function_mlp_short_run(tmp_path):
    out = _load("mlp_function").main(["--quick", "--out", str(tmp_path), "--no-progress"])
    assert out["steps"] == 150
    assert out["test_accuracy"] > 0.85
    assert set(out["params"]) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    assert all(v.dtype == np.float32 for v in out["params"].values())
    _png(out["png"])
