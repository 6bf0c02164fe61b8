"""Contractions: matmul, einsum, and dot / tensordot / inner / outer built on them.

These are bilinear, so the JVP in one argument is the same contraction with the tangent in
its place, and the VJP contracts the cotangent with the other argument.  ``matmul`` keeps to
BLAS in both directions (``g @ bᵀ``, ``aᵀ @ g``); ``einsum`` writes its VJP as another einsum.
"""

from __future__ import annotations

import string

import numpy as _np

from wengert.core import Primitive, primal_value

from . import _elementwise as E
from . import _reductions as R
from . import _shape as S


def _shape(x):
    return _np.shape(primal_value(x))


def unbroadcast_to(g, shape):
    """Sum ``g`` over the axes that broadcasting added to reach its shape from ``shape``."""
    lead = g.ndim - len(shape)
    axes = tuple(range(-g.ndim, -len(shape))) if lead > 0 else ()
    axes += tuple(i - len(shape) for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    if axes:
        g = R.sum_p(g, axis=axes, keepdims=False)
    return S.reshape(g, shape)


# ---------------------------------------------------------------------------------------------
# matmul
# ---------------------------------------------------------------------------------------------


def _as_matrix_shape(shape, first: bool) -> tuple:
    """The shape matmul works with: a vector becomes a 1×k row (first) or k×1 column."""
    if len(shape) >= 2:
        return shape
    return (1, shape[0]) if first else (shape[0], 1)


def _matmul_jvp(t, ans, a, b, which):
    x = a if which == 0 else b
    nb = t.ndim - len(_shape(x))
    if nb == 0:
        return matmul_p(t, b) if which == 0 else matmul_p(a, t)
    xs = _as_matrix_shape(_shape(x), first=which == 0)
    other = _as_matrix_shape(_shape(b if which == 0 else a), first=which == 1)
    stack = max(len(xs), len(other)) - 2
    t = S.reshape(t, t.shape[:nb] + (1,) * (stack - (len(xs) - 2)) + xs)
    out = matmul_p(t, b) if which == 0 else matmul_p(a, t)
    return S.reshape(out, t.shape[:nb] + _shape(ans))


def _matmul_vjp(g, ans, needed, a, b):
    sa, sb = _shape(a), _shape(b)
    if len(sa) == 1 and len(sb) == 1:
        return (g * b if 0 in needed else None, g * a if 1 in needed else None)
    a2, b2 = _as_matrix_shape(sa, True), _as_matrix_shape(sb, False)
    stack = _np.broadcast_shapes(a2[:-2], b2[:-2])
    g2 = S.reshape(g, stack + (a2[-2], b2[-1]))
    ct_a = ct_b = None
    if 0 in needed:
        bt = S.swapaxes(S.reshape(b, b2), -1, -2)
        ct_a = S.reshape(unbroadcast_to(matmul_p(g2, bt), a2), sa)
    if 1 in needed:
        at = S.swapaxes(S.reshape(a, a2), -1, -2)
        ct_b = S.reshape(unbroadcast_to(matmul_p(at, g2), b2), sb)
    return (ct_a, ct_b)


matmul_p = Primitive("matmul", _np.matmul, fmt="{0} @ {1}")
matmul_p.jvp_all = lambda ts, ans, a, b: _sum_present(
    _matmul_jvp(ts[0], ans, a, b, 0) if ts[0] is not None else None,
    _matmul_jvp(ts[1], ans, a, b, 1) if ts[1] is not None else None,
)
matmul_p.vjp_all = _matmul_vjp


def _sum_present(*terms):
    out = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return out


def matmul(a, b):
    """Matrix product ``a @ b`` with NumPy's stacking and vector rules."""
    if _np.ndim(primal_value(a)) == 0 or _np.ndim(primal_value(b)) == 0:
        raise ValueError("matmul: input operand does not have enough dimensions (use multiply)")
    return matmul_p(a, b)


# ---------------------------------------------------------------------------------------------
# einsum
# ---------------------------------------------------------------------------------------------

_LETTERS = string.ascii_letters


def _parse(subscripts: str, n: int) -> tuple[list[str], str]:
    """Split ``subscripts`` into input specs and an explicit output spec."""
    s = subscripts.replace(" ", "")
    if "->" in s:
        ins, out = s.split("->")
    else:
        ins, out = s, None
    specs = ins.split(",")
    if len(specs) != n:
        raise ValueError(f"einsum: {len(specs)} subscripts for {n} operands")
    for sp in specs:
        bad = set(sp.replace("...", "")) - set(_LETTERS)
        if bad or sp.replace("...", "").count(".") or sp.count("...") > 1:
            raise ValueError(f"einsum: invalid subscript {sp!r}")
    if out is None:
        labels = "".join(sp.replace("...", "") for sp in specs)
        once = sorted(c for c in set(labels) if labels.count(c) == 1)
        out = ("..." if any("..." in sp for sp in specs) else "") + "".join(once)
    return specs, out


def _labels(spec: str) -> str:
    return spec.replace("...", "")


def _fresh(used: str, k: int) -> str:
    free = [c for c in _LETTERS if c not in used]
    return "".join(free[:k])


def _einsum_impl(*ops, spec):
    big = len(ops) > 2 or (len(ops) == 2 and max(_np.size(o) for o in ops) > 4096)
    return _np.einsum(spec, *ops, optimize=bool(big))


einsum_p = Primitive("einsum", _einsum_impl, fmt="einsum")


def _einsum_jvp(tangents, ans, *ops, spec):
    ins, out = spec.split("->")
    specs = ins.split(",")
    total = None
    for i, t in enumerate(tangents):
        if t is None:
            continue
        nb = t.ndim - len(_shape(ops[i]))
        b = _fresh(spec, nb)
        sp = list(specs)
        sp[i] = b + sp[i]
        args = list(ops)
        args[i] = t
        term = einsum_p(*args, spec=",".join(sp) + "->" + b + out)
        total = term if total is None else total + term
    return total


def _fit(ct, shape):
    """Sum or broadcast the leading (ellipsis) part of ``ct`` to ``shape``."""
    lead = ct.ndim - len(shape)
    if lead > 0:
        ct = R.sum_p(ct, axis=tuple(range(-ct.ndim, -len(shape))), keepdims=False)
    axes = tuple(
        i - len(shape)
        for i, d in enumerate(shape)
        if d == 1 and ct.shape[i - len(shape)] != 1 and ct.ndim >= len(shape) - i
    )
    if axes:
        ct = R.sum_p(ct, axis=axes, keepdims=True)
    return S.broadcast_to(ct, shape) if ct.shape != shape else ct


def _einsum_vjp(g, ans, needed, *ops, spec):
    ins, out = spec.split("->")
    specs = ins.split(",")
    cts = [None] * len(ops)
    for i in needed:
        sp_i = specs[i]
        shape_i = _shape(ops[i])
        ell = "..." in sp_i
        uniq = "".join(dict.fromkeys(_labels(sp_i)))
        others = [specs[j] for j in range(len(ops)) if j != i] + [out]
        seen = "".join(_labels(s) for s in others)
        avail = "".join(c for c in uniq if c in seen)
        missing = "".join(c for c in uniq if c not in seen)
        pre = "..." if "..." in spec else ""  # the others' broadcast axes, summed away below
        args = [ops[j] for j in range(len(ops)) if j != i] + [g]
        ct = einsum_p(*args, spec=",".join(others) + "->" + pre + avail)
        # sizes of this operand's labels
        size = {}
        core = _labels(sp_i)
        n_ell = len(shape_i) - len(core)
        k = 0
        for c in sp_i.split("...")[0] if ell else sp_i:
            size[c] = shape_i[k]
            k += 1
        if ell:
            k += n_ell
            for c in sp_i.split("...")[1]:
                size[c] = shape_i[k]
                k += 1
        if missing:
            ones = [_np.ones(size[c], _np.result_type(primal_value(g))) for c in missing]
            ct = einsum_p(ct, *ones, spec=pre + avail + "," + ",".join(missing) + "->" + pre + uniq)
        # sum over what NumPy broadcast: the others' ellipsis axes, and labels of length one here
        start = len(sp_i.split("...")[0])
        target = (shape_i[start : start + n_ell] if ell else ()) + tuple(size[c] for c in uniq)
        if ct.shape != target:
            ct = _fit(ct, target)
        # put labels back in the operand's order, embedding repeated labels on diagonals
        renamed, eyes, eye_specs = "", [], []
        used = spec
        for c in sp_i.replace("...", "."):
            if c == ".":
                renamed += "..."
            elif c in renamed:
                f = _fresh(used + renamed, 1)
                used += f
                renamed += f
                eyes.append(
                    _np.eye(size[c], dtype=_np.result_type(primal_value(g)).type(0).real.dtype)
                )
                eye_specs.append(c + f)
            else:
                renamed += c
        src = ("..." if ell else "") + uniq
        if eyes or renamed != src:
            ct = einsum_p(ct, *eyes, spec=",".join([src] + eye_specs) + "->" + renamed)
        cts[i] = ct
    return cts


einsum_p.jvp_all = _einsum_jvp
einsum_p.vjp_all = _einsum_vjp


def einsum(subscripts, *operands, optimize=None, **kw):
    """Einstein summation, as ``numpy.einsum`` with a subscripts string."""
    if not isinstance(subscripts, str):
        raise TypeError(
            "einsum: traced operands need the subscripts-string form, e.g. einsum('ij,jk->ik', a, b)"
        )
    if kw.get("out") is not None:
        raise TypeError("einsum: 'out=' cannot be differentiated")
    specs, out = _parse(subscripts, len(operands))
    return einsum_p(*operands, spec=",".join(specs) + "->" + out)


# ---------------------------------------------------------------------------------------------
# dot, tensordot, inner, outer, vdot: composites
# ---------------------------------------------------------------------------------------------


def tensordot(a, b, axes=2):
    """Sum products over the given axes of ``a`` and ``b``."""
    na, nb_ = _np.ndim(primal_value(a)), _np.ndim(primal_value(b))
    if isinstance(axes, (int, _np.integer)):
        ax_a = list(range(na - axes, na))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, _np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, _np.integer)) else list(ax_b)
    ax_a = [x % na for x in ax_a]
    ax_b = [x % nb_ for x in ax_b]
    if len(ax_a) != len(ax_b):
        raise ValueError("tensordot: shape-mismatch for sum")
    la = list(_LETTERS[:na])
    lb = list(_LETTERS[na : na + nb_])
    for x, y in zip(ax_a, ax_b):
        if _shape(a)[x] != _shape(b)[y]:
            raise ValueError("tensordot: shape-mismatch for sum")
        lb[y] = la[x]
    out = [c for k, c in enumerate(la) if k not in ax_a] + [
        c for k, c in enumerate(lb) if k not in ax_b
    ]
    return einsum_p(a, b, spec="".join(la) + "," + "".join(lb) + "->" + "".join(out))


def dot(a, b, out=None):
    """``numpy.dot``: scalar product, matrix product, or a sum over a's last and b's
    second-to-last axis."""
    if out is not None:
        raise TypeError("dot: 'out=' cannot be differentiated")
    na, nb_ = _np.ndim(primal_value(a)), _np.ndim(primal_value(b))
    if na == 0 or nb_ == 0:
        return E.multiply(a, b)
    if na <= 2 and nb_ <= 2:
        return matmul_p(a, b)
    return tensordot(a, b, axes=([na - 1], [nb_ - 2 if nb_ >= 2 else 0]))


def inner(a, b):
    """Sum of products over the last axes of ``a`` and ``b``."""
    if _np.ndim(primal_value(a)) == 0 or _np.ndim(primal_value(b)) == 0:
        return E.multiply(a, b)
    return tensordot(a, b, axes=([-1], [-1]))


def outer(a, b):
    """Outer product of the flattened ``a`` and ``b``."""
    return E.multiply(S.reshape(a, (-1, 1)), S.reshape(b, (1, -1)))


def vdot(a, b):
    """Σ conj(a)·b over the flattened arrays."""
    return R.sum(E.multiply(E.conj(S.ravel(a)), S.ravel(b)))


# What each VJP reads (see Primitive.saving): matmul needs both operands, not the product;
# einsum keeps the default (every operand).
matmul_p.saving((1,), (0,))
