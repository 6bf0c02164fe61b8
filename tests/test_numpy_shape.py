"""Shape functions of wengert.numpy: reshape, transpose, broadcast, concatenate/stack/split, pad."""

import numpy as np
import pytest
from _checks import check, check_jacobians, rng

import wengert.numpy as wnp
from wengert import check_grads, grad, jacfwd, jacrev


def check_all(f, *args, ref=None):
    """Value against NumPy (``ref``, the same function on plain NumPy), derivatives, Jacobians.
    The function is composed with sin so that second derivatives are not trivially zero."""
    if ref is not None:
        np.testing.assert_allclose(f(*args), ref(*args))
    g = lambda *a: wnp.sin(f(*a))
    check(g, *args)
    check_jacobians(g, *args)


X = rng().standard_normal((2, 3, 4))


@pytest.mark.parametrize(
    "shape", [(24,), (4, 6), (-1, 4), (2, -1, 2), (1, 24, 1), (2, 3, 4), 24], ids=str
)
def test_reshape(shape):
    check_all(lambda a: wnp.reshape(a, shape), X, ref=lambda a: np.reshape(a, shape))
    check_all(lambda a: a.reshape(shape), X)


def test_reshape_method_forms_and_errors():
    check_all(lambda a: a.reshape(4, -1), X, ref=lambda a: a.reshape(4, -1))
    check_all(lambda a: a.reshape((6, 4)), X)
    check_all(lambda a: wnp.ravel(a), X, ref=np.ravel)
    check_all(lambda a: a.flatten(), X, ref=lambda a: a.flatten())
    check_all(lambda a: wnp.reshape(a, ()), np.array([1.5]))
    with pytest.raises(ValueError):
        wnp.reshape(X, (5, -1))
    with pytest.raises(ValueError):
        wnp.reshape(X, (-1, -1))


@pytest.mark.parametrize("axis", [0, 1, 3, -1, -4, (0, 2), (-1, 1)], ids=str)
def test_expand_dims(axis):
    check_all(lambda a: wnp.expand_dims(a, axis), X, ref=lambda a: np.expand_dims(a, axis))


@pytest.mark.parametrize("axis", [None, 0, 2, -1, (0, 2)], ids=str)
def test_squeeze(axis):
    x = rng(1).standard_normal((1, 3, 1))
    check_all(lambda a: wnp.squeeze(a, axis), x, ref=lambda a: np.squeeze(a, axis))
    with pytest.raises(ValueError):
        wnp.squeeze(x, 1)


@pytest.mark.parametrize("axes", [None, (1, 0, 2), (2, 0, 1), (-1, 0, 1), (0, 1, 2)], ids=str)
def test_transpose(axes):
    check_all(lambda a: wnp.transpose(a, axes), X, ref=lambda a: np.transpose(a, axes))


def test_transpose_method_and_properties():
    check_all(lambda a: a.T, X, ref=lambda a: a.T)
    check_all(lambda a: a.mT, X, ref=lambda a: a.mT)
    check_all(lambda a: a.transpose(2, 0, 1), X, ref=lambda a: a.transpose(2, 0, 1))
    check_all(lambda a: a.transpose((1, 2, 0)), X, ref=lambda a: a.transpose((1, 2, 0)))
    check_all(lambda a: a.transpose(), X, ref=lambda a: a.transpose())
    with pytest.raises(ValueError):
        wnp.transpose(X, (0, 0, 1))


@pytest.mark.parametrize(
    "src, dst", [(0, -1), (-1, 0), (1, 2), ((0, 1), (-1, -2)), ([2, 0], [0, 1])], ids=str
)
def test_moveaxis(src, dst):
    check_all(lambda a: wnp.moveaxis(a, src, dst), X, ref=lambda a: np.moveaxis(a, src, dst))


@pytest.mark.parametrize("a1, a2", [(0, 2), (-1, 0), (1, 1)])
def test_swapaxes(a1, a2):
    check_all(lambda a: wnp.swapaxes(a, a1, a2), X, ref=lambda a: np.swapaxes(a, a1, a2))
    check_all(lambda a: a.swapaxes(a1, a2), X)


@pytest.mark.parametrize(
    "xshape, shape",
    [((3,), (2, 3)), ((1, 3), (4, 3)), ((2, 1), (2, 3)), ((), (2, 2)), ((2, 1, 1), (3, 2, 4, 5))],
    ids=str,
)
def test_broadcast_to(xshape, shape):
    x = rng(2).standard_normal(xshape)
    check_all(lambda a: wnp.broadcast_to(a, shape), x, ref=lambda a: np.broadcast_to(a, shape))


def test_broadcast_arrays():
    r = rng(3)
    x, y = r.standard_normal((3, 1)), r.standard_normal(4)
    check_all(lambda a, b: wnp.stack(wnp.broadcast_arrays(a, b)), x, y)


# ---------------------------------------------------------------------------------------------
# concatenate, stack, split
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, -1, -3, None], ids=str)
def test_concatenate(axis):
    r = rng(4)
    shape = {0: (1, 3, 2), 1: (2, 1, 2), -1: (2, 3, 1), -3: (3, 3, 2), None: (2, 2)}[axis]
    a, b = r.standard_normal((2, 3, 2)), r.standard_normal(shape)
    c = r.standard_normal((2, 3, 2)) if axis is not None else r.standard_normal((5,))
    check_all(
        lambda p, q: wnp.concatenate([p, q, c], axis=axis),
        a,
        b,
        ref=lambda p, q: np.concatenate([p, q, c], axis=axis),
    )
    check_all(lambda p: wnp.concatenate((c, p, p), axis=axis), a)


def test_concatenate_mixed_constant_and_traced_jacfwd():
    # the constant pieces need zero tangents with the batch axis of jacfwd
    x = rng(5).standard_normal((2, 2))
    j = jacfwd(lambda a: wnp.concatenate([np.ones((1, 2)), a, np.zeros((3, 2))]))(x)
    assert j.shape == (6, 2, 2, 2)
    np.testing.assert_array_equal(j[1:3].reshape(4, 4), np.eye(4))


@pytest.mark.parametrize("axis", [0, 1, -1, 2, -3], ids=str)
def test_stack(axis):
    r = rng(6)
    a, b = r.standard_normal((2, 3)), r.standard_normal((2, 3))
    check_all(
        lambda p, q: wnp.stack([p, q], axis=axis), a, b, ref=lambda p, q: np.stack([p, q], axis)
    )


def test_hstack_vstack():
    r = rng(7)
    v, m = r.standard_normal(3), r.standard_normal((2, 3))
    check_all(lambda p: wnp.hstack([p, p * 2]), v, ref=lambda p: np.hstack([p, p * 2]))
    check_all(lambda p: wnp.hstack([p, p[:, :1]]), m, ref=lambda p: np.hstack([p, p[:, :1]]))
    check_all(lambda p, q: wnp.vstack([p, q]), v, m, ref=lambda p, q: np.vstack([p, q]))


@pytest.mark.parametrize(
    "sections, axis",
    [(2, 0), (3, 1), ([1, 3], 1), ([2], -1), ([-1], 0), ([0, 5], 2), (4, -1)],
    ids=str,
)
def test_split(sections, axis):
    x = rng(8).standard_normal((2, 3, 4))
    if isinstance(sections, int) and x.shape[axis] % sections:
        with pytest.raises(ValueError):
            wnp.split(x, sections, axis)
        return
    ref = np.split(x, sections, axis)
    got = wnp.split(x, sections, axis)
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    f = lambda a: wnp.concatenate(
        [wnp.ravel(p) * (k + 1) for k, p in enumerate(wnp.split(a, sections, axis))]
    )
    check_all(f, x)


# ---------------------------------------------------------------------------------------------
# pad
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@pytest.mark.parametrize("width", [1, (1, 2), ((0, 2), (1, 1)), ((2, 0), (0, 3))], ids=str)
def test_pad(mode, width):
    x = rng(9).standard_normal((3, 4))
    check_all(lambda a: wnp.pad(a, width, mode=mode), x, ref=lambda a: np.pad(a, width, mode=mode))


def test_pad_constant_value_and_1d():
    x = rng(10).standard_normal(4)
    check_all(
        lambda a: wnp.pad(a, 2, constant_values=1.5),
        x,
        ref=lambda a: np.pad(a, 2, constant_values=1.5),
    )
    check_all(lambda a: wnp.pad(a, (0, 3), mode="reflect"), x)
    check_all(lambda a, v: wnp.pad(a, (1, 2), constant_values=v * v), x, np.float64(0.7))
    g = grad(lambda a: wnp.sum(wnp.pad(a, 2, mode="edge")))(x)
    np.testing.assert_array_equal(g, [3, 1, 1, 3])
    with pytest.raises(NotImplementedError):
        wnp.pad(x, 1, mode="linear_ramp")


# ---------------------------------------------------------------------------------------------
# float32 and batched tangents through a chain of shape operations
# ---------------------------------------------------------------------------------------------


def _chain(a):
    b = wnp.reshape(a, (3, 2, 2))
    c = wnp.transpose(b, (2, 0, 1))
    d = wnp.concatenate([c, wnp.broadcast_to(c[:1], (1, 3, 2))], axis=0)
    e = wnp.pad(wnp.swapaxes(d, 0, 1), ((1, 0), (0, 1), (0, 0)), mode="edge")
    p, q = wnp.split(e, [2], axis=0)
    return wnp.stack([wnp.squeeze(wnp.expand_dims(p[:, 0], 0), 0), q[:2, 1]], axis=-1)


def test_chain_jacobians():
    x = rng(11).standard_normal((2, 6))
    check_all(_chain, x)


def test_float32():
    x = rng(12).standard_normal((2, 6)).astype(np.float32)
    f = lambda a: wnp.sin(_chain(a)) * 2
    assert f(x).dtype == np.float32
    assert grad(lambda a: wnp.sum(f(a)))(x).dtype == np.float32
    assert jacfwd(f)(x).dtype == np.float32
    assert jacfwd(grad(lambda a: wnp.sum(f(a))))(x).dtype == np.float32
    check_grads(f, (x,), order=2)
    for mode in ("constant", "reflect"):
        assert wnp.pad(x, 1, mode=mode).dtype == np.float32
        assert jacfwd(lambda a: wnp.pad(a, 1, mode=mode))(x).dtype == np.float32


def check_hessians(f, x):
    """The four ways to a Hessian agree (three carry batched tangents through the rules)."""
    h = jacrev(jacrev(f))(x)
    for other in (jacfwd(jacrev(f)), jacfwd(jacfwd(f)), jacrev(jacfwd(f))):
        np.testing.assert_allclose(other(x), h, rtol=1e-9, atol=1e-10)


W = np.arange(1.0, 25.0)
HESSIANS = {
    "concatenate": lambda x: wnp.sum(wnp.sin(wnp.concatenate([x, x[:1] * 2], axis=0)) ** 2),
    "stack": lambda x: wnp.sum(wnp.stack([x, x * x], axis=1) ** 3),
    "pad constant": lambda x: wnp.sum(wnp.pad(x, 1, constant_values=0.3) ** 3),
    "pad traced value": lambda x: wnp.sum(wnp.pad(x, (1, 0), constant_values=x[0, 0]) ** 3),
    "pad reflect": lambda x: wnp.sum(wnp.pad(x, ((1, 2), (0, 1)), mode="reflect") ** 3),
    "transpose": lambda x: wnp.sum(
        wnp.transpose(x[None] * x[:, None], (2, 0, 1)) ** 2 * W[:4, None, None]
    ),
    "broadcast_to": lambda x: wnp.sum(
        wnp.broadcast_to(x[:, None, :], (3, 2, 4)) ** 3 * W[:2, None]
    ),
    "reshape": lambda x: wnp.sum(wnp.reshape(x, (2, 6)) ** 3 * W[:6]),
    "moveaxis": lambda x: wnp.sum(wnp.moveaxis(x[None] * x[:, None], 0, -1) ** 2 * W[:3]),
    "split": lambda x: sum(wnp.sum(p ** (k + 2)) for k, p in enumerate(wnp.split(x, [1, 3], 1))),
    "squeeze": lambda x: wnp.sum(wnp.squeeze(wnp.expand_dims(x, (0, 2))) ** 3 * W[:4]),
}


@pytest.mark.parametrize("f", HESSIANS.values(), ids=HESSIANS.keys())
def test_hessians(f):
    check_hessians(f, rng(13).uniform(0.5, 1.5, (3, 4)))
