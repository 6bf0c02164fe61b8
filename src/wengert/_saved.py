"""Guards for the arrays a tape saves: writing to one in place would silently corrupt the
derivative, so while tracing they are read-only, a failed write is explained (which array,
which operation saved it), and ``vjp`` fingerprints what stays reachable after it returns.
"""

from __future__ import annotations

import ast
import linecache
import textwrap
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wengert.core import VJPTrace, VJPTracer, _trace_stack

# The tape keeps references to the arrays it needs later: the inputs, the constants the
# function used, the intermediate values.  Writing to one of them in place would make the
# derivative silently wrong.  While a function is being traced, the reverse-mode trace makes
# the arrays it saves read-only (VJPTrace.locked), so a write raises at once; the error is
# rewritten here to say which operation saved the array.  When the trace is done the arrays are
# writable again; ``vjp`` then keeps a fingerprint (shape and CRC-32) of each array the user
# can reach, and ``vjp_fn`` refuses to sweep a tape whose saved arrays have changed.


class SavedArrayMutatedError(ValueError):
    """An array saved for the backward sweep was changed in place."""


def _release(trace: VJPTrace) -> None:
    """Stop guarding the arrays ``trace`` made read-only.

    If an enclosing reverse-mode trace is still in progress it may have saved the same arrays
    (a constant is locked only by the first trace that meets it), so the guard passes to it;
    otherwise the arrays become writable again, the last locked first (a view cannot be made
    writable while its base is still read-only).
    """
    if not trace.locked:
        return
    for t in reversed(_trace_stack.get()):
        if isinstance(t, VJPTrace) and t is not trace and t.active:
            t.locked.extend(trace.locked)
            trace.locked = []
            return
    locked, trace.locked = trace.locked, []
    for a, _ in reversed(locked):
        try:
            a.flags.writeable = True
        except ValueError:  # pragma: no cover - its base is read-only for a reason of its own
            pass


def _consumers(trace: VJPTrace) -> tuple[dict, dict]:
    """``id(array) -> name of the first tape operation that saved it``, and
    ``value id -> name of the operation that produced it``."""
    first: dict[int, str] = {}
    producer: dict[int, str] = {}
    for e in trace.tape:
        if e is None:
            continue
        for p in e.primals:
            if type(p) is np.ndarray:
                first.setdefault(id(p), e.prim.name)
        n = len(e.ans) if e.prim.multiple_results else 1
        for k in range(n):
            producer[e.out + k] = e.prim.name
    return first, producer


def _describe(a: np.ndarray, names: dict) -> str:
    return names.get(id(a)) or f"an array of shape {a.shape} and dtype {a.dtype}"


def _locked_arrays() -> list:
    """``(array, op)`` for every array guarded by a reverse-mode trace in progress."""
    out = []
    for t in _trace_stack.get():
        if isinstance(t, VJPTrace):
            out.extend(t.locked)
    return out


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _targets_in(tree: ast.AST) -> list[str]:
    """The variable names a piece of code writes to in place: ``a`` in ``a[i] = v``,
    ``a += v``, ``a.fill(v)``, ``np.copyto(a, v)``, ``np.add(a, b, out=a)``."""
    if isinstance(tree, ast.Expression) and isinstance(tree.body, (ast.Subscript, ast.Name)):
        r = _root_name(tree.body)  # just the target of a store, e.g. ``a[i]``
        return [r] if r else []
    names: list[str] = []
    for node in ast.walk(tree):
        targets: list = []
        if isinstance(node, ast.Assign):
            targets = [t for t in node.targets if isinstance(t, (ast.Subscript, ast.Tuple))]
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                targets.append(node.func.value)  # a.fill(v), a.sort(), ...
            targets.extend(node.args[:1])  # np.copyto(a, v), np.put(a, ...), ...
            targets.extend(k.value for k in node.keywords if k.arg == "out")
        for t in targets:
            for el in t.elts if isinstance(t, ast.Tuple) else [t]:
                r = _root_name(el)
                if r is not None and r not in names:
                    names.append(r)
    return names


def _write_targets(frame: Any, tb: Any) -> list[str]:
    """The names written to in place by the code that raised, read from its source: the
    instruction's own source segment where Python records it, else its whole line(s)."""
    filename = frame.f_code.co_filename
    l0 = l1 = tb.tb_lineno
    c0 = c1 = None
    try:  # Python 3.11+: exact source positions of the failing instruction
        pos = list(frame.f_code.co_positions())[tb.tb_lasti // 2]
        if pos[0] is not None and pos[1] is not None:
            l0, l1, c0, c1 = pos
    except (AttributeError, IndexError):
        pass
    lines = [linecache.getline(filename, i) for i in range(l0, l1 + 1)]
    if not any(lines):
        return []
    sources = []
    if c0 is not None and c1 is not None:
        raw = [ln.encode() for ln in lines]  # column offsets count UTF-8 bytes
        raw[-1] = raw[-1][:c1]
        raw[0] = raw[0][c0:]
        sources.append(("eval", "(" + b"".join(raw).decode(errors="replace") + ")"))
    sources.append(("exec", textwrap.dedent("".join(lines))))
    for mode, text in sources:
        try:
            names = _targets_in(ast.parse(text, mode=mode))
        except SyntaxError:
            continue
        if names:
            return names
    return []


def _written_array(err: BaseException, candidates: list) -> list:
    """Which of ``candidates`` the failed write was aimed at: the arrays (or views of them)
    named as write targets by the code that raised.  Returns ``(array, op, description)``
    triples; empty when that cannot be told."""
    tb = err.__traceback__
    if tb is None:
        return []
    while tb.tb_next is not None:
        tb = tb.tb_next
    frame = tb.tb_frame
    by_id = {id(a): (a, op) for a, op in candidates}
    hits: list = []
    for name in _write_targets(frame, tb):
        if name in frame.f_locals:
            v = frame.f_locals[name]
        elif name in frame.f_globals:
            v = frame.f_globals[name]
        else:
            continue
        view = False
        while isinstance(v, np.ndarray):
            if id(v) in by_id:
                a, op = by_id[id(v)]
                if all(h[0] is not a for h in hits):
                    what = f"shape {a.shape}, {a.dtype}"
                    desc = (
                        f"the array '{name}' (a view of an array of {what})"
                        if view
                        else f"the array '{name}' ({what})"
                    )
                    hits.append((a, op, desc))
                break
            v = v.base
            view = True
    return hits


def _rewrite_readonly(err: ValueError, trace: VJPTrace, names: dict) -> Exception:
    """Turn NumPy's "read-only" error, raised by a write to an array a trace had locked, into one
    that names the array and the operation that saved it."""
    if isinstance(err, SavedArrayMutatedError) or "read-only" not in str(err):
        return err
    candidates = _locked_arrays() or list(trace.locked)
    if not candidates:
        return err
    first = {}
    for t in _trace_stack.get():
        if isinstance(t, VJPTrace):
            for k, v in _consumers(t)[0].items():
                first.setdefault(k, v)

    def saver(a, op):
        if op == "the input":
            op = first.get(id(a))
            return f"'{op}'" if op else "the traced function (it is an input)"
        return f"'{op}'"

    hits = _written_array(err, candidates)
    if len(hits) == 1 and id(hits[0][0]) not in names:
        names = {**names, id(hits[0][0]): hits[0][2]}
    fix = (
        "Changing it now would make the derivative silently wrong. Copy the array and change "
        "the copy (b = a.copy()), or make the change before the traced computation uses it."
    )
    if len(hits) == 1:
        a, op, _ = hits[0]
        return SavedArrayMutatedError(
            f"{_describe(a, names)} was written in place, but wengert had saved it for the "
            f"backward sweep of {saver(a, op)}. {fix}"
        )
    savers = []
    for a, op, *_ in hits or candidates:
        s = f"{_describe(a, names)} (saved by {saver(a, op)})"
        if s not in savers:
            savers.append(s)
    shown = "; ".join(savers[:5]) + (" ..." if len(savers) > 5 else "")
    if hits:
        return SavedArrayMutatedError(
            f"an array that wengert saved for the backward sweep was written in place; it is one "
            f"of: {shown}. {fix}"
        )
    return SavedArrayMutatedError(
        f"a write to a read-only array failed ({err}). While it traces, wengert makes the "
        f"arrays it saves for the backward sweep read-only; so far these are: {shown}. If you "
        f"wrote to one of them (or to a view of one): {fix}"
    )


def _call_traced(f: Callable, args: tuple, kwargs: dict, trace: VJPTrace, names: dict) -> Any:
    """Run ``f`` under ``trace``, explaining writes to the arrays the trace saved."""
    try:
        return f(*args, **kwargs)
    except ValueError as e:
        new = _rewrite_readonly(e, trace, names)
        if new is e:
            raise
        raise new from e


def _fingerprint(a: np.ndarray) -> tuple:
    """Shape, dtype and CRC-32 of the bytes of ``a``: cheap (no copy for contiguous arrays)."""
    if a.dtype.hasobject:
        return (a.shape, a.dtype, None)
    b = a if a.flags.c_contiguous else np.ascontiguousarray(a)
    return (a.shape, a.dtype, zlib.crc32(b.reshape(-1).view(np.uint8)))


def _guards(trace: VJPTrace, names: dict, outputs: Sequence) -> list:
    """Fingerprints of the arrays a tape saved that the user can reach: the arguments, the
    constants, and the output and aux arrays handed back."""
    first, producer = _consumers(trace)
    out = []
    seen = set()
    for a, op in trace.locked:
        if id(a) in seen:
            continue
        seen.add(id(a))
        if op == "the input":
            op = first.get(id(a))
            if op is None:
                continue  # not used by any recorded operation: nothing depends on it
        out.append((a, _describe(a, names), op, _fingerprint(a)))
    for label, o in outputs:
        if isinstance(o, VJPTracer) and o._trace is trace and type(o.primal) is np.ndarray:
            a = o.primal
            if id(a) not in seen:
                seen.add(id(a))
                op = producer.get(o.idx, "?")
                out.append((a, label, op, _fingerprint(a)))
    return out


def _verify(guards: list, who: str) -> None:
    for a, label, op, fp in guards:
        if _fingerprint(a) != fp:
            raise SavedArrayMutatedError(
                f"{who}: {label} was changed in place after vjp returned, but wengert saved it for "
                f"the backward sweep of '{op}', so the derivative would be silently wrong. Copy "
                "arrays before changing them (b = a.copy()), or call vjp again after the change."
            )


