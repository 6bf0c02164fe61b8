"""Plain ``import numpy as np`` code on traced values: __array_ufunc__, __array_function__,
operators and methods all land on wengert's primitives."""

import numpy as np
import pytest
from _checks import rng

from wengert import check_grads, grad, jacfwd, jacrev, jvp, vjp


def check(f, *args):
    """Order-2 derivatives in both modes; the cotangents also have their inputs' shapes and
    dtypes (check_grads alone would let a broadcastable wrong shape through)."""
    check_grads(f, args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(f, *args)
    cts = pull(np.ones_like(out))
    for ct, x in zip(cts, args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)
    nums = tuple(range(len(args)))
    for a, b in zip(jacfwd(f, argnums=nums)(*args), jacrev(f, argnums=nums)(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


X = rng().uniform(0.5, 1.5, (4, 3))

PLAIN = {
    "np.sin": lambda x: np.sin(x),
    "ufuncs": lambda x: np.exp(np.tanh(x)) + np.log(x) * np.sqrt(x) - np.square(np.cos(x)),
    "more ufuncs": lambda x: np.arctan(x) / np.power(x, 1.5) + np.abs(-x) + np.negative(x),
    "np.sum axis": lambda x: np.sum(x, axis=1),
    "np.sum positional axis": lambda x: np.sum(x * x, 0),
    "x.T @ x": lambda x: x.T @ x,
    "np.matmul": lambda x: np.matmul(x, x.T),
    "array @ x": lambda x: np.ones((2, 4)) @ x,
    "np.where": lambda x: np.where(x > 1.0, x, 2 * x),
    "np.concatenate": lambda x: np.concatenate([x, np.sin(x)], axis=1),
    "np.stack": lambda x: np.stack([x, x * x], axis=-1),
    "reshape method": lambda x: x.reshape(2, -1),
    "np.reshape": lambda x: np.reshape(x, (3, 4)),
    "step slice": lambda x: x[::2],
    "mean method": lambda x: x.mean(0),
    "np.mean": lambda x: np.mean(x, axis=(0, 1)),
    "np.max / np.min": lambda x: np.max(x, axis=0) - np.min(x, axis=1).sum(),
    "np.amax": lambda x: np.amax(x, axis=0),
    "np.prod": lambda x: np.prod(x, axis=0),
    "np.var / np.std": lambda x: np.var(x, axis=0) + np.std(x),
    "np.transpose": lambda x: np.transpose(x) * 2,
    "np.dot": lambda x: np.dot(x, x.T),
    "np.einsum": lambda x: np.einsum("ij,ij->j", x, x),
    "np.tensordot": lambda x: np.tensordot(x, x, axes=([0], [0])),
    "np.outer / np.inner": lambda x: np.outer(x[0], x[1]) + np.inner(x[0], x[1]),
    "np.clip": lambda x: np.clip(x, 0.7, 1.2),
    "np.maximum": lambda x: np.maximum(x, 1.0) + np.minimum(1.0, x),
    "np.pad": lambda x: np.pad(x, 1, mode="reflect"),
    "np.split": lambda x: np.split(x, 2)[1],
    "np.take": lambda x: np.take(x, [0, 0, 2], axis=1),
    "np.squeeze / expand_dims": lambda x: np.squeeze(np.expand_dims(x, 0)),
    "np.moveaxis / swapaxes": lambda x: (
        np.moveaxis(x[None], 0, -1) + np.swapaxes(x, 0, 1).T[..., None]
    ),
    "np.broadcast_to": lambda x: np.broadcast_to(x[0], (2, 3)),
    "np.ravel": lambda x: np.ravel(x)[::3],
    "np.real / conj": lambda x: np.real(x) + np.conj(x),
    "np.add.reduce": lambda x: np.add.reduce(x, axis=1),
    "np.multiply.reduce": lambda x: np.multiply.reduce(x),
    "np.maximum.reduce": lambda x: np.maximum.reduce(x, axis=0),
    "numpy scalar on the left": lambda x: np.float64(2.0) * x - np.float64(1.0) / x,
    "array on the left": lambda x: np.arange(3.0) * x + np.ones(3) ** x,
    "np.hstack / vstack": lambda x: np.vstack([x, np.hstack([x[0], x[1]])[:3]]),
    "comparison then where": lambda x: np.where(np.less(x, 1.0) & (x > 0.6), x**2, 1.0),
    "np.logical / isfinite": lambda x: np.where(np.isfinite(x) & np.logical_not(x > 9), x, 0.0),
    "np.linspace-like constants": lambda x: x * np.linspace(0, 1, 3),
    "iteration": lambda x: np.stack([row * k for k, row in enumerate(x)]),
    "dtype=": lambda x: np.exp(x, dtype=np.float64),
    "np.clip min= max=": lambda x: np.clip(x, min=0.7, max=1.2),
    "np.concatenate dtype=": lambda x: np.concatenate([x, x], dtype=np.float64),
    "np.copy": lambda x: np.copy(x) * x.copy(),
}


@pytest.mark.parametrize("f", PLAIN.values(), ids=PLAIN.keys())
def test_plain_numpy(f):
    check(f, X)
    # traced, the function computes what NumPy computes on plain arrays
    np.testing.assert_allclose(jvp(f, (X,), (X,))[0], f(X), rtol=1e-13)


def test_constant_queries():
    def f(x):
        assert np.shape(x) == (4, 3) and np.ndim(x) == 2 and np.size(x) == 12
        assert x.shape == (4, 3) and len(x) == 4 and x.dtype == np.float64
        i = np.argmax(x, axis=0)
        assert np.all(np.isclose(x, x)) and np.allclose(x, x) and np.iscomplexobj(x) is False
        assert np.count_nonzero(x > 1) == np.count_nonzero(X > 1)
        z = np.zeros_like(x) + np.ones_like(x) + np.full_like(x, 2.0)
        return x[i, np.arange(3)] * z[0] + x.argmin() + np.sign(x).sum()

    check(f, X)


def test_unsupported_function_names_itself():
    # functions wengert has no rule for (yet): the error names them instead of failing obscurely
    with pytest.raises(TypeError, match="numpy.interp"):
        grad(lambda x: np.interp(x, [0.0, 1.0], [0.0, 2.0]).sum())(X)
    with pytest.raises(TypeError, match="unwrap"):
        jvp(lambda x: np.unwrap(x), (X,), (X,))
    with pytest.raises(TypeError, match="add.accumulate"):
        grad(lambda x: np.add.accumulate(x).sum())(X)


def test_out_and_conversion_errors():
    with pytest.raises(TypeError, match="out="):
        grad(lambda x: np.sin(x, out=np.empty_like(X)).sum())(X)
    with pytest.raises(TypeError, match="out="):
        grad(lambda x: np.sum(x, out=np.empty(())))(X)
    with pytest.raises(TypeError):
        grad(lambda x: np.asarray(x).sum())(X)
    with pytest.raises(TypeError):
        grad(lambda x: float(x[0, 0]))(X)


def test_float32_through_numpy():
    x = X.astype(np.float32)
    f = lambda a: np.sum(np.sin(a) * a.T.T, axis=1) @ np.ones(4, np.float32) + a.mean()
    assert f(x).dtype == np.float32
    assert grad(f)(x).dtype == np.float32
    assert jacfwd(grad(f))(x).dtype == np.float32


def test_complex_through_numpy():
    z = X + 1j * X[::-1]
    f = lambda a: np.real(np.sum(np.exp(a) * np.conj(a), axis=0))
    check_grads(f, (z,), order=2)
