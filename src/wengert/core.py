"""The engine: primitives, tracers, trace levels, the tape and the backward sweep.

Everything differentiable in wengert is a :class:`Primitive` applied to values.  A
transformation (forward or reverse mode) is a *trace* with a *level*; values it follows are
*tracers* that remember their trace.  Applying a primitive finds the highest-level trace among
its arguments and lets that trace process it:

* a :class:`JVPTrace` (forward mode) carries (primal, tangent) dual numbers through the
  primitive's JVP rules;
* a :class:`VJPTrace` (reverse mode) appends a :class:`TapeEntry` -- primitive, inputs, output,
  parameters -- to its tape (the Wengert list); :func:`backward` walks the tape once in reverse,
  calling the VJP rules and accumulating adjoints.

A tracer of an outer (lower-level) trace is an ordinary constant to an inner trace, which is
what makes nested derivatives free of perturbation confusion.  JVP and VJP rules are written
with wengert's own primitives, so differentiating a rule is just more tracing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "Primitive",
    "UnaryPrimitive",
    "NO_PARAMS",
    "Tracer",
    "JVPTracer",
    "VJPTracer",
    "JVPTrace",
    "VJPTrace",
    "TapeEntry",
    "new_trace",
    "end_trace",
    "backward",
    "identity_rule",
    "reduce_to_shape",
    "primal_value",
    "is_traced",
    "UnexpectedTracerError",
]


class UnexpectedTracerError(RuntimeError):
    """A traced value was used after the transformation that created it had finished."""


# ---------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------


class Primitive:
    """An operation with a NumPy implementation and its derivative rules.

    * ``impl(*args, **params)`` computes the primal output on plain arrays.
    * ``jvps[i](t, ans, *args, **params)`` is the tangent of the output caused by the tangent
      ``t`` of argument ``i`` (``None`` marks an argument with no derivative).
    * ``vjps[i](g, ans, *args, **params)`` is the cotangent of argument ``i`` given the output
      cotangent ``g``.

    Primitives with several outputs, or whose rules are cheaper taken jointly, set
    ``jvp_all(tangents, ans, *args, **params) -> output tangent(s)`` and
    ``vjp_all(g, ans, needed, *args, **params) -> tuple of cotangents`` instead; ``needed``
    lists the argument positions whose cotangent is wanted.

    ``elementwise`` primitives broadcast their arguments like a ufunc; the forward-mode engine
    aligns batched tangents for them so their rules can stay one-liners.
    """

    __slots__ = (
        "name",
        "impl",
        "jvps",
        "vjps",
        "jvp_all",
        "_vjp_all",
        "elementwise",
        "broadcasts",
        "multiple_results",
        "_vjp_add_into",
        "general",
        "reads",
        "fmt",
        "__weakref__",
    )

    def __init__(
        self,
        name: str,
        impl: Callable[..., Any],
        *,
        elementwise: bool = False,
        multiple_results: bool = False,
        fmt: str | None = None,
    ) -> None:
        self.name = name
        self.impl = impl
        self.jvps: tuple = ()
        self.vjps: tuple = ()
        self.jvp_all: Callable | None = None
        self._vjp_all: Callable | None = None
        self.elementwise = elementwise
        # may an argument's cotangent come out larger than the argument (broadcasting)?
        self.broadcasts = elementwise
        self.multiple_results = multiple_results
        # Optional fast path for a rule that scatters into zeros (indexing): add the cotangent
        # into an accumulator the sweep owns, in place: ``vjp_add_into(acc, g, *args, **params)``.
        self._vjp_add_into: Callable | None = None
        self.general = multiple_results  # does the sweep need its general path for this one?
        # Which values each argument's VJP rule reads (see ``saving``); None: everything.
        self.reads: tuple | None = None
        self.fmt = fmt  # how evaluation-trace tables write the operation, e.g. "{0} × {1}"

    @property
    def vjp_all(self) -> Callable | None:
        return self._vjp_all

    @vjp_all.setter
    def vjp_all(self, rule: Callable | None) -> None:
        self._vjp_all = rule
        self.general = self.multiple_results or rule is not None or self._vjp_add_into is not None

    @property
    def vjp_add_into(self) -> Callable | None:
        return self._vjp_add_into

    @vjp_add_into.setter
    def vjp_add_into(self, rule: Callable | None) -> None:
        self._vjp_add_into = rule
        self.general = self.multiple_results or rule is not None or self._vjp_all is not None

    def defjvp(self, *rules: Callable | None) -> Primitive:
        """Give one forward-mode rule per positional argument (``None``: no derivative)."""
        self.jvps = rules
        return self

    def defvjp(self, *rules: Callable | None) -> Primitive:
        """Give one reverse-mode rule per positional argument (``None``: no derivative)."""
        self.vjps = rules
        return self

    def saving(self, *reads: tuple) -> Primitive:
        """Declare, for each argument's VJP rule, the positions of the values it reads (``ANS``
        for the output; the last tuple also covers any further arguments); of the other values
        the rules use only shape and dtype.  The tape then
        keeps just what the rules of the traced arguments read: other large arrays shrink to
        stand-ins, so memory is given back as early as it can be."""
        self.reads = reads
        return self

    def __call__(self, *args: Any, **params: Any) -> Any:
        """Apply the primitive: on plain values call ``impl``, else let the top trace process it."""
        top = None
        for a in args:
            if isinstance(a, Tracer):
                t = a._trace
                if top is None or t.level > top.level:
                    top = t
        if top is None:
            return self.impl(*args, **params)
        return top.process(self, args, params)

    bind = __call__

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


class UnaryPrimitive(Primitive):
    """A primitive of one array argument (``sin``, ``exp``...): the same thing, called through
    a shorter path, since the only argument's trace is the top one."""

    __slots__ = ()

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.broadcasts = False  # one argument: its cotangent has the output's shape

    def __call__(self, x: Any, /, **params: Any) -> Any:
        if type(x) is VJPTracer:  # the hot path of reverse mode
            return x._trace.process_unwrapped(self, params or NO_PARAMS, [x.primal], [(0, x.idx)])
        if isinstance(x, Tracer):
            return x._trace.process(self, (x,), params or NO_PARAMS)
        return self.impl(x, **params)

    bind = __call__


NO_PARAMS: Any = MappingProxyType({})  # the shared, immutable ``params`` of a call without any


# ---------------------------------------------------------------------------------------------
# Levels
# ---------------------------------------------------------------------------------------------

# The stack of transformations in progress, innermost last.  A context variable, so each thread
# and each asyncio task has its own stack; this is the engine's only mutable global.
_trace_stack: contextvars.ContextVar[tuple] = contextvars.ContextVar("wengert_traces", default=())


def new_trace(cls: type, *args: Any) -> Any:
    """Open a trace of class ``cls`` one level above every trace in progress."""
    stack = _trace_stack.get()
    trace = cls(len(stack), *args)
    trace._token = _trace_stack.set(stack + (trace,))
    return trace


def end_trace(trace: Any) -> None:
    """Close ``trace``: its tracers may no longer take part in new operations."""
    trace.active = False
    try:
        _trace_stack.reset(trace._token)
    except ValueError:  # closed from another context: rebuild the stack without it
        _trace_stack.set(tuple(t for t in _trace_stack.get() if t is not trace))


def top_trace(args: Sequence) -> Any:
    """The highest-level trace among the tracers in ``args`` (None if there are none)."""
    top = None
    for a in args:
        if isinstance(a, Tracer):
            t = a._trace
            if top is None or t.level > top.level:
                top = t
    return top


def _leaked(trace: Any, prim: Primitive) -> UnexpectedTracerError:
    return UnexpectedTracerError(
        f"a value traced by a {type(trace).__name__} (level {trace.level}) reached "
        f"'{prim.name}' after that transformation had finished. Return traced values from the "
        "function being differentiated instead of storing them in globals or closures; use "
        "wengert.stop_gradient(x) if you only need the number."
    )


# ---------------------------------------------------------------------------------------------
# Tracers
# ---------------------------------------------------------------------------------------------


class Tracer:
    """A value followed by a transformation.  ``primal`` is the value one level down.

    The array interface (operators, ``shape``, methods, ``__array_ufunc__``...) is installed by
    :mod:`wengert.numpy`, which owns the primitives those methods apply.
    """

    __slots__ = ("primal", "_trace")
    __array_priority__ = 1000.0

    @property
    def shape(self) -> tuple:
        return self.primal.shape

    @property
    def ndim(self) -> int:
        return self.primal.ndim

    @property
    def size(self) -> int:
        return self.primal.size

    @property
    def dtype(self) -> np.dtype:
        return self.primal.dtype

    def __len__(self) -> int:
        return len(self.primal)

    def __bool__(self) -> bool:
        return bool(self.primal)

    def _no_conversion(self, to: str) -> TypeError:
        return TypeError(
            f"cannot convert a traced value to {to}: its derivative would be lost silently. "
            "Use wengert.stop_gradient(x) to get the plain value if that is what you want."
        )

    def __float__(self) -> float:
        raise self._no_conversion("a Python float")

    def __int__(self) -> int:
        raise self._no_conversion("a Python int")

    def __complex__(self) -> complex:
        raise self._no_conversion("a Python complex")

    def __index__(self) -> int:
        raise self._no_conversion("an index")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise self._no_conversion("a NumPy array (np.asarray / np.array)")

    def __hash__(self) -> int:
        return id(self)


class JVPTracer(Tracer):
    """A dual number: ``primal + tangent·ε``.  The tangent may lead with batch axes."""

    __slots__ = ("tangent",)

    def __init__(self, primal: Any, tangent: Any, trace: JVPTrace) -> None:
        self.primal = primal
        self.tangent = tangent
        self._trace = trace

    def __repr__(self) -> str:
        return f"JVPTracer(primal={self.primal!r}, tangent={self.tangent!r})"


_new_tracer = object.__new__


class VJPTracer(Tracer):
    """A value on a reverse-mode tape; ``idx`` is its slot in the adjoint list."""

    __slots__ = ("idx",)

    def __init__(self, primal: Any, idx: int, trace: VJPTrace) -> None:
        self.primal = primal
        self.idx = idx
        self._trace = trace

    def __repr__(self) -> str:
        return f"VJPTracer(primal={self.primal!r}, id={self.idx})"


def primal_value(x: Any) -> Any:
    """Strip every level of tracing from ``x`` and return the plain value."""
    while isinstance(x, Tracer):
        x = x.primal
    return x


def is_traced(x: Any) -> bool:
    """True when ``x`` is followed by some transformation."""
    return isinstance(x, Tracer)


# ---------------------------------------------------------------------------------------------
# Forward mode
# ---------------------------------------------------------------------------------------------


class JVPTrace:
    """Forward mode.  ``nbatch`` leading axes of every tangent index a batch of directions."""

    __slots__ = ("level", "nbatch", "active", "_token")

    def __init__(self, level: int, nbatch: int = 0) -> None:
        self.level = level
        self.nbatch = nbatch
        self.active = True

    def process(self, prim: Primitive, args: Sequence, params: dict) -> Any:
        if not self.active:
            raise _leaked(self, prim)
        primals = []
        tangents = []
        for a in args:
            if type(a) is JVPTracer and a._trace is self:
                primals.append(a.primal)
                tangents.append(a.tangent)
            else:
                primals.append(a)
                tangents.append(None)
        ans = prim(*primals, **params) if self.level else prim.impl(*primals, **params)
        if prim.jvp_all is not None:
            out_t = prim.jvp_all(tangents, ans, *primals, **params)
            if prim.multiple_results:
                return tuple(a if t is None else JVPTracer(a, t, self) for a, t in zip(ans, out_t))
            return ans if out_t is None else JVPTracer(ans, out_t, self)
        rules = prim.jvps
        out_t = None
        nb = self.nbatch
        for i, t in enumerate(tangents):
            if t is None:
                continue
            rule = rules[i] if i < len(rules) else None
            if rule is None:
                continue  # an argument with no derivative, e.g. an index or a condition
            if nb and prim.elementwise:
                t = _align_batched(t, nb, ans)
            c = rule(t, ans, *primals, **params)
            if c is not None:
                out_t = c if out_t is None else out_t + c
        if out_t is None:
            return ans
        return JVPTracer(ans, out_t, self)


def _align_batched(t: Any, nb: int, ans: Any) -> Any:
    """Insert unit axes after the batch axes so ``t`` broadcasts against ``ans`` like its primal."""
    missing = nb + np.ndim(primal_value(ans)) - t.ndim
    if missing <= 0:
        return t
    from wengert.numpy._shape import reshape  # the shape family; imported lazily (layering)

    return reshape(t, t.shape[:nb] + (1,) * missing + t.shape[nb:])


# ---------------------------------------------------------------------------------------------
# Reverse mode
# ---------------------------------------------------------------------------------------------


ndarray = np.ndarray
_STAND_IN_SIZE = 4096  # smaller arrays are kept whole: a stand-in would cost more than it saves
ANS = -1  # in Primitive.saving: the output


def _is_read(reads: tuple, links: list, pos: int) -> bool:
    """Does the VJP rule of some traced argument read the value at ``pos``?"""
    for j, _ in links:
        if pos in (reads[j] if j < len(reads) else reads[-1]):
            return True
    return False


def _stand_in(a: np.ndarray) -> np.ndarray:
    """A read-only array with the shape and dtype of ``a`` that owns (almost) no memory."""
    z = np.zeros((), a.dtype)
    out = np.ndarray(a.shape, a.dtype, buffer=z, strides=(0,) * a.ndim)
    out.flags.writeable = False
    return out


class TapeEntry(NamedTuple):
    """One line of the Wengert list: ``out = prim(*primals, **params)``.

    ``links`` holds ``(argument position, value id)`` for the arguments this trace follows;
    the other arguments are constants here.  ``out`` is the value id of the (first) output.
    A tuple, so recording one costs a single allocation and the sweep unpacks it in one step.
    """

    prim: Primitive
    params: dict
    primals: list
    ans: Any
    links: list
    out: int

    def __repr__(self) -> str:
        ins = ", ".join(f"v{j}" for _, j in self.links)
        return f"<v{self.out} = {self.prim.name}({ins})>"


_entry = tuple.__new__  # TapeEntry(...) without the Python-level __new__: _entry(TapeEntry, (...))


class VJPTrace:
    """Reverse mode: records a tape of :class:`TapeEntry` and sweeps it backwards."""

    __slots__ = ("level", "tape", "nvalues", "active", "locked", "keep_all", "_token", "__weakref__")

    def __init__(self, level: int, keep_all: bool = False) -> None:
        self.level = level
        self.tape: list[TapeEntry] = []
        self.nvalues = 0
        self.active = True
        self.locked: list = []  # (array, op name): arrays we made read-only while saved
        self.keep_all = keep_all  # keep every value (evaluation traces), not just what VJPs read

    def _lock(self, a: np.ndarray, op: str) -> None:
        a.flags.writeable = False
        self.locked.append((a, op))

    def new_input(self, value: Any) -> VJPTracer:
        """A fresh independent variable on this tape."""
        if type(value) is np.ndarray and value.flags.writeable:
            self._lock(value, "the input")
        t = VJPTracer(value, self.nvalues, self)
        self.nvalues += 1
        return t

    def process(self, prim: Primitive, args: Sequence, params: dict) -> Any:
        if not self.active:
            raise _leaked(self, prim)
        primals = list(args)
        links = []
        consts = None  # positions of constant arrays, rare
        i = 0
        for a in args:
            if type(a) is VJPTracer and a._trace is self:
                primals[i] = a.primal
                links.append((i, a.idx))
            elif type(a) is ndarray:
                consts = [i] if consts is None else consts + [i]
            i += 1
        if self.level:
            ans = prim(*primals, **params)
        else:
            ans = prim.impl(*primals, **params) if params else prim.impl(*primals)
        if not links:
            return ans
        # Large values may shrink to stand-ins (see ``_shrink``).  An element-wise output is
        # at least as large as each argument, so one size test covers them all.
        if prim.elementwise:
            big = type(ans) is ndarray and ans.size > _STAND_IN_SIZE
        else:
            big = type(ans) is ndarray and ans.size > _STAND_IN_SIZE
            if not big:
                for i, _ in links:
                    p = primals[i]
                    if type(p) is ndarray and p.size > _STAND_IN_SIZE:
                        big = True
                        break
        saved = self._shrink(prim, primals, links, consts, ans) if big or consts else ans
        out = self.nvalues
        if prim.multiple_results:
            self.nvalues += len(ans)
            self.tape.append(_entry(TapeEntry, (prim, params, primals, saved, links, out)))
            return tuple(VJPTracer(a, out + k, self) for k, a in enumerate(ans))
        self.nvalues = out + 1
        self.tape.append(_entry(TapeEntry, (prim, params, primals, saved, links, out)))
        t = _new_tracer(VJPTracer)  # VJPTracer(ans, out, self) without the __init__ frame
        t.primal = ans
        t.idx = out
        t._trace = self
        return t

    def process_unwrapped(self, prim: Primitive, params: dict, primals: list, links: list) -> Any:
        """``process`` for an element-wise primitive whose caller has unwrapped the arguments
        already: ``primals`` holds the values of this trace's tracers, ``links`` their
        ``(position, value id)``, and no constant array is among them (``sin(x)``, ``x * 0.9``,
        ``x + y``: the hot path of small chains, without the argument loop)."""
        if not self.active:
            raise _leaked(self, prim)
        if self.level:
            ans = prim(*primals, **params)
        else:
            ans = prim.impl(*primals, **params) if params else prim.impl(*primals)
        saved = ans
        if type(ans) is ndarray and ans.size > _STAND_IN_SIZE:
            saved = self._shrink(prim, primals, links, None, ans)
        out = self.nvalues
        self.nvalues = out + 1
        self.tape.append(_entry(TapeEntry, (prim, params, primals, saved, links, out)))
        t = _new_tracer(VJPTracer)
        t.primal = ans
        t.idx = out
        t._trace = self
        return t

    def _shrink(self, prim: Primitive, primals: list, links: list, consts: list | None, ans: Any):
        """Keep only what the VJP rules read: large unread arrays become free stand-ins (in
        ``primals``, in place); constants kept for the sweep are locked.  Returns what to save
        of ``ans``."""
        reads = prim.reads
        shrink = reads is not None and not self.keep_all
        if shrink:
            for i, _ in links:
                p = primals[i]
                if type(p) is ndarray and p.size > _STAND_IN_SIZE and not _is_read(reads, links, i):
                    primals[i] = _stand_in(p)
        if consts is not None:
            for i in consts:
                a = primals[i]
                if shrink and not _is_read(reads, links, i):
                    if a.size > _STAND_IN_SIZE:
                        primals[i] = _stand_in(a)
                elif a.flags.writeable:
                    self._lock(a, prim.name)  # a constant kept for the sweep
        if shrink and type(ans) is ndarray and ans.size > _STAND_IN_SIZE and not _is_read(reads, links, ANS):
            return _stand_in(ans)
        return ans

    def record(self, prim: Primitive, primals: list, links: list, ans: tuple, params: dict):
        """Append an entry whose outputs ``ans`` (a tuple) were computed by the caller, e.g. a
        custom rule; returns one tracer per output."""
        out = self.nvalues
        self.nvalues += len(ans)
        self.tape.append(_entry(TapeEntry, (prim, params, primals, ans, links, out)))
        return tuple(VJPTracer(a, out + k, self) for k, a in enumerate(ans))

    def unlock(self) -> None:
        """Give back write access to the arrays this trace guarded (last first, so a view
        saved before its base is released after it)."""
        for a, _ in reversed(self.locked):
            a.flags.writeable = True
        self.locked = []


def backward(
    trace: VJPTrace,
    seeds: Sequence[tuple[int, Any]],
    retain: bool = False,
    observe: Callable[[TapeEntry, int, Any], None] | None = None,
) -> list:
    """The backward sweep: one reverse loop over the tape, accumulating adjoints.

    ``seeds`` pairs value ids with their cotangents.  Returns the adjoint list, indexed by value
    id (``None`` is a symbolic zero).  Unless ``retain`` is set, each tape entry -- and the
    values it saved -- is released as soon as the sweep has passed it.  ``observe(entry, value
    id, contribution)`` is called for every edge, for the evaluation-trace tables.

    Adjoint arrays that the sweep allocated itself (sums of two contributions) are ``owned``
    and take further contributions in place, which saves an allocation per extra consumer.

    NaN safety: the sweep runs with NumPy's invalid-operation flag raising.  When a rule makes
    a new NaN (0·∞, ∞−∞: typically a zero cotangent, say from the branch ``where`` did not
    take, meeting an infinite derivative), that rule is run again quietly and, for an
    element-wise primitive, its cotangent is set to an exact 0 wherever ``g`` is 0.  The
    check costs nothing while no NaN appears.
    """
    with np.errstate(invalid="raise"):
        return _sweep(trace, seeds, retain, observe)


def _sweep(trace: VJPTrace, seeds, retain: bool, observe) -> list:
    adj: list = [None] * trace.nvalues
    owned: set = set()  # ids whose adjoint array the sweep allocated itself: safe to add into
    for vid, g in seeds:
        adj[vid] = g if adj[vid] is None else _quietly(_add, adj[vid], g)
    tape = trace.tape
    for n in range(len(tape) - 1, -1, -1):
        e = tape[n]
        if not retain:
            tape[n] = None
        prim, params, primals, ans, links, out = e
        if prim.general:  # several outputs, a joint rule or an in-place scatter
            _general_entry(e, adj, owned, retain, observe)
            continue
        g = adj[out]
        if g is None:
            continue
        if not retain:
            adj[out] = None
        rules = prim.vjps
        for i, vid in links:
            try:
                rule = rules[i]
            except IndexError:  # fewer rules than arguments: no derivative for the rest
                continue
            if rule is None:
                continue
            if rule is identity_rule:
                ct = g
            else:
                try:
                    ct = rule(g, ans, *primals, **params) if params else rule(g, ans, *primals)
                except FloatingPointError:  # a new NaN: see the docstring
                    ct = _quietly(rule, g, ans, *primals, **params)
                    if prim.elementwise:
                        ct = _strong_zero(ct, g)
                if ct is None:
                    continue
            if prim.broadcasts:  # the cotangent of a broadcast argument: sum it back down
                shape = primals[i].shape
                if ct.shape != shape:
                    ct = reduce_to_shape(ct, shape)
            if observe is not None:
                observe(e, vid, ct)
            a = adj[vid]
            if a is None:
                adj[vid] = ct
            else:
                _accumulate(adj, owned, vid, a, ct)
    if not retain:
        trace.tape = []
    return adj


def _accumulate(adj: list, owned: set, vid: int, a: Any, ct: Any) -> None:
    """Add the contribution ``ct`` to the adjoint ``a`` of value ``vid``: in place when the
    sweep owns ``a``, else into a new array that it then owns."""
    if vid in owned and type(ct) is np.ndarray and a.shape == ct.shape and a.dtype == ct.dtype:
        try:
            a += ct
        except FloatingPointError:
            pass  # ∞ + (−∞) in a sum of contributions: a genuine NaN, already stored
        return
    try:
        a = a + ct
    except FloatingPointError:
        a = _quietly(_add, a, ct)
    adj[vid] = a
    if type(a) is np.ndarray:
        owned.add(vid)


def _general_entry(e: TapeEntry, adj: list, owned: set, retain: bool, observe) -> None:
    """The sweep's step for an entry with several outputs, a joint rule (``vjp_all``) or an
    in-place scatter (``vjp_add_into``)."""
    prim, params, primals, ans, links, out = e
    if prim.multiple_results:
        gs = adj[out : out + len(ans)]
        if all(g is None for g in gs):
            return
        g = tuple(_zeros_like(a) if gi is None else gi for gi, a in zip(gs, ans))
        if not retain:
            adj[out : out + len(ans)] = [None] * len(ans)
    else:
        g = adj[out]
        if g is None:
            return
        if not retain:
            adj[out] = None
    vjp_all = prim.vjp_all
    if (
        prim.vjp_add_into is not None
        and observe is None
        and type(g) is np.ndarray
        and all(type(adj[vid]) in _PLAIN for _, vid in links)
    ):
        for i, vid in links:  # scatter straight into an accumulator this sweep owns
            a = adj[vid]
            if a is None or vid not in owned or a.dtype != g.dtype:
                x = primals[i]
                acc = np.zeros(x.shape, np.result_type(x, g))
                if a is not None:
                    acc += a  # acc is zeros: no new NaN can arise
                adj[vid] = a = acc
                owned.add(vid)
            try:
                prim.vjp_add_into(a, g, *primals, **params)
            except FloatingPointError:
                pass  # the in-place sum is done; NumPy only reports the new NaN
        return
    if vjp_all is not None:
        needed = [i for i, _ in links]
        try:
            cts = vjp_all(g, ans, needed, *primals, **params)
        except FloatingPointError:
            cts = _quietly(vjp_all, g, ans, needed, *primals, **params)
    for i, vid in links:
        if vjp_all is not None:
            ct = cts[i]
        else:  # several outputs, or a scatter on traced values: the plain rules
            rules = prim.vjps
            rule = rules[i] if i < len(rules) else None
            if rule is None:
                continue
            try:
                ct = rule(g, ans, *primals, **params)
            except FloatingPointError:
                ct = _quietly(rule, g, ans, *primals, **params)
        if ct is None:
            continue
        if observe is not None:
            observe(e, vid, ct)
        a = adj[vid]
        if a is None:
            adj[vid] = ct
        else:
            _accumulate(adj, owned, vid, a, ct)


def identity_rule(g: Any, ans: Any, *args: Any, **params: Any) -> Any:
    """The VJP (or JVP) rule ``g ↦ g``, of ``add`` say.  The sweep recognises it and skips the
    call."""
    return g


def reduce_to_shape(g: Any, shape: tuple) -> Any:
    """Sum ``g`` down to ``shape``, undoing NumPy broadcasting (leading axes, and axes of length
    1 in ``shape``).  Uses ``g``'s own ``sum``/``reshape`` methods, so a traced ``g`` stays
    differentiable."""
    gshape = g.shape
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + k for k, d in enumerate(shape) if d == 1 and gshape[lead + k] != 1
    )
    if axes:
        g = g.sum(axis=axes)
    return g.reshape(shape) if g.shape != shape else g


def _add(a: Any, b: Any) -> Any:
    return a + b


def _quietly(rule: Callable, *args: Any, **params: Any) -> Any:
    with np.errstate(invalid="ignore"):
        return rule(*args, **params)


def _strong_zero(ct: Any, g: Any) -> Any:
    """``ct`` with an exact 0 wherever the cotangent ``g`` is 0 (same shapes only: after a
    broadcast has been summed there is no telling which zeros met which entries)."""
    if ct is None or np.shape(primal_value(ct)) != np.shape(primal_value(g)):
        return ct
    zero = primal_value(g) == 0
    if not zero.any():
        return ct
    from wengert.numpy._elementwise import where  # the numpy layer sits above: lazily

    with np.errstate(invalid="ignore"):
        return where(zero, 0, ct)


_PLAIN = (type(None), np.ndarray)  # adjoints the in-place paths may touch (not tracers)


def _zeros_like(a: Any) -> Any:
    from wengert.numpy._elementwise import zeros_like  # lazily: the numpy layer sits above

    return zeros_like(a)
