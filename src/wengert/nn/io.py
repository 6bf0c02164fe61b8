"""Checkpoints: save and load networks, optimizer states and other pytrees as ``.npz`` files.

Each leaf is stored as its own array (exact bytes and dtype), beside a JSON description of the
containers (dicts, lists, tuples, None) and the leaves' key paths.  Writes are atomic: the
file is written to a temporary file in the same directory, flushed to disk (fsync) and moved
over the target with ``os.replace``, so a crash mid-save leaves the last good checkpoint whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from wengert.core import Tracer

__all__ = [
    "save_pytree",
    "load_pytree",
    "save_network",
    "load_network",
    "save_optimizer_state",
    "load_optimizer_state",
    "save_checkpoint",
    "load_checkpoint",
    "atomic_write",
]

_FORMAT = "wengert.nn.checkpoint/1"
_META = "__wengert_meta__"


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> str:
    """Call ``write(binary file)`` on a temporary file beside ``path``, fsync it, then
    ``os.replace`` it onto ``path`` (atomic on POSIX and Windows).  If ``write`` raises, the
    temporary file is removed and ``path`` is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return path
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dfd)
    return path


# ---------------------------------------------------------------------------------------------
# Pytrees <-> (JSON structure, list of arrays)
# ---------------------------------------------------------------------------------------------


def _encode(tree: Any, leaves: list, paths: list, path: str) -> dict:
    if tree is None:
        return {"t": "none"}
    if type(tree) is dict:
        keys, children = [], []
        for k, v in tree.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(
                    f"save: dict keys must be str or int to be stored, got {k!r} at {path or 'root'}"
                )
            keys.append(["s" if isinstance(k, str) else "i", k])
            children.append(_encode(v, leaves, paths, f"{path}[{k!r}]"))
        return {"t": "dict", "k": keys, "c": children}
    if type(tree) in (list, tuple):
        return {
            "t": type(tree).__name__,
            "c": [_encode(v, leaves, paths, f"{path}[{i}]") for i, v in enumerate(tree)],
        }
    if isinstance(tree, Tracer):
        raise TypeError(
            f"save: the leaf at {path or 'root'} is a traced value; save plain arrays "
            "(outside grad/jvp, or wengert.stop_gradient / primal_value first)"
        )
    node: dict = {"t": "leaf", "i": len(leaves)}
    if isinstance(tree, np.ndarray):
        arr = tree
    elif isinstance(tree, np.generic):
        arr = np.asarray(tree)
        node["scalar"] = True
    elif isinstance(tree, (bool, int, float, complex)):
        arr = np.asarray(tree)
        node["py"] = type(tree).__name__
    else:
        raise TypeError(
            f"save: cannot store a {type(tree).__name__} at {path or 'root'}; checkpoints hold "
            "dicts, lists, tuples and None of arrays and numbers (convert other containers first)"
        )
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"save: the leaf at {path or 'root'} has dtype {arr.dtype}, not numeric")
    leaves.append(arr)
    paths.append(path)
    return node


def _decode(node: dict, arrays: list) -> Any:
    t = node["t"]
    if t == "none":
        return None
    if t == "dict":
        return {k: _decode(c, arrays) for (_, k), c in zip(node["k"], node["c"])}
    if t in ("list", "tuple"):
        out = [_decode(c, arrays) for c in node["c"]]
        return out if t == "list" else tuple(out)
    a = arrays[node["i"]]
    if node.get("scalar"):
        return a[()]
    py = node.get("py")
    if py is not None:
        return {"bool": bool, "int": int, "float": float, "complex": complex}[py](a[()])
    return a


def save_pytree(
    path: str | os.PathLike, tree: Any, kind: str = "pytree", info: dict | None = None
) -> str:
    """Save a pytree of arrays and numbers (nested dicts with str/int keys, lists, tuples,
    None) to ``path`` (an ``.npz`` file, written atomically).  ``info`` is JSON-able metadata
    stored beside it."""
    leaves: list = []
    paths: list = []
    structure = _encode(tree, leaves, paths, "")
    meta = {"format": _FORMAT, "kind": kind, "structure": structure, "paths": paths}
    if info is not None:
        meta["info"] = info
    try:
        meta_json = json.dumps(meta)
    except TypeError as e:
        raise TypeError(f"save: info must be JSON-serialisable ({e})") from None
    arrays = {f"leaf_{i}": a for i, a in enumerate(leaves)}
    arrays[_META] = np.array(meta_json)

    def write(f):
        np.savez(f, **arrays)

    return atomic_write(path, write)


def _read(path: str | os.PathLike) -> tuple[dict, list]:
    path = os.fspath(path)
    with np.load(path, allow_pickle=False) as z:
        if _META not in z.files:
            raise ValueError(f"load: {path} is not a wengert checkpoint (no {_META} entry)")
        meta = json.loads(str(z[_META][()]))
        if meta.get("format") != _FORMAT:
            raise ValueError(
                f"load: {path} has format {meta.get('format')!r}, expected {_FORMAT!r}"
            )
        arrays = [z[f"leaf_{i}"] for i in range(len(meta["paths"]))]
    return meta, arrays


def load_pytree(path: str | os.PathLike, like: Any = None) -> Any:
    """Load a pytree saved by :func:`save_pytree`.  With ``like``, check that the loaded tree
    has the same key paths, shapes and dtypes (a clear error otherwise)."""
    meta, arrays = _read(path)
    tree = _decode(meta["structure"], arrays)
    if like is not None:
        _check_like(tree, like, os.fspath(path))
    return tree


def _describe(tree: Any) -> dict:
    leaves: list = []
    paths: list = []
    _encode(tree, leaves, paths, "")
    return {p: (np.shape(a), np.result_type(a)) for p, a in zip(paths, leaves)}


def _check_like(tree: Any, like: Any, where: str) -> None:
    got, want = _describe(tree), _describe(like)
    if got.keys() != want.keys():
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        raise ValueError(
            f"load: {where} does not match the expected structure: missing {missing}, "
            f"unexpected {extra}"
        )
    for p, (s, d) in want.items():
        if got[p] != (s, d):
            raise ValueError(
                f"load: {where}{p} has shape {got[p][0]} and dtype {got[p][1]}, expected shape "
                f"{s} and dtype {d}"
            )


# ---------------------------------------------------------------------------------------------
# Networks, optimizer states, checkpoints
# ---------------------------------------------------------------------------------------------


def save_network(path: str | os.PathLike, net: Any, info: dict | None = None) -> str:
    """Save a :class:`~wengert.nn.Network`'s learnables and state (``{"params", "state"}``).
    The architecture is code: load into a network built the same way (:func:`load_network`)."""
    extra = {"architecture": repr(net)}
    if info:
        extra.update(info)
    return save_pytree(path, {"params": net.params, "state": net.state}, "network", extra)


def load_network(path: str | os.PathLike, like: Any) -> Any:
    """``like`` with the learnables and state stored in ``path`` (shapes and dtypes checked)."""
    meta, arrays = _read(path)
    if meta["kind"] != "network":
        raise ValueError(f"load_network: {os.fspath(path)} holds a {meta['kind']}, not a network")
    tree = _decode(meta["structure"], arrays)
    _check_like(tree, {"params": like.params, "state": like.state}, os.fspath(path))
    return like.with_params(tree["params"]).with_state(tree["state"])


def save_optimizer_state(path: str | os.PathLike, state: Any, info: dict | None = None) -> str:
    """Save an optimizer state (a pytree of arrays) exactly."""
    return save_pytree(path, state, "optimizer_state", info)


def load_optimizer_state(path: str | os.PathLike, like: Any = None) -> Any:
    """Load an optimizer state; with ``like`` (e.g. ``opt.init(params)``) check its layout."""
    meta, arrays = _read(path)
    if meta["kind"] != "optimizer_state":
        raise ValueError(
            f"load_optimizer_state: {os.fspath(path)} holds a {meta['kind']}, not an optimizer state"
        )
    tree = _decode(meta["structure"], arrays)
    if like is not None:
        _check_like(tree, like, os.fspath(path))
    return tree


def save_checkpoint(
    path: str | os.PathLike,
    net: Any = None,
    opt_state: Any = None,
    info: dict | None = None,
    **extra: Any,
) -> str:
    """One atomic file with a network, an optimizer state and any other pytrees (``extra``,
    e.g. ``step=np.int64(100)``, ``rng_state=...``)."""
    tree: dict = {}
    if net is not None:
        tree["network"] = {"params": net.params, "state": net.state}
    if opt_state is not None:
        tree["opt_state"] = opt_state
    tree.update(extra)
    return save_pytree(path, tree, "checkpoint", info)


def load_checkpoint(path: str | os.PathLike, net: Any = None) -> dict:
    """The dict saved by :func:`save_checkpoint`; with ``net``, its ``"network"`` entry comes
    back as ``net`` with the stored learnables and state."""
    meta, arrays = _read(path)
    tree = _decode(meta["structure"], arrays)
    if net is not None:
        if "network" not in tree:
            raise ValueError(f"load_checkpoint: {os.fspath(path)} holds no network")
        stored = tree["network"]
        _check_like(stored, {"params": net.params, "state": net.state}, os.fspath(path))
        tree["network"] = net.with_params(stored["params"]).with_state(stored["state"])
    tree["info"] = meta.get("info")
    return tree
