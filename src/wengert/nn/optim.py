"""Optimizers for custom training loops, in functional style, with learning-rate schedules,
gradient clipping, L2 regularisation and decoupled weight decay.

``opt = adam(lr=1e-3)``; ``state = opt.init(params)``; ``params, state = opt.update(params,
grads, state)``.  Nothing is mutated: the optimizer state is a pytree of arrays (dicts of
arrays shaped like the parameters, plus a step counter) that saves and loads exactly.
L-BFGS needs the loss itself and has its own ``step(loss_fn, params, state)``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wengert.core import Tracer, primal_value
from wengert.tree import tree_flatten

__all__ = [
    "Schedule",
    "constant",
    "piecewise",
    "step_decay",
    "exponential_decay",
    "time_based_decay",
    "cosine_decay",
    "warmup",
    "join",
    "clip_by_value",
    "clip_by_norm",
    "clip_by_global_norm",
    "global_norm",
    "Optimizer",
    "sgd",
    "momentum",
    "nesterov",
    "adam",
    "adamw",
    "rmsprop",
    "LBFGS",
    "lbfgs",
]


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules
# ---------------------------------------------------------------------------------------------


class Schedule:
    """A learning rate as a function of the update count t = 0, 1, 2, ... (``sched(t)``).

    Schedules compose: :func:`warmup` and :func:`join` take schedules, and a schedule times a
    number (or another schedule) is a schedule.
    """

    def __init__(self, fn: Callable[[int], float], desc: str) -> None:
        self._fn = fn
        self.desc = desc

    def __call__(self, step: int) -> float:
        return float(self._fn(int(step)))

    def __mul__(self, other: Any) -> Schedule:
        o = _as_schedule(other)
        return Schedule(lambda t: self(t) * o(t), f"({self.desc}) * ({o.desc})")

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Schedule({self.desc})"


def _as_schedule(lr: float | Callable[[int], float]) -> Schedule:
    if isinstance(lr, Schedule):
        return lr
    if callable(lr):
        return Schedule(lr, getattr(lr, "__name__", "callable"))
    if isinstance(lr, (int, float, np.floating, np.integer)) and not isinstance(lr, bool):
        return constant(float(lr))
    raise TypeError(
        f"a learning rate must be a number, a Schedule or a function of the step, not {lr!r}"
    )


def constant(lr: float) -> Schedule:
    """lr(t) = lr."""
    return Schedule(lambda t: lr, repr(lr))


def piecewise(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """lr(t) = values[i] for boundaries[i-1] <= t < boundaries[i] (len(values) = len(boundaries)+1)."""
    b = [int(x) for x in boundaries]
    v = [float(x) for x in values]
    if len(v) != len(b) + 1:
        raise ValueError(
            f"piecewise: give one more value than boundaries, got {len(b)} boundaries and "
            f"{len(v)} values"
        )
    if any(b2 <= b1 for b1, b2 in zip(b, b[1:])):
        raise ValueError(f"piecewise: boundaries must increase, got {b}")
    return Schedule(lambda t: v[int(np.searchsorted(b, t, side="right"))], f"piecewise {b} {v}")


def step_decay(lr: float, factor: float, period: int) -> Schedule:
    """lr(t) = lr · factor^⌊t / period⌋ (MATLAB's "piecewise" schedule: drop every period)."""
    if period <= 0:
        raise ValueError(f"step_decay: period must be positive, got {period}")
    return Schedule(lambda t: lr * factor ** (t // period), f"{lr}·{factor}^⌊t/{period}⌋")


def exponential_decay(
    lr: float, rate: float, decay_steps: int = 1, staircase: bool = False
) -> Schedule:
    """lr(t) = lr · rate^(t / decay_steps), or rate^⌊t / decay_steps⌋ with ``staircase``."""
    if decay_steps <= 0:
        raise ValueError(f"exponential_decay: decay_steps must be positive, got {decay_steps}")
    if staircase:
        return Schedule(lambda t: lr * rate ** (t // decay_steps), f"{lr}·{rate}^⌊t/{decay_steps}⌋")
    return Schedule(lambda t: lr * rate ** (t / decay_steps), f"{lr}·{rate}^(t/{decay_steps})")


def time_based_decay(lr: float, decay: float) -> Schedule:
    """lr(t) = lr / (1 + decay · t)."""
    return Schedule(lambda t: lr / (1.0 + decay * t), f"{lr}/(1+{decay}·t)")


def cosine_decay(lr: float, total_steps: int, final_lr: float = 0.0) -> Schedule:
    """lr(t) = final + (lr − final) · (1 + cos(π · min(t, T)/T)) / 2, T = ``total_steps``."""
    if total_steps <= 0:
        raise ValueError(f"cosine_decay: total_steps must be positive, got {total_steps}")

    def f(t):
        c = min(t, total_steps) / total_steps
        return final_lr + (lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * c))

    return Schedule(f, f"cosine {lr}->{final_lr} over {total_steps}")


def warmup(
    schedule: float | Callable[[int], float], steps: int, start_factor: float = 0.0
) -> Schedule:
    """Linear warm-up for ``steps`` updates, then ``schedule`` (shifted to start at 0):
    lr(t) = base(0) · (s + (1 − s) · (t+1)/steps) for t < steps, else base(t − steps)."""
    base = _as_schedule(schedule)
    if steps < 0:
        raise ValueError(f"warmup: steps must be >= 0, got {steps}")

    def f(t):
        if t < steps:
            return base(0) * (start_factor + (1.0 - start_factor) * (t + 1) / steps)
        return base(t - steps)

    return Schedule(f, f"warmup {steps} then {base.desc}")


def join(
    schedules: Sequence[float | Callable[[int], float]], boundaries: Sequence[int]
) -> Schedule:
    """Run ``schedules[i]`` from ``boundaries[i-1]`` to ``boundaries[i]``, each restarted at 0."""
    scheds = [_as_schedule(s) for s in schedules]
    b = [int(x) for x in boundaries]
    if len(scheds) != len(b) + 1:
        raise ValueError("join: give one more schedule than boundaries")
    starts = [0] + b

    def f(t):
        i = int(np.searchsorted(b, t, side="right"))
        return scheds[i](t - starts[i])

    return Schedule(f, "join")


# ---------------------------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------------------------


def _sqrt(x):
    return x**0.5


def clip_by_value(grads: Any, limit: float) -> Any:
    """Clamp every gradient entry to [−limit, limit]."""
    leaves, tdef = tree_flatten(grads)
    return tdef.unflatten([_clip_value(g, limit) for g in leaves])


def _clip_value(g, limit):
    if isinstance(g, Tracer):
        from wengert import numpy as wnp

        return wnp.clip(g, -limit, limit)
    return np.clip(g, -limit, limit)


def _sqnorm(g):
    if isinstance(g, Tracer):
        from wengert import numpy as wnp

        return wnp.sum(g * g)
    g = np.asarray(g)
    v = g.reshape(-1)
    return float(np.dot(v, v)) if v.dtype.kind == "f" else float(np.sum(np.abs(v) ** 2))


def clip_by_norm(grads: Any, max_norm: float) -> Any:
    """Per parameter: g ← g · min(1, max_norm / ‖g‖₂) (each leaf on its own)."""
    leaves, tdef = tree_flatten(grads)
    out = []
    for g in leaves:
        n = _sqrt(_sqnorm(g))
        out.append(g * _scale(n, max_norm))
    return tdef.unflatten(out)


def global_norm(grads: Any) -> Any:
    """‖g‖₂ over all leaves together: sqrt(Σ_leaves Σ g²)."""
    return _sqrt(sum(_sqnorm(g) for g in tree_flatten(grads)[0]))


def clip_by_global_norm(grads: Any, max_norm: float) -> Any:
    """All leaves scaled by the same factor min(1, max_norm / ‖g‖₂), ‖g‖ the global norm."""
    leaves, tdef = tree_flatten(grads)
    s = _scale(global_norm(grads), max_norm)
    return tdef.unflatten([g * s for g in leaves])


def _scale(norm, max_norm):
    n = primal_value(norm)
    if isinstance(norm, Tracer):
        from wengert import numpy as wnp

        return wnp.minimum(1.0, max_norm / wnp.maximum(norm, 1e-30))
    return 1.0 if n <= max_norm else max_norm / n


# ---------------------------------------------------------------------------------------------
# First-order optimizers
# ---------------------------------------------------------------------------------------------


def _network_class():
    from wengert.nn.network import Network  # lazily: the network module imports the layers

    return Network


def _unwrap(params, grads):
    """Optimizers take a Network (update its learnables) or a plain pytree of parameters."""
    net = None
    try:
        Network = _network_class()
    except ImportError:  # pragma: no cover - layers not available
        Network = ()
    if isinstance(params, Network):
        net, params = params, params.params
        if isinstance(grads, Network):
            grads = grads.params
    return net, params, grads


def _check_tree(params_leaves, other_leaves, ptree, otree, what: str) -> None:
    if len(params_leaves) != len(other_leaves) or ptree != otree:
        raise ValueError(
            f"optimizer: the {what} must have the structure of the parameters, {ptree}, but has "
            f"{otree}. Pass the gradient of the same params pytree (grad(loss)(params))."
        )
    _check_shapes(params_leaves, other_leaves, what)


def _check_shapes(params_leaves, other_leaves, what: str) -> None:
    for k, (p, g) in enumerate(zip(params_leaves, other_leaves)):
        if _shape_of(p) != _shape_of(g):
            raise ValueError(
                f"optimizer: {what} leaf {k} has shape {np.shape(primal_value(g))}, but its "
                f"parameter has shape {np.shape(primal_value(p))}"
            )


class Optimizer:
    """A first-order optimizer: ``init(params) -> state``, ``update(params, grads, state) ->
    (params, state)``.

    One update, with t the number of updates already made and η = lr(t):

    1. g ← g + λ·p if ``l2`` = λ (L2 regularisation added to the gradient);
    2. clipping: ``clip_value`` (|g| ≤ c entrywise), ``clip_norm`` (each leaf's ‖g‖₂ ≤ c),
       ``clip_global_norm`` (‖g‖₂ over all leaves ≤ c), in that order;
    3. the rule's step: p ← p − η·d(g, slots);
    4. decoupled weight decay: p ← p − η·w·p if ``weight_decay`` = w (AdamW's form).

    The state is ``{"step": int64 array, <slot name>: pytree like params, ...}``.
    """

    def __init__(
        self,
        name: str,
        slots: Sequence[str],
        rule: Callable,
        lr: float | Callable[[int], float],
        *,
        l2: float = 0.0,
        weight_decay: float = 0.0,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        clip_global_norm: float | None = None,
        hyper: dict | None = None,
    ) -> None:
        self.name = name
        self.slots = tuple(slots)
        self.rule = rule
        self.lr = _as_schedule(lr)
        self.l2 = float(l2)
        self.weight_decay = float(weight_decay)
        for nm, v in (
            ("clip_value", clip_value),
            ("clip_norm", clip_norm),
            ("clip_global_norm", clip_global_norm),
        ):
            if v is not None and not v > 0:
                raise ValueError(f"{name}: {nm} must be positive, got {v}")
        self.clip_value = clip_value
        self.clip_norm = clip_norm
        self.clip_global_norm = clip_global_norm
        self.hyper = dict(hyper or {})
        self._spec: _DictSpec | None = None  # the last params structure, compiled
        self._made: list = []  # weak references to the flat buffers of the last update

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.hyper.items())
        return f"{self.name}(lr={self.lr.desc}{', ' + extra if extra else ''})"

    def init(self, params: Any) -> dict:
        """A fresh state: step 0 and zero slots shaped and typed like ``params``."""
        _, params, _ = _unwrap(params, None)
        leaves, tdef = tree_flatten(params)
        for k, p in enumerate(leaves):
            a = primal_value(p)
            if np.result_type(a).kind != "f":
                raise TypeError(
                    f"{self.name}.init: parameter leaf {k} has dtype {np.result_type(a)}; "
                    "optimizers update float arrays only"
                )
        state: dict = {"step": np.zeros((), np.int64)}
        for s in self.slots:
            state[s] = tdef.unflatten(
                [np.zeros(np.shape(primal_value(p)), _dtype(p)) for p in leaves]
            )
        return state

    def learning_rate(self, state: dict) -> float:
        """η for the next update."""
        return self.lr(int(state["step"]))

    def transform_grads(self, params: Any, grads: Any) -> Any:
        """Steps 1-2 of the update: L2 term and clipping (exposed for inspection)."""
        pl, _ = tree_flatten(params)
        gl, gdef = tree_flatten(grads)
        return gdef.unflatten(self._transform(pl, gl))

    def _transform(self, pl: list, gl: list) -> list:
        if self.l2:
            gl = [g + self.l2 * p for g, p in zip(gl, pl)]
        if self.clip_value is not None:
            gl = [_clip_value(g, self.clip_value) for g in gl]
        if self.clip_norm is not None:
            gl = tree_flatten(clip_by_norm(gl, self.clip_norm))[0]
        if self.clip_global_norm is not None:
            gl = tree_flatten(clip_by_global_norm(gl, self.clip_global_norm))[0]
        return gl

    def update(self, params: Any, grads: Any, state: dict) -> tuple[Any, dict]:
        """One step; returns the new parameters and the new state (inputs are not mutated).

        ``params`` may be a :class:`~wengert.nn.Network` (its learnables are updated and a new
        network returned), with ``grads`` a Network (as ``grad`` gives) or its params pytree.
        """
        net, params, grads = _unwrap(params, grads)
        if not isinstance(state, dict) or "step" not in state:
            raise TypeError(f"{self.name}.update: state must come from {self.name}.init(params)")
        # Nested dicts of arrays (every Network) go through a flattener compiled once for
        # their structure; anything else through tree_flatten.
        spec = self._spec
        pl = _gather(params, spec) if spec is not None else None
        if pl is None:
            pl, pdef = tree_flatten(params)
            spec = self._spec = _compile_spec(pdef)
        else:
            pdef = None
        gl = _gather(grads, spec) if spec is not None else None
        if gl is None or not _same_shapes(pl, gl):
            pdef = pdef or tree_flatten(params)[1]
            gl, gdef = tree_flatten(grads)
            _check_tree(pl, gl, pdef, gdef, "gradient")
        for k, (p, g) in enumerate(zip(pl, gl)):
            if _dtype(g) != _dtype(p):
                gl[k] = g.astype(_dtype(p)) if not isinstance(g, Tracer) else g
        gl = self._transform(pl, gl)
        t = int(state["step"])
        lr = self.lr(t)
        slot_leaves = []
        for s in self.slots:
            sl = _gather(state[s], spec) if spec is not None else None
            if sl is None or not _same_shapes(pl, sl):
                pdef = pdef or tree_flatten(params)[1]
                sl, sdef = tree_flatten(state[s])
                if sdef is not pdef and len(sl) == len(pl):  # cheap: leaf shapes only
                    _check_shapes(pl, sl, f"state slot {s!r}")
                else:
                    _check_tree(pl, sl, pdef, sdef, f"state slot {s!r}")
            slot_leaves.append(sl)
        flat = _flat_layout(pl, gl, slot_leaves)
        if flat is not None:
            new_p, new_slots = self._update_flat(flat, pl, gl, slot_leaves, lr, t + 1)
        else:
            new_p = []
            new_slots = [[] for _ in self.slots]
            for k, (p, g) in enumerate(zip(pl, gl)):
                cur = tuple(sl[k] for sl in slot_leaves)
                p2, upd = self.rule(p, g, cur, lr, t + 1, self.weight_decay)
                new_p.append(p2)
                for j, u in enumerate(upd):
                    new_slots[j].append(u)
        if spec is not None:
            build = spec.build
        else:
            build = (pdef or tree_flatten(params)[1]).unflatten
        new_state = dict(state)
        new_state["step"] = np.asarray(t + 1, np.int64)
        for j, s in enumerate(self.slots):
            new_state[s] = build(new_slots[j])
        new_params = build(new_p)
        if net is not None:
            new_params = net.with_params(new_params)
        return new_params, new_state

    def _update_flat(self, layout, pl, gl, slot_leaves, lr, t):
        """The rules are elementwise: run them once on all leaves laid end to end (a few large
        NumPy calls instead of a few per leaf).  The results are views into one buffer per
        quantity, so the next update finds them already laid out and does not copy them."""
        made = self._made
        p = _as_flat(pl, layout, made)
        g = _as_flat(gl, layout, made)
        slots = tuple(_as_flat(sl, layout, made) for sl in slot_leaves)
        p2, upd = self.rule(p, g, slots, lr, t, self.weight_decay)
        outs = [_split(p2, layout)] + [_split(u, layout) for u in upd]
        # remember (weakly) the buffers and views handed out: recognising them next time by
        # identity is cheaper than checking their addresses
        self._made = [
            (weakref.ref(b), [weakref.ref(a) for a in o]) for b, o in zip((p2, *upd), outs)
        ]
        return outs[0], outs[1:]


class _DictSpec:
    """A pytree structure of plain dicts with array leaves, compiled for the optimizers' hot
    path: ``gather(tree)`` lists the leaves in tree_flatten's order (sorted keys) or returns
    None when ``tree`` has another structure; ``build(leaves)`` rebuilds the dicts (keys in
    their original insertion order) as ``TreeDef.unflatten`` does."""

    __slots__ = ("items", "order", "n")

    def __init__(self, items: tuple, order: tuple, n: int) -> None:
        self.items = items  # (key, sub-spec or None for a leaf), sorted keys
        self.order = order  # (key, sub-spec or None, offset of its first leaf), insertion order
        self.n = n

    def gather_into(self, tree: Any, out: list) -> bool:
        if type(tree) is not dict or len(tree) != len(self.items):
            return False
        for k, sub in self.items:
            v = tree.get(k, _MISSING)
            if sub is None:
                if type(v) is not np.ndarray:
                    return False
                out.append(v)
            elif not sub.gather_into(v, out):
                return False
        return True

    def build(self, leaves: list, start: int = 0) -> dict:
        return {
            k: leaves[start + off] if sub is None else sub.build(leaves, start + off)
            for k, sub, off in self.order
        }


_MISSING = object()


def _compile_spec(tdef) -> _DictSpec | None:
    """The :class:`_DictSpec` of a treedef made only of plain dicts (None otherwise)."""
    aux = tdef.aux
    if tdef.kind is None or tdef.kind[1] is not dict or getattr(aux, "cls", None) is not dict:
        return None
    items, offsets, n = [], {}, 0
    for k, child in zip(aux.keys, tdef.children):
        if child.kind is None:
            sub = None
        else:
            sub = _compile_spec(child)
            if sub is None:
                return None
        items.append((k, sub))
        offsets[k] = n
        n += 1 if sub is None else sub.n
    order = tuple((k, dict(items)[k], offsets[k]) for k in aux.order)
    return _DictSpec(tuple(items), order, n)


def _gather(tree: Any, spec: _DictSpec) -> list | None:
    out: list = []
    return out if spec.gather_into(tree, out) else None


def _same_shapes(a: list, b: list) -> bool:
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return False
    return True


def _flat_layout(pl, gl, slot_leaves):
    """``(dtype, shapes, offsets, total)`` when every leaf is a plain ndarray of one float
    dtype (so the update can run on one flat vector), else None."""
    if len(pl) < 2:
        return None
    dt = None
    for group in (pl, gl, *slot_leaves):
        for a in group:
            if type(a) is not np.ndarray:
                return None
            if dt is None:
                dt = a.dtype
            elif a.dtype != dt:
                return None
    if dt.kind != "f":
        return None
    shapes = [a.shape for a in pl]
    offsets = []
    n = 0
    for a in pl:
        offsets.append(n)
        n += a.size
    return dt, shapes, offsets, n


def _as_flat(leaves, layout, made=()):
    """The leaves as one 1-d array: their common base if they are its consecutive C-ordered
    pieces (as ``_split`` made them; ``made`` lists weak references to the last ones), else a
    concatenated copy."""
    dt, shapes, offsets, n = layout
    base = leaves[0].base
    for bref, vrefs in made:
        if base is not None and bref() is base and len(vrefs) == len(leaves):
            if all(r() is a for r, a in zip(vrefs, leaves)):
                return base
            break
    if type(base) is np.ndarray and base.ndim == 1 and base.size == n and base.dtype == dt:
        addr = base.__array_interface__["data"][0]
        isz = dt.itemsize
        ok = True
        for a, off in zip(leaves, offsets):
            if (
                a.base is not base
                or not a.flags.c_contiguous
                or a.__array_interface__["data"][0] != addr + off * isz
            ):
                ok = False
                break
        if ok:
            return base
    return np.concatenate([a.reshape(-1) for a in leaves])


def _split(v, layout):
    _, shapes, offsets, n = layout
    ends = offsets[1:] + [n]
    return [v[a:b].reshape(s) for a, b, s in zip(offsets, ends, shapes)]


def _dtype(p):
    d = getattr(p, "dtype", None)
    return d if isinstance(d, np.dtype) else np.result_type(primal_value(p))


def _shape_of(p):
    s = getattr(p, "shape", None)
    return s if isinstance(s, tuple) else np.shape(primal_value(p))


def _plain(*xs) -> bool:
    return all(type(x) is np.ndarray for x in xs)


def _decay(p, lr, wd):
    return p - (lr * wd) * p if wd else p


def _sgd_rule(p, g, slots, lr, t, wd):
    if _plain(p, g):
        out = np.multiply(g, -lr, dtype=p.dtype)
        out += p
        if wd:
            out -= (lr * wd) * p
        return out, ()
    return _decay(p, lr, wd) - lr * g, ()


def _momentum_rule(mu, nest):
    def rule(p, g, slots, lr, t, wd):
        (v,) = slots
        v2 = mu * v + g
        d = g + mu * v2 if nest else v2
        return _decay(p, lr, wd) - lr * d, (v2,)

    return rule


def _adam_rule(b1, b2, eps):
    def rule(p, g, slots, lr, t, wd):
        m, v = slots
        bc1 = 1.0 - b1**t
        bc2 = 1.0 - b2**t
        if _plain(p, g, m, v):
            # in-place on fresh arrays: m2 = m + (1-b1)(g - m), v2 = v + (1-b2)(g² - v)
            m2 = np.subtract(g, m)
            m2 *= 1.0 - b1
            m2 += m
            v2 = np.multiply(g, g)
            v2 -= v
            v2 *= 1.0 - b2
            v2 += v
            # lr·m̂/(√v̂ + ε) = (lr·√bc2/bc1)·m / (√v + ε·√bc2): one pass fewer
            d = np.sqrt(v2)
            d += eps * math.sqrt(bc2)
            np.divide(m2, d, out=d)
            d *= lr * math.sqrt(bc2) / bc1
            if wd:
                d += (lr * wd) * p
            np.subtract(p, d, out=d)
            return d, (m2, v2)
        m2 = b1 * m + (1.0 - b1) * g
        v2 = b2 * v + (1.0 - b2) * (g * g)
        step = (lr / bc1) * m2 / (_sqrt(v2) * (1.0 / math.sqrt(bc2)) + eps)
        return _decay(p, lr, wd) - step, (m2, v2)

    return rule


def _rmsprop_rule(rho, eps):
    def rule(p, g, slots, lr, t, wd):
        (v,) = slots
        v2 = rho * v + (1.0 - rho) * (g * g)
        return _decay(p, lr, wd) - lr * g / (_sqrt(v2) + eps), (v2,)

    return rule


def sgd(lr: float | Callable[[int], float] = 0.01, **options: Any) -> Optimizer:
    """Plain stochastic gradient descent: p ← p − η·g.  ``options``: see :class:`Optimizer`."""
    return Optimizer("sgd", (), _sgd_rule, lr, **options)


def momentum(
    lr: float | Callable[[int], float] = 0.01,
    momentum: float = 0.9,
    nesterov: bool = False,
    **options: Any,
) -> Optimizer:
    """SGD with momentum: v ← μ·v + g; p ← p − η·v.

    With ``nesterov``: p ← p − η·(g + μ·v) (the look-ahead form).  State slot ``"velocity"``.
    """
    return _momentum_optimizer(lr, momentum, nesterov, options)


def _momentum_optimizer(lr, mu, nest, options):
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {mu}")
    name = "nesterov" if nest else "momentum"
    return Optimizer(
        name, ("velocity",), _momentum_rule(mu, nest), lr, hyper={"momentum": mu}, **options
    )


def nesterov(lr: float | Callable[[int], float] = 0.01, momentum: float = 0.9, **options: Any):
    """SGD with Nesterov momentum (see :func:`momentum`)."""
    return _momentum_optimizer(lr, momentum, True, options)


def adam(
    lr: float | Callable[[int], float] = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    **options: Any,
) -> Optimizer:
    """Adam (Kingma & Ba): with t counted from 1,

    m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,
    p ← p − η · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε).

    State slots ``"m"`` and ``"v"``.  ``weight_decay`` gives AdamW; ``l2`` the classic
    (coupled) L2 form.
    """
    _check_beta(beta1, "beta1")
    _check_beta(beta2, "beta2")
    return Optimizer(
        "adam",
        ("m", "v"),
        _adam_rule(beta1, beta2, eps),
        lr,
        hyper={"beta1": beta1, "beta2": beta2, "eps": eps},
        **options,
    )


def adamw(
    lr: float | Callable[[int], float] = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    **options: Any,
) -> Optimizer:
    """AdamW (Loshchilov & Hutter): Adam with decoupled weight decay p ← p − η·w·p."""
    opt = adam(lr, beta1, beta2, eps, weight_decay=weight_decay, **options)
    opt.name = "adamw"
    return opt


def rmsprop(
    lr: float | Callable[[int], float] = 1e-3,
    rho: float = 0.9,
    eps: float = 1e-8,
    **options: Any,
) -> Optimizer:
    """RMSProp: v ← ρv + (1−ρ)g²; p ← p − η·g / (√v + ε).  State slot ``"v"``."""
    _check_beta(rho, "rho")
    return Optimizer(
        "rmsprop", ("v",), _rmsprop_rule(rho, eps), lr, hyper={"rho": rho, "eps": eps}, **options
    )


def _check_beta(b, name):
    if not 0.0 <= b < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {b}")


# ---------------------------------------------------------------------------------------------
# L-BFGS
# ---------------------------------------------------------------------------------------------


class LBFGS:
    """Limited-memory BFGS with a line search, for full-batch deterministic losses.

    ``state = opt.init(params)``; ``params, state, loss = opt.step(loss_fn, params, state)``,
    where ``loss_fn(params)`` returns a real scalar (it is differentiated with
    :func:`wengert.value_and_grad`).  The direction d = −H·g comes from the two-loop recursion
    over the last ``history`` pairs (s = Δp, y = Δg), scaled by γ = sᵀy / yᵀy; a pair is kept
    only if sᵀy > 1e-10·yᵀy (so H stays positive definite).

    Line searches (``line_search``):

    * ``"strong_wolfe"`` (default): Nocedal & Wright, Algorithm 3.5 with the zoom of 3.6 (cubic
      interpolation safeguarded by bisection); accepts α with
      f(p+αd) ≤ f + c₁αgᵀd and |∇f(p+αd)ᵀd| ≤ c₂|gᵀd| (c₁ = 1e-4, c₂ = 0.9).
    * ``"backtracking"``: Armijo backtracking, α ← α/2 until f(p+αd) ≤ f + c₁αgᵀd.

    The first trial step is α = 1 (α = min(1, 1/‖g‖₁) on the first iteration).  The state is a
    dict of arrays (history, the flattened point with its loss and gradient), saved exactly.
    """

    def __init__(
        self,
        history: int = 10,
        line_search: str = "strong_wolfe",
        max_line_search: int = 25,
        c1: float = 1e-4,
        c2: float = 0.9,
    ) -> None:
        if line_search not in ("strong_wolfe", "backtracking"):
            raise ValueError(
                f"lbfgs: line_search must be 'strong_wolfe' or 'backtracking', not {line_search!r}"
            )
        if history < 1:
            raise ValueError(f"lbfgs: history must be >= 1, got {history}")
        if not 0 < c1 < c2 < 1:
            raise ValueError(f"lbfgs: need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
        self.history = int(history)
        self.line_search = line_search
        self.max_line_search = int(max_line_search)
        self.c1 = c1
        self.c2 = c2

    def __repr__(self) -> str:
        return f"lbfgs(history={self.history}, line_search={self.line_search!r})"

    def init(self, params: Any) -> dict:
        """Empty history for parameters shaped like ``params``."""
        _, params, _ = _unwrap(params, None)
        x = _flat(params)
        n, dt = x.size, x.dtype
        m = self.history
        return {
            "step": np.zeros((), np.int64),
            "s": np.zeros((m, n), dt),
            "y": np.zeros((m, n), dt),
            "count": np.zeros((), np.int64),
            "x": np.zeros(n, dt),
            "f": np.zeros((), dt),
            "g": np.zeros(n, dt),
            "valid": np.zeros((), np.bool_),
        }

    def step(self, loss_fn: Callable[[Any], Any], params: Any, state: dict) -> tuple:
        """One L-BFGS iteration: returns ``(params, state, loss at the new params)``."""
        from wengert.api import value_and_grad

        net, params, _ = _unwrap(params, None)
        leaves, tdef = tree_flatten(params)
        shapes = [np.shape(primal_value(p)) for p in leaves]
        x = _flat(params)
        if state["x"].shape != x.shape:
            raise ValueError("lbfgs.step: the state was made for parameters of another size")
        dt = x.dtype

        def unflat(v):
            out, i = [], 0
            for s in shapes:
                n = math.prod(s)
                out.append(v[i : i + n].reshape(s))
                i += n
            p = tdef.unflatten(out)
            return net.with_params(p) if net is not None else p

        vg = value_and_grad(loss_fn)

        def fg(v):
            val, g = vg(unflat(v))
            if net is not None:
                g = g.params
            return float(val), _flat(g).astype(dt, copy=False)

        if bool(state["valid"]) and np.array_equal(state["x"], x):
            f, g = float(state["f"]), state["g"].copy()
        else:
            f, g = fg(x)
        S, Y = state["s"].copy(), state["y"].copy()
        count = int(state["count"])
        k = int(state["step"])
        d = -_two_loop(g, S, Y, count)
        gd = float(g @ d)
        if not gd < 0:  # not a descent direction (bad curvature): restart from steepest descent
            count = 0
            d = -g
            gd = float(g @ d)
        if gd == 0.0:  # at a stationary point
            new = dict(state, x=x, f=np.asarray(f, dt), g=g, valid=np.asarray(True))
            new["step"] = np.asarray(k + 1, np.int64)
            return unflat(x), new, f
        a0 = 1.0 if (k > 0 or count > 0) else min(1.0, 1.0 / float(np.abs(g).sum()))
        if self.line_search == "strong_wolfe":
            a, f2, g2 = _strong_wolfe(fg, x, f, g, d, a0, self.c1, self.c2, self.max_line_search)
        else:
            a, f2, g2 = _backtracking(fg, x, f, g, d, a0, self.c1, self.max_line_search)
        x2 = (x + a * d).astype(dt)
        s = x2 - x
        y = g2 - g
        sy = float(s @ y)
        if sy > 1e-10 * float(y @ y) and sy > 0:
            if count == self.history:
                S[:-1] = S[1:]
                Y[:-1] = Y[1:]
                count -= 1
            S[count] = s
            Y[count] = y
            count += 1
        new = {
            "step": np.asarray(k + 1, np.int64),
            "s": S,
            "y": Y,
            "count": np.asarray(count, np.int64),
            "x": x2,
            "f": np.asarray(f2, dt),
            "g": g2,
            "valid": np.asarray(True),
        }
        return unflat(x2), new, f2


def lbfgs(
    history: int = 10,
    line_search: str = "strong_wolfe",
    max_line_search: int = 25,
    c1: float = 1e-4,
    c2: float = 0.9,
) -> LBFGS:
    """L-BFGS with a strong-Wolfe (default) or backtracking-Armijo line search; see :class:`LBFGS`."""
    return LBFGS(history, line_search, max_line_search, c1, c2)


def _flat(tree) -> np.ndarray:
    leaves = [np.asarray(primal_value(p)) for p in tree_flatten(tree)[0]]
    if not leaves:
        raise ValueError("lbfgs: there are no parameters")
    dt = np.result_type(*leaves)
    if dt.kind != "f":
        raise TypeError(f"lbfgs: parameters must be float arrays, got {dt}")
    return np.concatenate([p.reshape(-1).astype(dt, copy=False) for p in leaves])


def _two_loop(g, S, Y, count):
    """H·g by the two-loop recursion over the stored pairs (oldest first in S, Y)."""
    q = g.astype(g.dtype, copy=True)
    if count == 0:
        return q
    alpha = np.zeros(count)
    rho = np.array([1.0 / float(Y[i] @ S[i]) for i in range(count)])
    for i in range(count - 1, -1, -1):
        alpha[i] = rho[i] * float(S[i] @ q)
        q -= alpha[i] * Y[i]
    last = count - 1
    gamma = float(S[last] @ Y[last]) / float(Y[last] @ Y[last])
    r = q * gamma
    for i in range(count):
        b = rho[i] * float(Y[i] @ r)
        r += (alpha[i] - b) * S[i]
    return r


def _backtracking(fg, x, f, g, d, a, c1, maxit):
    gd = float(g @ d)
    for _ in range(maxit):
        f2, g2 = fg(x + a * d)
        if np.isfinite(f2) and f2 <= f + c1 * a * gd:
            return a, f2, g2
        a *= 0.5
    return 0.0, f, g  # no acceptable step: stay put


def _cubic_min(a_lo, f_lo, d_lo, a_hi, f_hi, d_hi):
    """Minimiser of the cubic through (a, f, f') at both ends, or bisection if it is unsafe."""
    d1 = d_lo + d_hi - 3 * (f_lo - f_hi) / (a_lo - a_hi)
    sq = d1 * d1 - d_lo * d_hi
    lo, hi = min(a_lo, a_hi), max(a_lo, a_hi)
    if sq >= 0 and np.isfinite(sq):
        d2 = math.sqrt(sq) * (1.0 if a_hi > a_lo else -1.0)
        denom = d_hi - d_lo + 2 * d2
        if denom != 0:
            a = a_hi - (a_hi - a_lo) * (d_hi + d2 - d1) / denom
            margin = 0.1 * (hi - lo)
            if lo + margin <= a <= hi - margin:
                return a
    return 0.5 * (a_lo + a_hi)


def _strong_wolfe(fg, x, f0, g0, d, a1, c1, c2, maxit):
    gd0 = float(g0 @ d)
    a_prev, f_prev, gd_prev, g_prev = 0.0, f0, gd0, g0
    a = a1
    it = 0

    def zoom(a_lo, f_lo, gd_lo, g_lo, a_hi, f_hi, gd_hi, it):
        while it < maxit:
            it += 1
            aj = _cubic_min(a_lo, f_lo, gd_lo, a_hi, f_hi, gd_hi)
            fj, gj = fg(x + aj * d)
            gdj = float(gj @ d)
            if not np.isfinite(fj) or fj > f0 + c1 * aj * gd0 or fj >= f_lo:
                a_hi, f_hi, gd_hi = aj, fj if np.isfinite(fj) else f_lo + 1e30, gdj
            else:
                if abs(gdj) <= -c2 * gd0:
                    return aj, fj, gj
                if gdj * (a_hi - a_lo) >= 0:
                    a_hi, f_hi, gd_hi = a_lo, f_lo, gd_lo
                a_lo, f_lo, gd_lo, g_lo = aj, fj, gdj, gj
        return a_lo, f_lo, g_lo  # the best point found (sufficient decrease holds there)

    while it < maxit:
        it += 1
        f1, g1 = fg(x + a * d)
        gd1 = float(g1 @ d)
        if not np.isfinite(f1) or f1 > f0 + c1 * a * gd0 or (it > 1 and f1 >= f_prev):
            f1 = f1 if np.isfinite(f1) else max(f0, f_prev) + 1e30
            return zoom(a_prev, f_prev, gd_prev, g_prev, a, f1, gd1, it)
        if abs(gd1) <= -c2 * gd0:
            return a, f1, g1
        if gd1 >= 0:
            return zoom(a, f1, gd1, g1, a_prev, f_prev, gd_prev, it)
        a_prev, f_prev, gd_prev, g_prev = a, f1, gd1, g1
        a = 2.0 * a
    return a_prev, f_prev, g_prev
