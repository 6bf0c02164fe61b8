"""Computational-graph pictures of evaluation traces: DOT text, SVG/PNG through Graphviz, the
summary of large graphs, and the elided tables of long traces."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

import wengert
import wengert.graph as wgraph
import wengert.numpy as wnp
from wengert import evaluation_trace
from wengert.graph import GraphvizNotFoundError, evaluation_graph, operation_summary

needs_dot = pytest.mark.skipif(
    not wgraph.graphviz_available(),
    reason="Graphviz's dot is not installed (apt-get install graphviz / brew install graphviz); "
    ".ci/run installs it in CI",
)


def survey_f(x1, x2):
    v1 = np.log(x1)
    v2 = x1 * x2
    v3 = np.sin(x2)
    v4 = v1 + v2
    return v4 - v3


def matlab_f(x1, x2):
    return x1 * np.exp(-0.5 * (x1**2 + x2**2))


def nodes_of(dot: str) -> dict[str, str]:
    """node id -> its DOT attribute text."""
    return dict(re.findall(r"^  ([ny]\d+|g\d+) \[(.*)\];$", dot, flags=re.M))


def edges_of(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"^  (\w+) -> (\w+)", dot, flags=re.M)


def label_of(attrs: str) -> list[str]:
    m = re.match(r'label="((?:[^"\\]|\\.)*)"', attrs)
    return m.group(1).split("\\n")


@pytest.fixture(scope="module")
def survey():
    return evaluation_trace(survey_f, 2.0, 5.0)


# ---------------------------------------------------------------------------------------------
# DOT text of small traces
# ---------------------------------------------------------------------------------------------


def test_survey_graph_is_the_wengert_list_as_a_dag(survey):
    g = survey.graph()
    assert not g.collapsed and g.n_nodes == g.n_values == 7
    dot = g.to_dot()
    assert dot == str(g) == survey.to_dot() and dot.startswith('digraph "evaluation graph of')
    nodes = nodes_of(dot)
    # n0 = v-1 ... n6 = v5; the survey's figure: v-1 feeds v1 and v2, v0 feeds v2 and v3, ...
    idx = {f"n{k}": k - 1 for k in range(7)}
    edges = {(idx[a], idx[b]) for a, b in edges_of(dot) if not b.startswith("y")}
    assert edges == {(-1, 1), (-1, 2), (0, 2), (0, 3), (1, 4), (2, 4), (4, 5), (3, 5)}
    assert label_of(nodes["n0"]) == ["v-1 = x1", "= 2"]
    assert label_of(nodes["n3"]) == ["v2 = v-1 × v0", "= 10"]
    assert label_of(nodes["n4"]) == ["v3 = sin v0", "= −0.9589"]
    assert label_of(nodes["n6"]) == ["v5 = v4 − v3", "= 11.6521"]
    # Inputs and outputs are marked; the output has an arrow to y.
    assert all("#dbeafe" in nodes[n] for n in ("n0", "n1"))
    assert not any("#dbeafe" in nodes[f"n{k}"] for k in range(2, 7))
    assert "peripheries=2" in nodes["n6"] and sum("peripheries=2" in a for a in nodes.values()) == 1
    assert label_of(nodes["y0"]) == ["y"] and ("n6", "y0") in edges_of(dot)


def test_tangent_adjoint_and_partial_labels():
    tr = evaluation_trace(matlab_f, 2.0, 0.5, prefix="u", direction=(1.0, 0.0))
    dot = tr.to_dot(tangent=True, adjoint=True, partials=True, digits=6)
    nodes = nodes_of(dot)
    assert label_of(nodes["n6"]) == ["u5 = exp u4", "= 0.119433", "u̇5 = −0.238866", "ū5 = 2"]
    assert label_of(nodes["n0"]) == ["u-1 = x1", "= 2", "u̇-1 = 1", "ū-1 = −0.358299"]
    assert "(ẋ1, ẋ2) = (1, 0)" in dot and "ȳ = 1" in dot
    # Edge labels are the local derivatives: ∂u6/∂u-1 = u5, ∂u6/∂u5 = u-1, ∂u4/∂u3 = −0.5.
    labelled = re.findall(r'^  (n\d) -> (n\d) \[label="([^"]*)"', dot, flags=re.M)
    assert ("n0", "n7", "0.119433") in labelled and ("n6", "n7", "2") in labelled
    assert ("n4", "n5", "−0.5") in labelled
    plain = tr.to_dot()
    assert "ū" not in plain and "u̇" not in plain
    assert not any("label=" in line for line in plain.splitlines() if " -> n" in line)


def test_repeated_arguments_constant_outputs_and_multiple_outputs():
    tr = evaluation_trace(lambda z: z * z, 3.0)
    assert edges_of(tr.to_dot()).count(("n0", "n1")) == 2  # both arguments of v1 are v0
    tr = evaluation_trace(lambda x, y: (x * y, x + 1.0, 7.0), 2.0, 3.0)
    dot = tr.to_dot()
    nodes = nodes_of(dot)
    assert label_of(nodes["y2"]) == ["y3 = 7"]  # an output that does not depend on the inputs
    assert {("n2", "y0"), ("n3", "y1")} <= set(edges_of(dot))
    assert sum("peripheries=2" in a for a in nodes.values()) == 2


def test_dot_text_is_escaped():
    def f(x, y):
        return x * y

    f.__name__ = 'quote" back\\slash \\N new\nline'
    tr = evaluation_trace(f, 2.0, 3.0, names=['a"b', "c\\d"])
    dot = tr.to_dot()
    assert 'quote\\" back\\\\slash \\\\N new\\nline' in dot
    assert 'label="v-1 = a\\"b\\n= 2"' in dot and 'label="v0 = c\\\\d\\n= 3"' in dot
    # Every quoted string is closed: an even number of unescaped quotes on every line.
    for line in dot.splitlines():
        assert len(re.findall(r'(?<!\\)(?:\\\\)*"', line)) % 2 == 0, line
    assert wgraph._quote("a\x00b\x1b[31mc\r\nd") == '"ab[31mc\\nd"'


def test_options_are_checked(survey):
    with pytest.raises(ValueError, match="rankdir"):
        survey.graph(rankdir="sideways")
    with pytest.raises(ValueError, match="max_nodes"):
        survey.graph(max_nodes=1)
    assert "rankdir=TB" in survey.to_dot(rankdir="TB")
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.dot"):
        survey.graph().save("picture.pdf")


# ---------------------------------------------------------------------------------------------
# Rendering through Graphviz, and what happens without it
# ---------------------------------------------------------------------------------------------


@needs_dot
def test_svg_and_png_render(survey, tmp_path):
    g = survey.graph(tangent=True, adjoint=True)
    svg = g.to_svg()
    assert "<svg" in svg and "</svg>" in svg
    assert "v2 = v&#45;1 × v0" in svg and "= 11.6521" in svg and "v̄0 = 1.7163" in svg
    assert svg.count('class="node"') == 8 and svg.count('class="edge"') == 9  # 7 + y, 8 + 1
    png = g.to_png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert g.save(tmp_path / "g.svg").read_text(encoding="utf-8").count("<svg") == 1
    assert (tmp_path / "g.png").exists() is False
    assert g.save(tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert survey.save_graph(tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph")
    # Jupyter: the graph shows itself as SVG, and the trace shows its tables and its graph.
    assert g._repr_svg_() == svg and g._repr_html_() is None
    page = survey._repr_html_()
    assert page.startswith(survey.to_html()[: -len("</div>")]) and page.count("<table") == 2
    assert '<div class="wengert-graph"><svg' in page and survey._repr_svg_().count("<svg") == 1


@needs_dot
def test_render_without_the_python_package(survey, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz -> ImportError
    assert "</svg>" in survey.graph().to_svg()


@needs_dot
def test_awkward_labels_render():
    def f(x, y):
        return x * y

    f.__name__ = 'quote" back\\slash <b>html</b> {braces} |bar| & amp;'
    tr = evaluation_trace(f, 2.0, 3.0, names=['a"b', "c\\d"])
    svg = tr.graph(tangent=True, adjoint=True, partials=True).to_svg()
    assert "a&quot;b" in svg or 'a"b' in svg
    assert "&lt;b&gt;html&lt;/b&gt;" in svg


def test_without_graphviz_the_dot_file_is_written(survey, tmp_path, monkeypatch):
    monkeypatch.setattr(wgraph, "_dot_program", lambda: None)
    g = survey.graph()
    with pytest.raises(GraphvizNotFoundError) as info:
        g.save(tmp_path / "pic.svg")
    msg = str(info.value)
    assert "apt-get install graphviz" in msg and "brew install graphviz" in msg
    assert str(tmp_path / "pic.dot") in msg and f"-o {tmp_path / 'pic.svg'}" in msg
    assert (tmp_path / "pic.dot").read_text(encoding="utf-8").strip() == g.to_dot()
    assert not (tmp_path / "pic.svg").exists()
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        g.to_png()
    assert g._repr_svg_() is None and survey._repr_svg_() is None
    assert "<pre>digraph" in g._repr_html_()
    assert survey._repr_html_() == survey.to_html()
    assert g.save(tmp_path / "ok.gv").read_text(encoding="utf-8").startswith("digraph")


# ---------------------------------------------------------------------------------------------
# Large traces: a network's loss with thousands of values
# ---------------------------------------------------------------------------------------------

B = 200  # samples, one at a time: 12 operations each


@pytest.fixture(scope="module")
def mlp():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(B, 4)), rng.normal(size=(B, 2))
    params = [rng.normal(size=s) for s in [(8, 4), (8,), (8, 8), (8,), (2, 8), (2,)]]

    def mlp_loss(W1, b1, W2, b2, W3, b3):
        total = 0.0
        for k in range(B):
            h = wnp.tanh(W1 @ X[k] + b1)
            h = wnp.tanh(W2 @ h + b2)
            out = W3 @ h + b3
            total = total + wnp.sum((out - Y[k]) ** 2)
        return total / B

    return mlp_loss, params, evaluation_trace(mlp_loss, *params)


def group_counts(dot: str) -> dict[str, int]:
    counts = {}
    for node, attrs in nodes_of(dot).items():
        if node.startswith("g"):
            first = label_of(attrs)[0]
            m = re.fullmatch(r"(.*) × (\d+)", first)
            counts[node] = int(m.group(2)) if m else 1
    return counts


def test_large_graph_collapses_by_operation_and_shape(mlp):
    f, params, tr = mlp
    assert len(tr.entries) == 6 + 12 * B + 1
    grads = wengert.grad(f, argnums=tuple(range(6)))(*params)
    for a, g in zip(tr.input_adjoints, grads):
        np.testing.assert_allclose(a, g, rtol=1e-12)
    g = tr.graph()
    assert g.collapsed and g.n_values == len(tr.entries) and g.n_nodes <= 100
    dot = g.to_dot()
    labels = {n: label_of(a) for n, a in nodes_of(dot).items()}
    assert sum(group_counts(dot).values()) == len(tr.entries)  # every value in one group
    assert ["tanh × 400", "8 float64"] in labels.values()
    assert ["matmul × 200", "2 float64"] in labels.values()
    assert ["sum × 200", "scalar float64"] in labels.values()
    assert ["v-5 = x1", "8×4 float64"] in labels.values()  # inputs stay one node each
    assert "2,407 values drawn as 16 groups by operation and shape" in dot
    out = [a for a in nodes_of(dot).values() if "peripheries=2" in a]
    assert len(out) == 1 and label_of(out[0])[0] == "divide"
    assert re.search(r'g\d+ -> g\d+ \[label="× 400"', dot)
    # Finer limits: by operation alone, then the rarest operations share one node.
    by_op = tr.graph(max_nodes=12)
    assert by_op.n_nodes <= 12 and "groups by operation (" in by_op.to_dot()
    assert sum(group_counts(by_op.to_dot()).values()) == len(tr.entries)
    tiny = tr.graph(max_nodes=3)
    assert tiny.n_nodes <= 3 and "other operations" in tiny.to_dot()
    assert sum(group_counts(tiny.to_dot()).values()) == len(tr.entries)
    # The small graph can be asked to collapse, and the big one not to.
    assert evaluation_graph(evaluation_trace(survey_f, 2.0, 5.0), collapse=True).collapsed
    assert tr.graph(collapse=False).n_nodes == len(tr.entries)


@needs_dot
def test_large_graph_renders(mlp):
    svg = mlp[2].graph().to_svg()
    assert svg.count('class="node"') == 17  # 16 groups and y


def test_operation_summary(mlp):
    tr = mlp[2]
    groups = operation_summary(tr)
    assert sum(g.count for g in groups) == len(tr.entries)
    tanh = [g for g in groups if g.op == "tanh"]
    assert len(tanh) == 1 and tanh[0].count == 2 * B and tanh[0].shape == (8,)
    assert tanh[0].describe() == "tanh 8 float64"
    text = tr.summary()
    assert "2,407 values (6 inputs, 2,401 operations) in 15 groups" in text
    assert any(line.split()[:4] == ["tanh", "│", "8", "│"] for line in text.splitlines())


def test_long_tables_show_their_first_and_last_rows(mlp):
    tr = mlp[2]
    text = tr.to_text()
    lines = text.splitlines()
    assert len(lines) < 2 * 70
    assert sum("⋮" in line and "rows not shown (max_rows=None shows them all)" in line
               for line in lines) == 2  # fmt: skip
    flat = [" ".join(line.split()) for line in lines]
    assert "v-5 = x1 = [8×4 array] │ v̇-5 = ẋ1 = [8×4 array]" in flat  # the first row
    assert any(line.startswith("y = v2401 = ") for line in flat)  # the last rows
    assert flat[-1] == "│ x̄6 = v̄0 = " + wengert.tracing._num(tr.input_adjoints[5])
    assert str(tr) == text
    full = tr.to_text(["forward"], max_rows=None)
    assert len(full.splitlines()) == 4 + len(tr.entries) + 2
    n = len(tr.entries) + 2 - 10
    assert f"⋮  {n:,} rows not shown" in tr.to_text(["forward"], max_rows=10)
    md = tr.to_markdown(max_rows=10)
    assert md.count("rows not shown") == 2 and md.count("\n|") < 40
    page = tr.to_html(max_rows=10)
    assert page.count('<td colspan="6" style="text-align:center">⋮') == 1
    assert page.count('<td colspan="7" style="text-align:center">⋮') == 1
    with pytest.raises(ValueError, match="max_rows"):
        tr.to_text(max_rows=1)
    # Short tables are not touched.
    survey = evaluation_trace(survey_f, 2.0, 5.0)
    assert survey.to_text(max_rows=12) == survey.to_text(max_rows=None)
