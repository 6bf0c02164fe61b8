"""``wengert.numpy.linalg``: ``numpy.linalg`` differentiable in both modes to any order, for
stacked matrices too; plain ``np.linalg.foo(x)`` on traced arrays lands here.

Solvers and decompositions are primitives (their rules are in ``_linalg.py``); inv, lstsq,
matrix_power, multi_dot, tensorsolve, tensorinv, the norms and cond are composites of them.

Conventions (read before relying on a derivative):

* ``eigh``, ``eigvalsh`` and ``cholesky`` read one triangle of A, as NumPy/LAPACK do; their
  derivatives are those of the function NumPy computes, so the cotangent of A lives on that
  triangle (off-diagonal entries count twice).  For a symmetric parametrisation A = f(θ) the
  chain rule gives the usual answer.
* Eigenvectors and singular vectors are defined up to sign (phase, for complex matrices); only
  functions that do not depend on that choice (V diag(w) Vᴴ, |U|, projectors) have a
  well-defined derivative.
* At repeated eigenvalues (``eigh``, ``eig``) or repeated singular values (``svd``) the
  derivative of the vectors is not defined: its entries come out NaN, never a large
  meaningless number.  The same holds for singular vectors of a zero singular value of a
  non-square (or complex) matrix.  Eigenvalues and singular values alone are always fine in
  reverse mode (the vector terms are skipped when the vectors are unused); in forward mode the
  NaN stays in the unused vector tangents.
* ``det``, ``slogdet``, ``inv``, ``solve``, ``qr`` and ``cholesky`` need an invertible matrix
  (or triangular factor) for their derivative; a singular one raises ``LinAlgError``.
* ``pinv`` and ``lstsq`` differentiate the pseudo-inverse at constant rank; singular values cut
  off by ``rcond`` are treated as exactly zero.
* ``norm`` and friends: the 2-norm / Frobenius norm at 0, |x| at 0, and the spectral and
  nuclear norms of a zero matrix have derivative 0 (a subgradient), never NaN.
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import numpy as _np

from wengert.core import primal_value

from . import _contract as C
from . import _elementwise as E
from . import _indexing as I
from . import _reductions as R
from . import _shape as S
from ._linalg import (
    cholesky_p,
    det_p,
    eig_p,
    eigh_p,
    is_traced,
    mH,
    mT,
    pinv_p,
    qr_p,
    slogdet_p,
    solve_p,
    svd_p,
)
from ._linalg import inv as _inv

__all__ = [
    "LinAlgError",
    "EigResult",
    "EighResult",
    "QRResult",
    "SlogdetResult",
    "SVDResult",
    "solve",
    "inv",
    "pinv",
    "lstsq",
    "det",
    "slogdet",
    "cholesky",
    "eigh",
    "eigvalsh",
    "eig",
    "eigvals",
    "svd",
    "svdvals",
    "qr",
    "matrix_power",
    "multi_dot",
    "tensorsolve",
    "tensorinv",
    "norm",
    "vector_norm",
    "matrix_norm",
    "cond",
    "matrix_rank",
    "trace",
    "diagonal",
    "outer",
    "matmul",
    "tensordot",
    "cross",
    "vecdot",
    "matrix_transpose",
]

LinAlgError = _np.linalg.LinAlgError
_NL = _np.linalg


class EigResult(NamedTuple):
    """``eig``: eigenvalues w and right eigenvectors V (columns), A V = V diag(w)."""

    eigenvalues: Any
    eigenvectors: Any


class EighResult(NamedTuple):
    """``eigh``: ascending eigenvalues w and orthonormal eigenvectors V, A = V diag(w) Vᴴ."""

    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    """``qr``: A = Q R."""

    Q: Any
    R: Any


class SlogdetResult(NamedTuple):
    """``slogdet``: det A = sign · exp(logabsdet)."""

    sign: Any
    logabsdet: Any


class SVDResult(NamedTuple):
    """``svd``: A = U diag(S) Vh."""

    U: Any
    S: Any
    Vh: Any


def _shape(x) -> tuple:
    return _np.shape(primal_value(x))


def _square(a, who: str) -> tuple:
    shape = _shape(a)
    if len(shape) < 2:
        raise LinAlgError(
            f"{who}: {len(shape)}-dimensional array given. Array must be at least two-dimensional"
        )
    if shape[-1] != shape[-2]:
        raise LinAlgError(f"{who}: last 2 dimensions of the array must be square, got {shape}")
    return shape


def _at_least_2d(a, who: str) -> tuple:
    shape = _shape(a)
    if len(shape) < 2:
        raise LinAlgError(
            f"{who}: {len(shape)}-dimensional array given. Array must be at least two-dimensional"
        )
    return shape


def _cplx(x) -> bool:
    return _np.iscomplexobj(primal_value(x))


# ---------------------------------------------------------------------------------------------
# Solvers and inverses
# ---------------------------------------------------------------------------------------------


def solve(a, b):
    """x with A x = b.  ``b`` of shape (M,) is one vector; otherwise a stack (..., M, K).

    dx = A⁻¹(db − dA x);  b̄ = A⁻ᵀ x̄,  Ā = −b̄ xᵀ.
    """
    if not is_traced(a, b):
        return _NL.solve(a, b)
    _square(a, "solve")
    if len(_shape(b)) == 1:
        return S.squeeze(solve_p(a, S.reshape(b, (-1, 1))), -1)
    return solve_p(a, b)


def inv(a):
    """A⁻¹ (stacked), computed as solve(A, I).  d(A⁻¹) = −A⁻¹ dA A⁻¹."""
    if not is_traced(a):
        return _NL.inv(a)
    _square(a, "inv")
    return _inv(a)


_NO_VALUE = object()


def pinv(a, rcond=None, hermitian: bool = False, *, rtol=_NO_VALUE):
    """The Moore–Penrose pseudo-inverse A⁺ (by SVD, singular values below rcond·max(s) cut).

    Its derivative is Golub and Pereyra's, valid at constant rank:
    dA⁺ = −A⁺ dA A⁺ + A⁺A⁺ᴴ dAᴴ (I − AA⁺) + (I − A⁺A) dAᴴ A⁺ᴴ A⁺.
    """
    kw = {} if rtol is _NO_VALUE else {"rtol": rtol}
    if not is_traced(a):
        return _NL.pinv(a, rcond=rcond, hermitian=hermitian, **kw)
    shape = _at_least_2d(a, "pinv")
    if rcond is None:
        if rtol is _NO_VALUE:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(shape[-2:]) * _np.finfo(_np.result_type(primal_value(a))).eps
        else:
            rcond = rtol
    elif rtol is not _NO_VALUE:
        raise ValueError("pinv: `rtol` and `rcond` can't be both set.")
    return pinv_p(a, rcond=rcond, hermitian=bool(hermitian))


def lstsq(a, b, rcond=None):
    """Least squares: (x, residuals, rank, s) minimising ‖b − A x‖₂, as ``numpy.linalg.lstsq``.

    x = A⁺ b (a composite of ``pinv``), residuals Σ|b − A x|² per column (when A has full
    column rank and M > N, else empty), rank (an int) and the singular values s of A.
    """
    if not is_traced(a, b):
        return _NL.lstsq(a, b, rcond=rcond)
    sa, sb = _shape(a), _shape(b)
    if len(sa) != 2 or len(sb) not in (1, 2):
        raise LinAlgError(f"lstsq: A must be 2-D and b 1-D or 2-D, got shapes {sa} and {sb}")
    m, n = sa
    if sb[0] != m:
        raise LinAlgError("lstsq: Incompatible dimensions")
    dt = _np.result_type(primal_value(a), primal_value(b), 1.0)
    if rcond is None:
        rcond = _np.finfo(dt).eps * max(m, n)
    s = svdvals(a)
    sv = _np.asarray(primal_value(s))
    rank = int(_np.sum(sv > rcond * sv.max())) if sv.size else 0
    x = C.matmul(pinv_p(a, rcond=rcond, hermitian=False), b)
    real_dt = dt.type(0).real.dtype
    if rank == n and m > n:
        r = b - C.matmul(a, x)
        resid = R.sum(E.real(r * E.conj(r)) if _np.iscomplexobj(primal_value(r)) else r * r, 0)
        if len(sb) == 1:
            resid = S.reshape(resid, (1,))
    else:
        resid = _np.array([], real_dt)
    return x, resid, rank, s


# ---------------------------------------------------------------------------------------------
# Determinants
# ---------------------------------------------------------------------------------------------


def det(a):
    """det A (stacked).  d det = det · tr(A⁻¹ dA);  Ā = ḡ det A⁻ᵀ."""
    if not is_traced(a):
        return _NL.det(a)
    _square(a, "det")
    return det_p(a)


def slogdet(a) -> SlogdetResult:
    """(sign, log|det A|).  d log|det| = Re tr(A⁻¹ dA); for complex A, d sign = sign · i Im tr(A⁻¹ dA)."""
    if not is_traced(a):
        return SlogdetResult(*_NL.slogdet(a))
    _square(a, "slogdet")
    return SlogdetResult(*slogdet_p(a))


# ---------------------------------------------------------------------------------------------
# Decompositions
# ---------------------------------------------------------------------------------------------


def cholesky(a, /, *, upper: bool = False):
    """The Cholesky factor L (A = L Lᴴ), or Lᴴ with ``upper``, read from that triangle of A.

    dL = L Φ(L⁻¹ dA L⁻ᴴ) with Φ(X) = tril(X, −1) + ½ diag(X)."""
    if not is_traced(a):
        return _NL.cholesky(a, upper=upper)
    _square(a, "cholesky")
    return cholesky_p(a, upper=bool(upper))


def _uplo(UPLO: str) -> bool:
    u = str(UPLO).upper()
    if u not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    return u == "L"


def eigh(a, UPLO: str = "L") -> EighResult:
    """Eigenvalues (ascending) and orthonormal eigenvectors of a Hermitian matrix (one
    triangle read).  With X = Vᴴ dA V: dw = Re diag X, dV = V (F ∘ X), F_ij = 1/(w_j − w_i)."""
    lower = _uplo(UPLO)
    if not is_traced(a):
        return EighResult(*_NL.eigh(a, UPLO=UPLO))
    _square(a, "eigh")
    return EighResult(*eigh_p(a, lower=lower))


def eigvalsh(a, UPLO: str = "L"):
    """The eigenvalues of a Hermitian matrix: dw = Re diag(Vᴴ dA V)."""
    lower = _uplo(UPLO)
    if not is_traced(a):
        return _NL.eigvalsh(a, UPLO=UPLO)
    _square(a, "eigvalsh")
    return eigh_p(a, lower=lower)[0]


def eig(a) -> EigResult:
    """Eigenvalues and right eigenvectors of a square matrix (complex unless all are real).

    dw = diag(V⁻¹ dA V).  The eigenvectors' derivative keeps NumPy's normalisation (unit
    columns, largest entry real); it is NaN at repeated eigenvalues."""
    if not is_traced(a):
        return EigResult(*_NL.eig(a))
    _square(a, "eig")
    return EigResult(*eig_p(a))


def eigvals(a):
    """The eigenvalues of a square matrix: dw = diag(V⁻¹ dA V)."""
    if not is_traced(a):
        return _NL.eigvals(a)
    _square(a, "eigvals")
    return eig_p(a)[0]


def svd(a, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False):
    """Singular value decomposition A = U diag(S) Vh (stacked), or just S.

    ds = Re diag(Uᴴ dA V).  The derivative of U and Vh exists where the singular values are
    distinct (and non-zero for non-square or complex A); elsewhere its entries are NaN.  With
    ``full_matrices`` the extra columns of U (rows of Vh) are a basis of the orthogonal
    complement, differentiated in the gauge where they turn as little as possible.
    ``hermitian=True`` is computed by the general SVD for traced arrays."""
    if not is_traced(a):
        return _NL.svd(a, full_matrices=full_matrices, compute_uv=compute_uv, hermitian=hermitian)
    _at_least_2d(a, "svd")
    if not compute_uv:
        return svd_p(a, full=False)[1]
    return SVDResult(*svd_p(a, full=bool(full_matrices)))


def svdvals(x, /):
    """The singular values of a stack of matrices, in descending order."""
    if not is_traced(x):
        return _NL.svd(x, compute_uv=False)
    _at_least_2d(x, "svdvals")
    return svd_p(x, full=False)[1]


def qr(a, mode: str = "reduced"):
    """QR decomposition A = Q R (``mode``: 'reduced', 'complete' or 'r').

    For M ≥ N, with C = Qᴴ dA R⁻¹ and Ω = tril(C, −1) − tril(C, −1)ᴴ (+ i Im diag C):
    dR = Qᴴ dA − Ω R, dQ = Q (Ω − C) + dA R⁻¹.  Wide matrices factor their first M columns
    and take R's remaining columns as Qᴴ A₂.  R must be invertible for the derivative."""
    if not is_traced(a):
        return _NL.qr(a, mode=mode)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(
            f"qr: mode {mode!r} is not differentiable; use 'reduced', 'complete' or 'r'"
        )
    m, n = _at_least_2d(a, "qr")[-2:]
    if m >= n:
        q, r = qr_p(a, complete=mode == "complete" and m > n)
    else:
        q, r1 = qr_p(I.getitem(a, (Ellipsis, slice(None), slice(0, m))), complete=False)
        r2 = C.matmul(mH(q), I.getitem(a, (Ellipsis, slice(None), slice(m, None))))
        r = S.concatenate([r1, r2], axis=-1)
    return r if mode == "r" else QRResult(q, r)


# ---------------------------------------------------------------------------------------------
# Products
# ---------------------------------------------------------------------------------------------


def matrix_power(a, n: int):
    """Aⁿ for an integer n (n < 0 inverts first) by repeated squaring."""
    if not is_traced(a):
        return _NL.matrix_power(a, n)
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError("matrix_power: exponent must be an integer") from None
    shape = _square(a, "matrix_power")
    if n == 0:
        eye = _np.eye(shape[-1], dtype=_np.result_type(primal_value(a)))
        return _np.broadcast_to(eye, shape).copy()
    if n < 0:
        a, n = _inv(a), -n
    result = None
    while n:
        if n & 1:
            result = a if result is None else C.matmul(result, a)
        n >>= 1
        if n:
            a = C.matmul(a, a)
    return result


def _chain_order(dims: list) -> list:
    """Cheapest parenthesisation of a matrix chain with shapes dims[i] × dims[i+1] (the
    textbook dynamic programme); split[i][j] is where chain i..j divides."""
    k = len(dims) - 1
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(1, k):
        for i in range(k - length):
            j = i + length
            cost[i][j] = None
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, s
    return split


def multi_dot(arrays, *, out=None):
    """A₁ A₂ ⋯ Aₙ in the cheapest order; the first (last) array may be a vector."""
    arrays = list(arrays)
    if not is_traced(*arrays):
        return _NL.multi_dot(arrays, out=out)
    if out is not None:
        raise TypeError("multi_dot: 'out=' cannot be differentiated")
    if len(arrays) < 2:
        raise ValueError("multi_dot: expecting at least two arrays.")
    if len(arrays) == 2:
        return C.dot(arrays[0], arrays[1])
    first_vec = len(_shape(arrays[0])) == 1
    last_vec = len(_shape(arrays[-1])) == 1
    if first_vec:
        arrays[0] = S.reshape(arrays[0], (1, -1))
    if last_vec:
        arrays[-1] = S.reshape(arrays[-1], (-1, 1))
    for x in arrays:
        if len(_shape(x)) != 2:
            raise ValueError("multi_dot: the inner arrays must be two-dimensional")
    dims = [_shape(x)[0] for x in arrays] + [_shape(arrays[-1])[1]]
    split = _chain_order(dims)

    def product(i, j):
        if i == j:
            return arrays[i]
        s = split[i][j]
        return C.matmul(product(i, s), product(s + 1, j))

    res = product(0, len(arrays) - 1)
    if first_vec and last_vec:
        return S.reshape(res, ())
    if first_vec or last_vec:
        return S.ravel(res)
    return res


def tensorsolve(a, b, axes=None):
    """x with tensordot(a, x, x.ndim) = b: a reshaped to a square matrix, then ``solve``."""
    if not is_traced(a, b):
        return _NL.tensorsolve(a, b, axes=axes)
    an = len(_shape(a))
    if axes is not None:
        allaxes = list(range(an))
        for k in axes:
            allaxes.remove(k)
            allaxes.insert(an, k)
        a = S.transpose(a, allaxes)
    sa, sb = _shape(a), _shape(b)
    oldshape = sa[-(an - len(sb)) :]
    prod = int(_np.prod(oldshape, dtype=int))
    if int(_np.prod(sa, dtype=int)) != prod * prod:
        raise LinAlgError(
            "tensorsolve: input arrays must satisfy the requirement "
            "prod(a.shape[b.ndim:]) == prod(a.shape[:b.ndim])"
        )
    x = solve(S.reshape(a, (prod, prod)), S.ravel(b))
    return S.reshape(x, oldshape)


def tensorinv(a, ind: int = 2):
    """The inverse of a tensor for ``tensordot`` over its first ``ind`` axes."""
    if not is_traced(a):
        return _NL.tensorinv(a, ind=ind)
    if ind <= 0:
        raise ValueError("tensorinv: invalid ind argument.")
    oldshape = _shape(a)
    prod = int(_np.prod(oldshape[ind:], dtype=int))
    invshape = oldshape[ind:] + oldshape[:ind]
    if int(_np.prod(oldshape[:ind], dtype=int)) != prod:
        raise LinAlgError("tensorinv: the first ind axes and the rest must have equal size")
    return S.reshape(_inv(S.reshape(a, (prod, -1))), invshape)


# ---------------------------------------------------------------------------------------------
# Norms: composites with a subgradient 0 wherever the norm is not differentiable at 0.
# ---------------------------------------------------------------------------------------------


def _abs2(x):
    return E.real(x * E.conj(x)) if _cplx(x) else x * x


def _safe_sqrt(s):
    """√s with derivative 0 (not ∞ · 0 = NaN) where s = 0."""
    zero = primal_value(s) == 0
    if not _np.any(zero):
        return E.sqrt(s)
    return E.where_p(zero, 0, E.sqrt(E.where_p(zero, 1, s)))


def _safe_pow(a, p: float):
    """a ** p for a ≥ 0 and p > 0, with value and derivative 0 where a = 0."""
    zero = primal_value(a) == 0
    if not _np.any(zero):
        return a**p
    return E.where_p(zero, 0, E.where_p(zero, 1, a) ** p)


def _ord_number(ord):
    """A NumPy scalar order as a Python number, so it cannot promote float32."""
    if isinstance(ord, (_np.integer, _np.floating)):
        return ord.item()
    return ord


def _vector_norm(x, axes: tuple, keepdims: bool, ord):
    ord = _ord_number(ord)
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    if ord is None or ord == 2:
        return _safe_sqrt(R.sum_p(_abs2(x), axis=axes, keepdims=keepdims))
    if ord == _np.inf:
        return R.max_p(E.absolute(x), axis=axes, keepdims=keepdims)
    if ord == -_np.inf:
        return R.min_p(E.absolute(x), axis=axes, keepdims=keepdims)
    if ord == 0:
        nz = _np.sum(primal_value(x) != 0, axis=axes, keepdims=keepdims)
        return nz.astype(_np.result_type(primal_value(E.absolute(x))))
    if ord == 1:
        return R.sum_p(E.absolute(x), axis=axes, keepdims=keepdims)
    a = E.absolute(x)
    if ord > 0:
        return _safe_pow(R.sum_p(_safe_pow(a, ord), axis=axes, keepdims=keepdims), 1.0 / ord)
    return R.sum_p(a**ord, axis=axes, keepdims=keepdims) ** (1.0 / ord)


def _norm_axes(axis, nd: int) -> tuple:
    axes = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for ax in axes:
        try:
            ax = operator.index(ax)
        except TypeError:
            raise TypeError("'axis' must be None, an integer or a tuple of integers") from None
        if not -nd <= ax < nd:
            raise _np.exceptions.AxisError(ax, nd)
        out.append(ax % nd)
    return tuple(out)


def _spectral(x, row: int, col: int, keepdims: bool, which: str):
    """Norms from the singular values of the (row, col) matrices: 'nuc', 'max' or 'min'."""
    nd = len(_shape(x))
    moved = S.moveaxis(x, [row, col], [nd - 2, nd - 1])
    s = svd_p(moved, full=False)[1]
    if which == "nuc":
        out = R.sum_p(s, axis=(-1,), keepdims=False)
    elif which == "max":
        out = R.max_p(s, axis=(-1,), keepdims=False)
    else:
        out = R.min_p(s, axis=(-1,), keepdims=False)
    zero = _np.all(primal_value(moved) == 0, axis=(-2, -1))
    if _np.any(zero):  # a zero matrix: subgradient 0 (the vectors there are arbitrary)
        out = E.where_p(zero, 0, out)
    if keepdims:
        out = S.expand_dims(out, tuple(sorted((row, col))))
    return out


def _matrix_norm(x, row: int, col: int, keepdims: bool, ord):
    ord = _ord_number(ord)
    if row == col:
        raise ValueError("Duplicate axes given.")
    nd = len(_shape(x))
    neg = (row - nd, col - nd)
    if ord is None or ord in ("fro", "f"):
        return _safe_sqrt(R.sum_p(_abs2(x), axis=tuple(sorted(neg)), keepdims=keepdims))
    if ord == "nuc":
        return _spectral(x, row, col, keepdims, "nuc")
    if ord == 2:
        return _spectral(x, row, col, keepdims, "max")
    if ord == -2:
        return _spectral(x, row, col, keepdims, "min")
    if ord in (1, -1, _np.inf, -_np.inf):
        inner, outer = (neg[0], neg[1]) if ord in (1, -1) else (neg[1], neg[0])
        red = R.max_p if ord in (1, _np.inf) else R.min_p
        sums = R.sum_p(E.absolute(x), axis=(inner,), keepdims=True)
        out = red(sums, axis=(outer,), keepdims=True)
        return out if keepdims else S.squeeze(out, (row, col))
    raise ValueError("Invalid norm order for matrices.")


def norm(x, ord=None, axis=None, keepdims: bool = False):
    """Vector or matrix norm, as ``numpy.linalg.norm``.

    Vectors: ord None/2 (√Σ|x|²), 1, inf, −inf, 0 (a count, constant) or any p
    ((Σ|x|ᵖ)^(1/p)).  Matrices (a 2-D ``x`` or two axes): None/'fro', 'nuc' (Σ s), 2 (max s),
    −2 (min s), 1/−1 (max/min column sum of |x|), inf/−inf (row sums).  Where a norm is not
    differentiable at 0 the derivative is the subgradient 0, never NaN."""
    if not is_traced(x):
        return _NL.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    nd = len(_shape(x))
    if axis is None:
        if ord is None or (ord in ("f", "fro") and nd == 2) or (ord == 2 and nd == 1):
            return _vector_norm(x, tuple(range(-nd, 0)), keepdims, None)
        axis = tuple(range(nd))
    axes = _norm_axes(axis, nd)
    if len(axes) == 1:
        return _vector_norm(x, (axes[0] - nd,), keepdims, ord)
    if len(axes) == 2:
        return _matrix_norm(x, axes[0], axes[1], keepdims, ord)
    raise ValueError("Improper number of dimensions to norm.")


def vector_norm(x, /, *, axis=None, keepdims: bool = False, ord=2):
    """The vector ``ord``-norm over ``axis`` (all axes if None; a tuple of axes is one vector)."""
    if not is_traced(x):
        return _NL.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)
    nd = len(_shape(x))
    axes = tuple(range(nd)) if axis is None else _norm_axes(axis, nd)
    return _vector_norm(x, tuple(sorted(a - nd for a in axes)), keepdims, ord)


def matrix_norm(x, /, *, keepdims: bool = False, ord="fro"):
    """The matrix ``ord``-norm of each matrix in a stack (the last two axes)."""
    if not is_traced(x):
        return _NL.matrix_norm(x, keepdims=keepdims, ord=ord)
    nd = len(_at_least_2d(x, "matrix_norm"))
    return _matrix_norm(x, nd - 2, nd - 1, keepdims, ord)


def cond(x, p=None):
    """The condition number: s_max/s_min for p None/2 (s_min/s_max for −2), else
    norm(x, p) · norm(inv(x), p).  A composite, so it differentiates like its parts."""
    if not is_traced(x):
        return _NL.cond(x, p=p)
    _at_least_2d(x, "cond")
    if p is None or p == 2 or p == -2:
        s = svdvals(x)
        first = I.getitem(s, (Ellipsis, 0))
        last = I.getitem(s, (Ellipsis, -1))
        return last / first if p == -2 else first / last
    _square(x, "cond")
    return norm(x, p, axis=(-2, -1)) * norm(_inv(x), p, axis=(-2, -1))


def matrix_rank(A, tol=None, hermitian: bool = False, *, rtol=None):
    """The numerical rank (an integer: no derivative)."""
    return _NL.matrix_rank(
        primal_value(A), tol=primal_value(tol), hermitian=hermitian, rtol=primal_value(rtol)
    )


# ---------------------------------------------------------------------------------------------
# The array-API functions numpy.linalg also carries
# ---------------------------------------------------------------------------------------------


def _diagonal(x, offset: int):
    m, n = _shape(x)[-2:]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    length = max(0, min(m - r0, n - c0))
    sq = I.getitem(x, (Ellipsis, slice(r0, r0 + length), slice(c0, c0 + length)))
    return C.einsum_p(sq, spec="...ii->...i")


def diagonal(x, /, *, offset: int = 0):
    """The ``offset`` diagonal of each matrix in a stack (the last two axes)."""
    if not is_traced(x):
        return _NL.diagonal(x, offset=offset)
    _at_least_2d(x, "diagonal")
    return _diagonal(x, operator.index(offset))


def trace(x, /, *, offset: int = 0, dtype=None):
    """Σ of the ``offset`` diagonal of each matrix in a stack (the last two axes)."""
    if not is_traced(x):
        return _NL.trace(x, offset=offset, dtype=dtype)
    _at_least_2d(x, "trace")
    return R.sum(_diagonal(x, operator.index(offset)), axis=-1, dtype=dtype)


def outer(x1, x2, /):
    """The outer product x1 x2ᵀ of two vectors."""
    if not is_traced(x1, x2):
        return _NL.outer(x1, x2)
    if len(_shape(x1)) != 1 or len(_shape(x2)) != 1:
        raise ValueError("outer: the input arrays must be one-dimensional")
    return C.outer(x1, x2)


def matmul(x1, x2, /):
    """Stacked matrix product, as ``numpy.matmul``."""
    return C.matmul(x1, x2)


def tensordot(x1, x2, /, *, axes=2):
    """``numpy.tensordot`` (keyword-only ``axes``)."""
    return C.tensordot(x1, x2, axes=axes)


def matrix_transpose(x, /):
    """Swap the last two axes."""
    if not is_traced(x):
        return _NL.matrix_transpose(x)
    _at_least_2d(x, "matrix_transpose")
    return mT(x)


def vecdot(x1, x2, /, *, axis: int = -1):
    """Σ conj(x1)·x2 over ``axis`` (with broadcasting)."""
    if not is_traced(x1, x2):
        return _NL.vecdot(x1, x2, axis=axis)
    return R.sum(E.conj(x1) * x2 if _cplx(x1) else x1 * x2, axis=axis)


def cross(x1, x2, /, *, axis: int = -1):
    """The cross product of 3-vectors along ``axis``."""
    if not is_traced(x1, x2):
        return _NL.cross(x1, x2, axis=axis)
    if _shape(x1)[axis] != 3 or _shape(x2)[axis] != 3:
        raise ValueError("cross: both input arrays must be (arrays of) 3-dimensional vectors")
    a = S.moveaxis(x1, axis, -1)
    b = S.moveaxis(x2, axis, -1)
    ai = [I.getitem(a, (Ellipsis, i)) for i in range(3)]
    bi = [I.getitem(b, (Ellipsis, i)) for i in range(3)]
    out = S.stack(
        [
            ai[1] * bi[2] - ai[2] * bi[1],
            ai[2] * bi[0] - ai[0] * bi[2],
            ai[0] * bi[1] - ai[1] * bi[0],
        ],
        axis=-1,
    )
    return S.moveaxis(out, -1, axis)


def _routes() -> dict:
    """numpy.linalg function -> its wengert version, for ``__array_function__``."""
    table = {}
    for name in __all__:
        target = getattr(_NL, name, None)
        if callable(target) and not isinstance(target, type):
            table[target] = globals()[name]
    return table
