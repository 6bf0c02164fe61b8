"""MATLAB's ``dlaccelerate``: cache the trace of a deep-learning function and replay it.

The first call with a new input pattern runs the function on a private reverse-mode trace and
keeps its Wengert list as a flat program of primitive applications (with the gradient sweeps
that ``dlgradient`` made inside it); later calls with the same pattern run that program with
the primitives' NumPy implementations in a tight loop, without the function's Python.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from wengert._saved import SavedArrayMutatedError, _call_traced, _release
from wengert.core import (
    Primitive,
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
from wengert.dl._trace import (
    _Frame,
    _frames,
    _own_primal,
    _push,
    _rewrapped_tape,
    _Shim,
    _untrace,
    _walk,
)

__all__ = ["dlaccelerate", "AcceleratedFunction"]

_entry = tuple.__new__

# A tape entry standing for one dlgradient call inside a captured function: its outputs are
# the gradients; it has no derivative (gradients without enable_higher_derivatives are not
# traced).  The replay copies them from the recorded sweep, or sweeps the replayed entries.
_GRAD = Primitive("dlgradient", None, multiple_results=True)


class _Direct(Exception):
    """The call cannot use the cache; run the function itself (the message says why)."""


# ---------------------------------------------------------------------------------------------
# Keys: the input pattern
# ---------------------------------------------------------------------------------------------


def _digest(a: np.ndarray) -> bytes:
    b = np.ascontiguousarray(a)
    if b.dtype.hasobject:
        raise _Direct("an argument is a NumPy object array")
    return hashlib.blake2b(b.view(np.uint8).reshape(-1), digest_size=16).digest()


class _Pattern:
    """Walks the arguments once: the cache key, the distinct dlarray data in walk order, and
    whether they are traced by the dlfeval in progress."""

    __slots__ = ("values", "ids", "frame", "traced", "refs")

    def __init__(self) -> None:
        self.values: list = []
        self.ids: dict = {}
        self.frame: _Frame | None = None
        self.traced = False
        self.refs: list = []  # objects keyed by identity, kept alive while cached

    def dl(self, x: dlarray) -> tuple:
        v = x._value
        slot = self.ids.get(id(v))
        if slot is not None:
            return ("same", slot, x._fmt)
        if isinstance(v, Tracer):
            if self.frame is None:
                frames = _frames.get()
                self.frame = frames[-1] if frames else None
            f = self.frame
            if (
                f is None
                or f.capture is not None
                or type(v) is not VJPTracer
                or v._trace is not f.trace
                or v.idx not in f.inputs
                or type(v.primal) is not np.ndarray
            ):
                raise _Direct(
                    "a dlarray argument is traced by something other than the innermost "
                    "dlfeval's own inputs (a value computed inside dlfeval, a nested "
                    "transformation, or another accelerated function)"
                )
            self.traced = True
            state = "t"
            pv = v.primal
        elif isinstance(v, np.ndarray):
            state, pv = "p", v
        else:
            raise _Direct(f"a dlarray holds a {type(v).__name__}")
        self.ids[id(v)] = len(self.values)
        self.values.append(v)
        return ("dl", pv.shape, pv.dtype.str, x._fmt, state)

    def diff(self) -> set:
        """Positions of the data that dlfeval traces (dlgradient may differentiate them)."""
        return {k for k, v in enumerate(self.values) if isinstance(v, Tracer)}

    def key(self, obj: Any) -> Any:
        if isinstance(obj, dlarray):
            return self.dl(obj)
        t = type(obj)
        if t in (int, bool, str, bytes, type(None)):
            return (t, obj)
        if t is float:
            return (t, obj.hex())
        if t is complex:
            return (t, obj.real.hex(), obj.imag.hex())
        if isinstance(obj, np.ndarray):
            return ("nd", obj.shape, obj.dtype.str, _digest(obj))
        if isinstance(obj, np.generic):
            return ("ng", obj.dtype.str, _digest(np.asarray(obj)))
        if isinstance(obj, Tracer):
            raise _Direct("an argument is a traced value outside a dlarray")
        if isinstance(obj, dict):
            return (t, tuple((k, self.key(v)) for k, v in obj.items()))
        if isinstance(obj, (list, tuple)):
            return (t, tuple(self.key(v) for v in obj))
        if not isinstance(obj, type) and getattr(t, "_map_dlarrays", None) is not None:
            hook = getattr(obj, "_dl_cache_key", None)
            arch = hook() if hook is not None else _known_key(obj, self.refs)
            if arch is None:  # an unknown container: this very object
                self.refs.append(obj)
                arch = ("id", id(obj))
            inner: list = []

            def collect(x: dlarray) -> dlarray:
                inner.append(self.dl(x))
                return x

            obj._map_dlarrays(collect)
            return ("obj", t, arch, tuple(inner))
        try:
            hash(obj)
        except TypeError:
            self.refs.append(obj)
            return ("id", t, id(obj))
        return ("v", t, obj)


def _known_key(obj: Any, refs: list) -> Any:
    """The architecture part of the key for wengert.dl's own containers (a network: its layer
    objects, shared by the copies that updates make; a table: its row names), or None.  A
    container type may define ``_dl_cache_key()`` instead."""
    from wengert.dl import _network  # the network module sits beside this one: lazily

    if isinstance(obj, _network.Table):
        return ("table", tuple(obj.layer), tuple(obj.parameter))
    if isinstance(obj, _network.dlnetwork):
        layers = obj.layers
        refs.append(layers)
        return ("net", tuple(id(ly) for ly in layers), obj.initialized, str(obj.dtype))
    return None


# ---------------------------------------------------------------------------------------------
# Capture: run the function on a private trace and keep its program
# ---------------------------------------------------------------------------------------------


def _proxy(prim: Primitive, k: int, log: dict | None, trace: VJPTrace) -> Primitive:
    """A copy of ``prim`` for the core sweep during a capture: its VJP rules are wrapped to
    note what each call records (under ``(k, argument)`` in ``log``); the in-place scatter
    path is left out so that every rule runs and is seen."""
    p = object.__new__(type(prim))
    for cls in type(prim).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name != "__weakref__" and hasattr(prim, name):
                setattr(p, name, getattr(prim, name))
    p.vjp_add_into = None  # (through the property, so the flags derived from it follow)
    if log is None:
        return p

    def wrap(rule: Callable, i: int) -> Callable:
        def logged(g, ans, *primals, **params):
            start = len(trace.tape)
            ct = rule(g, ans, *primals, **params)
            log[(k, i)] = (rule, g, ct, start, len(trace.tape))
            return ct

        return logged

    p.vjps = tuple(None if r is None else wrap(r, i) for i, r in enumerate(prim.vjps))
    return p


class _Recorder:
    """Watches one captured call: copies the tape as it grows and notes each dlgradient."""

    def __init__(self, trace: VJPTrace, frame: _Frame) -> None:
        self.trace = trace
        self.frame = frame
        self.entries: list = []
        self.copied = 0
        self.grads: dict = {}  # out value id of a _GRAD entry -> (seeds, targets, n)
        self.backward: set = set()  # positions of entries recorded by gradient sweeps
        self.consumed = False  # a dlgradient without retain_data ended the trace
        self.ninputs = 0
        self.diff_inputs: set = set()  # input ids that dlgradient may differentiate
        # (entry position, argument) -> (rule, g, ct, first and last+1 entry it recorded)
        self.log: dict = {}

    def _logged_sweep(self, frame: _Frame, seeds: list, targets: list, higher: bool) -> list:
        """The create-graph sweep, noting which tape entries each VJP rule call records (so a
        rule whose recorded work depends on the values can be called again at replay)."""
        trace = self.trace
        tape = _rewrapped_tape(frame)
        log = None if higher else self.log  # only plain gradients' rule calls are replaced
        proxied = [e._replace(prim=_proxy(e.prim, k, log, trace)) for k, e in enumerate(tape)]
        adj = backward(_Shim(proxied, trace.nvalues), seeds, retain=True)
        return [adj[t] for t in targets]

    def sync(self) -> None:
        tape = self.trace.tape
        self.entries.extend(tape[self.copied :])
        self.copied = len(tape)

    def gradient(self, frame: _Frame, seeds: list, targets: list, retain: bool, higher: bool):
        """dlgradient inside the captured function.  The sweep is always recorded on the
        trace (create-graph), so the program can run the backward pass with NumPy only; for a
        gradient without ``enable_higher_derivatives`` those entries are marked, and the
        results reach the function through a ``_GRAD`` entry with no derivative, so nothing
        differentiates through them.  If the recorded sweep turns out to depend on the values
        (rules that build masks from their inputs), the program sweeps with the rules instead.
        """
        for t in targets:
            if t < self.ninputs and t not in self.diff_inputs:
                raise RuntimeError(
                    "dlgradient: x is not traced: this argument of the accelerated function "
                    "was not traced by dlfeval (it was not one of dlfeval's dlarray inputs)."
                )
        self.sync()
        n = len(self.entries)
        adj = self._logged_sweep(frame, seeds, targets, higher)
        self.sync()
        if higher:  # the sweep's entries are ordinary operations of the program
            return adj
        self.backward.update(range(n, len(self.entries)))
        if not retain:  # as a sweep without retain_data: the trace is used up
            frame.swept = True
            self.trace.tape = []
            frame._rewrapped = []
            self.copied = 0
            self.consumed = True
        live = [k for k, g in enumerate(adj) if g is not None]
        if not live:
            return adj
        below = tuple(_own_primal(adj[k], self.trace) for k in live)
        tracers = self.trace.record(_GRAD, [adj[k] for k in live], [], below, {})
        self.grads[tracers[0].idx] = (seeds, [targets[k] for k in live], n)
        out = list(adj)
        for k, t in zip(live, tracers):
            out[k] = t
        return out


class _Uncacheable:
    """A cache entry for a pattern whose trace cannot be replayed: the function runs itself."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _const(c: Any) -> Any:
    """A private copy of a constant kept in a program (values are frozen at capture)."""
    if isinstance(c, Tracer):
        raise _Direct("the function uses a traced value that is not one of its arguments")
    t = type(c)
    if t is np.ndarray:
        return c.copy()
    if t in (list, tuple):
        return t(_const(v) for v in c)
    if t is dict:
        return {k: _const(v) for k, v in c.items()}
    return c


class _Program:
    """A captured call as a flat list of operations over numbered values (the trace's ids)."""

    __slots__ = (
        "ops", "nvalues", "ninputs", "template", "dl_out", "raw_out", "consumes", "needs", "mode",
        "op_entry", "grad_slots", "fallback",
    )  # fmt: skip

    def __init__(
        self, rec: _Recorder, out: Any, ninputs: int, compiled: bool, calls: frozenset = frozenset()
    ) -> None:
        """``compiled``: run the recorded gradient sweeps as operations, except the VJP rule
        calls in ``calls`` (keys of ``rec.log``), which are called again at replay; else sweep
        the replayed entries with the VJP rules at each dlgradient."""
        rec.sync()
        trace = rec.trace
        ops: list = []
        op_entry: list = []  # the tape position each operation comes from
        needs: set = set()  # operations whose arguments a rule or a sweep reads
        forward_index: list = []  # position in ``ops`` of each tape entry that a sweep replays
        starts: dict = {}
        skip: set = set()
        for key in calls:
            rule, g, ct, a, b = rec.log[key]
            if not (type(ct) is VJPTracer and ct._trace is trace):
                raise _Direct("a rule call to replace computed a constant")
            starts.setdefault(a, []).append(key)
            skip.update(range(a, b))
        hidden: set = set()  # values made inside the replaced rule calls
        dests: set = set()
        grad_slots: list = []
        quiet = False  # inside a recorded gradient sweep: NaNs there are the rules' business
        for pos, e in enumerate(rec.entries):
            if compiled and (pos in rec.backward) != quiet:
                quiet = not quiet
                ops.append(("quiet", quiet))
                op_entry.append(None)
            for key in starts.get(pos, ()):
                rule, g, ct, a, b = rec.log[key]
                k, i = key
                j = forward_index[k]
                needs.add(j)
                gsrc = (True, g.idx) if type(g) is VJPTracer and g._trace is trace else (False, _const(g))
                prim0 = rec.entries[k][0]
                p0 = {kk: _const(v) for kk, v in rec.entries[k][1].items()}
                ops.append(("rule", rule, prim0, p0, j, gsrc, ct.idx))
                op_entry.append(None)
                dests.add(ct.idx)
            prim, params, primals, ans, links, out_id = e
            if pos in skip:
                forward_index.append(None)
                n_out = len(ans) if prim.multiple_results else 1
                hidden.update(range(out_id, out_id + n_out))
                continue
            if prim is _GRAD:
                forward_index.append(None)
                op_entry.append(None)
                grad_slots.extend(range(out_id, out_id + len(ans)))
                if compiled:
                    src = [
                        (True, g.idx) if type(g) is VJPTracer and g._trace is trace else (False, _const(g))
                        for g in primals
                    ]
                    ops.append(("copy", src, out_id))
                    continue
                seeds, targets, n = rec.grads[out_id]
                prefix = [j for j in forward_index[:n] if j is not None]
                needs.update(prefix)
                seed = [(vid, s.copy()) for vid, s in seeds]
                ops.append(("grad", seed, tuple(targets), tuple(prefix), out_id))
                continue
            if not compiled and pos in rec.backward:
                forward_index.append(None)
                continue
            template = list(primals)
            linked = {i for i, _ in links}
            for i in range(len(template)):
                template[i] = None if i in linked else _const(template[i])
            p = {k: _const(v) for k, v in params.items()}
            nout = len(ans) if prim.multiple_results else 0
            forward_index.append(len(ops))
            op_entry.append(pos)
            ops.append(("op", prim, p, template, tuple(links), out_id, nout))
        if quiet:
            ops.append(("quiet", False))
            op_entry.append(None)
        hidden -= dests
        if hidden:
            used = set()
            for op in ops:
                if op[0] == "op":
                    used.update(v for _, v in op[4])
                elif op[0] == "copy":
                    used.update(v for slot, v in op[1] if slot)
                elif op[0] == "rule" and op[5][0]:
                    used.add(op[5][1])
            if used & hidden:
                raise _Direct("a value made inside a rule call is used elsewhere")
        self.op_entry = op_entry
        self.grad_slots = grad_slots
        self.fallback: _Program | None = None
        self.ops = ops
        self.needs = needs
        self.mode = None if not rec.grads else ("compiled" if compiled else "rules")
        if compiled and calls:
            self.mode = f"compiled, {len(calls)} rule call(s)"
        self.nvalues = trace.nvalues
        self.ninputs = ninputs
        self.consumes = rec.consumed
        # outputs: which dlarrays / raw leaves of the returned structure are program values
        dl_out: list = []
        raw_out: list = []

        def dl(x: dlarray) -> dlarray:
            v = x._value
            if type(v) is VJPTracer and v._trace is trace:
                dl_out.append(v.idx)
            elif isinstance(v, Tracer):
                raise _Direct("the function returns a traced value that is not computed from its arguments")
            else:
                dl_out.append(None)
            return x

        def leaf(v: Any) -> Any:
            if type(v) is VJPTracer and v._trace is trace:
                raw_out.append(v.idx)
            elif isinstance(v, Tracer):
                raise _Direct("the function returns a traced value that is not computed from its arguments")
            else:
                raw_out.append(None)
            return v

        _walk(out, dl, leaf)
        self.dl_out = dl_out
        self.raw_out = raw_out
        self.template = _walk(
            out,
            lambda x: _wrap(_const_leaf(primal_value(x._value)), x._fmt),
            lambda v: _const_leaf(primal_value(v)),
        )

    # -- replay ---------------------------------------------------------------------------
    def run(self, inputs: list, bind: bool) -> list:
        """Execute the program on ``inputs`` (one value per input id); returns all values."""
        vals: list = [None] * self.nvalues
        vals[: len(inputs)] = inputs
        err = np.geterr()
        try:
            self._run(vals, bind, err)
        finally:
            np.seterr(**err)
        return vals

    def _run(self, vals: list, bind: bool, err: dict) -> None:
        needs = self.needs
        saved: dict = {}
        for k, op in enumerate(self.ops):
            if op[0] == "op":
                _, prim, params, template, links, out, nout = op
                args = template.copy()
                for i, vid in links:
                    args[i] = vals[vid]
                if bind:
                    ans = prim(*args, **params)
                elif params:
                    ans = prim.impl(*args, **params)
                else:
                    ans = prim.impl(*args)
                if nout:
                    vals[out : out + nout] = ans
                else:
                    vals[out] = ans
                if k in needs:
                    saved[k] = args
            elif op[0] == "rule":
                _, rule, prim, params, j, (slot, g), dest = op
                o, nout = self.ops[j][5], self.ops[j][6]
                ans = tuple(vals[o : o + nout]) if nout else vals[o]
                g = vals[g] if slot else g
                vals[dest] = rule(g, ans, *saved[j], **params)
            elif op[0] == "quiet":
                if op[1]:
                    np.seterr(invalid="ignore", divide="ignore")
                else:
                    np.seterr(**err)
            elif op[0] == "copy":
                _, src, out = op
                for m, (slot, v) in enumerate(src):
                    vals[out + m] = vals[v] if slot else (v.copy() if type(v) is np.ndarray else v)
            else:
                _, seeds, targets, prefix, out = op
                tape = []
                for j in prefix:
                    _, prim, params, _t, links, o, nout = self.ops[j]
                    a = tuple(vals[o : o + nout]) if nout else vals[o]
                    tape.append(_entry(TapeEntry, (prim, params, saved[j], a, list(links), o)))
                adj = backward(_Shim(tape, self.nvalues), seeds, retain=True)
                for m, t in enumerate(targets):
                    g = adj[t]
                    if g is None:
                        g = np.zeros_like(primal_value(vals[t]))
                    vals[out + m] = g

    def outputs(self, vals: list) -> Any:
        dl_it = iter(self.dl_out)
        raw_it = iter(self.raw_out)

        def dl(x: dlarray) -> dlarray:
            vid = next(dl_it)
            if vid is None:
                v = x._value
                return _wrap(v.copy() if type(v) is np.ndarray else v, x._fmt)
            return _wrap(vals[vid], x._fmt)

        def leaf(v: Any) -> Any:
            vid = next(raw_it)
            if vid is None:
                return v.copy() if type(v) is np.ndarray else v
            return vals[vid]

        return _walk(self.template, dl, leaf)

    # -- comparison with the check run ------------------------------------------------------
    def _constants(self) -> list:
        """The output values that do not come from the program (frozen at capture)."""
        dl_it, raw_it = iter(self.dl_out), iter(self.raw_out)
        out: list = []

        def dl(x: dlarray) -> dlarray:
            if next(dl_it) is None:
                out.append(x)
            return x

        def leaf(v: Any) -> Any:
            if next(raw_it) is None:
                out.append(v)
            return v

        _walk(self.template, dl, leaf)
        return out

    def difference(self, other: _Program) -> str | None:
        """Why this program and ``other`` (the same function on altered inputs) differ, or None."""
        return self.compare(other)[0]

    def compare(self, other: _Program) -> tuple[str | None, set | None]:
        """``(reason, positions)``: the first difference from ``other`` (None if none), and the
        tape positions of all operations that differ only in a constant or parameter (None if
        something else differs too)."""
        if len(self.ops) != len(other.ops) or self.nvalues != other.nvalues:
            return (
                "the sequence of operations depends on the input values (Python control flow "
                "on the data, e.g. `if` on a value)",
                None,
            )
        first = None
        positions: set | None = set()
        for k, (a, b) in enumerate(zip(self.ops, other.ops)):
            why = None
            if a[0] != b[0]:
                why, positions = f"operation {k} depends on the input values", None
            elif a[0] == "quiet":
                if a != b:
                    why, positions = f"operation {k} depends on the input values", None
            elif a[0] == "copy":
                if not _same(a[1], b[1]) or a[2] != b[2]:
                    why, positions = f"the gradient at operation {k} depends on the input values", None
            elif a[0] == "grad":
                if a[2:] != b[2:]:
                    why, positions = f"the dlgradient call at operation {k} depends on the input values", None
            elif a[0] == "rule":
                if (
                    a[1] is not b[1]
                    or a[2] is not b[2]
                    or a[4] != b[4]
                    or a[6] != b[6]
                    or not _same(a[3], b[3])
                    or not _same(a[5], b[5])
                ):
                    why, positions = f"the rule call at operation {k} depends on the input values", None
            else:
                name = a[1].name
                if a[1] is not b[1] or a[4] != b[4] or a[5] != b[5] or a[6] != b[6]:
                    why = f"operation {k} ('{name}') depends on the input values (control flow)"
                    positions = None
                elif not _same(a[2], b[2]):
                    why = (
                        f"a parameter of operation {k} ('{name}') depends on the input values "
                        "(an index or mask computed from them, or a random number)"
                    )
                else:
                    for i, (c, d) in enumerate(zip(a[3], b[3])):
                        if not _same(c, d):
                            why = (
                                f"argument {i} of operation {k} ('{name}') is computed from the "
                                "input values outside the trace (a mask, an index, extractdata, "
                                "Python control flow on a value, or a random number), so "
                                "replaying it would freeze it"
                            )
                            break
                if why is not None and positions is not None:
                    positions.add(self.op_entry[k])
            if why is not None and first is None:
                first = why
        if self.dl_out != other.dl_out or self.raw_out != other.raw_out:
            return first or "the structure of the outputs depends on the input values", None
        if not _same(self._constants(), other._constants()):
            why = (
                "an output is computed from the input values outside the trace (extractdata, "
                "a Python number, or a random number), so replaying it would freeze it"
            )
            return first or why, None
        return first, positions


def _const_leaf(v: Any) -> Any:
    return v.copy() if type(v) is np.ndarray else v


def _leaves(obj: Any) -> list:
    out: list = []

    def dl(x: dlarray) -> dlarray:
        out.append(x._value)
        return x

    def leaf(v: Any) -> Any:
        out.append(v)
        return v

    _walk(obj, dl, leaf)
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal values (arrays by dtype, shape and content, NaNs equal; containers deeply)."""
    if a is b:
        return True
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        a2, b2 = np.asarray(a), np.asarray(b)
        if a2.dtype != b2.dtype or a2.shape != b2.shape:
            return False
        if a2.dtype.hasobject:
            return all(_same(x, y) for x, y in zip(a2.ravel(), b2.ravel()))
        return bool(np.array_equal(a2, b2, equal_nan=a2.dtype.kind in "fc"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dlarray) and isinstance(b, dlarray):
        return a._fmt == b._fmt and _same(a._value, b._value)
    try:
        eq = a == b
        if isinstance(eq, bool):
            return eq or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)
        return bool(eq)
    except Exception:
        return False


def _altered(v: Any) -> np.ndarray:
    """The check run's input: the data reversed, negated, scaled and shifted (masks, signs,
    argmax positions and magnitudes all change), in the same dtype and shape."""
    v = np.asarray(primal_value(v))
    r = np.flip(v.reshape(-1)).reshape(v.shape)
    if v.dtype.kind == "b":
        return ~r
    if v.dtype.kind in "fc":
        return (0.25 - 0.75 * r).astype(v.dtype)
    return r.copy()


def _capture(fun: Callable, args: tuple, kwargs: dict, inputs: list, diff: set):
    """Run ``fun`` with its dlarrays' data replaced by ``inputs`` (in walk order), each a fresh
    input of a private trace; ``diff`` holds the positions of the inputs that dlfeval traces
    (those dlgradient may differentiate with respect to).  Returns the outputs (untraced),
    the traced outputs and the recorder."""
    trace = new_trace(VJPTrace, True)  # keep every value: the program needs them all
    frame = _Frame(trace, grad_ok=bool(diff))
    rec = _Recorder(trace, frame)
    frame.capture = rec
    tracers = [trace.new_input(v) for v in inputs]
    frame.inputs.update(t.idx for t in tracers)
    rec.ninputs = len(inputs)
    rec.diff_inputs = {tracers[k].idx for k in diff}
    seen: dict = {}

    def sub(x: dlarray) -> dlarray:
        v = x._value
        k = seen.get(id(v))
        if k is None:
            k = seen[id(v)] = len(seen)
        return _wrap(tracers[k], x._fmt)

    token = _push(frame)
    try:
        try:
            new_args, new_kwargs = _walk((args, kwargs), sub, None)
            out = _call_traced(fun, tuple(new_args), new_kwargs, trace, {})
        finally:
            end_trace(trace)
            _frames.reset(token)
        return _untrace(out, trace), out, rec
    finally:
        _release(trace)


def _choose(rec: _Recorder, raw: Any, rec2: _Recorder, raw2: Any, n: int) -> Any:
    """The program to cache, checked against the run on altered inputs: the backward sweeps
    compiled to operations if they do not depend on the values; else compiled with the rule
    calls that do (masks) called again at replay; else the sweeps run with the rules; else
    an :class:`_Uncacheable` saying why."""

    def build(r: _Recorder, o: Any, compiled: bool, calls: frozenset = frozenset()) -> Any:
        try:
            return _Program(r, o, n, compiled, calls)
        except _Direct as e:
            return str(e)

    rules = build(rec, raw, False)
    if not rec.grads:
        if isinstance(rules, str):
            return _Uncacheable(rules)
        why = rules.difference(build(rec2, raw2, False))
        return rules if why is None else _Uncacheable(why)
    rules2 = build(rec2, raw2, False)
    if isinstance(rules, str) or isinstance(rules2, str):
        return _Uncacheable(rules if isinstance(rules, str) else rules2)
    why = rules.difference(rules2)
    if why is not None:
        return _Uncacheable(why)
    best = rules
    comp, comp2 = build(rec, raw, True), build(rec2, raw2, True)
    if isinstance(comp, _Program) and isinstance(comp2, _Program):
        why, positions = comp.compare(comp2)
        if why is None:
            best = comp
        elif positions:
            calls = set()
            for key, (_r, _g, _ct, a, b) in rec.log.items():
                if any(a <= p < b for p in positions):
                    calls.add(key)
            covered = all(any(rec.log[c][3] <= p < rec.log[c][4] for c in calls) for p in positions)
            if covered and calls == {
                key for key, v in rec2.log.items() if key in calls and v[3:] == rec.log[key][3:]
            }:
                calls = frozenset(calls)
                hyb, hyb2 = build(rec, raw, True, calls), build(rec2, raw2, True, calls)
                if isinstance(hyb, _Program) and isinstance(hyb2, _Program):
                    if hyb.difference(hyb2) is None:
                        best = hyb
    if best is not rules:
        best.fallback = rules  # for a replay whose compiled backward meets a NaN
    return best


# ---------------------------------------------------------------------------------------------
# The accelerated function
# ---------------------------------------------------------------------------------------------


class AcceleratedFunction:
    """A function with a cache of its traces, as MATLAB's ``AcceleratedFunction``.

    Calling it looks up the input pattern (see :func:`dlaccelerate`); a hit replays the
    cached program, a miss runs the function once on a private trace, checks the trace once
    more on altered inputs, and caches it.  Properties (MATLAB name in brackets):

    * ``function`` [Function]: the underlying function;
    * ``enabled`` [Enabled]: False calls the function directly, bypassing the cache;
    * ``cache_size`` [CacheSize]: the most traces kept (default 50); when the cache is full,
      new input patterns run the function directly;
    * ``hit_rate`` [HitRate]: percentage of calls that replayed a cached trace;
    * ``occupancy`` [Occupancy]: percentage of ``cache_size`` in use;
    * ``check_mode`` [CheckMode]: "none" (default) or "tolerance": every replay is compared
      with a direct evaluation, and a warning is given when they differ by more than
      ``check_tolerance`` [CheckTolerance] (default 1e-4, relative and absolute);
    * ``clear_cache()`` [clearCache]: forget every trace and reset the statistics.
    """

    def __init__(
        self,
        fun: Callable,
        *,
        enabled: bool = True,
        cache_size: int = 50,
        check_mode: str = "none",
        check_tolerance: float = 1e-4,
    ) -> None:
        if not callable(fun):
            raise TypeError(f"dlaccelerate: expected a function, got {type(fun).__name__}")
        self._fun = fun
        self.enabled = bool(enabled)
        self.cache_size = cache_size
        self.check_mode = check_mode
        self.check_tolerance = check_tolerance
        self._cache: dict = {}
        self._hits = 0
        self._misses = 0
        self._warned: set = set()
        self.__wrapped__ = fun
        self.__name__ = getattr(fun, "__name__", type(fun).__name__)
        self.__doc__ = getattr(fun, "__doc__", None)

    # properties ---------------------------------------------------------------------------
    @property
    def function(self) -> Callable:
        return self._fun

    @property
    def cache_size(self) -> int:
        return self._cache_size

    @cache_size.setter
    def cache_size(self, n: int) -> None:
        n = int(n)
        if n < 0:
            raise ValueError(f"cache_size must be a nonnegative integer, got {n}")
        self._cache_size = n

    @property
    def check_mode(self) -> str:
        return self._check_mode

    @check_mode.setter
    def check_mode(self, mode: str) -> None:
        if mode not in ("none", "tolerance"):
            raise ValueError(f"check_mode must be 'none' or 'tolerance', got {mode!r}")
        self._check_mode = mode

    @property
    def hit_rate(self) -> float:
        calls = self._hits + self._misses
        return 100.0 * self._hits / calls if calls else 0.0

    @property
    def occupancy(self) -> float:
        return 100.0 * len(self._cache) / self._cache_size if self._cache_size else 100.0

    @property
    def num_traces(self) -> int:
        """How many input patterns are cached (``occupancy`` as a count)."""
        return len(self._cache)

    @property
    def hits(self) -> int:
        return self._hits

    @property
    def misses(self) -> int:
        return self._misses

    def clear_cache(self) -> None:
        """Forget every cached trace and reset ``hit_rate`` (MATLAB's ``clearCache``)."""
        self._cache.clear()
        self._hits = 0
        self._misses = 0

    def cache_info(self) -> list[dict]:
        """One dict per cached input pattern: whether it replays (and, if not, why), its
        number of operations, and how it runs its dlgradient sweeps: ``"compiled"`` (as
        recorded operations) or ``"rules"`` (the VJP rules at replay, used when some rule
        builds a mask from its inputs, e.g. relu)."""
        out = []
        for entry, _refs in self._cache.values():
            if isinstance(entry, _Uncacheable):
                out.append({"replayable": False, "reason": entry.reason})
            else:
                out.append(
                    {"replayable": True, "operations": len(entry.ops), "backward": entry.mode}
                )
        return out

    def __repr__(self) -> str:
        return (
            f"AcceleratedFunction(function={self.__name__}, enabled={self.enabled}, "
            f"cache_size={self._cache_size}, hit_rate={self.hit_rate:.4g}, "
            f"occupancy={self.occupancy:.4g}, check_mode={self._check_mode!r}, "
            f"check_tolerance={self.check_tolerance:g})"
        )

    # calling ------------------------------------------------------------------------------
    def _warn(self, reason: str) -> None:
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(
                f"dlaccelerate({self.__name__}): this input pattern cannot be replayed and runs "
                f"the function directly: {reason}.",
                RuntimeWarning,
                stacklevel=3,
            )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.enabled:
            return self._fun(*args, **kwargs)
        pat = _Pattern()
        try:
            key = pat.key((args, kwargs))
        except _Direct as e:
            self._misses += 1
            self._warn(str(e))
            return self._fun(*args, **kwargs)
        hit = self._cache.get(key)
        if hit is None:
            self._misses += 1
            if len(self._cache) >= self._cache_size:
                self._warn(f"the cache is full (cache_size={self._cache_size})")
                return self._fun(*args, **kwargs)
            return self._first_call(key, pat, args, kwargs)
        entry = hit[0]
        if isinstance(entry, _Uncacheable):
            self._misses += 1
            return self._fun(*args, **kwargs)
        self._hits += 1
        out = self._replay(entry, pat)
        if self._check_mode == "tolerance":
            self._check(out, pat, args, kwargs)
        return out

    def _first_call(self, key: Any, pat: _Pattern, args: tuple, kwargs: dict) -> Any:
        diff = pat.diff()
        try:
            out, raw, rec = _capture(self._fun, args, kwargs, pat.values, diff)
        except SavedArrayMutatedError as e:
            # the trace keeps every constant, so it guards more arrays than a direct call does
            entry = _Uncacheable(f"the function writes in place to an array it used ({e})")
            self._cache[key] = (entry, pat.refs)
            self._warn(entry.reason)
            return self._fun(*args, **kwargs)
        altered = [_altered(v) for v in pat.values]
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                _, raw2, rec2 = _capture(self._fun, args, kwargs, altered, diff)
        except Exception as e:  # noqa: BLE001 - any failure means: cannot verify
            entry: Any = _Uncacheable(
                f"the check run on altered inputs raised {type(e).__name__}: {e}"
            )
        else:
            entry = _choose(rec, raw, rec2, raw2, len(pat.values))
        if isinstance(entry, _Uncacheable):
            self._warn(entry.reason)
        self._cache[key] = (entry, pat.refs)
        if rec.consumed and pat.traced:
            _consume(pat.frame)
        return out

    def _replay(self, prog: _Program, pat: _Pattern) -> Any:
        bind = pat.traced and not prog.consumes
        if bind:
            inputs = pat.values
        else:
            inputs = [primal_value(v) for v in pat.values]
        vals = prog.run(inputs, bind)
        if prog.fallback is not None and not _finite(vals, prog.grad_slots):
            # the rules' NaN safety (0·∞ → 0 where the cotangent is 0) is not in the compiled
            # operations: sweep with the rules instead
            vals = prog.fallback.run(inputs, bind)
        if prog.consumes and pat.traced:
            _consume(pat.frame)
        return prog.outputs(vals)

    def _check(self, out: Any, pat: _Pattern, args: tuple, kwargs: dict) -> None:
        plain = [primal_value(v) for v in pat.values]
        ref, _, _ = _capture(self._fun, args, kwargs, plain, pat.diff())
        got, want = _leaves(out), _leaves(ref)
        tol = self.check_tolerance
        for a, b in zip(got, want):
            try:
                ok = np.allclose(primal_value(a), primal_value(b), rtol=tol, atol=tol, equal_nan=True)
            except (TypeError, ValueError):
                ok = _same(a, b)
            if not ok:
                warnings.warn(
                    f"dlaccelerate({self.__name__}): the cached trace gives results that differ "
                    f"from the function by more than check_tolerance={tol:g}; the function may "
                    "depend on values in ways the trace freezes (control flow, random numbers, "
                    "side effects). Call clear_cache() or disable acceleration for it.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return


def _finite(vals: list, slots: list) -> bool:
    for vid in slots:
        v = primal_value(vals[vid])
        if isinstance(v, (np.ndarray, np.generic)) and v.dtype.kind in "fc" and not np.isfinite(v).all():
            return False
    return True


def _consume(frame: _Frame | None) -> None:
    """The accelerated function's dlgradient (without retain_data) ended the dlfeval's trace."""
    if frame is not None:
        frame.swept = True
        frame.trace.tape = []
        frame._rewrapped = []


def dlaccelerate(fun: Callable, **options: Any) -> AcceleratedFunction:
    """An :class:`AcceleratedFunction` that caches the traces of ``fun`` (MATLAB's
    ``dlaccelerate``), typically a model-loss function evaluated by ``dlfeval``::

        acc = dlaccelerate(model_loss)
        loss, grads = dlfeval(acc, net, X, T)

    The cache key is the input pattern: the structure of the arguments; for each dlarray its
    shape, dtype, labels and whether dlfeval traces it; for networks their layers and the
    shapes of their learnables; for every other argument (plain NumPy arrays, numbers,
    strings, options) its value, as in MATLAB.  Arguments differing only in dlarray values
    reuse the trace.

    The trace holds the forward operations and the ``dlgradient`` sweeps made inside
    ``fun``, recorded as operations too (as with ``enable_higher_derivatives``), so a replay
    computes the loss and the gradients with NumPy calls only.  A VJP rule that builds a mask
    from its inputs (ReLU, max-pooling, ``abs``...) is called again at replay instead of
    replaying its frozen mask; if that cannot be arranged, the replay sweeps with the rules at
    each dlgradient.  ``cache_info()`` says which.  Results equal a direct call's (bit for bit
    in the tests; the compiled sweep may differ in the last bit where contributions are summed
    in another order); a compiled sweep that meets a NaN is redone with the rules, which keep
    their NaN safety.

    Limitations, as MATLAB's (and how they are detected): Python control flow on data
    values, random numbers and values read out of the trace (``extractdata``, masks and
    indices computed with plain NumPy) are frozen into the trace, and so are values of the
    enclosing scope (``check_mode="tolerance"`` notices when they change); side effects (printing, writing files, changing globals) happen only when a trace
    is made.  Each new pattern is therefore traced twice, the second time on altered inputs
    (the data reversed, negated and shifted); if the two traces differ the pattern is marked
    not replayable (a warning says why) and ``fun`` runs directly for it.  Inside
    ``dlfeval``, a replay whose function took its own gradient without ``retain_data`` runs
    on plain arrays and ends the dlfeval's trace (as that dlgradient does); otherwise its
    operations are recorded on the dlfeval's trace, so ``dlgradient`` can differentiate the
    accelerated function's outputs (an accelerated model function inside a model loss).
    Arguments traced by anything else than the innermost dlfeval's own inputs run ``fun``
    directly.

    ``options``: ``enabled``, ``cache_size``, ``check_mode``, ``check_tolerance`` (see
    :class:`AcceleratedFunction`).
    """
    if isinstance(fun, AcceleratedFunction):
        fun = fun.function
    return AcceleratedFunction(fun, **options)
