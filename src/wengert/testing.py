"""``check_grads``: compare wengert's derivatives with central finite differences.

For order 1 it checks the JVP (forward) against (f(x + εv) − f(x − εv)) / 2ε, and the VJP
(reverse) through ⟨vjp(u), v⟩ = ⟨u, finite-difference Jv⟩.  Order k > 1 applies the same
checks to the derivative maps themselves, in every combination of the requested modes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wengert.api import jvp, vjp
from wengert.core import primal_value
from wengert.tree import tree_flatten, tree_unflatten

__all__ = ["check_grads"]

_TOL = {np.dtype(np.float64): (1e-5, 1e-6), np.dtype(np.float32): (3e-2, 1e-3),
        np.dtype(np.complex128): (1e-5, 1e-6), np.dtype(np.complex64): (3e-2, 1e-3)}  # fmt: skip


def _inner(a: list, b: list) -> float:
    """⟨a, b⟩ = Re Σ a·b over matching leaves (no conjugation: wengert's convention)."""
    total = 0.0
    for x, y in zip(a, b):
        x, y = np.asarray(primal_value(x)), np.asarray(primal_value(y))
        if x.shape != y.shape:  # broadcasting would hide a rule that returns the wrong shape
            raise AssertionError(f"a derivative has shape {x.shape}, expected {y.shape}")
        total += float(np.real(np.sum(x * y)))
    return total


def _random_like(x: Any, rng: np.random.Generator) -> np.ndarray:
    x = np.asarray(primal_value(x))
    v = rng.standard_normal(x.shape)
    if x.dtype.kind == "c":
        v = v + 1j * rng.standard_normal(x.shape)
    return v.astype(x.dtype)


def _differentiable(x: Any) -> bool:
    return np.result_type(primal_value(x)).kind in "fc"


def check_grads(
    f: Callable,
    args: Sequence,
    order: int = 2,
    modes: Sequence[str] = ("fwd", "rev"),
    atol: float | None = None,
    rtol: float | None = None,
    eps: float | None = None,
    seed: int = 0,
) -> None:
    """Check ``f``'s derivatives at ``args`` against central finite differences.

    With a random direction v and the finite difference Jv ≈ (f(x + εv) − f(x − εv)) / 2ε:

    * ``"fwd"``: the JVP ∂f/∂x · v must equal Jv leaf by leaf;
    * ``"rev"``: for a random cotangent u, ⟨vjp(u), v⟩ must equal ⟨u, Jv⟩, with
      ⟨a, b⟩ = Re Σ a·b (no conjugation: wengert's, and JAX's, transpose convention).

    Raises ``AssertionError`` with the largest discrepancy when a check fails.  Integer and
    boolean leaves of ``args`` are held fixed.  ``order=k`` repeats the checks on the maps
    x ↦ jvp(f)(x, v) and x ↦ vjp(f)(x)(u) down to order 1, so ``order=2`` covers fwd∘fwd,
    fwd∘rev, rev∘fwd and rev∘rev.  Tolerances default by dtype (looser for float32).
    """
    args = tuple(args)
    for m in modes:
        if m not in ("fwd", "rev"):
            raise ValueError(f"check_grads: unknown mode {m!r}; use 'fwd' and/or 'rev'")
    rng = np.random.default_rng(seed)
    leaves, tree = tree_flatten(args)
    diff = [k for k, x in enumerate(leaves) if _differentiable(x)]
    if not diff:
        raise ValueError("check_grads: no float or complex argument to differentiate")
    dtype = np.result_type(*[np.asarray(primal_value(leaves[k])).dtype for k in diff])
    d_rtol, d_eps = _TOL.get(dtype, (1e-5, 1e-6))
    rtol = d_rtol if rtol is None else rtol
    atol = d_rtol if atol is None else atol
    eps = (d_eps if dtype in (np.float64, np.complex128) else 1e-3) if eps is None else eps

    def f_flat(*xs):
        full = list(leaves)
        for k, x in zip(diff, xs):
            full[k] = x
        return f(*tree_unflatten(tree, full))

    xs = [leaves[k] for k in diff]
    name = getattr(f, "__name__", type(f).__name__)
    _check(f_flat, xs, order, tuple(modes), atol, rtol, eps, rng, name)


def _fd(f, xs, v, eps):
    plus = f(*[x + eps * d for x, d in zip(xs, v)])
    minus = f(*[x - eps * d for x, d in zip(xs, v)])
    pl, tree = tree_flatten(plus)
    mi, _ = tree_flatten(minus)
    return [
        (np.asarray(primal_value(a)) - np.asarray(primal_value(b))) / (2 * eps)
        for a, b in zip(pl, mi)
    ], tree


def _assert_close(a, b, atol, rtol, what):
    a = np.asarray(primal_value(a))
    b = np.asarray(primal_value(b))
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shape {a.shape} against finite differences' {b.shape}")
    if not np.allclose(a, b, atol=atol, rtol=rtol, equal_nan=True):
        err = np.max(np.abs(a - b)) if a.size else 0.0
        raise AssertionError(
            f"{what}: differs from finite differences by up to {err:.3g}\n  AD: {a}\n  FD: {b}"
        )


def _check(f, xs, order, modes, atol, rtol, eps, rng, name):
    v = [_random_like(x, rng) for x in xs]
    fd, out_tree = _fd(f, xs, v, eps)
    out = f(*xs)
    out_leaves = tree_flatten(out)[0]
    if "fwd" in modes:
        _, t = jvp(f, tuple(xs), tuple(v))
        for a, b in zip(tree_flatten(t)[0], fd):
            _assert_close(a, b, atol, rtol, f"forward mode (JVP) of {name}")
    if "rev" in modes:
        u = [
            _random_like(o, rng) if _differentiable(o) else np.zeros(np.shape(primal_value(o)))
            for o in out_leaves
        ]
        _, pull = vjp(f, *xs)
        ct = pull(
            tree_unflatten(
                out_tree,
                [np.asarray(c, np.result_type(primal_value(o))) for c, o in zip(u, out_leaves)],
            )
        )
        lhs = _inner(list(ct), v)
        rhs = _inner(u, fd)
        scale = max(1.0, abs(rhs))
        if abs(lhs - rhs) > atol * scale + rtol * abs(rhs):
            raise AssertionError(
                f"reverse mode (VJP) of {name}: ⟨vjp(u), v⟩ = {lhs:.10g} but ⟨u, J v⟩ by finite "
                f"differences = {rhs:.10g}"
            )
    if order > 1:
        if "fwd" in modes:

            def f_jvp(*ys, v=v):
                return jvp(f, tuple(ys), tuple(v))[1]

            _check(f_jvp, xs, order - 1, modes, atol, rtol, eps, rng, f"jvp({name})")
        if "rev" in modes:
            u = [
                _random_like(o, rng) if _differentiable(o) else np.zeros(np.shape(primal_value(o)))
                for o in out_leaves
            ]

            def f_vjp(*ys, u=u):
                o, pull = vjp(f, *ys)
                ol, ot = tree_flatten(o)
                return pull(
                    tree_unflatten(
                        ot, [np.asarray(c, np.result_type(primal_value(q))) for c, q in zip(u, ol)]
                    )
                )

            _check(f_vjp, xs, order - 1, modes, atol, rtol, eps, rng, f"vjp({name})")
