"""Reductions of wengert.numpy: sum, mean, prod, max/min, var/std, logsumexp."""

import numpy as np
import pytest
from _checks import check, check_jacobians, rng

import wengert.numpy as wnp
from wengert import check_grads, grad, jacfwd, jacrev, jvp

AXES = [None, 0, 1, -1, -2, (0, 2), (-1, 0), (0, 1, 2), ()]
REDUCTIONS = [wnp.sum, wnp.mean, wnp.prod, wnp.max, wnp.min, wnp.var, wnp.std, wnp.logsumexp]


def _distinct(shape, seed=0):
    """Values with no ties (max/min are smooth there), away from zero (prod)."""
    r = rng(seed)
    n = int(np.prod(shape))
    return (
        (r.permutation(n) + 1.0 + r.uniform(0, 0.3, n)).reshape(shape)
        / n
        * r.choice([-1.0, 1.0], n).reshape(shape)
    )


@pytest.mark.parametrize("f", REDUCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction(f, axis, keepdims):
    x = _distinct((2, 3, 2))
    if f in (wnp.var, wnp.std) and axis == ():
        pytest.skip("variance over no axis is 0/0")
    g = lambda a: f(a, axis=axis, keepdims=keepdims)
    ref = _np_logsumexp if f is wnp.logsumexp else getattr(np, f.__name__)
    np.testing.assert_allclose(g(x), ref(x, axis=axis, keepdims=keepdims))
    check(g, x)
    check_jacobians(g, x)


def _np_logsumexp(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("f", REDUCTIONS, ids=lambda f: f.__name__)
def test_reduction_of_vector_and_scalar(f):
    x = _distinct((4,), 1)
    check(f, x)
    if f not in (wnp.var, wnp.std):
        check(f, np.float64(0.7))
        check(lambda a: f(a, axis=None, keepdims=True), np.array(0.7))


def test_ddof():
    x = _distinct((3, 4))
    check(lambda a: wnp.var(a, axis=1, ddof=1), x)
    check(lambda a: wnp.std(a, axis=0, ddof=1, keepdims=True), x)
    np.testing.assert_allclose(wnp.std(x, ddof=1), np.std(x, ddof=1))


def test_var_std_complex():
    r = rng(2)
    z = r.standard_normal((3, 2)) + 1j * r.standard_normal((3, 2))
    check(lambda a: wnp.var(a, axis=0), z)
    check(wnp.std, z)
    np.testing.assert_allclose(wnp.var(z, axis=0), np.var(z, axis=0))


def test_sum_complex_and_dtype():
    r = rng(3)
    z = r.standard_normal(3) + 1j * r.standard_normal(3)
    check(lambda a: wnp.sum(a * a, axis=0), z)
    x = _distinct((2, 3))
    check(lambda a: wnp.sum(a, dtype=np.float64, axis=1), x)
    check(lambda a: wnp.mean(a, dtype=np.float64), x)
    assert wnp.mean(np.arange(4)) == 1.5


def test_logsumexp_large_and_infinite():
    x = np.array([1000.0, 1000.0, -np.inf])
    np.testing.assert_allclose(wnp.logsumexp(x), 1000.0 + np.log(2.0))
    np.testing.assert_allclose(grad(wnp.logsumexp)(x), [0.5, 0.5, 0.0])
    check(wnp.logsumexp, np.array([800.0, 801.0, 799.5]))


# ---------------------------------------------------------------------------------------------
# prod with zeros
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nzeros", [0, 1, 2, 3])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_prod_with_zeros(nzeros, axis, keepdims):
    x = _distinct((3, 4), 4)
    x.ravel()[[1, 6, 11][:nzeros]] = 0.0  # zeros in different rows and columns ...
    if nzeros == 3:
        x[0, 3] = 0.0  # ... and finally two zeros in the same row and column
    f = lambda a: wnp.prod(a, axis=axis, keepdims=keepdims)
    check(f, x)
    check_jacobians(f, x)
    # the exact Jacobian: ∂/∂x_i Π x = Π_{j≠i} x_j
    flat = x.ravel()
    expect = np.array([np.prod(np.delete(flat, i)) for i in range(flat.size)])
    np.testing.assert_allclose(grad(lambda a: wnp.prod(a))(x).ravel(), expect)


def test_prod_second_derivative_with_zero():
    # ∂²/∂x_i∂x_j Π x = Π_{k≠i,j} x_k: with one zero only the zero's row/column survives
    x = np.array([2.0, 0.0, 3.0, 0.5])
    h = jacfwd(grad(wnp.prod))(x)
    expect = np.zeros((4, 4))
    for i in range(4):
        for j in range(4):
            if i != j:
                expect[i, j] = np.prod(np.delete(x, [i, j]))
    np.testing.assert_allclose(h, expect)
    np.testing.assert_allclose(jacrev(grad(wnp.prod))(x), expect)


@pytest.mark.parametrize("zeros", [[1], [0, 2], [0, 2, 3]], ids=str)
def test_prod_third_order_with_zeros(zeros):
    x = np.array([[0.7, -1.3, 0.4, 1.1], [1.2, 0.9, -0.8, 0.5]])
    x[0, zeros] = 0.0
    # Near an exact zero, finite differences step onto tiny non-zero entries, where Π/x_i loses
    # digits at high order; the derivatives of a multilinear Π are polynomials, so a large
    # step is exact for them.
    check_grads(lambda a: wnp.prod(a, axis=1), (x,), order=3, eps=1e-3)
    f = lambda a: wnp.prod(a, axis=(0, 1), keepdims=True)
    check_grads(f, (x,), order=3, modes=("rev",), eps=1e-3)


# ---------------------------------------------------------------------------------------------
# max / min ties
# ---------------------------------------------------------------------------------------------


def test_max_min_ties_share_equally():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(grad(wnp.max)(x), [[0, 0.5, 0.5], [0, 0, 0]])
    np.testing.assert_allclose(
        grad(lambda a: wnp.sum(wnp.max(a, axis=1)))(x), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]]
    )
    np.testing.assert_allclose(
        grad(lambda a: wnp.sum(wnp.min(a, axis=0, keepdims=True)))(x), [[1, 0, 0], [0, 1, 1]]
    )
    _, t = jvp(lambda a: wnp.max(a, axis=1), (x,), (np.ones_like(x),))
    np.testing.assert_allclose(t, [1.0, 1.0])
    check_jacobians(lambda a: wnp.max(a, axis=1), x)
    check_jacobians(lambda a: wnp.min(a, axis=(0, 1), keepdims=True), x)


def test_amax_amin_and_methods():
    x = _distinct((3, 2), 5)
    check(lambda a: wnp.amax(a, axis=0) + wnp.amin(a, axis=1).sum(), x)
    check(lambda a: a.max(axis=0) * a.min() + a.sum(0) + a.mean(-1).sum() + a.prod(), x)
    check(lambda a: a.var(axis=0) + a.std(axis=0, keepdims=False), x)


def test_reductions_reject_out_where():
    x = np.ones(3)
    for f in (wnp.sum, wnp.mean, wnp.prod, wnp.max):
        with pytest.raises(TypeError):
            grad(lambda a: f(a, out=np.ones(())))(x)
        with pytest.raises(TypeError):
            grad(lambda a: f(a, where=np.array([True, False, True])))(x)
    with pytest.raises(np.exceptions.AxisError):
        wnp.sum(x, axis=1)
    with pytest.raises(ValueError):
        wnp.sum(np.ones((2, 2)), axis=(0, -2))


@pytest.mark.parametrize("f", REDUCTIONS, ids=lambda f: f.__name__)
def test_float32(f):
    x = _distinct((2, 3), 6).astype(np.float32)
    g = lambda a: f(a, axis=1)
    assert g(x).dtype == np.float32
    assert grad(lambda a: wnp.sum(g(a)))(x).dtype == np.float32
    assert jacfwd(g)(x).dtype == np.float32
    assert jacfwd(grad(lambda a: wnp.sum(g(a) * g(a))))(x).dtype == np.float32
    check_grads(g, (x,), order=2)


def check_hessians(f, x):
    """The four ways to a Hessian agree (three carry batched tangents through the rules)."""
    h = jacrev(jacrev(f))(x)
    for other in (jacfwd(jacrev(f)), jacfwd(jacfwd(f)), jacrev(jacfwd(f))):
        np.testing.assert_allclose(other(x), h, rtol=1e-9, atol=1e-10)


HESSIANS = {
    "sum": lambda x: wnp.sum(wnp.sum(x**3, axis=0) ** 2),
    "mean keepdims": lambda x: wnp.sum(wnp.mean(x**3, axis=(0, 1), keepdims=True) * x),
    "max": lambda x: wnp.sum(wnp.max(x * x, axis=0) ** 2),
    "min ties": lambda x: wnp.sum(wnp.min(wnp.stack([x, x * 1.0]), axis=0) ** 3),
    "prod": lambda x: wnp.sum(wnp.prod(x[:2], axis=1)),
    "prod one zero": lambda x: wnp.sum(wnp.prod(x * np.array([1, 0, 1, 1.0]), axis=1)),
    "prod two zeros": lambda x: wnp.sum(wnp.prod(x * np.array([1, 0, 0, 1.0]), axis=1)),
    "logsumexp": lambda x: wnp.sum(wnp.logsumexp(x, axis=1) ** 2),
    "std": lambda x: wnp.sum(wnp.std(x, axis=0, ddof=1)),
}


@pytest.mark.parametrize("f", HESSIANS.values(), ids=HESSIANS.keys())
def test_hessians(f):
    check_hessians(f, rng(11).uniform(0.5, 1.5, (3, 4)))
