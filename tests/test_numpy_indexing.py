"""Indexing in wengert.numpy: basic, advanced and boolean gathers, and their scatter-add."""

import numpy as np
import pytest
from _checks import check_jacobians, rng

import wengert.numpy as wnp
from wengert import check_grads, grad, jacfwd, jacrev, jvp

X = rng().standard_normal((3, 4, 5))
MASK = X[..., 0] > 0  # a (3, 4) boolean mask

INDICES = {
    "int": 1,
    "negative int": -1,
    "tuple of ints": (2, -1, 0),
    "slice": slice(1, None),
    "slice with step": slice(None, None, 2),
    "negative step": slice(None, None, -2),
    "slices with steps": (slice(0, 3, 2), slice(None, None, -1), slice(1, 5, 3)),
    "empty slice": slice(2, 2),
    "ellipsis": (Ellipsis, 1),
    "ellipsis middle": (0, Ellipsis, slice(1, 3)),
    "none": (None, 1),
    "none inside": (slice(None), None, 2, None),
    "ellipsis and none": (Ellipsis, None, -2),
    "int array": np.array([0, 2]),
    "negative int array": np.array([-1, 0, -3]),
    "repeated indices": np.array([1, 1, 0, 1]),
    "list": [2, 0, 2],
    "2-d int array": np.array([[0, 1], [2, 2]]),
    "two arrays (adjacent)": (slice(None), np.array([0, 3, 3]), np.array([1, 4, 1])),
    "two arrays broadcast": (np.array([[0], [2]]), np.array([1, 3, 1])),
    "array then slice": (np.array([2, 0, 2]), slice(1, 3)),
    "arrays separated by slice": (np.array([0, 2, 2]), slice(None), np.array([4, 0, 4])),
    "int and array separated": (1, slice(None, None, 2), np.array([0, 4, 0])),
    "array, none, array": (np.array([0, 1]), None, np.array([2, 2])),
    "boolean mask 3-d": X > 0.3,
    "boolean mask 2-d": MASK,
    "boolean 1-d on axis 1": (slice(None), np.array([True, False, True, True])),
    "boolean and ellipsis": (Ellipsis, np.array([True, False, False, True, True])),
    "boolean with array": (np.array([True, False, True]), np.array([3, 0])),
    "scalar boolean": np.True_,
}


@pytest.mark.parametrize("idx", INDICES.values(), ids=INDICES.keys())
def test_getitem(idx):
    f = lambda a: wnp.sin(a)[idx] * a[idx]
    np.testing.assert_allclose(f(X), np.sin(X)[idx] * X[idx])
    check_grads(f, (X,), order=2, modes=("fwd", "rev"))
    check_jacobians(f, X)
    # through the operator on a tracer and through the function
    check_grads(lambda a: wnp.take(wnp.ravel(a), [3, 3, 0]) + wnp.sum(a[idx] ** 2), (X,), order=2)


def test_repeated_indices_add_at():
    x = np.array([1.0, 2.0, 3.0])
    idx = np.array([0, 2, 0, 0])
    np.testing.assert_array_equal(grad(lambda a: wnp.sum(a[idx]))(x), [3.0, 0.0, 1.0])
    g = grad(lambda a: wnp.sum(a[idx] ** 2))(x)
    np.testing.assert_array_equal(g, [6.0, 0.0, 6.0])
    # the scatter's own derivative (second order) is the gather again
    h = jacfwd(grad(lambda a: wnp.sum(a[idx] ** 3)))(x)
    np.testing.assert_allclose(h, np.diag([18.0, 0.0, 18.0]))  # Σ = 3·a0³ + a2³


def test_advanced_indices_separated_by_slice_batched():
    # NumPy puts the broadcast index axes first here; jacfwd must keep its batch axis in front
    idx = (np.array([[0, 2], [1, 1]]), slice(1, 4), np.array([4, 0]))
    f = lambda a: a[idx] * 2
    assert f(X).shape == X[idx].shape == (2, 2, 3)
    check_jacobians(f, X)
    j = jacfwd(lambda a: wnp.sum(f(a)))(X)
    np.testing.assert_allclose(j, grad(lambda a: wnp.sum(f(a)))(X))


def test_take():
    x = rng(1).standard_normal((3, 4))
    for axis in (None, 0, 1, -1):
        ind = np.array([1, 0, 1])
        f = lambda a: wnp.take(a, ind, axis=axis)
        np.testing.assert_allclose(f(x), np.take(x, ind, axis=axis))
        check_grads(f, (x,), order=2)
        check_jacobians(f, x)


def test_index_with_traced_integer_array_uses_value():
    x = rng(2).standard_normal(4)
    i = np.array([3, 1])
    check_grads(lambda a: a[i] * a[np.array(1)], (x,), order=2)


def test_iteration():
    x = rng(3).standard_normal((3, 2))
    check_grads(lambda a: wnp.stack([r * k for k, r in enumerate(a)]), (x,), order=2)


def test_bad_index():
    x = np.ones(3)
    with pytest.raises(IndexError):
        grad(lambda a: wnp.sum(a[1.5]))(x)
    with pytest.raises(IndexError):
        grad(lambda a: wnp.sum(a[np.array([0.5])]))(x)
    with pytest.raises(TypeError):

        def f(a):
            a[0] = 1.0
            return wnp.sum(a)

        grad(f)(x)


def test_float32_and_complex():
    x = rng(4).standard_normal((3, 4)).astype(np.float32)
    idx = (np.array([0, 2, 0]), slice(None, None, -1))
    f = lambda a: a[idx] * a[1:, ::2].sum()
    assert f(x).dtype == np.float32
    assert grad(lambda a: wnp.sum(f(a)))(x).dtype == np.float32
    assert jacfwd(f)(x).dtype == np.float32
    check_grads(f, (x,), order=2)
    z = rng(5).standard_normal(4) + 1j * rng(6).standard_normal(4)
    check_grads(lambda a: a[[1, 1, 3]] * a[::-1][:3], (z,), order=2)
    _, t = jvp(lambda a: a[[0, 0]], (z,), (z,))
    np.testing.assert_array_equal(t, z[[0, 0]])


def check_hessians(f, x):
    """The four ways to a Hessian agree (three carry batched tangents through the gather and
    the scatter-add)."""
    h = jacrev(jacrev(f))(x)
    for other in (jacfwd(jacrev(f)), jacfwd(jacfwd(f)), jacrev(jacfwd(f))):
        np.testing.assert_allclose(other(x), h, rtol=1e-9, atol=1e-10)


X2 = rng(7).uniform(0.5, 1.5, (3, 4))
HESSIAN_INDICES = {
    "step slice": np.s_[::2, ::-3],
    "repeated array and slice": np.s_[np.array([0, 0, 2]), 1:3],
    "arrays separated by None": np.s_[np.array([0, 2]), None, np.array([1, 1])],
    "int and 2-d array separated": np.s_[1, None, np.array([[1], [3]])],
    "ellipsis, None, int": np.s_[..., None, 1],
    "boolean mask": X2 > 1,
    "negative ints": np.s_[-1, np.array([-1, -4, -1])],
}


@pytest.mark.parametrize("idx", HESSIAN_INDICES.values(), ids=HESSIAN_INDICES.keys())
def test_hessians(idx):
    check_hessians(lambda x: wnp.sum(x[idx] ** 3 * x[idx][..., :1]), X2)
    check_hessians(lambda x: wnp.sum(wnp.take(x, [0, 0, 2], axis=0) ** 3), X2)
