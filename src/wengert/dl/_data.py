"""MATLAB's ``minibatchqueue`` (with ``arrayDatastore`` and ``combine`` for in-memory data):
mini-batches of formatted dlarrays with ``hasdata``/``next``/``shuffle``/``reset``, batching
through wengert.nn.data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from wengert.dl._dlarray import dlarray
from wengert.dl._network import _generator
from wengert.nn.data import MinibatchIterator

__all__ = [
    "minibatchqueue",
    "arrayDatastore",
    "combine",
    "hasdata",
    "shuffle",
    "reset",
]


class arrayDatastore:
    """MATLAB's ``arrayDatastore(X, IterationDimension=1)``: the observations of ``X`` are its
    slices along ``iteration_dimension`` (1-based, as MATLAB: 1 = rows, 4 = the N of an
    H×W×C×N image array).  ``X`` is not copied or changed."""

    def __init__(self, X: Any, iteration_dimension: int = 1) -> None:
        a = np.asarray(X)
        k = int(iteration_dimension)
        if k != iteration_dimension or k < 1:
            raise ValueError(
                f"arrayDatastore: iteration_dimension must be a positive integer (1-based, as "
                f"MATLAB), got {iteration_dimension}"
            )
        if a.ndim < k:  # MATLAB's trailing singleton dimensions
            a = a.reshape(a.shape + (1,) * (k - a.ndim))
        self.data = a
        self.iteration_dimension = k
        self.axis = k - 1

    @property
    def num_observations(self) -> int:
        """The number of observations (the size along the iteration dimension)."""
        return int(self.data.shape[self.axis])

    def _columns(self) -> list[tuple[np.ndarray, int]]:
        return [(self.data, self.axis)]

    def __repr__(self) -> str:
        return (
            f"arrayDatastore(size={self.data.shape}, iteration_dimension="
            f"{self.iteration_dimension}, observations={self.num_observations})"
        )


class CombinedDatastore:
    """Datastores read side by side (``combine(ds1, ds2, ...)``): one column each."""

    def __init__(self, *datastores: Any) -> None:
        stores = [_as_datastore(d) for d in datastores]
        if not stores:
            raise ValueError("combine: give at least one datastore")
        n = {s.num_observations for s in stores}
        if len(n) != 1:
            raise ValueError(
                f"combine: the datastores must have the same number of observations, got {sorted(n)}"
            )
        self.datastores = stores

    @property
    def num_observations(self) -> int:
        """The number of observations."""
        return self.datastores[0].num_observations

    def _columns(self) -> list[tuple[np.ndarray, int]]:
        return [c for s in self.datastores for c in s._columns()]

    def __repr__(self) -> str:
        return f"CombinedDatastore({', '.join(repr(s) for s in self.datastores)})"


def combine(*datastores: Any) -> CombinedDatastore:
    """MATLAB's ``combine(ds1, ds2, ...)``: read the datastores (or arrays, observations along
    their first axis) side by side, one minibatchqueue input per column."""
    return CombinedDatastore(*datastores)


def _as_datastore(ds: Any) -> Any:
    if isinstance(ds, (arrayDatastore, CombinedDatastore)):
        return ds
    if isinstance(ds, (tuple, list)):
        return CombinedDatastore(*ds)
    if isinstance(ds, dlarray):
        raise TypeError("minibatchqueue: give the data as NumPy arrays, not dlarrays")
    a = np.asarray(ds)
    if a.dtype == object or a.ndim == 0:
        raise TypeError(
            f"minibatchqueue: the data must be an array, a tuple of arrays, an arrayDatastore or "
            f"a combined datastore; got {type(ds).__name__}"
        )
    return arrayDatastore(a)


_CASTS = {
    "single": np.float32,
    "double": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "logical": np.bool_,
}


def _per_output(v: Any, n: int, name: str) -> list:
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise ValueError(f"minibatchqueue: {name} has {len(v)} entries for {n} outputs")
        return list(v)
    return [v] * n


class minibatchqueue:
    """MATLAB's ``mbq = minibatchqueue(ds, numOutputs, MiniBatchSize=128, ...)``.

    ``ds``: an array (observations along its first axis), a tuple of arrays, an
    :class:`arrayDatastore` (``iteration_dimension`` chooses the observation axis, e.g. 4 for
    H×W×C×N images) or :func:`combine` of them.  A mini-batch takes the next
    ``mini_batch_size`` observations (in the current order) of every column, stacked along
    that column's observation axis, and passes them to ``mini_batch_fcn(*columns)`` (MATLAB's
    MiniBatchFcn, which here receives the batch arrays rather than cell arrays of single
    observations); its outputs (or the columns themselves) are cast by ``output_cast``
    ("single" by default; "double", "int32", "logical", ... or None to keep the dtype) and
    returned as dlarrays with ``mini_batch_format`` ("SSCB", "CB", ...; "" or None:
    unformatted; one per output or one for all) unless ``output_as_dlarray`` is False.

    ``partial_mini_batch``: "return" (default) gives the smaller last batch, "discard" drops
    it.  ``hasdata()``, ``next()`` (also Python's ``next(mbq)``, returning one output or a
    tuple), ``shuffle()`` (a new random order, back to the start; draws from ``rng`` or the
    global generator of ``wengert.dl.rng``) and ``reset()`` (back to the start, same order).
    ``output_environment`` and ``dispatch_in_background`` are accepted and ignored (CPU only).
    """

    def __init__(
        self,
        ds: Any,
        num_outputs: int | None = None,
        *,
        mini_batch_size: int = 128,
        partial_mini_batch: str = "return",
        mini_batch_fcn: Callable[..., Any] | None = None,
        mini_batch_format: str | Sequence[str] | None = None,
        output_cast: str | Sequence[str] | None = "single",
        output_as_dlarray: bool | Sequence[bool] = True,
        output_names: Sequence[str] | None = None,
        output_environment: str = "auto",
        dispatch_in_background: bool = False,
        rng: Any = None,
    ) -> None:
        self._store = _as_datastore(ds)
        self._cols = self._store._columns()
        if partial_mini_batch not in ("return", "discard"):
            raise ValueError(
                f'minibatchqueue: partial_mini_batch must be "return" or "discard", got '
                f"{partial_mini_batch!r}"
            )
        if mini_batch_fcn is not None and not callable(mini_batch_fcn):
            raise TypeError("minibatchqueue: mini_batch_fcn must be a function")
        if num_outputs is None:
            num_outputs = len(self._cols) if mini_batch_fcn is None else None
        elif int(num_outputs) < 1:
            raise ValueError(f"minibatchqueue: num_outputs must be positive, got {num_outputs}")
        if mini_batch_fcn is None and num_outputs != len(self._cols):
            raise ValueError(
                f"minibatchqueue: without mini_batch_fcn the outputs are the {len(self._cols)} "
                f"data columns, but num_outputs={num_outputs}"
            )
        for c in output_cast if isinstance(output_cast, (list, tuple)) else [output_cast]:
            if c is not None and c not in _CASTS:
                raise ValueError(
                    f"minibatchqueue: output_cast must be one of {sorted(_CASTS)} or None, got {c!r}"
                )
        if not (isinstance(mini_batch_size, (int, np.integer)) and mini_batch_size > 0):
            raise ValueError(
                f"minibatchqueue: mini_batch_size must be a positive integer, got {mini_batch_size!r}"
            )
        self.num_outputs = None if num_outputs is None else int(num_outputs)
        self.mini_batch_size = mini_batch_size
        self.partial_mini_batch = partial_mini_batch
        self.mini_batch_fcn = mini_batch_fcn
        self.mini_batch_format = mini_batch_format
        self.output_cast = output_cast
        self.output_as_dlarray = output_as_dlarray
        self.output_names = None if output_names is None else list(output_names)
        self.output_environment = output_environment
        self.dispatch_in_background = dispatch_in_background
        self._rng = rng
        self._order = np.arange(self._store.num_observations)
        self._batches = MinibatchIterator(
            self._order,
            batch_size=mini_batch_size,
            shuffle=False,
            drop_last=partial_mini_batch == "discard",
            dtype=None,
        )
        self.reset()

    @property
    def num_observations(self) -> int:
        """The number of observations in the data."""
        return int(self._order.size)

    def __len__(self) -> int:
        """Mini-batches per pass over the data."""
        return len(self._batches)

    def hasdata(self) -> bool:
        """True while a mini-batch is left (MATLAB's ``hasdata(mbq)``)."""
        return self._done < len(self._batches)

    def reset(self) -> None:
        """Back to the first mini-batch, in the same order (MATLAB's ``reset(mbq)``)."""
        self._batches.arrays = [self._order]
        self._iter = iter(self._batches)
        self._done = 0

    def shuffle(self) -> None:
        """A new random order of the observations, back to the start (``shuffle(mbq)``)."""
        self._order = _generator(self._rng).permutation(self.num_observations)
        self.reset()

    def next(self) -> Any:
        """The next mini-batch: one output, or a tuple of them (MATLAB's ``next(mbq)``)."""
        return self.__next__()

    def __iter__(self) -> Iterator:
        return self

    def __next__(self) -> Any:
        if not self.hasdata():
            raise StopIteration("minibatchqueue: no data left; call reset(mbq) or shuffle(mbq)")
        idx = next(self._iter)
        self._done += 1
        cols = [np.take(a, idx, axis=ax) for a, ax in self._cols]
        if self.mini_batch_fcn is not None:
            out = self.mini_batch_fcn(*cols)
            out = list(out) if isinstance(out, (tuple, list)) else [out]
        else:
            out = cols
        if self.num_outputs is None:
            self.num_outputs = len(out)
        elif len(out) != self.num_outputs:
            raise ValueError(
                f"minibatchqueue: mini_batch_fcn returned {len(out)} outputs, expected "
                f"num_outputs={self.num_outputs}"
            )
        n = len(out)
        casts = _per_output(self.output_cast, n, "output_cast")
        as_dl = _per_output(self.output_as_dlarray, n, "output_as_dlarray")
        fmts = _per_output(self.mini_batch_format, n, "mini_batch_format")
        res = []
        for k, (o, c, d, f) in enumerate(zip(out, casts, as_dl, fmts)):
            if isinstance(o, dlarray):
                raise TypeError(
                    f"minibatchqueue: mini_batch_fcn output {k} is a dlarray; return plain arrays "
                    "(the queue makes the dlarrays with mini_batch_format)"
                )
            a = np.asarray(o)
            if c is not None and a.dtype.kind in "biuf" and a.dtype != _CASTS[c]:
                a = a.astype(_CASTS[c])
            if d:
                if a.dtype.kind not in "fb":
                    raise TypeError(
                        f"minibatchqueue: output {k} has dtype {a.dtype}, which a dlarray cannot "
                        "hold; cast it to single/double (output_cast) or set output_as_dlarray "
                        "False for it"
                    )
                a = dlarray(a, f) if f else dlarray(a)
            res.append(a)
        return res[0] if n == 1 else tuple(res)

    def __repr__(self) -> str:
        return (
            f"minibatchqueue(num_outputs={self.num_outputs}, mini_batch_size="
            f"{self.mini_batch_size}, partial_mini_batch={self.partial_mini_batch!r}, "
            f"mini_batch_format={self.mini_batch_format!r}, observations={self.num_observations})"
        )


def hasdata(mbq: minibatchqueue) -> bool:
    """MATLAB's ``hasdata(mbq)``."""
    return mbq.hasdata()


def shuffle(mbq: minibatchqueue) -> None:
    """MATLAB's ``shuffle(mbq)``: a new random order, back to the start."""
    mbq.shuffle()


def reset(mbq: minibatchqueue) -> None:
    """MATLAB's ``reset(mbq)``: back to the start, same order."""
    mbq.reset()
