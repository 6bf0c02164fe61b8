"""The worked examples of the seed documents, by the API and by the evaluation trace.

* The MATLAB page: f(x) = x1·exp(−½(x1² + x2²)) at (2, ½), intermediates u1 … u6.
* Baydin et al.'s survey: y = ln x1 + x1·x2 − sin x2 at (2, 5), values v-1 … v5.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wengert
from wengert import evaluation_trace

ULP = 1e-15  # relative: one rounding of exp away from the hand computation


def matlab_f(x1, x2):
    return x1 * np.exp(-0.5 * (x1**2 + x2**2))


def survey_f(x1, x2):
    v1 = np.log(x1)
    v2 = x1 * x2
    v3 = np.sin(x2)
    v4 = v1 + v2
    return v4 - v3


def normalized_lines(text: str) -> list[str]:
    """The table's lines with runs of padding collapsed to one space."""
    return [" ".join(line.split()) for line in text.splitlines()]


# ---------------------------------------------------------------------------------------------
# The MATLAB example
# ---------------------------------------------------------------------------------------------

X1, X2 = 2.0, 0.5
E = math.exp(-(X1**2 + X2**2) / 2)
DF_DX1 = (1 - X1**2) * E
DF_DX2 = -X1 * X2 * E


def test_matlab_forward_takes_two_passes_reverse_one():
    calls = []

    def f(x1, x2):
        calls.append(None)
        return matlab_f(x1, x2)

    y1, d1 = wengert.jvp(f, (X1, X2), (1.0, 0.0))
    y2, d2 = wengert.jvp(f, (X1, X2), (0.0, 1.0))
    assert len(calls) == 2  # one forward pass per input, each giving one partial derivative
    calls.clear()
    y, pullback = wengert.vjp(f, X1, X2)
    g1, g2 = pullback(1.0)
    assert len(calls) == 1  # one pass records the trace, one sweep gives the whole gradient

    assert float(y) == pytest.approx(X1 * E, abs=1e-12)
    assert float(y1) == float(y2) == float(y)
    for forward, reverse, exact in [(d1, g1, DF_DX1), (d2, g2, DF_DX2)]:
        assert abs(float(forward) - exact) <= 1e-12
        assert abs(float(reverse) - exact) <= 1e-12
    assert wengert.grad(matlab_f, argnums=(0, 1))(X1, X2) == pytest.approx((DF_DX1, DF_DX2))


def test_matlab_intermediates_and_adjoints_by_hand():
    # The forward primal trace at (2, 1/2), by hand.
    u_m1, u0 = 2.0, 0.5
    u1 = u_m1**2  # 4
    u2 = u0**2  # 1/4
    u3 = u1 + u2  # 17/4
    u4 = -0.5 * u3  # -17/8
    u5 = math.exp(u4)  # e^(-17/8)
    u6 = u5 * u_m1  # 2 e^(-17/8)
    # The reverse adjoint trace, by hand, from the seed ū6 = ∂f/∂f = 1.
    ub6 = 1.0
    ub5 = ub6 * u_m1  # ∂u6/∂u5 = u-1
    ub4 = ub5 * u5  # ∂u5/∂u4 = exp u4 = u5
    ub3 = ub4 * -0.5  # ∂u4/∂u3 = -1/2
    ub1 = ub3  # ∂u3/∂u1 = 1
    ub2 = ub3  # ∂u3/∂u2 = 1
    ub0 = ub2 * 2 * u0  # ∂u2/∂u0 = 2 u0
    ub_m1 = ub1 * 2 * u_m1 + ub6 * u5  # the page's ū-1 = ū1·2u-1 + ū6·u5

    tr = evaluation_trace(matlab_f, X1, X2, prefix="u")
    values = {i: float(tr[i].value) for i in range(-1, 7)}
    assert [values[i] for i in range(-1, 5)] == [u_m1, u0, u1, u2, u3, u4]  # exact
    assert values[5] == pytest.approx(u5, rel=ULP)
    assert values[6] == pytest.approx(u6, rel=ULP)
    assert [tr[i].expr for i in range(1, 7)] == [
        "u-1^2",
        "u0^2",
        "u1 + u2",
        "−0.5 × u3",
        "exp u4",
        "u-1 × u5",
    ]
    adjoints = {i: float(tr[i].adjoint) for i in range(-1, 7)}
    hand = {-1: ub_m1, 0: ub0, 1: ub1, 2: ub2, 3: ub3, 4: ub4, 5: ub5, 6: ub6}
    for i in hand:
        assert adjoints[i] == pytest.approx(hand[i], rel=ULP), f"ū{i}"
    assert adjoints[6] == 1.0 and adjoints[5] == 2.0  # exact
    # The sweep visits the edges in reverse order; u-1 has two outgoing arrows (to u1 and u6).
    edges = [(s.source, s.target) for s in tr.steps]
    assert edges == [(6, -1), (6, 5), (5, 4), (4, 3), (3, 1), (3, 2), (2, 0), (1, -1)]
    to_m1 = [s for s in tr.steps if s.target == -1]
    assert [s.first for s in to_m1] == [True, False]
    assert float(to_m1[0].contribution) == pytest.approx(ub6 * u5, rel=ULP)
    assert float(to_m1[1].contribution) == pytest.approx(ub1 * 2 * u_m1, rel=ULP)
    x1bar, x2bar = tr.input_adjoints
    assert abs(float(x1bar) - DF_DX1) <= 1e-12 and abs(float(x2bar) - DF_DX2) <= 1e-12


def test_matlab_two_forward_traces_give_the_two_partials():
    e1 = evaluation_trace(matlab_f, X1, X2, direction=(1.0, 0.0), prefix="u")
    e2 = evaluation_trace(matlab_f, X1, X2, direction=(0.0, 1.0), prefix="u")
    u5 = E
    # u̇ along x1 by hand: u̇1 = 2u-1, u̇3 = u̇1, u̇4 = -u̇3/2, u̇5 = u5 u̇4, u̇6 = u5 + u-1 u̇5.
    by_hand = [1.0, 0.0, 4.0, 0.0, 4.0, -2.0, -2 * u5, u5 - 4 * u5]
    assert [float(e1[i].tangent) for i in range(-1, 7)] == pytest.approx(by_hand, rel=ULP)
    assert abs(float(e1.output_tangent) - DF_DX1) <= 1e-12
    assert abs(float(e2.output_tangent) - DF_DX2) <= 1e-12
    assert [float(e2[i].tangent) for i in range(-1, 5)] == [0.0, 1.0, 0.0, 1.0, 1.0, -0.5]
    text = normalized_lines(e1.to_text(["forward"]))
    assert "u1 = u-1^2 = 4 │ u̇1 = 4 × u̇-1 = 4" in text
    assert "u4 = −0.5 × u3 = −2.125 │ u̇4 = −0.5 × u̇3 = −2" in text


# ---------------------------------------------------------------------------------------------
# The survey example
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def survey():
    return evaluation_trace(survey_f, 2.0, 5.0, direction=(1.0, 0.0))


def test_survey_primal_trace(survey):
    assert [e.index for e in survey.entries] == [-1, 0, 1, 2, 3, 4, 5]
    assert [e.expr for e in survey.entries] == [
        "x1",
        "x2",
        "ln v-1",
        "v-1 × v0",
        "sin v0",
        "v1 + v2",
        "v4 − v3",
    ]
    assert [e.op for e in survey.entries] == [
        "input",
        "input",
        "log",
        "multiply",
        "sin",
        "add",
        "subtract",
    ]
    assert survey[3].inputs == (0,) and survey[2].inputs == (-1, 0) and survey[5].inputs == (4, 3)
    values = [float(e.value) for e in survey.entries]
    assert values[:3] == [2.0, 5.0, math.log(2)]
    assert values[3] == 10.0
    assert values[4] == pytest.approx(-0.95892427466, abs=1e-11)
    assert values[5] == pytest.approx(10.69314718056, abs=1e-11)
    assert values[6] == pytest.approx(11.65207145522, abs=1e-11)
    assert float(survey.value) == values[6]


def test_survey_tangent_trace(survey):
    assert [float(e.tangent) for e in survey.entries] == [1.0, 0.0, 0.5, 5.0, 0.0, 5.5, 5.5]
    assert float(survey.output_tangent) == 5.5
    assert survey[2].partials == (5.0, 2.0)  # ∂v2/∂v-1 = v0, ∂v2/∂v0 = v-1
    assert survey[3].partials == pytest.approx((math.cos(5),))


def test_survey_adjoint_trace(survey):
    adjoints = {e.index: float(e.adjoint) for e in survey.entries}
    assert adjoints[5] == 1.0 and adjoints[4] == 1.0 and adjoints[3] == -1.0
    assert adjoints[1] == 1.0 and adjoints[2] == 1.0
    assert adjoints[0] == pytest.approx(2 - math.cos(5), abs=1e-15)
    assert adjoints[-1] == 5.5
    to_v0 = [s for s in survey.steps if s.target == 0]
    assert [s.source for s in to_v0] == [3, 2]
    assert float(to_v0[0].contribution) == pytest.approx(-math.cos(5), abs=1e-15)
    assert float(to_v0[1].contribution) == 2.0
    assert float(to_v0[1].adjoint) == pytest.approx(1.716337814537, abs=1e-12)
    to_vm1 = [s for s in survey.steps if s.target == -1]
    assert [float(s.contribution) for s in to_vm1] == [5.0, 0.5]
    assert [float(s.adjoint) for s in to_vm1] == [5.0, 5.5]
    x1bar, x2bar = survey.input_adjoints
    assert float(x1bar) == 5.5 and float(x2bar) == pytest.approx(1.716337814537, abs=1e-12)
    g = wengert.grad(survey_f, argnums=(0, 1))(2.0, 5.0)
    assert float(g[0]) == float(x1bar) and float(g[1]) == float(x2bar)


def test_survey_tables_contain_the_values(survey):
    forward = normalized_lines(survey.to_text(["forward"]))
    assert forward[0] == "Forward mode: survey_f at (x1, x2) = (2, 5), (ẋ1, ẋ2) = (1, 0) ⇒ ẏ = 5.5"
    assert "Forward primal trace │ Forward tangent trace" in forward
    for row in [
        "v-1 = x1 = 2 │ v̇-1 = ẋ1 = 1",
        "v0 = x2 = 5 │ v̇0 = ẋ2 = 0",
        "v1 = ln v-1 = 0.693147 │ v̇1 = 0.5 × v̇-1 = 0.5",
        "v2 = v-1 × v0 = 10 │ v̇2 = 5 × v̇-1 + 2 × v̇0 = 5",
        "v3 = sin v0 = −0.958924 │ v̇3 = 0.283662 × v̇0 = 0",
        "v4 = v1 + v2 = 10.693147 │ v̇4 = v̇1 + v̇2 = 5.5",
        "v5 = v4 − v3 = 11.652071 │ v̇5 = v̇4 − v̇3 = 5.5",
        "y = v5 = 11.652071 │ ẏ = v̇5 = 5.5",
    ]:
        assert row in forward, row
    reverse = normalized_lines(survey.to_text(["reverse"]))
    assert "Forward primal trace │ Reverse adjoint trace" in reverse
    adjoint_column = [line.split("│ ")[1] for line in reverse if "│ v̄" in line or "│ x̄" in line]
    assert adjoint_column == [
        "v̄5 = ȳ = 1",
        "v̄4 = v̄5 · ∂v5/∂v4 = 1 × 1 = 1",
        "v̄3 = v̄5 · ∂v5/∂v3 = 1 × (−1) = −1",
        "v̄1 = v̄4 · ∂v4/∂v1 = 1 × 1 = 1",
        "v̄2 = v̄4 · ∂v4/∂v2 = 1 × 1 = 1",
        "v̄0 = v̄3 · ∂v3/∂v0 = −1 × 0.283662 = −0.283662",
        "v̄-1 = v̄2 · ∂v2/∂v-1 = 1 × 5 = 5",
        "v̄0 = v̄0 + v̄2 · ∂v2/∂v0 = −0.283662 + 1 × 2 = 1.716338",
        "v̄-1 = v̄-1 + v̄1 · ∂v1/∂v-1 = 5 + 1 × 0.5 = 5.5",
        "x̄1 = v̄-1 = 5.5",
        "x̄2 = v̄0 = 1.716338",
    ]
    assert str(survey) == survey.to_text()


def test_markdown_html_and_json(survey):
    md = survey.to_markdown()
    assert "| Forward primal trace | Forward tangent trace |" in md
    assert "| v3 = sin v0 = −0.958924 | v̇3 = 0.283662 × v̇0 = 0 |" in md
    assert "v̄0 = v̄0 + v̄2 · ∂v2/∂v0 = −0.283662 + 1 × 2 = 1.716338" in md
    page = survey.to_html()
    assert page.startswith('<div class="wengert-trace">') and page.endswith("</div>")
    # Jupyter shows the tables, then the graph when Graphviz is installed (tests/test_graph.py).
    assert survey._repr_html_().startswith(page[: -len("</div>")])
    assert '<th colspan="3" style="text-align:left">Forward tangent trace</th>' in page
    assert "<td>= 11.652071</td>" in page and "<td>= 1.716338</td>" in page
    assert page.count("<table") == 2

    data = json.loads(survey.to_json())
    assert data == survey.to_dict()
    assert data["function"] == "survey_f" and data["prefix"] == "v"
    v2 = data["entries"][3]
    assert v2 == {
        "index": 2,
        "name": "v2",
        "op": "multiply",
        "expr": "v-1 × v0",
        "inputs": [-1, 0],
        "constants": [],
        "params": {},
        "value": 10.0,
        "tangent": 5.0,
        "adjoint": 1.0,
        "partials": [5.0, 2.0],
        "output": 0,
        "n_outputs": 1,
    }
    assert data["outputs"] == [
        {"name": "y", "index": 5, "value": data["entries"][-1]["value"], "tangent": 5.5,
         "cotangent": 1.0}
    ]  # fmt: skip
    assert data["direction"] == [1.0, 0.0]
    assert data["input_adjoints"][0] == 5.5
    assert [(s["source"], s["target"]) for s in data["adjoint_steps"]][-2:] == [(2, 0), (1, -1)]


# ---------------------------------------------------------------------------------------------
# Beyond the seeds: arrays, constants, options, errors
# ---------------------------------------------------------------------------------------------


def test_array_inputs_agree_with_jvp_and_grad():
    W = np.arange(6.0).reshape(2, 3) / 10

    def f(x, b):
        return np.sum(np.tanh(W @ x + b) ** 2)

    x, b = np.array([1.0, -2.0, 0.5]), np.array([0.1, 0.2])
    dx, db = np.array([0.3, -1.0, 2.0]), np.array([1.0, 0.5])
    tr = evaluation_trace(f, x, b, direction=(dx, db))
    assert [e.op for e in tr.operations] == ["matmul", "add", "tanh", "power", "sum"]
    assert tr[1].expr == "[2×3 array] @ v-1"
    np.testing.assert_array_equal(tr[1].constants[0], W)
    _, t = wengert.jvp(f, (x, b), (dx, db))
    assert float(tr.output_tangent) == pytest.approx(float(t), rel=1e-14)
    gx, gb = wengert.grad(f, argnums=(0, 1))(x, b)
    np.testing.assert_allclose(tr.input_adjoints[0], gx, rtol=1e-14)
    np.testing.assert_allclose(tr.input_adjoints[1], gb, rtol=1e-14)
    assert tr[2].partials == (None, None)  # array edges: a Jacobian, not a number
    assert x.flags.writeable and b.flags.writeable and W.flags.writeable
    json.dumps(tr.to_dict())  # every value is JSON-able
    assert "∂v1/∂v-1 · v̇-1" in tr.to_text()


def test_prefix_names_wrt_and_default_direction():
    tr = evaluation_trace(lambda a, n, c: a * c + n, 3.0, 2.0, 4.0, wrt=(0, 2), names=["a", "c"])
    assert tr.input_names == ("a", "c")
    assert [e.expr for e in tr.entries] == ["a", "c", "v-1 × v0", "v1 + 2"]
    assert [float(t) for t in tr.direction] == [1.0, 0.0]  # default ẋ = e1
    assert float(tr.output_tangent) == 4.0
    text = tr.to_text()
    assert "ȧ" in text and "ā = v̄-1" in " ".join(text.split())
    tr_u = evaluation_trace(matlab_f, X1, X2, prefix="u")
    assert tr_u[3].name == "u3" and "ū6 = ȳ" in " ".join(tr_u.to_text(["reverse"]).split())


def test_several_outputs_constant_outputs_and_custom_rules():
    @wengert.custom_vjp
    def square(x):
        return x * x

    square.defvjp(lambda x: (x * x, x), lambda x, g: (2 * x * g,))

    def f(x, y):
        return {"a": square(x) + y, "b": x * 2.0, "c": 7.0}

    tr = evaluation_trace(f, 3.0, 1.0, cotangent={"a": 1.0, "b": 10.0, "c": 0.0})
    assert tr.outputs == (2, 3, None)
    assert {k: float(v) for k, v in tr.value.items()} == {"a": 10.0, "b": 6.0, "c": 7.0}
    # A custom_vjp has no JVP rule: its Jacobian comes from its VJP rule, row by row.
    assert tr[1].op == "custom_vjp[square]" and float(tr[1].tangent) == 6.0
    assert tr[1].partials == (6.0,)
    assert float(tr.output_tangent["a"]) == 6.0 and float(tr.output_tangent["b"]) == 2.0
    assert float(tr.output_tangent["c"]) == 0.0
    assert [float(a) for a in tr.input_adjoints] == [2 * 3.0 + 10 * 2.0, 1.0]
    text = " ".join(tr.to_text().split())
    assert "v̇1 = 6 × v̇-1 = 6" in text and "y3 = 7" in text
    # ... except for complex values, where VJP rows need not be the JVP: the tangent is unknown.
    tc = evaluation_trace(lambda z: square(z) + 1.0, 1.0 + 1.0j)
    assert tc[1].tangent is None and tc[2].tangent is None and tc.output_tangent is None
    assert complex(tc.input_adjoints[0]) == 2 * (1 + 1j)
    assert "(no JVP rule)" in tc.to_text() and "ẏ = v̇2 = ?" in " ".join(tc.to_text().split())


def test_complex_and_repeated_arguments():
    tr = evaluation_trace(lambda z: z * z, 1.0 + 2.0j)
    assert tr[1].inputs == (0, 0) and tr[1].partials == (None, None)
    assert complex(tr.output_tangent) == 2 * (1 + 2j)
    assert complex(tr.input_adjoints[0]) == 2 * (1 + 2j)  # transpose without conjugation
    assert tr.to_dict()["entries"][1]["value"] == {"real": -3.0, "imag": 4.0}


def test_inputs_are_not_touched():
    x = np.array([1.0, 2.0])
    tr = evaluation_trace(lambda v: np.sum(np.sin(v)), x)
    assert x.flags.writeable
    x[0] = 100.0  # the trace holds its own copy
    assert float(tr[0].value[0]) == 1.0
    c = np.array([1.0, 2.0])

    def fails(v):
        np.sum(v * c)  # the tape saves c ...
        raise KeyError("... and then f fails")

    with pytest.raises(KeyError):
        evaluation_trace(fails, x)
    assert c.flags.writeable  # the constants the tape saved are writable again


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"prefix": "v 1"}, ValueError, "prefix"),
        ({"names": ["a"]}, ValueError, "1 names for 2"),
        ({"direction": (1.0,)}, ValueError, "direction has 1 entries"),
        ({"direction": (np.ones(2), 0.0)}, ValueError, "shape"),
        ({"wrt": 5}, ValueError, "out of range"),
        ({"cotangent": (1.0, 2.0)}, ValueError, "cotangent"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        evaluation_trace(survey_f, 2.0, 5.0, **kwargs)


def test_integer_inputs_are_constants():
    with pytest.raises(TypeError, match="integer"):
        evaluation_trace(survey_f, 2, 5)
    tr = evaluation_trace(survey_f, 2.0, 5, wrt=0)
    assert [e.expr for e in tr.entries][:4] == ["x1", "ln v0", "v0 × 5", "v1 + v2"]


def test_demo_script_prints_both_examples():
    script = Path(__file__).resolve().parents[1] / "examples" / "seed_examples.py"
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    out = run.stdout
    assert 60 <= len(out.splitlines()) <= 130
    assert "Reverse adjoint trace" in out and "Forward tangent trace" in out
    assert "✗" not in out and out.count("✓") == 6
    assert "1.716338" in out and "−0.358299" in out
