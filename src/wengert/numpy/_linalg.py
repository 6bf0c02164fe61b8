"""Linear-algebra primitives -- solve, det, slogdet, pinv, eigh, eig, svd, qr, cholesky -- each
with its JVP and VJP (standard matrix-calculus formulas) side by side.

Rules act on the last two axes with matmul / einsum, so stacked matrices and tangents with extra
leading batch axes (``jacfwd``) pass through unchanged; they use wengert's own primitives, so
every order follows.  Complex matrices: transpose without conjugation, as everywhere in wengert.
"""

from __future__ import annotations

import numpy as _np

from wengert.core import ANS, Primitive, Tracer, primal_value

from . import _contract as C
from . import _elementwise as E
from . import _indexing as I
from . import _reductions as R
from . import _shape as S

# ---------------------------------------------------------------------------------------------
# Helpers: matrix transpose, conjugate transpose, diagonals, masks
# ---------------------------------------------------------------------------------------------


def _shape(x) -> tuple:
    return _np.shape(primal_value(x))


def _cplx(x) -> bool:
    return _np.iscomplexobj(primal_value(x))


def _real_dtype(x) -> _np.dtype:
    """The real dtype that goes with ``x`` (float32 for complex64...); float64 for integers."""
    dt = _np.result_type(primal_value(x))
    if dt.kind not in "fc":
        return _np.dtype(float)
    return _np.dtype(dt.type(0).real.dtype)


def _const(a, like) -> _np.ndarray:
    """A constant array (mask, identity) in the real dtype of ``like``: no float32 promotion."""
    return _np.asarray(a, dtype=_real_dtype(like))


def mT(x):
    """Swap the last two axes (the matrix transpose of a stack)."""
    return S.swapaxes(x, -1, -2)


def mH(x):
    """The conjugate transpose Xᴴ of a stack of matrices (Xᵀ for real X)."""
    return E.conj(mT(x)) if _cplx(x) else mT(x)


def cj(x):
    """conj(x), skipped for real x."""
    return E.conj(x) if _cplx(x) else x


def mm(a, b):
    """Stacked matrix product (NumPy broadcasting of the leading axes)."""
    return C.matmul_p(a, b)


def diag(x):
    """The main diagonals x[..., i, i] of a stack of square matrices."""
    return C.einsum_p(x, spec="...ii->...i")


def trace(x):
    """Σᵢ x[..., i, i]."""
    return C.einsum_p(x, spec="...ii->...")


def diag_embed(v):
    """Square matrices with ``v`` (..., k) on their diagonals."""
    k = _shape(v)[-1]
    return S.expand_dims(v, -1) * _const(_np.eye(k), v)


def cols(v):
    """``v`` (..., k) as a row that scales the columns of a (..., n, k) stack: v[..., None, :]."""
    return S.expand_dims(v, -2)


def rows(v):
    """``v`` (..., k) as a column that scales the rows of a (..., k, n) stack: v[..., :, None]."""
    return S.expand_dims(v, -1)


def is_zero(g) -> bool:
    """A cotangent the sweep filled with zeros (an output nobody used): plain and all zero."""
    return type(g) is _np.ndarray and not g.any()


def real_ct(g, like):
    """The cotangent of a real value: drop the imaginary part a complex one may carry (it
    pairs with nothing, but complex coefficients in a rule would mix it back in)."""
    if _np.iscomplexobj(primal_value(g)) and not _cplx(like):
        return E.real(g)
    return g


def _lift(t, x, ndim_out: int):
    """A tangent of ``x`` (possibly batched) with unit axes inserted after its batch axes, so it
    has ``ndim_out`` axes after them and broadcasts right-aligned like ``x`` itself."""
    nb = t.ndim - len(_shape(x))
    missing = ndim_out - len(_shape(x))
    if missing <= 0:
        return t
    return S.reshape(t, t.shape[:nb] + (1,) * missing + t.shape[nb:])


def _eye_like(a):
    """The identity with the dtype of the stack ``a`` (..., n, n)."""
    n = _shape(a)[-1]
    return _np.eye(n, dtype=_np.result_type(primal_value(a)))


def _tolerance(v):
    """Values closer than this cannot be told apart by the decomposition (relative to the
    largest of ``v``, per matrix): their pairs count as repeated."""
    v = _np.asarray(primal_value(v))
    eps = _np.finfo(_real_dtype(v)).eps
    scale = _np.max(_np.abs(v), axis=-1, keepdims=True) if v.shape[-1] else _np.zeros(v.shape)
    return 10 * v.shape[-1] * eps * scale


def gap_matrix(vals, squared: bool = False):
    """(F, repeated): F[..., i, j] = 1/(v_j − v_i) (or 1/(v_j² − v_i²)) off the diagonal and 0
    on it; ``repeated`` marks the pairs i ≠ j whose values coincide to working precision, where
    the eigen- or singular-vector derivative that F feeds is not defined (F is 0 there)."""
    v = primal_value(vals)
    tol = _tolerance(v)[..., None]
    close = _np.abs(v[..., None, :] - v[..., :, None]) <= tol
    eye = _np.eye(v.shape[-1], dtype=bool)
    w = vals * vals if squared else vals
    diff = cols(w) - rows(w)
    return E.where_p(close | eye, 0, 1 / E.where_p(close | eye, 1, diff)), close & ~eye


def gap_times(gaps, y, by_column: bool = False):
    """F ∘ y, NaN where the result is not defined (never a huge meaningless number).

    Forward (``by_column=False``): y_ij ≠ 0 for a repeated pair means the direction turns the
    vectors inside a degenerate eigenspace, which has no derivative; y_ij = 0 there stays 0.
    Reverse (``by_column=True``, y = Vᵀ V̄): any cotangent on a vector of a degenerate
    eigenspace (a non-zero column j of y) makes the pairs of j NaN."""
    f, repeated = gaps
    out = f * y
    if repeated.any():
        nz = primal_value(y) != 0
        if by_column:
            col = _np.any(nz, axis=-2)
            nz = col[..., None, :] | col[..., :, None]
        bad = repeated & nz
        if bad.any():
            out = E.where_p(bad, _np.array(_np.nan, _np.result_type(primal_value(out))), out)
    return out


def safe_reciprocal(s):
    """1/s, with NaN where s is zero to working precision (the quantity it feeds is undefined)."""
    small = _np.abs(primal_value(s)) <= _tolerance(s)
    fill = _const(_np.where(small, _np.nan, 0.0), s)
    return E.where_p(small, fill, 1 / E.where_p(small, 1, s))


def _triangle_masks(x, lower: bool):
    """Constant (strict triangle, diagonal) masks for the stack ``x`` in its real dtype."""
    n = _shape(x)[-1]
    tri = _np.tril(_np.ones((n, n)), -1) if lower else _np.triu(_np.ones((n, n)), 1)
    return _const(tri, x), _const(_np.eye(n), x)


def hermitian_part(t, lower: bool):
    """The Hermitian matrix a routine reads from ``t`` when it looks only at one triangle:
    tril(t, −1) + tril(t, −1)ᴴ + Re diag(t) for ``lower`` (LAPACK ignores the rest)."""
    tri, eye = _triangle_masks(t, lower)
    half = t * tri
    d = E.real(t) * eye if _cplx(t) else t * eye
    return half + mH(half) + d


def hermitian_part_T(g, lower: bool):
    """The transpose (no conjugation) of :func:`hermitian_part`: where a cotangent on the
    Hermitian matrix lands on the triangle that was read."""
    tri, eye = _triangle_masks(g, lower)
    d = E.real(g) * eye if _cplx(g) else g * eye
    return (g + mH(g)) * tri + d


def _unbroadcast(g, shape):
    return C.unbroadcast_to(g, shape)


# ---------------------------------------------------------------------------------------------
# solve: x = A⁻¹ b for stacks, b of shape (..., M, K).  dx = A⁻¹(db − dA x);  b̄ = A⁻ᵀ ḡ,
# Ā = −b̄ xᵀ (inv is the composite solve(A, I)).
# ---------------------------------------------------------------------------------------------


def _solve_impl(a, b):
    return _np.linalg.solve(a, b)


def _solve_jvp(ts, ans, a, b):
    ta, tb = ts
    nd = len(_shape(ans))
    rhs = None
    if tb is not None:
        rhs = _lift(tb, b, nd)
    if ta is not None:
        r = -mm(_lift(ta, a, nd), ans)
        rhs = r if rhs is None else rhs + r
    return solve_p(a, rhs)


def _solve_vjp(g, ans, needed, a, b):
    g = real_ct(g, ans)
    gb = solve_p(mT(a), g)
    ct_a = _unbroadcast(-mm(gb, mT(ans)), _shape(a)) if 0 in needed else None
    ct_b = _unbroadcast(gb, _shape(b)) if 1 in needed else None
    return ct_a, ct_b


solve_p = Primitive("solve", _solve_impl, fmt="solve({0}, {1})")
solve_p.jvp_all = _solve_jvp
solve_p.vjp_all = _solve_vjp
solve_p.saving((0, ANS), (0,))


def inv(a):
    """A⁻¹ as solve(A, I) (what NumPy does too); its derivative −A⁻¹ dA A⁻¹ follows."""
    return solve_p(a, _eye_like(a))


# ---------------------------------------------------------------------------------------------
# det and slogdet: d det = det · tr(A⁻¹ dA);  Ā = ḡ · det · A⁻ᵀ.  An exactly singular A has no
# inverse, and its derivative raises LinAlgError rather than inventing a number.
# ---------------------------------------------------------------------------------------------


def _det_impl(a):
    return _np.linalg.det(a)


def _expand2(x):
    return S.expand_dims(S.expand_dims(x, -1), -1)


def _solve_nonsingular(a, b, who: str):
    """solve(A, b) inside a determinant rule, with an error that says what went wrong."""
    try:
        return solve_p(a, b)
    except _np.linalg.LinAlgError as e:
        raise _np.linalg.LinAlgError(
            f"{who}: the derivative rule needs A⁻¹, but A is singular ({e}). The derivative of "
            "det at an exactly singular matrix (the adjugate) is not implemented, and that of "
            "log|det| is infinite there; differentiate at a nearby non-singular matrix."
        ) from None


det_p = Primitive("det", _det_impl, fmt="det {0}")
det_p.defjvp(lambda t, ans, a: ans * trace(_solve_nonsingular(a, t, "det")))
det_p.defvjp(
    lambda g, ans, a: (
        _expand2(real_ct(g, ans) * ans) * mT(_solve_nonsingular(a, _eye_like(a), "det"))
    )
)
det_p.saving((0, ANS))


def _slogdet_impl(a):
    r = _np.linalg.slogdet(a)
    return (r.sign, r.logabsdet)


def _slogdet_jvp(ts, ans, a):
    tau = trace(_solve_nonsingular(a, ts[0], "slogdet"))  # d log det A
    if not _cplx(a):
        return None, tau  # the sign is locally constant
    return ans[0] * (E.imag(tau) * 1j), E.real(tau)


def _slogdet_vjp(g, ans, needed, a):
    g_sign, g_log = real_ct(g[0], ans[0]), real_ct(g[1], ans[1])
    c = g_log
    if _cplx(a):
        c = c + E.imag(g_sign * ans[0]) * 1j
    return (_expand2(c) * mT(_solve_nonsingular(a, _eye_like(a), "slogdet")),)


slogdet_p = Primitive("slogdet", _slogdet_impl, multiple_results=True, fmt="slogdet {0}")
slogdet_p.jvp_all = _slogdet_jvp
slogdet_p.vjp_all = _slogdet_vjp
slogdet_p.saving((0, ANS))


# ---------------------------------------------------------------------------------------------
# pinv: for constant rank (Golub & Pereyra), with X = A⁺,
#   dX = −X dA X + X Xᴴ dAᴴ (I − A X) + (I − X A) dAᴴ Xᴴ X.
# ---------------------------------------------------------------------------------------------


def _pinv_impl(a, rcond, hermitian):
    return _np.linalg.pinv(a, rcond=rcond, hermitian=hermitian)


def _pinv_jvp(t, ans, a, rcond, hermitian):
    x = ans
    th = mH(t)
    out = -mm(mm(x, t), x)
    out = out + mm(mm(x, mH(x)), th - mm(mm(th, a), x))
    return out + mm(th - mm(x, mm(a, th)), mm(mH(x), x))


def _pinv_vjp(g, ans, a, rcond, hermitian):
    g = real_ct(g, ans)
    x, xc, ac = ans, cj(ans), cj(a)
    gh = mH(g)
    out = -mm(mm(mT(x), g), mT(x))
    out = out + mm(gh - mm(ac, mm(xc, gh)), mm(xc, mT(x)))
    return out + mm(mm(mT(x), xc), gh - mm(mm(gh, xc), ac))


pinv_p = Primitive("pinv", _pinv_impl, fmt="pinv {0}").defjvp(_pinv_jvp).defvjp(_pinv_vjp)
pinv_p.saving((0, ANS))


# ---------------------------------------------------------------------------------------------
# eigh: A = V diag(w) Vᴴ from one triangle.  With X = Vᴴ dA V (dA the Hermitian matrix read):
#   dw = Re diag(X),  dV = V (F ∘ X),  F_ij = 1/(w_j − w_i);
#   Ā = P*( conj(V) (diag(w̄) + F ∘ (Vᵀ V̄)) Vᵀ ),  P* mapping back onto the triangle read.
# ---------------------------------------------------------------------------------------------


def _eigh_impl(a, lower):
    r = _np.linalg.eigh(a, UPLO="L" if lower else "U")
    return (r.eigenvalues, r.eigenvectors)


def _eigh_jvp(ts, ans, a, lower):
    w, v = ans
    x = mm(mm(mH(v), hermitian_part(ts[0], lower)), v)
    dx = diag(x)
    return (E.real(dx) if _cplx(dx) else dx), mm(v, gap_times(gap_matrix(w), x))


def _eigh_vjp(g, ans, needed, a, lower):
    (w, v) = ans
    gw, gv = real_ct(g[0], w), real_ct(g[1], v)
    inner = diag_embed(gw)
    if not is_zero(gv):
        inner = inner + gap_times(gap_matrix(w), mm(mT(v), gv), by_column=True)
    return (hermitian_part_T(mm(mm(cj(v), inner), mT(v)), lower),)


eigh_p = Primitive("eigh", _eigh_impl, multiple_results=True, fmt="eigh {0}")
eigh_p.jvp_all = _eigh_jvp
eigh_p.vjp_all = _eigh_vjp
eigh_p.saving((ANS,))


# ---------------------------------------------------------------------------------------------
# eig (general matrices): A V = V diag(w).  With X = V⁻¹ dA V:  dw = diag(X), and
# dV₀ = V (F ∘ X) then put into NumPy's gauge (unit columns whose largest entry is real):
#   dv = dv₀ + v δ,  δ = −Re(vᴴ dv₀) − i Im(dv₀[k]) / v[k]   (k: the largest entry of v).
# ---------------------------------------------------------------------------------------------


def _eig_impl(a):
    r = _np.linalg.eig(a)
    return (r.eigenvalues, r.eigenvectors)


def _largest_entry_mask(v):
    """One-hot over each column of ``v``: the entry LAPACK made real (the largest)."""
    vv = primal_value(v)
    k = _np.argmax(_np.abs(vv), axis=-2)
    return _const(_np.arange(vv.shape[-2])[:, None] == k[..., None, :], vv)


def _eig_jvp(ts, ans, a):
    w, v = ans
    x = mm(inv(v), mm(ts[0], v))
    dw = diag(x)
    dv0 = mm(v, gap_times(gap_matrix(w), x))
    delta = -E.real(diag(mm(mH(v), dv0))) if _cplx(v) else -diag(mm(mT(v), dv0))
    if _cplx(v):
        hot = _largest_entry_mask(v)
        vk = _colsum(v * hot)
        delta = delta - E.imag(_colsum(dv0 * hot)) / E.real(vk) * 1j
    return dw, dv0 + v * cols(delta)


def _colsum(x):
    return R.sum_p(x, axis=(-2,), keepdims=False)


def _eig_vjp(g, ans, needed, a):
    (w, v) = ans
    gw, gv = real_ct(g[0], w), real_ct(g[1], v)
    inner = diag_embed(gw)
    if not is_zero(gv):
        # undo the gauge fixing: v̄₀ = v̄ − Re(v̄ᵀv) conj(v) − i Im(v̄ᵀv)/v[k] e_k, column by column
        p = _colsum(gv * v)
        if _cplx(v):
            hot = _largest_entry_mask(v)
            vk = E.real(_colsum(v * hot))
            gv = gv - cols(E.real(p)) * E.conj(v) - cols(E.imag(p) / vk) * hot * 1j
        else:
            gv = gv - cols(p) * v
        inner = inner + gap_times(gap_matrix(w), mm(mT(v), gv), by_column=True)
    ct = mm(mT(inv(v)), mm(inner, mT(v)))
    return (E.real(ct) if not _cplx(a) and _cplx(ct) else ct,)


eig_p = Primitive("eig", _eig_impl, multiple_results=True, fmt="eig {0}")
eig_p.jvp_all = _eig_jvp
eig_p.vjp_all = _eig_vjp
eig_p.saving((ANS,))


# ---------------------------------------------------------------------------------------------
# svd: A = U diag(s) Vᴴ, k = min(m, n).  With P = Uᴴ dA V and F_ij = 1/(s_j² − s_i²):
#   ds = Re diag(P),  dU = U (F ∘ (PS + SPᴴ)) + (I − UUᴴ) dA V S⁻¹,
#   dV = V (F ∘ (SP + PᴴS)) + (I − VVᴴ) dAᴴ U S⁻¹,
# plus, for complex A, the phase term i Im(P_ii)/s_i on diag(Uᴴ dU).  The extra columns of
# full_matrices (a basis of the orthogonal complement) move as dQ = −U S⁻¹ Vᴴ dAᴴ Q.
# ---------------------------------------------------------------------------------------------


def _svd_impl(a, full):
    r = _np.linalg.svd(a, full_matrices=full)
    return (r.U, r.S, r.Vh)


def _svd_split(ans, full):
    """(U_k, U_⊥ or None, s, V_k, V_⊥ or None) from NumPy's (U, s, Vh)."""
    u, s, vh = ans
    m, n = _shape(u)[-2], _shape(vh)[-1]
    k = min(m, n)
    up = vp = None
    if full and m > k:
        up = I.getitem(u, (Ellipsis, slice(None), slice(k, None)))
        u = I.getitem(u, (Ellipsis, slice(None), slice(0, k)))
    if full and n > k:
        vp = mH(I.getitem(vh, (Ellipsis, slice(k, None), slice(None))))
        vh = I.getitem(vh, (Ellipsis, slice(0, k), slice(None)))
    return u, up, s, mH(vh), vp


def _svd_jvp(ts, ans, a, full):
    t = ts[0]
    u, up, s, v, vp = _svd_split(ans, full)
    m, k, n = _shape(u)[-2], _shape(s)[-1], _shape(v)[-2]
    p = mm(mm(mH(u), t), v)
    dp = diag(p)
    ds = E.real(dp) if _cplx(p) else dp
    f = gap_matrix(s, squared=True)
    ps, sp = p * cols(s), rows(s) * p
    du = mm(u, gap_times(f, ps + mH(ps)))
    dv = mm(v, gap_times(f, sp + mH(sp)))
    if _cplx(p) or m > k or n > k:
        sinv = safe_reciprocal(s)
    if _cplx(p):
        du = du + mm(u, diag_embed(E.imag(dp) * sinv * 1j))
    if m > k:
        du = du + (mm(t, v) - mm(u, p)) * cols(sinv)
    if n > k:
        th = mH(t)
        dv = dv + (mm(th, u) - mm(v, mH(p))) * cols(sinv)
    if up is not None:
        du = S.concatenate([du, -mm(u, rows(sinv) * mm(mH(mm(t, v)), up))], axis=-1)
    if vp is not None:
        dv = S.concatenate([dv, -mm(v, rows(sinv) * mm(mm(mH(u), t), vp))], axis=-1)
    return du, ds, mH(dv)


def _svd_vjp(g, ans, needed, a, full):
    gu, gs, gvh = (real_ct(c, x) for c, x in zip(g, ans))
    u, up, s, v, vp = _svd_split(ans, full)
    m, k, n = _shape(u)[-2], _shape(s)[-1], _shape(v)[-2]
    cplx = _cplx(u)
    gp = diag_embed(gs)
    ct = None
    need_u, need_v = not is_zero(gu), not is_zero(gvh)
    if need_u or need_v:
        f = gap_matrix(s, squared=True)
        if cplx or m > k or n > k:
            sinv = safe_reciprocal(s)
    if need_u:
        gu_p = None
        if up is not None:
            gu_p = I.getitem(gu, (Ellipsis, slice(None), slice(k, None)))
            gu = I.getitem(gu, (Ellipsis, slice(None), slice(0, k)))
        om = mm(mT(u), gu)
        xb = gap_times(f, om, by_column=True)
        gp = gp + (xb + mH(xb)) * cols(s)
        if cplx:
            gp = gp + diag_embed(E.imag(diag(om)) * sinv * 1j)
        if m > k:
            gsc = gu * cols(sinv)
            ct = mm(gsc, mT(v))
            gp = gp - mm(mT(u), gsc)
        if gu_p is not None:
            zb = -rows(sinv) * mm(mm(mT(u), gu_p), mT(up))
            c = mm(mH(zb), mT(v))
            ct = c if ct is None else ct + c
    if need_v:
        gv = mH(gvh)
        gv_p = None
        if vp is not None:
            gv_p = I.getitem(gv, (Ellipsis, slice(None), slice(k, None)))
            gv = I.getitem(gv, (Ellipsis, slice(None), slice(0, k)))
        yb = gap_times(f, mm(mT(v), gv), by_column=True)
        gp = gp + rows(s) * (yb + mH(yb))
        if n > k:
            gsc = gv * cols(sinv)
            c = mH(mm(gsc, mT(u)))
            ct = c if ct is None else ct + c
            gp = gp + mH(-mm(mT(v), gsc))
        if gv_p is not None:
            wb = -rows(sinv) * mm(mT(v), gv_p)
            c = mm(mm(cj(u), wb), mT(vp))
            ct = c if ct is None else ct + c
    c = mm(mm(cj(u), gp), mT(v))
    ct = c if ct is None else ct + c
    return (E.real(ct) if not _cplx(a) and _cplx(ct) else ct,)


svd_p = Primitive("svd", _svd_impl, multiple_results=True, fmt="svd {0}")
svd_p.jvp_all = _svd_jvp
svd_p.vjp_all = _svd_vjp
svd_p.saving((ANS,))


# ---------------------------------------------------------------------------------------------
# qr of a tall or square A (m ≥ n; wide matrices are a composite in linalg.qr).  With
# C = Qᴴ dA R⁻¹ and Ω = Qᴴ dQ = tril(C, −1) − tril(C, −1)ᴴ + i Im diag(C) (R's diagonal real):
#   dR = Qᴴ dA − Ω R,   dQ = Q (Ω − C) + dA R⁻¹;  complete mode: dQ⊥ = −Q R⁻ᴴ dAᴴ Q⊥.
# ---------------------------------------------------------------------------------------------


def _qr_impl(a, complete):
    r = _np.linalg.qr(a, mode="complete" if complete else "reduced")
    return (r.Q, r.R)


def _qr_split(ans):
    q, r = ans
    m, n = _shape(q)[-2], _shape(r)[-1]
    qp = None
    if m > n and _shape(q)[-1] == m:  # complete
        qp = I.getitem(q, (Ellipsis, slice(None), slice(n, None)))
        q = I.getitem(q, (Ellipsis, slice(None), slice(0, n)))
        r = I.getitem(r, (Ellipsis, slice(0, n), slice(None)))
    return q, qp, r


def _omega(c):
    tri, eye = _triangle_masks(c, lower=True)
    low = c * tri
    om = low - mH(low)
    if _cplx(c):
        om = om + E.imag(c) * eye * 1j
    return om


def _qr_jvp(ts, ans, a, complete):
    t = ts[0]
    q, qp, r = _qr_split(ans)
    ri = inv(r)
    tri_ = mm(t, ri)
    c = mm(mH(q), tri_)
    om = _omega(c)
    dr = mm(mH(q), t) - mm(om, r)
    dq = mm(q, om - c) + tri_
    if qp is not None:
        m, n = _shape(q)[-2], _shape(r)[-1]
        dq = S.concatenate([dq, -mm(q, mm(mH(ri), mm(mH(t), qp)))], axis=-1)
        zeros = _np.zeros(dr.shape[:-2] + (m - n, n), _np.result_type(primal_value(dr)))
        dr = S.concatenate([dr, zeros], axis=-2)
    return dq, dr


def _omega_T(g):
    tri, eye = _triangle_masks(g, lower=True)
    out = (g - mH(g)) * tri
    if _cplx(g):
        out = out + E.imag(g) * eye * 1j
    return out


def _qr_vjp(g, ans, needed, a, complete):
    gq, gr = real_ct(g[0], ans[0]), real_ct(g[1], ans[1])
    q, qp, r = _qr_split(ans)
    n = _shape(r)[-1]
    gq_p = None
    if qp is not None:
        gq_p = I.getitem(gq, (Ellipsis, slice(None), slice(n, None)))
        gq = I.getitem(gq, (Ellipsis, slice(None), slice(0, n)))
        gr = I.getitem(gr, (Ellipsis, slice(0, n), slice(None)))
    ri = inv(r)
    qtgq = mm(mT(q), gq)
    gc = _omega_T(qtgq - mm(gr, mT(r))) - qtgq
    ct = mm(gq + mm(cj(q), gc), mT(ri)) + mm(cj(q), gr)
    if gq_p is not None:
        y = -mm(mm(cj(ri), mT(q)), mm(gq_p, mT(qp)))
        ct = ct + mH(y)
    return (E.real(ct) if not _cplx(a) and _cplx(ct) else ct,)


qr_p = Primitive("qr", _qr_impl, multiple_results=True, fmt="qr {0}")
qr_p.jvp_all = _qr_jvp
qr_p.vjp_all = _qr_vjp
qr_p.saving((ANS,))


# ---------------------------------------------------------------------------------------------
# cholesky: A = L Lᴴ from one triangle.  With X = L⁻¹ dA L⁻ᴴ and Φ(X) = tril(X, −1) + ½ diag X:
#   dL = L Φ(X);   Ā = P*( L⁻ᵀ Φ(Lᵀ L̄) conj(L⁻¹) ).   upper=True returns Lᴴ.
# ---------------------------------------------------------------------------------------------


def _cholesky_impl(a, upper):
    return _np.linalg.cholesky(a, upper=upper)


def _phi(x):
    n = _shape(x)[-1]
    return x * _const(_np.tril(_np.ones((n, n)), -1) + 0.5 * _np.eye(n), x)


def _cholesky_jvp(t, ans, a, upper):
    low = mH(ans) if upper else ans
    li = inv(low)
    dl = mm(low, _phi(mm(mm(li, hermitian_part(t, not upper)), mH(li))))
    return mH(dl) if upper else dl


def _cholesky_vjp(g, ans, a, upper):
    low = mH(ans) if upper else ans
    g = real_ct(g, ans)
    gl = mH(g) if upper else g
    li = inv(low)
    inner = mm(mm(mT(li), _phi(mm(mT(low), gl))), cj(li))
    return hermitian_part_T(inner, not upper)


cholesky_p = Primitive("cholesky", _cholesky_impl, fmt="cholesky {0}")
cholesky_p.defjvp(_cholesky_jvp).defvjp(_cholesky_vjp)
cholesky_p.saving((ANS,))


def is_traced(*xs) -> bool:
    """True when any of ``xs`` is followed by a transformation."""
    return any(isinstance(x, Tracer) for x in xs)
