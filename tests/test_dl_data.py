"""wengert.dl data and monitoring: minibatchqueue's MATLAB semantics (sizes, partial batches,
shuffle/reset, casts, formats) and trainingProgressMonitor's records, flags and PNG."""

import numpy as np
import pytest

from wengert.dl import (
    arrayDatastore,
    combine,
    dlarray,
    hasdata,
    minibatchqueue,
    reset,
    shuffle,
    trainingProgressMonitor,
)


def _data(n=10):
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3)  # observations along rows
    y = np.arange(n) % 4
    return x, y


def _drain(mbq):
    out = []
    while hasdata(mbq):
        out.append(next(mbq))
    return out


# ---------------------------------------------------------------------------------------------
# minibatchqueue
# ---------------------------------------------------------------------------------------------


def test_partial_mini_batch_return_and_discard():
    x, y = _data(10)
    mbq = minibatchqueue((x, y), mini_batch_size=4)
    batches = _drain(mbq)
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert len(mbq) == 3 and mbq.num_outputs == 2
    with pytest.raises(StopIteration):
        mbq.next()
    d = minibatchqueue((x, y), mini_batch_size=4, partial_mini_batch="discard")
    assert len(_drain(d)) == 2 and not d.hasdata()
    np.testing.assert_array_equal(np.asarray(batches[2][0]._value), x[8:])


def test_defaults_cast_to_single_dlarrays_and_formats():
    x, y = _data(6)
    X, Y = next(minibatchqueue((x, y), mini_batch_size=128))  # one partial batch of all
    assert isinstance(X, dlarray) and X.dtype == np.float32 and X.fmt == ""
    assert Y.dtype == np.float32 and X.shape == (6, 3)  # labels cast too, as MATLAB's "single"
    X2, Y2 = minibatchqueue(
        (x, y), mini_batch_format=["BC", ""], output_cast=["double", None],
        output_as_dlarray=[True, False],
    ).next()  # fmt: skip
    assert X2.fmt == "CB" and X2.shape == (3, 6) and X2.dtype == np.float64  # canonical order
    assert isinstance(Y2, np.ndarray) and Y2.dtype == y.dtype
    with pytest.raises(TypeError, match="dlarray cannot"):
        minibatchqueue((x, y), output_cast=["single", "int32"]).next()


def test_array_datastore_iteration_dimension_and_combine():
    imgs = np.random.default_rng(0).standard_normal((5, 5, 1, 7))
    labels = np.arange(7)
    ds = combine(arrayDatastore(imgs, iteration_dimension=4), arrayDatastore(labels))
    assert ds.num_observations == 7
    mbq = minibatchqueue(ds, mini_batch_size=3, mini_batch_format=["SSCB", ""])
    X, T = mbq.next()
    assert X.fmt == "SSCB" and X.shape == (5, 5, 1, 3)
    np.testing.assert_allclose(np.asarray(X._value), imgs[..., :3].astype(np.float32))
    np.testing.assert_array_equal(np.asarray(T._value), [0, 1, 2])
    with pytest.raises(ValueError, match="same number"):
        combine(arrayDatastore(imgs, iteration_dimension=4), np.arange(3))


def test_mini_batch_fcn_and_num_outputs():
    x, y = _data(9)

    def preprocess(xb, yb):  # one-hot targets "CB", features transposed to "CB"
        return xb.T / 10.0, np.eye(4)[:, yb]

    mbq = minibatchqueue(
        (x, y), 2, mini_batch_size=5, mini_batch_fcn=preprocess, mini_batch_format=["CB", "CB"]
    )
    X, T = mbq.next()
    assert X.fmt == "CB" and X.shape == (3, 5) and T.shape == (4, 5) and T.dtype == np.float32
    np.testing.assert_allclose(np.asarray(T._value).sum(axis=0), 1)
    single = minibatchqueue(x, mini_batch_size=4, mini_batch_fcn=lambda xb: xb.sum(axis=1))
    out = single.next()
    assert isinstance(out, dlarray) and out.shape == (4,) and single.num_outputs == 1
    bad = minibatchqueue((x, y), 3, mini_batch_fcn=preprocess)
    with pytest.raises(ValueError, match="num_outputs=3"):
        bad.next()


def test_shuffle_and_reset_semantics():
    x, y = _data(12)
    mbq = minibatchqueue(
        (x, y), mini_batch_size=5, rng=0, output_cast=None, output_as_dlarray=False
    )
    first = [b[1] for b in _drain(mbq)]
    np.testing.assert_array_equal(np.concatenate(first), y)  # initial order: as stored
    reset(mbq)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in _drain(mbq)]), y)
    shuffle(mbq)
    assert hasdata(mbq)
    xs = [b[0] for b in _drain(mbq)]
    order = np.concatenate(xs)[:, 0] // 3
    assert sorted(order.tolist()) == list(range(12)) and order.tolist() != list(range(12))
    mbq.reset()  # same shuffled order again
    again = np.concatenate([b[0] for b in _drain(mbq)])[:, 0] // 3
    np.testing.assert_array_equal(again, order)
    twin = minibatchqueue((x, y), mini_batch_size=5, rng=0, output_as_dlarray=False)
    twin.shuffle()
    np.testing.assert_array_equal(np.concatenate([b[0] for b in twin])[:, 0] // 3, order)
    np.testing.assert_array_equal(x, _data(12)[0])  # the data are not modified


def test_minibatchqueue_errors():
    x, y = _data(4)
    with pytest.raises(ValueError, match="partial_mini_batch"):
        minibatchqueue(x, partial_mini_batch="drop")
    with pytest.raises(ValueError, match="mini_batch_size"):
        minibatchqueue(x, mini_batch_size=0)
    with pytest.raises(ValueError, match="output_cast"):
        minibatchqueue(x, output_cast="float")
    with pytest.raises(ValueError, match="num_outputs"):
        minibatchqueue((x, y), 1)
    with pytest.raises(ValueError, match="iteration_dimension"):
        arrayDatastore(x, iteration_dimension=0)
    assert "minibatchqueue(" in repr(minibatchqueue(x))


# ---------------------------------------------------------------------------------------------
# trainingProgressMonitor
# ---------------------------------------------------------------------------------------------


def test_monitor_records_info_progress_stop_and_png(tmp_path):
    png = tmp_path / "progress.png"
    mon = trainingProgressMonitor(
        metrics=["TrainingLoss", "ValidationLoss", "Accuracy"],
        info=["Epoch", "LearnRate"],
        x_label="Iteration",
        png=png,
        png_interval=1e9,
    )
    mon.group_sub_plot("Loss", ["TrainingLoss", "ValidationLoss"])
    for it in range(1, 6):
        mon.record_metrics(it, TrainingLoss=dlarray(np.float32(1.0 / it)), Accuracy=0.1 * it)
        mon.update_info(Epoch=1 + it // 3, LearnRate=0.01)
        mon.progress = 20 * it
    mon.record_metrics(5, ValidationLoss=0.3)
    assert png.exists() and png.stat().st_size > 1000  # written when progress reached 100
    np.testing.assert_allclose(
        mon.values("TrainingLoss"), [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5], rtol=1e-6
    )
    np.testing.assert_array_equal(mon.iterations("ValidationLoss"), [5])
    assert mon.info_values == {"Epoch": 2, "LearnRate": 0.01} and mon.progress == 100
    assert not mon.stop
    mon.stop = True
    assert mon.stop
    other = tmp_path / "sub" / "again.png"
    assert mon.save_png(other) == str(other) and other.exists()
    mon.close()
    with pytest.raises(ValueError, match="not declared"):
        mon.record_metrics(6, Loss=1.0)
    with pytest.raises(ValueError, match="not declared"):
        mon.update_info(Speed=3)
    with pytest.raises(ValueError, match="progress"):
        mon.progress = 101
    assert "trainingProgressMonitor(" in repr(mon)


def test_monitor_progress_bar_to_a_stream(tmp_path):
    import io

    buf = io.StringIO()
    with trainingProgressMonitor(metrics="Loss", info="Epoch", progress_bar=True, file=buf) as mon:
        mon.record_metrics(1, Loss=0.5)
        mon.update_info(Epoch=1)
        mon.progress = 50
        assert mon.elapsed >= 0
    text = buf.getvalue()
    assert "50" in text and "Loss" in text
    quiet = trainingProgressMonitor(metrics=["Loss"])
    assert quiet.save_png(tmp_path / "empty.png") is None  # nothing recorded yet
    with pytest.raises(ValueError, match="give a path"):
        quiet.save_png()
