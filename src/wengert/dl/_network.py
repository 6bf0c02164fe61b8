"""MATLAB's ``dlnetwork`` over wengert.nn: layer constructors with MATLAB's names, options,
default layer names and weight layouts, the learnables/state :class:`Table`, and
forward/predict/initialize on formatted dlarrays.
"""

from __future__ import annotations

import contextvars
import copy
import math
from collections import Counter, namedtuple
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

import wengert.numpy as wnp
from wengert.core import Tracer, primal_value
from wengert.dl._dlarray import _wrap, dlarray
from wengert.nn import functional as F
from wengert.nn import init as I
from wengert.nn import layers as L
from wengert.tree import register_pytree_node

__all__ = [
    "Table",
    "dlnetwork",
    "forward",
    "predict",
    "initialize",
    "resetState",
    "rng",
    "imageInputLayer",
    "featureInputLayer",
    "sequenceInputLayer",
    "convolution2dLayer",
    "transposedConv2dLayer",
    "fullyConnectedLayer",
    "batchNormalizationLayer",
    "layerNormalizationLayer",
    "reluLayer",
    "leakyReluLayer",
    "tanhLayer",
    "sigmoidLayer",
    "softmaxLayer",
    "dropoutLayer",
    "maxPooling2dLayer",
    "averagePooling2dLayer",
    "globalAveragePooling2dLayer",
    "flattenLayer",
    "lstmLayer",
    "gruLayer",
    "projectAndReshapeLayer",
]


# ---------------------------------------------------------------------------------------------
# Randomness: MATLAB draws from one global generator (``rng(seed)``)
# ---------------------------------------------------------------------------------------------

# A context variable, as the engine's level stack: each thread and asyncio task that calls
# ``rng(seed)`` gets its own generator and never disturbs another's draws.
_RNG: contextvars.ContextVar[np.random.Generator | None] = contextvars.ContextVar(
    "wengert_dl_rng", default=None
)


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def rng(seed: int | str | np.random.Generator | dict | None = None) -> np.random.Generator:
    """MATLAB's ``rng``: the generator that ``dlnetwork`` initialisation, dropout in
    ``forward`` and ``minibatchqueue`` shuffling draw from when no ``rng=`` is given (one per
    thread / asyncio context, kept in a context variable).

    * ``rng()`` (MATLAB's ``s = rng``): the current generator, unchanged (nothing is
      reseeded).  If this context has none yet, one is made from OS entropy and kept, so the
      next ``rng()`` returns the same object.  (A MATLAB session starts at ``rng("default")``;
      here call ``rng("default")`` or ``rng(seed)`` for a reproducible run.)
    * ``rng(seed)``: a new generator seeded with the non-negative integer ``seed``
      (``numpy.random.default_rng(seed)``: PCG64, so the numbers differ from MATLAB's
      Mersenne Twister for the same seed).
    * ``rng("default")``: as ``rng(0)``; ``rng("shuffle")``: a new generator seeded from OS
      entropy (MATLAB seeds from the clock).
    * ``rng(generator)``: that ``numpy.random.Generator`` object becomes the current one, as
      is (not copied: the caller's draws and the library's share its stream).
    * ``rng(state)``: a new generator restored from ``state``, a bit generator state dict as
      ``rng().bit_generator.state`` returns: MATLAB's ``s = rng; ...; rng(s)`` is
      ``s = rng().bit_generator.state; ...; rng(s)``.

    Returns the generator that is now current.
    """
    if seed is None:
        g = _RNG.get()
        if g is None:
            g = np.random.default_rng()
            _RNG.set(g)
        return g
    if isinstance(seed, np.random.Generator):
        g = seed
    elif isinstance(seed, str):
        key = seed.lower()
        if key == "default":
            g = np.random.default_rng(0)
        elif key == "shuffle":
            g = np.random.default_rng()
        else:
            raise ValueError(
                f'rng: the text options are "default" and "shuffle", got {seed!r}; give a '
                "non-negative integer seed for a reproducible stream"
            )
    elif isinstance(seed, dict):
        g = _restore(seed)
    elif isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f'rng: give nothing, a non-negative integer seed, "default", "shuffle", a '
            f"numpy.random.Generator or a bit generator state dict; got {type(seed).__name__} "
            f"{seed!r}"
        )
    else:
        if int(seed) < 0:
            raise ValueError(f"rng: the seed must be a non-negative integer, got {seed}")
        g = np.random.default_rng(int(seed))
    _RNG.set(g)
    return g


def _restore(state: dict) -> np.random.Generator:
    """A generator whose bit generator has ``state`` (``Generator.bit_generator.state``)."""
    name = state.get("bit_generator")
    if name not in _BIT_GENERATORS:
        raise ValueError(
            f"rng: a state dict must come from Generator.bit_generator.state (its "
            f"'bit_generator' entry one of {_BIT_GENERATORS}); got {name!r}"
        )
    bg = getattr(np.random, name)()
    try:
        bg.state = state
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"rng: the {name} state dict is not valid ({e})") from None
    return np.random.Generator(bg)


def _generator(r: Any) -> np.random.Generator:
    if r is None:
        return rng()
    if isinstance(r, np.random.Generator):
        return r
    return np.random.default_rng(r)


# ---------------------------------------------------------------------------------------------
# The learnables / state table
# ---------------------------------------------------------------------------------------------

Row = namedtuple("Row", ["layer", "parameter", "value"])


def _size_str(v: Any) -> str:
    if v is None:
        return "[]"
    raw = v._value if isinstance(v, dlarray) else v
    s = np.shape(primal_value(raw))
    dt = np.result_type(primal_value(raw)).name
    kind = "dlarray" if isinstance(v, dlarray) else type(v).__name__
    fmt = f" {v._fmt!r}" if isinstance(v, dlarray) and v._fmt else ""
    return f"{'×'.join(str(n) for n in s) or 'scalar'} {kind}{fmt} ({dt})"


class Table:
    """MATLAB's learnables/state table: rows ``(layer, parameter, value)``.

    It iterates over rows (``for layer, parameter, value in net.learnables``), ``len`` gives
    the number of rows, ``t[i]`` is row i (a namedtuple), ``t[i:j]``, ``t[mask]`` and
    ``t[[i, j]]`` are sub-tables, ``t["value"]`` (or ``t.value``, MATLAB's ``t.Value``) is a
    column as a list, and ``t["fc", "Weights"]`` the value in that row.  ``where(layer=...,
    parameter=...)`` selects rows by name.  ``value`` may be reassigned as a whole (a list of
    the same length); the lists returned are the table's own.

    Row assignment, MATLAB's ``t(idx,:) = rows``: ``t[idx] = rows`` with ``idx`` a row number,
    a slice, a boolean mask, a list of row numbers or ``(layer, parameter)``, and ``rows`` a
    Table with the same (layer, parameter) names as the selected rows (as
    ``t[idx] = dlupdate(fn, t[idx])`` gives), a Row of the same name for a single row, or the
    new values: one value for a single row, a list/tuple of values otherwise.  A new value must have the size of the one it replaces,
    and its dtype where that is floating (float32 parameters stay float32); anything goes
    where the old value is ``None``.  A plain array replacing a dlarray is wrapped as a
    dlarray of the old value's format, so the column stays uniform.  Nothing changes when a
    check fails.

    Assignment changes this Table object in place (MATLAB's ``t(idx,:) = ...`` changes only
    the variable ``t``; the Python equivalent is this object, and every name bound to it sees
    the change).  Sub-tables and the tables that ``with_values``, ``copy``, ``dlgradient``,
    ``forward`` and the update functions return are new objects, so they never change along.
    A :class:`dlnetwork` owns its tables (no two networks share one), and ``net.learnables``
    / ``net.state`` return them, not copies: ``net.learnables[idx] = rows`` updates that
    network, as MATLAB's ``net.Learnables(idx,:) = rows`` does, and so does ``T =
    net.learnables; T[idx] = rows`` (MATLAB would leave ``net`` alone there): take ``T =
    net.learnables.copy()`` for an independent table.
    """

    __slots__ = ("_layer", "_parameter", "_value")

    def __init__(
        self, layer: Sequence[str] = (), parameter: Sequence[str] = (), value: Sequence = ()
    ) -> None:
        self._layer = [str(s) for s in layer]
        self._parameter = [str(s) for s in parameter]
        self._value = list(value)
        if not len(self._layer) == len(self._parameter) == len(self._value):
            raise ValueError(
                f"Table: the columns must have the same length, got {len(self._layer)} layers, "
                f"{len(self._parameter)} parameters and {len(self._value)} values"
            )

    # columns ----------------------------------------------------------------------------
    @property
    def layer(self) -> list[str]:
        """The ``Layer`` column."""
        return self._layer

    @property
    def parameter(self) -> list[str]:
        """The ``Parameter`` column."""
        return self._parameter

    @property
    def value(self) -> list:
        """The ``Value`` column (MATLAB's ``t.Value``)."""
        return self._value

    @value.setter
    def value(self, values: Sequence) -> None:
        values = list(values)
        if len(values) != len(self._value):
            raise ValueError(f"Table.value: give {len(self._value)} values, got {len(values)}")
        self._value = values

    # rows -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._value)

    def __iter__(self) -> Iterator[Row]:
        for r in zip(self._layer, self._parameter, self._value):
            yield Row(*r)

    def _take(self, idx: Sequence[int]) -> Table:
        return Table(
            [self._layer[i] for i in idx],
            [self._parameter[i] for i in idx],
            [self._value[i] for i in idx],
        )

    def _rows(self, key: Any, who: str) -> tuple[list[int], bool]:
        """``(row numbers, single)`` selected by a row key (everything but a column name)."""
        n = len(self)
        if isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key):
            return [self.index(*key)], True
        if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"{who}: row {i} out of range for a table of {n} rows")
            return [i % n], True
        if isinstance(key, slice):
            return list(range(*key.indices(n))), False
        try:
            a = np.asarray(key)
        except (TypeError, ValueError):
            a = np.asarray(None, object)
        if a.size == 0 and a.dtype.kind in "biuf":
            return [], False
        if a.dtype == bool and a.ndim == 1:
            if a.shape != (n,):
                raise IndexError(f"{who}: a mask needs {n} entries, got shape {a.shape}")
            return np.flatnonzero(a).tolist(), False
        if a.dtype.kind in "iu" and a.ndim == 1:
            out = []
            for i in a.tolist():
                if not -n <= i < n:
                    raise IndexError(f"{who}: row {i} out of range for a table of {n} rows")
                out.append(i % n)
            return out, False
        raise TypeError(
            f"{who}: index with a row number, a slice, a boolean mask, a list of rows, a column "
            f"name or (layer, parameter); got {key!r}"
        )

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            k = key.lower()
            if k in ("layer", "parameter", "value"):
                return getattr(self, k)
            raise KeyError(f"Table: the columns are 'layer', 'parameter' and 'value', not {key!r}")
        rows, single = self._rows(key, "Table")
        if single:
            if isinstance(key, tuple):
                return self._value[rows[0]]
            i = rows[0]
            return Row(self._layer[i], self._parameter[i], self._value[i])
        return self._take(rows)

    def __setitem__(self, key: Any, new: Any) -> None:
        """``t[idx] = rows``: MATLAB's ``t(idx,:) = rows`` (see the class docstring)."""
        who = "Table assignment"
        if isinstance(key, str):
            if key.lower() == "value":
                self.value = new
                return
            raise KeyError(
                f"{who}: only the 'value' column can be assigned (the layer and parameter names "
                f"identify the rows), not {key!r}"
            )
        rows, single = self._rows(key, who)
        if len(set(rows)) != len(rows):
            raise IndexError(f"{who}: the index selects row(s) more than once: {rows}")
        if isinstance(new, Table):
            names = [(self._layer[i], self._parameter[i]) for i in rows]
            got = list(zip(new._layer, new._parameter))
            if len(got) != len(rows):
                raise ValueError(
                    f"{who}: {len(rows)} row(s) selected but the table assigned has {len(got)}"
                )
            if got != names:
                raise ValueError(
                    f"{who}: the assigned table's (layer, parameter) rows {got} must be the "
                    f"selected rows {names} (give the values instead to keep the names)"
                )
            values = list(new._value)
        elif isinstance(new, Row):  # what t[i] returns
            want = (self._layer[rows[0]], self._parameter[rows[0]]) if single else None
            if want != (new.layer, new.parameter):
                raise ValueError(
                    f"{who}: a Row ({new.layer}, {new.parameter}) goes only into that same single "
                    f"row{'' if want is None else f', not {want}'}"
                )
            values = [new.value]
        elif single:
            values = [new]
        elif isinstance(new, (list, tuple)):
            values = list(new)
            if len(values) != len(rows):
                raise ValueError(
                    f"{who}: {len(rows)} row(s) selected but {len(values)} value(s) given"
                )
        else:
            raise TypeError(
                f"{who}: several rows take a Table or a list of values (one per row), got a "
                f"{type(new).__name__}"
            )
        checked = [self._fit(i, v, who) for i, v in zip(rows, values)]
        for i, v in zip(rows, checked):  # all checked first: an error changes nothing
            self._value[i] = v

    def _fit(self, i: int, v: Any, who: str) -> Any:
        """``v`` checked against the value in row ``i`` (same size; a dlarray if it was one)."""
        old = self._value[i]
        if v is None or old is None:
            return v
        raw = v._value if isinstance(v, dlarray) else v
        if not isinstance(raw, Tracer):
            try:
                raw = np.asarray(raw)
            except (TypeError, ValueError):
                raw = np.asarray(None, object)
            if raw.dtype.kind not in "biufc":
                raise TypeError(
                    f"{who}: row {i} ({self._layer[i]}, {self._parameter[i]}) takes an array, "
                    f"got a {type(v).__name__}"
                )
        s_old = _shape(old._value if isinstance(old, dlarray) else old)
        s_new = _shape(raw)
        if s_new != s_old:
            raise ValueError(
                f"{who}: row {i} ({self._layer[i]}, {self._parameter[i]}) holds a value of size "
                f"{s_old}; the new value has size {s_new}"
            )
        d_old = np.result_type(primal_value(old._value if isinstance(old, dlarray) else old))
        d_new = np.result_type(primal_value(raw))
        if d_old.kind in "fc" and d_new != d_old:
            raise TypeError(
                f"{who}: row {i} ({self._layer[i]}, {self._parameter[i]}) holds {d_old} values; "
                f"the new value is {d_new} (convert it, e.g. .astype(np.{d_old.name}), so "
                "the parameters keep their precision)"
            )
        if isinstance(old, dlarray) and not isinstance(v, dlarray):
            return _wrap(raw, old._fmt)
        return v if isinstance(v, (dlarray, Tracer)) else raw

    def copy(self) -> Table:
        """A new Table with the same rows and values (the values themselves are shared: arrays
        are replaced, not changed in place, by everything in wengert.dl)."""
        return Table(self._layer, self._parameter, self._value)

    def index(self, layer: str, parameter: str) -> int:
        """The row number of ``(layer, parameter)``."""
        for i, (a, b) in enumerate(zip(self._layer, self._parameter)):
            if a == layer and b == parameter:
                return i
        raise KeyError(f"Table: no row with layer {layer!r} and parameter {parameter!r}")

    def get(self, layer: str, parameter: str, default: Any = None) -> Any:
        """The value in row ``(layer, parameter)``, or ``default``."""
        try:
            return self._value[self.index(layer, parameter)]
        except KeyError:
            return default

    def where(self, layer: str | None = None, parameter: str | None = None) -> Table:
        """The rows whose layer (and/or parameter) has the given name."""
        return self._take(
            [
                i
                for i, (a, b) in enumerate(zip(self._layer, self._parameter))
                if (layer is None or a == layer) and (parameter is None or b == parameter)
            ]
        )

    def with_values(self, values: Sequence) -> Table:
        """A table with the same rows and other values."""
        values = list(values)
        if len(values) != len(self):
            raise ValueError(f"Table.with_values: give {len(self)} values, got {len(values)}")
        return Table(self._layer, self._parameter, values)

    def _map_dlarrays(self, fn: Callable[[dlarray], Any]) -> Table:
        """A copy with ``fn`` applied to every dlarray value (the container protocol of
        ``dlfeval``/``dlgradient``)."""
        return Table(
            self._layer,
            self._parameter,
            [fn(v) if isinstance(v, dlarray) else v for v in self._value],
        )

    def __repr__(self) -> str:
        rows = [("layer", "parameter", "value")]
        rows += [(a, b, _size_str(v)) for a, b, v in self]
        w = [max(len(r[i]) for r in rows) for i in range(2)]
        lines = [f"{len(self)}×3 Table"]
        for k, r in enumerate(rows):
            lines.append(f"  {r[0].ljust(w[0])}  {r[1].ljust(w[1])}  {r[2]}")
            if k == 0:
                lines.append(f"  {'-' * w[0]}  {'-' * w[1]}  {'-' * 5}")
        return "\n".join(lines)


register_pytree_node(
    Table,
    lambda t: (list(t._value), (tuple(t._layer), tuple(t._parameter))),
    lambda aux, children: Table(aux[0], aux[1], children),
)


# ---------------------------------------------------------------------------------------------
# Layouts: MATLAB's (S..., C, B) / (C, B, T) <-> wengert.nn's (B, C, S...) / (B, T, C)
# ---------------------------------------------------------------------------------------------

_SUPPORTED_FORMATS = ("CB", "SCB", "SSCB", "SSSCB", "CBT")


def _check_format(fmt: str, who: str) -> None:
    if fmt not in _SUPPORTED_FORMATS:
        raise ValueError(
            f"{who}: data format {fmt!r} is not supported by dlnetwork layers; use 'SSCB' "
            "(images H×W×C×N), 'CB' (features C×N) or 'CBT' (sequences C×N×T)"
        )


def _nspatial(fmt: str) -> int:
    return fmt.count("S")


def _to_internal(v: Any, fmt: str) -> Any:
    """MATLAB layout -> batch-first layout."""
    if fmt == "CBT":
        return wnp.transpose(v, (1, 2, 0))
    k = _nspatial(fmt)
    return wnp.transpose(v, (k + 1, k) + tuple(range(k)))


def _from_internal(x: Any, fmt: str) -> Any:
    """Batch-first layout -> MATLAB layout."""
    if fmt == "CBT":
        return wnp.transpose(x, (2, 0, 1))
    k = _nspatial(fmt)
    return wnp.transpose(x, tuple(range(2, k + 2)) + (1, 0))


def _channel_axis(fmt: str) -> int:
    return -1 if fmt == "CBT" else 1


def _shape(v: Any) -> tuple:
    return tuple(np.shape(primal_value(v)))


def _flatten_cm(x: Any, fmt: str) -> Any:
    """(N, C, S1..Sk) -> (N, C·S1···Sk) in MATLAB's column-major order of (S1, ..., Sk, C)."""
    k = _nspatial(fmt)
    n = _shape(x)[0]
    if k > 1:
        x = wnp.transpose(x, (0, 1) + tuple(range(k + 1, 1, -1)))
    return wnp.reshape(x, (n, -1))


def _unflatten_cm(x: Any, size: tuple) -> Any:
    """(N, P) -> (N, C, S1..Sk) reading the P values as MATLAB reshapes them to ``size`` =
    (S1, ..., Sk, C) (column-major)."""
    *sp, c = size
    n = _shape(x)[0]
    y = wnp.reshape(x, (n, c) + tuple(reversed(sp)))
    k = len(sp)
    if k > 1:
        y = wnp.transpose(y, (0, 1) + tuple(range(k + 1, 1, -1)))
    return y


def _need(fmt: str, allowed: tuple, layer: Layer) -> None:
    if fmt not in allowed:
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r}: input format {fmt!r} is not supported; "
            f"it takes {' or '.join(repr(a) for a in allowed)}"
        )


def _pair(v: Any, name: str, n: int = 2) -> tuple:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    t = tuple(int(a) for a in np.ravel(v))
    if len(t) == 1:
        return t * n
    if len(t) != n:
        raise ValueError(f"{name} must be a positive integer or {n} of them, got {v!r}")
    return t


def _padding(p: Any, name: str = "padding") -> Any:
    """MATLAB's Padding / Cropping (0, n, [a b], [t b l r], "same") -> wengert.nn's form."""
    if isinstance(p, str):
        if p.lower() == "same":
            return "same"
        raise ValueError(f'{name} must be "same" or non-negative integers, got {p!r}')
    v = [int(a) for a in np.ravel(p)]
    if any(a < 0 for a in v):
        raise ValueError(f"{name} must be non-negative, got {p!r}")
    if len(v) == 1:
        return v[0]
    if len(v) == 2:
        return (v[0], v[1])
    if len(v) == 4:
        return ((v[0], v[1]), (v[2], v[3]))
    raise ValueError(f"{name} must be n, [a b] or [t b l r], got {p!r}")


# ---------------------------------------------------------------------------------------------
# Initializers by MATLAB name
# ---------------------------------------------------------------------------------------------

_INITIALIZERS = {
    "glorot": I.glorot_uniform,
    "he": I.he_normal,
    "narrow-normal": I.narrow_normal,
    "orthogonal": I.orthogonal,
    "zeros": I.zeros,
    "ones": I.ones,
    "unit-forget-gate": I.unit_forget_gate,
}


def _check_initializer(spec: Any, name: str) -> Any:
    if callable(spec):
        return spec
    if isinstance(spec, str) and spec.lower() in _INITIALIZERS:
        return spec.lower()
    raise ValueError(
        f"{name} must be one of {sorted(_INITIALIZERS)} or a function of the size (MATLAB "
        f"layout) returning an array; got {spec!r}"
    )


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------


class Layer:
    """Base of the MATLAB-style layer objects (made by ``convolution2dLayer(...)`` and the
    other constructors).  A layer holds its hyper-parameters and MATLAB's ``Name``; the values
    of its learnables and state live in the network's tables.

    Subclasses list ``learnable_names``/``state_names`` (MATLAB's parameter names, table
    order) and implement ``_param_shapes`` (wengert.nn layout shapes for an input),
    ``_to_nn``/``_to_matlab`` (the layout conversion of each parameter) and ``_apply``.
    """

    _default_name = "layer"
    learnable_names: tuple = ()
    state_names: tuple = ()
    is_input = False

    def __init__(self, name: str = "") -> None:
        if not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a string, got {name!r}")
        self.name = name
        self.learn_rate_factors: dict[str, float] = {}
        self._initializers: dict[str, Any] = {}
        self._given: dict[str, Any] = {}

    def learn_rate_factor(self, parameter: str) -> float:
        """The factor the update functions multiply the global learning rate by for this
        parameter (MATLAB's ``WeightLearnRateFactor`` etc.; 1 by default)."""
        return float(self.learn_rate_factors.get(parameter, 1.0))

    def _set_factor(self, parameter: str, value: Any) -> None:
        v = float(value)
        if v < 0 or not math.isfinite(v):
            raise ValueError(f"{type(self).__name__}: learn rate factors must be >= 0, got {value}")
        self.learn_rate_factors[parameter] = v

    # layout conversion (default: same layout) --------------------------------------------
    def _to_nn(self, param: str, v: Any) -> Any:
        return v

    def _to_matlab(self, param: str, a: np.ndarray, fmt: str) -> np.ndarray:
        return a

    def _param_shapes(self, x: Any, fmt: str) -> dict[str, tuple]:
        return {}

    def _state_shapes(self, x: Any, fmt: str) -> dict[str, tuple]:
        return {}

    def _draw(self, param: str, rng: np.random.Generator, shape: tuple, fmt: str, dtype) -> Any:
        """An initial value of ``param`` in wengert.nn layout ``shape``."""
        if param in self._given and self._given[param] is not None:
            a = np.asarray(self._to_nn(param, np.asarray(self._given[param], dtype)))
            if a.shape != tuple(shape):
                want = self._to_matlab(param, np.zeros(shape, dtype), fmt).shape
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: the given {param} has size "
                    f"{np.shape(self._given[param])}, but the layer needs {want}"
                )
            return a.astype(dtype, copy=True)
        spec = self._initializers.get(param, "zeros")
        if callable(spec):
            msize = self._to_matlab(param, np.zeros(shape, dtype), fmt).shape
            a = np.asarray(spec(msize), dtype)
            if a.shape != msize:
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: the {param} initializer returned "
                    f"size {a.shape}, expected {msize}"
                )
            return np.asarray(self._to_nn(param, a))
        return _INITIALIZERS[spec](rng, shape, dtype)

    def _init(self, rng: np.random.Generator, x: Any, fmt: str, dtype) -> tuple[dict, dict]:
        """(learnables, state), MATLAB layout, for an input ``x`` (batch-first, N = 1)."""
        learn = {
            p: self._to_matlab(p, self._draw(p, rng, s, fmt, dtype), fmt)
            for p, s in self._param_shapes(x, fmt).items()
        }
        state = {
            p: self._to_matlab(p, self._draw(p, rng, s, fmt, dtype), fmt)
            for p, s in self._state_shapes(x, fmt).items()
        }
        return learn, state

    def _apply(
        self, lv: dict, sv: dict, x: Any, fmt: str, training: bool, rng: Any
    ) -> tuple[Any, str, dict | None]:
        """``(y, output format, new state or None)`` in batch-first layout."""
        raise NotImplementedError

    def _describe(self) -> str:
        return ""

    def __repr__(self) -> str:
        d = self._describe()
        return f"{type(self).__name__}(name={self.name!r}{', ' + d if d else ''})"


def _kw_factor(layer: Layer, mapping: dict) -> None:
    for param, value in mapping.items():
        layer._set_factor(param, value)


# -- input layers ---------------------------------------------------------------------------

_NORMALIZATIONS = ("none", "zerocenter", "zscore", "rescale-symmetric", "rescale-zero-one")


class _InputLayer(Layer):
    is_input = True
    fmt = ""

    def __init__(self, normalization, mean, standard_deviation, min, max, name):
        super().__init__(name)
        if not callable(normalization):
            if not isinstance(normalization, str) or normalization.lower() not in _NORMALIZATIONS:
                raise ValueError(
                    f"{type(self).__name__}: normalization must be one of {_NORMALIZATIONS} or a "
                    f"function, got {normalization!r}"
                )
            normalization = normalization.lower()
        self.normalization = normalization
        self.mean = mean
        self.standard_deviation = standard_deviation
        self.min = min
        self.max = max

    def _obs_shape(self) -> tuple:
        raise NotImplementedError

    def _stat(self, a: Any, dtype) -> np.ndarray:
        """A statistic in MATLAB layout -> broadcastable against one batch-first example."""
        a = np.asarray(a, dtype)
        if a.ndim == 0:
            return a
        if self.fmt == "SSCB":
            if a.ndim == 3:
                return a.transpose(2, 0, 1)
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: image statistics must be h×w×c or 1×1×c "
                f"arrays (MATLAB layout), got shape {a.shape}"
            )
        return a.reshape(-1)

    def _init(self, rng, x, fmt, dtype):
        c = self._obs_shape()[0 if self.fmt != "CBT" else 1]
        col = (1, 1, c) if self.fmt == "SSCB" else (c, 1)
        norm = self.normalization
        if norm == "zerocenter" and self.mean is None:
            self.mean = np.zeros(col, dtype)
        if norm == "zscore":
            if self.mean is None:
                self.mean = np.zeros(col, dtype)
            if self.standard_deviation is None:
                self.standard_deviation = np.ones(col, dtype)
        if norm in ("rescale-symmetric", "rescale-zero-one"):
            if self.min is None:
                self.min = np.full(col, -1.0 if norm == "rescale-symmetric" else 0.0, dtype)
            if self.max is None:
                self.max = np.ones(col, dtype)
        return {}, {}

    def _check_input(self, x: Any, fmt: str) -> None:
        if fmt != self.fmt:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} takes {self.fmt!r} data, got format "
                f"{fmt!r}; make the input with dlarray(X, {self.fmt!r})"
            )
        s = _shape(x)[1:]
        want = self._obs_shape()
        ok = len(s) == len(want) and all(w is None or a == w for a, w in zip(s, want))
        if not ok:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: expected observations of size "
                f"{self._matlab_size()} ({self.fmt}), got data of size "
                f"{tuple(_shape(_from_internal(x, fmt)))}"
            )

    def _matlab_size(self) -> tuple:
        raise NotImplementedError

    def _apply(self, lv, sv, x, fmt, training, rng):
        self._check_input(x, fmt)
        norm = self.normalization
        if callable(norm):
            y = _to_internal(norm(_from_internal(x, fmt)), fmt)
            return y, fmt, None
        if norm == "none":
            return x, fmt, None
        dt = np.result_type(primal_value(x))
        if norm == "zerocenter":
            return x - self._stat(self.mean, dt), fmt, None
        if norm == "zscore":
            return (
                (x - self._stat(self.mean, dt)) / self._stat(self.standard_deviation, dt),
                fmt,
                None,
            )
        lo, hi = self._stat(self.min, dt), self._stat(self.max, dt)
        y = (x - lo) / (hi - lo)
        if norm == "rescale-symmetric":
            y = 2 * y - 1
        return y, fmt, None

    def _describe(self):
        n = self.normalization if isinstance(self.normalization, str) else "function"
        return f"input_size={self._matlab_size()}, normalization={n!r}"


class ImageInputLayer(_InputLayer):
    """2-D image input: observations h×w×c, format "SSCB"."""

    _default_name = "imageinput"
    fmt = "SSCB"

    def __init__(self, input_size, normalization="zerocenter", mean=None,
                 standard_deviation=None, min=None, max=None, name=""):  # fmt: skip
        super().__init__(normalization, mean, standard_deviation, min, max, name)
        s = tuple(int(a) for a in np.ravel(input_size))
        if len(s) == 2:
            s = s + (1,)
        if len(s) != 3 or any(a < 1 for a in s):
            raise ValueError(
                f"imageInputLayer: input_size must be [h w] or [h w c], got {input_size!r}"
            )
        self.input_size = s

    def _obs_shape(self):
        h, w, c = self.input_size
        return (c, h, w)

    def _matlab_size(self):
        return self.input_size


class FeatureInputLayer(_InputLayer):
    """Feature input: observations of ``num_features`` values, format "CB"."""

    _default_name = "input"
    fmt = "CB"

    def __init__(self, num_features, normalization="none", mean=None, standard_deviation=None,
                 min=None, max=None, name=""):  # fmt: skip
        super().__init__(normalization, mean, standard_deviation, min, max, name)
        self.num_features = int(num_features)
        if self.num_features < 1:
            raise ValueError(
                f"featureInputLayer: num_features must be positive, got {num_features}"
            )

    def _obs_shape(self):
        return (self.num_features,)

    def _matlab_size(self):
        return (self.num_features,)


class SequenceInputLayer(_InputLayer):
    """Vector-sequence input: ``input_size`` channels per time step, format "CBT"."""

    _default_name = "sequenceinput"
    fmt = "CBT"

    def __init__(self, input_size, normalization="none", mean=None, standard_deviation=None,
                 min=None, max=None, min_length=1, name=""):  # fmt: skip
        super().__init__(normalization, mean, standard_deviation, min, max, name)
        s = tuple(int(a) for a in np.ravel(input_size))
        if len(s) != 1:
            raise NotImplementedError(
                "sequenceInputLayer: only vector sequences (input_size a number of channels) are "
                "supported; image sequences are not"
            )
        self.input_size = s[0]
        self.min_length = int(min_length)

    def _obs_shape(self):
        return (None, self.input_size)

    def _matlab_size(self):
        return (self.input_size,)

    def _check_input(self, x, fmt):
        super()._check_input(x, fmt)
        t = _shape(x)[1]
        if t < self.min_length:
            raise ValueError(
                f"sequenceInputLayer {self.name!r}: sequences must have at least "
                f"{self.min_length} time steps, got {t}"
            )


# -- convolution and dense ------------------------------------------------------------------


class Convolution2DLayer(Layer):
    """2-D convolution: Weights FH×FW×C×F, Bias 1×1×F (MATLAB layout); SSCB -> SSCB."""

    _default_name = "conv"
    learnable_names = ("Weights", "Bias")

    def __init__(self, filter_size, num_filters, stride=1, dilation_factor=1, padding=0,
                 padding_value=0, num_channels="auto", weights_initializer="glorot",
                 bias_initializer="zeros", weights=None, bias=None, weight_learn_rate_factor=1,
                 bias_learn_rate_factor=1, name=""):  # fmt: skip
        super().__init__(name)
        self.filter_size = _pair(filter_size, "filter_size")
        self.num_filters = int(num_filters)
        self.stride = _pair(stride, "stride")
        self.dilation_factor = _pair(dilation_factor, "dilation_factor")
        self.padding = padding
        if not (isinstance(padding_value, (int, float)) and padding_value == 0):
            raise NotImplementedError(
                "convolution2dLayer: only padding_value=0 is supported (zero padding)"
            )
        self.num_channels = num_channels
        self._initializers = {
            "Weights": _check_initializer(weights_initializer, "weights_initializer"),
            "Bias": _check_initializer(bias_initializer, "bias_initializer"),
        }
        self._given = {"Weights": weights, "Bias": bias}
        _kw_factor(self, {"Weights": weight_learn_rate_factor, "Bias": bias_learn_rate_factor})
        self._nn = L.Conv2d(
            self.num_filters,
            self.filter_size,
            stride=self.stride,
            padding=_padding(padding),
            dilation=self.dilation_factor,
        )

    def _cin(self, x):
        c = _shape(x)[1]
        if self.num_channels != "auto" and int(self.num_channels) != c:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: num_channels={self.num_channels} but the "
                f"input has {c} channels"
            )
        return c

    def _param_shapes(self, x, fmt):
        _need(fmt, ("SSCB",), self)
        return {
            "Weights": (self.num_filters, self._cin(x)) + self.filter_size,
            "Bias": (self.num_filters,),
        }

    def _to_nn(self, param, v):
        if param == "Weights":
            return wnp.transpose(v, (3, 2, 0, 1))
        return wnp.reshape(v, (-1,))

    def _to_matlab(self, param, a, fmt):
        if param == "Weights":
            return np.ascontiguousarray(a.transpose(2, 3, 1, 0))
        return a.reshape(1, 1, -1)

    def _apply(self, lv, sv, x, fmt, training, rng):
        _need(fmt, ("SSCB",), self)
        p = {
            "weight": self._to_nn("Weights", lv["Weights"]),
            "bias": self._to_nn("Bias", lv["Bias"]),
        }
        y, _ = self._nn.apply(p, {}, x, training, rng)
        return y, fmt, None

    def _describe(self):
        return (
            f"filter_size={self.filter_size}, num_filters={self.num_filters}, "
            f"stride={self.stride}, padding={self.padding!r}"
        )


class TransposedConvolution2DLayer(Convolution2DLayer):
    """2-D transposed convolution: Weights FH×FW×F×C (F filters = output channels), Bias
    1×1×F; output size (H − 1)·stride + FH − cropping."""

    _default_name = "transposed-conv"

    def __init__(self, filter_size, num_filters, stride=1, cropping=0, num_channels="auto",
                 weights_initializer="glorot", bias_initializer="zeros", weights=None, bias=None,
                 weight_learn_rate_factor=1, bias_learn_rate_factor=1, name=""):  # fmt: skip
        Layer.__init__(self, name)
        self.filter_size = _pair(filter_size, "filter_size")
        self.num_filters = int(num_filters)
        self.stride = _pair(stride, "stride")
        self.cropping = cropping
        self._crop = _padding(cropping, "cropping")
        self.num_channels = num_channels
        self._initializers = {
            "Weights": _check_initializer(weights_initializer, "weights_initializer"),
            "Bias": _check_initializer(bias_initializer, "bias_initializer"),
        }
        self._given = {"Weights": weights, "Bias": bias}
        _kw_factor(self, {"Weights": weight_learn_rate_factor, "Bias": bias_learn_rate_factor})
        if self._crop == "same":
            crop = []
            for k, s in zip(self.filter_size, self.stride):
                total = k - s
                if total < 0:
                    raise ValueError(
                        f'transposedConv2dLayer: cropping="same" needs filter_size >= stride, got '
                        f"{self.filter_size} and {self.stride}"
                    )
                crop.append((total // 2, total - total // 2))  # the extra row at the bottom
            pad = tuple(crop)
        else:
            pad = self._crop
        self._nn = L.ConvTranspose2d(
            self.num_filters, self.filter_size, stride=self.stride, padding=pad
        )

    def _param_shapes(self, x, fmt):
        _need(fmt, ("SSCB",), self)
        return {
            "Weights": (self._cin(x), self.num_filters) + self.filter_size,
            "Bias": (self.num_filters,),
        }

    def _describe(self):
        return (
            f"filter_size={self.filter_size}, num_filters={self.num_filters}, "
            f"stride={self.stride}, cropping={self.cropping!r}"
        )


class FullyConnectedLayer(Layer):
    """Fully connected: Weights output_size×input_size, Bias output_size×1.  Spatial input
    (SSCB) is flattened in MATLAB's column-major order (h fastest, then w, then c) and gives
    "CB"; "CB" and "CBT" (per time step) keep their format."""

    _default_name = "fc"
    learnable_names = ("Weights", "Bias")

    def __init__(self, output_size, input_size="auto", weights_initializer="glorot",
                 bias_initializer="zeros", weights=None, bias=None, weight_learn_rate_factor=1,
                 bias_learn_rate_factor=1, name=""):  # fmt: skip
        super().__init__(name)
        self.output_size = int(output_size)
        if self.output_size < 1:
            raise ValueError(
                f"fullyConnectedLayer: output_size must be positive, got {output_size}"
            )
        self.input_size = input_size
        self._initializers = {
            "Weights": _check_initializer(weights_initializer, "weights_initializer"),
            "Bias": _check_initializer(bias_initializer, "bias_initializer"),
        }
        self._given = {"Weights": weights, "Bias": bias}
        _kw_factor(self, {"Weights": weight_learn_rate_factor, "Bias": bias_learn_rate_factor})
        self._nn = L.Linear(self.output_size)

    def _flat(self, x, fmt):
        if fmt in ("CB", "CBT"):
            return x, fmt
        _check_format(fmt, type(self).__name__)
        return _flatten_cm(x, fmt), "CB"

    def _param_shapes(self, x, fmt):
        x, fmt = self._flat(x, fmt)
        n_in = _shape(x)[-1]
        if self.input_size != "auto" and int(self.input_size) != n_in:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: input_size={self.input_size} but the input "
                f"has {n_in} values per observation"
            )
        return {"Weights": (self.output_size, n_in), "Bias": (self.output_size,)}

    def _to_nn(self, param, v):
        return v if param == "Weights" else wnp.reshape(v, (-1,))

    def _to_matlab(self, param, a, fmt):
        return a if param == "Weights" else a.reshape(-1, 1)

    def _apply(self, lv, sv, x, fmt, training, rng):
        x, fmt = self._flat(x, fmt)
        p = {"weight": lv["Weights"], "bias": self._to_nn("Bias", lv["Bias"])}
        y, _ = self._nn.apply(p, {}, x, training, rng)
        return y, fmt, None

    def _describe(self):
        return f"output_size={self.output_size}"


class ProjectAndReshapeLayer(FullyConnectedLayer):
    """The GAN example's custom layer: a fully connected projection of "CB" input to
    prod(output_size) values, reshaped (column-major, as MATLAB's ``reshape``) to
    output_size = [h w c] per observation: "CB" -> "SSCB".  Learnables Weights
    prod(output_size)×C (Glorot), Bias prod(output_size)×1 (zeros)."""

    _default_name = "proj"

    def __init__(self, output_size, name=""):
        s = tuple(int(a) for a in np.ravel(output_size))
        if len(s) != 3 or min(s) < 1:
            raise ValueError(
                f"projectAndReshapeLayer: output_size must be [h w c], got {output_size!r}"
            )
        super().__init__(math.prod(s), name=name)
        self.projection_size = s

    def _param_shapes(self, x, fmt):
        _need(fmt, ("CB",), self)
        return super()._param_shapes(x, fmt)

    def _apply(self, lv, sv, x, fmt, training, rng):
        _need(fmt, ("CB",), self)
        y, _, _ = super()._apply(lv, sv, x, fmt, training, rng)
        return _unflatten_cm(y, self.projection_size), "SSCB", None

    def _describe(self):
        return f"output_size={self.projection_size}"


# -- normalisation ----------------------------------------------------------------------------


class BatchNormalizationLayer(Layer):
    """Batch normalisation per channel over the batch (and spatial/time) dimensions.

    Learnables Offset, Scale and state TrainedMean, TrainedVariance: 1×1×C for images, C×1
    for features and sequences.  Training uses the batch statistics and updates the state as
    MATLAB: μ* ← λ_μ·μ + (1 − λ_μ)·μ*, σ²* ← λ_σ²·σ² + (1 − λ_σ²)·σ²* (σ² the unbiased batch
    variance), λ = ``mean_decay``/``variance_decay``; inference uses the trained statistics.
    """

    _default_name = "batchnorm"
    learnable_names = ("Offset", "Scale")
    state_names = ("TrainedMean", "TrainedVariance")

    def __init__(self, epsilon=1e-5, mean_decay=0.1, variance_decay=0.1,
                 offset_initializer="zeros", scale_initializer="ones", offset=None, scale=None,
                 trained_mean=None, trained_variance=None, offset_learn_rate_factor=1,
                 scale_learn_rate_factor=1, name=""):  # fmt: skip
        super().__init__(name)
        self.epsilon = float(epsilon)
        if not self.epsilon > 0:
            raise ValueError(f"batchNormalizationLayer: epsilon must be positive, got {epsilon}")
        for nm, v in (("mean_decay", mean_decay), ("variance_decay", variance_decay)):
            if not 0 <= v <= 1:
                raise ValueError(f"batchNormalizationLayer: {nm} must lie in [0, 1], got {v}")
        self.mean_decay = float(mean_decay)
        self.variance_decay = float(variance_decay)
        self._initializers = {
            "Offset": _check_initializer(offset_initializer, "offset_initializer"),
            "Scale": _check_initializer(scale_initializer, "scale_initializer"),
            "TrainedMean": "zeros",
            "TrainedVariance": "ones",
        }
        self._given = {
            "Offset": offset,
            "Scale": scale,
            "TrainedMean": trained_mean,
            "TrainedVariance": trained_variance,
        }
        _kw_factor(self, {"Offset": offset_learn_rate_factor, "Scale": scale_learn_rate_factor})
        self._nn = L.BatchNorm(momentum=self.mean_decay, eps=self.epsilon)

    def _channels(self, x, fmt):
        _check_format(fmt, type(self).__name__)
        return _shape(x)[_channel_axis(fmt)]

    def _param_shapes(self, x, fmt):
        c = self._channels(x, fmt)
        return {"Offset": (c,), "Scale": (c,)}

    def _state_shapes(self, x, fmt):
        c = self._channels(x, fmt)
        return {"TrainedMean": (c,), "TrainedVariance": (c,)}

    def _to_nn(self, param, v):
        return wnp.reshape(v, (-1,))

    def _to_matlab(self, param, a, fmt):
        return a.reshape(1, 1, -1) if fmt == "SSCB" else a.reshape(-1, 1)

    def _apply(self, lv, sv, x, fmt, training, rng):
        self._channels(x, fmt)
        x2 = wnp.transpose(x, (0, 2, 1)) if fmt == "CBT" else x
        p = {
            "gamma": self._to_nn("Scale", lv["Scale"]),
            "beta": self._to_nn("Offset", lv["Offset"]),
        }
        m_old = np.asarray(primal_value(sv["TrainedMean"]))
        v_old = np.asarray(primal_value(sv["TrainedVariance"]))
        s = {"mean": m_old.reshape(-1), "var": v_old.reshape(-1)}
        y, s2 = self._nn.apply(p, s, x2, training, rng)
        if fmt == "CBT":
            y = wnp.transpose(y, (0, 2, 1))
        if not training:
            return y, fmt, None
        new_v = s2["var"]
        if self.variance_decay != self.mean_decay:
            xv = np.asarray(primal_value(x2))
            axes = (0,) + tuple(range(2, xv.ndim))
            n = xv.size // xv.shape[1]
            bv = xv.var(axis=axes, dtype=np.float64) * (n / max(n - 1, 1))
            lam = self.variance_decay
            new_v = ((1 - lam) * s["var"] + lam * bv).astype(s["var"].dtype)
        return (
            y,
            fmt,
            {
                "TrainedMean": np.asarray(s2["mean"]).reshape(m_old.shape),
                "TrainedVariance": np.asarray(new_v).reshape(v_old.shape),
            },
        )

    def _describe(self):
        return f"epsilon={self.epsilon}, mean_decay={self.mean_decay}, variance_decay={self.variance_decay}"


class LayerNormalizationLayer(Layer):
    """Layer normalisation of each observation, then a per-channel scale and offset.

    ``operation_dimension`` "auto" normalises over the spatial and channel dimensions of
    images and over the channels of features and sequences (MATLAB's default);
    "channel-only", "spatial-channel" and "batch-excluded" (all but B) choose explicitly.
    Learnables Offset, Scale: 1×1×C for images, C×1 otherwise.
    """

    _default_name = "layernorm"
    learnable_names = ("Offset", "Scale")

    def __init__(self, epsilon=1e-5, operation_dimension="auto", offset_initializer="zeros",
                 scale_initializer="ones", offset=None, scale=None, offset_learn_rate_factor=1,
                 scale_learn_rate_factor=1, name=""):  # fmt: skip
        super().__init__(name)
        self.epsilon = float(epsilon)
        ops = ("auto", "channel-only", "spatial-channel", "batch-excluded")
        if operation_dimension not in ops:
            raise ValueError(f"layerNormalizationLayer: operation_dimension must be one of {ops}")
        self.operation_dimension = operation_dimension
        self._initializers = {
            "Offset": _check_initializer(offset_initializer, "offset_initializer"),
            "Scale": _check_initializer(scale_initializer, "scale_initializer"),
        }
        self._given = {"Offset": offset, "Scale": scale}
        _kw_factor(self, {"Offset": offset_learn_rate_factor, "Scale": scale_learn_rate_factor})

    def _param_shapes(self, x, fmt):
        _check_format(fmt, type(self).__name__)
        c = _shape(x)[_channel_axis(fmt)]
        return {"Offset": (c,), "Scale": (c,)}

    _to_nn = BatchNormalizationLayer._to_nn
    _to_matlab = BatchNormalizationLayer._to_matlab

    def _axes(self, nd, fmt):
        op = self.operation_dimension
        if fmt == "CBT":
            return (1, 2) if op == "batch-excluded" else (2,)
        if op == "channel-only":
            return (1,)
        return tuple(range(1, nd))

    def _apply(self, lv, sv, x, fmt, training, rng):
        _check_format(fmt, type(self).__name__)
        nd = len(_shape(x))
        y = F.layer_norm(x, axes=self._axes(nd, fmt), eps=self.epsilon)
        c = _shape(x)[_channel_axis(fmt)]
        shape = (c,) if fmt in ("CB", "CBT") else (c,) + (1,) * (nd - 2)
        g = wnp.reshape(lv["Scale"], shape)
        b = wnp.reshape(lv["Offset"], shape)
        return y * g + b, fmt, None

    def _describe(self):
        return f"epsilon={self.epsilon}"


# -- activations, dropout, pooling, reshaping -------------------------------------------------


class _Elementwise(Layer):
    def _apply(self, lv, sv, x, fmt, training, rng):
        y, _ = self._nn.apply({}, {}, x, training, rng)
        return y, fmt, None


class ReLULayer(_Elementwise):
    """max(x, 0)."""

    _default_name = "relu"

    def __init__(self, name=""):
        super().__init__(name)
        self._nn = L.ReLU()


class LeakyReLULayer(_Elementwise):
    """x for x > 0, scale·x otherwise (``scale`` 0.01)."""

    _default_name = "leakyrelu"

    def __init__(self, scale=0.01, name=""):
        super().__init__(name)
        self.scale = float(scale)
        self._nn = L.LeakyReLU(self.scale)

    def _describe(self):
        return f"scale={self.scale}"


class TanhLayer(_Elementwise):
    """tanh x."""

    _default_name = "tanh"

    def __init__(self, name=""):
        super().__init__(name)
        self._nn = L.Tanh()


class SigmoidLayer(_Elementwise):
    """1 / (1 + e⁻ˣ)."""

    _default_name = "sigmoid"

    def __init__(self, name=""):
        super().__init__(name)
        self._nn = L.Sigmoid()


class SoftmaxLayer(Layer):
    """Softmax over the channel dimension (at each spatial position / time step)."""

    _default_name = "softmax"

    def __init__(self, name=""):
        super().__init__(name)
        self._nn = {1: L.Softmax(axis=1), -1: L.Softmax(axis=-1)}

    def _apply(self, lv, sv, x, fmt, training, rng):
        _check_format(fmt, type(self).__name__)
        y, _ = self._nn[_channel_axis(fmt)].apply({}, {}, x, training, rng)
        return y, fmt, None


class DropoutLayer(Layer):
    """Inverted dropout with ``probability`` while training (forward); identity in predict."""

    _default_name = "dropout"

    def __init__(self, probability=0.5, name=""):
        super().__init__(name)
        self.probability = float(probability)
        self._nn = L.Dropout(self.probability)

    def _apply(self, lv, sv, x, fmt, training, rng):
        y, _ = self._nn.apply({}, {}, x, training, _generator(rng) if training else None)
        return y, fmt, None

    def _describe(self):
        return f"probability={self.probability}"


class MaxPooling2DLayer(Layer):
    """2-D max pooling; MATLAB's default stride is 1 (not the pool size)."""

    _default_name = "maxpool"

    def __init__(self, pool_size, stride=1, padding=0, name=""):
        super().__init__(name)
        self.pool_size = _pair(pool_size, "pool_size")
        self.stride = _pair(stride, "stride")
        self.padding = padding
        self._nn = L.MaxPool2d(self.pool_size, self.stride, _padding(padding))

    def _apply(self, lv, sv, x, fmt, training, rng):
        _need(fmt, ("SSCB",), self)
        y, _ = self._nn.apply({}, {}, x, training, rng)
        return y, fmt, None

    def _describe(self):
        return f"pool_size={self.pool_size}, stride={self.stride}, padding={self.padding!r}"


class AveragePooling2DLayer(MaxPooling2DLayer):
    """2-D average pooling; ``padding_value`` 0 counts the zero padding in each average,
    "mean" leaves it out."""

    _default_name = "avgpool"

    def __init__(self, pool_size, stride=1, padding=0, padding_value=0, name=""):
        Layer.__init__(self, name)
        self.pool_size = _pair(pool_size, "pool_size")
        self.stride = _pair(stride, "stride")
        self.padding = padding
        if not (padding_value == "mean" or padding_value == 0):
            raise ValueError(
                f'averagePooling2dLayer: padding_value must be 0 or "mean", got {padding_value!r}'
            )
        self.padding_value = padding_value
        self._nn = L.AvgPool2d(self.pool_size, self.stride, _padding(padding))

    def _apply(self, lv, sv, x, fmt, training, rng):
        _need(fmt, ("SSCB",), self)
        if self.padding_value == "mean":
            y = F.avg_pool2d(
                x, self.pool_size, self.stride, _padding(self.padding), count_include_pad=False
            )
        else:
            y, _ = self._nn.apply({}, {}, x, training, rng)
        return y, fmt, None


class GlobalAveragePooling2DLayer(Layer):
    """Mean over height and width: h×w×c×N -> 1×1×c×N (still "SSCB")."""

    _default_name = "gapool"

    def __init__(self, name=""):
        super().__init__(name)
        self._nn = L.GlobalAvgPool()

    def _apply(self, lv, sv, x, fmt, training, rng):
        _need(fmt, ("SSCB",), self)
        y, _ = self._nn.apply({}, {}, x, training, rng)
        n, c = _shape(y)
        return wnp.reshape(y, (n, c, 1, 1)), fmt, None


class FlattenLayer(Layer):
    """Spatial dimensions folded into the channels (MATLAB's column-major order): "SSCB" ->
    "CB"; "CB" and "CBT" pass through."""

    _default_name = "flatten"

    def _apply(self, lv, sv, x, fmt, training, rng):
        if fmt in ("CB", "CBT"):
            return x, fmt, None
        _check_format(fmt, type(self).__name__)
        return _flatten_cm(x, fmt), "CB", None


# -- recurrent ----------------------------------------------------------------------------------


class _Recurrent(Layer):
    gates = 4

    def __init__(self, num_hidden_units, output_mode, input_weights_initializer,
                 recurrent_weights_initializer, bias_initializer, input_weights, recurrent_weights,
                 bias, hidden_state, factors, name):  # fmt: skip
        super().__init__(name)
        self.num_hidden_units = int(num_hidden_units)
        if self.num_hidden_units < 1:
            raise ValueError(f"{type(self).__name__}: num_hidden_units must be positive")
        if output_mode not in ("sequence", "last"):
            raise ValueError(f'{type(self).__name__}: output_mode must be "sequence" or "last"')
        self.output_mode = output_mode
        self._initializers = {
            "InputWeights": _check_initializer(
                input_weights_initializer, "input_weights_initializer"
            ),
            "RecurrentWeights": _check_initializer(
                recurrent_weights_initializer, "recurrent_weights_initializer"
            ),
            "Bias": _check_initializer(bias_initializer, "bias_initializer"),
            "HiddenState": "zeros",
            "CellState": "zeros",
        }
        self._given = {
            "InputWeights": input_weights,
            "RecurrentWeights": recurrent_weights,
            "Bias": bias,
            "HiddenState": hidden_state,
        }
        _kw_factor(self, factors)

    def _param_shapes(self, x, fmt):
        _need(fmt, ("CBT",), self)
        h, c, g = self.num_hidden_units, _shape(x)[-1], self.gates
        return {"InputWeights": (g * h, c), "RecurrentWeights": (g * h, h), "Bias": (g * h,)}

    def _state_shapes(self, x, fmt):
        return {p: (self.num_hidden_units, 1) for p in self.state_names}

    def _to_nn(self, param, v):
        return wnp.reshape(v, (-1,)) if param == "Bias" else v

    def _to_matlab(self, param, a, fmt):
        return a.reshape(-1, 1) if param == "Bias" else a

    def _initial(self, s, n):
        """A state value (H×1 or H×N, MATLAB layout) as the (N, H) initial state."""
        a = np.asarray(primal_value(s._value if isinstance(s, dlarray) else s))
        if a.ndim != 2 or a.shape[0] != self.num_hidden_units or a.shape[1] not in (1, n):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: the state has size {a.shape} but a batch "
                f"of {n} needs {self.num_hidden_units}×1 or {self.num_hidden_units}×{n}; reset it "
                "with resetState(net)"
            )
        if not a.any():
            return None
        return np.ascontiguousarray(np.broadcast_to(a.T, (n, self.num_hidden_units)))

    def _out(self, ys, h, fmt):
        if self.output_mode == "sequence":
            return ys, "CBT"
        return h, "CB"

    def _describe(self):
        return f"num_hidden_units={self.num_hidden_units}, output_mode={self.output_mode!r}"


class LSTMLayer(_Recurrent):
    """Long short-term memory over "CBT" sequences; gates (input, forget, cell candidate,
    output) as MATLAB.  Learnables InputWeights 4H×C (Glorot), RecurrentWeights 4H×H
    (orthogonal), Bias 4H×1 (unit forget gate); state HiddenState and CellState (H×1 zeros,
    H×N after a forward pass: the final states, which become the next initial states when
    assigned back to ``net.state``).  "sequence" output is "CBT", "last" is "CB"."""

    _default_name = "lstm"
    learnable_names = ("InputWeights", "RecurrentWeights", "Bias")
    state_names = ("HiddenState", "CellState")
    gates = 4

    def __init__(self, num_hidden_units, output_mode="sequence", state_activation_function="tanh",
                 gate_activation_function="sigmoid", input_weights_initializer="glorot",
                 recurrent_weights_initializer="orthogonal", bias_initializer="unit-forget-gate",
                 input_weights=None, recurrent_weights=None, bias=None, hidden_state=None,
                 cell_state=None, input_weights_learn_rate_factor=1,
                 recurrent_weights_learn_rate_factor=1, bias_learn_rate_factor=1, name=""):  # fmt: skip
        if state_activation_function != "tanh" or gate_activation_function != "sigmoid":
            raise NotImplementedError(
                "lstmLayer: only state_activation_function='tanh' and "
                "gate_activation_function='sigmoid' are supported"
            )
        super().__init__(
            num_hidden_units, output_mode, input_weights_initializer,
            recurrent_weights_initializer, bias_initializer, input_weights, recurrent_weights,
            bias, hidden_state,
            {"InputWeights": input_weights_learn_rate_factor,
             "RecurrentWeights": recurrent_weights_learn_rate_factor,
             "Bias": bias_learn_rate_factor},
            name,
        )  # fmt: skip
        self._given["CellState"] = cell_state

    def _apply(self, lv, sv, x, fmt, training, rng):
        _need(fmt, ("CBT",), self)
        n = _shape(x)[0]
        h0 = self._initial(sv["HiddenState"], n)
        c0 = self._initial(sv["CellState"], n)
        ys, h, c = F.lstm(
            x, h0, c0, lv["InputWeights"], lv["RecurrentWeights"], self._to_nn("Bias", lv["Bias"])
        )
        y, f = self._out(ys, h, fmt)
        new = {
            "HiddenState": np.asarray(primal_value(h)).T.copy(),
            "CellState": np.asarray(primal_value(c)).T.copy(),
        }
        return y, f, new


class GRULayer(_Recurrent):
    """Gated recurrent unit over "CBT" sequences; gates (reset, update, candidate) as MATLAB.
    ``reset_gate_mode`` "after-multiplication" (default: Bias 3H×1 added to the input
    projection) or "recurrent-bias-after-multiplication" (Bias 3H×2: input and recurrent
    biases).  State HiddenState (H×1)."""

    _default_name = "gru"
    learnable_names = ("InputWeights", "RecurrentWeights", "Bias")
    state_names = ("HiddenState",)
    gates = 3

    def __init__(self, num_hidden_units, output_mode="sequence",
                 reset_gate_mode="after-multiplication", state_activation_function="tanh",
                 gate_activation_function="sigmoid", input_weights_initializer="glorot",
                 recurrent_weights_initializer="orthogonal", bias_initializer="zeros",
                 input_weights=None, recurrent_weights=None, bias=None, hidden_state=None,
                 input_weights_learn_rate_factor=1, recurrent_weights_learn_rate_factor=1,
                 bias_learn_rate_factor=1, name=""):  # fmt: skip
        if state_activation_function != "tanh" or gate_activation_function != "sigmoid":
            raise NotImplementedError(
                "gruLayer: only state_activation_function='tanh' and "
                "gate_activation_function='sigmoid' are supported"
            )
        modes = ("after-multiplication", "recurrent-bias-after-multiplication")
        if reset_gate_mode not in modes:
            raise NotImplementedError(
                f"gruLayer: reset_gate_mode must be one of {modes} (the reset gate applied after "
                "the recurrent product); 'before-multiplication' is not supported"
            )
        self.reset_gate_mode = reset_gate_mode
        super().__init__(
            num_hidden_units, output_mode, input_weights_initializer,
            recurrent_weights_initializer, bias_initializer, input_weights, recurrent_weights,
            bias, hidden_state,
            {"InputWeights": input_weights_learn_rate_factor,
             "RecurrentWeights": recurrent_weights_learn_rate_factor,
             "Bias": bias_learn_rate_factor},
            name,
        )  # fmt: skip

    def _two_biases(self) -> bool:
        return self.reset_gate_mode == "recurrent-bias-after-multiplication"

    def _param_shapes(self, x, fmt):
        s = super()._param_shapes(x, fmt)
        if self._two_biases():
            s["Bias"] = (2, 3 * self.num_hidden_units)
        return s

    def _to_nn(self, param, v):
        if param == "Bias" and self._two_biases():
            return wnp.transpose(v)
        return super()._to_nn(param, v)

    def _to_matlab(self, param, a, fmt):
        if param == "Bias" and self._two_biases():
            return np.ascontiguousarray(a.T)
        return super()._to_matlab(param, a, fmt)

    def _apply(self, lv, sv, x, fmt, training, rng):
        _need(fmt, ("CBT",), self)
        n = _shape(x)[0]
        h0 = self._initial(sv["HiddenState"], n)
        b = self._to_nn("Bias", lv["Bias"])
        if self._two_biases():
            b_ih, b_hh = b[0], b[1]
        else:
            b_ih, b_hh = b, None
        ys, h = F.gru(x, h0, lv["InputWeights"], lv["RecurrentWeights"], b_ih, b_hh)
        y, f = self._out(ys, h, fmt)
        return y, f, {"HiddenState": np.asarray(primal_value(h)).T.copy()}


# -- constructors with MATLAB's names -----------------------------------------------------------


def imageInputLayer(input_size: Sequence[int], *, normalization: str | Callable = "zerocenter",
                    mean: Any = None, standard_deviation: Any = None, min: Any = None,
                    max: Any = None, name: str = "") -> ImageInputLayer:  # fmt: skip
    """MATLAB's ``imageInputLayer(inputSize)``: images h×w×c, format "SSCB".

    ``normalization`` "zerocenter" (x − mean; MATLAB's default), "zscore" ((x − mean)/std),
    "rescale-symmetric" (to [−1, 1] by min/max), "rescale-zero-one", "none" or a function of
    the batch (MATLAB layout).  Statistics left empty are set by ``initialize`` so that the
    normalisation is the identity (mean 0, std 1, min 0 or −1, max 1).
    """
    return ImageInputLayer(input_size, normalization, mean, standard_deviation, min, max, name)


def featureInputLayer(num_features: int, *, normalization: str | Callable = "none",
                      mean: Any = None, standard_deviation: Any = None, min: Any = None,
                      max: Any = None, name: str = "") -> FeatureInputLayer:  # fmt: skip
    """MATLAB's ``featureInputLayer(numFeatures)``: feature vectors, format "CB"
    (normalisations as :func:`imageInputLayer`, default "none")."""
    return FeatureInputLayer(num_features, normalization, mean, standard_deviation, min, max, name)


def sequenceInputLayer(input_size: int, *, normalization: str | Callable = "none",
                       mean: Any = None, standard_deviation: Any = None, min: Any = None,
                       max: Any = None, min_length: int = 1,
                       name: str = "") -> SequenceInputLayer:  # fmt: skip
    """MATLAB's ``sequenceInputLayer(inputSize)``: vector sequences, format "CBT"."""
    return SequenceInputLayer(
        input_size, normalization, mean, standard_deviation, min, max, min_length, name
    )


def convolution2dLayer(filter_size: int | Sequence[int], num_filters: int, *,
                       stride: int | Sequence[int] = 1, dilation_factor: int | Sequence[int] = 1,
                       padding: Any = 0, padding_value: float = 0,
                       num_channels: int | str = "auto", weights_initializer: Any = "glorot",
                       bias_initializer: Any = "zeros", weights: Any = None, bias: Any = None,
                       weight_learn_rate_factor: float = 1, bias_learn_rate_factor: float = 1,
                       name: str = "") -> Convolution2DLayer:  # fmt: skip
    """MATLAB's ``convolution2dLayer(filterSize, numFilters)``: cross-correlation of "SSCB" data
    with Weights FH×FW×C×F plus Bias 1×1×F:

        y[i, j, f, n] = Σ_{a, b, c} x_pad[(i−1)·s + (a−1)·d + 1, ..., c, n] · W[a, b, c, f] + B[f]

    ``padding``: n, [a b] (top/bottom a, left/right b), [t b l r] or "same" (output
    ⌈size/stride⌉, the extra row/column at the bottom/right).  Initializers: "glorot"
    (default), "he", "narrow-normal", "zeros", "ones" or a function of the size.
    """
    return Convolution2DLayer(
        filter_size, num_filters, stride, dilation_factor, padding, padding_value, num_channels,
        weights_initializer, bias_initializer, weights, bias, weight_learn_rate_factor,
        bias_learn_rate_factor, name,
    )  # fmt: skip


def transposedConv2dLayer(filter_size: int | Sequence[int], num_filters: int, *,
                          stride: int | Sequence[int] = 1, cropping: Any = 0,
                          num_channels: int | str = "auto", weights_initializer: Any = "glorot",
                          bias_initializer: Any = "zeros", weights: Any = None, bias: Any = None,
                          weight_learn_rate_factor: float = 1, bias_learn_rate_factor: float = 1,
                          name: str = "") -> TransposedConvolution2DLayer:  # fmt: skip
    """MATLAB's ``transposedConv2dLayer(filterSize, numFilters)``: the adjoint of a convolution,
    Weights FH×FW×F×C, Bias 1×1×F; output height (H − 1)·stride + FH − top − bottom crop.
    ``cropping``: n, [a b], [t b l r] or "same" (output H·stride; an odd total crop takes the
    extra row/column from the bottom/right)."""
    return TransposedConvolution2DLayer(
        filter_size, num_filters, stride, cropping, num_channels, weights_initializer,
        bias_initializer, weights, bias, weight_learn_rate_factor, bias_learn_rate_factor, name,
    )  # fmt: skip


def fullyConnectedLayer(output_size: int, *, input_size: int | str = "auto",
                        weights_initializer: Any = "glorot", bias_initializer: Any = "zeros",
                        weights: Any = None, bias: Any = None,
                        weight_learn_rate_factor: float = 1, bias_learn_rate_factor: float = 1,
                        name: str = "") -> FullyConnectedLayer:  # fmt: skip
    """MATLAB's ``fullyConnectedLayer(outputSize)``: y = W·x + b with Weights
    outputSize×inputSize and Bias outputSize×1; "SSCB" input is flattened (column-major) to
    "CB", "CB"/"CBT" keep their format."""
    return FullyConnectedLayer(
        output_size, input_size, weights_initializer, bias_initializer, weights, bias,
        weight_learn_rate_factor, bias_learn_rate_factor, name,
    )  # fmt: skip


def batchNormalizationLayer(*, epsilon: float = 1e-5, mean_decay: float = 0.1,
                            variance_decay: float = 0.1, offset_initializer: Any = "zeros",
                            scale_initializer: Any = "ones", offset: Any = None, scale: Any = None,
                            trained_mean: Any = None, trained_variance: Any = None,
                            offset_learn_rate_factor: float = 1,
                            scale_learn_rate_factor: float = 1,
                            name: str = "") -> BatchNormalizationLayer:  # fmt: skip
    """MATLAB's ``batchNormalizationLayer``: y = Scale·(x − μ)/√(σ² + ε) + Offset per channel
    (see :class:`BatchNormalizationLayer` for the state update)."""
    return BatchNormalizationLayer(
        epsilon, mean_decay, variance_decay, offset_initializer, scale_initializer, offset, scale,
        trained_mean, trained_variance, offset_learn_rate_factor, scale_learn_rate_factor, name,
    )  # fmt: skip


def layerNormalizationLayer(*, epsilon: float = 1e-5, operation_dimension: str = "auto",
                            offset_initializer: Any = "zeros", scale_initializer: Any = "ones",
                            offset: Any = None, scale: Any = None,
                            offset_learn_rate_factor: float = 1,
                            scale_learn_rate_factor: float = 1,
                            name: str = "") -> LayerNormalizationLayer:  # fmt: skip
    """MATLAB's ``layerNormalizationLayer``: y = Scale·(x − μ)/√(σ² + ε) + Offset, μ and σ² per
    observation (see :class:`LayerNormalizationLayer`)."""
    return LayerNormalizationLayer(
        epsilon, operation_dimension, offset_initializer, scale_initializer, offset, scale,
        offset_learn_rate_factor, scale_learn_rate_factor, name,
    )  # fmt: skip


def reluLayer(*, name: str = "") -> ReLULayer:
    """MATLAB's ``reluLayer``: max(x, 0)."""
    return ReLULayer(name)


def leakyReluLayer(scale: float = 0.01, *, name: str = "") -> LeakyReLULayer:
    """MATLAB's ``leakyReluLayer(scale)``: x for x > 0, scale·x otherwise."""
    return LeakyReLULayer(scale, name)


def tanhLayer(*, name: str = "") -> TanhLayer:
    """MATLAB's ``tanhLayer``."""
    return TanhLayer(name)


def sigmoidLayer(*, name: str = "") -> SigmoidLayer:
    """MATLAB's ``sigmoidLayer``: 1 / (1 + e⁻ˣ)."""
    return SigmoidLayer(name)


def softmaxLayer(*, name: str = "") -> SoftmaxLayer:
    """MATLAB's ``softmaxLayer``: exp(x_c) / Σ_c exp(x_c) over the channel dimension."""
    return SoftmaxLayer(name)


def dropoutLayer(probability: float = 0.5, *, name: str = "") -> DropoutLayer:
    """MATLAB's ``dropoutLayer(probability)``: while training, zero each element with
    ``probability`` and scale the rest by 1/(1 − probability)."""
    return DropoutLayer(probability, name)


def maxPooling2dLayer(pool_size: int | Sequence[int], *, stride: int | Sequence[int] = 1,
                      padding: Any = 0, name: str = "") -> MaxPooling2DLayer:  # fmt: skip
    """MATLAB's ``maxPooling2dLayer(poolSize)`` (stride 1 by default, as MATLAB)."""
    return MaxPooling2DLayer(pool_size, stride, padding, name)


def averagePooling2dLayer(pool_size: int | Sequence[int], *, stride: int | Sequence[int] = 1,
                          padding: Any = 0, padding_value: Any = 0,
                          name: str = "") -> AveragePooling2DLayer:  # fmt: skip
    """MATLAB's ``averagePooling2dLayer(poolSize)`` (stride 1 by default, as MATLAB)."""
    return AveragePooling2DLayer(pool_size, stride, padding, padding_value, name)


def globalAveragePooling2dLayer(*, name: str = "") -> GlobalAveragePooling2DLayer:
    """MATLAB's ``globalAveragePooling2dLayer``: mean over h and w (output 1×1×c×N)."""
    return GlobalAveragePooling2DLayer(name)


def flattenLayer(*, name: str = "") -> FlattenLayer:
    """MATLAB's ``flattenLayer``: "SSCB" -> "CB" (column-major order)."""
    return FlattenLayer(name)


def lstmLayer(num_hidden_units: int, *, output_mode: str = "sequence", **options: Any) -> LSTMLayer:
    """MATLAB's ``lstmLayer(numHiddenUnits)`` (see :class:`LSTMLayer`; options
    ``state_activation_function``, ``gate_activation_function``, ``input_weights_initializer``,
    ``recurrent_weights_initializer``, ``bias_initializer``, ``input_weights``,
    ``recurrent_weights``, ``bias``, ``hidden_state``, ``cell_state``, the learn rate factors
    and ``name``)."""
    return LSTMLayer(num_hidden_units, output_mode, **options)


def gruLayer(num_hidden_units: int, *, output_mode: str = "sequence", **options: Any) -> GRULayer:
    """MATLAB's ``gruLayer(numHiddenUnits)`` (see :class:`GRULayer`; options as
    :func:`lstmLayer` plus ``reset_gate_mode``, without ``cell_state``)."""
    return GRULayer(num_hidden_units, output_mode, **options)


def projectAndReshapeLayer(output_size: Sequence[int], *, name: str = "") -> ProjectAndReshapeLayer:
    """The custom layer of MATLAB's GAN example: project "CB" input with a fully connected
    operation to prod(output_size) values and reshape them to output_size = [h w c] ("SSCB")."""
    return ProjectAndReshapeLayer(output_size, name)


# ---------------------------------------------------------------------------------------------
# dlnetwork
# ---------------------------------------------------------------------------------------------


def _named(layers: Sequence[Layer]) -> list[Layer]:
    """Copies of the layers with MATLAB's automatic names for the unnamed ones: the default
    name ("conv", "relu", ...) when it occurs once, "conv_1", "conv_2", ... otherwise."""
    out = [copy.copy(ly) for ly in layers]
    for ly in out:
        ly.learn_rate_factors = dict(ly.learn_rate_factors)
    given = [ly.name for ly in out if ly.name]
    dup = [n for n, k in Counter(given).items() if k > 1]
    if dup:
        raise ValueError(f"dlnetwork: layer names must be unique; repeated: {dup}")
    used = set(given)
    counts = Counter(ly._default_name for ly in out if not ly.name)
    next_k: Counter = Counter()
    for ly in out:
        if ly.name:
            continue
        base = ly._default_name
        if counts[base] == 1 and base not in used:
            cand = base
        else:
            while True:
                next_k[base] += 1
                cand = f"{base}_{next_k[base]}"
                if cand not in used:
                    break
        ly.name = cand
        used.add(cand)
    return out


def _data(v: Any) -> Any:
    """The array inside a table value (a dlarray's data, or the value itself)."""
    return v._value if isinstance(v, dlarray) else v


def _as_learnable(v: Any) -> dlarray:
    if isinstance(v, dlarray):
        return v
    return _wrap(np.asarray(v), "")


class dlnetwork:
    """MATLAB's ``dlnetwork(layers)`` for a layer array (a chain of layers).

    Data enter and leave in MATLAB's layout (an "SSCB" image batch is (H, W, C, N), "CB" is
    (C, N), "CBT" is (C, N, T)); inside, the layers run wengert.nn's batch-first ops ((N, C, H,
    W), (N, C), (N, T, C)), permuting only at the network's boundary.  Learnables are stored in
    MATLAB's layout (convolution weights FH×FW×C×F, fully connected weights out×in, biases as
    columns) and converted to wengert.nn's by differentiable transposes each time the network
    runs, so gradients come back in MATLAB's layout too.

    ``dlnetwork(layers, *example_inputs, initialize=True, rng=None, dtype=np.float32)``: the
    first layer is an input layer (``imageInputLayer``, ``featureInputLayer``,
    ``sequenceInputLayer``), or ``example_inputs`` (formatted dlarrays) give the input format
    and size, as MATLAB's ``dlnetwork(layers, X1)``.  ``initialize=False`` makes an
    uninitialised network (values ``None``) for :func:`initialize`.  Unnamed layers get MATLAB's
    names ("conv_1", "batchnorm_1", "fc", ...).

    Attributes: ``layers``, ``learnables`` and ``state`` (:class:`Table`; assignable, e.g.
    ``net.state = state`` after :meth:`forward`), ``input_names``, ``output_names``,
    ``initialized``.  Learnable values are unformatted dlarrays (float32 by default) in MATLAB's
    layout.  ``forward``/``predict``/``initialize`` are methods and module functions.

    Each network owns its two tables: the networks that updates, ``initialize``,
    ``resetState`` and ``copy.copy`` make get their own, and assigning ``net.learnables =
    T`` stores a copy of ``T``.  ``net.learnables`` returns the network's own table, so
    ``net.learnables[idx] = rows`` (Table row assignment) changes this network only.
    """

    __slots__ = ("_layers", "_learnables", "_state", "_input", "initialized", "dtype")

    def __copy__(self) -> dlnetwork:
        return self._copy()

    def __init__(
        self,
        layers: Layer | Sequence[Layer],
        *example_inputs: Any,
        initialize: bool = True,
        rng: Any = None,
        dtype: Any = np.float32,
    ) -> None:
        if isinstance(layers, Layer):
            layers = [layers]
        layers = list(layers)
        if not layers:
            raise ValueError("dlnetwork: give at least one layer")
        for k, ly in enumerate(layers):
            if not isinstance(ly, Layer):
                raise TypeError(
                    f"dlnetwork: item {k} is a {type(ly).__name__}, not a layer; build layers with "
                    "imageInputLayer, convolution2dLayer, fullyConnectedLayer, ..."
                )
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"dlnetwork: dtype must be float32 or float64, got {dt}")
        self.dtype = dt
        self._layers = _named(layers)
        for ly in self._layers[1:]:
            if ly.is_input:
                raise ValueError(f"dlnetwork: input layer {ly.name!r} must come first")
        self._input = None  # (format, batch-first example shape without N, T=1 for sequences)
        first = self._layers[0]
        if first.is_input:
            if example_inputs:
                raise ValueError(
                    "dlnetwork: give example inputs only for networks without an input layer"
                )
            self._input = (first.fmt, tuple(1 if s is None else s for s in first._obs_shape()))
        elif example_inputs:
            self._input = _spec_from_example(example_inputs)
        self._learnables = Table(
            [ly.name for ly in self._layers for _ in ly.learnable_names],
            [p for ly in self._layers for p in ly.learnable_names],
            [None] * sum(len(ly.learnable_names) for ly in self._layers),
        )
        self._state = Table(
            [ly.name for ly in self._layers for _ in ly.state_names],
            [p for ly in self._layers for p in ly.state_names],
            [None] * sum(len(ly.state_names) for ly in self._layers),
        )
        self.initialized = False
        if initialize:
            if self._input is None:
                raise ValueError(
                    "dlnetwork: the network has no input layer, so it cannot be initialised "
                    "without example inputs: dlnetwork(layers, dlarray(X, 'SSCB')), or "
                    "dlnetwork(layers, initialize=False) and initialize(net, X) later"
                )
            self._init(_generator(rng))

    # -- construction ---------------------------------------------------------------------
    def _copy(self, learnables: Table | None = None, state: Table | None = None) -> dlnetwork:
        net = object.__new__(dlnetwork)
        net._layers = self._layers
        # each network owns its tables, so an in-place row assignment on one never shows in
        # another (copying the three column lists is cheap: the arrays are shared)
        net._learnables = (self._learnables if learnables is None else learnables).copy()
        net._state = (self._state if state is None else state).copy()
        net._input = self._input
        net.initialized = self.initialized
        net.dtype = self.dtype
        return net

    def _init(self, g: np.random.Generator) -> None:
        fmt, shape = self._input
        x = np.zeros((1,) + tuple(shape), self.dtype)
        lvals = list(self._learnables.value)
        svals = list(self._state.value)
        li = si = 0
        for ly in self._layers:
            nl, ns = len(ly.learnable_names), len(ly.state_names)
            have = all(v is not None for v in lvals[li : li + nl] + svals[si : si + ns])
            if not have:
                learn, state = ly._init(g, x, fmt, self.dtype)
                for k, p in enumerate(ly.learnable_names):
                    if lvals[li + k] is None:
                        lvals[li + k] = _wrap(np.asarray(learn[p]), "")
                for k, p in enumerate(ly.state_names):
                    if svals[si + k] is None:
                        svals[si + k] = _wrap(np.asarray(state[p]), "")
            elif ly.is_input:
                ly._init(g, x, fmt, self.dtype)
            lv = {p: lvals[li + k]._value for k, p in enumerate(ly.learnable_names)}
            sv = {p: svals[si + k]._value for k, p in enumerate(ly.state_names)}
            x, fmt, _ = ly._apply(lv, sv, x, fmt, False, None)
            x = np.asarray(x)
            li += nl
            si += ns
        self._learnables = self._learnables.with_values(lvals)
        self._state = self._state.with_values(svals)
        self.initialized = True

    # -- attributes -----------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers (MATLAB's ``net.Layers``), named."""
        return list(self._layers)

    @property
    def learnables(self) -> Table:
        """The learnable parameters: a :class:`Table` of (layer, parameter, value)."""
        return self._learnables

    @learnables.setter
    def learnables(self, table: Table) -> None:
        self._learnables = self._checked(table, self._learnables, "learnables")

    @property
    def state(self) -> Table:
        """The state (batch-norm statistics, recurrent states): a :class:`Table`."""
        return self._state

    @state.setter
    def state(self, table: Table) -> None:
        self._state = self._checked(table, self._state, "state")

    def _checked(self, table: Any, current: Table, what: str) -> Table:
        if not isinstance(table, Table):
            raise TypeError(
                f"dlnetwork.{what} must be a Table (as forward returns), got {type(table).__name__}"
            )
        if table.layer != current.layer or table.parameter != current.parameter:
            raise ValueError(
                f"dlnetwork.{what}: the table's (layer, parameter) rows must be the network's: "
                f"{list(zip(current.layer, current.parameter))}"
            )
        return table.with_values([None if v is None else _as_learnable(v) for v in table.value])

    @property
    def input_names(self) -> list[str]:
        """The input layer's name (MATLAB's ``InputNames``)."""
        return [self._layers[0].name]

    @property
    def output_names(self) -> list[str]:
        """The last layer's name (MATLAB's ``OutputNames``)."""
        return [self._layers[-1].name]

    def _map_dlarrays(self, fn: Callable[[dlarray], Any]) -> dlnetwork:
        """A copy with ``fn`` applied to every learnable and state dlarray (the container
        protocol of ``dlfeval``/``dlgradient``)."""
        return self._copy(self._learnables._map_dlarrays(fn), self._state._map_dlarrays(fn))

    def learn_rate_factor(self, layer: str, parameter: str) -> float:
        """MATLAB's ``getLearnRateFactor(net, layer, parameter)``."""
        for ly in self._layers:
            if ly.name == layer:
                return ly.learn_rate_factor(parameter)
        raise KeyError(f"dlnetwork: no layer named {layer!r}")

    # -- running --------------------------------------------------------------------------
    def _enter(self, X: Any, data_format: str | None) -> tuple[Any, str]:
        if isinstance(X, dlarray) and X._fmt:
            if data_format is not None and data_format != X._fmt:
                raise ValueError(
                    f"dlnetwork: the input is formatted {X._fmt!r}; data_format={data_format!r} "
                    "applies only to unformatted input"
                )
            v, fmt = X._value, X._fmt
        else:
            raw = X._value if isinstance(X, dlarray) else X
            if not isinstance(raw, Tracer):
                raw = np.asarray(raw)
            fmt = (
                data_format
                if data_format is not None
                else (self._input[0] if self._input else None)
            )
            if fmt is None:
                raise ValueError("dlnetwork: give a formatted dlarray or data_format=")
            d = dlarray(raw, fmt)
            v, fmt = d._value, d._fmt
        _check_format(fmt, "dlnetwork")
        if self._input is not None and fmt != self._input[0]:
            raise ValueError(f"dlnetwork: the network takes {self._input[0]!r} data, got {fmt!r}")
        dt = np.result_type(primal_value(v))
        if dt != self.dtype and dt.kind in "fb":
            v = v.astype(self.dtype) if not isinstance(v, Tracer) else wnp.astype(v, self.dtype)
        return _to_internal(v, fmt), fmt

    def _run(self, X, training, outputs, data_format, rng):
        if not self.initialized:
            raise RuntimeError(
                "dlnetwork: the network is not initialised; net = initialize(net) (with example "
                "inputs if it has no input layer)"
            )
        if isinstance(outputs, str):
            outputs = [outputs]
        names = [ly.name for ly in self._layers]
        want = list(outputs) if outputs is not None else [names[-1]]
        for w in want:
            if w not in names:
                raise ValueError(f"dlnetwork: no layer named {w!r}; layers are {names}")
        x, fmt = self._enter(X, data_format)
        g = _generator(rng) if training else None
        lvals = self._learnables.value
        svals = list(self._state.value)
        got: dict[str, dlarray] = {}
        li = si = 0
        last = max(names.index(w) for w in want)
        for ly in self._layers[: last + 1]:
            nl, ns = len(ly.learnable_names), len(ly.state_names)
            lv = {p: _data(lvals[li + j]) for j, p in enumerate(ly.learnable_names)}
            sv = {p: _data(svals[si + j]) for j, p in enumerate(ly.state_names)}
            x, fmt, new = ly._apply(lv, sv, x, fmt, training, g)
            if new:
                for j, p in enumerate(ly.state_names):
                    svals[si + j] = _wrap(np.asarray(new[p]), "")
            if ly.name in want:
                got[ly.name] = _wrap(_from_internal(x, fmt), fmt)
            li += nl
            si += ns
        ys = tuple(got[w] for w in want)
        return ys, self._state.with_values(svals)

    def forward(
        self, X: Any, *, outputs: Sequence[str] | str | None = None,
        data_format: str | None = None, rng: Any = None,
    ) -> tuple:  # fmt: skip
        """MATLAB's ``[Y, state] = forward(net, X)``: training behaviour (batch statistics,
        dropout drawing from ``rng`` or the global generator).  Returns ``(Y, state)``, or
        ``(Y1, ..., Yk, state)`` for ``outputs=[names]``.  ``X`` is a formatted dlarray in the
        input layer's format, or unformatted data with ``data_format`` (default: the input
        layer's format).  ``net`` itself is unchanged; keep the state with ``net.state = state``.
        """
        ys, state = self._run(X, True, outputs, data_format, rng)
        return (*ys, state)

    def predict(
        self, X: Any, *, outputs: Sequence[str] | str | None = None,
        data_format: str | None = None, return_state: bool = False,
    ) -> Any:  # fmt: skip
        """MATLAB's ``Y = predict(net, X)``: inference behaviour (trained statistics, no
        dropout).  ``Y``, or a tuple for several ``outputs``; ``return_state=True`` appends the
        updated state (recurrent states), as MATLAB's ``[Y, state] = predict(net, X)``."""
        ys, state = self._run(X, False, outputs, data_format, None)
        if return_state:
            return (*ys, state)
        return ys[0] if len(ys) == 1 else ys

    def initialize(self, *example_inputs: Any, rng: Any = None) -> dlnetwork:
        """MATLAB's ``net = initialize(net)``: a network with every empty learnable and state
        value initialised (the others kept); ``example_inputs`` give the input format and size
        of a network without an input layer."""
        net = self._copy()
        net._layers = [copy.copy(ly) for ly in self._layers]  # input statistics are set in place
        if example_inputs:
            spec = _spec_from_example(example_inputs)
            if self._input is not None and spec[0] != self._input[0]:
                raise ValueError(
                    f"initialize: the network takes {self._input[0]!r} data, got {spec[0]!r}"
                )
            if net._input is None or not net._layers[0].is_input:
                net._input = spec
        if net._input is None:
            raise ValueError("initialize: the network has no input layer; pass an example input")
        net._init(_generator(rng))
        return net

    # -- display --------------------------------------------------------------------------
    def __repr__(self) -> str:
        n = sum(
            int(np.size(primal_value(v._value))) for v in self._learnables.value if v is not None
        )
        head = (
            f"dlnetwork with {len(self._layers)} layers, {n} learnable values"
            f"{'' if self.initialized else ' (not initialised)'}"
        )
        w = max(len(ly.name) for ly in self._layers)
        lines = [head] + [
            f"  {k + 1:>2}  {ly.name.ljust(w)}  {ly!r}" for k, ly in enumerate(self._layers)
        ]
        return "\n".join(lines)


def _spec_from_example(xs: Sequence[Any]) -> tuple[str, tuple]:
    if len(xs) != 1:
        raise ValueError(
            "dlnetwork: only single-input layer arrays are supported; give one example"
        )
    X = xs[0]
    if not (isinstance(X, dlarray) and X._fmt):
        raise ValueError(
            "dlnetwork: an example input must be a formatted dlarray, e.g. dlarray(X, 'CB')"
        )
    _check_format(X._fmt, "dlnetwork")
    x = _to_internal(np.asarray(primal_value(X._value)), X._fmt)
    shape = tuple(x.shape[1:])
    if X._fmt == "CBT":
        shape = (1,) + shape[1:]
    return X._fmt, shape


register_pytree_node(
    dlnetwork,
    lambda n: ([n._learnables, n._state], (n._layers, n._input, n.initialized, n.dtype)),
    lambda aux, ch: _rebuild(aux, ch),
)


def _rebuild(aux, children) -> dlnetwork:
    net = object.__new__(dlnetwork)
    net._layers, net._input, net.initialized, net.dtype = aux
    net._learnables, net._state = (c.copy() if isinstance(c, Table) else c for c in children)
    return net


def forward(net: dlnetwork, X: Any, **options: Any) -> tuple:
    """MATLAB's ``[Y, state] = forward(net, X)`` (see :meth:`dlnetwork.forward`)."""
    return _check_net(net, "forward").forward(X, **options)


def predict(net: dlnetwork, X: Any, **options: Any) -> Any:
    """MATLAB's ``Y = predict(net, X)`` (see :meth:`dlnetwork.predict`)."""
    return _check_net(net, "predict").predict(X, **options)


def initialize(net: dlnetwork, *example_inputs: Any, rng: Any = None) -> dlnetwork:
    """MATLAB's ``net = initialize(net)`` (see :meth:`dlnetwork.initialize`)."""
    return _check_net(net, "initialize").initialize(*example_inputs, rng=rng)


def resetState(net: dlnetwork) -> dlnetwork:
    """MATLAB's ``net = resetState(net)``: the recurrent layers' states (HiddenState,
    CellState) back to their initial values (the layer's given ``hidden_state``/``cell_state``
    or zeros, H×1); batch-norm statistics are kept."""
    net = _check_net(net, "resetState")
    vals = list(net.state.value)
    k = 0
    for ly in net._layers:
        for p in ly.state_names:
            if isinstance(ly, _Recurrent):
                given = ly._given.get(p)
                h = ly.num_hidden_units
                a = np.zeros((h, 1), net.dtype) if given is None else np.asarray(given, net.dtype)
                vals[k] = _wrap(a.copy(), "")
            k += 1
    return net._copy(state=net.state.with_values(vals))


def _check_net(net: Any, who: str) -> dlnetwork:
    if not isinstance(net, dlnetwork):
        raise TypeError(f"{who}: expected a dlnetwork, got {type(net).__name__}")
    return net
