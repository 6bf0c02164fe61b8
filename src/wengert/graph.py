"""Computational-graph pictures of an evaluation trace: the Wengert list drawn as a DAG.

:func:`evaluation_graph` turns an :class:`~wengert.tracing.EvaluationTrace` into Graphviz DOT
text (written here, escaped here), and renders it to SVG or PNG with Graphviz's ``dot``.
Traces with more values than a node limit are collapsed to a summary by operation and shape.
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wengert.tracing import _BAR, _DOT, EvaluationTrace, TraceEntry, _marked, _num, _output_names

__all__ = [
    "evaluation_graph",
    "EvaluationGraph",
    "GraphvizNotFoundError",
    "graphviz_available",
    "operation_summary",
    "OperationGroup",
    "INSTALL_GRAPHVIZ",
]

INSTALL_GRAPHVIZ = (
    "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    "conda: conda install graphviz; others: https://graphviz.org/download/)"
)
_RENDERED = {".svg": "svg", ".png": "png"}
_DOT_SUFFIXES = (".dot", ".gv")
_TIMEOUT = 120.0  # seconds for one run of dot

_INPUT_STYLE = 'shape=box, style="rounded,filled", fillcolor="#dbeafe", color="#1d4ed8"'
_OUTPUT_STYLE = 'style="rounded,filled,bold", fillcolor="#fef3c7", color="#b45309", peripheries=2'


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is not installed, so no SVG or PNG can be drawn."""


def graphviz_available() -> bool:
    """Whether Graphviz's ``dot`` program is on the ``PATH`` (needed for SVG and PNG)."""
    return _dot_program() is not None


def _dot_program() -> str | None:
    return shutil.which("dot")


# ---------------------------------------------------------------------------------------------
# The graph object
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationGraph:
    """A drawn evaluation graph: its DOT ``source`` and how it was made.

    ``n_values`` is the number of values in the trace (inputs and operations); ``n_nodes`` the
    number of boxes drawn for them (fewer when ``collapsed`` into operation groups).  Render it
    with :meth:`to_svg` / :meth:`to_png`, write it with :meth:`save`; in Jupyter it shows
    itself as SVG when Graphviz is installed, and as its DOT text otherwise.
    """

    source: str
    title: str
    n_values: int
    n_nodes: int
    collapsed: bool

    def to_dot(self) -> str:
        """The DOT text (Graphviz's graph language)."""
        return self.source

    def __str__(self) -> str:
        return self.source

    def render(self, format: str = "svg") -> bytes:
        """The graph drawn by Graphviz's ``dot`` in ``format`` ("svg" or "png")."""
        return render_dot(self.source, format)

    def to_svg(self) -> str:
        """The graph as an SVG document (needs Graphviz's ``dot``)."""
        return self.render("svg").decode("utf-8")

    def to_png(self) -> bytes:
        """The graph as PNG bytes (needs Graphviz's ``dot``)."""
        return self.render("png")

    def save(self, path: str | Path) -> Path:
        """Write the graph to ``path``: ``.dot``/``.gv`` (DOT text), ``.svg`` or ``.png``.

        Without Graphviz, asking for ``.svg``/``.png`` writes the DOT text beside it (same name,
        ``.dot``) and raises :class:`GraphvizNotFoundError` saying how to install Graphviz and
        how to render that file later.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in _DOT_SUFFIXES:
            path.write_text(self.source + "\n", encoding="utf-8")
            return path
        if suffix not in _RENDERED:
            raise ValueError(
                f"cannot tell the picture format from {str(path)!r}: end the file name in "
                ".svg, .png or .dot"
            )
        if not graphviz_available():
            dot_path = path.with_suffix(".dot")
            dot_path.write_text(self.source + "\n", encoding="utf-8")
            raise GraphvizNotFoundError(
                f"Graphviz's dot program is not installed, so {path} was not drawn; wrote the "
                f"DOT text to {dot_path} instead. To draw it, {INSTALL_GRAPHVIZ}, then run: "
                f"dot -T{_RENDERED[suffix]} {dot_path} -o {path}"
            )
        path.write_bytes(self.render(_RENDERED[suffix]))
        return path

    def _repr_svg_(self) -> str | None:
        if not graphviz_available():
            return None
        try:
            return self.to_svg()
        except (RuntimeError, OSError, subprocess.SubprocessError):
            return None  # Jupyter then shows the other representations

    def _repr_html_(self) -> str | None:
        if graphviz_available():
            return None  # Jupyter uses the SVG
        import html

        return (
            f"<p>Graphviz is not installed, so here is the DOT text; to see the picture, "
            f"{html.escape(INSTALL_GRAPHVIZ)}.</p><pre>{html.escape(self.source)}</pre>"
        )

    def __repr__(self) -> str:
        how = "collapsed into operation groups" if self.collapsed else "one node per value"
        return f"<EvaluationGraph {self.title!r}: {self.n_nodes} nodes for {self.n_values} values, {how}>"


def render_dot(source: str, format: str = "svg") -> bytes:
    """Draw DOT text with Graphviz's ``dot`` (through the ``graphviz`` package when it is
    installed, else by running ``dot`` directly)."""
    if format not in ("svg", "png"):
        raise ValueError(f"unknown picture format {format!r}: choose 'svg' or 'png'")
    exe = _dot_program()
    if exe is None:
        raise GraphvizNotFoundError(
            f"Graphviz's dot program is not installed, so the graph cannot be drawn as "
            f"{format.upper()}; {INSTALL_GRAPHVIZ}. The DOT text (graph.to_dot()) needs no "
            "Graphviz."
        )
    try:
        import graphviz
    except ImportError:
        graphviz = None
    if graphviz is not None:
        try:
            return graphviz.Source(source).pipe(format=format)
        except graphviz.ExecutableNotFound as e:
            raise GraphvizNotFoundError(f"{e}; {INSTALL_GRAPHVIZ}") from None
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"Graphviz's dot failed: {_stderr(e)}") from None
    try:
        run = subprocess.run(
            [exe, f"-T{format}"], input=source.encode("utf-8"), capture_output=True,
            timeout=_TIMEOUT, check=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"Graphviz's dot failed: {_stderr(e)}") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"Graphviz's dot took more than {_TIMEOUT:.0f} s: draw fewer nodes (a smaller "
            "max_nodes collapses the graph further)"
        ) from None
    return run.stdout


def _stderr(e: subprocess.CalledProcessError) -> str:
    err = e.stderr or b""
    return err.decode("utf-8", "replace").strip() if isinstance(err, bytes) else str(err)


# ---------------------------------------------------------------------------------------------
# Building the DOT text
# ---------------------------------------------------------------------------------------------


def evaluation_graph(
    trace: EvaluationTrace,
    *,
    tangent: bool = False,
    adjoint: bool = False,
    partials: bool = False,
    digits: int = 4,
    max_nodes: int = 100,
    collapse: bool | None = None,
    rankdir: str = "LR",
) -> EvaluationGraph:
    """The evaluation graph of ``trace``: the Wengert list v₋ₙ₊₁ … v_N as a DAG.

    Each value v_i = φ_i(v_j, …) is a node labelled with its operation and primal value, and
    has an edge from every v_j it reads.  ``tangent=True`` adds v̇_i (the forward tangent
    trace, v̇_i = Σ_j ∂φ_i/∂v_j · v̇_j) and ``adjoint=True`` adds v̄_i (the reverse adjoint
    trace, v̄_j = Σ_i v̄_i ∂φ_i/∂v_j); ``partials=True`` labels each scalar edge j → i with
    its local derivative ∂v_i/∂v_j.  Inputs are blue boxes, outputs bold orange boxes with an
    arrow to y.

    With more than ``max_nodes`` values (or ``collapse=True``) the graph is a summary: one node
    per (operation, shape, dtype) with its count, edges counted between groups; when even
    that has more than ``max_nodes`` nodes, the groups are by operation alone, and the rarest
    operations share one "other" node.
    """
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"rankdir must be 'LR', 'TB', 'RL' or 'BT', not {rankdir!r}")
    if not isinstance(max_nodes, (int, np.integer)) or max_nodes < 2:
        raise ValueError(f"max_nodes must be an integer of at least 2, not {max_nodes!r}")
    if collapse is None:
        collapse = len(trace.entries) > max_nodes
    if collapse:
        return _summary_graph(trace, int(max_nodes), rankdir, digits)
    return _full_graph(trace, tangent, adjoint, partials, digits, rankdir)


def _full_graph(trace, tangent, adjoint, partials, digits, rankdir) -> EvaluationGraph:
    title = trace._title(digits)
    if tangent:
        xdot = [_marked(n, _DOT) for n in trace.input_names]
        title += ", " + trace._point(trace.direction, xdot, digits)
    if adjoint:
        ybar = [_marked(y, _BAR) for y in _output_names(len(trace.outputs))]
        title += ", " + trace._point(trace.cotangent, ybar, digits)
    out = _header(f"evaluation graph of {trace.function}", title, rankdir)
    outputs = {i for i in trace.outputs if i is not None}
    node = {e.index: f"n{k}" for k, e in enumerate(trace.entries)}
    for e in trace.entries:
        lines = [f"{e.name} = {e.expr}", f"= {_num(e.value, digits)}"]
        if tangent:
            lines.append(f"{trace._name(e.index, _DOT)} = {_num(e.tangent, digits)}")
        if adjoint:
            lines.append(f"{trace._name(e.index, _BAR)} = {_num(e.adjoint, digits)}")
        attrs = {"label": "\n".join(lines), "tooltip": _tooltip(e)}
        style = _INPUT_STYLE if e.op == "input" else _OUTPUT_STYLE if e.index in outputs else ""
        out.append(f"  {node[e.index]} [{_attrs(attrs)}{', ' + style if style else ''}];")
    for e in trace.entries:
        for j, p in zip(e.inputs, e.partials or (None,) * len(e.inputs)):
            attrs = {}
            if partials and p is not None:
                attrs["label"] = _num(p, digits)
                attrs["tooltip"] = f"∂{e.name}/∂{trace[j].name} = {_num(p, digits)}"
            out.append(f"  {node[j]} -> {node[e.index]}{_edge_attrs(attrs)};")
    _output_arrows(out, trace, lambda i: node[i], digits)
    out.append("}")
    return EvaluationGraph(
        "\n".join(out), title, len(trace.entries), len(trace.entries), collapsed=False
    )


def _output_arrows(out: list, trace, node_of, digits: int) -> None:
    for k, (y, i) in enumerate(zip(_output_names(len(trace.outputs)), trace.outputs)):
        label = y if i is not None else f"{y} = {_num(trace.output_values[k], digits)}"
        out.append(f"  y{k} [{_attrs({'label': label})}, shape=plaintext, fontsize=14];")
        if i is not None:
            out.append(f'  {node_of(i)} -> y{k} [color="#b45309", penwidth=1.5];')


def _tooltip(e: TraceEntry) -> str:
    value = np.asarray(e.value)
    kind = "input" if e.op == "input" else e.op
    return f"{e.name}: {kind}, shape {value.shape}, {value.dtype}"


def _header(name: str, title: str, rankdir: str) -> list[str]:
    return [
        f"digraph {_quote(name)} {{",
        f"  graph [rankdir={rankdir}, label={_quote(title)}, labelloc=t, fontsize=13, "
        'fontname="Helvetica", nodesep=0.25, ranksep=0.35];',
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=11, margin="0.12,0.06"];',
        '  edge [color="#555555", arrowsize=0.7, fontname="Helvetica", fontsize=9];',
    ]


# ---------------------------------------------------------------------------------------------
# Large traces: a summary by operation and shape
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperationGroup:
    """The values of a trace that share an operation, shape and dtype (see
    :func:`operation_summary`): how many there are and which (``indices``)."""

    op: str
    shape: tuple[int, ...] | None
    dtype: str | None
    indices: tuple[int, ...]

    @property
    def count(self) -> int:
        """The number of values in the group."""
        return len(self.indices)

    def describe(self) -> str:
        """``op`` with its shape and dtype when the group has one, e.g. ``tanh (32, 8) float64``."""
        if self.shape is None:
            return self.op
        return f"{self.op} {_shape(self.shape)} {self.dtype}"


def operation_summary(trace: EvaluationTrace) -> list[OperationGroup]:
    """The values of ``trace`` grouped by (operation, shape, dtype), in order of first use."""
    groups: dict[tuple, list[int]] = {}
    for e in trace.entries:
        v = np.asarray(e.value)
        groups.setdefault((e.op, v.shape, str(v.dtype)), []).append(e.index)
    return [OperationGroup(op, s, d, tuple(ix)) for (op, s, d), ix in groups.items()]


def _shape(shape: tuple[int, ...]) -> str:
    return "scalar" if shape == () else "×".join(map(str, shape))


def _summary_graph(trace, max_nodes: int, rankdir: str, digits: int) -> EvaluationGraph:
    entries = trace.entries
    n_in = len(trace.inputs)

    def value_key(e, by_shape: bool, inputs_alone: bool) -> tuple:
        v = np.asarray(e.value)
        if e.op == "input":
            return ("input", e.index) if inputs_alone else ("input", v.shape, str(v.dtype))
        return (e.op, v.shape, str(v.dtype)) if by_shape else (e.op,)

    # The finest grouping that fits: inputs alone when there are few, shapes kept when they fit.
    inputs_alone = n_in <= max_nodes // 2
    for by_shape in (True, False):
        keys = [value_key(e, by_shape, inputs_alone) for e in entries]
        if len(set(keys)) <= max_nodes:
            break
    counts = Counter(keys)
    if len(counts) > max_nodes:  # still too many: the rarest operations share one node
        keep = {k for k, _ in counts.most_common(max_nodes - 1)}
        keys = [k if k in keep else ("other",) for k in keys]
        counts = Counter(keys)
    key_of = {e.index: k for e, k in zip(entries, keys)}
    order = list(dict.fromkeys(keys))  # first use
    node = {k: f"g{n}" for n, k in enumerate(order)}
    members: dict[tuple, list] = {}
    for e, k in zip(entries, keys):
        members.setdefault(k, []).append(e)

    outputs = {i for i in trace.outputs if i is not None}
    output_groups = {key_of[i] for i in outputs}
    how = "operation and shape" if by_shape else "operation"
    title = f"{trace.function}: {len(entries):,} values drawn as {len(order)} groups by {how}"
    if len(entries) > max_nodes:
        title += f" (more values than max_nodes={max_nodes})"
    out = _header(f"evaluation graph of {trace.function}", title, rankdir)
    for k in order:
        group = members[k]
        first = group[0]
        if k[0] == "input":
            v = np.asarray(first.value)
            if len(group) == 1:
                label = [f"{first.name} = {first.expr}", f"{_shape(v.shape)} {v.dtype}"]
            else:
                label = [f"{len(group)} inputs", f"{_shape(v.shape)} {v.dtype}"]
        elif k == ("other",):
            ops = sorted({e.op for e in group})
            shown = ", ".join(ops[:4]) + (", …" if len(ops) > 4 else "")
            label = [f"other operations × {len(group)}", shown]
        else:
            label = [f"{first.op} × {len(group)}" if len(group) > 1 else first.op]
            if len(k) == 3:
                label.append(f"{_shape(k[1])} {k[2]}")
            else:
                label.append("various shapes")
            if len(group) == 1:
                label.append(f"{first.name} = {_num(first.value, digits)}")
        span = group[0].name if len(group) == 1 else f"{group[0].name} … {group[-1].name}"
        count = f"{len(group)} value{'s' if len(group) > 1 else ''}"
        attrs = {"label": "\n".join(label), "tooltip": f"{count}: {span}"}
        style = _INPUT_STYLE if k[0] == "input" else _OUTPUT_STYLE if k in output_groups else ""
        out.append(f"  {node[k]} [{_attrs(attrs)}{', ' + style if style else ''}];")
    edges = Counter((key_of[j], key_of[e.index]) for e in entries for j in dict.fromkeys(e.inputs))
    for (a, b), c in edges.items():
        attrs = {"label": f"× {c}"} if c > 1 else {}
        width = f"penwidth={min(1 + np.log10(c), 4):.2f}"
        out.append(f"  {node[a]} -> {node[b]}{_edge_attrs(attrs, width)};")
    _output_arrows(out, trace, lambda i: node[key_of[i]], digits)
    out.append("}")
    return EvaluationGraph("\n".join(out), title, len(entries), len(order), collapsed=True)


# ---------------------------------------------------------------------------------------------
# DOT quoting
# ---------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """``text`` as a DOT double-quoted string: backslashes and quotes escaped, line breaks as
    Graphviz's centred ``\\n``, other control characters dropped."""
    text = unicodedata.normalize("NFC", str(text)).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c == "\n" or unicodedata.category(c) not in ("Cc", "Cs"))
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _attrs(attrs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_quote(v)}" for k, v in attrs.items())


def _edge_attrs(attrs: dict[str, Any], *extra: str) -> str:
    parts = [_attrs(attrs)] if attrs else []
    parts += list(extra)
    return f" [{', '.join(parts)}]" if parts else ""
