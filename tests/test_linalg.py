"""wengert.numpy.linalg: every function through check_grads (forward and reverse, to order 2)
on single and stacked matrices, real and complex; jacfwd = jacrev; values equal NumPy's;
float32 kept; plain ``np.linalg`` calls routed; and the documented behaviour where derivatives
do not exist (NaN eigen/singular-vector derivatives, subgradient 0 for norms, LinAlgError)."""

import numpy as np
import pytest
from _checks import rng

import wengert.numpy as wnp
from wengert import check_grads, grad, jacfwd, jacrev, jvp, vjp

L = wnp.linalg


def randn(*shape, seed=0, cplx=False):
    r = rng(seed)
    x = r.standard_normal(shape)
    return x + 1j * r.standard_normal(shape) if cplx else x


def well_conditioned(*shape, seed=0, cplx=False):
    """A random square (stack) shifted away from singularity."""
    return randn(*shape, seed=seed, cplx=cplx) + 3 * np.eye(shape[-1])


def check(f, *args, order=2):
    """check_grads in both modes, plus cotangent shapes and dtypes."""
    check_grads(f, args, order=order, modes=("fwd", "rev"))
    out, pull = vjp(f, *args)
    flat = out if isinstance(out, tuple) else (out,)
    cts = pull(
        tuple(np.ones_like(o) for o in flat) if isinstance(out, tuple) else np.ones_like(out)
    )
    for ct, x in zip(cts, args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)


def check_jacobians(f, *args):
    nums = tuple(range(len(args)))
    jf = jacfwd(f, argnums=nums)(*args)
    jr = jacrev(f, argnums=nums)(*args)
    for a, b in zip(jf, jr):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def same_value(f, ref, *args):
    """The traced computation gives NumPy's numbers."""
    out = vjp(f, *args)[0]
    expected = ref(*args)
    outs = out if isinstance(out, tuple) else (out,)
    exps = expected if isinstance(expected, tuple) else (expected,)
    for o, e in zip(outs, exps):
        np.testing.assert_allclose(o, e, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Solvers, inverses, determinants
# ---------------------------------------------------------------------------------------------

SQUARE = [(3, 3), (2, 3, 3), (2, 1, 2, 2)]


@pytest.mark.parametrize("shape", SQUARE, ids=str)
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_solve_inv_det(shape, cplx):
    a = well_conditioned(*shape, cplx=cplx)
    b = randn(*shape[:-1], 2, seed=1, cplx=cplx)
    v = randn(shape[-1], seed=2, cplx=cplx)
    check(L.solve, a, b)
    check(L.solve, a, v)  # one vector right-hand side against a stack
    check(L.inv, a)
    check(L.det, a)
    check(lambda x: tuple(L.slogdet(x)), a)
    same_value(L.solve, np.linalg.solve, a, b)
    same_value(L.inv, np.linalg.inv, a)
    same_value(L.det, np.linalg.det, a)
    if not cplx:
        check_jacobians(L.solve, a, b)
        check_jacobians(L.inv, a)
        check_jacobians(L.det, a)
        check_jacobians(lambda x: L.slogdet(x)[1], a)


def test_solve_broadcasts_batches():
    a = well_conditioned(2, 3, 3)
    b = randn(3, 4, seed=1)  # one matrix against a stack
    check(L.solve, a, b)
    check(L.solve, well_conditioned(3, 3), randn(2, 3, 1, seed=2))
    check_jacobians(L.solve, a, b)
    same_value(L.solve, np.linalg.solve, a, b)


def test_slogdet_negative_determinant_and_names():
    a = well_conditioned(3, 3)
    a[0] *= -1
    res = L.slogdet(a)
    assert res.sign == -1 and np.isclose(res.logabsdet, np.linalg.slogdet(a).logabsdet)
    check(lambda x: L.slogdet(x).logabsdet, a)
    g = grad(lambda x: L.slogdet(x).logabsdet)(a)
    np.testing.assert_allclose(g, np.linalg.inv(a).T, rtol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (2, 4, 3), (3, 3)], ids=str)
def test_pinv(shape):
    a = randn(*shape)
    check(L.pinv, a)
    check_jacobians(L.pinv, a)
    same_value(L.pinv, np.linalg.pinv, a)
    check(L.pinv, randn(*shape, cplx=True))


def test_pinv_rank_deficient():
    """Constant rank: the Golub–Pereyra derivative is exact for an exactly rank-1 matrix,
    along directions that keep the rank (here through a rank-1 parametrisation)."""
    u, v = randn(4, seed=1), randn(3, seed=2)
    check(lambda p, q: L.pinv(wnp.outer(p, q)), u, v)
    np.testing.assert_allclose(L.pinv(np.outer(u, v), rtol=None), np.linalg.pinv(np.outer(u, v)))


@pytest.mark.parametrize("bshape", [(5,), (5, 2)], ids=str)
def test_lstsq(bshape):
    a, b = randn(5, 3), randn(*bshape, seed=1)
    check(lambda x, y: L.lstsq(x, y)[0], a, b)
    check(lambda x, y: L.lstsq(x, y)[1], a, b)  # residuals
    check(lambda x: L.lstsq(x, b)[3], a)  # singular values
    ex, eres, erank, es = np.linalg.lstsq(a, b)
    out = vjp(lambda p: L.lstsq(p, b), a)[0]
    np.testing.assert_allclose(out[0], ex, rtol=1e-10)
    np.testing.assert_allclose(out[1], eres, rtol=1e-10)
    assert out[2] == erank and np.shape(out[1]) == np.shape(eres)
    np.testing.assert_allclose(out[3], es, rtol=1e-12)
    check_jacobians(lambda x, y: L.lstsq(x, y)[0], a, b)
    # underdetermined: minimum-norm solution, no residuals
    a2 = randn(2, 4, seed=3)
    check(lambda x: L.lstsq(x, b[:2])[0], a2)
    assert vjp(lambda x: L.lstsq(x, b[:2])[1], a2)[0].shape == (0,)


# ---------------------------------------------------------------------------------------------
# Decompositions
# ---------------------------------------------------------------------------------------------


def sym(x):
    return x + np.swapaxes(x, -1, -2)


def spd(x):
    """A Hermitian positive definite function of an unconstrained matrix."""
    return x @ wnp.conj(wnp.swapaxes(x, -1, -2)) + np.eye(x.shape[-1], dtype=x.dtype)


@pytest.mark.parametrize("shape", [(3, 3), (2, 3, 3)], ids=str)
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_cholesky(shape, cplx):
    x = randn(*shape, cplx=cplx)
    check(lambda p: L.cholesky(spd(p)), x)
    check(lambda p: L.cholesky(spd(p), upper=True), x)
    a = np.asarray(spd(x))
    same_value(L.cholesky, np.linalg.cholesky, a)
    if not cplx:
        check_jacobians(lambda p: L.cholesky(spd(p)), x)


def test_cholesky_reads_one_triangle():
    """Like LAPACK, cholesky reads the lower (upper) triangle only: its derivative is that of
    the function NumPy computes, so it passes check_grads even in non-symmetric directions."""
    a = np.asarray(spd(randn(3, 3)))
    check(L.cholesky, a)
    check(lambda p: L.cholesky(p, upper=True), a)
    g = grad(lambda p: wnp.sum(L.cholesky(p)))(a)
    assert np.all(np.triu(g, 1) == 0)


def gauge_free_eigh(w, v):
    """Functions of eigh's output that do not depend on the eigenvectors' signs/phases."""
    return w, v @ (w[..., None] * wnp.conj(wnp.swapaxes(v, -1, -2))), wnp.abs(v)


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4)], ids=str)
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_eigh(shape, cplx):
    x = randn(*shape, cplx=cplx)
    h = lambda p: p + wnp.conj(wnp.swapaxes(p, -1, -2))
    check(lambda p: gauge_free_eigh(*L.eigh(h(p))), x)
    check(lambda p: gauge_free_eigh(*L.eigh(h(p), UPLO="U")), x)
    check(lambda p: L.eigvalsh(h(p)), x)
    a = np.asarray(h(x))
    out = L.eigh(a)
    np.testing.assert_allclose(vjp(lambda p: L.eigh(p)[0], a)[0], out.eigenvalues)
    if not cplx:
        check_jacobians(lambda p: L.eigh(h(p))[0], x)
        check_jacobians(lambda p: gauge_free_eigh(*L.eigh(h(p)))[1], x)
        check_jacobians(lambda p: L.eigh(p)[1] ** 2, a)


def test_eigh_reads_one_triangle():
    a = randn(3, 3)  # not symmetric: LAPACK reads one triangle, so does the derivative
    check(lambda p: gauge_free_eigh(*L.eigh(p)), a)
    check(lambda p: gauge_free_eigh(*L.eigh(p, UPLO="U")), a)
    check(lambda p: L.eigh(p)[1] ** 2, a)
    assert isinstance(vjp(L.eigh, a)[0], L.EighResult)


@pytest.mark.parametrize("case", ["real", "complex_pairs", "complex", "batched"])
def test_eig(case):
    if case == "real":  # real matrix, real eigenvalues
        a = sym(randn(3, 3)) + np.diag([0.0, 0.3, 0.9])
    elif case == "complex_pairs":
        a = np.array([[1.0, 2, 0], [-3, 1, 1], [0.5, 0, 2]])
    elif case == "complex":
        a = randn(3, 3, cplx=True)
    else:
        a = randn(2, 3, 3, seed=4)
    check(L.eigvals, a)
    # NumPy normalises eigenvectors (unit columns, largest entry real): differentiated as is
    check(lambda p: tuple(L.eig(p)), a)
    np.testing.assert_allclose(vjp(L.eigvals, a)[0], np.linalg.eigvals(a))
    w = L.eig(a).eigenvalues
    if case == "real":
        check_jacobians(L.eigvals, a)
        assert w.dtype == np.float64
    jf = jacfwd(lambda p: wnp.real(L.eigvals(p)))(a.real)
    jr = jacrev(lambda p: wnp.real(L.eigvals(p)))(a.real)
    np.testing.assert_allclose(jf, jr, rtol=1e-8, atol=1e-10)


def gauge_free_svd(u, s, vh):
    """Sign/phase-free functions of the SVD: |U|, s, |Vh| and the polar factor U Vh."""
    out = (wnp.abs(u), s, wnp.abs(vh))
    if u.shape[-1] == vh.shape[-2]:
        out += (u @ vh,)
    return out


@pytest.mark.parametrize("shape", [(3, 3), (4, 3), (3, 4), (2, 4, 3)], ids=str)
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_svd(shape, cplx):
    a = randn(*shape, cplx=cplx)
    check(lambda p: gauge_free_svd(*L.svd(p, full_matrices=False)), a)
    check(lambda p: L.svd(p, compute_uv=False), a)
    check(L.svdvals, a)
    np.testing.assert_allclose(vjp(L.svdvals, a)[0], np.linalg.svd(a, compute_uv=False))
    if not cplx:
        # real singular vectors are unique up to a sign: differentiate them as they are
        check(lambda p: tuple(L.svd(p, full_matrices=False)), a)
        check_jacobians(L.svdvals, a)
        check_jacobians(lambda p: L.svd(p, full_matrices=False)[0], a)
        check_jacobians(lambda p: L.svd(p, full_matrices=False)[2], a)


@pytest.mark.parametrize("shape", [(4, 2), (2, 4), (2, 3, 2)], ids=str)
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_svd_full_matrices(shape, cplx):
    """The extra columns of U (rows of Vh) span the orthogonal complement; the projector onto
    it is gauge free, and so is everything of the reduced part."""
    a = randn(*shape, cplx=cplx)
    k = min(shape[-2:])

    def f(p):
        u, s, vh = L.svd(p)
        uq, vq = u[..., :, k:], vh[..., k:, :]
        proj_u = uq @ wnp.conj(wnp.swapaxes(uq, -1, -2))
        proj_v = wnp.conj(wnp.swapaxes(vq, -1, -2)) @ vq
        return wnp.abs(u[..., :, :k]), s, wnp.abs(vh[..., :k, :]), proj_u, proj_v

    check(f, a)
    res = vjp(lambda p: L.svd(p), a)[0]
    assert isinstance(res, L.SVDResult) and res.U.shape[-1] == shape[-2]


@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (3, 4), (2, 4, 3), (2, 2, 4)], ids=str)
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_qr(shape, cplx):
    a = randn(*shape, cplx=cplx)
    check(lambda p: tuple(L.qr(p)), a)
    check(lambda p: L.qr(p, mode="r"), a)
    q, r = np.linalg.qr(a)
    out = vjp(lambda p: tuple(L.qr(p)), a)[0]
    np.testing.assert_allclose(out[0], q, atol=1e-12)
    np.testing.assert_allclose(out[1], r, atol=1e-12)
    if not cplx:
        check_jacobians(lambda p: L.qr(p)[0], a)
        check_jacobians(lambda p: L.qr(p)[1], a)


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_qr_complete(cplx):
    a = randn(2, 4, 2, cplx=cplx)

    def f(p):
        q, r = L.qr(p, mode="complete")
        qq = q[..., :, 2:]
        return q[..., :, :2], r, qq @ wnp.conj(wnp.swapaxes(qq, -1, -2))

    check(f, a)
    assert vjp(lambda p: L.qr(p, mode="complete"), a)[0].Q.shape == (2, 4, 4)


# ---------------------------------------------------------------------------------------------
# Degenerate points: documented NaN for the vectors, never garbage; values alone are fine
# ---------------------------------------------------------------------------------------------


def test_eigh_repeated_eigenvalues():
    a = np.diag([1.0, 1.0, 2.0])
    c = np.array([1.0, 2.0, 3.0])
    g = grad(lambda p: wnp.sum(L.eigvalsh(p)))(a)
    np.testing.assert_allclose(g, np.eye(3))  # d trace = I, finite
    g = grad(lambda p: L.eigh(p)[0] @ c)(a)
    assert np.all(np.isfinite(g))
    # the eigenvectors of the repeated pair are not differentiable: NaN, in both modes
    assert np.isnan(grad(lambda p: L.eigh(p)[1][0, 0] ** 2)(a)).any()
    _, (dw, dv) = jvp(lambda p: tuple(L.eigh(p)), (a,), (sym(randn(3, 3)),))
    assert np.all(np.isfinite(dw)) and np.isnan(dv[:, :2]).any()
    # a simple eigenvalue's vector is still fine
    assert np.all(np.isfinite(grad(lambda p: L.eigh(p)[1][2, 2] ** 2)(a)))


def test_svd_repeated_and_zero_singular_values():
    q = np.linalg.qr(randn(3, 3))[0]  # orthogonal: all singular values 1
    g = grad(lambda p: wnp.sum(L.svdvals(p)))(q)
    u, s, vh = np.linalg.svd(q)
    np.testing.assert_allclose(g, u @ vh, atol=1e-12)
    assert np.isnan(grad(lambda p: wnp.sum(L.svd(p)[0] ** 3))(q)).any()
    # a zero singular value of a non-square matrix: U's derivative is not defined there
    a = np.outer(randn(4), randn(3, seed=1))[:, :2] @ np.eye(2)
    a = np.c_[a[:, :1], 2 * a[:, :1]]  # rank one, 4×2
    assert np.all(np.isfinite(grad(lambda p: wnp.sum(L.svdvals(p)))(a)))
    assert np.isnan(grad(lambda p: wnp.sum(L.svd(p, full_matrices=False)[0] ** 3))(a)).any()


def test_singular_matrix_raises():
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert L.det(a) == 0.0
    with pytest.raises(np.linalg.LinAlgError, match="adjugate"):
        grad(L.det)(a)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        jvp(lambda p: L.slogdet(p)[1], (a,), (a,))
    with pytest.raises(np.linalg.LinAlgError):
        grad(lambda p: wnp.sum(L.inv(p)))(a)


# ---------------------------------------------------------------------------------------------
# Products and tensors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, -1, -2])
def test_matrix_power(n):
    a = well_conditioned(2, 3, 3) / 3
    check(lambda p: L.matrix_power(p, n), a)
    np.testing.assert_allclose(
        vjp(lambda p: L.matrix_power(p, n), a)[0], np.linalg.matrix_power(a, n), rtol=1e-10
    )
    if n:
        check_jacobians(lambda p: L.matrix_power(p, n), a[0])


@pytest.mark.parametrize(
    "shapes", [[(3,), (3, 4), (4, 2), (2,)], [(2, 5), (5, 3), (3, 4)], [(4,), (4, 2)]], ids=str
)
def test_multi_dot(shapes):
    arrays = [randn(*s, seed=k) for k, s in enumerate(shapes)]
    f = lambda *xs: L.multi_dot(list(xs))
    check(f, *arrays)
    np.testing.assert_allclose(vjp(f, *arrays)[0], np.linalg.multi_dot(arrays), rtol=1e-12)
    check_jacobians(f, *arrays)


def test_tensorsolve_tensorinv():
    a = randn(6, 2, 3) + 3 * np.eye(6).reshape(6, 2, 3)
    b = randn(6, seed=1)
    check(L.tensorsolve, a, b)
    np.testing.assert_allclose(vjp(L.tensorsolve, a, b)[0], np.linalg.tensorsolve(a, b))
    a2 = randn(2, 3, 6) + 3 * np.eye(6).reshape(6, 2, 3).transpose(1, 2, 0)
    check(lambda p: L.tensorsolve(p, b, axes=(0, 1)), a2)
    t = randn(2, 3, 6) + 3 * np.eye(6).reshape(2, 3, 6)
    check(lambda p: L.tensorinv(p, ind=2), t)
    np.testing.assert_allclose(vjp(L.tensorinv, t)[0], np.linalg.tensorinv(t))
    check_jacobians(L.tensorinv, t)


def test_array_api_aliases():
    a, b = randn(2, 3, 4), randn(2, 3, 4, seed=1)
    check(lambda p: L.trace(p, offset=1), a)
    check(lambda p: L.diagonal(p, offset=-1), a)
    check(L.matrix_transpose, a)
    check(L.outer, randn(3), randn(2, seed=1))
    check(L.matmul, a, np.swapaxes(b, -1, -2))
    check(lambda p, q: L.tensordot(p, q, axes=2), a, np.transpose(b, (1, 2, 0)))
    check(lambda p, q: L.vecdot(p, q), a + 1j * b, b)
    check(lambda p, q: L.cross(p, q, axis=1), a[:, :, :3], b[:, :, 1:])
    for name, args, kw in [
        ("trace", (a,), {"offset": 1}),
        ("diagonal", (a,), {"offset": -1}),
        ("cross", (a[..., :3], b[..., :3]), {}),
        ("vecdot", (a, b), {}),
    ]:
        np.testing.assert_allclose(
            vjp(lambda *xs: getattr(L, name)(*xs, **kw), *args)[0],
            getattr(np.linalg, name)(*args, **kw),
        )


# ---------------------------------------------------------------------------------------------
# Norms
# ---------------------------------------------------------------------------------------------

VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 3, 0.5, -1.5]
MATRIX_ORDS = [None, "fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS, ids=str)
def test_vector_norms(ord):
    x = randn(3, 4)
    for axis, keepdims in [(None, False), (1, False), (0, True), (-1, True)]:
        if axis is None and ord is not None and ord != 2:
            continue
        f = lambda p: L.norm(p if axis is not None else p.ravel(), ord, axis, keepdims)
        check(f, x)
        ref = np.linalg.norm(x if axis is not None else x.ravel(), ord, axis, keepdims)
        np.testing.assert_allclose(vjp(f, x)[0], ref)
    check(lambda p: L.norm(p, ord, axis=1), randn(3, 4, cplx=True))
    o = 2 if ord is None else ord
    check(lambda p: L.vector_norm(p, ord=o, axis=(0, 2), keepdims=True), randn(2, 3, 2))
    check_jacobians(lambda p: L.norm(p, ord, axis=-1), x)


@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
def test_matrix_norms(ord):
    x = randn(2, 3, 4)
    check(lambda p: L.norm(p, ord, axis=(1, 2)), x)
    check(lambda p: L.norm(p, ord, axis=(2, 0), keepdims=True), x)
    check(lambda p: L.matrix_norm(p, ord="fro" if ord is None else ord), x)
    check(lambda p: L.norm(p, ord), x[0])
    check(lambda p: L.norm(p, ord, axis=(-2, -1)), randn(2, 3, 3, cplx=True))
    for args in [(ord, (1, 2)), (ord, (2, 0), True)]:
        np.testing.assert_allclose(vjp(lambda p: L.norm(p, *args), x)[0], np.linalg.norm(x, *args))
    check_jacobians(lambda p: L.norm(p, ord, axis=(1, 2)), x)


def test_norm_default_flattens_everything():
    x = randn(2, 3, 4)
    check(L.norm, x)
    check(lambda p: L.norm(p, keepdims=True), x)
    check(L.vector_norm, x)
    np.testing.assert_allclose(vjp(L.norm, x)[0], np.linalg.norm(x))


@pytest.mark.parametrize("ord", VECTOR_ORDS + [0], ids=str)
def test_vector_norm_at_zero_is_subgradient_zero(ord):
    for x in (np.zeros(3), np.array([0.0, 1.5, -2.0])):
        if ord is not None and ord < 0:
            continue  # |0|^p = inf for p < 0: NumPy itself divides by zero there
        g = grad(lambda p: L.norm(p, ord))(x)
        assert np.all(np.isfinite(g)), (ord, x, g)
        assert np.all(g[x == 0] == 0) or (ord is not None and ord < 1 and x.any())
        _, t = jvp(lambda p: L.norm(p, ord), (x,), (np.ones(3),))
        assert np.isfinite(t)
    h = jacfwd(grad(lambda p: L.norm(p)))(np.zeros(3))
    assert np.all(np.isfinite(h))
    assert np.all(grad(lambda p: L.norm(p))(np.zeros(3, complex)) == 0)


@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
def test_matrix_norm_at_zero_is_subgradient_zero(ord):
    z = np.zeros((2, 3, 3))
    g = grad(lambda p: wnp.sum(L.matrix_norm(p, ord="fro" if ord is None else ord)))(z)
    assert np.all(g == 0)
    _, t = jvp(lambda p: L.norm(p, ord, axis=(1, 2)), (z,), (randn(2, 3, 3),))
    assert np.all(np.isfinite(t))


def test_cond_and_rank():
    a = well_conditioned(2, 3, 3)
    for p in [None, 2, -2, 1, np.inf, "fro", "nuc"]:
        check(lambda x: L.cond(x, p), a)
        np.testing.assert_allclose(vjp(lambda x: L.cond(x, p), a)[0], np.linalg.cond(a, p))
    assert grad(lambda x: L.matrix_rank(x) * wnp.sum(x))(a[0]).shape == (3, 3)
    assert L.matrix_rank(a[0]) == 3 and list(L.matrix_rank(a)) == [3, 3]


# ---------------------------------------------------------------------------------------------
# dtypes, routing from plain numpy, errors
# ---------------------------------------------------------------------------------------------

FLOAT32_CASES = {
    "solve": lambda p: L.solve(p, np.ones(3, np.float32)),
    "inv": L.inv,
    "det": L.det,
    "slogdet": lambda p: L.slogdet(p)[1],
    "pinv": L.pinv,
    "cholesky": lambda p: L.cholesky(spd(p)),
    "eigh": lambda p: gauge_free_eigh(*L.eigh(p))[1],
    "eigvals": lambda p: wnp.real(L.eigvals(p)),
    "svd": lambda p: gauge_free_svd(*L.svd(p))[3],
    "qr": lambda p: L.qr(p)[1],
    "norm": lambda p: L.norm(p, "nuc"),
    "vnorm": lambda p: L.norm(p, 3, axis=0),
    "matrix_power": lambda p: L.matrix_power(p, -2),
}


@pytest.mark.parametrize("name", FLOAT32_CASES)
def test_float32_stays_float32(name):
    f = FLOAT32_CASES[name]
    a = well_conditioned(3, 3).astype(np.float32)
    out, pull = vjp(f, a)
    assert out.dtype == np.float32, out.dtype
    assert pull(np.ones_like(out))[0].dtype == np.float32
    _, t = jvp(f, (a,), (np.ones_like(a),))
    assert t.dtype == np.float32
    check_grads(f, (a,), order=1)


def test_plain_numpy_calls_are_routed():
    a, b = well_conditioned(3, 3), randn(3, seed=1)

    def f(x):
        w, v = np.linalg.eigh(x + x.T)
        s = np.linalg.svd(x, compute_uv=False)
        q, r = np.linalg.qr(x)
        return (
            np.sum(np.linalg.solve(x, b)) + np.linalg.det(x) + np.linalg.slogdet(x)[1]
            + np.sum(np.linalg.inv(x)) + np.sum(w) + np.sum(s) + np.linalg.norm(x, "nuc")
            + np.sum(np.linalg.cholesky(x @ x.T)) + np.sum(np.abs(r)) + np.linalg.norm(b @ x)
            + np.sum(np.linalg.pinv(x)) + np.linalg.trace(x) + np.sum(np.linalg.eigvalsh(x))
            + np.sum(np.linalg.multi_dot([x, x, b])) + np.linalg.cond(x)
            + np.sum(np.linalg.matrix_power(x, 3)) + np.linalg.vector_norm(x)
        )  # fmt: skip

    check(f, a, order=1)
    g = grad(f)(a)
    assert g.shape == a.shape and np.all(np.isfinite(g))


def test_errors():
    with pytest.raises(np.linalg.LinAlgError, match="square"):
        grad(lambda p: L.det(p))(randn(2, 3))
    with pytest.raises(np.linalg.LinAlgError, match="two-dimensional"):
        grad(lambda p: wnp.sum(L.inv(p)))(randn(3))
    with pytest.raises(ValueError, match="raw"):
        grad(lambda p: wnp.sum(L.qr(p, mode="raw")[0]))(randn(3, 3))
    with pytest.raises(ValueError, match="UPLO"):
        grad(lambda p: wnp.sum(L.eigvalsh(p, UPLO="X")))(randn(3, 3))
    with pytest.raises(ValueError, match="Invalid norm order"):
        grad(lambda p: L.norm(p, "fro", axis=0))(randn(3, 3))
    with pytest.raises(ValueError, match="Invalid norm order for matrices"):
        grad(lambda p: L.norm(p, 3))(randn(3, 3))
    with pytest.raises(TypeError, match="integer"):
        grad(lambda p: wnp.sum(L.matrix_power(p, 1.5)))(randn(3, 3))


def _complex_from(x):
    """A complex stack built from a real one, so jacfwd (batched tangents) and jacrev can
    both differentiate the non-holomorphic complex rules."""
    return x[0] + 1j * x[1]


COMPLEX_JACOBIANS = {
    "solve": lambda x: wnp.real(L.solve(_complex_from(x) + 3 * np.eye(3), np.ones(3))),
    "slogdet": lambda x: wnp.abs(L.slogdet(_complex_from(x) + 3 * np.eye(3))[0] + 1),
    "det": lambda x: wnp.imag(L.det(_complex_from(x))),
    "pinv": lambda x: wnp.real(L.pinv(_complex_from(x))),
    "cholesky": lambda x: wnp.imag(L.cholesky(spd(_complex_from(x)))),
    "eigh": lambda x: gauge_free_eigh(
        *L.eigh(_complex_from(x) + wnp.conj(wnp.swapaxes(_complex_from(x), -1, -2)))
    )[2],
    "eigvalsh": lambda x: L.eigvalsh(_complex_from(x) + wnp.conj(_complex_from(x)).T),
    "eig": lambda x: wnp.abs(L.eig(_complex_from(x))[1]),
    "svd": lambda x: wnp.real(gauge_free_svd(*L.svd(_complex_from(x)))[3]),
    "svd_wide": lambda x: gauge_free_svd(*L.svd(_complex_from(x)[:2], full_matrices=False))[0],
    "qr": lambda x: wnp.real(L.qr(_complex_from(x)[:, :2])[0]),
    "qr_r": lambda x: wnp.imag(L.qr(_complex_from(x)[:2], mode="r")),
    "norm": lambda x: L.norm(_complex_from(x), "nuc"),
}


@pytest.mark.parametrize("name", COMPLEX_JACOBIANS)
def test_complex_rules_batched_tangents(name):
    f = COMPLEX_JACOBIANS[name]
    check_jacobians(f, randn(2, 3, 3, seed=5))


@pytest.mark.parametrize("name", ["solve", "inv", "det", "eigvals", "matrix_power"])
def test_holomorphic_jacobians(name):
    f = {
        "solve": lambda p: L.solve(p, np.arange(3.0)),
        "inv": L.inv,
        "det": L.det,
        "eigvals": L.eigvals,
        "matrix_power": lambda p: L.matrix_power(p, -2),
    }[name]
    a = well_conditioned(3, 3, cplx=True)
    jf = jacfwd(f, holomorphic=True)(a)
    jr = jacrev(f, holomorphic=True)(a)
    np.testing.assert_allclose(jf, jr, rtol=1e-8, atol=1e-10)
