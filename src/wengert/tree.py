"""Pytrees: nested containers (tuple, list, dict, namedtuple, dataclass, None) of array leaves.

Transformations flatten their inputs and outputs to a list of leaves plus a ``TreeDef`` that
rebuilds the same structure, so a gradient has exactly the structure of its input.  ``None``
is a container with no leaves (it comes back as ``None``).  Plain dicts list their leaves in
sorted-key order, so dicts with the same keys have the same structure whatever their
insertion order (rebuilt dicts keep their own order).  Other container types join with
:func:`register_pytree_node`.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "TreeDef",
    "tree_flatten",
    "tree_unflatten",
    "tree_map",
    "tree_leaves",
    "tree_structure",
    "register_pytree_node",
    "keystr",
]

# type -> (flatten(x) -> (children, aux), unflatten(aux, children) -> x)
_registry: dict[type, tuple[Callable, Callable]] = {}


def register_pytree_node(
    cls: type,
    flatten: Callable[[Any], tuple[Iterable, Any]],
    unflatten: Callable[[Any, list], Any],
) -> None:
    """Make instances of ``cls`` containers: ``flatten(x) -> (children, aux)`` and
    ``unflatten(aux, children) -> x``."""
    _registry[cls] = (flatten, unflatten)


class _DictAux:
    """How a dict was flattened: its type, its keys in leaf order, its keys in its own order.

    Plain dicts put their leaves in sorted-key order, so two dicts with the same keys have the
    same structure whatever order they were built in (a cotangent built as ``{'b': .., 'a': ..}``
    matches an output ``{'a': .., 'b': ..}``); rebuilding keeps the original order.
    Ordered dicts keep their own order, which is part of their structure.
    """

    __slots__ = ("cls", "keys", "order", "factory")

    def __init__(self, cls, keys, order, factory=None):
        self.cls = cls
        self.keys = keys
        self.order = order
        self.factory = factory

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _DictAux):
            return NotImplemented
        return self.cls is other.cls and self.keys == other.keys

    def __hash__(self) -> int:
        return hash((self.cls, len(self.keys)))

    def __repr__(self) -> str:
        return f"{self.cls.__name__}{list(self.keys)}"


def _dict_flatten(d):
    order = tuple(d.keys())
    keys = order
    if not isinstance(d, OrderedDict):
        try:
            keys = tuple(sorted(order))
        except TypeError:  # keys of mixed types: keep the dict's own order
            pass
    factory = d.default_factory if isinstance(d, defaultdict) else None
    return [d[k] for k in keys], _DictAux(type(d), keys, order, factory)


def _dict_unflatten(aux, children):
    values = dict(zip(aux.keys, children))
    out = {k: values[k] for k in aux.order}
    if aux.cls is dict:
        return out
    if issubclass(aux.cls, defaultdict):
        return aux.cls(aux.factory, out)
    return aux.cls(out)


register_pytree_node(tuple, lambda t: (list(t), None), lambda _, c: tuple(c))
register_pytree_node(list, lambda t: (list(t), None), lambda _, c: list(c))
register_pytree_node(dict, _dict_flatten, _dict_unflatten)
register_pytree_node(type(None), lambda t: ([], None), lambda _, c: None)


def _node_type(x: Any):
    """The (flatten, unflatten) pair for container ``x``, or None for a leaf."""
    cls = type(x)
    entry = _registry.get(cls)
    if entry is not None:
        return entry
    if isinstance(x, tuple) and hasattr(cls, "_fields"):  # namedtuple
        return (lambda t: (list(t), None), lambda _, c, cls=cls: cls(*c))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        names = tuple(f.name for f in dataclasses.fields(x) if f.init)

        def flat(obj, names=names):
            return [getattr(obj, n) for n in names], None

        def unflat(_, children, cls=cls, names=names):
            return cls(**dict(zip(names, children)))

        return (flat, unflat)
    if isinstance(x, dict):  # OrderedDict, defaultdict subclasses
        return (_dict_flatten, _dict_unflatten)
    return None


class TreeDef:
    """The shape of a pytree with its leaves taken out."""

    __slots__ = ("kind", "aux", "children", "num_leaves")

    def __init__(self, kind, aux, children, num_leaves):
        self.kind = kind  # None for a leaf, else (flatten, type, unflatten)
        self.aux = aux
        self.children = children
        self.num_leaves = num_leaves

    def child_keys(self) -> list[str]:
        """How each child is reached: ``'w'`` for dict keys, ``.name`` for fields, ``0`` for
        positions (computed on demand: flattening itself never builds strings)."""
        cls = self.kind[1]
        if isinstance(self.aux, _DictAux):
            return [repr(k) for k in self.aux.keys]
        if dataclasses.is_dataclass(cls):
            return ["." + f.name for f in dataclasses.fields(cls) if f.init]
        if issubclass(cls, tuple) and hasattr(cls, "_fields"):
            return ["." + nm for nm in cls._fields]
        return [str(i) for i in range(len(self.children))]

    def unflatten(self, leaves: Iterable) -> Any:
        """Rebuild the structure with ``leaves`` in place of the original leaves."""
        it = iter(leaves)
        out = self._build(it)
        return out

    def _build(self, it):
        if self.kind is None:
            return next(it)
        _, cls, unflatten = self.kind
        return unflatten(self.aux, [c._build(it) for c in self.children])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TreeDef):
            return NotImplemented
        if (self.kind is None) != (other.kind is None):
            return False
        if self.kind is None:
            return True
        return (
            self.kind[1] is other.kind[1]
            and _aux_eq(self.aux, other.aux)
            and len(self.children) == len(other.children)
            and all(a == b for a, b in zip(self.children, other.children))
        )

    def __hash__(self) -> int:
        return hash((None if self.kind is None else self.kind[1], self.num_leaves))

    def __repr__(self) -> str:
        if self.kind is None:
            return "*"
        if self.kind[1] is type(None):
            return "None"
        name = self.kind[1].__name__
        if isinstance(self.aux, _DictAux):
            body = ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.aux.keys, self.children))
            return f"{name}{{{body}}}"
        keys = self.child_keys()
        if keys and all(k.startswith(".") for k in keys):
            body = ", ".join(f"{k[1:]}={c!r}" for k, c in zip(keys, self.children))
            return f"{name}({body})"
        return f"{name}[{', '.join(map(repr, self.children))}]"


def _aux_eq(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b


_LEAF = TreeDef(None, None, (), 1)


def _flatten(x: Any, leaves: list) -> TreeDef:
    node = _node_type(x)
    if node is None:
        leaves.append(x)
        return _LEAF
    flatten, unflatten = node
    children, aux = flatten(x)
    subs = tuple(_flatten(c, leaves) for c in children)
    return TreeDef((flatten, type(x), unflatten), aux, subs, sum(s.num_leaves for s in subs))


def tree_flatten(x: Any) -> tuple[list, TreeDef]:
    """Split ``x`` into its list of leaves and the structure that holds them."""
    leaves: list = []
    treedef = _flatten(x, leaves)
    return leaves, treedef


def tree_unflatten(treedef: TreeDef, leaves: Iterable) -> Any:
    """Inverse of :func:`tree_flatten`."""
    return treedef.unflatten(leaves)


def tree_leaves(x: Any) -> list:
    """The leaves of ``x`` in flattening order."""
    return tree_flatten(x)[0]


def tree_structure(x: Any) -> TreeDef:
    """The structure of ``x`` without its leaves."""
    return tree_flatten(x)[1]


def tree_map(f: Callable, x: Any, *rest: Any) -> Any:
    """Apply ``f`` leaf-wise to ``x`` (and to the matching leaves of ``rest``)."""
    leaves, treedef = tree_flatten(x)
    others = [tree_flatten(r)[0] for r in rest]
    for o in others:
        if len(o) != len(leaves):
            raise ValueError(f"tree_map: structures differ ({len(leaves)} leaves against {len(o)})")
    return treedef.unflatten(f(*xs) for xs in zip(leaves, *others))


def leaf_paths(treedef: TreeDef) -> list[str]:
    """Human-readable paths of the leaves, e.g. ``['w']``, ``[0].b``."""
    out: list[str] = []

    def walk(t: TreeDef, path: tuple):
        if t.kind is None:
            out.append(keystr(path))
        else:
            for c, k in zip(t.children, t.child_keys()):
                walk(c, path + (k,))

    walk(treedef, ())
    return out


def keystr(path: tuple) -> str:
    """Write a leaf path as indexing: ``('0', "'w'")`` becomes ``[0]['w']``."""
    return "".join(p if p.startswith(".") else f"[{p}]" for p in path)
