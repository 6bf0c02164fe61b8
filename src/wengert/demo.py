"""The two worked examples of the seed documents, with their evaluation-trace tables.

1. Baydin et al.'s survey: y = ln x1 + x1·x2 − sin x2 at (2, 5).
2. The MATLAB page: f(x) = x1·exp(−½(x1² + x2²)) at (2, ½); forward mode takes one pass per
   input, reverse mode one backward sweep for the whole gradient.

Run with ``wengert demo``, ``make demo`` or ``python -m wengert.demo``.
"""

from __future__ import annotations

import math

import numpy as np

import wengert


def survey(x1, x2):
    """y = ln x1 + x1·x2 − sin x2, one elementary operation per line as in the survey."""
    v1 = np.log(x1)
    v2 = x1 * x2
    v3 = np.sin(x2)
    v4 = v1 + v2
    return v4 - v3


def matlab(x1, x2):
    """f(x) = x1·exp(−½(x1² + x2²))."""
    return x1 * np.exp(-0.5 * (x1**2 + x2**2))


class Counted:
    """Wrap a function and count how many times it is evaluated (= passes over the graph)."""

    def __init__(self, f):
        self.f, self.calls, self.__name__ = f, 0, f.__name__

    def __call__(self, *args):
        self.calls += 1
        return self.f(*args)


def heading(text: str, underline: str = "─") -> None:
    """Print ``text`` underlined."""
    print(f"\n{text}\n{underline * len(text)}")


def check(exact: float, got: float) -> str:
    """``got`` with ✓ when it is within 1e-12 of ``exact``, ✗ otherwise."""
    return f"{got: .12f} {'✓' if abs(exact - got) <= 1e-12 else '✗'}"


def survey_example() -> None:
    """The survey's function: its forward and reverse tables and its gradient."""
    heading("1. Survey (Baydin et al.): y = ln x1 + x1·x2 − sin x2 at (x1, x2) = (2, 5)", "═")
    trace = wengert.evaluation_trace(survey, 2.0, 5.0, direction=(1.0, 0.0))
    print()
    print(trace.to_text(["forward"]))
    print()
    print(trace.to_text(["reverse"]))
    g1, g2 = wengert.grad(survey, argnums=(0, 1))(2.0, 5.0)
    print(f"\n{'':22}{'closed form':17}wengert.grad")
    print(f"  ∂y/∂x1 = 1/x1 + x2  {1 / 2 + 5: .12f}  {check(1 / 2 + 5, float(g1))}")
    print(f"  ∂y/∂x2 = x1 − cos x2{2 - math.cos(5): .12f}  {check(2 - math.cos(5), float(g2))}")


def matlab_example() -> None:
    """The MATLAB page's function: two forward passes, one reverse sweep, the same gradient."""
    x1, x2 = 2.0, 0.5
    heading("2. MATLAB: f(x) = x1·exp(−½(x1² + x2²)) at (x1, x2) = (2, ½)", "═")
    print("\nForward mode: one pass per input, each giving one partial derivative.")
    for direction in [(1.0, 0.0), (0.0, 1.0)]:
        print()
        trace = wengert.evaluation_trace(matlab, x1, x2, direction=direction, prefix="u")
        print(trace.to_text(["forward"]))
    print("\nReverse mode: one forward pass records the trace, one backward sweep gives both.\n")
    print(wengert.evaluation_trace(matlab, x1, x2, prefix="u").to_text(["reverse"]))

    f = Counted(matlab)
    _, d1 = wengert.jvp(f, (x1, x2), (1.0, 0.0))
    _, d2 = wengert.jvp(f, (x1, x2), (0.0, 1.0))
    forward_passes = f.calls
    f.calls = 0
    _, pullback = wengert.vjp(f, x1, x2)
    r1, r2 = pullback(1.0)
    e = math.exp(-(x1**2 + x2**2) / 2)
    exact = [(1 - x1**2) * e, -x1 * x2 * e]
    print(f"\n{'With E = e^(−(x1² + x2²)/2)':30}{'closed form':18}{'wengert.jvp':19}wengert.vjp")
    rows = zip(["∂f/∂x1 = (1 − x1²)·E", "∂f/∂x2 = −x1·x2·E"], exact, (d1, d2), (r1, r2))
    for label, ex, fwd, rev in rows:
        print(f"  {label:28}{ex: .12f}  {check(ex, float(fwd))}  {check(ex, float(rev))}")
    passes = f"{forward_passes} (one per input)"
    print(f"  {'passes over f':28}{'':17}{passes:19}{f.calls} (+ 1 backward sweep)")


def main() -> None:
    """Print both worked examples (what ``make demo`` and ``wengert demo`` run)."""
    survey_example()
    matlab_example()
    print(
        "\nYour own function, with its graph:  wengert trace "
        '"x1*exp(-0.5*(x1**2+x2**2))" --at x1=2 x2=0.5 --graph f.svg'
    )


if __name__ == "__main__":
    main()
