"""Derivative rules written by the user (``custom_vjp``, ``custom_jvp``) and ``checkpoint``.

Each records a single tape entry for the whole function, whose VJP is the user's rule, the
transpose of the user's JVP rule, or (for ``checkpoint``) a fresh forward-and-backward pass
over the function that recomputes its intermediates instead of storing them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from wengert import numpy as wnp
from wengert._saved import _release
from wengert.api import _cast_like
from wengert.core import (
    JVPTrace,
    JVPTracer,
    Primitive,
    Tracer,
    UnexpectedTracerError,
    VJPTrace,
    VJPTracer,
    backward,
    end_trace,
    new_trace,
    primal_value,
)
from wengert.tree import tree_flatten, tree_unflatten

__all__ = ["custom_vjp", "custom_jvp", "checkpoint"]


def _top_trace(leaves, who: str = "a custom rule"):
    """The highest-level trace among ``leaves`` (None for plain values); a finished one is an
    error, as it is for primitives."""
    top = None
    for a in leaves:
        if isinstance(a, Tracer):
            t = a._trace
            if top is None or t.level > top.level:
                top = t
    if top is not None and not top.active:
        raise UnexpectedTracerError(
            f"a value traced by a {type(top).__name__} (level {top.level}) reached {who} after "
            "that transformation had finished. Return traced values from the function being "
            "differentiated instead of storing them in globals or closures."
        )
    return top


def _own(x, trace):
    return x.primal if isinstance(x, Tracer) and x._trace is trace else x


def _links(leaves, trace):
    return [(k, x.idx) for k, x in enumerate(leaves) if type(x) is VJPTracer and x._trace is trace]


def _sweep_once(f: Callable, primals: list, positions: list, g: tuple):
    """Tape ``f(*primals)`` with the entries at ``positions`` as inputs, sweep it once with the
    output cotangents ``g``, and return one cotangent per position."""
    trace = new_trace(VJPTrace)
    try:
        try:
            args = list(primals)
            inputs = []
            for k in positions:
                inputs.append(trace.new_input(primals[k]))
                args[k] = inputs[-1]
            outs = f(args)
        finally:
            end_trace(trace)
        seeds = [
            (o.idx, gk) for o, gk in zip(outs, g) if type(o) is VJPTracer and o._trace is trace
        ]
        adj = backward(trace, seeds)
    finally:
        _release(trace)
    return [adj[i.idx] for i in inputs]


def _split(args, nondiff):
    diff = [a for i, a in enumerate(args) if i not in nondiff]
    fixed = [a for i, a in enumerate(args) if i in nondiff]
    return diff, fixed


def _merge(diff, fixed, nondiff, n):
    out, di, fi = [], iter(diff), iter(fixed)
    for i in range(n):
        out.append(next(fi) if i in nondiff else next(di))
    return out


def _check_nondiff(fixed: list, nondiff: tuple, name: str) -> None:
    for k, a in zip(nondiff, fixed):
        if any(isinstance(leaf, Tracer) for leaf in tree_flatten(a)[0]):
            raise TypeError(
                f"{name}: argument {k} is in nondiff_argnums but is a traced value (it depends "
                "on a variable being differentiated), so its derivative would be dropped "
                "silently. Remove it from nondiff_argnums, or pass wengert.stop_gradient(x) if "
                "its derivative really is not wanted."
            )


class custom_vjp:
    """A function with a reverse-mode rule of your own, as in JAX.

    ``f.defvjp(fwd, bwd)``: ``fwd(*args) -> (out, residuals)`` and
    ``bwd(residuals, ū) -> tuple`` with one cotangent ūᵀ ∂f/∂xₖ per differentiable argument
    (``None`` for zero), each with its argument's structure and shapes.  Arguments in
    ``nondiff_argnums`` (functions, flags, sizes: never traced values) come first in ``bwd``'s
    arguments.  Under reverse mode the whole call is one tape entry; ``fwd`` and ``bwd`` are
    written with wengert's operations, so higher orders differentiate them in turn.

    Forward mode (``jvp``, ``jacfwd``, ``hessian``'s outer pass over a call at its level)
    cannot use a reverse rule: it differentiates the plain function instead, so the result is
    right whenever that implementation is differentiable.  If it is not (it calls code
    wengert cannot trace), forward mode raises a ``TypeError`` saying so; give such a function
    a :class:`custom_jvp` rule, which serves both modes.
    """

    def __init__(self, fun: Callable, nondiff_argnums: tuple = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        name = getattr(fun, "__name__", "f")
        self.prim = Primitive(f"custom_vjp[{name}]", fun, multiple_results=True)
        self.prim.vjp_all = self._vjp_rule

    def defvjp(self, fwd: Callable, bwd: Callable) -> custom_vjp:
        """Set the forward pass (with residuals) and the backward rule."""
        self.fwd, self.bwd = fwd, bwd
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError(
                f"{self.__name__}: a custom_vjp function takes positional arguments only"
            )
        if self.fwd is None:
            raise TypeError(
                f"{self.__name__}: call {self.__name__}.defvjp(fwd, bwd) before using it"
            )
        nd = self.nondiff_argnums
        diff, fixed = _split(args, nd)
        leaves, in_tree = tree_flatten(diff)
        top = _top_trace(leaves, f"custom_vjp function {self.__name__}")
        if top is None:
            return self.fun(*args)
        if isinstance(top, JVPTrace):
            return self._forward_mode(args)
        _check_nondiff(fixed, nd, self.__name__)
        primals = [_own(x, top) for x in leaves]
        out = self.fwd(*_merge(tree_unflatten(in_tree, primals), fixed, nd, len(args)))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"{self.__name__}: fwd must return a pair (output, residuals)")
        out, res = out
        out_leaves, out_tree = tree_flatten(out)
        outs = top.record(
            self.prim,
            primals,
            _links(leaves, top),
            tuple(out_leaves),
            {"res": res, "in_tree": in_tree, "out_tree": out_tree, "fixed": fixed},
        )
        return tree_unflatten(out_tree, outs)

    def _forward_mode(self, args: tuple) -> Any:
        try:
            return self.fun(*args)
        except TypeError as e:
            raise TypeError(
                f"{self.__name__} is a custom_vjp function, and forward mode (jvp, jacfwd, "
                "hessian) cannot use its reverse-mode rule: it differentiates the plain "
                f"implementation instead, which failed: {str(e).rstrip('.')}. Write {self.__name__} with "
                "wengert.numpy operations, use reverse mode (grad, vjp, jacrev), or define it "
                "with custom_jvp, whose rule serves both modes."
            ) from e

    def _vjp_rule(self, g, ans, needed, *primals, res, in_tree, out_tree, fixed):
        cts = self.bwd(*fixed, res, tree_unflatten(out_tree, list(g)))
        diff_args = tree_unflatten(in_tree, primals)
        if not isinstance(cts, (tuple, list)) or len(cts) != len(diff_args):
            got = f"{len(cts)} values" if isinstance(cts, (tuple, list)) else type(cts).__name__
            raise TypeError(
                f"{self.__name__}: bwd must return a tuple with one cotangent per differentiable "
                f"argument ({len(diff_args)}), got {got}"
            )
        flat = []
        for k, (arg, ct) in enumerate(zip(diff_args, cts)):
            arg_leaves, arg_tree = tree_flatten(arg)
            if ct is None:
                flat.extend([None] * len(arg_leaves))
                continue
            ct_leaves, ct_tree = tree_flatten(ct)
            if len(ct_leaves) != len(arg_leaves):
                raise ValueError(
                    f"{self.__name__}: bwd returned a cotangent for argument {k} with structure "
                    f"{ct_tree}, but the argument has structure {arg_tree}"
                )
            flat.extend(ct_leaves)
        needed = set(needed)
        for pos, (a, c) in enumerate(zip(primals, flat)):
            if pos not in needed or c is None:
                flat[pos] = None
                continue
            cs, xs = np.shape(primal_value(c)), np.shape(primal_value(a))
            if cs != xs:
                raise ValueError(
                    f"{self.__name__}: bwd returned a cotangent of shape {cs} for an argument of "
                    f"shape {xs}; a cotangent must have its argument's shape (if the argument "
                    "was broadcast in the forward pass, sum the cotangent over the broadcast "
                    "axes)"
                )
            flat[pos] = _cast_like(c, a)
        return flat


class custom_jvp:
    """A function with a forward-mode rule of your own, as in JAX.

    ``@f.defjvp`` registers ``rule(primals, tangents) -> (f(x), ∂f/∂x · ẋ)``; with
    ``nondiff_argnums`` those arguments come first: ``rule(*nondiff, primals, tangents)``.
    Reverse mode needs no second rule: the tangent output ẋ ↦ ∂f/∂x · ẋ is linear, so wengert
    tapes the rule with the tangents as reverse-mode inputs and sweeps that tape with ū, which
    gives ūᵀ ∂f/∂x (it transposes the rule).  The rule is written with wengert's operations,
    so every order and every combination of modes differentiates it in turn.  Inside
    ``jacfwd`` the rule is called once per direction.  Arguments in ``nondiff_argnums`` must
    not be traced values.
    """

    def __init__(self, fun: Callable, nondiff_argnums: tuple = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.rule: Callable | None = None
        name = getattr(fun, "__name__", "f")
        self.prim = Primitive(f"custom_jvp[{name}]", fun, multiple_results=True)
        self.prim.vjp_all = self._vjp_rule

    def defjvp(self, rule: Callable) -> Callable:
        """Register the JVP rule (usable as a decorator)."""
        self.rule = rule
        return rule

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError(
                f"{self.__name__}: a custom_jvp function takes positional arguments only"
            )
        if self.rule is None:
            return self.fun(*args)
        nd = self.nondiff_argnums
        diff, fixed = _split(args, nd)
        leaves, in_tree = tree_flatten(diff)
        top = _top_trace(leaves, f"custom_jvp function {self.__name__}")
        if top is None:
            return self.fun(*args)
        _check_nondiff(fixed, nd, self.__name__)
        primals = [_own(x, top) for x in leaves]
        if isinstance(top, JVPTrace):
            return self._forward(top, leaves, primals, in_tree, fixed, len(args))
        return self._reverse(top, leaves, primals, in_tree, fixed, len(args))

    def _call_rule(self, primals, tangents, in_tree, fixed, n):
        nd = self.nondiff_argnums
        p = _merge(tree_unflatten(in_tree, primals), fixed, nd, n)
        t = tree_unflatten(in_tree, tangents)
        p_diff = tuple(a for i, a in enumerate(p) if i not in nd)
        res = self.rule(*fixed, p_diff, tuple(t)) if nd else self.rule(tuple(p), tuple(t))
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            raise TypeError(f"{self.__name__}: the JVP rule must return (primal_out, tangent_out)")
        return res

    def _forward(self, trace, leaves, primals, in_tree, fixed, n):
        nb = trace.nbatch
        tangents = []
        for x in leaves:
            if isinstance(x, JVPTracer) and x._trace is trace:
                tangents.append(x.tangent)
            else:
                tangents.append(None)
        batch = next((t.shape[:nb] for t in tangents if t is not None), ())

        def zeros(p):
            return np.zeros(batch + np.shape(primal_value(p)), np.result_type(primal_value(p)))

        tangents = [zeros(p) if t is None else t for t, p in zip(tangents, primals)]
        if nb == 0:
            out, t_out = self._call_rule(primals, tangents, in_tree, fixed, n)
            t_leaves = tree_flatten(t_out)[0]
        else:  # one call per direction of the batch, then stack
            count = int(np.prod(batch))
            flat_t = [
                wnp.reshape(t, (count,) + np.shape(primal_value(p)))
                for t, p in zip(tangents, primals)
            ]
            per = []
            out = None
            for b in range(count):
                out, t_out = self._call_rule(primals, [t[b] for t in flat_t], in_tree, fixed, n)
                per.append(tree_flatten(t_out)[0])
            t_leaves = [
                wnp.reshape(
                    wnp.stack([row[k] for row in per]), batch + np.shape(primal_value(per[0][k]))
                )
                for k in range(len(per[0]))
            ]
        out_leaves, out_tree = tree_flatten(out)
        self._check_tangent_out(out_leaves, t_leaves, batch)
        wrapped = [JVPTracer(o, t, trace) for o, t in zip(out_leaves, t_leaves)]
        return tree_unflatten(out_tree, wrapped)

    def _check_tangent_out(self, out_leaves: list, t_leaves: list, batch: tuple = ()) -> None:
        if len(t_leaves) != len(out_leaves):
            raise ValueError(
                f"{self.__name__}: the JVP rule's tangent output must have the structure of its "
                f"primal output ({len(out_leaves)} leaves), but has {len(t_leaves)} leaves"
            )
        for o, t in zip(out_leaves, t_leaves):
            os_, ts = np.shape(primal_value(o)), np.shape(primal_value(t))
            if ts != batch + os_:
                raise ValueError(
                    f"{self.__name__}: the JVP rule returned a tangent of shape "
                    f"{ts[len(batch) :] if ts[: len(batch)] == batch else ts} for a primal output "
                    f"of shape {os_}; the tangent must have the primal output's shape"
                )

    def _reverse(self, trace, leaves, primals, in_tree, fixed, n):
        links = _links(leaves, trace)
        positions = [k for k, _ in links]
        inner = new_trace(VJPTrace)
        try:
            try:
                tangents = [np.zeros_like(primal_value(p)) for p in primals]
                for k in positions:
                    tangents[k] = inner.new_input(tangents[k])
                out, t_out = self._call_rule(primals, tangents, in_tree, fixed, n)
            finally:
                end_trace(inner)
        finally:
            # The arrays the rule's tape saved stay guarded as long as the enclosing trace is.
            _release(inner)
        out_leaves, out_tree = tree_flatten(out)
        t_leaves = tree_flatten(t_out)[0]
        self._check_tangent_out(out_leaves, t_leaves)
        if any(isinstance(o, VJPTracer) and o._trace is inner for o in out_leaves):
            raise ValueError(
                f"{self.__name__}: the JVP rule's primal output depends on the tangents"
            )
        inputs = [tangents[k] for k in positions]
        outs = trace.record(
            self.prim,
            primals,
            links,
            tuple(out_leaves),
            {"tape": inner, "t_out": t_leaves, "inputs": inputs},
        )
        return tree_unflatten(out_tree, outs)

    def _vjp_rule(self, g, ans, needed, *primals, tape, t_out, inputs):
        seeds = [
            (t.idx, gk) for t, gk in zip(t_out, g) if type(t) is VJPTracer and t._trace is tape
        ]
        adj = backward(tape, seeds, retain=True)
        out = [None] * len(primals)
        pos = [k for k in range(len(primals)) if k in needed]
        for k, i in zip(pos, inputs):
            out[k] = adj[i.idx]
        return out


_checkpoint_p = Primitive("checkpoint", None, multiple_results=True)


def _checkpoint_vjp(g, ans, needed, *primals, fun, tree):
    def run(leaves):
        a, kw = tree_unflatten(tree, leaves)
        return tree_flatten(fun(*a, **kw))[0]

    cts = _sweep_once(run, list(primals), list(needed), g)
    out = [None] * len(primals)
    for k, c in zip(needed, cts):
        out[k] = c
    return out


_checkpoint_p.vjp_all = _checkpoint_vjp


def checkpoint(fun: Callable) -> Callable:
    """``fun`` with rematerialisation: reverse mode stores only its inputs and outputs, and
    recomputes its intermediates during the backward sweep (memory for time).

    The derivative is unchanged: the sweep over ``fun``'s entry runs ``fun`` again on the
    saved inputs, tapes that run, and sweeps it at once, so ``fun`` is evaluated twice per
    reverse-mode derivative.  Nested reverse modes checkpoint at every level.  Forward mode
    needs no tape and runs ``fun`` once.
    """

    @functools.wraps(fun)
    def remat(*args: Any, **kwargs: Any) -> Any:
        leaves, tree = tree_flatten((args, kwargs))
        top = _top_trace(leaves, f"checkpoint({getattr(fun, '__name__', 'f')})")
        if not isinstance(top, VJPTrace):
            return fun(*args, **kwargs)
        primals = [_own(x, top) for x in leaves]
        a, kw = tree_unflatten(tree, primals)
        out = remat(*a, **kw)  # nothing is recorded at this level; lower levels checkpoint too
        out_leaves, out_tree = tree_flatten(out)
        outs = top.record(
            _checkpoint_p,
            primals,
            _links(leaves, top),
            tuple(out_leaves),
            {"fun": fun, "tree": tree},
        )
        return tree_unflatten(out_tree, outs)

    return remat
