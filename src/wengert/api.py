"""The functional API: ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``jacfwd``, ``jacrev``,
``hessian``, ``hvp``, ``holomorphic_grad`` and ``stop_gradient``, with JAX's signatures.

Each transformation opens one trace (:mod:`wengert.core`), wraps the flattened inputs as its
tracers, runs the function, and reads the derivative off the outputs (forward mode) or off
one backward sweep of the tape (reverse mode).  Arguments and outputs are pytrees
(:mod:`wengert.tree`); derivatives come back with the structure, shapes and dtypes of the
values they belong to.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wengert import numpy as wnp
from wengert._saved import (
    SavedArrayMutatedError,
    _call_traced,
    _guards,
    _release,
    _verify,
)
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
    "SavedArrayMutatedError",
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


def _diff_leaf(x: Any, where: Callable[[], str], who: str) -> Any:
    """Check that a leaf can be differentiated with respect to, and return it as an array.
    ``where()`` names the leaf for the error message (built only when one is raised)."""
    if isinstance(x, Tracer):
        return x
    if type(x) is np.ndarray:
        if x.dtype.kind in "fc":
            return x
        a = x
    elif x is None or isinstance(x, (str, bytes)):
        raise TypeError(
            f"{who}: cannot differentiate with respect to {where()}, which is {x!r}; only float "
            "or complex arrays and scalars have derivatives. Move it out of argnums."
        )
    else:
        a = np.asarray(x)
    if a.dtype.kind not in "fc":
        raise TypeError(
            f"{who}: cannot differentiate with respect to {where()}, which has dtype {a.dtype}: "
            "integer and boolean inputs are constants with no derivative. Pass a float array "
            "(e.g. x.astype(float)) or leave it out of argnums."
        )
    return a


class _LeafNames(Sequence):
    """The names of the differentiated leaves ("argument 0['w']"), for messages: built on
    first use, so the common, error-free call never formats them."""

    def __init__(self, treedef: Any, names: Sequence[str]) -> None:
        self._treedef, self._names, self._built = treedef, names, None

    def _all(self) -> list[str]:
        if self._built is None:
            out = []
            for path in leaf_paths(self._treedef):  # "[k]..." where k indexes the arguments
                k = int(path[1 : path.index("]")])
                out.append(f"{self._names[k]}{path[path.index(']') + 1 :]}")
            self._built = out
        return self._built

    def __getitem__(self, i):
        return self._all()[i]

    def __len__(self) -> int:
        return self._treedef.num_leaves


class _LazyDict(dict):
    """A dict filled by ``build()`` the first time it is read (names for error messages)."""

    def __init__(self, build: Callable[[], dict]) -> None:
        super().__init__()
        self._build: Callable[[], dict] | None = build

    def _fill(self) -> None:
        if self._build is not None:
            build, self._build = self._build, None
            self.update(build())

    def get(self, key, default=None):
        self._fill()
        return dict.get(self, key, default)

    def __contains__(self, key) -> bool:
        self._fill()
        return dict.__contains__(self, key)

    def __getitem__(self, key):
        self._fill()
        return dict.__getitem__(self, key)

    def __iter__(self):
        self._fill()
        return dict.__iter__(self)

    def keys(self):
        self._fill()
        return dict.keys(self)


def _user_names(leaves: Sequence, where: Sequence[str]) -> dict:
    """``id(array) -> name`` for the arrays the user passed, built only if a message needs it."""
    return _LazyDict(lambda: {id(x): w for x, w in zip(leaves, where) if type(x) is np.ndarray})


def _flatten_diff(args: Sequence, names: Sequence[str], who: str):
    """Flatten the differentiated arguments and validate every leaf.

    Returns the checked leaves, the structure, and the leaves' names ("argument 0['w']").
    """
    for a, name in zip(args, names):
        if a is None:
            raise TypeError(
                f"{who}: cannot differentiate with respect to {name}, which is None; only float "
                "or complex arrays and scalars have derivatives. Move it out of argnums."
            )
    leaves, treedef = tree_flatten(tuple(args))
    if not leaves:
        raise TypeError(
            f"{who}: there is nothing to differentiate: the arguments "
            f"({', '.join(names)}) hold no arrays"
        )
    where = _LeafNames(treedef, names)
    checked = [_diff_leaf(leaf, lambda i=i: where[i], who) for i, leaf in enumerate(leaves)]
    return checked, treedef, where


def _check_holomorphic_inputs(leaves: Sequence, where: Sequence[str], who: str) -> None:
    """``holomorphic=True`` needs complex inputs; without it, Jacobians refuse complex inputs."""
    for x, name in zip(leaves, where):
        if np.result_type(primal_value(x)).kind != "c":
            raise TypeError(
                f"{who}(holomorphic=True): {name} has dtype {np.result_type(primal_value(x))}, "
                "but holomorphic differentiation needs complex inputs; pass x.astype(complex), "
                "or drop holomorphic=True for a real function."
            )


def _refuse_complex_inputs(leaves: Sequence, where: Sequence[str], who: str) -> None:
    for x, name in zip(leaves, where):
        if np.result_type(primal_value(x)).kind == "c":
            raise TypeError(
                f"{who}: {name} is complex. A Jacobian with respect to a complex input is only "
                f"well defined for a holomorphic function: pass {who}(f, holomorphic=True) if f "
                "is holomorphic; otherwise split the input into real and imaginary parts, or use "
                "grad / vjp / jvp, which take complex inputs."
            )


def _own_primal(x: Any, trace: Any) -> Any:
    """Unwrap one level: the value of ``x`` as seen below ``trace``."""
    return x.primal if isinstance(x, Tracer) and x._trace is trace else x


def _cast_like(ct: Any, x: Any) -> Any:
    """Give a cotangent the dtype of its primal (real part for real inputs)."""
    xd = x.dtype  # arrays, NumPy scalars and tracers all know their dtype
    cd = ct.dtype if hasattr(ct, "dtype") else np.result_type(ct)
    if cd == xd:
        return ct
    if xd.kind != "c" and cd.kind == "c":
        ct = wnp.real(ct)
    return wnp.astype(ct, xd)


def _finish(ct: Any, x: Any, given: Sequence = ()) -> Any:
    """A cotangent for input ``x`` as returned to the user: the dtype of ``x``, never None,
    writable, and never sharing memory with an array the user gave (``given``)."""
    if ct is None:
        return np.zeros_like(primal_value(x))
    ct = _cast_like(ct, x)
    if type(ct) is np.ndarray:
        if not ct.flags.writeable or any(np.may_share_memory(ct, g) for g in given):
            ct = ct.copy()
    elif isinstance(ct, np.generic):
        ct = np.asarray(ct)
    return ct


# ---------------------------------------------------------------------------------------------
# Reverse mode
# ---------------------------------------------------------------------------------------------


def _vjp_core(f: Callable, primals: Sequence, has_aux: bool, who: str, guard: bool = True):
    """Trace ``f(*primals)`` on a fresh tape.

    Returns ``(out, aux, pull, guards)``: the plain output (and aux), ``pull(cotangent)`` that
    sweeps the tape -- it may be called many times -- and (if ``guard``) the fingerprints of
    the saved arrays the user can reach.
    """
    names = [f"argument {i}" for i in range(len(primals))]
    leaves, in_tree, where = _flatten_diff(primals, names, who)
    user_names = _user_names(leaves, where)
    trace = new_trace(VJPTrace)
    try:
        try:
            inputs = [trace.new_input(x) for x in leaves]
            out = _call_traced(f, tuple(tree_unflatten(in_tree, inputs)), {}, trace, user_names)
        finally:
            end_trace(trace)
        aux = None
        aux_leaves: list = []
        if has_aux:
            out, aux = _split_aux(out, who)
            aux_leaves = tree_flatten(aux)[0]
            aux = tree_map(lambda a: _own_primal(a, trace), aux)
        out_leaves, out_tree = tree_flatten(out)
        labels = (
            ["the output"]
            if len(out_leaves) == 1
            else [f"output leaf {k}" for k in range(len(out_leaves))]
        )
        reachable = list(zip(labels, out_leaves)) + [("the aux output", a) for a in aux_leaves]
        guards = _guards(trace, user_names, reachable) if guard else []
    finally:
        _release(trace)
    out_primal = tree_unflatten(out_tree, [_own_primal(o, trace) for o in out_leaves])
    out_plain = [_own_primal(o, trace) for o in out_leaves]

    def pull(cotangent: Any) -> tuple:
        ct_leaves, ct_tree = tree_flatten(cotangent)
        if ct_tree != out_tree:
            raise ValueError(
                f"vjp_fn: the cotangent must have the structure of the output, {out_tree}, "
                f"but has structure {ct_tree}"
            )
        seeds = []
        for k, (o, c) in enumerate(zip(out_leaves, ct_leaves)):
            c = _check_cotangent(c, out_plain[k], k, len(out_leaves))
            if isinstance(o, VJPTracer) and o._trace is trace:
                seeds.append((o.idx, c))
        adj = backward(trace, seeds, retain=True)
        given = [c for c in ct_leaves if isinstance(c, np.ndarray)]
        return tuple(tree_unflatten(in_tree, [_finish(adj[t.idx], t, given) for t in inputs]))

    return out_primal, aux, pull, guards


def vjp(f: Callable, *primals: Any, has_aux: bool = False):
    """Reverse mode: ``(f(*primals), vjp_fn)`` with ``vjp_fn(ū) = ūᵀ ∂f/∂x`` for each primal.

    ``f`` is run once, recording a tape.  ``vjp_fn`` takes a cotangent ū with the structure,
    shapes and dtypes of the output and returns a tuple with one cotangent per primal,
    ``(ūᵀ ∂f/∂x₀, ūᵀ ∂f/∂x₁, ...)``, each with the structure and dtype of its primal.  It
    sweeps the tape backwards once per call and may be called many times.  With ``has_aux``,
    ``f`` returns ``(out, aux)`` and ``vjp`` returns ``(out, vjp_fn, aux)``.

    The tape keeps the arrays it needs; your arrays stay writable, but ``vjp_fn`` raises
    :class:`SavedArrayMutatedError` if one it saved (an argument, a constant, the output) was
    changed in place after ``vjp`` returned.
    """
    out, aux, pull, guards = _vjp_core(f, primals, has_aux, "vjp")

    def vjp_fn(cotangent: Any) -> tuple:
        _verify(guards, "vjp_fn")
        return pull(cotangent)

    name = getattr(f, "__name__", type(f).__name__)
    vjp_fn.__qualname__ = vjp_fn.__name__ = f"vjp_fn({name})"
    if has_aux:
        return out, vjp_fn, aux
    return out, vjp_fn


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


def value_and_grad(
    f: Callable, argnums: ArgNums = 0, has_aux: bool = False, holomorphic: bool = False
) -> Callable:
    """``(f(x), ∇f(x))`` in one forward pass and one backward sweep.

    ``f`` must return a real scalar y.  The gradient ∇f = (∂y/∂x)ᵀ·1 has the structure,
    shapes and dtype of the argument(s) selected by ``argnums`` (a tuple of them if
    ``argnums`` is a tuple).  For a complex input z = a + ib it is ∂y/∂a − i·∂y/∂b, the
    conjugate of the steepest-ascent direction (JAX's convention): ``grad(lambda z:
    (z * z.conj()).real)(z) == 2 * z.conj()``.  With ``holomorphic=True`` f maps complex
    inputs to a complex scalar and the result is the complex derivative f'(z).
    """

    def value_and_grad_f(*args: Any, **kwargs: Any):
        who = "grad"
        nums = _argnums_tuple(argnums, len(args), who)
        names = [f"argument {i}" for i in nums]
        leaves, in_tree, where = _flatten_diff([args[i] for i in nums], names, who)
        if holomorphic:
            _check_holomorphic_inputs(leaves, where, who)
        user_names = _user_names(leaves, where)
        trace = new_trace(VJPTrace)
        try:
            try:
                inputs = [trace.new_input(x) for x in leaves]
                new_args = list(args)
                for i, sub in zip(nums, tree_unflatten(in_tree, inputs)):
                    new_args[i] = sub
                out = _call_traced(f, tuple(new_args), kwargs, trace, user_names)
            finally:
                end_trace(trace)
            aux = None
            if has_aux:
                out, aux = _split_aux(out, "grad")
                aux = tree_map(lambda a: _own_primal(a, trace), aux)
            value = _check_scalar_output(out, trace, holomorphic)
            if isinstance(out, VJPTracer) and out._trace is trace:
                seed = np.ones((), primal_value(value).dtype)
                adj = backward(trace, [(out.idx, seed)])
                grads = [_finish(adj[t.idx], t) for t in inputs]
            else:
                grads = [_finish(None, t) for t in inputs]
        finally:
            _release(trace)
        g = tree_unflatten(in_tree, grads)
        g = g[0] if isinstance(argnums, (int, np.integer)) else g
        return ((value, aux), g) if has_aux else (value, g)

    _wrap_name(value_and_grad_f, f, "value_and_grad")
    return value_and_grad_f


def _check_scalar_output(out: Any, trace: VJPTrace, holomorphic: bool = False) -> Any:
    if isinstance(out, (tuple, list, dict)):
        raise TypeError(
            f"grad: the function must return a scalar, but it returned a {type(out).__name__}. "
            "If it returns (loss, extras), use grad(f, has_aux=True); for several outputs use "
            "vjp or jacrev."
        )
    value = _own_primal(out, trace)
    v = primal_value(value)
    if isinstance(v, (np.ndarray, np.generic)):
        shape, dtype = v.shape, v.dtype
    elif isinstance(v, (int, float, complex)):
        shape, dtype = (), np.result_type(v)
    else:
        raise TypeError(f"grad: the function must return a scalar array, not {type(v).__name__}")
    if shape != ():
        raise TypeError(
            f"grad requires a scalar output, but the function returned an array of shape {shape}. "
            "Differentiate its sum (grad(lambda x: f(x).sum())), or use vjp or jacrev for the "
            "full Jacobian."
        )
    if dtype.kind == "c" and not holomorphic:
        raise TypeError(
            "grad requires a real-valued output, but the function returned a complex number; "
            "for a holomorphic function use grad(f, holomorphic=True) (or holomorphic_grad), "
            "otherwise differentiate its real part, its absolute value, or use vjp."
        )
    if dtype.kind not in "fc":
        value = np.asarray(v, dtype=float)
    return value


def grad(
    f: Callable, argnums: ArgNums = 0, has_aux: bool = False, holomorphic: bool = False
) -> Callable:
    """The gradient ∇f(x) = (∂f/∂x)ᵀ of a real scalar function, by one reverse sweep.

    ``grad(f)(x)`` has the structure, shape and dtype of ``x``.  A function whose output does
    not depend on ``x`` has gradient zero (an array of zeros, never None).  ``argnums`` picks
    the argument(s); with ``has_aux`` the function returns ``(value, aux)`` and ``grad``
    returns ``(∇f, aux)``.  Complex inputs: see :func:`value_and_grad`.
    """
    vg = value_and_grad(f, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic)

    def grad_f(*args: Any, **kwargs: Any):
        (value, g) = vg(*args, **kwargs)
        if has_aux:
            return g, value[1]
        return g

    _wrap_name(grad_f, f, "grad")
    return grad_f


def holomorphic_grad(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """The complex derivative f'(z) = ∂f/∂z of a holomorphic scalar function of complex
    input(s), by one reverse sweep with cotangent 1 (for array inputs, ∂f/∂zₖ elementwise).

    The same as ``grad(f, argnums, has_aux, holomorphic=True)``.
    """
    g = grad(f, argnums=argnums, has_aux=has_aux, holomorphic=True)
    _wrap_name(g, f, "holomorphic_grad")
    return g


# ---------------------------------------------------------------------------------------------
# Forward mode
# ---------------------------------------------------------------------------------------------


def jvp(f: Callable, primals: Sequence, tangents: Sequence, has_aux: bool = False):
    """Forward mode: ``(f(*primals), ∂f/∂x · tangents)`` by carrying dual numbers x + ẋ·ε
    through ``f`` (ε² = 0), in the same pass that computes the value.

    ``tangents`` has the structure of ``primals``, with the same shapes and dtypes.  The output
    tangent has the structure, shapes and dtypes of the output (zeros where the output does
    not depend on the inputs).  With ``has_aux``, ``f`` returns ``(out, aux)`` and ``jvp``
    returns ``(out, out_tangent, aux)``.
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples (one entry per argument)")
    if len(primals) != len(tangents):
        raise ValueError(
            f"jvp: got {len(primals)} primals but {len(tangents)} tangents; pass one tangent per "
            "primal, e.g. jvp(f, (x,), (v,))"
        )
    names = [f"argument {i}" for i in range(len(primals))]
    leaves, in_tree, where = _flatten_diff(primals, names, "jvp")
    t_leaves, t_tree = tree_flatten(tuple(tangents))
    if t_tree != in_tree:
        raise ValueError(
            f"jvp: tangents must have the structure of primals, {in_tree}, but have {t_tree}"
        )
    checked = [_check_tangent(t, x, w) for t, x, w in zip(t_leaves, leaves, where)]
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


def _check_tangent(t: Any, x: Any, where: str) -> Any:
    xs, xd = np.shape(primal_value(x)), np.result_type(primal_value(x))
    if isinstance(t, (np.ndarray, np.generic, Tracer)):
        ts, td = np.shape(primal_value(t)), np.result_type(primal_value(t))
    else:
        try:
            arr = np.asarray(t)
        except Exception:
            raise TypeError(f"jvp: the tangent for {where} must be an array") from None
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"jvp: the tangent for {where} must be numeric, not {arr.dtype}")
        if arr.dtype.kind == "c" and xd.kind != "c":
            raise TypeError(
                f"jvp: the tangent for {where} is complex, but the primal has real dtype {xd}"
            )
        t = arr.astype(xd)
        ts, td = t.shape, xd
    if ts != xs:
        raise ValueError(
            f"jvp: the tangent for {where} has shape {ts}, but the primal has shape {xs}; a "
            "tangent is a direction in the input space and must have the primal's shape"
        )
    if td != xd:
        raise TypeError(
            f"jvp: the tangent for {where} has dtype {td}, but the primal has dtype {xd}; "
            f"tangents must match their primals' dtypes (e.g. v.astype(np.{xd.name}))"
        )
    return t


def _zeros_dtype(o: Any, leaves: Sequence) -> np.dtype:
    """The dtype of a Jacobian block of an output that does not depend on the inputs."""
    od = np.result_type(primal_value(o))
    if od.kind in "fc":
        return od
    return np.result_type(*[primal_value(x) for x in leaves])


def jacfwd(
    f: Callable, argnums: ArgNums = 0, has_aux: bool = False, holomorphic: bool = False
) -> Callable:
    """The Jacobian J = ∂f/∂x by forward mode, in one vectorised pass.

    The tangent carries all n = size(x) basis directions at once (a leading batch axis), so
    the cost is one pass over ``f`` with n-wide tangents: column j of J is J·eⱼ.  For an
    output of shape S and an input of shape T the block has shape S + T.  Pytrees: the result
    has the output's structure, each leaf holding the input's structure (a tuple over
    ``argnums`` when it is a tuple).  Complex inputs need ``holomorphic=True`` (then J = ∂f/∂z).
    """

    def jac(*args: Any):
        nums = _argnums_tuple(argnums, len(args), "jacfwd")
        names = [f"argument {i}" for i in nums]
        leaves, in_tree, where = _flatten_diff([args[i] for i in nums], names, "jacfwd")
        if holomorphic:
            _check_holomorphic_inputs(leaves, where, "jacfwd")
        else:
            _refuse_complex_inputs(leaves, where, "jacfwd")
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
                t = np.zeros(oshape + (n,), _zeros_dtype(o, leaves))
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


def jacrev(
    f: Callable, argnums: ArgNums = 0, has_aux: bool = False, holomorphic: bool = False
) -> Callable:
    """The Jacobian J = ∂f/∂x by reverse mode: one forward pass, then one backward sweep per
    output element over the same tape (row i of J is eᵢᵀJ).  Shapes and structure as for
    :func:`jacfwd`.  Complex inputs need ``holomorphic=True``; complex outputs of real inputs
    are refused (their cotangents would drop the imaginary part): use ``jacfwd`` or ``vjp``.
    """

    def jac(*args: Any):
        nums = _argnums_tuple(argnums, len(args), "jacrev")
        diff_args = [args[i] for i in nums]
        names = [f"argument {i}" for i in nums]
        leaves, _, where = _flatten_diff(diff_args, names, "jacrev")
        if holomorphic:
            _check_holomorphic_inputs(leaves, where, "jacrev")
        else:
            _refuse_complex_inputs(leaves, where, "jacrev")

        def fpart(*diff):
            new = list(args)
            for i, d in zip(nums, diff):
                new[i] = d
            return f(*new)

        # the sweeps follow at once, with no user code in between: no fingerprints needed
        out, aux, pull, _ = _vjp_core(fpart, diff_args, has_aux, "jacrev", guard=False)
        out_leaves, out_tree = tree_flatten(out)
        if not holomorphic:
            for k, o in enumerate(out_leaves):
                if np.iscomplexobj(primal_value(o)):
                    raise TypeError(
                        f"jacrev: output leaf {k} is complex but the inputs are real, so reverse "
                        "mode would keep only the real part of each row; use jacfwd (which "
                        "handles complex outputs of real inputs), or vjp."
                    )
        zeros = [
            np.zeros(np.shape(primal_value(q)), np.result_type(primal_value(q))) for q in out_leaves
        ]
        rows_per_out = []
        for k, o in enumerate(out_leaves):
            oshape = np.shape(primal_value(o))
            odt = np.result_type(primal_value(o))
            size = int(np.prod(oshape, dtype=int))
            rows = []
            for j in range(size):
                e = np.zeros(size, odt)
                e[j] = 1
                cts = list(zeros)
                cts[k] = e.reshape(oshape)
                rows.append(pull(tree_unflatten(out_tree, cts)))
            per_arg = []
            for a in range(len(nums)):
                in_leaves, in_tree = (
                    tree_flatten(rows[0][a]) if rows else tree_flatten(diff_args[a])
                )
                blocks = []
                for leaf_i, leaf in enumerate(in_leaves):
                    ishape = np.shape(primal_value(leaf))
                    if rows:
                        stacked = wnp.stack([tree_flatten(r[a])[0][leaf_i] for r in rows])
                    else:
                        dt = np.result_type(primal_value(leaf))
                        stacked = np.zeros((0,) + ishape, dt if dt.kind in "fc" else float)
                    blocks.append(wnp.reshape(stacked, oshape + ishape))
                per_arg.append(tree_unflatten(in_tree, blocks))
            rows_per_out.append(_select(tuple(per_arg), argnums))
        result = tree_unflatten(out_tree, rows_per_out)
        return (result, aux) if has_aux else result

    _wrap_name(jac, f, "jacrev")
    return jac


def hessian(
    f: Callable, argnums: ArgNums = 0, has_aux: bool = False, holomorphic: bool = False
) -> Callable:
    """The Hessian H = ∂²f/∂x², Hᵢⱼ = ∂²f/∂xᵢ∂xⱼ, as forward-over-reverse:
    ``jacfwd(jacrev(f))`` -- one forward pass with n-wide dual numbers through the taping
    and the n backward sweeps.  For x of shape T the result has shape T + T (blocks per pair
    of arguments when ``argnums`` is a tuple)."""
    h = jacfwd(
        jacrev(f, argnums, has_aux=has_aux, holomorphic=holomorphic),
        argnums,
        has_aux=has_aux,
        holomorphic=holomorphic,
    )
    _wrap_name(h, f, "hessian")
    return h


def hvp(f: Callable, primals: Sequence, tangents: Sequence) -> Any:
    """The Hessian-vector product H·v = ∂/∂ε ∇f(x + εv) of a scalar ``f`` at ``primals``,
    without forming H: forward mode over the reverse-mode gradient (one backward sweep with
    dual numbers).  One primal gives one array; several give a tuple, one per primal."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("hvp: primals and tangents must be tuples (one entry per argument)")
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
