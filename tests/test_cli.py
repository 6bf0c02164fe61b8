"""The ``wengert`` command line: the seed examples through ``wengert trace``, its outputs and
graphs, and a safe formula parser (hostile and random strings get exit code 2 and one line)."""

from __future__ import annotations

import builtins
import contextlib
import inspect
import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wengert
import wengert.cli as cli
import wengert.graph as wgraph
import wengert.numpy as wnp
from wengert import evaluation_trace

MATLAB = "x1*exp(-0.5*(x1**2+x2**2))"
SURVEY = "log(x1) + x1*x2 - sin(x2)"


def run(*argv: str) -> tuple[int, str, str]:
    """``wengert ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def run_json(*argv: str) -> dict:
    code, out, err = run("trace", *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def assert_bad_input(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wengert: error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


# ---------------------------------------------------------------------------------------------
# The seed examples, through the API and the command line
# ---------------------------------------------------------------------------------------------

X1, X2 = 2.0, 0.5
E = math.exp(-(X1**2 + X2**2) / 2)


def matlab_f(x1, x2):
    return x1 * np.exp(-0.5 * (x1**2 + x2**2))


def test_matlab_example_u_values_and_adjoints():
    data = run_json(MATLAB, "--at", "x1=2", "x2=0.5", "--prefix", "u")
    api = evaluation_trace(matlab_f, X1, X2, prefix="u")
    entries = data["trace"]["entries"]
    # The command line records the same Wengert list as the API, number for number.
    assert entries == api.to_dict()["entries"]
    assert data["trace"]["adjoint_steps"] == api.to_dict()["adjoint_steps"]
    u = {e["index"]: e["value"] for e in entries}
    ubar = {e["index"]: e["adjoint"] for e in entries}
    assert [e["name"] for e in entries] == [f"u{i}" for i in range(-1, 7)]
    assert [e["expr"] for e in entries[2:]] == [
        "u-1^2", "u0^2", "u1 + u2", "−0.5 × u3", "exp u4", "u-1 × u5"
    ]  # fmt: skip
    # The MATLAB page's intermediate values at (2, ½) ...
    assert [u[i] for i in range(-1, 5)] == [2.0, 0.5, 4.0, 0.25, 4.25, -2.125]
    assert u[5] == pytest.approx(E, rel=1e-15) and u[6] == pytest.approx(2 * E, rel=1e-15)
    # ... and their adjoints: ū6 = 1, ū5 = u-1, ū4 = ū5 u5, ū3 = −ū4/2, ū1 = ū2 = ū3,
    # ū0 = 2 u0 ū2, ū-1 = u5 ū6 + 2 u-1 ū1.
    assert ubar[6] == 1.0 and ubar[5] == 2.0
    assert ubar[4] == pytest.approx(2 * E, rel=1e-15)
    for i in (3, 2, 1, 0):
        assert ubar[i] == pytest.approx(-E, rel=1e-15)
    assert ubar[-1] == pytest.approx(E - 4 * E, rel=1e-15)
    grad = data["gradient"]
    assert grad["x1"] == pytest.approx((1 - X1**2) * E, abs=1e-15)
    assert grad["x2"] == pytest.approx(-X1 * X2 * E, abs=1e-15)
    assert data["value"] == pytest.approx(X1 * E, rel=1e-15)
    assert data["directional_derivative"]["wrt"] == "x1"
    assert data["directional_derivative"]["value"] == pytest.approx(grad["x1"], rel=1e-15)
    assert data["variables"] == {"x1": 2.0, "x2": 0.5} and data["mode"] == "both"


def test_survey_example_tables_at_2_5():
    data = run_json(SURVEY, "--at", "x1=2", "x2=5", "--mode", "forward")
    api = evaluation_trace(lambda x1, x2: np.log(x1) + x1 * x2 - np.sin(x2), 2.0, 5.0)
    assert data["trace"]["entries"] == api.to_dict()["entries"]
    by_op = {e["op"]: e for e in data["trace"]["entries"]}
    # The survey's values (its v3 = sin v0 comes after v4 = v1 + v2 here: left to right).
    expect = {
        "log": (math.log(2), 0.5, 1.0),
        "multiply": (10.0, 5.0, 1.0),
        "sin": (math.sin(5), 0.0, -1.0),
        "add": (math.log(2) + 10, 5.5, 1.0),
        "subtract": (math.log(2) + 10 - math.sin(5), 5.5, 1.0),
    }
    for op, (value, tangent, adjoint) in expect.items():
        assert by_op[op]["value"] == pytest.approx(value, abs=1e-14), op
        assert by_op[op]["tangent"] == pytest.approx(tangent, abs=1e-15), op
        assert by_op[op]["adjoint"] == adjoint, op
    assert by_op["sin"]["partials"] == [pytest.approx(math.cos(5))]
    assert data["gradient"] == {"x1": 5.5, "x2": pytest.approx(2 - math.cos(5), abs=1e-15)}
    assert data["directional_derivative"] == {"wrt": "x1", "value": 5.5}
    # --wrt picks the forward direction.
    d2 = run_json(SURVEY, "--at", "x1=2", "x2=5", "--wrt", "x2")
    assert d2["directional_derivative"]["value"] == pytest.approx(2 - math.cos(5), abs=1e-15)
    assert d2["trace"]["direction"] == [0.0, 1.0]
    assert "directional_derivative" not in run_json(SURVEY, "--at", "x1=2", "x2=5", "--mode",
                                                    "reverse")  # fmt: skip


def test_text_output_prints_value_tables_and_gradient():
    code, out, err = run("trace", SURVEY, "--at", "x1=2", "x2=5")
    assert code == 0 and err == ""
    flat = [" ".join(line.split()) for line in out.splitlines()]
    assert flat[0] == "f(x1, x2) = log(x1) + x1*x2 - sin(x2) at x1 = 2, x2 = 5"
    assert flat[2] == "f = 11.652071455223"
    assert "v1 = ln v-1 = 0.693147 │ v̇1 = 0.5 × v̇-1 = 0.5" in flat
    assert "v2 = v-1 × v0 = 10 │ v̇2 = 5 × v̇-1 + 2 × v̇0 = 5" in flat
    adjoints = [line.split("│ ")[-1] for line in flat if "│ v̄" in line]
    assert "v̄0 = v̄0 + v̄2 · ∂v2/∂v0 = −0.283662 + 1 × 2 = 1.716338" in adjoints
    assert flat[-2] == "Derivative along x1 (forward mode, one pass): ∂f/∂x1 = 5.5"
    assert flat[-1] == (
        "Gradient (reverse mode, one backward sweep): ∂f/∂x1 = 5.5, ∂f/∂x2 = 1.716337814537"
    )
    forward = run("trace", SURVEY, "--at", "x1=2", "x2=5", "--mode", "forward")[1]
    assert "Forward tangent trace" in forward and "Reverse adjoint trace" not in forward
    reverse = run("trace", SURVEY, "--at", "x1=2", "x2=5", "--mode", "reverse")[1]
    assert "Reverse adjoint trace" in reverse and "Forward tangent trace" not in reverse
    assert "Derivative along" not in reverse and "Gradient" in reverse
    md = run("trace", SURVEY, "--at", "x1=2", "x2=5", "--format", "markdown")[1]
    assert md.startswith("### `f(x1, x2) = log(x1) + x1*x2 - sin(x2)` at x1 = 2, x2 = 5")
    assert "| v4 = v3 − v1 = 11.652071 | v̇4 = v̇3 − v̇1 = 5.5 |" not in md
    assert "| Forward primal trace | Forward tangent trace |" in md and "**Value:**" in md
    u = run("trace", MATLAB, "--at", "x1=2", "x2=0.5", "--prefix", "u", "--digits", "3")[1]
    assert "u5 = exp u4 = 0.119" in " ".join(u.split())


def test_vectors_constants_and_functions_of_two_arguments():
    data = run_json("sum(tanh(w*x)**2) + maximum(w, 0.25)*pi", "--at", "w=0.5", "x=1,2,3")
    x = np.array([1.0, 2.0, 3.0])
    g = wengert.grad(lambda w, x: wnp.sum(wnp.tanh(w * x) ** 2) + wnp.maximum(w, 0.25) * np.pi,
                     argnums=(0, 1))(0.5, x)  # fmt: skip
    assert data["gradient"]["w"] == pytest.approx(float(g[0]), rel=1e-14)
    assert data["gradient"]["x"] == pytest.approx(g[1].tolist(), rel=1e-14)
    assert data["variables"]["x"] == [1.0, 2.0, 3.0]
    # A vector output: no gradient, but ȳᵀJ with ȳ = ones.
    data = run_json("outer(x, x)", "--at", "x=1,2")
    assert data["gradient"] is None and data["input_adjoints"]["x"] == [6.0, 6.0]
    code, out, _ = run("trace", "sin(x)", "--at", "x=0,1")
    assert code == 0 and "Adjoints x̄ = ȳᵀJ for ȳ = ones" in out


def one_call(name: str, arity: int) -> tuple[str, list[str]]:
    if name in ("dot", "inner", "outer", "matmul", "vdot"):
        return f"{name}(x, y)", ["x=0.3,0.4", "y=0.5,0.6"]
    if name in ("sum", "mean", "prod", "max", "min", "amax", "amin", "logsumexp", "std", "var"):
        return f"{name}(x)", ["x=0.3,0.4,0.9"]
    if name == "clip":
        return "clip(x, 0.1, y)", ["x=0.3", "y=0.8"]
    point = "1.5" if name == "arccosh" else "0.3"
    if arity == 1:
        return f"{name}(x)", [f"x={point}"]
    return f"{name}(x, y)", [f"x={point}", "y=0.7"]


@pytest.mark.parametrize("name", sorted(cli.FUNCTIONS))
def test_every_allowed_function_traces_and_differentiates(name):
    f, arity = cli.FUNCTIONS[name]
    assert f is vars(wnp)[name] and callable(f)
    expr, at = one_call(name, arity)
    data = run_json(expr, "--at", *at)
    values = [np.array(v) for v in data["variables"].values()]

    def g(*xs):
        return wnp.sum(cli.parse_expression(expr).function(list(data["variables"]))(*xs))

    expected = wengert.grad(g, argnums=tuple(range(len(values))))(*values)
    for got, want in zip(data["input_adjoints"].values(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_the_allow_list_is_explicit():
    assert set(cli.FUNCTIONS) <= set(cli._ALLOWED)
    assert {"exp", "log", "sin", "cos", "tan", "sqrt", "tanh", "maximum"} <= set(cli.FUNCTIONS)
    dangerous = "eval exec open getattr __import__ compile print vars array zeros load fromfile"
    assert not set(dangerous.split()) & set(cli.FUNCTIONS)
    for name in cli.FUNCTIONS:  # wengert's own functions, not NumPy's fallbacks
        assert name in vars(wnp)


# ---------------------------------------------------------------------------------------------
# Graphs from the command line
# ---------------------------------------------------------------------------------------------


def test_graph_dot_from_the_command_line(tmp_path):
    path = tmp_path / "f.dot"
    code, _, err = run("trace", MATLAB, "--at", "x1=2", "x2=0.5", "--mode", "reverse",
                       "--graph", str(path), "--partials")  # fmt: skip
    assert code == 0 and err.strip() == f"wengert: wrote {path}"
    dot = path.read_text(encoding="utf-8")
    assert dot.startswith("digraph") and "v̄5 = 2" in dot and "v̇" not in dot
    assert '[label="−0.5"' in dot  # --partials: ∂v4/∂v3
    fwd = tmp_path / "fwd.gv"
    assert run("trace", MATLAB, "--at", "x1=2", "x2=0.5", "--mode", "forward",
               "--graph", str(fwd))[0] == 0  # fmt: skip
    assert "v̇5 = −0.2389" in fwd.read_text(encoding="utf-8")


@pytest.mark.skipif(not wgraph.graphviz_available(), reason="Graphviz's dot is not installed")
def test_graph_svg_and_png_from_the_command_line(tmp_path):
    svg, png = tmp_path / "f.svg", tmp_path / "f.png"
    assert run("trace", SURVEY, "--at", "x1=2", "x2=5", "--graph", str(svg))[0] == 0
    assert "</svg>" in svg.read_text(encoding="utf-8")
    assert run("trace", SURVEY, "--at", "x1=2", "x2=5", "--graph", str(png))[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_graph_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(wgraph, "_dot_program", lambda: None)
    code, out, err = run("trace", SURVEY, "--at", "x1=2", "x2=5", "--graph",
                         str(tmp_path / "f.svg"))  # fmt: skip
    assert code == 1 and "Gradient" in out  # the tables are printed all the same
    assert len(err.splitlines()) == 1
    assert "apt-get install graphviz" in err and "brew install graphviz" in err
    assert (tmp_path / "f.dot").read_text(encoding="utf-8").startswith("digraph")


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit code 2
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, at, fragments",
    [
        ("__import__('os').system('echo hi')", ["x1=1"], ["column 1", "allowed functions"]),
        ("x1.real", ["x1=1"], ["column 1", "attribute access"]),
        ("x1 + x1[0]", ["x1=1"], ["column 6", "indexing"]),
        ("lambda: x1", ["x1=1"], ["column 1", "lambda"]),
        ("[x1 for x1 in y]", ["x1=1"], ["column 1", "comprehensions"]),
        ("sum(x1 for x1 in y)", ["x1=1"], ["column 4", "generator"]),
        ("exp(x1, out=x1)", ["x1=1"], ["column 9", "keyword arguments"]),
        ("f'{x1}'", ["x1=1"], ["column 1", "f-strings"]),
        ("(y:=x1)", ["x1=1"], ["column 2", "assignment expressions"]),
        ("x1 if x1 else 2", ["x1=1"], ["column 1", "conditional"]),
        ("x1 < 2", ["x1=1"], ["comparisons"]),
        ("x1 and x1", ["x1=1"], ["'and' / 'or'"]),
        ("x1 // 2", ["x1=1"], ["floor division"]),
        ("x1 % 2", ["x1=1"], ["remainder"]),
        ("x1 @ x1", ["x1=1"], ["matmul(a, b)"]),
        ("x1 ^ 2", ["x1=1"], ["**"]),
        ("~x1", ["x1=1"], ["bitwise not"]),
        ("not x1", ["x1=1"], ["'not'"]),
        ("x1 + 'a'", ["x1=1"], ["column 6", "strings"]),
        ("x1 * 2j", ["x1=1"], ["complex"]),
        ("x1 + True", ["x1=1"], ["True is not a number"]),
        ("x1 + None", ["x1=1"], ["None"]),
        ("x1 + ...", ["x1=1"], ["Ellipsis"]),
        ("(x1, x1)", ["x1=1"], ["tuples"]),
        ("{x1: 1}", ["x1=1"], ["dicts"]),
        ("exp(*x1)", ["x1=1"], ["column 5", "starred"]),
        ("open(x1)", ["x1=1"], ["open is not an allowed function"]),
        ("exp", ["x1=1"], ["exp is a function"]),
        ("exp(x1, x1)", ["x1=1"], ["exp takes 1 argument, but 2 were given"]),
        ("x1 +", ["x1=1"], ["column 5", "ends too early"]),
        ("x1 ) 2", ["x1=1"], ["column 4", "unmatched"]),
        ("x1 + 1e999", ["x1=1"], ["column 6", "infinity"]),
        ("x1 + π", ["x1=1"], ["column 6", "U+03C0"]),
        ("x1\n+ 1", ["x1=1"], ["column 3", "line break"]),
        ("x1 + \x1b[31m", ["x1=1"], ["column 6", "U+001B"]),
        ("x1 + \u202ex1", ["x1=1"], ["column 6", "U+202E"]),
        ("", ["x1=1"], ["empty"]),
        ("   ", ["x1=1"], ["empty"]),
        ("x1 + x3", ["x1=1"], ["x3 has no value", "x3=..."]),
        ("x1", ["x1=1", "x2=3"], ["x2", "does not use"]),
        ("x1", ["x1=abc"], ["'abc' is not a number"]),
        ("x1", ["x1=nan"], ["'nan' is not a number"]),
        ("x1", ["x1=inf"], ["'inf' is not a number"]),
        ("x1", ["x1=1e999"], ["too large"]),
        ("x1", ["x1=1,"], ["'' is not a number"]),
        ("x1", ["x1=١"], ["not a number"]),
        ("x1", ["x1"], ["NAME=VALUE"]),
        ("x1", ["x1=1", "x1=2"], ["given twice"]),
        ("x1", ["1x=1"], ["not a variable name"]),
        ("exp + 1", ["exp=1"], ["exp is a function"]),
        ("pi", ["pi=1"], ["pi is a constant"]),
        ("2 + 3", [], ["no variables"]),
        ("dot(x, y)", ["x=1,2", "y=1,2,3"], ["column 1", "cannot evaluate dot"]),
        ("x1 + " * 300 + "x1", ["x1=1"], ["1000"]),
        ("(" * 150 + "x1" + ")" * 150, ["x1=1"], ["column 101", "nested"]),
        (" " + "-" * 500 + "x1", ["x1=1"], ["nested more than 100 levels"]),
        ("exp(" * 120 + "x1" + ")" * 120, ["x1=1"], ["nested"]),
        ("x1**" * 150 + "x1", ["x1=1"], ["nested"]),
    ],
)
def test_bad_formulas_and_values(expr, at, fragments):
    argv = ["trace", expr] + (["--at", *at] if at else [])
    assert_bad_input(*run(*argv), *fragments)


@pytest.mark.parametrize(
    "argv, fragments",
    [
        ([], ["no command"]),
        (["frobnicate"], ["invalid choice"]),
        (["trace"], ["no formula"]),
        (["trace", "--at", "x1=2", "x1*x1"], ["NAME=VALUE", "before --at"]),
        (["trace", "x1", "--at", "x1=2", "--mo", "forward"], ["unrecognized arguments: --mo"]),
        (["trace", "x1", "--at", "x1=2", "--mode", "sideways"], ["invalid choice"]),
        (["trace", "x1", "--at", "x1=2", "--format", "yaml"], ["invalid choice"]),
        (["trace", "x1", "--at", "x1=2", "--wrt", "x2"], ["--wrt x2"]),
        (["trace", "x1", "--at", "x1=2", "--digits", "99"], ["digits"]),
        (["trace", "x1", "--at", "x1=2", "--prefix", "v 1"], ["prefix"]),
        (["trace", "x1", "--at", "x1=2", "--graph", "f.pdf"], [".svg, .png or .dot"]),
        (["trace", "x1", "--at", "x1=2", "--graph", "/no/such/dir/f.dot"], ["no folder"]),
    ],
)
def test_bad_command_lines(argv, fragments):
    assert_bad_input(*run(*argv), *fragments)


def test_help_version_debug_and_leading_minus(capsys):
    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"wengert {wengert.__version__}"
    code, out, _ = run("--help")
    assert code == 0 and "wengert trace" in out and "exit status" in out
    code, out, _ = run("trace", "--help")
    assert code == 0 and "arctan" in out and "--wrt" in out
    code, out, err = run("--debug", "trace", "x1.real", "--at", "x1=1")
    assert code == 2 and "Traceback" in err and err.splitlines()[-1].startswith("wengert: error")
    for formula in [" -x1", "-x1", "-x1*1", "--x1*-1", "-maximum(x1, 0)"]:  # not options
        code, out, _ = run("trace", formula, "--at", "x1=2")
        assert code == 0 and "f = −2" in out, (formula, out)
    code, out, _ = run("trace", "--mode", "reverse", "-x1", "--at", "x1=2")
    assert code == 0 and "∂f/∂x1 = −1" in out


def test_unexpected_errors_are_one_line_with_status_1(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "evaluation_trace", broken)
    code, out, err = run("trace", "x1", "--at", "x1=2")
    assert code == 1 and out == ""
    assert err == (
        "wengert: internal error: RuntimeError: boom second line (please report it; --debug "
        "shows the traceback)\n"
    )


def test_the_formula_is_never_run_by_python(monkeypatch):
    source = inspect.getsource(cli)
    assert not re.search(r"(?<![\w.])(eval|exec|compile|__import__)\(", source)

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert run("trace", MATLAB, "--at", "x1=2", "x2=0.5")[0] == 0
    assert_bad_input(*run("trace", "__import__('os').system('exit 3')", "--at", "x1=1"))


def test_parse_expression_api():
    e = cli.parse_expression("  x2*exp(x1) + pi*y")
    assert e.variables == ("x2", "x1", "y")
    assert e.evaluate({"x1": 0.0, "x2": 2.0, "y": 1.0}) == pytest.approx(2 + math.pi)
    assert e.function(["x1", "x2", "y"])(0.0, 3.0, 0.0) == pytest.approx(3.0)
    with pytest.raises(cli.ExpressionError) as info:
        cli.parse_expression("  x1 + x1.y")
    assert info.value.column == 8 and isinstance(info.value, ValueError)
    assert cli.parse_expression("9**9**9**9").evaluate({}) == math.inf  # floats, not a huge int


# ---------------------------------------------------------------------------------------------
# Fuzzing the parser
# ---------------------------------------------------------------------------------------------

HOSTILE = [
    "__import__('os')",
    "__import__('os').system('echo pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "x1.__class__",
    "x1.real",
    "x1[0]",
    "x1[::-1]",
    "lambda: 1",
    "(lambda: 1)()",
    "[i for i in x1]",
    "{i for i in x1}",
    "{i: i for i in x1}",
    "(i for i in x1)",
    "exp(x1, out=x1)",
    "exp(**{})",
    "exp(*x1)",
    "open('/etc/passwd')",
    "eval('1')",
    "exec('1')",
    "compile('1', 'f', 'eval')",
    "getattr(x1, 'real')",
    "globals()",
    "breakpoint()",
    "print(1)",
    "'a'",
    "b'a'",
    "f'{x1}'",
    "(y := 1)",
    "x1 if x1 else x1",
    "x1 == x1",
    "x1 and x1",
    "not x1",
    "~x1",
    "x1 // x1",
    "x1 % x1",
    "x1 @ x1",
    "x1 << 1",
    "x1 | x1",
    "x1 ^ x1",
    "1j",
    "None",
    "True",
    "...",
    "[x1]",
    "(x1, x1)",
    "{x1}",
    "await x1",
    "yield x1",
    "x1; x1",
    "import os",
    "x1 = 1",
    "#",
    "\\",
    "x1\x00",
    "x1\n",
    "π",
    "ｘ1",
    "x1\u202e",
    "\ud800",
    "x1 +",
    "x1 )",
    "(x1",
    "1e999",
    "x1 + x_unknown",
    "exp(x1, x1)",
    "9" * 5000,
    "x1+" * 400 + "x1",
    "(" * 300 + "x1" + ")" * 300,
    "[" * 300,
    " " + "-" * 900 + "x1",
    "exp(" * 200 + "x1" + ")" * 200,
    "x1**" * 200 + "x1",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_formulas(hostile):
    assert_bad_input(*run("trace", hostile, "--at", "x1=0.5"))


def wrap(hostile: str, left: str, right: str) -> str:
    return f"{left}({hostile}){right}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hostile=st.sampled_from([h for h in HOSTILE if h not in ("(x1", "x1 )")]),
    left=st.sampled_from(["", "x1 + ", "exp(", "-", "x1*(", "2**"]),
    right=st.sampled_from(["", " * x1", ")", "**2", " - sin(x1)"]),
)
def test_fuzz_hostile_inside_good_formulas(hostile, left, right):
    """A forbidden piece anywhere in a formula is caught, whatever surrounds it."""
    assert_bad_input(*run("trace", wrap(hostile, left, right), "--at", "x1=0.5"))


TOKENS = "x1 ( ) + - * / ** exp sin , 2 0.5 . [ ] lambda : x2".split(" ")
FORMULA_ALPHABET = "x1 2.e+-*/()_,'\"[]{}:;=<>!@#$%^&|~`?\\abcdefpiosqrtnl\t"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=60),
        st.text(alphabet=FORMULA_ALPHABET, max_size=40),
        st.lists(st.sampled_from(TOKENS), max_size=25).map("".join),
    ),
)
def test_fuzz_random_formulas(text):
    """Random text: either a formula (exit 0) or one line of error (exit 2), never a crash."""
    code, out, err = run("trace", text, "--at", "x1=0.5")
    if code == 0:
        assert err in ("", ) or err.startswith("wengert: note:")  # fmt: skip
        assert "Gradient" in out or "Adjoints" in out
    else:
        assert_bad_input(code, out, err)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text(max_size=30), st.from_regex(r"\A[ \t]?-?[0-9]{0,3}\.?[0-9]{0,3}(e-?[0-9])?\Z")
    )
)
def test_fuzz_random_values(value):
    code, out, err = run("trace", "x1*x1", "--at", f"x1={value}")
    if code == 0:
        assert re.fullmatch(r"[ \t]*[+-]?[0-9.]+(e[+-]?[0-9]+)?[ \t]*", value, re.ASCII | re.I)
        x = float(value)
        assert math.isfinite(x) and f"∂f/∂x1 = {cli._full(2 * x, 6)}" in out
    else:
        assert_bad_input(code, out, err)


# ---------------------------------------------------------------------------------------------
# The installed entry point and the demo
# ---------------------------------------------------------------------------------------------


def installed_wengert() -> str:
    exe = shutil.which("wengert", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the wengert entry point is not installed: pip install -e . creates it")
    return exe


def test_installed_entry_point():
    exe = installed_wengert()
    run_ = subprocess.run(
        [exe, "trace", MATLAB, "--at", "x1=2", "x2=0.5", "--format", "json"],
        capture_output=True, text=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    assert run_.returncode == 0, run_.stderr
    assert json.loads(run_.stdout)["gradient"]["x1"] == pytest.approx(-3 * E, abs=1e-15)
    bad = subprocess.run(
        [exe, "trace", "__import__('os').system('echo pwned')", "--at", "x1=1"],
        capture_output=True, text=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stdout == "" and "pwned" not in bad.stdout
    assert len(bad.stderr.splitlines()) == 1 and bad.stderr.startswith("wengert: error:")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"wengert {wengert.__version__}"


def test_demo_command_is_make_demo():
    code, out, err = run("demo")
    assert code == 0 and err == ""
    script = Path(__file__).resolve().parents[1] / "examples" / "seed_examples.py"
    by_script = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, encoding="utf-8",
        check=True, timeout=60,
    ).stdout  # fmt: skip
    assert out == by_script
    assert out.count("✓") == 6 and "✗" not in out and "wengert trace" in out
