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
from wengert.core import (
    JVPTrace,
    JVPTracer,
    Primitive,
    Tracer,
    VJPTrace,
    VJPTracer,
    backward,
    end_trace,
    new_trace,
    primal_value,
)
from wengert.tree import tree_flatten, tree_map, tree_unflatten

__all__ = ["custom_vjp", "custom_jvp", "checkpoint"]


def _top_trace(leaves):
    top = None
    for a in leaves:
        if isinstance(a, Tracer):
            t = a._trace
            if top is None or t.level > top.level:
                top = t
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
        args = list(primals)
        inputs = []
        for k in positions:
            inputs.append(trace.new_input(primals[k]))
            args[k] = inputs[-1]
        outs = f(args)
    finally:
        end_trace(trace)
    try:
        seeds = [
            (o.idx, gk) for o, gk in zip(outs, g) if type(o) is VJPTracer and o._trace is trace
        ]
        adj = backward(trace, seeds)
    finally:
        trace.unlock()
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


class custom_vjp:
    """A function with a reverse-mode rule of your own, as in JAX.

    ``f.defvjp(fwd, bwd)``: ``fwd(*args) -> (out, residuals)`` and
    ``bwd(residuals, out_cotangent) -> tuple`` with one cotangent per (differentiable) argument
    (``None`` for zero).  Arguments in ``nondiff_argnums`` come first in ``bwd``'s arguments.

    Under forward mode (``jvp``, ``jacfwd``) the plain function is differentiated instead, so
    it must be written with differentiable operations there; if it is not (it calls code
    wengert cannot trace), forward mode raises the usual "no derivative rule" error.
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
        top = _top_trace(leaves)
        if not isinstance(top, VJPTrace):
            return self.fun(*args)
        primals = [_own(x, top) for x in leaves]
        fixed = [tree_map(primal_value, f) for f in fixed]  # constants: no tracers here
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

    def _vjp_rule(self, g, ans, needed, *primals, res, in_tree, out_tree, fixed):
        cts = self.bwd(*fixed, res, tree_unflatten(out_tree, list(g)))
        diff_args = tree_unflatten(in_tree, primals)
        if not isinstance(cts, (tuple, list)) or len(cts) != len(diff_args):
            raise TypeError(
                f"{self.__name__}: bwd must return a tuple with one cotangent per differentiable "
                f"argument ({len(diff_args)}), got {type(cts).__name__}"
            )
        flat = []
        for arg, ct in zip(diff_args, cts):
            arg_leaves, arg_tree = tree_flatten(arg)
            if ct is None:
                flat.extend([None] * len(arg_leaves))
                continue
            ct_leaves, ct_tree = tree_flatten(ct)
            if len(ct_leaves) != len(arg_leaves):
                raise ValueError(
                    f"{self.__name__}: bwd returned a cotangent whose structure does not match its argument"
                )
            for a, c in zip(arg_leaves, ct_leaves):
                if c is not None and np.shape(primal_value(c)) != np.shape(primal_value(a)):
                    raise ValueError(
                        f"{self.__name__}: bwd returned a cotangent of shape {np.shape(primal_value(c))} "
                        f"for an argument of shape {np.shape(primal_value(a))}"
                    )
            flat.extend(ct_leaves)
        return flat


class custom_jvp:
    """A function with a forward-mode rule of your own, as in JAX.

    ``@f.defjvp`` registers ``rule(primals, tangents) -> (primal_out, tangent_out)``.  Reverse
    mode needs no second rule: the tangent output is linear in the tangents, so wengert tapes
    the rule with the tangents as reverse-mode inputs and sweeps that tape (it transposes the
    rule).  Inside ``jacfwd`` the rule is called once per direction.
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
        top = _top_trace(leaves)
        if top is None:
            return self.fun(*args)
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
        if len(t_leaves) != len(out_leaves):
            raise ValueError(
                f"{self.__name__}: the tangent output must have the structure of the primal output"
            )
        wrapped = [JVPTracer(o, t, trace) for o, t in zip(out_leaves, t_leaves)]
        return tree_unflatten(out_tree, wrapped)

    def _reverse(self, trace, leaves, primals, in_tree, fixed, n):
        links = _links(leaves, trace)
        positions = [k for k, _ in links]
        inner = new_trace(VJPTrace)
        try:
            tangents = [np.zeros_like(primal_value(p)) for p in primals]
            for k in positions:
                tangents[k] = inner.new_input(tangents[k])
            out, t_out = self._call_rule(primals, tangents, in_tree, fixed, n)
        finally:
            end_trace(inner)
        out_leaves, out_tree = tree_flatten(out)
        t_leaves = tree_flatten(t_out)[0]
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
    """``fun`` with rematerialisation: reverse mode stores only its inputs and output, and
    recomputes its intermediates during the backward sweep (memory for time)."""

    @functools.wraps(fun)
    def remat(*args: Any, **kwargs: Any) -> Any:
        leaves, tree = tree_flatten((args, kwargs))
        top = _top_trace(leaves)
        if not isinstance(top, VJPTrace):
            return fun(*args, **kwargs)
        primals = [_own(x, top) for x in leaves]
        a, kw = tree_unflatten(tree, primals)
        out = fun(*a, **kw)  # nothing is recorded at this level
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
