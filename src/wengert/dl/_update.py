"""MATLAB's update functions for custom training loops (adamupdate, sgdmupdate, rmspropupdate,
lbfgsupdate with lbfgsState, dlupdate) on networks, tables, dicts, lists or arrays, reusing
wengert.nn.optim's update rules, two-loop recursion and line searches.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from wengert.core import Tracer, primal_value
from wengert.dl._dlarray import _wrap, dlarray
from wengert.dl._network import Table, dlnetwork
from wengert.nn import optim as _optim

__all__ = [
    "adamupdate",
    "sgdmupdate",
    "rmspropupdate",
    "dlupdate",
    "lbfgsupdate",
    "lbfgsState",
]


# ---------------------------------------------------------------------------------------------
# Walking the parameter containers
# ---------------------------------------------------------------------------------------------


def _is_leaf(x: Any) -> bool:
    return isinstance(x, (dlarray, np.ndarray, Tracer, np.generic, int, float))


def _walk(obj: Any, who: str) -> tuple[list, Callable[[list], Any], Callable[[list], Any]]:
    """``(leaves, rebuild, rebuild_state)``: the arrays of ``obj`` in a fixed order, a function
    putting new leaves back into the same structure, and one building the structure a solver
    state takes (a Table for a dlnetwork, else the same as ``rebuild``)."""
    if isinstance(obj, dlnetwork):
        if not obj.initialized:
            raise ValueError(f"{who}: the network is not initialised; net = initialize(net)")
        leaves, rb, _ = _walk(obj.learnables, who)
        return leaves, (lambda vs: obj._copy(learnables=rb(vs))), rb
    if isinstance(obj, Table):
        if any(v is None for v in obj.value):
            raise ValueError(f"{who}: the table has empty values (an uninitialised network?)")
        return list(obj.value), obj.with_values, obj.with_values
    if _is_leaf(obj):
        return [obj], (lambda vs: vs[0]), (lambda vs: vs[0])
    if isinstance(obj, dict):
        keys = list(obj)
        parts = [_walk(obj[k], who) for k in keys]
        leaves = [leaf for p in parts for leaf in p[0]]

        def rebuild(vs, which=1):
            out, i = {}, 0
            for k, p in zip(keys, parts):
                n = len(p[0])
                out[k] = p[which](vs[i : i + n])
                i += n
            return type(obj)(out) if type(obj) is not dict else out

        return leaves, rebuild, (lambda vs: rebuild(vs, 2))
    if isinstance(obj, (list, tuple)):
        parts = [_walk(o, who) for o in obj]
        leaves = [leaf for p in parts for leaf in p[0]]

        def rebuild_seq(vs, which=1):
            out, i = [], 0
            for p in parts:
                n = len(p[0])
                out.append(p[which](vs[i : i + n]))
                i += n
            if isinstance(obj, list):
                return out
            return type(obj)(*out) if hasattr(obj, "_fields") else tuple(out)

        return leaves, rebuild_seq, (lambda vs: rebuild_seq(vs, 2))
    raise TypeError(
        f"{who}: cannot update a {type(obj).__name__}; give a dlnetwork, a learnables Table, a "
        "dict, a list/tuple or an array"
    )


def _fresh(state: Any) -> bool:
    """MATLAB's ``[]`` for a solver state: None, or an empty list/tuple/array."""
    if state is None:
        return True
    if isinstance(state, (list, tuple)) and len(state) == 0:
        return True
    return isinstance(state, np.ndarray) and state.size == 0


def _raw(v: Any) -> Any:
    """The data of a leaf (a NumPy array or a tracer)."""
    if isinstance(v, dlarray):
        return v._value
    if isinstance(v, Tracer):
        return v
    return np.asarray(v)


def _shape_of(v: Any) -> tuple:
    return tuple(np.shape(primal_value(_raw(v))))


def _like(template: Any, raw: Any) -> Any:
    """``raw`` wrapped as ``template`` is: a dlarray with its format, or a plain array."""
    if isinstance(template, dlarray):
        return raw if isinstance(raw, dlarray) else _wrap(raw, template._fmt)
    return raw


def _matching(obj: Any, params: list, ptable: Any, what: str, who: str) -> list:
    """The leaves of ``obj`` (gradient, state, ...) checked against the parameters'."""
    if isinstance(obj, dlnetwork):
        obj = obj.learnables
    if isinstance(obj, Table) and isinstance(ptable, Table):
        if obj.layer != ptable.layer or obj.parameter != ptable.parameter:
            raise ValueError(
                f"{who}: the {what} table's rows (layer, parameter) must be the learnables' rows"
            )
    leaves, _, _ = _walk(obj, who)
    if len(leaves) != len(params):
        raise ValueError(
            f"{who}: the {what} has {len(leaves)} arrays but the parameters have {len(params)}; "
            "give it the structure of the parameters (e.g. dlgradient(loss, net.learnables))"
        )
    for k, (p, g) in enumerate(zip(params, leaves)):
        if _shape_of(p) != _shape_of(g):
            raise ValueError(
                f"{who}: {what} entry {k} has size {_shape_of(g)} but its parameter has size "
                f"{_shape_of(p)}"
            )
    return leaves


def _table_of(obj: Any) -> Any:
    return obj.learnables if isinstance(obj, dlnetwork) else obj


def _factors(obj: Any, n: int) -> list[float]:
    """Per-parameter learn rate factors (a dlnetwork's layers'), else ones."""
    if isinstance(obj, dlnetwork):
        t = obj.learnables
        return [obj.learn_rate_factor(a, b) for a, b in zip(t.layer, t.parameter)]
    return [1.0] * n


def _cast(g: Any, p: Any) -> Any:
    """A plain gradient in the parameter's dtype (MATLAB keeps single learnables single)."""
    if isinstance(g, Tracer) or isinstance(p, Tracer):
        return g
    g = np.asarray(g)
    dt = np.asarray(p).dtype
    return g.astype(dt) if g.dtype != dt and dt.kind == "f" else g


def _zeros(p: Any) -> np.ndarray:
    a = primal_value(_raw(p))
    dt = np.result_type(a)
    return np.zeros(np.shape(a), dt if dt.kind == "f" else np.float64)


def _positive(v: Any, name: str, who: str) -> float:
    v = float(v)
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{who}: {name} must be a positive number, got {v}")
    return v


def _decay(v: Any, name: str, who: str) -> float:
    v = float(v)
    if not 0 <= v < 1:
        raise ValueError(f"{who}: {name} must lie in [0, 1), got {v}")
    return v


def _groups(factors: list[float]) -> dict[float, list[int]]:
    out: dict[float, list[int]] = {}
    for i, f in enumerate(factors):
        out.setdefault(f, []).append(i)
    return out


# ---------------------------------------------------------------------------------------------
# First-order updates
# ---------------------------------------------------------------------------------------------


def adamupdate(
    net_or_params: Any,
    grad: Any,
    avg_g: Any,
    avg_sq_g: Any,
    iteration: int,
    learn_rate: float = 0.001,
    grad_decay: float = 0.9,
    sq_grad_decay: float = 0.999,
    epsilon: float = 1e-8,
) -> tuple[Any, Any, Any]:
    """MATLAB's ``[net, averageGrad, averageSqGrad] = adamupdate(net, grad, averageGrad,
    averageSqGrad, iteration, learnRate, gradDecay, sqGradDecay, epsilon)``.

    With t = ``iteration`` (counted from 1), α = ``learn_rate``, β₁ = ``grad_decay``, β₂ =
    ``sq_grad_decay``, for every learnable w and its gradient g:

        m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²
        w ← w − α·(m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)

    ``avg_g``/``avg_sq_g`` None or ``[]`` (MATLAB's ``[]``) start at zero.  ``net_or_params`` is a
    dlnetwork (``grad`` a learnables Table; the state comes back as Tables, and each layer's
    learn rate factor multiplies α), a Table, a dict, a list/tuple or one array; the result has
    its structure.
    """
    who = "adamupdate"
    it = int(iteration)
    if it != iteration or it < 1:
        raise ValueError(
            f"{who}: iteration must be a positive integer (counted from 1), got {iteration}"
        )
    lr = _positive(learn_rate, "learn_rate", who)
    b1 = _decay(grad_decay, "grad_decay", who)
    b2 = _decay(sq_grad_decay, "sq_grad_decay", who)
    eps = _positive(epsilon, "epsilon", who)
    pl, rebuild, rebuild_state = _walk(net_or_params, who)
    ptable = _table_of(net_or_params)
    gl = _matching(grad, pl, ptable, "gradient", who)
    ml = [_zeros(p) for p in pl] if _fresh(avg_g) else _matching(avg_g, pl, ptable, "avg_g", who)
    vl = (
        [_zeros(p) for p in pl]
        if _fresh(avg_sq_g)
        else _matching(avg_sq_g, pl, ptable, "avg_sq_g", who)
    )
    new_p, new_m, new_v = [None] * len(pl), [None] * len(pl), [None] * len(pl)
    for factor, idx in _groups(_factors(net_or_params, len(pl))).items():
        ps = [_raw(pl[i]) for i in idx]
        opt = _optim.adam(lr * factor, b1, b2, eps)
        state = {
            "step": np.asarray(it - 1, np.int64),
            "m": [_cast(_raw(ml[i]), p) for i, p in zip(idx, ps)],
            "v": [_cast(_raw(vl[i]), p) for i, p in zip(idx, ps)],
        }
        p2, st = opt.update(ps, [_cast(_raw(gl[i]), p) for i, p in zip(idx, ps)], state)
        for j, i in enumerate(idx):
            new_p[i] = _like(pl[i], p2[j])
            new_m[i] = _like(pl[i], st["m"][j])
            new_v[i] = _like(pl[i], st["v"][j])
    return rebuild(new_p), rebuild_state(new_m), rebuild_state(new_v)


def rmspropupdate(
    net_or_params: Any,
    grad: Any,
    avg_sq_g: Any,
    learn_rate: float = 0.001,
    sq_grad_decay: float = 0.9,
    epsilon: float = 1e-8,
) -> tuple[Any, Any]:
    """MATLAB's ``[net, averageSqGrad] = rmspropupdate(net, grad, averageSqGrad, learnRate,
    sqGradDecay, epsilon)``:

        v ← β·v + (1 − β)·g²,   w ← w − α·g / (√v + ε)

    with α = ``learn_rate``, β = ``sq_grad_decay``; ``avg_sq_g`` None starts at zero.
    Containers as :func:`adamupdate`.
    """
    who = "rmspropupdate"
    lr = _positive(learn_rate, "learn_rate", who)
    rho = _decay(sq_grad_decay, "sq_grad_decay", who)
    eps = _positive(epsilon, "epsilon", who)
    pl, rebuild, rebuild_state = _walk(net_or_params, who)
    ptable = _table_of(net_or_params)
    gl = _matching(grad, pl, ptable, "gradient", who)
    vl = (
        [_zeros(p) for p in pl]
        if _fresh(avg_sq_g)
        else _matching(avg_sq_g, pl, ptable, "avg_sq_g", who)
    )
    new_p, new_v = [None] * len(pl), [None] * len(pl)
    for factor, idx in _groups(_factors(net_or_params, len(pl))).items():
        ps = [_raw(pl[i]) for i in idx]
        opt = _optim.rmsprop(lr * factor, rho, eps)
        state = {
            "step": np.zeros((), np.int64),
            "v": [_cast(_raw(vl[i]), p) for i, p in zip(idx, ps)],
        }
        p2, st = opt.update(ps, [_cast(_raw(gl[i]), p) for i, p in zip(idx, ps)], state)
        for j, i in enumerate(idx):
            new_p[i] = _like(pl[i], p2[j])
            new_v[i] = _like(pl[i], st["v"][j])
    return rebuild(new_p), rebuild_state(new_v)


def sgdmupdate(
    net_or_params: Any,
    grad: Any,
    vel: Any,
    learn_rate: float = 0.01,
    momentum: float = 0.9,
) -> tuple[Any, Any]:
    """MATLAB's ``[net, vel] = sgdmupdate(net, grad, vel, learnRate, momentum)``:

        v ← γ·v − α·g,   w ← w + v

    with α = ``learn_rate``, γ = ``momentum`` (MATLAB's velocity carries the learning rate,
    unlike wengert.nn.optim.momentum's, so the rule is written out here); ``vel`` None starts at
    zero.  Containers as :func:`adamupdate`.
    """
    who = "sgdmupdate"
    lr = _positive(learn_rate, "learn_rate", who)
    mu = float(momentum)
    if not 0 <= mu <= 1:
        raise ValueError(f"{who}: momentum must lie in [0, 1], got {momentum}")
    pl, rebuild, rebuild_state = _walk(net_or_params, who)
    ptable = _table_of(net_or_params)
    gl = _matching(grad, pl, ptable, "gradient", who)
    vl = [_zeros(p) for p in pl] if _fresh(vel) else _matching(vel, pl, ptable, "vel", who)
    factors = _factors(net_or_params, len(pl))
    new_p, new_v = [], []
    for p, g, v, f in zip(pl, gl, vl, factors):
        praw = _raw(p)
        v2 = mu * _cast(_raw(v), praw) - (lr * f) * _cast(_raw(g), praw)
        new_p.append(_like(p, praw + v2))
        new_v.append(_like(p, v2))
    return rebuild(new_p), rebuild_state(new_v)


def dlupdate(fun: Callable[..., Any], X: Any, *A: Any) -> Any:
    """MATLAB's ``X = dlupdate(fun, X, A1, ..., An)``: ``fun`` applied to every learnable of
    ``X`` (a dlnetwork's learnables, a Table's values, a dict's/list's arrays, or one array)
    together with the matching entries of ``A1...An`` (same structure), e.g. L2
    regularisation ``grads = dlupdate(lambda g, w: g + l2 * w, grads, net.learnables)``.

    When ``fun`` returns a tuple, the result is a tuple of structures, as MATLAB's
    ``[X, Y1, ..., Ym] = dlupdate(...)`` (the first like ``X``, the others like its state:
    Tables for a network).  Results for dlarray entries stay dlarrays.
    """
    who = "dlupdate"
    if not callable(fun):
        raise TypeError(f"{who}: the first argument must be a function, got {type(fun).__name__}")
    xl, rebuild, rebuild_state = _walk(X, who)
    table = _table_of(X)
    al = [_matching(a, xl, table, f"argument {k + 3}", who) for k, a in enumerate(A)]
    outs = [fun(*args) for args in zip(xl, *al)]
    if outs and all(isinstance(o, tuple) for o in outs):
        m = len(outs[0])
        if any(len(o) != m for o in outs):
            raise ValueError(
                f"{who}: fun returned different numbers of outputs for different entries"
            )
        first = rebuild([_like(x, o[0]) for x, o in zip(xl, outs)])
        rest = [rebuild_state([_like(x, o[j]) for x, o in zip(xl, outs)]) for j in range(1, m)]
        return (first, *rest)
    return rebuild([_like(x, o) for x, o in zip(xl, outs)])


# ---------------------------------------------------------------------------------------------
# L-BFGS
# ---------------------------------------------------------------------------------------------


class lbfgsState:
    """MATLAB's ``lbfgsState(HistorySize=10, InitialInverseHessianFactor=1)``: the solver state
    of :func:`lbfgsupdate`.

    Properties: ``history_size``, ``initial_inverse_hessian_factor``,
    ``inverse_hessian_factor`` (λ = sᵀy / yᵀy of the latest step), ``step_history`` and
    ``gradients_difference_history`` (the stored s = Δw and y = Δg, oldest first, as flat
    vectors over all learnables), ``loss``, ``gradients`` and
    ``additional_loss_function_outputs`` (from the last evaluation, at the current
    parameters), ``line_search_status`` ("completed" or "failed"), ``line_search_method``,
    ``max_num_line_search_iterations``, ``iteration``; ``gradients_norm`` (MATLAB's
    ``GradientsNorm``: ‖g‖₂ over all learnables of ``gradients``, the gradients at the current
    parameters) and ``step_norm`` (``StepNorm``: ‖s‖₂ = ‖Δw‖₂ over all learnables of the
    last step, 0 when the line search failed), both Python floats (MATLAB has dlarray
    scalars) and None before the first update, e.g. for a stopping test ``if
    state.gradients_norm < 1e-5 or state.step_norm < 1e-5: break``.  ``lbfgsupdate`` returns
    a new state; the one passed in is not changed.
    """

    def __init__(self, history_size: int = 10, initial_inverse_hessian_factor: float = 1) -> None:
        h = int(history_size)
        if h != history_size or h < 1:
            raise ValueError(
                f"lbfgsState: history_size must be a positive integer, got {history_size}"
            )
        self.history_size = h
        self.initial_inverse_hessian_factor = _positive(
            initial_inverse_hessian_factor, "initial_inverse_hessian_factor", "lbfgsState"
        )
        self.inverse_hessian_factor = self.initial_inverse_hessian_factor
        self.step_history: list[np.ndarray] = []
        self.gradients_difference_history: list[np.ndarray] = []
        self.loss: Any = None
        self.gradients: Any = None
        self.additional_loss_function_outputs: tuple = ()
        self.line_search_status = ""
        self.line_search_method = ""
        self.max_num_line_search_iterations: int | None = None
        self.iteration = 0
        self.gradients_norm: float | None = None
        self.step_norm: float | None = None
        self._x: np.ndarray | None = None  # the flat parameters the loss/gradients belong to
        self._f: float | None = None
        self._g: np.ndarray | None = None

    def __repr__(self) -> str:
        loss = "[]" if self._f is None else f"{self._f:.6g}"
        return (
            f"lbfgsState(history_size={self.history_size}, initial_inverse_hessian_factor="
            f"{self.initial_inverse_hessian_factor}, inverse_hessian_factor="
            f"{self.inverse_hessian_factor:.6g}, stored_steps={len(self.step_history)}, "
            f"loss={loss}, gradients_norm={_opt_fmt(self.gradients_norm)}, "
            f"step_norm={_opt_fmt(self.step_norm)}, line_search_status={self.line_search_status!r}, "
            f"iteration={self.iteration})"
        )


def _opt_fmt(v: float | None) -> str:
    return "[]" if v is None else f"{v:.6g}"


def _norm2(v: np.ndarray) -> float:
    """‖v‖₂ in float64 (no overflow/underflow for float32 parameters)."""
    return float(np.linalg.norm(np.asarray(v, np.float64)))


def _scalar_loss(loss: Any, who: str) -> float:
    a = np.asarray(primal_value(_raw(loss)))
    if a.size != 1:
        raise ValueError(
            f"{who}: the loss function must return a scalar loss first, got size {a.shape}"
        )
    if np.iscomplexobj(a):
        raise ValueError(f"{who}: the loss must be real")
    return float(a.reshape(()))


def _weak_wolfe(fg, x, f0, g0, d, a, c1, c2, maxit):
    """A step α with f(x + αd) ≤ f + c₁αgᵀd and ∇f(x + αd)ᵀd ≥ c₂gᵀd (the weak Wolfe
    conditions) by bracketing: halve towards the last good step while sufficient decrease
    fails, double while the slope is still too steep.  Returns ``(α, f, g)``; α = 0 (with the
    start point) if no step satisfied sufficient decrease within ``maxit`` evaluations, else
    the last step that did."""
    gd0 = float(g0 @ d)
    lo, hi = 0.0, math.inf
    best = (0.0, f0, g0)
    for _ in range(maxit):
        f1, g1 = fg(x + a * d)
        if not np.isfinite(f1) or f1 > f0 + c1 * a * gd0:
            hi = a
        else:
            best = (a, f1, g1)
            if float(g1 @ d) >= c2 * gd0:
                return best
            lo = a
        a = 0.5 * (lo + hi) if hi < math.inf else 2.0 * a
    return best


def lbfgsupdate(
    net_or_params: Any,
    loss_fcn: Callable[[Any], Any],
    solver_state: lbfgsState | None = None,
    *,
    line_search_method: str = "weak-wolfe",
    max_num_line_search_iterations: int = 20,
    num_loss_function_outputs: int | None = None,
) -> tuple[Any, lbfgsState]:
    """MATLAB's ``[net, solverState] = lbfgsupdate(net, lossFcn, solverState)``: one L-BFGS
    iteration.

    ``loss_fcn(net_or_params)`` returns ``(loss, gradients, *extra)`` with the gradients in the
    structure of the parameters, e.g. ``lambda net: dlfeval(model_loss, net, X, T)``.  The
    direction is d = −H·g, H the limited-memory inverse Hessian from the last
    ``history_size`` pairs (s, y) by the two-loop recursion with H₀ = λI, λ = sᵀy / yᵀy of
    the latest pair (``initial_inverse_hessian_factor`` while there is none); then a line
    search from step 1 along d: ``line_search_method`` "weak-wolfe" (default),
    "strong-wolfe" (c₁ = 1e-4, c₂ = 0.9) or "backtracking" (sufficient decrease, halving),
    at most ``max_num_line_search_iterations`` evaluations.  A pair is stored only when
    sᵀy > 10⁻¹⁰·yᵀy, so H stays positive definite.  When the search fails the parameters are
    kept and ``line_search_status`` is "failed".  ``solver_state`` None starts a fresh
    ``lbfgsState()``.  The new state's ``gradients_norm`` and ``step_norm`` (‖g‖₂ at the new
    parameters, ‖Δw‖₂ of this step) serve as MATLAB's stopping tests.
    """
    who = "lbfgsupdate"
    methods = ("weak-wolfe", "strong-wolfe", "backtracking")
    if line_search_method not in methods:
        raise ValueError(
            f"{who}: line_search_method must be one of {methods}, got {line_search_method!r}"
        )
    maxit = int(max_num_line_search_iterations)
    if maxit < 1:
        raise ValueError(f"{who}: max_num_line_search_iterations must be positive")
    if num_loss_function_outputs is not None and int(num_loss_function_outputs) < 2:
        raise ValueError(f"{who}: the loss function returns at least (loss, gradients)")
    if not callable(loss_fcn):
        raise TypeError(f"{who}: loss_fcn must be a function of the parameters")
    st = lbfgsState() if _fresh(solver_state) else solver_state
    if not isinstance(st, lbfgsState):
        raise TypeError(
            f"{who}: solver_state must be an lbfgsState (or None), got {type(st).__name__}"
        )
    pl, rebuild, _ = _walk(net_or_params, who)
    ptable = _table_of(net_or_params)
    raws = [np.asarray(primal_value(_raw(p))) for p in pl]
    shapes = [a.shape for a in raws]
    x = _optim._flat(raws)
    dt = x.dtype

    def params_at(v: np.ndarray) -> Any:
        out, i = [], 0
        for p, s in zip(pl, shapes):
            n = math.prod(s)
            out.append(_like(p, v[i : i + n].reshape(s).astype(dt, copy=True)))
            i += n
        return rebuild(out)

    evaluations: list[tuple] = []

    def fg(v: np.ndarray) -> tuple[float, np.ndarray]:
        out = loss_fcn(params_at(np.asarray(v, dt)))
        if not isinstance(out, (tuple, list)) or len(out) < 2:
            raise TypeError(f"{who}: the loss function must return (loss, gradients, ...)")
        if num_loss_function_outputs is not None and len(out) != int(num_loss_function_outputs):
            raise ValueError(
                f"{who}: num_loss_function_outputs={num_loss_function_outputs} but the loss "
                f"function returned {len(out)} outputs"
            )
        loss, grads, *extra = out
        gl = _matching(grads, pl, ptable, "gradient", who)
        g = _optim._flat([np.asarray(primal_value(_raw(a))) for a in gl]).astype(dt, copy=False)
        f = _scalar_loss(loss, who)
        evaluations.append((g, loss, grads, tuple(extra)))
        return f, g

    new = copy.copy(st)
    new.step_history = list(st.step_history)
    new.gradients_difference_history = list(st.gradients_difference_history)
    if st._x is not None and st._x.shape == x.shape and np.array_equal(st._x, x):
        f, g = st._f, st._g
        current = (g, st.loss, st.gradients, st.additional_loss_function_outputs)
    else:
        f, g = fg(x)
        current = evaluations[-1]
    count = len(new.step_history)
    if count:
        d = -_optim._two_loop(
            g, np.stack(new.step_history), np.stack(new.gradients_difference_history), count
        )
    else:
        d = -new.initial_inverse_hessian_factor * g
    if not float(g @ d) < 0:  # lost curvature: restart from scaled steepest descent
        new.step_history, new.gradients_difference_history = [], []
        d = -new.initial_inverse_hessian_factor * g
    c1, c2 = 1e-4, 0.9
    if float(g @ d) == 0.0:
        a, f2, g2 = 0.0, f, g
    elif line_search_method == "weak-wolfe":
        a, f2, g2 = _weak_wolfe(fg, x, f, g, d, 1.0, c1, c2, maxit)
    elif line_search_method == "strong-wolfe":
        a, f2, g2 = _optim._strong_wolfe(fg, x, f, g, d, 1.0, c1, c2, maxit)
    else:
        a, f2, g2 = _optim._backtracking(fg, x, f, g, d, 1.0, c1, maxit)
    new.line_search_method = line_search_method
    new.max_num_line_search_iterations = maxit
    new.iteration = st.iteration + 1
    if a == 0.0:
        new.line_search_status = "failed"
        x2, f2, g2, found = x, f, g, current
    else:
        new.line_search_status = "completed"
        x2 = (x + a * d).astype(dt)
        found = next((e for e in reversed(evaluations) if e[0] is g2), None)
        if found is None:  # pragma: no cover - the searches return an evaluated point
            f2, g2 = fg(x2)
            found = evaluations[-1]
        s = x2 - x
        y = g2 - g
        sy = float(s @ y)
        if sy > 1e-10 * float(y @ y) and sy > 0:
            new.step_history.append(s)
            new.gradients_difference_history.append(y)
            if len(new.step_history) > new.history_size:
                del new.step_history[0], new.gradients_difference_history[0]
            new.inverse_hessian_factor = sy / float(y @ y)
    new._x, new._f, new._g = x2, float(f2), g2
    new.gradients_norm = _norm2(g2)
    new.step_norm = _norm2(np.asarray(x2, np.float64) - x) if a != 0.0 else 0.0
    new.loss, new.gradients, new.additional_loss_function_outputs = found[1], found[2], found[3]
    return params_at(x2), new
