"""``wengert.scipy.linalg``: triangular and Cholesky solves, Sylvester equations and the matrix
functions expm, logm and sqrtm, differentiable in forward and reverse mode to any order.

SciPy computes the values.  expm and logm differentiate by the block-triangle identity
f([[A, E], [0, A]]) = [[f(A), L_f(A, E)], [0, f(A)]] (L_f: the Fréchet derivative, exact, and
its transpose is L_f(Aᵀ, ·)); sqrtm by a Sylvester equation X·dX + dX·X = dA.  Stacked
matrices (leading batch axes) work throughout.
"""

from __future__ import annotations

from typing import Any

import numpy as _np
import scipy.linalg as _sl

import wengert.numpy as wnp
from wengert.core import ANS, Primitive, primal_value
from wengert.numpy._elementwise import unbroadcast

__all__ = [
    "solve_triangular",
    "cholesky",
    "cho_factor",
    "cho_solve",
    "solve_sylvester",
    "expm",
    "logm",
    "sqrtm",
]

_TRANS = {0: 0, 1: 1, 2: 2, "N": 0, "T": 1, "C": 2}


def _mT(x):
    """The transpose of the last two axes."""
    return wnp.swapaxes(x, -1, -2)


def _is_complex(x) -> bool:
    return _np.iscomplexobj(primal_value(x))


def _H(x):
    """The conjugate transpose of the last two axes (the transpose for real x)."""
    return wnp.conj(_mT(x)) if _is_complex(x) else _mT(x)


def _op(x, trans):
    """op(x): x, xᵀ or xᴴ for trans 0, 1, 2."""
    if trans == 0:
        return x
    return _mT(x) if trans == 1 or not _is_complex(x) else _H(x)


# ---------------------------------------------------------------------------------------------
# solve_triangular: x = op(A)⁻¹ b, reading one triangle of A (its diagonal taken as 1 if unit).
# ---------------------------------------------------------------------------------------------


def _tri_mask(a, lower, unit):
    """The constant 0/1 pattern of the entries of ``a`` that the solve reads."""
    n = _np.shape(primal_value(a))[-1]
    m = _np.tril(_np.ones((n, n))) if lower else _np.triu(_np.ones((n, n)))
    if unit:
        m[_np.diag_indices(n)] = 0
    return m.astype(_np.result_type(primal_value(a), _np.float16).type(0).real.dtype)


def _trsolve_impl(a, b, trans, lower, unit):
    return _sl.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit)


def _trsolve(a, rhs, vec, **p):
    """Solve with ``rhs`` that may carry extra leading axes (a batch of tangents): a vector
    right-hand side gets a trailing unit axis so SciPy treats the leading axes as a batch."""
    if vec and rhs.ndim > 1:
        return wnp.squeeze(trsolve_p(a, wnp.expand_dims(rhs, -1), **p), -1)
    return trsolve_p(a, rhs, **p)


def _outer_last(u, v, vec):
    """u vᵀ over the last axes: an outer product for vectors, u @ vᵀ for matrices."""
    if vec:
        return wnp.expand_dims(u, -1) * wnp.expand_dims(v, -2)
    return wnp.matmul(u, _mT(v))


def _trsolve_jvp(ts, ans, a, b, trans, lower, unit):
    vec = _np.ndim(primal_value(b)) == 1
    p = dict(trans=trans, lower=lower, unit=unit)
    rhs = None
    if ts[1] is not None:
        rhs = ts[1]
    if ts[0] is not None:
        da = _op(ts[0] * _tri_mask(a, lower, unit), trans)
        prod = wnp.squeeze(wnp.matmul(da, wnp.expand_dims(ans, -1)), -1) if vec else da @ ans
        rhs = -prod if rhs is None else rhs - prod
    return _trsolve(a, rhs, vec, **p)


def _trsolve_vjp(g, ans, needed, a, b, trans, lower, unit):
    vec = _np.ndim(primal_value(b)) == 1
    if trans == 2 and _is_complex(a):
        gb = _trsolve(wnp.conj(a), g, vec, trans=0, lower=lower, unit=unit)
    else:
        gb = _trsolve(a, g, vec, trans=1 - min(trans, 1), lower=lower, unit=unit)
    ga = None
    if 0 in needed:
        if trans == 0:
            ga = -_outer_last(gb, ans, vec)
        else:
            ga = -_outer_last(ans, gb, vec)
            if trans == 2 and _is_complex(a):
                ga = wnp.conj(ga)
        ga = unbroadcast(ga * _tri_mask(a, lower, unit), a)
    return (ga, unbroadcast(gb, b) if 1 in needed else None)


trsolve_p = Primitive("solve_triangular", _trsolve_impl, fmt="{0}⁻¹ {1}")
trsolve_p.jvp_all = _trsolve_jvp
trsolve_p.vjp_all = _trsolve_vjp


def solve_triangular(
    a: Any,
    b: Any,
    trans: int | str = 0,
    lower: bool = False,
    unit_diagonal: bool = False,
    overwrite_b: bool = False,
    check_finite: bool = True,
) -> Any:
    """x with op(a)·x = b, op(a) = a, aᵀ or aᴴ (``trans`` 0/'N', 1/'T', 2/'C'), reading the
    lower or upper triangle of ``a`` (diagonal taken as 1 if ``unit_diagonal``).

    JVP: dx = op(a)⁻¹(db − op(da)·x); VJP: b̄ = op(a)⁻ᵀ ḡ and ā = −b̄ xᵀ (−x b̄ᵀ when
    transposed), restricted to the triangle that was read."""
    if trans not in _TRANS:
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', not {trans!r}")
    return trsolve_p(a, b, trans=_TRANS[trans], lower=bool(lower), unit=bool(unit_diagonal))


# ---------------------------------------------------------------------------------------------
# Cholesky: SciPy's spelling of wengert.numpy.linalg.cholesky (one primitive for both).
# ---------------------------------------------------------------------------------------------


def cholesky(
    a: Any, lower: bool = False, overwrite_a: bool = False, check_finite: bool = True
) -> Any:
    """The Cholesky factor of a Hermitian positive-definite ``a``: upper U with a = Uᴴ U
    (SciPy's default, reading the upper triangle of a) or lower L with a = L Lᴴ (reading the
    lower triangle).  The derivative is that of the function computed, so a cotangent lives on
    the triangle read (see :func:`wengert.numpy.linalg.cholesky`):
    dL = L·Φ(L⁻¹ dA L⁻ᴴ), Φ taking the lower triangle with the diagonal halved."""
    return wnp.linalg.cholesky(a, upper=not lower)


def cho_factor(
    a: Any, lower: bool = False, overwrite_a: bool = False, check_finite: bool = True
) -> tuple:
    """(c, lower) for :func:`cho_solve`.  Unlike SciPy, the other triangle of c holds zeros,
    not leftovers of ``a`` (cho_solve reads only the factor's triangle either way)."""
    return cholesky(a, lower=lower), bool(lower)


def cho_solve(
    c_and_lower: tuple, b: Any, overwrite_b: bool = False, check_finite: bool = True
) -> Any:
    """x with a·x = b, given ``(c, lower) = cho_factor(a)``: two triangular solves
    (a composite of :func:`solve_triangular`)."""
    c, lower = c_and_lower
    h = 2 if _is_complex(c) else 1
    if lower:  # a = L Lᴴ
        y = solve_triangular(c, b, lower=True)
        return solve_triangular(c, y, trans=h, lower=True)
    y = solve_triangular(c, b, trans=h, lower=False)  # a = Uᴴ U
    return solve_triangular(c, y, lower=False)


# ---------------------------------------------------------------------------------------------
# Sylvester equations: A X + X B = Q.
# ---------------------------------------------------------------------------------------------


def _sylvester_jvp(ts, ans, a, b, q):
    # A dX + dX B = dQ − dA X − X dB
    rhs = ts[2]
    if ts[0] is not None:
        rhs = -wnp.matmul(ts[0], ans) if rhs is None else rhs - wnp.matmul(ts[0], ans)
    if ts[1] is not None:
        rhs = -wnp.matmul(ans, ts[1]) if rhs is None else rhs - wnp.matmul(ans, ts[1])
    if rhs.ndim > ans.ndim:  # a batch of tangents: the coefficients broadcast over it
        lead = tuple(rhs.shape[: rhs.ndim - ans.ndim])
        return sylvester_p(_batch_to(a, lead), _batch_to(b, lead), rhs)
    return sylvester_p(a, b, rhs)


def _batch_to(x, lead):
    """``x`` broadcast to ``lead`` + its own (stacked) shape."""
    shape = tuple(_np.shape(primal_value(x)))
    return wnp.broadcast_to(x, lead + shape)


def _sylvester_vjp(g, ans, needed, a, b, q):
    # The map Q ↦ X has transpose G ↦ sylvester(Aᵀ, Bᵀ, G); then Ā = −Q̄ Xᵀ, B̄ = −Xᵀ Q̄.
    gq = sylvester_p(_mT(a), _mT(b), g)
    return (
        unbroadcast(-wnp.matmul(gq, _mT(ans)), a) if 0 in needed else None,
        unbroadcast(-wnp.matmul(_mT(ans), gq), b) if 1 in needed else None,
        unbroadcast(gq, q) if 2 in needed else None,
    )


def _sylvester_impl(a, b, q):
    shape = _np.broadcast_shapes(_np.shape(a)[:-2], _np.shape(b)[:-2], _np.shape(q)[:-2])
    n, m = _np.shape(a)[-1], _np.shape(b)[-1]
    a = _np.broadcast_to(a, shape + (n, n))
    b = _np.broadcast_to(b, shape + (m, m))
    q = _np.broadcast_to(q, shape + (n, m))
    return _sl.solve_sylvester(a, b, q)


sylvester_p = Primitive("solve_sylvester", _sylvester_impl, fmt="sylvester({0}, {1}, {2})")
sylvester_p.jvp_all = _sylvester_jvp
sylvester_p.vjp_all = _sylvester_vjp


def solve_sylvester(a: Any, b: Any, q: Any) -> Any:
    """X with A X + X B = Q.  JVP: A dX + dX B = dQ − dA X − X dB (another Sylvester solve);
    VJP: Q̄ = solve_sylvester(Aᵀ, Bᵀ, ḡ), Ā = −Q̄ Xᵀ, B̄ = −Xᵀ Q̄."""
    return sylvester_p(a, b, q)


# ---------------------------------------------------------------------------------------------
# Matrix functions
# ---------------------------------------------------------------------------------------------


def _block_frechet(f, a, e):
    """L_f(A, E), the Fréchet derivative of the matrix function f at A in the direction E,
    read off f([[A, E], [0, A]]) (E may carry leading batch axes)."""
    n = _np.shape(primal_value(a))[-1]
    shape = _np.broadcast_shapes(tuple(e.shape), _np.shape(primal_value(a)))
    a = wnp.broadcast_to(a, shape)
    e = wnp.broadcast_to(e, shape)
    zero = _np.zeros(shape, _np.result_type(primal_value(a), primal_value(e)))
    top = wnp.concatenate([a, e], axis=-1)
    bottom = wnp.concatenate([zero, a], axis=-1)
    return f(wnp.concatenate([top, bottom], axis=-2))[..., :n, n:]


def _matrix_function(name, impl):
    p = Primitive(name, impl, fmt=name + " {0}")
    p.defjvp(lambda t, ans, a: _block_frechet(p, a, t))
    p.defvjp(lambda g, ans, a: unbroadcast(_block_frechet(p, _mT(a), g), a))
    return p.saving((0,))


def _expm_impl(a):
    return _sl.expm(a)


def _logm_impl(a):
    return _sl.logm(a)


expm_p = _matrix_function("expm", _expm_impl)
logm_p = _matrix_function("logm", _logm_impl)


def expm(A: Any) -> Any:
    """The matrix exponential e^A = Σ Aᵏ/k!.  Its derivative in the direction E is the
    Fréchet derivative, the upper-right block of e^[[A, E], [0, A]]; the VJP uses Aᵀ."""
    return expm_p(A)


def logm(A: Any, disp: bool = True) -> Any:
    """The principal matrix logarithm (A without eigenvalues on the closed negative real axis).
    Derivatives by the same block-triangle identity as :func:`expm`, so their accuracy is
    that of SciPy's logm (about 1e-12 relative on well-conditioned A)."""
    if not disp:
        raise NotImplementedError("logm: only disp=True is supported on traced arrays")
    return logm_p(A)


def _sqrtm_impl(a):
    return _sl.sqrtm(a)


sqrtm_p = Primitive("sqrtm", _sqrtm_impl, fmt="√{0}")
sqrtm_p.defjvp(lambda t, ans, a: _sylvester_batched(ans, t))
sqrtm_p.defvjp(lambda g, ans, a: unbroadcast(sylvester_p(_mT(ans), _mT(ans), g), a))
sqrtm_p.saving((ANS,))


def _sylvester_batched(x, t):
    """dX with X dX + dX X = dA, for a tangent dA that may carry leading batch axes."""
    if t.ndim > x.ndim:
        xb = _batch_to(x, tuple(t.shape[: t.ndim - x.ndim]))
        return sylvester_p(xb, xb, t)
    return sylvester_p(x, x, t)


def sqrtm(A: Any) -> Any:
    """The principal square root X of A (X·X = A).  From X dX + dX X = dA, the JVP is a
    Sylvester solve with X on both sides and the VJP the same solve with Xᵀ."""
    return sqrtm_p(A)
