"""MATLAB's ``save``/``load`` for the dlarray workflow: dlnetworks (layers, learnables, state),
Tables, dlarrays with their formats, lbfgsState, containers, numbers and arrays in one ``.npz``
file, written atomically by :func:`wengert.nn.io.atomic_write`.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from wengert.core import Tracer
from wengert.dl._dlarray import _wrap, dlarray
from wengert.dl._network import Layer, Table, dlnetwork
from wengert.nn.io import atomic_write

__all__ = ["save", "load"]

_FORMAT = "wengert.dl.save/1"
_META = "__wengert_dl__"

# Objects are rebuilt (without running any constructor) only from classes defined in these
# modules, and function references resolve only to functions defined in these: a file can name
# nothing else, so loading it runs no code of its own unless it holds pickles (allow_pickle).
_CLASS_MODULES = frozenset({"wengert.dl._network", "wengert.dl._update", "wengert.nn.layers"})
_FUNCTION_MODULES = ("wengert.nn.init", "wengert.nn.functional", "wengert.nn.losses")
_ARRAY_KINDS = "biufcUSmM"  # numbers, bools, text, dates: stored without pickling


def _function_module_ok(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in _FUNCTION_MODULES)


def _resolve(module: str, qualname: str) -> Any:
    """The object ``module.qualname``, imported only from wengert's allow-listed modules."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class _LostInitializer:
    """Stands in, after :func:`load`, for a layer initializer function that could not be
    stored (a lambda or a local function): calling it says so.  Initializers run only for
    learnables that have no value yet, so an initialised network never calls it."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"this initializer ({self.what}) was a function that wengert.dl.save could not "
            "store; give the layer an initializer again (or values) before initialising it"
        )

    def __repr__(self) -> str:
        return f"<lost initializer {self.what}>"


# ---------------------------------------------------------------------------------------------
# Encoding: objects -> (JSON nodes, list of arrays)
# ---------------------------------------------------------------------------------------------


class _Encoder:
    def __init__(self, allow_pickle: bool) -> None:
        self.allow_pickle = allow_pickle
        self.arrays: list[np.ndarray] = []
        self.active: set[int] = set()
        self.pickled = False

    def leaf(self, a: np.ndarray) -> int:
        self.arrays.append(a)
        return len(self.arrays) - 1

    def refuse(self, obj: Any, where: str, why: str) -> dict:
        if self.allow_pickle:
            try:
                blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as e:  # noqa: BLE001 - any pickling failure is reported the same way
                raise TypeError(
                    f"save: cannot store the {type(obj).__name__} at {where} ({why}), and pickle "
                    f"cannot either ({type(e).__name__}: {e}); define it at module level, or "
                    "leave it out"
                ) from None
            self.pickled = True
            return {"t": "pickle", "i": self.leaf(np.frombuffer(blob, np.uint8).copy())}
        raise TypeError(
            f"save: cannot store the {type(obj).__name__} at {where} ({why}) without pickling; "
            "pass allow_pickle=True to pickle it (loading then needs allow_pickle=True too, and "
            "unpickling runs code named in the file: only load such files from sources you trust)"
        )

    def node(self, obj: Any, where: str) -> dict:
        if obj is None:
            return {"t": "none"}
        t = type(obj)
        if t is bool:
            return {"t": "bool", "v": obj}
        if t is int:
            return {"t": "int", "v": obj}
        if t is float:
            return {"t": "float", "v": obj.hex()}
        if t is complex:
            return {"t": "complex", "re": obj.real.hex(), "im": obj.imag.hex()}
        if t is str:
            return {"t": "str", "v": obj}
        if isinstance(obj, Tracer):
            raise TypeError(
                f"save: the value at {where} is being traced; save outside dlfeval, or save "
                "extractdata(x)"
            )
        if isinstance(obj, (np.ndarray, np.generic)):
            a = np.asarray(obj)
            if a.dtype.kind not in _ARRAY_KINDS:
                return self.refuse(obj, where, f"an array of dtype {a.dtype}")
            return {"t": "nd" if isinstance(obj, np.ndarray) else "np", "i": self.leaf(a)}
        if isinstance(obj, np.dtype):
            if obj.kind not in _ARRAY_KINDS:
                return self.refuse(obj, where, f"dtype {obj}")
            return {"t": "dtype", "v": obj.str}
        k = id(obj)
        if k in self.active:
            raise ValueError(f"save: {where} contains itself (a cycle); it cannot be stored")
        self.active.add(k)
        try:
            return self.container(obj, where)
        finally:
            self.active.discard(k)

    def container(self, obj: Any, where: str) -> dict:
        t = type(obj)
        if t is dlarray:
            if isinstance(obj._value, Tracer):
                raise TypeError(
                    f"save: the dlarray at {where} is being traced; save outside dlfeval, or "
                    "save extractdata(x)"
                )
            return {"t": "dlarray", "fmt": obj._fmt, "v": self.node(obj._value, where)}
        if t is Table:
            return {
                "t": "table",
                "layer": list(obj.layer),
                "parameter": list(obj.parameter),
                "c": [
                    self.node(v, f"{where}[{a!r}, {b!r}]")
                    for a, b, v in zip(obj.layer, obj.parameter, obj.value)
                ],
            }
        if t is dlnetwork:
            return {
                "t": "dlnetwork",
                "layers": [
                    self.node(ly, f"{where}.layers[{i}] ({ly.name!r})")
                    for i, ly in enumerate(obj._layers)
                ],
                "learnables": self.node(obj._learnables, f"{where}.learnables"),
                "state": self.node(obj._state, f"{where}.state"),
                "input": self.node(obj._input, f"{where} input"),
                "initialized": bool(obj.initialized),
                "dtype": obj.dtype.str,
            }
        if t is dict:
            keys, vals = [], []
            for key, v in obj.items():
                keys.append(self.node(key, f"{where} key {key!r}"))
                vals.append(self.node(v, f"{where}[{key!r}]"))
            return {"t": "dict", "k": keys, "c": vals}
        if t is list or t is tuple:
            return {
                "t": t.__name__,
                "c": [self.node(v, f"{where}[{i}]") for i, v in enumerate(obj)],
            }
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
            mod, qn = getattr(obj, "__module__", None) or "", obj.__qualname__
            if _function_module_ok(mod) and "<" not in qn:
                try:
                    same = _resolve(mod, qn) is obj
                except (ImportError, AttributeError):
                    same = False
                if same:
                    return {"t": "fn", "module": mod, "name": qn}
            return self.refuse(obj, where, f"the function {qn!r} of module {mod!r}")
        if t.__module__ in _CLASS_MODULES and "<" not in t.__qualname__:
            if isinstance(obj, tuple):  # a namedtuple such as Table's Row
                return {
                    "t": "namedtuple",
                    "module": t.__module__,
                    "name": t.__qualname__,
                    "c": [self.node(v, f"{where}.{f}") for f, v in zip(t._fields, obj)],
                }
            if isinstance(obj, type) or not _plain_instance(obj):
                return self.refuse(obj, where, "not a plain object")
            return self.instance(obj, where)
        if isinstance(obj, _LostInitializer):
            return {"t": "lost", "v": obj.what}
        return self.refuse(obj, where, "not a type wengert.dl.save stores")

    def instance(self, obj: Any, where: str) -> dict:
        t = type(obj)
        d = {}
        for name, v in vars(obj).items() if hasattr(obj, "__dict__") else ():
            if name == "_initializers" and isinstance(obj, Layer) and isinstance(v, dict):
                d[name] = self.initializers(v, f"{where}.{name}")
            else:
                d[name] = self.node(v, f"{where}.{name}")
        s = {}
        for cls in t.__mro__:
            for name in getattr(cls, "__slots__", ()):
                if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                    s[name] = self.node(getattr(obj, name), f"{where}.{name}")
        return {"t": "obj", "module": t.__module__, "name": t.__qualname__, "d": d, "s": s}

    def initializers(self, inits: dict, where: str) -> dict:
        """A layer's initializers: names, wengert functions, or (for functions that cannot be
        stored, e.g. lambdas) a stand-in that explains itself if ever called."""
        keys, vals = [], []
        for key, v in inits.items():
            keys.append(self.node(key, where))
            try:
                vals.append(self.node(v, f"{where}[{key!r}]"))
            except TypeError:
                if not callable(v):
                    raise
                vals.append({"t": "lost", "v": f"{key} {getattr(v, '__qualname__', repr(v))}"})
        return {"t": "dict", "k": keys, "c": vals}


def _plain_instance(obj: Any) -> bool:
    """True for an object whose state is its attributes (no custom pickling protocol)."""
    t = type(obj)
    return not any(
        getattr(t, m, None) is not getattr(object, m, None)
        for m in ("__reduce__", "__reduce_ex__", "__getnewargs__", "__getnewargs_ex__")
    )


# ---------------------------------------------------------------------------------------------
# Decoding: (JSON nodes, arrays) -> objects
# ---------------------------------------------------------------------------------------------


class _Decoder:
    def __init__(self, arrays: Callable[[int], np.ndarray], allow_pickle: bool, path: str):
        self.arrays = arrays
        self.allow_pickle = allow_pickle
        self.path = path

    def bad(self, why: str) -> ValueError:
        return ValueError(f"load: {self.path} is damaged or not written by wengert.dl.save ({why})")

    def node(self, n: dict) -> Any:
        t = n.get("t")
        if t == "none":
            return None
        if t in ("bool", "int", "str"):
            return {"bool": bool, "int": int, "str": str}[t](n["v"])
        if t == "float":
            return float.fromhex(n["v"])
        if t == "complex":
            return complex(float.fromhex(n["re"]), float.fromhex(n["im"]))
        if t == "nd":
            return self.arrays(n["i"])
        if t == "np":
            return self.arrays(n["i"])[()]
        if t == "dtype":
            return np.dtype(n["v"])
        if t == "list":
            return [self.node(c) for c in n["c"]]
        if t == "tuple":
            return tuple(self.node(c) for c in n["c"])
        if t == "dict":
            return {self.node(k): self.node(c) for k, c in zip(n["k"], n["c"])}
        if t == "dlarray":
            return self.dlarray(n)
        if t == "table":
            vals = [self.node(c) for c in n["c"]]
            try:
                return Table(n["layer"], n["parameter"], vals)
            except ValueError as e:
                raise self.bad(str(e)) from None
        if t == "dlnetwork":
            return self.network(n)
        if t == "fn":
            if not _function_module_ok(n["module"]):
                raise self.bad(f"a function of module {n['module']!r} is not allowed")
            return _resolve(n["module"], n["name"])
        if t == "namedtuple":
            cls = self.cls(n)
            return cls(*(self.node(c) for c in n["c"]))
        if t == "obj":
            return self.instance(n)
        if t == "lost":
            return _LostInitializer(str(n["v"]))
        if t == "pickle":
            if not self.allow_pickle:
                raise ValueError(
                    f"load: {self.path} holds pickled objects; load(path, allow_pickle=True) "
                    "unpickles them, which runs code named in the file: do it only for files "
                    "from sources you trust"
                )
            return pickle.loads(self.arrays(n["i"]).tobytes())
        raise self.bad(f"unknown entry type {t!r}")

    def cls(self, n: dict) -> type:
        if n.get("module") not in _CLASS_MODULES:
            raise self.bad(f"objects of module {n.get('module')!r} are not allowed")
        try:
            cls = _resolve(n["module"], n["name"])
        except AttributeError:
            raise self.bad(f"no class {n['name']!r} in {n['module']}") from None
        if not isinstance(cls, type) or cls.__module__ != n["module"]:
            raise self.bad(f"{n['module']}.{n['name']} is not a class defined there")
        return cls

    def instance(self, n: dict) -> Any:
        cls = self.cls(n)
        obj = cls.__new__(cls)
        if n["d"]:
            if not hasattr(obj, "__dict__"):
                raise self.bad(f"{cls.__name__} objects have no attribute dictionary")
            obj.__dict__.update({k: self.node(v) for k, v in n["d"].items()})
        for k, v in n["s"].items():
            object.__setattr__(obj, k, self.node(v))
        return obj

    def dlarray(self, n: dict) -> dlarray:
        v = self.node(n["v"])
        fmt = n["fmt"]
        if not isinstance(v, np.ndarray):
            raise self.bad("a dlarray without array data")
        if fmt:
            try:
                d = dlarray(v, fmt)
            except (TypeError, ValueError) as e:
                raise self.bad(f"a dlarray with format {fmt!r}: {e}") from None
            if d._fmt != fmt or d._value.shape != v.shape:
                raise self.bad(f"the dlarray format {fmt!r} is not in canonical order")
            return d
        if v.dtype.kind not in "fcb":
            raise self.bad(f"a dlarray of dtype {v.dtype}")
        return _wrap(v, "")

    def network(self, n: dict) -> dlnetwork:
        layers = [self.node(c) for c in n["layers"]]
        if not layers or not all(isinstance(ly, Layer) for ly in layers):
            raise self.bad("a dlnetwork whose layers are not layers")
        learn, state = self.node(n["learnables"]), self.node(n["state"])
        for what, table, names in (
            ("learnables", learn, "learnable_names"),
            ("state", state, "state_names"),
        ):
            rows = [(ly.name, p) for ly in layers for p in getattr(ly, names)]
            if not isinstance(table, Table) or list(zip(table.layer, table.parameter)) != rows:
                raise self.bad(f"the network's {what} rows do not match its layers")
        inp = self.node(n["input"])
        net = object.__new__(dlnetwork)
        net._layers = layers
        net._learnables, net._state = learn, state
        net._input = inp
        net.initialized = bool(n["initialized"])
        net.dtype = np.dtype(n["dtype"])
        return net


# ---------------------------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------------------------


def _read(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        if _META not in z.files:
            hint = (
                " (a wengert.nn checkpoint: read it with wengert.nn.io.load_pytree)"
                if "__wengert_meta__" in z.files
                else ""
            )
            raise ValueError(f"load: {path} was not written by wengert.dl.save{hint}")
        meta = json.loads(str(z[_META][()]))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"load: {path} has format {meta.get('format')!r}, not {_FORMAT!r}")
        arrays = {k: z[k] for k in z.files if k != _META}
    return meta, arrays


def _shift(node: Any, offset: int) -> Any:
    """``node`` with every array index moved by ``offset`` (for ``append``)."""
    if isinstance(node, list):
        return [_shift(c, offset) for c in node]
    if not isinstance(node, dict):
        return node
    out = {k: _shift(v, offset) for k, v in node.items()}
    if node.get("t") in ("nd", "np", "pickle"):
        out["i"] = node["i"] + offset
    return out


def save(
    path: str | os.PathLike,
    variables: dict[str, Any] | None = None,
    /,
    *,
    append: bool = False,
    allow_pickle: bool = False,
    compress: bool = False,
    **named: Any,
) -> str:
    """MATLAB's ``save(filename, "net", "avgG", ...)``: ``save(path, net=net, avgG=avgG)``, or
    ``save(path, {"net": net, ...})`` (MATLAB's ``save(filename, "-struct", "s")``; any names).

    Stores exactly, in one ``.npz`` file (NumPy's format, whatever the extension; not a MATLAB
    ``.mat`` file): dlnetworks (their layers with every option, learnables, state, input format
    and size, dtype), Tables, dlarrays with their formats, lbfgsState, the MATLAB-style layers,
    dicts, lists, tuples, None, Python and NumPy numbers, text, and arrays (bytes and dtype
    kept).  Arrays are stored as ``.npy`` entries beside a JSON description of the containers;
    a layer is stored as its class (one of wengert's layer classes) and its attributes, and
    functions it holds (activations, initializers) by name when they are wengert's own.  A
    layer initializer that is a lambda or local function is replaced by a stand-in that
    raises if it is ever called (only uninitialised learnables call initializers).

    Anything else (a user-defined layer class, a normalization function of your own...) is an
    error unless ``allow_pickle=True``, which pickles it; such a file then loads only with
    ``load(path, allow_pickle=True)``, and unpickling runs code that the file names (as
    ``numpy.load(allow_pickle=True)``): load such files only from sources you trust.

    Variables named ``append``, ``allow_pickle`` or ``compress`` go in the dict form.
    ``append=True`` (MATLAB's ``-append``) keeps the variables already in ``path`` and adds or
    replaces these.  ``compress=True`` zips the arrays (``numpy.savez_compressed``).  The write
    is atomic (:func:`wengert.nn.io.atomic_write`): a failure or crash mid-save leaves the old
    file whole.  Values being traced (inside ``dlfeval``) cannot be saved.  Returns the path.
    """
    allv: dict[str, Any] = {}
    if variables is not None:
        if not isinstance(variables, dict):
            raise TypeError(
                "save: the second argument is a dict of variables (or name them: "
                "save(path, net=net))"
            )
        allv.update(variables)
    clash = sorted(set(allv) & set(named))
    if clash:
        raise ValueError(f"save: {clash} given both in the dict and as keywords")
    allv.update(named)
    if not allv:
        raise ValueError("save: give the variables to save, e.g. save(path, net=net)")
    for name in allv:
        if not isinstance(name, str) or not name:
            raise TypeError(f"save: variable names are non-empty strings, got {name!r}")
    path = os.fspath(path)
    enc = _Encoder(bool(allow_pickle))
    nodes = {name: enc.node(v, name) for name, v in allv.items()}
    arrays = list(enc.arrays)
    pickled = enc.pickled
    if append and os.path.exists(path):
        meta, old = _read(path)
        kept = {k: v for k, v in meta["variables"].items() if k not in nodes}
        off = len(arrays)
        nodes = {**{k: _shift(v, off) for k, v in kept.items()}, **nodes}
        arrays += [old[f"a{i}"] for i in range(meta["count"])]
        pickled = pickled or bool(meta.get("pickled"))
    meta = {"format": _FORMAT, "variables": nodes, "count": len(arrays), "pickled": pickled}
    entries = {f"a{i}": a for i, a in enumerate(arrays)}
    entries[_META] = np.array(json.dumps(meta))
    writer = np.savez_compressed if compress else np.savez

    def write(f: Any) -> None:
        writer(f, **entries)

    return atomic_write(path, write)


def load(path: str | os.PathLike, *names: str, allow_pickle: bool = False) -> dict[str, Any]:
    """MATLAB's ``S = load(filename)`` / ``S = load(filename, "net", ...)``: the variables
    stored by :func:`save` as a dict (in the order saved), or only those named.  The values
    come back as saved: a dlnetwork with its layers, learnables and state (predictions
    identical), Tables, dlarrays with their formats, exact arrays and numbers.

    No code from the file runs: layers are rebuilt from wengert's own classes without calling
    their constructors, functions are looked up among wengert's own.  A file holding pickles
    (``save(..., allow_pickle=True)``) needs ``allow_pickle=True`` here, and unpickling runs
    code that the file names: only for files from sources you trust.
    """
    path = os.fspath(path)
    meta, arrays = _read(path)
    stored = meta["variables"]
    missing = [k for k in names if k not in stored]
    if missing:
        raise KeyError(f"load: no variable(s) {missing} in {path}; it holds {list(stored)}")
    want = names or tuple(stored)

    def array(i: int) -> np.ndarray:
        try:
            return arrays[f"a{int(i)}"]
        except KeyError:
            raise ValueError(f"load: {path} is damaged (array a{i} is missing)") from None

    dec = _Decoder(array, bool(allow_pickle), path)
    return {k: dec.node(stored[k]) for k in want}
