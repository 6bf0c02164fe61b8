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
from . import _indexing as I
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


# ---------------------------------------------------------------------------------------------
# kron and cross: composites of broadcasting products
# ---------------------------------------------------------------------------------------------


def kron(a, b):
    """Kronecker product: blocks a_ij·b.  An interleaved broadcast product, reshaped."""
    from ._construction import asarray

    a, b = asarray(a), asarray(b)
    sa, sb = _shape(a), _shape(b)
    if not sa or not sb:
        return E.multiply(a, b)
    nd = max(len(sa), len(sb))
    sa = (1,) * (nd - len(sa)) + sa
    sb = (1,) * (nd - len(sb)) + sb
    a2 = S.reshape(a, tuple(x for d in sa for x in (d, 1)))
    b2 = S.reshape(b, tuple(x for d in sb for x in (1, d)))
    return S.reshape(E.multiply(a2, b2), tuple(p * q for p, q in zip(sa, sb)))


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 3-vectors (or 2-vectors, taken with a zero third component; two
    2-vectors give the scalar z-component) along ``axisa``/``axisb``, broadcasting the rest."""
    from ._construction import asarray

    if axis is not None:
        axisa = axisb = axisc = axis
    a = S.moveaxis(asarray(a), axisa, -1)
    b = S.moveaxis(asarray(b), axisb, -1)
    na, nb_ = _shape(a)[-1], _shape(b)[-1]
    if na not in (2, 3) or nb_ not in (2, 3):
        raise ValueError("incompatible dimensions for cross product\n(dimension must be 2 or 3)")

    def comp(x, n, k):
        return None if k >= n else x[..., k]

    a0, a1, a2 = (comp(a, na, k) for k in range(3))
    b0, b1, b2 = (comp(b, nb_, k) for k in range(3))

    def term(p, q, r, s):  # p·q − r·s, with None as zero
        first = None if p is None or q is None else p * q
        second = None if r is None or s is None else r * s
        if second is None:
            return first
        return -second if first is None else first - second

    z = term(a0, b1, a1, b0)
    if na == 2 and nb_ == 2:
        return z
    c = S.stack(S.broadcast_arrays(term(a1, b2, a2, b1), term(a2, b0, a0, b2), z), axis=-1)
    return S.moveaxis(c, -1, axisc)


# ---------------------------------------------------------------------------------------------
# 1-D convolution and correlation: one primitive, the full convolution along the last axis
# (leading axes broadcast, which batched tangents use); the modes are slices of it.
# ---------------------------------------------------------------------------------------------


def _conv_impl(a, v):
    a, v = _np.asarray(a), _np.asarray(v)
    if a.ndim == 1 and v.ndim == 1:
        return _np.convolve(a, v)
    m = v.shape[-1]
    padded = _np.pad(a, [(0, 0)] * (a.ndim - 1) + [(m - 1, m - 1)])
    windows = _np.lib.stride_tricks.sliding_window_view(padded, m, axis=-1)
    return _np.einsum("...kj,...j->...k", windows, v[..., ::-1])


def _conv_transpose(g, other, n):
    """Σ_k g_k·w_{k−i} for i < n: the full convolution of g with w reversed, middle part."""
    m = _shape(other)[-1]
    full = conv_p(g, I.getitem(other, (Ellipsis, slice(None, None, -1))))
    return I.getitem(full, (Ellipsis, slice(m - 1, m - 1 + n)))


conv_p = Primitive("convolve", _conv_impl, fmt="{0} ∗ {1}")
conv_p.defjvp(lambda t, ans, a, v: conv_p(t, v), lambda t, ans, a, v: conv_p(a, t))
conv_p.defvjp(
    lambda g, ans, a, v: E.unbroadcast(_conv_transpose(g, v, _shape(a)[-1]), a),
    lambda g, ans, a, v: E.unbroadcast(_conv_transpose(g, a, _shape(v)[-1]), v),
)
conv_p.saving((1,), (0,))


def _conv_mode(full, n, m, mode, swapped_centre):
    lo, hi = min(n, m), max(n, m)
    if mode == "full":
        return full
    if mode == "same":
        start, length = (lo // 2 if swapped_centre else (lo - 1) // 2), hi
    elif mode == "valid":
        start, length = lo - 1, hi - lo + 1
    else:
        raise ValueError(f"mode must be one of 'full', 'same' or 'valid', not {mode!r}")
    return I.getitem(full, slice(start, start + length))


def _vectors(a, v, name):
    from ._construction import asarray

    a, v = asarray(a), asarray(v)
    if _np.ndim(primal_value(a)) == 0:
        a = S.reshape(a, (1,))
    if _np.ndim(primal_value(v)) == 0:
        v = S.reshape(v, (1,))
    if _np.ndim(primal_value(a)) != 1 or _np.ndim(primal_value(v)) != 1:
        raise ValueError(f"{name}: object too deep for desired array (inputs must be 1-D)")
    n, m = _shape(a)[0], _shape(v)[0]
    if n == 0 or m == 0:
        raise ValueError(f"{name}: inputs cannot be empty")
    return a, v, n, m


def convolve(a, v, mode="full"):
    """Discrete linear convolution (a ∗ v)_k = Σ_i a_i·v_{k−i} of two 1-D arrays; ``mode``
    'full', 'same' or 'valid' takes NumPy's part of it.  Bilinear: the VJP in ``a`` is the
    correlation of the cotangent with ``v``, and likewise for ``v``."""
    a, v, n, m = _vectors(a, v, "convolve")
    return _conv_mode(conv_p(a, v), n, m, mode, False)


def correlate(a, v, mode="valid"):
    """Cross-correlation c_k = Σ_n a_{n+k}·conj(v_n) of two 1-D arrays, NumPy's modes
    ('valid' by default): the convolution of ``a`` with conj(v) reversed."""
    a, v, n, m = _vectors(a, v, "correlate")
    w = I.getitem(E.conj(v) if _np.iscomplexobj(primal_value(v)) else v, slice(None, None, -1))
    return _conv_mode(conv_p(a, w), n, m, mode, m > n)
