"""The minibatch iterator (shuffling, partial batches, preprocessing, casting) and the
embedded digits dataset with its fixed split."""

import numpy as np
import pytest

import wengert.nn as nn


def _arrays(n=10):
    x = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    y = np.arange(n)
    return x, y


def test_one_epoch_covers_every_observation_once():
    x, y = _arrays(10)
    it = nn.MinibatchIterator(x, y, batch_size=4, rng=0)
    batches = list(it)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert len(it) == 3
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen) == list(range(10))
    for xb, yb in batches:  # rows stay paired
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)


def test_shuffles_differently_each_epoch_and_reproducibly():
    x, y = _arrays(20)
    it = nn.MinibatchIterator(x, y, batch_size=20, rng=np.random.default_rng(3))
    e1 = next(iter(it))[1]
    e2 = next(iter(it))[1]
    assert not np.array_equal(e1, e2)
    assert it.epoch == 2
    again = nn.MinibatchIterator(x, y, batch_size=20, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(next(iter(again))[1], e1)
    fixed = nn.MinibatchIterator(x, y, batch_size=20, shuffle=False)
    np.testing.assert_array_equal(next(iter(fixed))[1], np.arange(20))


def test_drop_last_discards_the_partial_batch():
    x, y = _arrays(10)
    it = nn.MinibatchIterator(x, y, batch_size=4, drop_last=True, rng=0)
    assert len(it) == 2
    assert [len(b[1]) for b in it] == [4, 4]


def test_casts_floats_to_float32_and_keeps_integers():
    x, y = _arrays()
    xb, yb = next(iter(nn.MinibatchIterator(x, y, batch_size=3)))
    assert xb.dtype == np.float32 and yb.dtype == y.dtype
    xb64, _ = next(iter(nn.MinibatchIterator(x, y, batch_size=3, dtype=np.float64)))
    assert xb64.dtype == np.float64
    raw, _ = next(iter(nn.MinibatchIterator(x, y, batch_size=3, dtype=None)))
    assert raw.dtype == np.float64


def test_preprocess_is_applied_then_cast():
    x, y = _arrays()

    def prep(xb, yb):
        return xb * 0.5, np.eye(10)[yb]

    xb, yb = next(iter(nn.MinibatchIterator(x, y, batch_size=5, preprocess=prep, shuffle=False)))
    np.testing.assert_allclose(xb, x[:5] * 0.5)
    assert yb.shape == (5, 10) and yb.dtype == np.float32
    single = nn.MinibatchIterator(x, batch_size=5, preprocess=lambda a: a + 1, shuffle=False)
    first = next(iter(single))
    assert isinstance(first, np.ndarray)
    np.testing.assert_allclose(first, x[:5] + 1)


def test_inputs_are_not_modified_and_batches_are_copies():
    x, y = _arrays()
    x0 = x.copy()
    for xb, _ in nn.MinibatchIterator(x, y, batch_size=4, dtype=None):
        xb[:] = -1
    np.testing.assert_array_equal(x, x0)


def test_errors():
    x, y = _arrays(10)
    with pytest.raises(ValueError, match="same first axis"):
        nn.MinibatchIterator(x, y[:5])
    with pytest.raises(ValueError, match="batch_size"):
        nn.MinibatchIterator(x, batch_size=0)
    with pytest.raises(ValueError, match="at least one"):
        nn.MinibatchIterator()
    assert len(nn.minibatches(x, batch_size=3)) == 4


def test_digits_split_is_fixed_stratified_and_scaled():
    xtr, ytr, xte, yte = nn.load_digits_split()
    assert xtr.shape[1:] == (1, 8, 8) and xte.shape[1:] == (1, 8, 8)
    assert len(xtr) + len(xte) == 1797
    assert len(xte) == 359 and len(xtr) == 1438
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert xtr.min() == 0.0 and xtr.max() == 1.0
    counts = np.bincount(yte, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # about 20 % of each class
    again = nn.load_digits_split()
    np.testing.assert_array_equal(again[3], yte)
    np.testing.assert_array_equal(again[0], xtr)
    # train and test are disjoint images
    tr = {r.tobytes() for r in xtr.reshape(len(xtr), -1)}
    shared = sum(r.tobytes() in tr for r in xte.reshape(len(xte), -1))
    assert shared <= 2  # the digits set itself holds a few duplicate images
    x64 = nn.load_digits_split(dtype=np.float64)[0]
    assert x64.dtype == np.float64
    with pytest.raises(ValueError, match="test_fraction"):
        nn.load_digits_split(test_fraction=1.5)


def test_load_digits_all():
    x, y = nn.load_digits()
    assert x.shape == (1797, 1, 8, 8) and set(np.unique(y)) == set(range(10))
