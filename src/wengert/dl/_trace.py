"""MATLAB's tracing workflow: ``dlfeval`` opens a reverse-mode trace, ``dlgradient`` sweeps
it; ``dljacobian``/``dldivergence``/``dllaplacian`` (R2024b) build on it, and ``map_dlarrays``
finds the dlarrays inside dicts, lists, tuples and networks.
"""

from __future__ import annotations

import contextvars
import copy as _copy
import operator
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from wengert import numpy as wnp
from wengert._saved import _call_traced, _release
from wengert.core import (
    TapeEntry,
    Tracer,
    VJPTrace,
    VJPTracer,
    backward,
    end_trace,
    new_trace,
    primal_value,
)
from wengert.dl._dlarray import _wrap, dlarray

__all__ = [
    "dlfeval",
    "dlgradient",
    "dljacobian",
    "dldivergence",
    "dllaplacian",
    "map_dlarrays",
    "iter_dlarrays",
]


# ---------------------------------------------------------------------------------------------
# The container walk
# ---------------------------------------------------------------------------------------------


def _walk(obj: Any, dl_fn: Callable[[dlarray], Any], leaf_fn: Callable[[Any], Any] | None) -> Any:
    """A copy of ``obj`` with each dlarray ``x`` replaced by ``dl_fn(x)`` and (if ``leaf_fn``
    is given) each other leaf of a dict/list/tuple by ``leaf_fn(leaf)``.  Objects with a
    ``_map_dlarrays(fn)`` method (networks, learnable tables) map their own dlarrays."""
    if isinstance(obj, dlarray):
        return dl_fn(obj)
    t = type(obj)
    if t is dict:
        return {k: _walk(v, dl_fn, leaf_fn) for k, v in obj.items()}
    if t is list:
        return [_walk(v, dl_fn, leaf_fn) for v in obj]
    if t is tuple:
        return tuple(_walk(v, dl_fn, leaf_fn) for v in obj)
    if isinstance(obj, tuple) and hasattr(t, "_fields"):  # a namedtuple
        return t(*[_walk(v, dl_fn, leaf_fn) for v in obj])
    if isinstance(obj, dict):  # OrderedDict, defaultdict...: keep the type and its settings
        out = _copy.copy(obj)
        for k, v in obj.items():
            out[k] = _walk(v, dl_fn, leaf_fn)
        return out
    if isinstance(obj, (list, tuple)):
        return t(_walk(v, dl_fn, leaf_fn) for v in obj)
    if not isinstance(obj, type):
        hook = getattr(t, "_map_dlarrays", None)
        if hook is not None:
            return obj._map_dlarrays(dl_fn)
    return obj if leaf_fn is None else leaf_fn(obj)


def map_dlarrays(obj: Any, fn: Callable[[dlarray], Any]) -> Any:
    """A copy of ``obj`` with every dlarray ``x`` inside replaced by ``fn(x)``.

    Recurses into dicts, lists, tuples, namedtuples and any object with a method
    ``_map_dlarrays(fn)`` that returns such a copy of itself (``dlnetwork`` and its
    learnables/state tables).  ``obj`` itself is never changed.  Other values are kept as
    they are (the same objects).
    """
    return _walk(obj, fn, None)


def iter_dlarrays(obj: Any) -> Iterator[dlarray]:
    """The dlarrays inside ``obj``, in the order :func:`map_dlarrays` visits them."""
    found: list = []

    def collect(x: dlarray) -> dlarray:
        found.append(x)
        return x

    _walk(obj, collect, None)
    return iter(found)


# ---------------------------------------------------------------------------------------------
# dlfeval frames
# ---------------------------------------------------------------------------------------------


class _Frame:
    """One ``dlfeval`` in progress (or one capture of an accelerated function): its trace,
    the value ids of its inputs, and whether a ``dlgradient`` without ``retain_data`` has
    already used the tape.  ``capture`` is the recorder of ``dlaccelerate`` (or None);
    ``grad_ok`` is False for a capture outside any dlfeval (MATLAB: nothing is traced)."""

    __slots__ = ("trace", "inputs", "swept", "capture", "grad_ok", "_rewrapped")

    def __init__(self, trace: VJPTrace, capture: Any = None, grad_ok: bool = True) -> None:
        self.trace = trace
        self.inputs: set = set()
        self.swept = False
        self.capture = capture
        self.grad_ok = grad_ok
        self._rewrapped: list = []  # the tape re-wrapped for create-graph sweeps, so far


_frames: contextvars.ContextVar[tuple] = contextvars.ContextVar("wengert_dl_frames", default=())


def _frame_of(trace: Any) -> _Frame | None:
    for f in reversed(_frames.get()):
        if f.trace is trace:
            return f
    return None


def _push(frame: _Frame):
    return _frames.set(_frames.get() + (frame,))


def _differentiable(v: Any) -> bool:
    return np.result_type(primal_value(v)).kind in "fc"


def _trace_args(args: Any, trace: VJPTrace, frame: _Frame) -> Any:
    """Copies of the arguments with each float dlarray's data a fresh input of ``trace`` (the
    same dlarray object met twice becomes the same input)."""
    memo: dict = {}

    def trace_one(x: dlarray) -> dlarray:
        hit = memo.get(id(x))
        if hit is not None:
            return hit[0]
        v = x._value
        if _differentiable(v):
            t = trace.new_input(v)
            frame.inputs.add(t.idx)
            got = _wrap(t, x._fmt)
        else:  # logical data: a constant, as MATLAB has no derivative for it
            got = _wrap(v, x._fmt)
        memo[id(x)] = (got, x)  # x kept alive so its id stays unique during the call
        return got

    return _walk(args, trace_one, None)


def _own_primal(v: Any, trace: Any) -> Any:
    return v.primal if type(v) is VJPTracer and v._trace is trace else v


def _untrace(out: Any, trace: Any) -> Any:
    """``out`` with this trace's level removed from every dlarray and traced leaf."""

    def dl(x: dlarray) -> dlarray:
        v = x._value
        if type(v) is VJPTracer and v._trace is trace:
            return _wrap(v.primal, x._fmt)
        return x

    return _walk(out, dl, lambda leaf: _own_primal(leaf, trace))


def dlfeval(fun: Callable, *args: Any, **kwargs: Any) -> Any:
    """Evaluate ``fun(*args)`` with the dlarrays in ``args`` traced, as MATLAB's ``dlfeval``.

    Each floating-point dlarray found in the arguments (also inside dicts, lists, tuples,
    namedtuples and networks) is replaced by a copy whose data is an independent variable
    x₀, x₁, … of a fresh reverse-mode trace (the user's objects are never changed); plain
    arrays and other values are constants.  Inside ``fun``, ``dlgradient(y, x)`` returns
    ∂y/∂x by a backward sweep of that trace.  The outputs come back with the structure
    ``fun`` returned and every dlarray untraced (plain data, same labels), as in MATLAB.
    Outside ``dlfeval`` nothing is recorded.  A ``dlfeval`` inside ``fun`` opens its own
    trace one level up, so derivatives of derivatives nest.
    """
    if not callable(fun):
        raise TypeError(f"dlfeval: the first argument must be a function, not {type(fun).__name__}")
    trace = new_trace(VJPTrace)
    frame = _Frame(trace)
    token = _push(frame)
    try:
        try:
            new_args, new_kwargs = _trace_args((args, kwargs), trace, frame)
            out = _call_traced(fun, tuple(new_args), new_kwargs, trace, {})
        finally:
            end_trace(trace)
            _frames.reset(token)
        return _untrace(out, trace)
    finally:
        _release(trace)
        frame._rewrapped = []


# ---------------------------------------------------------------------------------------------
# dlgradient
# ---------------------------------------------------------------------------------------------


def _level_of(v: Any, trace: Any) -> Any:
    """The tracer of ``trace`` inside ``v`` (looking below higher-level traces), or None."""
    while isinstance(v, Tracer):
        if v._trace is trace:
            return v
        v = v.primal
    return None


def _dlfeval_tracer(v: Any) -> tuple[Any, _Frame | None]:
    """The highest-level tracer in ``v`` that belongs to a dlfeval in progress, and its frame."""
    while isinstance(v, Tracer):
        f = _frame_of(v._trace)
        if f is not None and type(v) is VJPTracer:
            return v, f
        v = v.primal
    return None, None


def _describe_y(y: Any) -> str:
    return "a dlarray" if isinstance(y, dlarray) else type(y).__name__


def _check_y(y: Any, who: str) -> tuple[VJPTracer, _Frame, tuple, np.dtype]:
    yv = y._value if isinstance(y, dlarray) else y
    pv = primal_value(yv)
    if not isinstance(pv, (np.ndarray, np.generic)):
        if isinstance(pv, (int, float, complex, bool)):
            pv = np.asarray(pv)
        else:
            raise TypeError(
                f"{who}: the value to differentiate must be a traced real dlarray scalar, "
                f"not {_describe_y(y)}"
            )
    shape, dtype = np.shape(pv), np.result_type(pv)
    if int(np.prod(shape, dtype=int)) != 1:
        raise ValueError(
            f"{who}: Value to differentiate is non-scalar (shape {shape}). It must be a traced "
            "real dlarray scalar; differentiate sum(y) (or mean(y)) for the gradient of the "
            "total, or use dljacobian for every component."
        )
    if dtype.kind == "c":
        raise TypeError(
            f"{who}: Value to differentiate is complex. It must be a traced real dlarray "
            "scalar; differentiate its real part, imaginary part or absolute value."
        )
    if not any(f.grad_ok for f in _frames.get()):  # (an accelerated function's capture
        raise RuntimeError(  # outside dlfeval traces nothing for dlgradient either)
            f"{who}: not inside dlfeval, so nothing is traced. Call {who} inside a function "
            "evaluated by dlfeval: dlfeval(model_loss, net, X, T)."
        )
    swept = RuntimeError(
        f"{who}: this dlfeval's trace was already used by an earlier dlgradient call "
        "without retain_data=True (perhaps inside an accelerated function), which frees it. "
        "To take several gradients in one dlfeval, pass retain_data=True to every call but "
        "the last."
    )
    untraced = RuntimeError(
        f"{who}: Value to differentiate is not traced. It must be a traced real dlarray "
        "scalar: compute it inside the function evaluated by dlfeval from the dlarray "
        "arguments of dlfeval (extractdata and plain NumPy arrays are not traced)."
    )
    t, frame = _dlfeval_tracer(yv)
    if t is None:
        if isinstance(yv, Tracer) and not yv._trace.active:
            raise RuntimeError(
                f"{who}: the dlfeval that traced this value has returned; call {who} inside "
                "the function evaluated by dlfeval, on values computed there."
            )
        if [f for f in _frames.get() if f.grad_ok][-1].swept:
            raise swept
        raise untraced
    if not frame.grad_ok:
        raise untraced
    if frame.swept:
        raise swept
    return t, frame, shape, dtype


def _target(x: dlarray, trace: Any, k: int, nxs: int) -> VJPTracer:
    t = _level_of(x._value, trace)
    if t is None:
        where = "x" if nxs == 1 else f"argument {k + 1} of the x's"
        raise RuntimeError(
            f"dlgradient: {where} is not traced: it is not an input of the dlfeval that traced "
            "the value to differentiate, nor computed from one. Pass it to dlfeval as a "
            "dlarray argument (or as part of one, e.g. net.learnables) and differentiate "
            "with respect to that traced copy."
        )
    return t


def _finish_grad(g: Any, x: dlarray) -> dlarray:
    """The gradient for ``x`` as a dlarray with the labels and dtype of ``x`` (zeros, never
    None, where y does not depend on x)."""
    xv = primal_value(x._value)
    xd = np.result_type(xv)
    if g is None:
        return _wrap(np.zeros(np.shape(xv), xd), x._fmt)
    gd = np.result_type(primal_value(g))
    if gd != xd:
        if xd.kind != "c" and gd.kind == "c":
            g = wnp.real(g)
        g = wnp.astype(g, xd)
    if isinstance(g, np.generic):
        g = np.asarray(g)
    elif type(g) is np.ndarray and not g.flags.writeable:
        g = g.copy()
    return _wrap(g, x._fmt)


class _Shim:
    """What :func:`wengert.core.backward` reads of a trace: a tape and the number of values."""

    __slots__ = ("tape", "nvalues")

    def __init__(self, tape: list, nvalues: int) -> None:
        self.tape = tape
        self.nvalues = nvalues


def _rewrapped_tape(frame: _Frame) -> list:
    """The tape with every traced argument and output of each entry re-wrapped as a tracer of
    the live trace (same value id), so the VJP rules record their work on that trace."""
    trace = frame.trace
    done = frame._rewrapped
    tape = trace.tape
    for n in range(len(done), len(tape)):
        e = tape[n]
        prim, params, primals, ans, links, out = e
        new = list(primals)
        for i, vid in links:
            new[i] = VJPTracer(primals[i], vid, trace)
        if prim.multiple_results:
            new_ans = tuple(VJPTracer(a, out + k, trace) for k, a in enumerate(ans))
        else:
            new_ans = VJPTracer(ans, out, trace)
        done.append(TapeEntry(prim, params, new, new_ans, links, out))
    return done


def _sweep(frame: _Frame, seeds: list, targets: list, retain: bool, higher: bool) -> list:
    """One backward sweep of the frame's tape; the adjoints of ``targets`` (value ids)."""
    trace = frame.trace
    if higher:
        tape = list(_rewrapped_tape(frame))
        adj = backward(_Shim(tape, trace.nvalues), seeds, retain=True)
        return [adj[t] for t in targets]
    keep = retain or any(t not in frame.inputs for t in targets)
    adj = backward(trace, seeds, retain=keep)
    out = [adj[t] for t in targets]
    if not retain:
        frame.swept = True
        trace.tape = []
        frame._rewrapped = []
    return out


def dlgradient(
    y: Any,
    *xs: Any,
    retain_data: bool = False,
    enable_higher_derivatives: bool = False,
) -> Any:
    """The gradients ∂y/∂x of a traced real scalar ``y`` with respect to each ``x`` in ``xs``,
    by one backward sweep of the current ``dlfeval``'s trace, as MATLAB's ``dlgradient``.

    Each ``x`` is a traced dlarray or a container of them (dict, list, tuple, a network's
    learnables table...); its gradient has the same structure, with dlarrays of the labels,
    shapes and dtypes of the x's.  An x that y does not depend on gets zeros.  One x gives
    one result, several give a tuple.

    * ``retain_data=True`` keeps the trace for another ``dlgradient`` call in the same
      dlfeval (MATLAB's ``RetainData``); without it the tape is freed.
    * ``enable_higher_derivatives=True`` (``EnableHigherDerivatives``) records the backward
      sweep on the same trace, so the gradients are traced and can be differentiated again
      (second derivatives, gradient penalties, PINN residuals); it implies keeping the trace.
    """
    if not xs:
        raise TypeError(
            "dlgradient: give at least one x to differentiate with respect to: "
            "dlgradient(loss, net.learnables)"
        )
    yt, frame, shape, dtype = _check_y(y, "dlgradient")
    trace = yt._trace
    leaves: list = []
    for x in xs:
        leaves.extend(iter_dlarrays(x))
    for x in xs:
        if not isinstance(x, dlarray) and not leaves:
            raise TypeError(
                "dlgradient: the x's must be dlarrays or containers of dlarrays, not "
                f"{type(x).__name__}"
            )
    ids: dict = {}
    targets: list = []
    for k, x in enumerate(leaves):
        if id(x) not in ids:
            ids[id(x)] = len(targets)
            targets.append(_target(x, trace, k, len(leaves)).idx)
    higher = bool(enable_higher_derivatives)
    retain = bool(retain_data) or higher
    seeds = [(yt.idx, np.ones(shape, dtype))]
    cap = frame.capture
    if cap is not None:
        adj = cap.gradient(frame, seeds, targets, retain, higher)
    else:
        adj = _sweep(frame, seeds, targets, retain, higher)
    grads = {k: _finish_grad(adj[i], x) for x in leaves for k, i in [(id(x), ids[id(x)])]}
    out = tuple(map_dlarrays(x, lambda d: grads[id(d)]) for x in xs)
    return out[0] if len(xs) == 1 else out


# ---------------------------------------------------------------------------------------------
# dljacobian, dldivergence, dllaplacian
# ---------------------------------------------------------------------------------------------


def _axis_of(a: dlarray, dim: Any, who: str, name: str) -> int:
    nd = a.ndim
    if isinstance(dim, str):
        lab = dim.upper()
        hits = [i for i, c in enumerate(a._fmt) if c == lab]
        if not a._fmt:
            raise ValueError(
                f"{who}: dim={dim!r} is a label but {name} is unformatted; pass an axis number "
                "(0-based, as finddim returns) or give {name} a format"
            )
        if len(hits) != 1:
            raise ValueError(
                f"{who}: {name} (format {a._fmt!r}) has {len(hits)} axes labelled {dim!r}; "
                "name exactly one operation dimension (or pass its axis number)"
            )
        return hits[0]
    try:
        d = operator.index(dim)
    except TypeError:
        raise TypeError(
            f"{who}: dim must be an axis number (0-based) or a label such as 'C', not {dim!r}"
        ) from None
    if not -nd <= d < max(nd, 1):
        raise ValueError(f"{who}: dim={dim} is out of range for {name} with {nd} axes")
    return d % nd if nd else 0


def _check_dl(a: Any, who: str, name: str) -> dlarray:
    if not isinstance(a, dlarray):
        raise TypeError(f"{who}: {name} must be a traced dlarray, not {type(a).__name__}")
    return a


def _component_grads(u: dlarray, x: dlarray, du: int, higher: bool, who: str) -> list:
    """g_k = ∇ₓ Σ u[k] for each component k of u along axis ``du`` (u[k] summed over all its
    other axes: per observation when the observations are independent)."""
    uv = u._value
    nk = u.shape[du] if u.ndim else 1
    grads = []
    for k in range(nk):
        comp = wnp.take(uv, k, axis=du) if u.ndim else uv
        yk = wnp.sum(comp)
        g = dlgradient(_wrap(yk), x, retain_data=True, enable_higher_derivatives=higher)
        grads.append(g._value)
    return grads


def dljacobian(u: dlarray, x: dlarray, dim: Any, *, enable_higher_derivatives: bool = True) -> dlarray:
    """The Jacobian J[..., k] = ∂u_k/∂x of ``u`` with respect to ``x`` along the operation
    dimension ``dim`` (MATLAB R2024b ``dljacobian``), one backward sweep per component.

    ``dim`` is an axis number (0-based, as :func:`finddim` returns; MATLAB's ``dim`` minus 1)
    or a label such as ``"C"``: u has K components along it.  Component k of u is summed over
    u's other axes (its observations) and differentiated with respect to x, which gives
    ∂u_k/∂x for every observation when the observations are independent (no batch
    normalisation across them).  The result has x's shape with a trailing axis of length K
    (dropped when K = 1, as MATLAB drops trailing singletons), and x's labels (plus "U").
    ``enable_higher_derivatives`` (default True, as MATLAB) keeps the result traced so a loss
    built from it can be differentiated again.
    """
    who = "dljacobian"
    u, x = _check_dl(u, who, "u"), _check_dl(x, who, "x")
    du = _axis_of(u, dim, who, "u")
    _axis_of(x, dim, who, "x")
    grads = _component_grads(u, x, du, enable_higher_derivatives, who)
    if len(grads) == 1:
        return _wrap(grads[0], x._fmt)
    return _wrap(wnp.stack(grads, axis=-1), x._fmt + "U" if x._fmt else "")


def dldivergence(u: dlarray, x: dlarray, dim: Any, *, enable_higher_derivatives: bool = True) -> dlarray:
    """The divergence ∇·u = Σᵢ ∂uᵢ/∂xᵢ along the operation dimension ``dim`` (MATLAB R2024b
    ``dldivergence``): u and x must have the same number of components along ``dim``.  The
    result has x's shape with that axis of length 1 (one value per observation), x's labels.
    ``dim`` and the default ``enable_higher_derivatives=True`` as for :func:`dljacobian`.
    """
    who = "dldivergence"
    u, x = _check_dl(u, who, "u"), _check_dl(x, who, "x")
    du = _axis_of(u, dim, who, "u")
    dx = _axis_of(x, dim, who, "x")
    nk = u.shape[du] if u.ndim else 1
    if x.ndim == 0 or x.shape[dx] != nk:
        raise ValueError(
            f"{who}: u has {nk} components along dim {dim!r} but x has "
            f"{x.shape[dx] if x.ndim else 1}; the divergence needs as many as x"
        )
    grads = _component_grads(u, x, du, enable_higher_derivatives, who)
    div = None
    for k, g in enumerate(grads):
        term = wnp.take(g, [k], axis=dx)
        div = term if div is None else div + term
    return _wrap(div, x._fmt)


def dllaplacian(u: dlarray, x: dlarray, dim: Any, *, enable_higher_derivatives: bool = True) -> dlarray:
    """The Laplacian Δu = Σᵢ ∂²u/∂xᵢ² over the components i of x along ``dim`` (MATLAB R2024b
    ``dllaplacian``), for each component of u along ``dim``: 1 + (number of x components)
    backward sweeps per u component.  The result has x's shape with that axis of length 1,
    with a trailing axis of length K when u has K > 1 components.  ``dim`` and the default
    ``enable_higher_derivatives=True`` as for :func:`dljacobian`.
    """
    who = "dllaplacian"
    u, x = _check_dl(u, who, "u"), _check_dl(x, who, "x")
    du = _axis_of(u, dim, who, "u")
    dx = _axis_of(x, dim, who, "x")
    m = x.shape[dx] if x.ndim else 1
    firsts = _component_grads(u, x, du, True, who)
    laps = []
    for g in firsts:
        lap = None
        for i in range(m):
            gi = wnp.sum(wnp.take(g, i, axis=dx) if x.ndim else g)
            h = dlgradient(
                _wrap(gi), x, retain_data=True, enable_higher_derivatives=enable_higher_derivatives
            )._value
            term = wnp.take(h, [i], axis=dx) if x.ndim else h
            lap = term if lap is None else lap + term
        laps.append(lap)
    if len(laps) == 1:
        return _wrap(laps[0], x._fmt)
    return _wrap(wnp.stack(laps, axis=-1), x._fmt + "U" if x._fmt else "")
