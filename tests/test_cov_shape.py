"""Coverage of shape and construction functions: flips, rotations, roll, tile, repeat,
triangles and diagonals, atleast_nd and the stacks and splits, kron / inner / cross,
convolve / correlate, vander, meshgrid, and arrays built from nested lists of traced values;
values against NumPy, derivatives by check_grads in both modes to order 2."""

import warnings

import numpy as np
import pytest
from _checks import rng

import wengert.numpy as wnp
from wengert import check_grads, grad, jacfwd, jacrev, jvp, vjp


def check(f, *args, ref=None, jac=True):
    """Value against ``ref`` (NumPy), derivatives to order 2 in both modes (composed with sin so
    second derivatives are not trivially zero), cotangent shapes/dtypes, jacfwd == jacrev."""
    if ref is not None:
        got, want = f(*args), ref(*args)
        if isinstance(want, (tuple, list)):
            assert len(got) == len(want)
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
                assert np.shape(a) == np.shape(b)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
            assert np.shape(got) == np.shape(want)
    g = lambda *a: _sin_all(f(*a))
    check_grads(g, args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(g, *args)
    for ct, x in zip(pull(np.ones_like(out)), args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)
    if jac:
        nums = tuple(range(len(args)))
        for a, b in zip(jacfwd(g, argnums=nums)(*args), jacrev(g, argnums=nums)(*args)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _sin_all(out):
    if isinstance(out, (tuple, list)):
        return wnp.concatenate([wnp.ravel(wnp.sin(o)) * (k + 1) for k, o in enumerate(out)])
    return wnp.sin(out)


X = rng().standard_normal((3, 4))
X3 = rng(1).standard_normal((2, 3, 4))
V = rng(2).standard_normal(4)

# ---------------------------------------------------------------------------------------------
# Rearrangements
# ---------------------------------------------------------------------------------------------

REARRANGE = {
    "ravel": (lambda a: wnp.ravel(a), lambda a: np.ravel(a)),
    "flatten": (lambda a: a.flatten(), lambda a: a.flatten()),
    "swapaxes": (lambda a: wnp.swapaxes(a, 0, -1), lambda a: np.swapaxes(a, 0, -1)),
    "rollaxis": (lambda a: wnp.rollaxis(a, 2), lambda a: np.rollaxis(a, 2)),
    "rollaxis start": (lambda a: wnp.rollaxis(a, 0, 3), lambda a: np.rollaxis(a, 0, 3)),
    "rollaxis -1 1": (lambda a: wnp.rollaxis(a, -1, 1), lambda a: np.rollaxis(a, -1, 1)),
    "flip": (lambda a: wnp.flip(a), lambda a: np.flip(a)),
    "flip axis": (lambda a: wnp.flip(a, -1), lambda a: np.flip(a, -1)),
    "flip axes": (lambda a: wnp.flip(a, (0, 2)), lambda a: np.flip(a, (0, 2))),
    "fliplr": (lambda a: wnp.fliplr(a), lambda a: np.fliplr(a)),
    "flipud": (lambda a: wnp.flipud(a), lambda a: np.flipud(a)),
    "rot90": (lambda a: wnp.rot90(a), lambda a: np.rot90(a)),
    "rot90 k2": (lambda a: wnp.rot90(a, 2, (1, 2)), lambda a: np.rot90(a, 2, (1, 2))),
    "rot90 k3": (lambda a: wnp.rot90(a, -1, (2, 0)), lambda a: np.rot90(a, -1, (2, 0))),
    "rot90 k4": (lambda a: wnp.rot90(a, 4), lambda a: np.rot90(a, 4)),
    "roll": (lambda a: wnp.roll(a, 5), lambda a: np.roll(a, 5)),
    "roll axis": (lambda a: wnp.roll(a, -1, axis=1), lambda a: np.roll(a, -1, axis=1)),
    "roll axes": (
        lambda a: wnp.roll(a, (1, 2, 3), (0, 2, 2)),
        lambda a: np.roll(a, (1, 2, 3), (0, 2, 2)),
    ),
    "tile": (lambda a: wnp.tile(a, 2), lambda a: np.tile(a, 2)),
    "tile reps": (lambda a: wnp.tile(a, (2, 1, 1, 3)), lambda a: np.tile(a, (2, 1, 1, 3))),
    "tile short": (lambda a: wnp.tile(a, (2, 1)), lambda a: np.tile(a, (2, 1))),
    "repeat": (lambda a: wnp.repeat(a, 2), lambda a: np.repeat(a, 2)),
    "repeat axis": (lambda a: wnp.repeat(a, 3, axis=-1), lambda a: np.repeat(a, 3, axis=-1)),
    "repeat counts": (
        lambda a: wnp.repeat(a, [2, 0, 1], axis=1),
        lambda a: np.repeat(a, [2, 0, 1], axis=1),
    ),
    "repeat [2]": (lambda a: wnp.repeat(a, [2], axis=0), lambda a: np.repeat(a, [2], axis=0)),
}


@pytest.mark.parametrize("name", REARRANGE)
def test_rearrangement(name):
    f, ref = REARRANGE[name]
    check(f, X3, ref=ref, jac=name in ("flip", "rot90", "roll", "tile", "repeat counts"))


def test_rearrangement_errors_and_edges():
    with pytest.raises(ValueError, match=">= 2-d"):
        wnp.fliplr(V)
    with pytest.raises(ValueError, match="different"):
        wnp.rot90(X, axes=(1, 1))
    with pytest.raises(ValueError, match="len"):
        wnp.rot90(X, axes=(0,))
    with pytest.raises(np.exceptions.AxisError):
        wnp.rollaxis(X, 0, 5)
    with pytest.raises(ValueError, match="negative"):
        wnp.repeat(X, -1)
    check(lambda a: wnp.flip(a), np.float64(0.5))
    check(lambda a: wnp.roll(a, 1, axis=0), np.zeros((0, 2)) + 0.0, jac=False)
    check(lambda a: wnp.tile(a, (2, 2)), np.float64(0.5), ref=lambda a: np.tile(a, (2, 2)))
    check(lambda a: wnp.repeat(a, 3), np.float64(0.5), ref=lambda a: np.repeat(a, 3))


# ---------------------------------------------------------------------------------------------
# Triangles, diagonals, trace
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, -1, 3, -4])
def test_triangles(k):
    check(lambda a: wnp.triu(a, k), X, ref=lambda a: np.triu(a, k))
    check(lambda a: wnp.tril(a, k), X3, ref=lambda a: np.tril(a, k), jac=False)
    check(lambda a: wnp.tril(a, k), V, ref=lambda a: np.tril(a, k), jac=False)


@pytest.mark.parametrize("k", [0, 1, -2, 5])
def test_diag(k):
    check(lambda v: wnp.diag(v, k), V, ref=lambda v: np.diag(v, k))
    check(lambda a: wnp.diag(a, k), X, ref=lambda a: np.diag(a, k))
    check(lambda v: wnp.diagflat(v, k), X[:2, :2], ref=lambda v: np.diagflat(v, k))


@pytest.mark.parametrize(
    "offset, axis1, axis2", [(0, 0, 1), (1, 0, 1), (-1, 1, 2), (2, -1, 0), (0, 2, 1), (-5, 0, 1)]
)
def test_diagonal_and_trace(offset, axis1, axis2):
    check(
        lambda a: wnp.diagonal(a, offset, axis1, axis2),
        X3,
        ref=lambda a: np.diagonal(a, offset, axis1, axis2),
    )
    check(
        lambda a: wnp.trace(a, offset, axis1, axis2),
        X3,
        ref=lambda a: np.trace(a, offset, axis1, axis2),
    )


def test_diag_errors_and_dtypes():
    with pytest.raises(ValueError, match="1- or 2-d"):
        wnp.diag(X3)
    with pytest.raises(ValueError, match="same"):
        wnp.diagonal(X, 0, 1, 1)
    x32 = X.astype(np.float32)
    assert wnp.trace(x32).dtype == np.float32
    assert grad(lambda a: wnp.trace(a))(x32).dtype == np.float32
    assert wnp.diag(V.astype(np.float32), 1).dtype == np.float32
    np.testing.assert_array_equal(grad(wnp.trace)(X), np.eye(3, 4))


# ---------------------------------------------------------------------------------------------
# atleast_nd, stacks and splits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["atleast_1d", "atleast_2d", "atleast_3d"])
def test_atleast(name):
    f, ref = getattr(wnp, name), getattr(np, name)
    for x in (np.float64(0.3), V, X, X3):
        check(f, x, ref=ref, jac=False)
    check(lambda a, b: f(a, b), V, X, ref=lambda a, b: ref(a, b), jac=False)


STACKS = {
    "hstack 1-D": (lambda a, b: wnp.hstack([a[0], b]), lambda a, b: np.hstack([a[0], b])),
    "hstack 2-D": (lambda a, b: wnp.hstack([a, a[:, :1]]), lambda a, b: np.hstack([a, a[:, :1]])),
    "hstack 0-D": (
        lambda a, b: wnp.hstack([a[0, 0], b[1]]),
        lambda a, b: np.hstack([a[0, 0], b[1]]),
    ),
    "vstack": (lambda a, b: wnp.vstack([a, b]), lambda a, b: np.vstack([a, b])),
    "row_stack": (lambda a, b: wnp.row_stack([b, a]), lambda a, b: np.vstack([b, a])),
    "dstack": (lambda a, b: wnp.dstack([a, a * 2]), lambda a, b: np.dstack([a, a * 2])),
    "dstack 1-D": (lambda a, b: wnp.dstack([b, b]), lambda a, b: np.dstack([b, b])),
    "column_stack": (
        lambda a, b: wnp.column_stack([a[0], b, a.T]),
        lambda a, b: np.column_stack([a[0], b, a.T]),
    ),
    "stack dtype": (
        lambda a, b: wnp.stack([a[0], b], dtype=np.float64),
        lambda a, b: np.stack([a[0], b]),
    ),
}


@pytest.mark.parametrize("name", STACKS)
def test_stacks(name):
    f, ref = STACKS[name]
    check(f, X, V, ref=ref, jac=False)


SPLITS = {
    "array_split 3": lambda m, a: m.array_split(a, 3, axis=-1),
    "array_split 5 axis 1": lambda m, a: m.array_split(a, 5, axis=1),
    "array_split indices": lambda m, a: m.array_split(a, [1, -1, 7], axis=2),
    "split": lambda m, a: m.split(a, 2, axis=0),
    "split indices": lambda m, a: m.split(a, [-2, 1]),
    "hsplit": lambda m, a: m.hsplit(a, 3),
    "vsplit": lambda m, a: m.vsplit(a, [1]),
    "dsplit": lambda m, a: m.dsplit(a, 2),
}


@pytest.mark.parametrize("name", SPLITS)
def test_splits(name):
    f = SPLITS[name]
    check(lambda a: f(wnp, a), X3, ref=lambda a: f(np, a), jac=False)


def test_split_errors():
    with pytest.raises(ValueError, match="equal division"):
        wnp.split(X3, 3, axis=2)
    with pytest.raises(ValueError, match="larger than 0"):
        wnp.array_split(X3, 0)
    with pytest.raises(ValueError, match="2 or more"):
        wnp.vsplit(V, 2)
    with pytest.raises(ValueError, match="3 or more"):
        wnp.dsplit(X, 2)
    with pytest.raises(ValueError, match="1 or more"):
        wnp.hsplit(np.float64(1.0), 1)
    check(lambda v: wnp.hsplit(v, 2), V, ref=lambda v: np.hsplit(v, 2))


# ---------------------------------------------------------------------------------------------
# kron, inner, cross, convolve, correlate
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sa, sb", [((2,), (3,)), ((2, 2), (3, 1)), ((2,), (2, 3)), ((2, 1, 2), (2, 2)), ((), (3,))]
)
def test_kron(sa, sb):
    a, b = rng(3).standard_normal(sa), rng(4).standard_normal(sb)
    check(wnp.kron, a, b, ref=np.kron)


@pytest.mark.parametrize("sa, sb", [((4,), (4,)), ((3, 4), (4,)), ((2, 4), (3, 4)), ((), (3,))])
def test_inner(sa, sb):
    a, b = rng(3).standard_normal(sa), rng(4).standard_normal(sb)
    check(wnp.inner, a, b, ref=np.inner)


@pytest.mark.parametrize(
    "sa, sb, kw",
    [
        ((3,), (3,), {}),
        ((4, 3), (3,), {}),
        ((2, 1, 3), (4, 3), {}),
        ((3, 4), (4, 3), {"axisa": 0}),
        ((3, 4), (3, 4), {"axis": 0}),
        ((4, 3), (3, 4), {"axisb": 0, "axisc": 0}),
        ((2,), (3,), {}),
        ((4, 3), (4, 2), {}),
        ((4, 2), (2,), {}),
    ],
    ids=str,
)
def test_cross(sa, sb, kw):
    a, b = rng(5).standard_normal(sa), rng(6).standard_normal(sb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # NumPy 2 deprecates 2-vectors
        want = np.cross(a, b, **kw)
    np.testing.assert_allclose(wnp.cross(a, b, **kw), want, rtol=1e-13)
    check(lambda p, q: wnp.cross(p, q, **kw), a, b)


def test_cross_errors():
    with pytest.raises(ValueError, match="dimension must be 2 or 3"):
        wnp.cross(V, V)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("n, m", [(5, 3), (3, 5), (4, 4), (1, 3)], ids=str)
def test_convolve_correlate(mode, n, m):
    a, v = rng(7).standard_normal(n), rng(8).standard_normal(m)
    check(lambda p, q: wnp.convolve(p, q, mode), a, v, ref=lambda p, q: np.convolve(p, q, mode))
    check(lambda p, q: wnp.correlate(p, q, mode), a, v, ref=lambda p, q: np.correlate(p, q, mode))


def test_convolve_complex_and_float32():
    a = rng(9).standard_normal(5) + 1j * rng(10).standard_normal(5)
    v = rng(11).standard_normal(3) + 1j * rng(12).standard_normal(3)
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(wnp.correlate(a, v, mode), np.correlate(a, v, mode))
        np.testing.assert_allclose(wnp.correlate(v, a, mode), np.correlate(v, a, mode))
        np.testing.assert_allclose(wnp.convolve(a, v, mode), np.convolve(a, v, mode))
    check_grads(lambda p, q: wnp.correlate(p, q, "same"), (a, v), order=2)
    check_grads(lambda p, q: wnp.convolve(p, q), (a, v.real), order=2)
    a32 = a.real.astype(np.float32)
    assert wnp.convolve(a32, a32).dtype == np.float32
    assert grad(lambda p: wnp.sum(wnp.correlate(p, p, "full")))(a32).dtype == np.float32
    with pytest.raises(ValueError, match="mode"):
        wnp.convolve(a, v, "circular")
    with pytest.raises(ValueError, match="1-D"):
        wnp.convolve(X, V)


# ---------------------------------------------------------------------------------------------
# vander, meshgrid
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("N, increasing", [(None, False), (2, True), (5, False), (1, False)])
def test_vander(N, increasing):
    x = np.array([0.5, -1.2, 0.0, 2.0])  # a zero: x**0 and its derivatives stay exact
    check(
        lambda a: wnp.vander(a, N, increasing),
        x,
        ref=lambda a: np.vander(a, N, increasing),
        jac=N is None,
    )


@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("sparse", [False, True])
def test_meshgrid(indexing, sparse):
    x, y, z = V, V[:3] * 2, V[:2] - 1
    kw = {"indexing": indexing, "sparse": sparse}
    check(lambda a, b: wnp.meshgrid(a, b, **kw), x, y, ref=lambda a, b: np.meshgrid(a, b, **kw))
    check(
        lambda a, b, c: wnp.meshgrid(a, b, c, **kw),
        x,
        y,
        z,
        ref=lambda a, b, c: np.meshgrid(a, b, c, **kw),
        jac=False,
    )
    check(lambda a: wnp.meshgrid(a, **kw), x, ref=lambda a: np.meshgrid(a, **kw))


# ---------------------------------------------------------------------------------------------
# array / asarray / stack of nested lists holding traced scalars
# ---------------------------------------------------------------------------------------------


def test_array_of_nested_traced_scalars():
    f = lambda x: wnp.array([[x[0], 1.0], [x[1], x[2]]])
    v = np.array([0.3, -0.7, 1.1])
    np.testing.assert_array_equal(f(v), [[0.3, 1.0], [-0.7, 1.1]])
    check(f, v)
    np.testing.assert_array_equal(jacrev(f)(v)[:, :, 0], [[1, 0], [0, 0]])
    # a matrix built from traced entries, then used: det of [[a, b], [c, d]]
    g = lambda x: wnp.sum(wnp.array([[x[0], x[1]], [x[2], x[0] * x[1]]]) @ np.ones(2))
    check(g, v)
    # traced arrays and tuples inside, asarray, stack of nested lists
    h = lambda x: wnp.asarray(([x[:2], [2.0, x[2]]], [[x[2], 3.0], x[1:]]))
    check(h, v, ref=lambda x: np.asarray(([x[:2], [2.0, x[2]]], [[x[2], 3.0], x[1:]])))
    s = lambda x: wnp.stack([[x[0], 1.0], [x[1], x[2]]], axis=1)
    check(s, v, ref=lambda x: np.stack([[x[0], 1.0], [x[1], x[2]]], axis=1))
    check(lambda x: wnp.array(x, ndmin=3), v, ref=lambda x: np.array(x, ndmin=3))
    check(lambda x: wnp.array([x[0], x[1], x[2]]), v, ref=lambda x: np.array([x[0], x[1], x[2]]))


def test_array_dtypes_and_errors():
    v32 = np.array([0.3, -0.7, 1.1], np.float32)
    # NumPy's own dtype rules: Python floats in a list promote a float32 scalar
    out = jvp(lambda x: wnp.array([x[0], 1.0]), (v32,), (v32,))[1]
    assert out.dtype == np.array([np.float32(1), 1.0]).dtype
    out = jvp(lambda x: wnp.array([x[0], x[1]], dtype=np.float32), (v32,), (v32,))[1]
    assert out.dtype == np.float32
    out = jvp(lambda x: wnp.array([x[0], 1j]), (v32.astype(float),), (v32.astype(float),))
    assert out[0].dtype == np.complex128
    ints = jvp(lambda x: wnp.array([x[0], 2], dtype=int), (v32,), (v32,))[1]
    assert ints.dtype.kind == "i" and not np.any(ints)  # an integer array is a constant
    with pytest.raises(ValueError):
        grad(lambda x: wnp.sum(wnp.array([[x[0], 1.0], [x[1]]])))(v32)


def test_plain_np_array_of_tracers_points_to_wengert_array():
    with pytest.raises(TypeError, match="wengert.numpy.array"):
        grad(lambda x: np.array([x[0], 1.0]).sum())(np.ones(2))
    with pytest.raises(TypeError, match="wengert.numpy.array"):
        grad(lambda x: np.asarray(x).sum())(np.ones(2))


def test_constant_constructors():
    def f(x):
        z = wnp.zeros_like(x) + wnp.ones_like(x) + wnp.full_like(x, 2.0) + 0 * wnp.empty_like(x)
        assert isinstance(z, np.ndarray)
        return wnp.copy(x) * z + wnp.astype(x, np.float64) + x.copy()

    check(f, X)
    assert wnp.empty_like(X, dtype=np.float32).dtype == np.float32
    assert jvp(lambda x: wnp.astype(x, np.float32), (X,), (X,))[1].dtype == np.float32


# ---------------------------------------------------------------------------------------------
# through plain NumPy (__array_function__)
# ---------------------------------------------------------------------------------------------

PLAIN = {
    "np.flip": lambda x: np.flip(x, 0),
    "np.fliplr/flipud": lambda x: np.fliplr(x) * np.flipud(x),
    "np.rot90": lambda x: np.rot90(x, 3),
    "np.roll": lambda x: np.roll(x, 2, axis=1),
    "np.tile": lambda x: np.tile(x, (2, 1)),
    "np.repeat": lambda x: np.repeat(x, 2, axis=0),
    "np.triu/tril": lambda x: np.triu(x, 1) - np.tril(x),
    "np.diag": lambda x: np.diag(np.diag(x)),
    "np.diagonal/trace": lambda x: np.diagonal(x, 1) * np.trace(x),
    "np.atleast_3d": lambda x: np.atleast_3d(x),
    "np.dstack": lambda x: np.dstack([x, x]),
    "np.column_stack": lambda x: np.column_stack([x[0], x[1]]),
    "np.array_split": lambda x: np.array_split(x, 3, axis=1)[1],
    "np.hsplit": lambda x: np.hsplit(x, 2)[0],
    "np.kron": lambda x: np.kron(x[0], x[:, 0]),
    "np.cross": lambda x: np.cross(x[:, :3], x[0, 1:]),
    "np.convolve": lambda x: np.convolve(x[0], x[1], "same"),
    "np.correlate": lambda x: np.correlate(x[0], x[1, :2]),
    "np.vander": lambda x: np.vander(x[0], 3),
    "np.meshgrid": lambda x: np.meshgrid(x[0], x[1, :2])[1],
    "np.rollaxis": lambda x: np.rollaxis(x, 1),
    "np.swapaxes": lambda x: np.swapaxes(x, 0, 1),
}


@pytest.mark.parametrize("name", PLAIN)
def test_plain_numpy(name):
    f = PLAIN[name]
    check(f, X, jac=False)
    np.testing.assert_allclose(jvp(f, (X,), (X,))[0], f(X), rtol=1e-13)


def test_asarray_family():
    v = np.array([0.3, -0.7, 1.1])
    for f in (wnp.asarray, wnp.asanyarray, wnp.ascontiguousarray, wnp.array):
        check(lambda x, f=f: f([x[2], x[0]]) * f(x)[:2], v)
        check(lambda x, f=f: f(x, dtype=np.float64), v, ref=lambda x, f=f: x)
    assert wnp.asanyarray([1, 2]).dtype.kind == "i"
