"""Coverage of the ndarray methods and properties of traced values: x.sum(), x.T, x.reshape,
x.dot, x.clip, x.cumsum, x.sort (refused: it sorts in place), ...; derivatives by check_grads
in both modes to order 2 (the same code runs on plain arrays for the finite differences)."""

import numpy as np
import pytest
from _checks import rng

import wengert.numpy as wnp
from wengert import check_grads, grad, jacfwd, jacrev, jvp, vjp

X = rng().standard_normal((3, 4))
X3 = rng(1).standard_normal((2, 3, 4))


def check(f, *args):
    check_grads(lambda *a: wnp.sin(f(*a)), args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(f, *args)
    np.testing.assert_allclose(out, f(*args), rtol=1e-13)  # traced == plain NumPy
    for ct, x in zip(pull(np.ones_like(out)), args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)


METHODS = {
    "sum": lambda x: x.sum(),
    "sum axis keepdims": lambda x: x.sum(axis=(0, -1), keepdims=True),
    "mean": lambda x: x.mean(1),
    "prod": lambda x: x.prod(axis=0),
    "var ddof": lambda x: x.var(axis=-1, ddof=1),
    "std": lambda x: x.std(),
    "max/min": lambda x: x.max(axis=1) - x.min(axis=1, keepdims=False),
    "cumsum": lambda x: x.cumsum(axis=-1),
    "cumsum flat": lambda x: x.cumsum(),
    "cumprod": lambda x: x.cumprod(1),
    "T": lambda x: x.T,
    "mT": lambda x: x.mT,
    "reshape tuple": lambda x: x.reshape((4, -1)),
    "reshape args": lambda x: x.reshape(2, 2, -1),
    "transpose": lambda x: x.transpose(2, 0, 1),
    "transpose tuple": lambda x: x.transpose((1, 0, 2)),
    "swapaxes": lambda x: x.swapaxes(0, 2),
    "flatten": lambda x: x.flatten(),
    "ravel": lambda x: x.ravel(),
    "squeeze": lambda x: x[:1].squeeze(0),
    "dot": lambda x: x.dot(x[0].T),
    "clip": lambda x: x.clip(-0.5, 0.5),
    "clip min=": lambda x: x.clip(min=-0.3),
    "repeat": lambda x: x.repeat(2, axis=1),
    "take": lambda x: x.take([0, 5, 5]),
    "take axis mode": lambda x: x.take([1, -4], axis=2, mode="wrap"),
    "trace": lambda x: x.trace(1, 1, 2),
    "diagonal": lambda x: x.diagonal(0, 0, 2),
    "compress": lambda x: x.compress([True, False, True], axis=1),
    "conj": lambda x: x.conj() * x.conjugate(),
    "real/imag": lambda x: x.real + x.imag,
    "astype": lambda x: x.astype(np.float64) * 2,
    "copy": lambda x: x.copy() * x,
    "argsort gather": lambda x: np.take_along_axis(x, x.argsort(axis=1), axis=1),
    "argmax/argmin": lambda x: x.ravel()[x.argmax()] + x[1].ravel()[x[1].argmin()],
    "searchsorted": lambda x: x[0, 0] * x[0, 0].searchsorted(0.0),
    "argpartition": lambda x: x[0, 0][x[0, 0].argpartition(2)],
    "nonzero": lambda x: x[(x > 0).nonzero()],
    "round": lambda x: x * x.round(1),
    "all/any": lambda x: x * (x > -5).all() + x * (x > 5).any(),
    "iteration": lambda x: wnp.stack([r * k for k, r in enumerate(x)]),
    "len/shape/ndim/size": lambda x: x * (len(x) + x.shape[1] + x.ndim + x.size),
}


@pytest.mark.parametrize("name", METHODS)
def test_method(name):
    check(METHODS[name], X3)


def test_complex_methods():
    z = X + 1j * X[::-1]
    check_grads(lambda a: (a.conj() * a).real.sum() + a.imag.cumsum(), (z,), order=2)
    check_grads(lambda a: a.T.dot(a).real, (z,), order=2)


def test_ptp_method():
    # ndarray lost .ptp in NumPy 2, but traced values keep it: compare with np.ptp
    f = lambda x: x.ptp(axis=1)
    out, t = jvp(f, (X,), (X3[0],))
    np.testing.assert_allclose(out, np.ptp(X, axis=1))
    np.testing.assert_allclose(t, jvp(lambda x: wnp.ptp(x, axis=1), (X,), (X3[0],))[1])
    np.testing.assert_allclose(grad(lambda x: x.ptp())(X), grad(wnp.ptp)(X))
    np.testing.assert_allclose(jacfwd(f)(X), jacrev(f)(X))


IN_PLACE = {
    "sort": (lambda x: x.sort(), "wengert.numpy.sort"),
    "sort axis": (lambda x: x.sort(axis=0), "np.sort"),
    "partition": (lambda x: x.partition(1), "wengert.numpy.partition"),
    "fill": (lambda x: x.fill(0.0), "full_like"),
    "put": (lambda x: x.put([0], 1.0), "where"),
    "resize": (lambda x: x.resize((12,)), "reshape"),
}


@pytest.mark.parametrize("name", IN_PLACE)
def test_in_place_methods_refuse(name):
    f, hint = IN_PLACE[name]
    with pytest.raises(TypeError, match=hint):
        grad(lambda x: f(x) or 0.0)(X)
    with pytest.raises(TypeError, match="in place"):
        jvp(f, (X,), (X,))


def test_item_and_conversions_refuse():
    for f in (lambda x: x.item(), lambda x: x.tolist(), lambda x: float(x[0, 0])):
        with pytest.raises(TypeError, match="stop_gradient"):
            grad(lambda x, f=f: f(x) * 1.0)(X)


def test_sort_functional_form_suggested_works():
    f = lambda x: np.sort(x, axis=0)[-1]
    check(f, X)
    np.testing.assert_allclose(jvp(f, (X,), (X,))[0], np.sort(X, axis=0)[-1])
