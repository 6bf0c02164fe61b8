"""wengert.scipy.linalg: values against SciPy, derivatives to order 2 in both modes, stacked
matrices, and forward/reverse Jacobians that agree."""

import numpy as np
import pytest

sl = pytest.importorskip("scipy.linalg")

from _checks import rng  # noqa: E402

import wengert.scipy.linalg as wl  # noqa: E402
from wengert import check_grads, grad, jacfwd, jacrev, vjp  # noqa: E402

N = 3


def check(f, *args):
    check_grads(f, args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(f, *args)
    for ct, x in zip(pull(np.ones_like(out)), args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)


def check_jacobians(f, *args):
    nums = tuple(range(len(args)))
    for a, b in zip(jacfwd(f, argnums=nums)(*args), jacrev(f, argnums=nums)(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def well_conditioned(r, shape=(N, N)):
    return r.standard_normal(shape) + 3 * np.eye(shape[-1])


def spd(m):
    """M Mᵀ + I: symmetric positive definite for every M, so every perturbation stays so."""
    return m @ np.swapaxes(m, -1, -2) + np.eye(m.shape[-1])


@pytest.mark.parametrize("trans", [0, 1, 2, "T"], ids=str)
@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("unit_diagonal", [False, True])
@pytest.mark.parametrize("bshape", [(N,), (N, 2)], ids=str)
def test_solve_triangular(trans, lower, unit_diagonal, bshape):
    r = rng(1)
    a, b = well_conditioned(r), r.standard_normal(bshape)
    f = lambda a, b: wl.solve_triangular(
        a, b, trans=trans, lower=lower, unit_diagonal=unit_diagonal
    )
    np.testing.assert_allclose(
        f(a, b), sl.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit_diagonal)
    )
    check(f, a, b)
    check_jacobians(f, a, b)
    # only the triangle that was read gets a cotangent
    ga = grad(lambda a: f(a, b).sum())(a)
    read = np.tril(np.ones((N, N))) if lower else np.triu(np.ones((N, N)))
    if unit_diagonal:
        read -= np.eye(N)
    assert np.all(ga[read == 0] == 0)


def test_solve_triangular_stacked_and_complex():
    r = rng(2)
    a = well_conditioned(r, (2, N, N))
    f = lambda a, b: wl.solve_triangular(a, b, lower=True)
    check(f, a, r.standard_normal((2, N, 2)))
    check(f, a[0], r.standard_normal((2, N, 2)))
    check(f, a, r.standard_normal(N))
    ac = a[0] + 1j * r.standard_normal((N, N))
    bc = r.standard_normal(N) + 1j * r.standard_normal(N)
    for trans in (0, 1, 2):
        g = lambda a, b: wl.solve_triangular(a, b, trans=trans, lower=True)
        np.testing.assert_allclose(g(ac, bc), sl.solve_triangular(ac, bc, trans=trans, lower=True))
        check(g, ac, bc)
    with pytest.raises(ValueError, match="trans"):
        wl.solve_triangular(a[0], bc, trans="X")


@pytest.mark.parametrize("lower", [False, True])
def test_cholesky_and_cho_solve(lower):
    r = rng(3)
    m, b = r.standard_normal((N, N)), r.standard_normal((N, 2))
    np.testing.assert_allclose(wl.cholesky(spd(m), lower=lower), sl.cholesky(spd(m), lower=lower))
    check(lambda m: wl.cholesky(spd(m), lower=lower), m)
    c, low = wl.cho_factor(spd(m), lower=lower)
    assert low is lower
    sc = sl.cho_factor(spd(m), lower=lower)
    np.testing.assert_allclose(wl.cho_solve((c, low), b), sl.cho_solve(sc, b))
    f = lambda m, b: wl.cho_solve(wl.cho_factor(spd(m), lower=lower), b)
    check(f, m, b)
    check(f, m, b[:, 0])
    check_jacobians(f, m, b)


def test_cholesky_stacked_float32_and_complex():
    r = rng(4)
    m = r.standard_normal((2, N, N))
    np.testing.assert_allclose(wl.cholesky(spd(m), lower=True), np.linalg.cholesky(spd(m)))
    check(lambda m: wl.cholesky(spd(m), lower=True), m)
    m32 = m.astype(np.float32)
    assert grad(lambda m: wl.cholesky(spd(m)).sum())(m32).dtype == np.float32
    z = r.standard_normal((N, N)) + 1j * r.standard_normal((N, N))
    h = z @ z.conj().T + np.eye(N)
    for lower in (False, True):
        np.testing.assert_allclose(wl.cholesky(h, lower=lower), sl.cholesky(h, lower=lower))
        check(lambda h: wl.cholesky(h, lower=lower), h)
    # the factor depends on one triangle only, as SciPy computes it
    a = spd(m[0])
    g = grad(lambda a: wl.cholesky(a).sum())(a)
    assert np.all(np.tril(g, -1) == 0)


def test_solve_sylvester():
    r = rng(5)
    a, b, q = well_conditioned(r), well_conditioned(r, (2, 2)), r.standard_normal((N, 2))
    np.testing.assert_allclose(wl.solve_sylvester(a, b, q), sl.solve_sylvester(a, b, q))
    check(wl.solve_sylvester, a, b, q)
    check_jacobians(wl.solve_sylvester, a, b, q)


MATRIX_FUNCTIONS = [(wl.expm, sl.expm, 0.0), (wl.logm, sl.logm, 1.0), (wl.sqrtm, sl.sqrtm, 1.0)]


@pytest.mark.parametrize("f,ref,shift", MATRIX_FUNCTIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_matrix_function(f, ref, shift):
    r = rng(6)
    a = 0.3 * r.standard_normal((N, N)) + shift * np.eye(N)
    np.testing.assert_allclose(f(a), ref(a), rtol=1e-10, atol=1e-12)
    check(f, a)
    check_jacobians(f, a)
    stacked = a + 0.1 * r.standard_normal((2, N, N))
    np.testing.assert_allclose(f(stacked), ref(stacked), rtol=1e-10, atol=1e-12)
    # SciPy's logm is slow on the (4n × 4n) blocks of second derivatives: order 1 here
    check_grads(f, (stacked,), order=1 if f is wl.logm else 2)


def test_matrix_function_complex_and_identities():
    r = rng(7)
    a = 0.3 * (r.standard_normal((N, N)) + 1j * r.standard_normal((N, N)))
    np.testing.assert_allclose(wl.expm(a), sl.expm(a))
    check(wl.expm, a)
    # d/dt expm(tA) = A expm(tA)
    g = jacfwd(lambda t: wl.expm(t * a.real))(1.0)
    np.testing.assert_allclose(g, a.real @ sl.expm(a.real), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="disp"):
        wl.logm(np.eye(2), disp=False)
