"""The ``wengert`` command line: the evaluation trace, graph and gradient of a formula, and the demo.

``wengert trace "x1*exp(-0.5*(x1**2+x2**2))" --at x1=2 x2=0.5`` prints the value, the forward
and reverse trace tables and the gradient.  Formulas are parsed with :mod:`ast` and evaluated
by walking the tree here: only numbers, variables, ``+ - * / **``, parentheses and calls to an
allow-listed set of ``wengert.numpy`` functions get through; Python never runs the text.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import sys
import textwrap
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

import numpy as np

import wengert
import wengert.numpy as wnp
from wengert.core import Tracer
from wengert.graph import GraphvizNotFoundError
from wengert.tracing import EvaluationTrace, _num, evaluation_trace

__all__ = [
    "main",
    "parse_expression",
    "Expression",
    "ExpressionError",
    "InputError",
    "FUNCTIONS",
    "CONSTANTS",
    "MAX_LENGTH",
    "MAX_DEPTH",
]

MAX_LENGTH = 1000  # characters in a formula
MAX_DEPTH = 100  # nesting levels (parentheses, calls, powers, unary signs) in a formula
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class InputError(ValueError):
    """Bad input on the command line: the command prints one line and exits with code 2."""


class ExpressionError(InputError):
    """A formula that is not allowed or cannot be evaluated; ``column`` counts from 1."""

    def __init__(self, column: int | None, message: str) -> None:
        self.column = column
        where = f"column {column}: " if column is not None else ""
        super().__init__(f"in the formula at {where}{message}" if where else message)


# ---------------------------------------------------------------------------------------------
# What a formula may use
# ---------------------------------------------------------------------------------------------

# name -> number of arguments.  Functions of wengert.numpy that take and return scalars or
# arrays; a name is offered only where this version of wengert.numpy defines it.
_ALLOWED: dict[str, int] = {
    **dict.fromkeys(
        [
            # exponentials, logarithms, powers
            "exp", "expm1", "exp2", "log", "log1p", "log2", "log10",
            "sqrt", "cbrt", "square", "reciprocal",
            # trigonometric and hyperbolic
            "sin", "cos", "tan", "arcsin", "arccos", "arctan",
            "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
            "sinc", "deg2rad", "rad2deg",
            # signs and rounding (zero derivative where defined)
            "abs", "absolute", "fabs", "negative", "positive",
            "sign", "floor", "ceil", "trunc", "rint",
            # reductions of a whole array
            "sum", "mean", "prod", "max", "min", "amax", "amin", "logsumexp", "std", "var",
        ],
        1,
    ),
    **dict.fromkeys(
        [
            "arctan2", "hypot", "maximum", "minimum", "fmax", "fmin", "power", "float_power",
            "logaddexp", "logaddexp2", "dot", "inner", "outer", "matmul", "vdot",
        ],
        2,
    ),
    "clip": 3,
}  # fmt: skip
FUNCTIONS: dict[str, tuple[Callable, int]] = {
    name: (vars(wnp)[name], arity)
    for name, arity in _ALLOWED.items()
    if callable(vars(wnp).get(name))
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_UNARY = {ast.USub: "-", ast.UAdd: "+"}
_NOT_ALLOWED_OPS = {
    ast.FloorDiv: "floor division (//)",
    ast.Mod: "the remainder operator (%)",
    ast.MatMult: "the matrix product operator (@); use matmul(a, b)",
    ast.LShift: "shifts (<<)",
    ast.RShift: "shifts (>>)",
    ast.BitOr: "bitwise or (|)",
    ast.BitAnd: "bitwise and (&)",
    ast.BitXor: "bitwise xor (^); powers are written **",
    ast.Invert: "bitwise not (~)",
    ast.Not: "'not'",
}
_NOT_ALLOWED_NODES = {
    ast.Attribute: "attribute access (.name)",
    ast.Subscript: "indexing and slicing ([...])",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.NamedExpr: "assignment expressions (:=)",
    ast.Compare: "comparisons",
    ast.BoolOp: "'and' / 'or'",
    ast.IfExp: "conditional expressions (... if ... else ...)",
    ast.List: "lists",
    ast.Tuple: "tuples (a, b)",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.Starred: "starred arguments (*a)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}
_WHAT_IS_ALLOWED = (
    "a formula may use numbers, variables, + - * / **, parentheses and the functions that "
    "'wengert trace --help' lists"
)


def _function_list() -> str:
    by_arity: dict[int, list[str]] = {}
    for name, (_, arity) in FUNCTIONS.items():
        by_arity.setdefault(arity, []).append(name)
    words = {1: "one argument", 2: "two arguments", 3: "three arguments"}
    return "; ".join(f"{words[a]}: {', '.join(names)}" for a, names in sorted(by_arity.items()))


# ---------------------------------------------------------------------------------------------
# Parsing: ast, then a check of every node
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    """A checked formula: its ``text``, its syntax ``tree`` (only allowed nodes), and its
    ``variables`` in order of first appearance.  :meth:`evaluate` walks the tree."""

    text: str
    tree: ast.expr
    variables: tuple[str, ...]
    offset: int = 0  # leading blanks stripped before parsing

    def evaluate(self, env: dict[str, Any]) -> Any:
        """The value of the formula with the variables bound by ``env``: plain numbers, arrays
        or wengert tracers (so that tracing it records the Wengert list)."""
        return _Evaluator(env, self.offset).value(self.tree)

    def function(self, names: Sequence[str]) -> Callable[..., Any]:
        """The formula as a Python function of the variables ``names`` (in that order)."""
        names = tuple(names)

        def f(*args: Any) -> Any:
            return self.evaluate(dict(zip(names, args)))

        f.__name__ = "f"
        f.__qualname__ = "f"
        return f


def parse_expression(text: str) -> Expression:
    """Parse and check a formula such as ``"x1*exp(-0.5*(x1**2 + x2**2))"``.

    Allowed: numbers (real, finite), variable names, ``+ - * / **``, unary ``-`` and ``+``,
    parentheses and calls, by position, to the functions in :data:`FUNCTIONS`.  Anything else
    raises :class:`ExpressionError` naming the column where it is.  The text is parsed by
    :func:`ast.parse` and never compiled to code or run.
    """
    if not isinstance(text, str):
        raise ExpressionError(None, f"the formula must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            MAX_LENGTH + 1,
            f"the formula is {len(text)} characters long; the limit is {MAX_LENGTH}",
        )
    for k, c in enumerate(text):
        if not (" " <= c <= "~" or c == "\t"):
            raise ExpressionError(
                k + 1,
                f"the character {_show_char(c)} is not allowed: formulas are plain ASCII text "
                "on one line",
            )
    depth = 0
    for k, c in enumerate(text):  # parentheses leave no node in the tree: count them here
        depth += (c in "([{") - (c in ")]}")
        if depth > MAX_DEPTH:
            raise ExpressionError(
                k + 1, f"the formula is nested more than {MAX_DEPTH} parentheses deep"
            )
    body = text.lstrip(" \t")
    offset = len(text) - len(body)
    if not body.strip():
        raise ExpressionError(None, "the formula is empty")
    try:
        tree = ast.parse(body, mode="eval").body
    except SyntaxError as e:
        if not e.offset:  # the parser reached the end
            raise ExpressionError(
                len(text) + 1, "the formula ends too early: an operand or a ')' is missing"
            ) from None
        column = min(e.offset, len(body) + 1) + offset
        raise ExpressionError(column, _syntax_message(e)) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(None, "the formula is nested too deeply to read") from None
    return Expression(text, tree, _check(tree, offset), offset)


def _syntax_message(e: SyntaxError) -> str:
    msg = str(e.msg or "invalid syntax")
    if msg.startswith("too many nested parentheses"):
        return f"too many nested parentheses (the limit is {MAX_DEPTH} levels)"
    if msg in ("invalid syntax", "unexpected EOF while parsing") or "was never closed" in msg:
        return f"{msg} ({_WHAT_IS_ALLOWED})"
    return msg


def _show_char(c: str) -> str:
    if c == "\n" or c == "\r":
        return "line break"
    return f"{c!r} (U+{ord(c):04X})" if c.isprintable() else f"U+{ord(c):04X}"


def _column(node: ast.AST, offset: int) -> int:
    return getattr(node, "col_offset", 0) + 1 + offset  # ASCII only: bytes are characters


def _check(tree: ast.expr, offset: int) -> tuple[str, ...]:
    """Check every node of ``tree`` (without recursion) and return the variable names."""
    variables: dict[str, None] = {}
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        col = _column(node, offset)
        if depth > MAX_DEPTH:
            raise ExpressionError(col, f"the formula is nested more than {MAX_DEPTH} levels deep")
        children: list[tuple[ast.AST, int]] = []
        if isinstance(node, ast.Constant):
            _check_number(node.value, col)
        elif isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise ExpressionError(col, f"{node.id} is a function: call it, as in {node.id}(x1)")
            if node.id not in CONSTANTS:
                variables.setdefault(node.id, None)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ExpressionError(
                    col, f"{_NOT_ALLOWED_OPS.get(type(node.op), 'this operator')} cannot "
                    f"be used; {_WHAT_IS_ALLOWED}",
                )  # fmt: skip
            # A chain a + b + c + ... nests on the left: it does not count as deeper.
            left_depth = depth if isinstance(node.left, ast.BinOp) else depth + 1
            children = [(node.left, left_depth), (node.right, depth + 1)]
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise ExpressionError(
                    col, f"{_NOT_ALLOWED_OPS.get(type(node.op), 'this operator')} cannot "
                    f"be used; {_WHAT_IS_ALLOWED}",
                )  # fmt: skip
            children = [(node.operand, depth + 1)]
        elif isinstance(node, ast.Call):
            children = [(a, depth + 1) for a in _check_call(node, offset)]
        else:
            what = _NOT_ALLOWED_NODES.get(
                type(node), f"this kind of expression ({type(node).__name__})"
            )
            raise ExpressionError(col, f"{what} cannot be used; {_WHAT_IS_ALLOWED}")
        stack.extend(reversed(children))  # left to right: the first problem is reported
    return tuple(variables)


def _check_number(value: Any, col: int) -> None:
    if isinstance(value, bool) or value is None or value is Ellipsis:
        raise ExpressionError(col, f"{value!r} is not a number; {_WHAT_IS_ALLOWED}")
    if isinstance(value, (str, bytes)):
        raise ExpressionError(col, f"strings are not allowed; {_WHAT_IS_ALLOWED}")
    if isinstance(value, complex):
        raise ExpressionError(col, "complex numbers are not supported on the command line")
    if not isinstance(value, (int, float)):
        raise ExpressionError(col, f"{type(value).__name__} constants are not allowed")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError(col, "the number is too large (it overflows to infinity)")


def _check_call(node: ast.Call, offset: int) -> list[ast.expr]:
    col = _column(node, offset)
    if not isinstance(node.func, ast.Name):
        raise ExpressionError(
            col, "only the allowed functions can be called, by name, as in exp(x1)"
        )
    name = node.func.id
    if name in _ALLOWED and name not in FUNCTIONS:
        raise ExpressionError(col, f"{name} is not in this version of wengert.numpy")
    if name not in FUNCTIONS:
        known = ", ".join(sorted(FUNCTIONS))
        raise ExpressionError(col, f"{name} is not an allowed function; the functions are {known}")
    if node.keywords:
        kw = node.keywords[0]
        raise ExpressionError(
            _column(kw, offset),
            f"keyword arguments are not allowed; give {name} its arguments by position",
        )
    for a in node.args:
        if isinstance(a, ast.Starred):
            raise ExpressionError(_column(a, offset), "starred arguments (*a) are not allowed")
    arity = FUNCTIONS[name][1]
    if len(node.args) != arity:
        s = "" if arity == 1 else "s"
        raise ExpressionError(
            col, f"{name} takes {arity} argument{s}, but {len(node.args)} were given"
        )
    return list(node.args)


# ---------------------------------------------------------------------------------------------
# Evaluation: walking the checked tree
# ---------------------------------------------------------------------------------------------

_EVAL_ERRORS = (ArithmeticError, ValueError, TypeError, IndexError)


class _Evaluator:
    def __init__(self, env: dict[str, Any], offset: int) -> None:
        self.env = env
        self.offset = offset

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.BinOp):
            # The left spine of a chain a + b + c ... iteratively, the rest recursively.
            spine = []
            while isinstance(node, ast.BinOp):
                spine.append(node)
                node = node.left
            acc = self.value(node)
            for op_node in reversed(spine):
                acc = self._binary(op_node, acc, self.value(op_node.right))
            return acc
        if isinstance(node, ast.Constant):
            v = node.value
            return float(v) if isinstance(v, int) and abs(v) > 2**53 else v
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise ExpressionError(
                _column(node, self.offset), f"{node.id} has no value: give it one with --at"
            )
        if isinstance(node, ast.UnaryOp):
            x = self.value(node.operand)
            return self._apply(node, lambda: -x if isinstance(node.op, ast.USub) else +x)
        if isinstance(node, ast.Call):
            f = FUNCTIONS[node.func.id][0]
            args = [self.value(a) for a in node.args]
            return self._apply(node, lambda: f(*args), node.func.id)
        raise ExpressionError(_column(node, self.offset), "not allowed")  # checked before

    def _binary(self, node: ast.BinOp, a: Any, b: Any) -> Any:
        op = type(node.op)
        if not _traced(a) and not _traced(b) and np.ndim(a) == 0 and np.ndim(b) == 0:
            # Two plain numbers: in float64, so 9**9**9 is a quick inf, not a huge integer.
            a, b = np.float64(a), np.float64(b)
        fn = {
            ast.Add: lambda: a + b,
            ast.Sub: lambda: a - b,
            ast.Mult: lambda: a * b,
            ast.Div: lambda: a / b,
            ast.Pow: lambda: a**b,
        }[op]
        return self._apply(node, fn, _BINARY[op])

    def _apply(self, node: ast.AST, fn: Callable[[], Any], what: str | None = None) -> Any:
        try:
            with np.errstate(all="ignore"):
                return fn()
        except ExpressionError:
            raise
        except _EVAL_ERRORS as e:
            what = f"{what}: " if what else ""
            raise ExpressionError(
                _column(node, self.offset), f"cannot evaluate {what}{_one_line(str(e))}"
            ) from e


def _traced(x: Any) -> bool:
    return isinstance(x, (Tracer, np.ndarray))


# ---------------------------------------------------------------------------------------------
# The values given with --at
# ---------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def parse_assignments(items: Sequence[str]) -> dict[str, np.ndarray]:
    """``["x1=2", "x2=0.5", "v=1,2,3"]`` as {name: float64 array}, in the order given.

    A value is a finite decimal number, or numbers separated by commas (a vector)."""
    out: dict[str, np.ndarray] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip(" \t")
        if not sep:
            raise InputError(
                f"--at expects NAME=VALUE, such as x1=2, but got {_quoted(item)} (the formula "
                "goes before --at)"
            )
        if not _NAME.fullmatch(name):
            raise InputError(f"--at: {_quoted(name)} is not a variable name (letters, digits, _)")
        if name in FUNCTIONS or name in CONSTANTS:
            kind = "function" if name in FUNCTIONS else "constant"
            raise InputError(f"--at: {name} is a {kind}; call the variable something else")
        if name in out:
            raise InputError(f"--at: {name} is given twice")
        parts = [p.strip(" \t") for p in text.split(",")]
        numbers = []
        for p in parts:
            if not _NUMBER.fullmatch(p):
                raise InputError(
                    f"--at {name}=...: {_quoted(p)} is not a number (write a decimal such as "
                    "2, -0.5 or 1e-3, or numbers separated by commas for a vector)"
                )
            v = float(p)
            if not math.isfinite(v):
                raise InputError(f"--at {name}=...: {p} is too large (it overflows to infinity)")
            numbers.append(v)
        out[name] = np.array(numbers[0] if len(parts) == 1 else numbers, dtype=np.float64)
    return out


# ---------------------------------------------------------------------------------------------
# wengert trace
# ---------------------------------------------------------------------------------------------


def _trace_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.expression is None:
        stray = [a for a in args.at or [] if "=" not in a]
        if stray:
            raise InputError(
                f"--at expects NAME=VALUE, but got {_quoted(stray[0])}: write the formula "
                'before --at, as in: wengert trace "x1*x2" --at x1=2 x2=3'
            )
        raise InputError('no formula: write it first, as in: wengert trace "x1*x2" --at x1=2 x2=3')
    if args.graph:
        _check_graph_path(args.graph)
    expr = parse_expression(args.expression)
    values = parse_assignments(args.at or [])
    names = list(values)
    missing = [v for v in expr.variables if v not in values]
    if missing:
        hint = " ".join(f"{m}=..." for m in missing)
        raise InputError(f"{', '.join(missing)} ha{'s' if len(missing) == 1 else 've'} no value: "
                         f"add {hint} to --at")  # fmt: skip
    unused = [n for n in names if n not in expr.variables]
    if unused:
        raise InputError(
            f"--at gives {', '.join(unused)}, which the formula does not use (a typo?)"
        )
    if not names:
        raise InputError("the formula has no variables: name some and give their values with --at")
    wrt = args.wrt if args.wrt is not None else names[0]
    if wrt not in values:
        raise InputError(f"--wrt {wrt}: not a variable of the formula ({', '.join(names)})")
    direction = [np.ones_like(values[n]) if n == wrt else np.zeros_like(values[n]) for n in names]
    f = expr.function(names)
    try:
        with np.errstate(all="ignore"):
            trace = evaluation_trace(
                f, *[values[n] for n in names], names=names, direction=direction,
                prefix=args.prefix,
            )  # fmt: skip
    except InputError:
        raise
    except _EVAL_ERRORS as e:
        raise InputError(f"cannot evaluate the formula: {_one_line(str(e))}") from e

    parts = {"forward": ["forward"], "reverse": ["reverse"], "both": ["forward", "reverse"]}
    parts = parts[args.mode]
    if args.format == "json":
        _write(out, json.dumps(_json_report(expr, values, trace, args, wrt), indent=2) + "\n")
    elif args.format == "markdown":
        _write(out, _markdown_report(expr, values, trace, args, wrt, parts))
    else:
        _write(out, _text_report(expr, values, trace, args, wrt, parts))
    if not _all_finite(trace):
        _write(err, "wengert: note: some values are not finite (nan or inf): a function "
                    "outside its domain, a division by zero or an overflow\n")  # fmt: skip
    if args.graph:
        return _save_graph(trace, args, err)
    return EXIT_OK


def _check_graph_path(path: str) -> None:
    """Before anything is printed: a picture format we can write, into a folder that exists."""
    if not path.lower().endswith((".svg", ".png", ".dot", ".gv")):
        raise InputError(f"--graph {_quoted(path)}: the file name must end in .svg, .png or .dot")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(
            f"--graph: cannot write {_quoted(path)}: there is no folder {_quoted(folder)}"
        )


def _save_graph(trace: EvaluationTrace, args: argparse.Namespace, err: TextIO) -> int:
    path = args.graph
    graph = trace.graph(
        tangent=args.mode in ("forward", "both"),
        adjoint=args.mode in ("reverse", "both"),
        partials=args.partials,
        digits=min(args.digits, 4),  # compact labels
    )
    try:
        written = graph.save(path)
    except GraphvizNotFoundError as e:
        _write(err, f"wengert: {_one_line(str(e))}\n")
        return EXIT_FAILURE
    except OSError as e:
        raise InputError(f"--graph: cannot write {_quoted(path)}: {e.strerror or e}") from None
    _write(err, f"wengert: wrote {written}\n")
    return EXIT_OK


def _all_finite(trace: EvaluationTrace) -> bool:
    arrays = [np.asarray(v) for v in trace.output_values]
    arrays += [np.asarray(a) for a in trace.input_adjoints]
    return all(np.all(np.isfinite(a)) for a in arrays)


def _scalar_output(trace: EvaluationTrace) -> bool:
    return len(trace.outputs) == 1 and np.ndim(trace.output_values[0]) == 0


def _full(x: Any, digits: int) -> str:
    return _num(x, max(digits, 12), most=10**6)


def _summary_lines(expr, values, trace, args, wrt) -> dict[str, str]:
    names = list(values)
    d = args.digits
    lines = {
        "formula": f"f({', '.join(names)}) = {expr.text.strip()}",
        "point": ", ".join(f"{n} = {_full(v, d)}" for n, v in values.items()),
        "value": f"f = {_full(trace.value, d)}",
    }
    grads = ", ".join(f"∂f/∂{n} = {_full(a, d)}" for n, a in zip(names, trace.input_adjoints))
    if _scalar_output(trace):
        lines["gradient"] = f"Gradient (reverse mode, one backward sweep): {grads}"
    else:
        lines["gradient"] = (
            "Adjoints x̄ = ȳᵀJ for ȳ = ones (reverse mode, one backward sweep): "
            + grads.replace("∂f/∂", "x̄ for ")
        )
    if args.mode in ("forward", "both"):
        lines["tangent"] = (
            f"Derivative along {wrt} (forward mode, one pass): ∂f/∂{wrt} = "
            f"{_full(trace.output_tangent, d)}"
        )
    return lines


def _text_report(expr, values, trace, args, wrt, parts) -> str:
    s = _summary_lines(expr, values, trace, args, wrt)
    out = [f"{s['formula']}   at   {s['point']}", "", s["value"], ""]
    out.append(trace.to_text(parts, digits=args.digits, max_rows=args.max_rows))
    out.append("")
    if "tangent" in s:
        out.append(s["tangent"])
    out.append(s["gradient"])
    return "\n".join(out) + "\n"


def _markdown_report(expr, values, trace, args, wrt, parts) -> str:
    s = _summary_lines(expr, values, trace, args, wrt)
    out = [f"### `{s['formula']}` at {s['point']}", "", f"**Value:** {s['value']}", ""]
    out.append(trace.to_markdown(parts, digits=args.digits, max_rows=args.max_rows))
    out.append("")
    if "tangent" in s:
        out += [s["tangent"], ""]
    out.append(s["gradient"])
    return "\n".join(out) + "\n"


def _json_report(expr, values, trace, args, wrt) -> dict[str, Any]:
    names = list(values)
    adjoints = {n: np.asarray(a).tolist() for n, a in zip(names, trace.input_adjoints)}
    report: dict[str, Any] = {
        "expression": expr.text.strip(),
        "variables": {n: v.tolist() for n, v in values.items()},
        "mode": args.mode,
        "value": np.asarray(trace.value).tolist(),
        "gradient": adjoints if _scalar_output(trace) else None,
        "input_adjoints": adjoints,
    }
    if args.mode in ("forward", "both"):
        t = trace.output_tangent
        report["directional_derivative"] = {
            "wrt": wrt,
            "value": None if t is None else np.asarray(t).tolist(),
        }
    report["trace"] = trace.to_dict()
    return report


# ---------------------------------------------------------------------------------------------
# wengert demo, the parser, main
# ---------------------------------------------------------------------------------------------


def _demo_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from wengert import demo

    stdout = sys.stdout
    sys.stdout = out
    try:
        demo.main()
    finally:
        sys.stdout = stdout
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors turned into one line (InputError) instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        hint = ""
        _, _, rest = message.partition("unrecognized arguments: ")
        if any(re.match(r"-[^-]", a) for a in rest.split()):
            hint = (
                "; a formula that starts with '-' needs a blank in front (\" -x1*x2\") or "
                "0 before it"
            )
        raise InputError(f"{message}{hint} (see '{self.prog} --help')")


_EPILOG = """\
examples:
  wengert trace "x1*exp(-0.5*(x1**2+x2**2))" --at x1=2 x2=0.5
  wengert trace "log(x1) + x1*x2 - sin(x2)" --at x1=2 x2=5 --mode forward --wrt x2
  wengert trace "sum(tanh(w*x)**2)" --at w=0.5 x=1,2,3 --format json
  wengert trace "sqrt(x**2 + y**2)" --at x=3 y=4 --graph r.svg
  wengert demo

exit status: 0 success; 2 bad input (one line on stderr; --debug shows the traceback);
1 other failures (Graphviz missing for --graph .svg/.png: the .dot file is written instead).
"""


def _parser() -> _Parser:
    parser = _Parser(
        prog="wengert",
        description=_paragraphs(
            "See the derivative: evaluation traces (Wengert lists), computational graphs and "
            "gradients by forward and reverse automatic differentiation."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wengert {wengert.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    trace = sub.add_parser(
        "trace",
        allow_abbrev=False,
        help="the value, trace tables and gradient of a formula at a point",
        description=_paragraphs(
            "Print the value of a formula at a point, its forward primal/tangent and reverse "
            "adjoint traces (the Wengert list, as in Baydin et al.'s survey), and its gradient.",
            "A formula uses numbers, variables, + - * / ** (powers), unary minus, parentheses, "
            f"the constants pi and e, and these functions ({_function_list()}). At most "
            f"{MAX_LENGTH} characters.",
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    trace.add_argument(
        "expression", nargs="?", metavar="FORMULA", help='the formula, such as "x1*exp(-x2)"'
    )
    trace.add_argument(
        "--at", nargs="+", action="extend", metavar="NAME=VALUE",
        help="the point: a value for every variable, e.g. x1=2 x2=0.5, or a vector v=1,2,3 "
        "(the order given numbers the inputs v-n+1 ... v0)",
    )  # fmt: skip
    trace.add_argument(
        "--mode", choices=("forward", "reverse", "both"), default="both",
        help="which trace tables to print (default: both)",
    )  # fmt: skip
    trace.add_argument(
        "--wrt", metavar="NAME",
        help="the forward-mode direction: the derivative along this variable "
        "(default: the first one)",
    )  # fmt: skip
    trace.add_argument(
        "--format", choices=("text", "markdown", "json"), default="text",
        help="text tables (default), Markdown tables, or JSON with every number",
    )  # fmt: skip
    trace.add_argument(
        "--graph", metavar="FILE",
        help="also draw the computational graph into FILE: .svg or .png (with Graphviz's "
        "dot) or .dot (DOT text)",
    )  # fmt: skip
    trace.add_argument(
        "--partials", action="store_true", help="label the graph's edges with ∂v_i/∂v_j"
    )
    trace.add_argument(
        "--prefix", default="v", type=_prefix,
        help="the letter naming the values: v (survey, default) or u (MATLAB)",
    )  # fmt: skip
    trace.add_argument(
        "--digits", type=_digits, default=6, help="digits after the point (default 6)"
    )
    trace.add_argument(
        "--max-rows", type=_max_rows, default=60, metavar="N",
        help="longer tables show their first and last rows; 0 shows all (default 60)",
    )  # fmt: skip
    trace.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    trace.set_defaults(run=_trace_command)

    demo = sub.add_parser(
        "demo",
        help="the seed examples (survey and MATLAB) with their trace tables",
        description="Print the two worked examples wengert is checked against, with their "
        "trace tables and gradients (the same as 'make demo').",
    )
    demo.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    demo.set_defaults(run=_demo_command)
    return parser


_TRACE_OPTIONS = {"-h", "--help", "--at", "--mode", "--wrt", "--format", "--graph", "--partials",
                  "--prefix", "--digits", "--max-rows", "--debug"}  # fmt: skip
_TAKES_VALUE = {"--mode", "--wrt", "--format", "--graph", "--prefix", "--digits", "--max-rows"}


def _protect_leading_minus(argv: list[str]) -> list[str]:
    """After ``trace``, a formula such as ``-x1*x2`` is not an option: put a blank before it
    (which the parser ignores) so that argparse reads it as the formula."""
    if "trace" not in argv:
        return argv
    k = argv.index("trace") + 1
    out = argv[:k]
    for a in argv[k:]:
        prev = out[-1]
        if (
            a.startswith("-")
            and not re.fullmatch(r"--[A-Za-z][A-Za-z-]*(=.*)?", a)  # a (mistyped) option
            and a.partition("=")[0] not in _TRACE_OPTIONS
            and prev not in _TAKES_VALUE
        ):
            a = " " + a
        out.append(a)
    return out


def _paragraphs(*texts: str) -> str:
    return "\n\n".join(textwrap.fill(t, 79) for t in texts)


def _prefix(text: str) -> str:
    if not (text.isascii() and text.isalpha() and len(text) <= 8):
        raise argparse.ArgumentTypeError(f"{text!r} is not a prefix: use letters, such as v or u")
    return text


def _digits(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 17:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of digits from 1 to 17")
    return int(text)


def _max_rows(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()) or int(text) == 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a row count (0 for all, or 2 or more)")
    return None if int(text) == 0 else int(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wengert`` command with ``argv`` (default ``sys.argv[1:]``); return the exit
    status: 0 success, 2 bad input (one line on stderr), 1 any other failure."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out, err = sys.stdout, sys.stderr
    debug = "--debug" in argv
    try:
        args = _parser().parse_args(_protect_leading_minus(argv))
        if args.command is None:
            raise InputError(
                "no command: try 'wengert trace \"x1*x2\" --at x1=2 x2=3', 'wengert demo' or "
                "'wengert --help'"
            )
        return args.run(args, out, err)
    except SystemExit as e:  # --help and --version
        return e.code if isinstance(e.code, int) else EXIT_OK
    except InputError as e:
        if debug:
            traceback.print_exc(file=err)
        _write(err, f"wengert: error: {_one_line(str(e))}\n")
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # wengert ... | head
        return EXIT_OK
    except Exception as e:
        if debug:
            traceback.print_exc(file=err)
        _write(err, f"wengert: internal error: {type(e).__name__}: {_one_line(str(e))} (please "
                    "report it; --debug shows the traceback)\n")  # fmt: skip
        return EXIT_FAILURE


def _one_line(text: str) -> str:
    """``text`` on one line, with characters a terminal would act on written as escapes."""
    text = " ".join(text.split("\n"))
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _quoted(text: str) -> str:
    return "'" + _one_line(text[:60] + ("…" if len(text) > 60 else "")) + "'"


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text)
    except UnicodeEncodeError:
        enc = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(enc, "backslashreplace").decode(enc))
    stream.flush()


if __name__ == "__main__":
    sys.exit(main())
