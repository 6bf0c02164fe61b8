"""Data for training loops: a shuffling minibatch iterator and the embedded default dataset,
scikit-learn's bundled 8×8 handwritten digits with a fixed train/test split (no download).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["MinibatchIterator", "minibatches", "load_digits", "load_digits_split"]


class MinibatchIterator:
    """Minibatches of one or more arrays that share their first (observation) axis.

    ``for xb, yb in MinibatchIterator(x, y, batch_size=128, rng=np.random.default_rng(0))``
    runs one epoch; iterating again runs the next one, reshuffled (``epoch`` counts them).

    * ``shuffle``: a new permutation each epoch, drawn from ``rng`` (a NumPy ``Generator``;
      an int seeds one), so a seeded run is reproducible;
    * ``drop_last``: discard the partial last batch (default: return it, smaller);
    * ``preprocess(*batch) -> batch``: applied to each batch (e.g. augmentation, one-hot);
    * ``dtype`` (float32 by default): floating arrays are cast to it (after ``preprocess``);
      integer arrays (labels, indices) are left alone.  ``dtype=None`` casts nothing.

    The arrays given are never modified; batches are fresh copies.
    """

    def __init__(
        self,
        *arrays: Any,
        batch_size: int = 128,
        shuffle: bool = True,
        drop_last: bool = False,
        preprocess: Callable[..., Any] | None = None,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
    ) -> None:
        if not arrays:
            raise ValueError("MinibatchIterator: give at least one array")
        arrs = [np.asarray(a) for a in arrays]
        n = len(arrs[0]) if arrs[0].ndim else 0
        for k, a in enumerate(arrs):
            if a.ndim == 0 or len(a) != n:
                raise ValueError(
                    f"MinibatchIterator: every array needs the same first axis (observations); "
                    f"array 0 has {n} rows, array {k} has shape {a.shape}"
                )
        if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
            raise ValueError(
                f"MinibatchIterator: batch_size must be a positive int, got {batch_size!r}"
            )
        self.arrays = arrs
        self.num_observations = n
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.preprocess = preprocess
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.epoch = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        n, b = self.num_observations, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def _cast(self, a):
        a = np.asarray(a)
        if self.dtype is not None and a.dtype.kind == "f" and a.dtype != self.dtype:
            return a.astype(self.dtype)
        return a

    def __iter__(self) -> Iterator:
        n, b = self.num_observations, self.batch_size
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        self.epoch += 1
        stop = (n // b) * b if self.drop_last else n
        single = len(self.arrays) == 1
        for i in range(0, stop, b):
            idx = order[i : i + b]
            batch = tuple(a[idx] for a in self.arrays)
            if self.preprocess is not None:
                batch = self.preprocess(*batch)
                batch = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
            batch = tuple(self._cast(a) for a in batch)
            yield batch[0] if single else batch


def minibatches(*arrays: Any, **options: Any) -> MinibatchIterator:
    """Shorthand for :class:`MinibatchIterator` (same arguments)."""
    return MinibatchIterator(*arrays, **options)


def load_digits(dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits: images (N, 1, 8, 8) scaled to [0, 1] (pixel / 16) and int64 labels."""
    try:
        from sklearn.datasets import load_digits as _sk_load
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the digits dataset ships with scikit-learn: pip install scikit-learn "
            "(or pip install 'wengert[nn]')"
        ) from e
    d = _sk_load()
    x = (np.asarray(d.images, np.float64) / 16.0).astype(dtype)[:, None, :, :]
    y = np.asarray(d.target, np.int64)
    return x, y


def load_digits_split(
    test_fraction: float = 0.2, seed: int = 0, dtype: Any = np.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits with a fixed stratified train/test split: ``(x_train, y_train, x_test,
    y_test)``, images (N, 1, 8, 8) in [0, 1], int64 labels.

    The split is drawn once per class from ``np.random.default_rng(seed)``: ⌊n_c·f⌉ test
    images from each class c (f = ``test_fraction``).  The defaults give 1438 training and 359
    test images, the same for every caller.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"load_digits_split: test_fraction must be in (0, 1), got {test_fraction}")
    x, y = load_digits(dtype)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = int(round(len(idx) * test_fraction))
        test[rng.choice(idx, size=k, replace=False)] = True
    train = ~test
    return x[train], y[train], x[test], y[test]
