"""The coverage registry: every public function of wengert.numpy (with linalg and fft) and
wengert.scipy, with its forward, reverse and higher-order support, found by inspection.

Names come from the namespaces (``__all__``), so new functions appear by themselves.  A
primitive's support is read off its rules; a composite's from the primitives its code can
reach (names it uses, closures, helpers, operators on arrays).  ``docs/coverage.md`` is this
module's :func:`table`; ``tools/gen_coverage.py`` writes it.  Not imported by ``wengert``.
"""

from __future__ import annotations

import dis
import functools
import importlib
import inspect
import types
from dataclasses import dataclass, field
from typing import Any

from wengert.core import Primitive

__all__ = ["MODULES", "Entry", "entries", "table"]

# The namespaces covered, in the order of the table.
MODULES = [
    "wengert.numpy",
    "wengert.numpy.linalg",
    "wengert.numpy.fft",
    "wengert.scipy.special",
    "wengert.scipy.stats",
    "wengert.scipy.linalg",
    "wengert.scipy.signal",
]

# The distribution methods listed for wengert.scipy.stats objects.
STATS_METHODS = ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "pmf", "logpmf", "ppf", "isf")

# Notes that inspection cannot find.  Keys are table names ("numpy.max", "scipy.special.jv").
NOTES = {
    "numpy.max": "ties share the derivative equally",
    "numpy.min": "ties share the derivative equally",
    "numpy.amax": "ties share the derivative equally",
    "numpy.amin": "ties share the derivative equally",
    "numpy.maximum": "ties: ½ to each argument",
    "numpy.minimum": "ties: ½ to each argument",
    "numpy.clip": "at a bound: ½ to x and ½ to the bound",
    "numpy.where": "the branch not taken gets an exact zero",
    "numpy.absolute": "subgradient 0 at 0",
    "numpy.abs": "subgradient 0 at 0",
    "numpy.sqrt": "derivative infinite at 0",
    "numpy.prod": "exact with zeros in the input",
    "numpy.linalg.cholesky": "derivative on the triangle read",
    "numpy.linalg.eigh": "vector derivative NaN at repeated eigenvalues",
    "numpy.linalg.svd": "vector derivative NaN at repeated singular values",
    "scipy.special.gammainc": "also in a (series)",
    "scipy.special.gammaincc": "also in a (series)",
    "scipy.special.betainc": "also in a, b (series)",
    "scipy.special.betaincc": "also in a, b (series)",
    "scipy.special.stdtr": "also in df",
    "numpy.nanmax": "ties share equally; NaN entries get 0",
    "numpy.nanmin": "ties share equally; NaN entries get 0",
    "numpy.cumprod": "exact with zeros in the input",
    "numpy.unique": "derivative goes to the first occurrence",
    "numpy.sort": "a permutation (gather)",
    "numpy.median": "½ to each middle value for even counts",
    "numpy.quantile": "also differentiable in q (continuous methods)",
    "numpy.linalg.norm": "subgradient 0 at 0",
    "numpy.linalg.eig": "vector derivative NaN at repeated eigenvalues",
    "numpy.linalg.pinv": "assumes constant rank",
    "numpy.linalg.det": "exactly singular A raises",
    "scipy.special.xlogy": "0·log 0 = 0, ∂/∂y = 0 there",
    "scipy.special.xlog1py": "0·log 0 = 0, ∂/∂y = 0 there",
    "scipy.special.logsumexp": "b and return_sign supported",
    "scipy.linalg.expm": "block-triangle Fréchet derivative",
    "scipy.linalg.logm": "block-triangle Fréchet derivative",
    "scipy.linalg.sqrtm": "Sylvester equation",
    "scipy.linalg.cholesky": "derivative on the triangle read",
    "scipy.linalg.cho_factor": "zeros in the unused triangle",
    "scipy.stats.multivariate_normal.logpdf": "singular cov not supported",
    "scipy.stats.multivariate_normal.pdf": "singular cov not supported",
}

# Functions whose support inspection cannot see (no primitive, yet a derivative).
OVERRIDES = {
    "numpy.at": dict(
        kind="primitive",
        forward=True,
        reverse=True,
        note="functional update: at(x)[idx].set/add/multiply(v), differentiable in x and v",
    ),
}

# Python operators on traced arrays and the primitive each applies (names in wengert.numpy).
_OPERATORS = {
    "+": "add",
    "-": "subtract",
    "*": "multiply",
    "/": "true_divide",
    "**": "power",
    "@": "matmul",
    "+=": "add",
    "-=": "subtract",
    "*=": "multiply",
    "/=": "true_divide",
}
_INDEXING = {"BINARY_SUBSCR", "BINARY_SLICE"}


@dataclass
class Entry:
    """One row of the table."""

    module: str  # "numpy", "numpy.linalg", "scipy.stats"...
    name: str  # "sin", "norm.logpdf"...
    kind: str  # "primitive", "composite" or "constant"
    forward: bool
    reverse: bool
    primitives: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    aliases: list = field(default_factory=list)
    obj: Any = None

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def differentiable(self) -> bool:
        return self.kind != "constant" and (self.forward or self.reverse)


# ---------------------------------------------------------------------------------------------
# Finding the primitives a function can reach
# ---------------------------------------------------------------------------------------------


def _code_objects(code: types.CodeType):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _code_objects(c)


def _uses_array_operators(code: types.CodeType) -> set:
    """Primitive names for the arithmetic and indexing operators in ``code``."""
    out = set()
    for c in _code_objects(code):
        for ins in dis.get_instructions(c):
            if ins.opname == "BINARY_OP" and ins.argrepr in _OPERATORS:
                out.add(_OPERATORS[ins.argrepr])
            elif ins.opname == "BINARY_OP" and ins.argrepr == "[]" or ins.opname in _INDEXING:
                out.add("getitem")
            elif ins.opname == "UNARY_NEGATIVE":
                out.add("negative")
    return out


def _is_ours(obj: Any) -> bool:
    mod = getattr(obj, "__module__", None) or ""
    return mod == "wengert" or mod.startswith("wengert.")


class _Reach:
    """The primitives reachable from a callable through its code."""

    def __init__(self) -> None:
        self.prims: dict = {}
        self.seen: set = set()
        import wengert.numpy as wnp

        self.wnp = wnp

    def visit(self, obj: Any, cls: type | None = None) -> None:
        if isinstance(obj, Primitive):
            self.prims[id(obj)] = obj
            return
        if id(obj) in self.seen:
            return
        self.seen.add(id(obj))
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if isinstance(obj, functools.partial):
            self.visit(obj.func)
            for a in obj.args:
                self.visit(a)
            return
        if inspect.ismethod(obj):
            cls = obj.__self__ if isinstance(obj.__self__, type) else type(obj.__self__)
            obj = obj.__func__
        if not inspect.isfunction(obj):
            if _is_ours(type(obj)) and not isinstance(obj, type):  # a callable object
                for attr in ("__call__",):
                    f = getattr(type(obj), attr, None)
                    if inspect.isfunction(f):
                        self.visit(f, type(obj))
            return
        if not _is_ours(obj):
            return
        code = obj.__code__
        names = set()
        for c in _code_objects(code):
            names.update(c.co_names)
        scopes = [obj.__globals__]
        if cls is not None:
            scopes.extend(vars(k) for k in cls.__mro__ if _is_ours(k))
        modules = []
        for name in names:
            for scope in scopes:
                if name in scope:
                    val = scope[name]
                    if isinstance(val, types.ModuleType):
                        if val.__name__.startswith("wengert"):
                            modules.append(val)
                    else:
                        self.visit(val, cls)
        done = set()
        while modules:  # attribute chains: wnp.linalg.cholesky
            mod = modules.pop()
            if mod.__name__ in done:
                continue
            done.add(mod.__name__)
            for name in names:
                val = mod.__dict__.get(name)
                if isinstance(val, types.ModuleType):
                    if val.__name__.startswith("wengert"):
                        modules.append(val)
                elif val is not None:
                    self.visit(val)
        for cell in obj.__closure__ or ():
            try:
                self.visit(cell.cell_contents, cls)
            except ValueError:  # an empty cell
                pass

    def visit_operators(self, obj: Any) -> None:
        """A function that applies no named primitive may still differentiate through Python
        operators on arrays (``x * (π/180)``): count those."""
        obj = getattr(obj, "__func__", obj)
        code = getattr(obj, "__code__", None)
        if code is None or not _is_ours(obj):
            return
        for op in _uses_array_operators(code):
            p = getattr(self.wnp, op, None)
            if isinstance(p, Primitive):
                self.prims[id(p)] = p


def _has_rules(p: Primitive, fwd: bool) -> bool:
    if (p.jvp_all if fwd else p.vjp_all) is not None:
        return True
    return any(r is not None for r in (p.jvps if fwd else p.vjps))


def _rule_notes(p: Primitive) -> list:
    """Notes from rules that refuse to differentiate an argument (``coverage_note``)."""
    out = []
    for r in tuple(p.jvps) + tuple(p.vjps):
        note = getattr(r, "coverage_note", None)
        if note and note not in out:
            out.append(note)
    return out


def _classify(module: str, name: str, obj: Any, extra_cls: type | None = None) -> Entry:
    if isinstance(obj, Primitive):
        prims = [obj]
        kind = "primitive"
    else:
        reach = _Reach()
        reach.visit(obj, extra_cls)
        if not reach.prims:
            reach.visit_operators(obj)
        prims = list(reach.prims.values())
        kind = "composite" if prims else "constant"
        if any(p.name == name for p in prims):
            kind = "primitive"  # a thin wrapper (argument handling) around its own primitive
    fwd = bool(prims) and all(_has_rules(p, True) for p in prims)
    rev = bool(prims) and all(_has_rules(p, False) for p in prims)
    notes = []
    if isinstance(obj, Primitive):
        notes.extend(_rule_notes(obj))
    else:
        for p in prims:
            for n in _rule_notes(p):
                if n not in notes and p.name == name:
                    notes.append(n)
    if kind == "constant":
        notes.append("no derivative: computed on plain values")
    override = OVERRIDES.get(f"{module}.{name}")
    if override:
        kind, fwd, rev = override["kind"], override["forward"], override["reverse"]
        notes = [override["note"]]
    extra = NOTES.get(f"{module}.{name}")
    if extra:
        notes.append(extra)
    return Entry(
        module=module,
        name=name,
        kind=kind,
        forward=fwd,
        reverse=rev,
        primitives=sorted({p.name for p in prims}),
        notes=notes,
        obj=obj,
    )


# ---------------------------------------------------------------------------------------------
# Enumerating the namespaces
# ---------------------------------------------------------------------------------------------


def _public_names(mod: types.ModuleType) -> list:
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    return list(names)


def _short(modname: str) -> str:
    return modname[len("wengert.") :]


def entries() -> list:
    """Every public differentiable-or-not function, one :class:`Entry` per object (aliases,
    the same object under another name, are folded into the first name's entry)."""
    out = []
    for modname in MODULES:
        try:
            mod = importlib.import_module(modname)
        except ImportError:  # e.g. SciPy missing: that namespace is not available
            continue
        short = _short(modname)
        by_obj: dict = {}
        for name in _public_names(mod):
            obj = getattr(mod, name, None)
            if obj is None or isinstance(obj, (types.ModuleType, type)) or not callable(obj):
                if short == "scipy.stats" and obj is not None and not isinstance(obj, type):
                    out.extend(_distribution_entries(short, name, obj))
                continue
            if short == "scipy.stats":
                out.extend(_distribution_entries(short, name, obj))
                continue
            key = id(obj)
            if key in by_obj:
                by_obj[key].aliases.append(name)
                continue
            e = _classify(short, name, obj)
            by_obj[key] = e
            out.append(e)
    return out


def _distribution_entries(module: str, name: str, dist: Any) -> list:
    out = []
    for m in STATS_METHODS:
        method = getattr(type(dist), m, None)
        if method is None:
            continue
        out.append(_classify(module, f"{name}.{m}", getattr(dist, m), type(dist)))
    return out


# ---------------------------------------------------------------------------------------------
# The Markdown table
# ---------------------------------------------------------------------------------------------

_YES, _NO = "✓", "—"


def _cell_prims(e: Entry) -> str:
    if e.kind == "constant":
        return ""
    names = e.primitives
    if len(names) > 6:
        return ", ".join(f"`{n}`" for n in names[:6]) + f" +{len(names) - 6}"
    return ", ".join(f"`{n}`" for n in names)


def table() -> str:
    """docs/coverage.md: a summary, then one table per namespace."""
    es = entries()
    lines = [
        "# Coverage",
        "",
        "<!-- Generated by tools/gen_coverage.py from wengert._coverage; do not edit by hand. -->",
        "",
        "Every public function of `wengert.numpy` (with `linalg` and `fft`) and `wengert.scipy`,",
        "found in the namespaces themselves.  **Forward** and **reverse** say whether every",
        "primitive the function can reach has a JVP and a VJP rule.  Rules are written with",
        "wengert's own differentiable operations, so **higher order** follows wherever both",
        "exist; `tests/test_coverage.py` requires a `check_grads` test (order 2, both modes",
        "by default) for every differentiable function listed here.",
        "",
        "Kinds: *primitive* (value and derivative rules defined together), *composite* (built",
        "from differentiable operations; the primitives it can reach are listed), *constant*",
        "(computed on plain values: zero derivative, e.g. `floor`, comparisons, index outputs).",
        "",
        "| Namespace | Functions | Differentiable | Constant |",
        "|---|---:|---:|---:|",
    ]
    for modname in MODULES:
        short = _short(modname)
        rows = [e for e in es if e.module == short]
        if not rows:
            continue
        d = sum(e.differentiable for e in rows)
        lines.append(f"| `wengert.{short}` | {len(rows)} | {d} | {len(rows) - d} |")
    total = len(es)
    d = sum(e.differentiable for e in es)
    lines.append(f"| **all** | **{total}** | **{d}** | **{total - d}** |")
    for modname in MODULES:
        short = _short(modname)
        rows = [e for e in es if e.module == short]
        if not rows:
            continue
        lines += [
            "",
            f"## `wengert.{short}`",
            "",
            "| Function | Kind | Forward | Reverse | Higher order | Primitives | Notes |",
            "|---|---|:-:|:-:|:-:|---|---|",
        ]
        for e in sorted(rows, key=lambda e: e.name.lower()):
            name = f"`{e.name}`" + "".join(f", `{a}`" for a in sorted(e.aliases))
            hi = e.forward and e.reverse
            lines.append(
                f"| {name} | {e.kind} | {_YES if e.forward else _NO} | "
                f"{_YES if e.reverse else _NO} | {_YES if hi else _NO} | {_cell_prims(e)} | "
                f"{'; '.join(e.notes)} |"
            )
    return "\n".join(lines) + "\n"
