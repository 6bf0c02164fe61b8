"""Coverage of sorting and selection: sort, partition, take, take_along_axis, select, choose,
compress, extract, unique, and the index-valued queries; values against NumPy, derivatives
by check_grads in both modes to order 2."""

import numpy as np
import pytest
from _checks import rng

import wengert.numpy as wnp
from wengert import check_grads, grad, jacfwd, jacrev, jvp, vjp


def check(f, *args, ref=None, jac=True):
    """Value against ``ref`` (NumPy), derivatives to order 2 in both modes (composed with sin so
    second derivatives are not trivially zero), cotangent shapes/dtypes, jacfwd == jacrev."""
    if ref is not None:
        np.testing.assert_array_equal(f(*args), ref(*args))
    g = lambda *a: wnp.sin(f(*a))
    check_grads(g, args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(g, *args)
    for ct, x in zip(pull(np.ones_like(out)), args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)
    if jac:
        nums = tuple(range(len(args)))
        for a, b in zip(jacfwd(g, argnums=nums)(*args), jacrev(g, argnums=nums)(*args)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


X = rng().standard_normal((3, 4))
X3 = rng(1).standard_normal((2, 3, 4))


@pytest.mark.parametrize("axis", [None, 0, 1, -1, -3])
def test_sort(axis):
    check(lambda a: wnp.sort(a, axis=axis), X3, ref=lambda a: np.sort(a, axis=axis))


def test_sort_gradient_is_a_permutation():
    x = np.array([3.0, -1.0, 2.0])
    np.testing.assert_array_equal(jacrev(wnp.sort)(x), np.eye(3)[np.argsort(x)])
    np.testing.assert_array_equal(jacfwd(wnp.sort)(x), np.eye(3)[np.argsort(x)])
    z = X + 1j * X[::-1]
    np.testing.assert_array_equal(wnp.sort(z, axis=0), np.sort(z, axis=0))
    check_grads(lambda a: wnp.sort(a, axis=0), (z,), order=2)
    x32 = X.astype(np.float32)
    assert wnp.sort(x32).dtype == np.float32
    assert grad(lambda a: wnp.sort(a)[:, 0].sum())(x32).dtype == np.float32
    with pytest.raises(NotImplementedError, match="order="):
        wnp.sort(X, order="f")


@pytest.mark.parametrize("kth, axis", [(1, -1), ((0, 1), 0), (3, None), (-1, 1)], ids=str)
def test_partition(kth, axis):
    f = lambda a: wnp.partition(a, kth, axis=axis)
    ref = np.partition(X3, kth, axis=axis)
    got = f(X3)
    kk = np.atleast_1d(kth)
    ax = -1 if axis is None else axis
    take = lambda v: np.take(v if axis is not None else v.ravel(), kk, axis=ax)
    np.testing.assert_array_equal(take(got), take(ref))  # the kth elements are in place
    check(f, X3)


@pytest.mark.parametrize(
    "idx, axis, mode",
    [
        ([0, 2, 2], 1, "raise"),
        ([[1, 0], [0, 1]], 0, "raise"),
        ([-1, 5], None, "raise"),
        ([4, -5, 7], -1, "wrap"),
        ([4, -5, 7], 0, "clip"),
        (2, 1, "raise"),
    ],
    ids=str,
)
def test_take(idx, axis, mode):
    check(
        lambda a: wnp.take(a, idx, axis=axis, mode=mode),
        X,
        ref=lambda a: np.take(a, idx, axis=axis, mode=mode),
    )


def test_take_errors():
    with pytest.raises(IndexError):
        wnp.take(X, [7], axis=1)
    with pytest.raises(ValueError, match="mode"):
        wnp.take(X, [1], mode="bogus")
    with pytest.raises(TypeError, match="out="):
        wnp.take(X, [1], out=np.empty(1))


@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_take_along_axis(axis):
    idx = np.argsort(X3, axis=axis) if axis is not None else np.argsort(X3, axis=None)[:5]
    ref = lambda a: np.take_along_axis(a, idx, axis=axis)
    check(lambda a: wnp.take_along_axis(a, idx, axis=axis), X3, ref=ref)
    # repeated indices add up, broadcast indices too
    rep = np.zeros((2, 1, 3), int)
    check(
        lambda a: wnp.take_along_axis(a, rep, axis=2),
        X3,
        ref=lambda a: np.take_along_axis(a, rep, 2),
    )
    am = np.argmax(X3, axis=1, keepdims=True)
    check(lambda a: wnp.take_along_axis(a, am, axis=1), X3)


def test_take_along_axis_errors():
    with pytest.raises(ValueError, match="same number of dimensions"):
        wnp.take_along_axis(X, np.zeros(3, int), axis=0)
    with pytest.raises(IndexError, match="integer"):
        wnp.take_along_axis(X, np.zeros((1, 1)), axis=0)


def test_select():
    c1, c2 = X > 0.5, X < -0.5
    f = lambda a, b: wnp.select([c1, c2], [a, b * b], default=a[0])
    check(f, X, X + 1, ref=lambda a, b: np.select([c1, c2], [a, b * b], default=a[0]))
    check(lambda a: wnp.select([c1], [a]), X, ref=lambda a: np.select([c1], [a]))
    # the branch not chosen gets an exact zero
    g = grad(lambda a: wnp.sum(wnp.select([a > 0], [a**3], a)))(np.array([-1.0, 2.0]))
    np.testing.assert_array_equal(g, [1.0, 12.0])
    assert (
        wnp.select([c1], [X.astype(np.float32)]).dtype
        == np.select([c1], [X.astype(np.float32)]).dtype
    )
    with pytest.raises(ValueError, match="same length"):
        wnp.select([c1], [X, X])
    with pytest.raises(TypeError, match="boolean"):
        wnp.select([X], [X])


@pytest.mark.parametrize("mode", ["raise", "wrap", "clip"])
def test_choose(mode):
    idx = np.array([[0, 1, 2, 1], [2, 2, 0, 0], [1, 0, 1, 2]])
    if mode != "raise":
        idx = idx * 2 - 1
    f = lambda a, b, c: wnp.choose(idx, [a, b, c[0]], mode=mode)
    ref = lambda a, b, c: np.choose(idx, [a, b, c[0]], mode=mode)
    check(f, X, X * 2, X3[0, :1], ref=ref)
    with pytest.raises(ValueError, match="invalid entry"):
        wnp.choose(np.array([0, 3]), [X[0, :2], X[1, :2]])


def test_compress_and_extract():
    cond = np.array([True, False, True])
    check(lambda a: wnp.compress(cond, a, axis=0), X, ref=lambda a: np.compress(cond, a, axis=0))
    check(lambda a: wnp.compress([0, 1, 1, 0], a, axis=-1), X)
    check(lambda a: wnp.compress(cond, a), X, ref=lambda a: np.compress(cond, a))
    m = X > 0
    check(lambda a: wnp.extract(m, a), X, ref=lambda a: np.extract(m, a))
    check(lambda a: a[np.nonzero(m)] * wnp.extract(m, a), X)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_unique(axis):
    # with duplicates: values, index, inverse and counts as NumPy's
    x = np.array([[1.5, -2.0, 1.5, 0.3], [0.3, 1.5, 7.0, 1.5], [1.5, -2.0, 1.5, 0.3]])
    np.testing.assert_array_equal(wnp.unique(x, axis=axis), np.unique(x, axis=axis))
    out = wnp.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=axis)
    for a, b in zip(out, np.unique(x, True, True, True, axis=axis)):
        np.testing.assert_array_equal(a, b)
    traced = jvp(lambda a: wnp.unique(a, return_counts=True, axis=axis), (x,), (x,))[0]
    for a, b in zip(traced, np.unique(x, return_counts=True, axis=axis)):
        np.testing.assert_array_equal(a, b)
    # without ties unique is a sort (a differentiable gather)
    check(lambda a: wnp.unique(a, axis=axis), X, ref=lambda a: np.unique(a, axis=axis))


def test_unique_derivative_goes_to_first_occurrence():
    x = np.array([1.5, -2.0, 1.5, 0.3, -2.0, 7.0])
    _, first = np.unique(x, return_index=True)
    expected = np.zeros(x.size)
    expected[first] = [1, 2, 3, 4]
    np.testing.assert_array_equal(
        grad(lambda a: wnp.sum(wnp.unique(a) * np.arange(1.0, 5.0)))(x), expected
    )
    np.testing.assert_array_equal(jacfwd(wnp.unique)(x), np.eye(6)[first])
    np.testing.assert_array_equal(wnp.unique_values(x), np.unique_values(x))


def test_index_queries_have_no_derivative():
    def f(a):
        i = wnp.searchsorted(wnp.sort(a[0]), a[1])
        j = wnp.argpartition(a[0], 1)
        k = wnp.lexsort((a[0], a[1]))
        nz = wnp.flatnonzero(a > 0)
        w = wnp.argwhere(a > 0)
        assert isinstance(i, np.ndarray) and isinstance(w, np.ndarray)
        assert wnp.nanargmax(a) == np.argmax(X) and wnp.nanargmin(a) == np.argmin(X)
        assert (wnp.digitize(a[0], [0.0]) == np.digitize(X[0], [0.0])).all()
        return a[1, i % 4] * a[0, j] + a[2, k] + wnp.ravel(a)[nz].sum() + a[0, 0] * len(w)

    np.testing.assert_allclose(jvp(f, (X,), (X,))[0], f(X))
    check(f, X)


PLAIN = {
    "np.sort": lambda x: np.sort(x, axis=0),
    "np.sort axis None": lambda x: np.sort(x, axis=None),
    "np.partition": lambda x: np.partition(x, 2, axis=1)[:, 2],
    "np.take_along_axis": lambda x: np.take_along_axis(x, np.argsort(x, axis=1), axis=1),
    "np.take mode": lambda x: np.take(x, [5, -7], mode="wrap"),
    "np.select": lambda x: np.select([x > 0, x < -1], [x, x**2], default=1.0),
    "np.choose": lambda x: np.choose(np.array([0, 1, 0, 1]), [x[0], x[1]]),
    "np.compress": lambda x: np.compress([True, False, True], x, axis=0),
    "np.extract": lambda x: np.extract(x > 0, x),
    "np.unique": lambda x: np.unique(np.concatenate([x, x[:1]])),
}


@pytest.mark.parametrize("name", PLAIN)
def test_plain_numpy(name):
    f = PLAIN[name]
    check(f, X)
    np.testing.assert_allclose(jvp(f, (X,), (X,))[0], f(X), rtol=1e-13)
