"""Evaluation traces: the Wengert list of a function at one point, tabulated as in the AD survey.

:func:`evaluation_trace` records ``f`` once on a reverse-mode tape, names its values v₋ₙ₊₁ … v₀
(inputs) and v₁ … v_N (intermediates), replays the tape through the primitives' JVP rules for
the forward tangent trace, and sweeps it once backwards for the reverse adjoint trace.  Long
tables show their first and last rows; :meth:`EvaluationTrace.graph` draws the trace.
"""

from __future__ import annotations

import html
import json
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wengert.core import (
    TapeEntry,
    VJPTrace,
    VJPTracer,
    backward,
    end_trace,
    new_trace,
    primal_value,
)
from wengert.tree import TreeDef, tree_flatten, tree_unflatten

__all__ = ["evaluation_trace", "EvaluationTrace", "TraceEntry", "AdjointStep", "Elision"]

if TYPE_CHECKING:
    from wengert.graph import EvaluationGraph

_DOT = "\u0307"  # combining dot above: v̇
_BAR = "\u0304"  # combining macron: v̄
_MINUS = "\u2212"
_UNKNOWN = object()  # the tangent of an op recorded without a JVP rule (custom_vjp, checkpoint)
MAX_ROWS = 60  # rows a printed table shows before it elides its middle


# ---------------------------------------------------------------------------------------------
# The data model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TraceEntry:
    """One value of the evaluation trace, ``v_index = op(arguments)``.

    Inputs have ``index`` ≤ 0 and ``op == "input"``; intermediates are numbered 1, 2, … in the
    order they were computed.  The arguments of an operation are the earlier values ``inputs``
    (their indices, in argument order) and the ``constants`` (argument position → value); the
    positions missing from ``constants`` hold ``inputs`` in order.  ``tangent`` is v̇ for the
    trace's direction (``None`` where it cannot be had: a complex or large output of an
    operation recorded with a VJP rule only, such as a ``custom_vjp``),
    ``adjoint`` is v̄ = ∂(ȳᵀy)/∂v, and ``partials[k]`` is the local derivative
    ∂v_index/∂v_inputs[k] where both are real scalars (``None`` otherwise).
    """

    index: int
    name: str
    op: str
    expr: str
    inputs: tuple[int, ...]
    constants: dict[int, Any]
    params: dict[str, Any]
    value: np.ndarray
    tangent: np.ndarray | None
    adjoint: np.ndarray
    partials: tuple[float | None, ...] = ()
    output: int = 0
    n_outputs: int = 1

    def to_dict(self) -> dict[str, Any]:
        """This entry with every value as JSON-able lists and numbers."""
        return {
            "index": self.index,
            "name": self.name,
            "op": self.op,
            "expr": self.expr,
            "inputs": list(self.inputs),
            "constants": [
                {"position": p, "value": _jsonable(c)} for p, c in self.constants.items()
            ],
            "params": dict(self.params),
            "value": _jsonable(self.value),
            "tangent": _jsonable(self.tangent),
            "adjoint": _jsonable(self.adjoint),
            "partials": list(self.partials),
            "output": self.output,
            "n_outputs": self.n_outputs,
        }


@dataclass(frozen=True, eq=False)
class AdjointStep:
    """One edge of the backward sweep: v̄_target += v̄_source · ∂v_source/∂v_target.

    ``contribution`` is the added term (a vector-Jacobian product for arrays), ``adjoint`` the
    accumulated v̄_target just after it, ``first`` whether it was the first term, and
    ``partial`` the local derivative when both values are real scalars.
    """

    target: int
    source: int
    contribution: np.ndarray
    adjoint: np.ndarray
    partial: float | None
    first: bool

    def to_dict(self) -> dict[str, Any]:
        """This step with its values as JSON-able lists and numbers."""
        return {
            "target": self.target,
            "source": self.source,
            "contribution": _jsonable(self.contribution),
            "adjoint": _jsonable(self.adjoint),
            "partial": self.partial,
            "first": self.first,
        }


@dataclass(frozen=True, eq=False)
class EvaluationTrace:
    """The evaluation trace of ``function`` at one point: a forward primal trace, a forward
    tangent trace for the direction ẋ (``direction``), and a reverse adjoint trace for the seed
    ȳ (``cotangent``).  Print it, or render it with :meth:`to_text`, :meth:`to_markdown`,
    :meth:`to_html`; :meth:`to_dict` gives every number, :meth:`graph` the computational
    graph (DOT, SVG, PNG), :meth:`summary` the values counted by operation and shape."""

    function: str
    prefix: str
    input_names: tuple[str, ...]
    entries: tuple[TraceEntry, ...]
    outputs: tuple[int | None, ...]
    output_values: tuple[np.ndarray, ...]
    direction: tuple[np.ndarray, ...]
    cotangent: tuple[np.ndarray, ...]
    steps: tuple[AdjointStep, ...]
    _out_tree: TreeDef | None = field(default=None, repr=False)

    # -- looking things up --------------------------------------------------------------------

    def __getitem__(self, index: int) -> TraceEntry:
        """The entry v_index (inputs ≤ 0, intermediates ≥ 1)."""
        k = index + len(self.input_names) - 1
        if not 0 <= k < len(self.entries):
            raise IndexError(f"no value {self.prefix}{index} in this trace")
        return self.entries[k]

    @property
    def inputs(self) -> tuple[TraceEntry, ...]:
        """The entries of the independent variables, v₋ₙ₊₁ … v₀."""
        return self.entries[: len(self.input_names)]

    @property
    def operations(self) -> tuple[TraceEntry, ...]:
        """The entries v₁ … v_N computed from the inputs."""
        return self.entries[len(self.input_names) :]

    @property
    def value(self) -> Any:
        """y = f(x), with the structure of f's output."""
        return self._unflatten(self.output_values)

    @property
    def output_tangent(self) -> Any:
        """ẏ = J ẋ, the directional derivative along ``direction`` (``None`` where unknown)."""
        return self._unflatten([self._tangent_of(i, v) for i, v in self._outs()])

    @property
    def input_adjoints(self) -> tuple[np.ndarray, ...]:
        """x̄ = ȳᵀ J, one array per input: the gradient when y is a scalar and ȳ = 1."""
        return tuple(e.adjoint for e in self.inputs)

    def _unflatten(self, leaves: Sequence) -> Any:
        return tree_unflatten(self._out_tree, list(leaves)) if self._out_tree else leaves[0]

    def _outs(self):
        return zip(self.outputs, self.output_values)

    def _tangent_of(self, index: int | None, value: np.ndarray) -> np.ndarray | None:
        return np.zeros_like(value) if index is None else self[index].tangent

    def __repr__(self) -> str:
        return (
            f"<EvaluationTrace of {self.function}: {len(self.input_names)} inputs, "
            f"{len(self.operations)} operations>"
        )

    # -- rendering ----------------------------------------------------------------------------

    def tables(
        self,
        parts: Sequence[str] = ("forward", "reverse"),
        digits: int = 6,
        max_rows: int | None = None,
    ) -> list:
        """The tables as ``(title, [(group header, width)], rows)``; a row of ``None`` is a rule.

        With more than ``max_rows`` rows a table keeps its first and last rows, and an
        :class:`Elision` row in between says how many were left out."""
        builders = {"forward": self._forward_table, "reverse": self._reverse_table}
        if isinstance(parts, str):
            parts = (parts,)
        unknown = [p for p in parts if p not in builders]
        if unknown:
            raise ValueError(f"unknown table {unknown[0]!r}: choose from 'forward', 'reverse'")
        if max_rows is not None and (not isinstance(max_rows, (int, np.integer)) or max_rows < 2):
            raise ValueError(f"max_rows must be None or an integer of at least 2, not {max_rows!r}")
        return [_elide(*builders[p](digits), max_rows) for p in parts]

    def to_text(
        self,
        parts: Sequence[str] = ("forward", "reverse"),
        digits: int = 6,
        max_rows: int | None = MAX_ROWS,
    ) -> str:
        """Plain-text tables: primal beside tangent trace, then primal beside adjoint trace.

        Longer tables than ``max_rows`` rows show their first and last rows (``None``: all)."""
        return "\n\n".join(_text_table(*t) for t in self.tables(parts, digits, max_rows))

    def to_markdown(
        self,
        parts: Sequence[str] = ("forward", "reverse"),
        digits: int = 6,
        max_rows: int | None = MAX_ROWS,
    ) -> str:
        """The same tables in (GitHub-flavoured) Markdown."""
        return "\n\n".join(_markdown_table(*t) for t in self.tables(parts, digits, max_rows))

    def to_html(
        self,
        parts: Sequence[str] = ("forward", "reverse"),
        digits: int = 6,
        max_rows: int | None = MAX_ROWS,
    ) -> str:
        """The same tables as an HTML fragment."""
        body = "\n".join(_html_table(*t) for t in self.tables(parts, digits, max_rows))
        return f'<div class="wengert-trace">\n{body}\n</div>'

    # -- the graph ----------------------------------------------------------------------------

    def graph(self, **options: Any) -> EvaluationGraph:
        """The evaluation graph (the Wengert list as a DAG); ``options`` are those of
        :func:`wengert.graph.evaluation_graph` (``tangent``, ``adjoint``, ``partials``,
        ``max_nodes``, ``collapse``, ...)."""
        from wengert.graph import evaluation_graph

        return evaluation_graph(self, **options)

    def to_dot(self, **options: Any) -> str:
        """The evaluation graph as Graphviz DOT text (no Graphviz needed)."""
        return self.graph(**options).to_dot()

    def save_graph(self, path: str | Path, **options: Any) -> Path:
        """Write the evaluation graph to ``path`` (``.svg``, ``.png`` or ``.dot``); see
        :meth:`wengert.graph.EvaluationGraph.save`."""
        return self.graph(**options).save(path)

    def summary(self) -> str:
        """The values counted by operation, shape and dtype: a text table for large traces."""
        from wengert.graph import operation_summary

        groups = operation_summary(self)
        rows = [
            [
                g.op,
                "scalar" if g.shape == () else "×".join(map(str, g.shape)),
                str(g.dtype),
                f"{g.count:,}",
                self[g.indices[0]].name
                + ("" if g.count == 1 else f" … {self[g.indices[-1]].name}"),
            ]
            for g in groups
        ]
        title = (
            f"{self.function}: {len(self.entries):,} values ({len(self.inputs)} inputs, "
            f"{len(self.operations):,} operations) in {len(groups)} groups"
        )
        groups_hdr = [("operation", 1), ("shape", 1), ("dtype", 1), ("count", 1), ("values", 1)]
        return _text_table(title, groups_hdr, rows)

    def _repr_html_(self) -> str:
        page = self.to_html()
        picture = self._repr_svg_()
        if picture is None:
            return page
        svg = picture[picture.find("<svg") :]
        return page[: -len("</div>")] + f'<div class="wengert-graph">{svg}</div>\n</div>'

    def _repr_svg_(self) -> str | None:
        """The evaluation graph as SVG for Jupyter, when Graphviz is installed (else None)."""
        g = self.graph(tangent=True, adjoint=True)
        return g._repr_svg_()

    def __str__(self) -> str:
        return self.to_text()

    def to_dict(self) -> dict[str, Any]:
        """Every entry, output and sweep step, with values as JSON-able lists and numbers."""
        ys = _output_names(len(self.outputs))
        return {
            "function": self.function,
            "prefix": self.prefix,
            "inputs": [
                {"index": e.index, "name": n} for e, n in zip(self.inputs, self.input_names)
            ],
            "entries": [e.to_dict() for e in self.entries],
            "outputs": [
                {
                    "name": y,
                    "index": i,
                    "value": _jsonable(v),
                    "tangent": _jsonable(self._tangent_of(i, v)),
                    "cotangent": _jsonable(c),
                }
                for y, (i, v), c in zip(ys, self._outs(), self.cotangent)
            ],
            "direction": [_jsonable(d) for d in self.direction],
            "adjoint_steps": [s.to_dict() for s in self.steps],
            "input_adjoints": [_jsonable(a) for a in self.input_adjoints],
        }

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    # -- the two tables -----------------------------------------------------------------------

    def _name(self, index: int, mark: str = "") -> str:
        return unicodedata.normalize("NFC", f"{self.prefix}{mark}{index}")

    def _point(self, values: Sequence, names: Sequence[str], digits: int) -> str:
        if len(values) == 1:
            return f"{names[0]} = {_num(values[0], digits)}"
        nums = ", ".join(_num(v, digits) for v in values)
        return f"({', '.join(names)}) = ({nums})"

    def _primal_rows(self, digits: int) -> list[list[str]]:
        return [[e.name, f"= {e.expr}", f"= {_num(e.value, digits)}"] for e in self.entries]

    def _output_rows(self, digits: int, mark: str = "") -> list[list[str]]:
        rows = []
        for y, (i, v) in zip(_output_names(len(self.outputs)), self._outs()):
            rhs = "" if i is None else f"= {self._name(i, mark)}"
            val = v if not mark else self._tangent_of(i, v)
            rows.append([_marked(y, mark), rhs, f"= {_num(val, digits)}"])
        return rows

    def _forward_table(self, digits: int):
        rows: list = []
        for e, primal in zip(self.entries, self._primal_rows(digits)):
            lhs = self._name(e.index, _DOT)
            if e.op == "input":
                rule = f"= {_marked(e.expr, _DOT)}"
            elif e.tangent is None:
                rule = "(no JVP rule)"
            else:
                rule = "= " + _linear_combination(
                    [self._name(j, _DOT) for j in e.inputs],
                    e.partials,
                    [f"∂{e.name}/∂{self._name(j)} · " for j in e.inputs],
                    digits,
                )
            rows.append(primal + [lhs, rule, f"= {_num(e.tangent, digits)}"])
        rows.append(None)
        for primal, tangent in zip(self._output_rows(digits), self._output_rows(digits, _DOT)):
            rows.append(primal + tangent)
        xdot = self._point(self.direction, [_marked(n, _DOT) for n in self.input_names], digits)
        ydot = self._point(
            [self._tangent_of(i, v) for i, v in self._outs()],
            [_marked(y, _DOT) for y in _output_names(len(self.outputs))],
            digits,
        )
        title = f"Forward mode: {self._title(digits)}, {xdot}  ⇒  {ydot}"
        groups = [("Forward primal trace", 3), ("Forward tangent trace", 3)]
        return title, groups, rows

    def _reverse_table(self, digits: int):
        bar = lambda i: self._name(i, _BAR)
        adjoint_rows: list[list[str]] = []
        ys = _output_names(len(self.outputs))
        seeded: dict[int, list[str]] = {}
        for y, i in zip(ys, self.outputs):
            if i is not None:
                seeded.setdefault(i, []).append(_marked(y, _BAR))
        for i, names in seeded.items():
            adjoint_rows.append(
                [bar(i), "= " + " + ".join(names), "", f"= {_num(self._seed(i), digits)}"]
            )
        previous: dict[int, np.ndarray] = {}
        for s in self.steps:
            src = self[s.source]
            ks = range(s.source, s.source + src.n_outputs)  # the entry's outputs
            g, v = ", ".join(bar(k) for k in ks), ", ".join(self._name(k) for k in ks)
            if len(ks) > 1:
                g, v = f"({g})", f"({v})"
            term = f"{g} · ∂{v}/∂{self._name(s.target)}"
            rule = f"= {term}" if s.first else f"= {bar(s.target)} + {term}"
            numbers = ""
            if s.partial is not None and len(ks) == 1 and np.size(src.adjoint) == 1:
                g = _num(src.adjoint, digits)
                numbers = f"{g if s.first else _paren(g)} × {_paren(_num(s.partial, digits))}"
                if not s.first:
                    numbers = f"{_num(previous[s.target], digits)} + {numbers}"
                numbers = f"= {numbers}"
            previous[s.target] = s.adjoint
            adjoint_rows.append([bar(s.target), rule, numbers, f"= {_num(s.adjoint, digits)}"])
        for e, x in zip(self.inputs, self.input_names):
            adjoint_rows.append(
                [_marked(x, _BAR), f"= {bar(e.index)}", "", f"= {_num(e.adjoint, digits)}"]
            )
        primal_rows = self._primal_rows(digits) + self._output_rows(digits)
        rows = [
            (a or ["", "", ""]) + (b or ["", "", "", ""])
            for a, b in zip_longest(primal_rows, adjoint_rows)
        ]
        ybar = self._point(self.cotangent, [_marked(y, _BAR) for y in ys], digits)
        xbar = self._point(
            self.input_adjoints, [_marked(n, _BAR) for n in self.input_names], digits
        )
        title = f"Reverse mode: {self._title(digits)}, {ybar}  ⇒  {xbar}"
        groups = [("Forward primal trace", 3), ("Reverse adjoint trace", 4)]
        return title, groups, rows

    def _seed(self, index: int) -> np.ndarray:
        total = None
        for i, c in zip(self.outputs, self.cotangent):
            if i == index:
                total = c if total is None else total + c
        return total

    def _title(self, digits: int) -> str:
        point = self._point([e.value for e in self.inputs], list(self.input_names), digits)
        return f"{self.function} at {point}"


# ---------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------


def evaluation_trace(
    f: Callable,
    *args: Any,
    wrt: int | Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    direction: Sequence | None = None,
    cotangent: Any = None,
    prefix: str = "v",
) -> EvaluationTrace:
    """Record the evaluation trace (Wengert list) of ``y = f(*args)``.

    Every leaf of the arguments selected by ``wrt`` (default: all of them) is one independent
    variable; with n of them they are v₋ₙ₊₁ … v₀ (named ``names``, default x1 … xn), and
    each primitive applied to them gives the next value v_i = φ_i(v_j, …), i = 1 … N.

    * Forward tangent trace: v̇_i = Σ_j ∂φ_i/∂v_j · v̇_j, starting from v̇ = ẋ (``direction``,
      one entry per variable; default ẋ = e₁, ones for the first variable and zeros
      elsewhere), so ẏ = J ẋ.  It replays the tape through the primitives' JVP rules.
    * Reverse adjoint trace: v̄_j = Σ_i v̄_i ∂φ_i/∂v_j, starting from ȳ (``cotangent``, with
      the structure of the output; default all ones), so x̄ = ȳᵀ J: one backward sweep.

    ``prefix`` names the values: ``"v"`` as in Baydin et al.'s survey, ``"u"`` as in the MATLAB
    documentation.  Integer inputs are constants (pass floats), as everywhere in wengert.
    """
    if not (isinstance(prefix, str) and prefix.isalpha()):
        raise ValueError(
            f"evaluation_trace: prefix must be letters, such as 'v' or 'u', not {prefix!r}"
        )
    nums = _wrt(wrt, len(args))
    leaves, in_tree = tree_flatten(tuple(args[i] for i in nums))
    # Our own copies: the tape guards (makes read-only) what it records, never the caller's input.
    leaves = [_variable(x, k) for k, x in enumerate(leaves)]
    if not leaves:
        raise ValueError("evaluation_trace: the arguments hold no input variables (no arrays)")
    n = len(leaves)
    names = _input_names(names, n)
    xdot = _direction(direction, leaves)

    trace = new_trace(VJPTrace, True)  # keep every value: the tables show them all
    try:
        try:
            tracers = [trace.new_input(x) for x in leaves]
            new_args = list(args)
            for i, sub in zip(nums, tree_unflatten(in_tree, tracers)):
                new_args[i] = sub
            out = f(*new_args)
        finally:
            end_trace(trace)
        return _tabulate(f, trace, leaves, names, out, xdot, cotangent, prefix)
    finally:
        trace.unlock()  # the constants f used are the caller's again


def _tabulate(f, trace: VJPTrace, leaves, names, out, xdot, cotangent, prefix) -> EvaluationTrace:
    n = len(leaves)
    idx = lambda vid: vid - n + 1  # value id on the tape -> the survey's index
    out_leaves, out_tree = tree_flatten(out)
    outputs = tuple(
        idx(o.idx) if type(o) is VJPTracer and o._trace is trace else None for o in out_leaves
    )
    out_values = tuple(_plain(o) for o in out_leaves)
    ybar = _cotangent(cotangent, out_tree, out_values)

    # One pass over the tape in its order: the forward tangent trace (JVP rules) ...
    tangents: dict[int, Any] = dict(enumerate(xdot))
    for e in trace.tape:
        for k, t in enumerate(_replay_jvp(e, tangents)):
            tangents[e.out + k] = t
    # The local derivatives ∂v_i/∂v_j of scalar edges, for the tables.
    partials = {id(e): {p: _partial(e, p) for p, _ in e.links} for e in trace.tape}
    # ... and one sweep backwards: the reverse adjoint trace.
    seeds = [(i + n - 1, c) for i, c in zip(outputs, ybar) if i is not None]
    steps: list[AdjointStep] = []
    accumulated: dict[int, np.ndarray] = {}
    for vid, c in seeds:
        accumulated[vid] = c if vid not in accumulated else accumulated[vid] + c
    cursor: dict[int, int] = {}  # tape entry -> how far through its links the sweep has got

    def observe(e: TapeEntry, vid: int, ct: Any) -> None:
        k = cursor.get(id(e), 0)
        while e.links[k][1] != vid:  # the sweep visits an entry's links in order
            k += 1
        cursor[id(e)] = k + 1
        ct = _plain(ct)
        first = vid not in accumulated
        accumulated[vid] = ct if first else accumulated[vid] + ct
        pos = e.links[k][0]
        steps.append(
            AdjointStep(idx(vid), idx(e.out), ct, accumulated[vid], partials[id(e)][pos], first)
        )

    adj = backward(trace, seeds, retain=True, observe=observe)

    def entry(vid, value, **kw) -> TraceEntry:
        a = adj[vid]
        t = tangents.get(vid)
        return TraceEntry(
            index=idx(vid),
            name=f"{prefix}{idx(vid)}",
            value=value,
            tangent=None if t is _UNKNOWN else t,
            adjoint=np.zeros_like(value) if a is None else _plain(a),
            **kw,
        )

    entries = [
        entry(k, x, op="input", expr=names[k], inputs=(), constants={}, params={})
        for k, x in enumerate(leaves)
    ]
    for e in trace.tape:
        linked = dict(e.links)
        consts = {p: _plain(a) for p, a in enumerate(e.primals) if p not in linked}
        args = [
            f"{prefix}{idx(linked[p])}" if p in linked else _num(a, most=3)
            for p, a in enumerate(e.primals)
        ]
        results = e.ans if e.prim.multiple_results else (e.ans,)
        for k, value in enumerate(results):
            expr = _expression(e.prim.fmt, e.prim.name, args)
            entries.append(
                entry(
                    e.out + k,
                    _plain(value),
                    op=e.prim.name,
                    expr=expr if len(results) == 1 else f"{expr}[{k}]",
                    inputs=tuple(idx(v) for _, v in e.links),
                    constants=consts,
                    params=_json_params(e.params),
                    partials=tuple(partials[id(e)][p] for p, _ in e.links),
                    output=k,
                    n_outputs=len(results),
                )
            )
    return EvaluationTrace(
        function=getattr(f, "__name__", type(f).__name__),
        prefix=prefix,
        input_names=tuple(names),
        entries=tuple(entries),
        outputs=outputs,
        output_values=out_values,
        direction=tuple(xdot),
        cotangent=tuple(ybar),
        steps=tuple(steps),
        _out_tree=out_tree,
    )


def _replay_jvp(e: TapeEntry, tangents: dict[int, Any]) -> list:
    """The output tangent(s) of tape entry ``e`` from its inputs' tangents."""
    ts: list = [None] * len(e.primals)
    for pos, vid in e.links:
        ts[pos] = tangents[vid]
    if any(t is _UNKNOWN for t in ts):
        return [_UNKNOWN] * (len(e.ans) if e.prim.multiple_results else 1)
    return _entry_jvp(e, ts)


def _entry_jvp(e: TapeEntry, ts: list) -> list:
    """Σ_p ∂φ/∂(argument p) · ts[p] for one tape entry, by the primitive's JVP rules.

    An entry recorded with a VJP rule only (``custom_vjp``, ``checkpoint``, ...) has its small
    Jacobian built row by row from that rule instead (J ẋ, with rows ē_kᵀ J)."""
    prim = e.prim
    results = e.ans if prim.multiple_results else (e.ans,)
    if prim.jvp_all is not None:
        out = prim.jvp_all(ts, e.ans, *e.primals, **e.params)
        out = list(out) if prim.multiple_results else [out]
    elif prim.multiple_results:
        out = _jvp_by_vjp(e, ts)
        if out is None:
            return [_UNKNOWN] * len(results)
    else:
        out = [None]
        for pos, t in enumerate(ts):
            rule = prim.jvps[pos] if pos < len(prim.jvps) else None
            c = None if t is None or rule is None else rule(t, e.ans, *e.primals, **e.params)
            if c is not None:
                out[0] = c if out[0] is None else out[0] + c
    return [_shaped_like(t, a) for t, a in zip(out, results)]


_MAX_ROWS = 256  # the largest output (in elements) whose Jacobian is built from a VJP rule


def _jvp_by_vjp(e: TapeEntry, ts: list) -> list | None:
    results = [_plain(a) for a in e.ans]
    needed = [p for p, t in enumerate(ts) if t is not None]
    if sum(a.size for a in results) > _MAX_ROWS or e.prim.vjp_all is None:
        return None
    if any(np.iscomplexobj(a) for a in results + [_plain(ts[p]) for p in needed]):
        return None  # the rows of a non-holomorphic complex Jacobian are not its VJPs
    out = [np.zeros(a.shape, np.result_type(a, float)) for a in results]
    for k, a in enumerate(results):
        for j in range(a.size):
            g = [np.zeros_like(b) for b in results]
            g[k].flat[j] = 1
            cts = e.prim.vjp_all(tuple(g), e.ans, needed, *e.primals, **e.params)
            out[k].flat[j] = sum(
                np.sum(_plain(cts[p]) * _plain(ts[p])) for p in needed if cts[p] is not None
            )
    return out


def _shaped_like(t: Any, a: Any) -> np.ndarray:
    """A tangent as an array of its value's shape (``None`` is a symbolic zero)."""
    a = _plain(a)
    if t is None:
        return np.zeros_like(a)
    t = _plain(t)
    return t if t.shape == a.shape else np.broadcast_to(t, a.shape).copy()


def _partial(e: TapeEntry, pos: int) -> float | None:
    """∂(output)/∂(argument ``pos``) of a single-output entry when both are real scalars."""
    results = e.ans if e.prim.multiple_results else (e.ans,)
    x = _plain(e.primals[pos])
    if len(results) != 1 or np.size(results[0]) != 1 or x.size != 1:
        return None
    if np.iscomplexobj(_plain(results[0])) or np.iscomplexobj(x):
        return None
    ts: list = [None] * len(e.primals)
    ts[pos] = np.ones(x.shape, x.dtype)
    d = _entry_jvp(e, ts)[0]
    return None if d is _UNKNOWN else float(d.reshape(()))


# ---------------------------------------------------------------------------------------------
# Checking arguments
# ---------------------------------------------------------------------------------------------


def _wrt(wrt: int | Sequence[int] | None, nargs: int) -> tuple[int, ...]:
    nums = range(nargs) if wrt is None else [wrt] if isinstance(wrt, (int, np.integer)) else wrt
    out = []
    for a in nums:
        if not -nargs <= a < nargs:
            raise ValueError(f"evaluation_trace: wrt={wrt!r} is out of range for {nargs} arguments")
        out.append(int(a) % nargs)
    if not out:
        raise ValueError("evaluation_trace: there are no input variables (wrt is empty)")
    return tuple(out)


def _variable(x: Any, k: int) -> np.ndarray:
    """Input leaf ``k`` as a fresh float or complex array."""
    a = np.array(primal_value(x))
    if a.dtype.kind not in "fc":
        raise TypeError(
            f"evaluation_trace: input variable {k} has dtype {a.dtype}; integer and boolean "
            "inputs are constants with no derivative. Pass floats (2.0, not 2), or leave the "
            "argument out of wrt."
        )
    return a


def _input_names(names: Sequence[str] | None, n: int) -> list[str]:
    if names is None:
        return [f"x{k + 1}" for k in range(n)]
    names = [str(s) for s in names]
    if len(names) != n:
        raise ValueError(f"evaluation_trace: got {len(names)} names for {n} input variables")
    return names


def _direction(direction: Sequence | None, leaves: list) -> list[np.ndarray]:
    if direction is None:
        return [(np.ones_like if k == 0 else np.zeros_like)(x) for k, x in enumerate(leaves)]
    if not isinstance(direction, (tuple, list)):
        direction = (direction,)
    d_leaves = tree_flatten(tuple(direction))[0]
    if len(d_leaves) != len(leaves):
        raise ValueError(
            f"evaluation_trace: the direction has {len(d_leaves)} entries, but there are "
            f"{len(leaves)} input variables"
        )
    out = []
    for k, (d, x) in enumerate(zip(d_leaves, leaves)):
        d = np.asarray(_plain(d)).astype(x.dtype)
        if d.shape != x.shape:
            raise ValueError(
                f"evaluation_trace: direction entry {k} has shape {d.shape}, but input {k} has "
                f"shape {x.shape}"
            )
        out.append(d)
    return out


def _cotangent(cotangent: Any, out_tree: TreeDef, values: Sequence) -> list[np.ndarray]:
    def dtype(v):
        return np.result_type(v) if np.result_type(v).kind in "fc" else np.dtype(float)

    if cotangent is None:
        return [np.ones(np.shape(v), dtype(v)) for v in values]
    leaves, tree = tree_flatten(cotangent)
    if len(leaves) != len(values):
        raise ValueError(
            f"evaluation_trace: the cotangent must have the structure of the output, {out_tree}, "
            f"but has {tree}"
        )
    out = []
    for c, v in zip(leaves, values):
        c = np.asarray(_plain(c)).astype(dtype(v))
        if c.shape != np.shape(v):
            raise ValueError(
                f"evaluation_trace: a cotangent has shape {c.shape}, but its output has shape "
                f"{np.shape(v)}"
            )
        out.append(c)
    return out


# ---------------------------------------------------------------------------------------------
# Writing numbers, expressions and tables
# ---------------------------------------------------------------------------------------------


def _plain(x: Any) -> np.ndarray:
    return np.asarray(primal_value(x))


def _scalar(v: Any, digits: int) -> str:
    if isinstance(v, complex):
        sign = "+" if v.imag >= 0 or np.isnan(v.imag) else "-"
        return f"{_scalar(v.real, digits)}{sign}{_scalar(abs(v.imag), digits)}j".replace(
            "-", _MINUS
        )
    if isinstance(v, (bool, int)):
        return str(int(v)).replace("-", _MINUS)
    if v == 0 or not np.isfinite(v):
        s = "0" if v == 0 else str(v)
    elif 1e-3 <= abs(v) < 1e7:
        s = f"{v:.{digits}f}".rstrip("0").rstrip(".")
    else:
        s = f"{v:.{digits}g}"
    return s.replace("-", _MINUS)


def _num(x: Any, digits: int = 6, most: int = 6) -> str:
    """A value as the tables write it: 0.693147, −1, [1, 2], or [3×4 array] (over ``most``)."""
    if x is None:
        return "?"
    a = np.asarray(x)
    if a.ndim == 0:
        return _scalar(a.item(), digits)
    if a.size > most:
        return f"[{'×'.join(map(str, a.shape))} array]"

    def nested(v):
        return (
            "[" + ", ".join(nested(w) for w in v) + "]"
            if isinstance(v, list)
            else _scalar(v, digits)
        )

    return nested(a.tolist())


def _paren(s: str) -> str:
    return f"({s})" if s.startswith(_MINUS) else s


def _expression(fmt: str | None, name: str, args: list[str]) -> str:
    """Write an operation with its primitive's display template, e.g. ``"{0} × {1}"``."""
    if fmt and "{" in fmt:
        shown = [a if fmt.startswith(f"{{{k}}}") else _paren(a) for k, a in enumerate(args)]
        try:
            return fmt.format(*shown)
        except (IndexError, KeyError, ValueError):
            pass
    return f"{fmt or name}({', '.join(args)})"


def _linear_combination(names: list[str], coefs: Sequence, symbolic: list[str], digits: int) -> str:
    """``c₁ × a₁ + c₂ × a₂ …`` with known coefficients; ``∂…/∂…·a`` where one is unknown."""
    terms = []
    for name, c, sym in zip(names, coefs, symbolic):
        if c is None:
            terms.append(f"{sym}{name}")
        elif c == 1:
            terms.append(name)
        elif c == -1:
            terms.append(f"{_MINUS}{name}")
        else:
            terms.append(f"{_num(c, digits)} × {name}")
    out = terms[0] if terms else "0"
    for t in terms[1:]:
        out += f" {_MINUS} {t[1:]}" if t.startswith(_MINUS) else f" + {t}"
    return out


def _marked(name: str, mark: str) -> str:
    """Put a combining mark on the first letter: v-1 -> v̇-1, x1 -> x̄1."""
    return unicodedata.normalize("NFC", name[:1] + mark + name[1:]) if name else name


def _output_names(m: int) -> list[str]:
    return ["y"] if m == 1 else [f"y{k + 1}" for k in range(m)]


def _json_params(params: dict) -> dict[str, Any]:
    """The parameters that are plain data (axes, shapes, dtypes); functions etc. are left out."""

    def simple(v):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.dtype):
            return str(v)
        if isinstance(v, (tuple, list)):
            items = [simple(w) for w in v]
            return _SKIP if any(w is _SKIP for w in items) else items
        return _SKIP

    return {k: s for k, s in ((k, simple(v)) for k, v in params.items()) if s is not _SKIP}


_SKIP = object()


def _jsonable(x: Any) -> Any:
    if x is None:
        return None
    a = np.asarray(x)
    if np.iscomplexobj(a):
        return {"real": a.real.tolist(), "imag": a.imag.tolist()}
    return a.tolist()


def _width(s: str) -> int:
    return sum(0 if unicodedata.combining(c) else 1 for c in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _width(s))


@dataclass(frozen=True)
class Elision:
    """The row standing for the ``count`` middle rows a long table leaves out."""

    count: int

    def text(self) -> str:
        """The line that stands for the left-out rows."""
        return f"⋮  {self.count:,} rows not shown (max_rows=None shows them all)"


def _elide(title: str, groups: list, rows: list, max_rows: int | None) -> tuple:
    if max_rows is None or len(rows) <= max_rows:
        return title, groups, rows
    head, tail = (max_rows + 1) // 2, max_rows // 2
    rows = rows[:head] + [Elision(len(rows) - head - tail)] + rows[len(rows) - tail :]
    return title, groups, rows


def _text_table(title: str, groups: list, rows: list) -> str:
    ncols = sum(w for _, w in groups)
    cells = [r for r in rows if isinstance(r, list)]
    widths = [max([_width(r[c]) for r in cells] + [0]) for c in range(ncols)]
    spans, start = [], 0
    for header, w in groups:
        cols = list(range(start, start + w))
        inner = sum(widths[c] for c in cols) + (len(cols) - 1)
        spans.append((header, cols, max(inner, _width(header))))
        start += w
    for _, cols, inner in spans:  # a header wider than its columns widens the last one
        widths[cols[-1]] += inner - (sum(widths[c] for c in cols) + len(cols) - 1)

    def line(cells):
        parts = [" ".join(_pad(cells[c], widths[c]) for c in cols) for _, cols, _ in spans]
        return " │ ".join(parts).rstrip()

    rule = "─┼─".join("─" * inner for _, _, inner in spans)
    out = [title, "", " │ ".join(_pad(h, inner) for h, _, inner in spans).rstrip(), rule]
    out += [rule if r is None else r.text() if isinstance(r, Elision) else line(r) for r in rows]
    return "\n".join(out)


def _md_escape(s: str) -> str:
    for ch in "\\|*_`":
        s = s.replace(ch, "\\" + ch)
    return s


def _markdown_table(title: str, groups: list, rows: list) -> str:
    out = [f"**{_md_escape(title)}**", "", "| " + " | ".join(h for h, _ in groups) + " |"]
    out.append("|" + "|".join("---" for _ in groups) + "|")
    for r in rows:
        if r is None:
            continue
        if isinstance(r, Elision):
            out.append("| " + " | ".join([_md_escape(r.text())] + [""] * (len(groups) - 1)) + " |")
            continue
        cells, start = [], 0
        for _, w in groups:
            cells.append(_md_escape(" ".join(c for c in r[start : start + w] if c)))
            start += w
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _html_table(title: str, groups: list, rows: list) -> str:
    esc = html.escape
    head = "".join(f'<th colspan="{w}" style="text-align:left">{esc(h)}</th>' for h, w in groups)
    bodies, current = [], []
    for r in rows:
        if r is None:
            bodies.append(current)
            current = []
        else:
            current.append(r)
    bodies.append(current)
    parts = [
        '<table style="font-family:monospace; border-collapse:collapse">',
        f'<caption style="text-align:left">{esc(title)}</caption>',
        f"<thead><tr>{head}</tr></thead>",
    ]
    for body in bodies:
        if not body:
            continue
        ncols = sum(w for _, w in groups)
        trs = "\n".join(
            f'<tr><td colspan="{ncols}" style="text-align:center">{esc(r.text())}</td></tr>'
            if isinstance(r, Elision)
            else "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>"
            for r in body
        )
        parts.append(f'<tbody style="border-top:1px solid">\n{trs}\n</tbody>')
    parts.append("</table>")
    return "\n".join(parts)
