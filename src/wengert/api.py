"""The functional API: ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``jacfwd``, ``jacrev``,
``hessian``, ``hvp`` and ``stop_gradient``, with JAX's signatures.

Each transformation opens one trace (:mod:`wengert.core`), wraps the flattened inputs as its
tracers, runs the function, and reads the derivative off the outputs (forward mode) or off
one backward sweep of the tape (reverse mode).
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wengert import numpy as wnp
from wengert.core import (
    JVPTrace,
    JVPTracer,
    Tracer,
    VJPTrace,
    VJPTracer,
    backward,
    end_trace,
    new_trace,
    primal_value,
)
from wengert.tree import leaf_paths, tree_flatten, tree_map, tree_unflatten

__all__ = [
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "jacfwd",
    "jacrev",
    "hessian",
    "hvp",
    "stop_gradient",
    "holomorphic_grad",
]

ArgNums = int | Sequence[int]


# ---------------------------------------------------------------------------------------------
# Checking what the user gave
# ---------------------------------------------------------------------------------------------


def _argnums_tuple(argnums: ArgNums, nargs: int, who: str) -> tuple[int, ...]:
    single = isinstance(argnums, (int, np.integer))
    nums = (argnums,) if single else tuple(argnums)
    out = []
    for a in nums:
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(f"{who}: argnums must be integers, got {a!r}") from None
        if not -nargs <= a < nargs:
            raise ValueError(
                f"{who}: argnums={argnums!r} is out of range: the function was called with "
                f"{nargs} positional argument{'s' if nargs != 1 else ''} "
                f"(valid argnums are 0..{nargs - 1})"
            )
        out.append(a % nargs)
    return tuple(out)


def _diff_leaf(x: Any, where: str, who: str) -> Any:
    """Check that a leaf can be differentiated with respect to, and return it as an array."""
    if isinstance(x, Tracer):
        return x
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(
            f"{who}: cannot differentiate with respect to {where}, which is {x!r}; only float or "
            "complex arrays and scalars have derivatives. Move it out of argnums."
        )
    a = x if type(x) is np.ndarray else np.asarray(x)
    if a.dtype.kind not in "fc":
        raise TypeError(
            f"{who}: cannot differentiate with respect to {where}, which has dtype {a.dtype}: "
            "integer and boolean inputs are constants with no derivative. Pass a float array "
            "(e.g. x.astype(float)) or leave it out of argnums."
        )
    return a


def _flatten_diff(args: Sequence, names: Sequence[str], who: str):
    """Flatten the differentiated arguments and validate every leaf."""
    leaves, treedef = tree_flatten(tuple(args))
    if not leaves:
        raise TypeError(f"{who}: there is nothing to differentiate: the arguments hold no arrays")
    paths = leaf_paths(treedef)
    checked = []
    for leaf, path in zip(leaves, paths):
        # path looks like "[k]..." where k indexes into `args`
        k = int(path[1 : path.index("]")])
        rest = path[path.index("]") + 1 :]
        checked.append(_diff_leaf(leaf, f"{names[k]}{rest}", who))
    for a, name in zip(args, names):
        if a is None:
            raise TypeError(f"{who}: cannot differentiate with respect to {name}, which is None")
    return checked, treedef


def _own_primal(x: Any, trace: Any) -> Any:
    """Unwrap one level: the value of ``x`` as seen below ``trace``."""
    return x.primal if isinstance(x, Tracer) and x._trace is trace else x


def _cast_like(ct: Any, x: Any) -> Any:
    """Give a cotangent the dtype of its primal (real part for real inputs)."""
    xd = np.result_type(primal_value(x))
    cd = np.result_type(primal_value(ct))
    if cd == xd:
        return ct
    if xd.kind != "c" and cd.kind == "c":
        ct = wnp.real(ct)
    return wnp.astype(ct, xd)


def _finish(ct: Any, x: Any) -> Any:
    """A cotangent for input ``x`` as returned to the user: right dtype, never None, writable."""
    if ct is None:
        return np.zeros_like(primal_value(x))
    ct = _cast_like(ct, x)
    if type(ct) is np.ndarray and not ct.flags.writeable:
        ct = ct.copy()
    elif isinstance(ct, np.generic):
        ct = np.asarray(ct)
    return ct


def _rewrite_readonly(err: ValueError, trace: VJPTrace) -> Exception:
    if "read-only" not in str(err) or not trace.locked:
        return err
    ops = []
    for _, op in trace.locked:
        if op not in ops:
            ops.append(op)
    return ValueError(
        "an array that wengert saved for the backward sweep was written in place. It was "
        f"saved by {', '.join(repr(o) for o in ops[:5])}{' ...' if len(ops) > 5 else ''}, and "
        "changing it now would make the gradient silently wrong. Copy the array before "
        "changing it (b = a.copy()), or change it before using it in the traced computation."
    )


def _run_traced(f: Callable, args: tuple, kwargs: dict, trace: VJPTrace | None) -> Any:
    try:
        return f(*args, **kwargs)
    except ValueError as e:
        if trace is not None:
            new = _rewrite_readonly(e, trace)
            if new is not e:
                trace.unlock()
                raise new from e
        raise
    except BaseException:
        if trace is not None:
            trace.unlock()
        raise


# ---------------------------------------------------------------------------------------------
# Reverse mode
# ---------------------------------------------------------------------------------------------


def vjp(f: Callable, *primals: Any, has_aux: bool = False):
    """Reverse mode: ``(f(*primals), vjp_fn)`` where ``vjp_fn(ū) = ūᵀ ∂f/∂x`` for each primal.

    ``vjp_fn`` takes a cotangent with the structure, shapes and dtypes of the output and
    returns a tuple with one cotangent per primal.  It may be called many times; the tape it
    sweeps lives as long as ``vjp_fn`` does (and so do the guards that keep its saved arrays
    read-only).  With ``has_aux``, ``f`` returns ``(out, aux)`` and ``vjp`` returns
    ``(out, vjp_fn, aux)``.
    """
    names = [f"argument {i}" for i in range(len(primals))]
    leaves, in_tree = _flatten_diff(primals, names, "vjp")
    trace = new_trace(VJPTrace)
    try:
        inputs = [trace.new_input(x) for x in leaves]
        out = _run_traced(f, tuple(tree_unflatten(in_tree, inputs)), {}, trace)
    finally:
        end_trace(trace)
    aux = None
    if has_aux:
        out, aux = _split_aux(out, "vjp")
        aux = tree_map(lambda a: _own_primal(a, trace), aux)
    out_leaves, out_tree = tree_flatten(out)
    out_primal = tree_unflatten(out_tree, [_own_primal(o, trace) for o in out_leaves])

    def vjp_fn(cotangent: Any) -> tuple:
        ct_leaves, ct_tree = tree_flatten(cotangent)
        if ct_tree != out_tree:
            raise ValueError(
                f"vjp_fn: the cotangent must have the structure of the output, {out_tree}, "
                f"but has structure {ct_tree}"
            )
        seeds = []
        for k, (o, c) in enumerate(zip(out_leaves, ct_leaves)):
            c = _check_cotangent(c, _own_primal(o, trace), k, len(out_leaves))
            if isinstance(o, VJPTracer) and o._trace is trace:
                seeds.append((o.idx, c))
        adj = backward(trace, seeds, retain=True)
        return tuple(tree_unflatten(in_tree, [_finish(adj[t.idx], t) for t in inputs]))

    weakref.finalize(vjp_fn, trace.unlock)
    if has_aux:
        return out_primal, vjp_fn, aux
    return out_primal, vjp_fn


def _check_cotangent(c: Any, o: Any, k: int, n: int) -> Any:
    where = "the cotangent" if n == 1 else f"cotangent leaf {k}"
    oshape = np.shape(primal_value(o))
    odt = np.result_type(primal_value(o))
    if isinstance(c, (Tracer, np.ndarray, np.generic)):
        cshape, cdt = np.shape(primal_value(c)), np.result_type(primal_value(c))
    else:
        try:
            arr = np.asarray(c)
        except Exception:
            raise TypeError(f"vjp_fn: {where} must be an array, not {type(c).__name__}") from None
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"vjp_fn: {where} must be numeric, not {arr.dtype}")
        c = arr.astype(odt) if odt.kind in "fc" else arr
        cshape, cdt = arr.shape, c.dtype
    if cshape != oshape:
        raise ValueError(
            f"vjp_fn: {where} has shape {cshape}, but the output it pairs with has shape {oshape}"
        )
    if odt.kind in "fc" and cdt != odt:
        raise TypeError(
            f"vjp_fn: {where} has dtype {cdt}, but the output has dtype {odt}; pass a cotangent "
            f"of dtype {odt} (e.g. ct.astype(np.{odt.name}))"
        )
    return c


def _split_aux(out: Any, who: str):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"{who}(has_aux=True): the function must return a pair (output, aux)")
    return out[0], out[1]


def value_and_grad(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """``(f(x), ∇f(x))`` in one forward pass and one backward sweep.

    ``f`` must return a real scalar.  The gradient has the structure and dtype of the
    argument(s) selected by ``argnums`` (a tuple of them if ``argnums`` is a tuple).
    """

    def value_and_grad_f(*args: Any, **kwargs: Any):
        nums = _argnums_tuple(argnums, len(args), "grad")
        names = [f"argument {i}" for i in nums]
        leaves, in_tree = _flatten_diff([args[i] for i in nums], names, "grad")
        trace = new_trace(VJPTrace)
        try:
            inputs = [trace.new_input(x) for x in leaves]
            new_args = list(args)
            for i, sub in zip(nums, tree_unflatten(in_tree, inputs)):
                new_args[i] = sub
            out = _run_traced(f, tuple(new_args), kwargs, trace)
        finally:
            end_trace(trace)
        try:
            aux = None
            if has_aux:
                out, aux = _split_aux(out, "grad")
                aux = tree_map(lambda a: _own_primal(a, trace), aux)
            value = _check_scalar_output(out, trace)
            if isinstance(out, VJPTracer) and out._trace is trace:
                seed = np.ones((), np.result_type(primal_value(value)))
                adj = backward(trace, [(out.idx, seed)])
                grads = [_finish(adj[t.idx], t) for t in inputs]
            else:
                grads = [_finish(None, t) for t in inputs]
        finally:
            trace.unlock()
        g = tree_unflatten(in_tree, grads)
        g = g[0] if isinstance(argnums, (int, np.integer)) else g
        return ((value, aux), g) if has_aux else (value, g)

    _wrap_name(value_and_grad_f, f, "value_and_grad")
    return value_and_grad_f


def _check_scalar_output(out: Any, trace: VJPTrace) -> Any:
    if isinstance(out, (tuple, list, dict)):
        raise TypeError(
            f"grad: the function must return a scalar, but it returned a {type(out).__name__}. "
            "If it returns (loss, extras), use grad(f, has_aux=True); for several outputs use "
            "vjp or jacrev."
        )
    value = _own_primal(out, trace)
    v = primal_value(value)
    if not isinstance(v, (np.ndarray, np.generic, int, float, complex)):
        raise TypeError(f"grad: the function must return a scalar array, not {type(v).__name__}")
    shape = np.shape(v)
    if shape != ():
        raise TypeError(
            f"grad requires a scalar output, but the function returned an array of shape {shape}. "
            "Differentiate its sum (grad(lambda x: f(x).sum())), or use vjp or jacrev for the "
            "full Jacobian."
        )
    if np.iscomplexobj(v):
        raise TypeError(
            "grad requires a real-valued output, but the function returned a complex number; "
            "use holomorphic_grad for holomorphic functions, or vjp."
        )
    if np.result_type(v).kind not in "f":
        value = np.asarray(v, dtype=float)
    return value


def grad(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """The gradient ∇f of a real scalar function, by one reverse sweep.

    ``grad(f)(x)`` has the structure, shape and dtype of ``x``.  A function whose output does
    not depend on ``x`` has gradient zero.  ``argnums`` picks the argument(s); with
    ``has_aux`` the function returns ``(value, aux)`` and ``grad`` returns ``(∇f, aux)``.
    """
    vg = value_and_grad(f, argnums=argnums, has_aux=has_aux)

    def grad_f(*args: Any, **kwargs: Any):
        (value, g) = vg(*args, **kwargs)
        if has_aux:
            return g, value[1]
        return g

    _wrap_name(grad_f, f, "grad")
    return grad_f


def holomorphic_grad(f: Callable, argnums: ArgNums = 0) -> Callable:
    """The complex derivative f'(z) of a holomorphic scalar function (summed over elements for
    array inputs), by one reverse sweep with cotangent 1."""

    def hgrad(*args: Any):
        nums = _argnums_tuple(argnums, len(args), "holomorphic_grad")

        def fpart(*diff):
            new = list(args)
            for i, d in zip(nums, diff):
                new[i] = d
            return f(*new)

        out, pull = vjp(fpart, *[args[i] for i in nums])
        if np.shape(primal_value(out)) != ():
            raise TypeError("holomorphic_grad requires a scalar output; use vjp or jacrev")
        cts = pull(np.ones((), np.result_type(primal_value(out))))
        return cts[0] if isinstance(argnums, (int, np.integer)) else cts

    _wrap_name(hgrad, f, "holomorphic_grad")
    return hgrad


# ---------------------------------------------------------------------------------------------
# Forward mode
# ---------------------------------------------------------------------------------------------


def jvp(f: Callable, primals: Sequence, tangents: Sequence, has_aux: bool = False):
    """Forward mode: ``(f(*primals), J·tangents)`` by carrying dual numbers through ``f``.

    ``tangents`` has the structure of ``primals``, with the same shapes and dtypes.
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples (one entry per argument)")
    names = [f"argument {i}" for i in range(len(primals))]
    leaves, in_tree = _flatten_diff(primals, names, "jvp")
    t_leaves, t_tree = tree_flatten(tuple(tangents))
    if t_tree != in_tree:
        raise ValueError(
            f"jvp: tangents must have the structure of primals, {in_tree}, but have {t_tree}"
        )
    paths = leaf_paths(in_tree)
    checked = [_check_tangent(t, x, p) for t, x, p in zip(t_leaves, leaves, paths)]
    trace = new_trace(JVPTrace, 0)
    try:
        inputs = [JVPTracer(x, t, trace) for x, t in zip(leaves, checked)]
        out = f(*tree_unflatten(in_tree, inputs))
    finally:
        end_trace(trace)
    aux = None
    if has_aux:
        out, aux = _split_aux(out, "jvp")
        aux = tree_map(lambda a: _own_primal(a, trace), aux)
    out_leaves, out_tree = tree_flatten(out)
    prim = [_own_primal(o, trace) for o in out_leaves]
    tan = [
        o.tangent
        if isinstance(o, JVPTracer) and o._trace is trace
        else np.zeros_like(primal_value(o))
        for o in out_leaves
    ]
    res = (tree_unflatten(out_tree, prim), tree_unflatten(out_tree, tan))
    return res + (aux,) if has_aux else res


def _check_tangent(t: Any, x: Any, path: str) -> Any:
    xs, xd = np.shape(primal_value(x)), np.result_type(primal_value(x))
    if isinstance(t, (np.ndarray, np.generic, Tracer)):
        ts, td = np.shape(primal_value(t)), np.result_type(primal_value(t))
    else:
        try:
            arr = np.asarray(t)
        except Exception:
            raise TypeError(f"jvp: the tangent for argument{path} must be an array") from None
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"jvp: the tangent for argument{path} must be numeric, not {arr.dtype}")
        t = arr.astype(xd)
        ts, td = t.shape, xd
    if ts != xs:
        raise ValueError(
            f"jvp: the tangent for argument{path} has shape {ts}, but the primal has shape {xs}"
        )
    if td != xd:
        raise TypeError(
            f"jvp: the tangent for argument{path} has dtype {td}, but the primal has dtype {xd}; "
            "tangents must match their primals' dtypes"
        )
    return t


def jacfwd(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """The Jacobian ∂f/∂x by forward mode, in one vectorised pass.

    The tangent carries all n basis directions at once (a leading batch axis), so the cost is
    one pass over ``f`` with n-wide tangents.  The result has shape ``out.shape + x.shape``.
    """

    def jac(*args: Any):
        nums = _argnums_tuple(argnums, len(args), "jacfwd")
        names = [f"argument {i}" for i in nums]
        leaves, in_tree = _flatten_diff([args[i] for i in nums], names, "jacfwd")
        sizes = [int(np.size(primal_value(x))) for x in leaves]
        n = sum(sizes)
        trace = new_trace(JVPTrace, 1)
        try:
            inputs = []
            off = 0
            for x, sz in zip(leaves, sizes):
                shape = np.shape(primal_value(x))
                basis = np.zeros((n, sz), np.result_type(primal_value(x)))
                basis[np.arange(off, off + sz), np.arange(sz)] = 1
                inputs.append(JVPTracer(x, basis.reshape((n,) + shape), trace))
                off += sz
            new_args = list(args)
            for i, sub in zip(nums, tree_unflatten(in_tree, inputs)):
                new_args[i] = sub
            out = f(*new_args)
        finally:
            end_trace(trace)
        aux = None
        if has_aux:
            out, aux = _split_aux(out, "jacfwd")
            aux = tree_map(lambda a: _own_primal(a, trace), aux)
        out_leaves, out_tree = tree_flatten(out)
        blocks = []
        for o in out_leaves:
            oshape = np.shape(primal_value(o))
            if isinstance(o, JVPTracer) and o._trace is trace:
                t = wnp.moveaxis(o.tangent, 0, -1)  # oshape + (n,)
            else:
                t = np.zeros(oshape + (n,), np.result_type(primal_value(o), float))
            per_input = []
            off = 0
            for x, sz in zip(leaves, sizes):
                piece = t[..., off : off + sz]
                per_input.append(wnp.reshape(piece, oshape + np.shape(primal_value(x))))
                off += sz
            blocks.append(_select(tree_unflatten(in_tree, per_input), argnums))
        res = tree_unflatten(out_tree, blocks)
        return (res, aux) if has_aux else res

    _wrap_name(jac, f, "jacfwd")
    return jac


def _select(per_arg: tuple, argnums: ArgNums) -> Any:
    return per_arg[0] if isinstance(argnums, (int, np.integer)) else per_arg


def jacrev(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """The Jacobian ∂f/∂x by reverse mode: one forward pass, then one backward sweep per output
    element over the same tape.  The result has shape ``out.shape + x.shape``."""

    def jac(*args: Any):
        nums = _argnums_tuple(argnums, len(args), "jacrev")

        def fpart(*diff):
            new = list(args)
            for i, d in zip(nums, diff):
                new[i] = d
            return f(*new)

        res = vjp(fpart, *[args[i] for i in nums], has_aux=has_aux)
        out, pull = res[0], res[1]
        out_leaves, out_tree = tree_flatten(out)
        rows_per_out = []
        for k, o in enumerate(out_leaves):
            oshape = np.shape(primal_value(o))
            odt = np.result_type(primal_value(o))
            size = int(np.prod(oshape, dtype=int))
            rows = []
            for j in range(size):
                cts = [
                    np.zeros(np.shape(primal_value(q)), np.result_type(primal_value(q)))
                    for q in out_leaves
                ]
                e = np.zeros(size, odt)
                e[j] = 1
                cts[k] = e.reshape(oshape)
                rows.append(pull(tree_unflatten(out_tree, cts)))
            per_arg = []
            for a in range(len(nums)):
                in_leaves, in_tree = (
                    tree_flatten(rows[0][a]) if rows else tree_flatten(args[nums[a]])
                )
                blocks = []
                for leaf_i, leaf in enumerate(in_leaves):
                    ishape = np.shape(primal_value(leaf))
                    if rows:
                        stacked = wnp.stack([tree_flatten(r[a])[0][leaf_i] for r in rows])
                    else:
                        stacked = np.zeros((0,) + ishape)
                    blocks.append(wnp.reshape(stacked, oshape + ishape))
                per_arg.append(tree_unflatten(in_tree, blocks))
            rows_per_out.append(_select(tuple(per_arg), argnums))
        result = tree_unflatten(out_tree, rows_per_out)
        return (result, res[2]) if has_aux else result

    _wrap_name(jac, f, "jacrev")
    return jac


def hessian(f: Callable, argnums: ArgNums = 0) -> Callable:
    """The Hessian ∂²f/∂x², as forward-over-reverse: ``jacfwd(jacrev(f))``."""
    h = jacfwd(jacrev(f, argnums), argnums)
    _wrap_name(h, f, "hessian")
    return h


def hvp(f: Callable, primals: Sequence, tangents: Sequence) -> Any:
    """The Hessian-vector product H·v of a scalar ``f`` at ``primals``, without forming H:
    forward mode over the reverse-mode gradient (one backward sweep with dual numbers)."""
    nums = tuple(range(len(primals)))
    _, out = jvp(grad(f, argnums=nums), tuple(primals), tuple(tangents))
    return out[0] if len(primals) == 1 else out


# ---------------------------------------------------------------------------------------------
# Odds and ends
# ---------------------------------------------------------------------------------------------


def stop_gradient(x: Any) -> Any:
    """``x`` as a constant: the same value, with zero derivative at every level of nesting."""
    return tree_map(primal_value, x)


def _wrap_name(g: Callable, f: Callable, kind: str) -> None:
    name = getattr(f, "__name__", type(f).__name__)
    g.__name__ = f"{kind}({name})"
    g.__qualname__ = g.__name__
    g.__doc__ = f"The {kind} of {name}." + (
        f"\n\n{f.__doc__}" if getattr(f, "__doc__", None) else ""
    )
    g.__wrapped__ = f
