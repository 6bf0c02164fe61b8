"""wengert.numpy.fft: every transform through check_grads (forward and reverse, to order 2)
with n / s padding and truncation, axes, all three norms, real and complex inputs; values equal
NumPy's; jacfwd = jacrev; float32 kept; plain ``np.fft`` calls routed."""

import numpy as np
import pytest

import wengert.numpy as wnp
from wengert import check_grads, grad, jacfwd, jacrev, jvp, vjp

F = wnp.fft
NORMS = [None, "ortho", "forward"]


def randn(*shape, seed=0, cplx=False):
    r = np.random.default_rng(seed)
    x = r.standard_normal(shape)
    return x + 1j * r.standard_normal(shape) if cplx else x


def check(f, ref, *args):
    """NumPy's values, derivatives in both modes to order 2, cotangents shaped like inputs."""
    out, pull = vjp(f, *args)
    np.testing.assert_allclose(out, ref(*args), rtol=1e-12, atol=1e-12)
    assert out.dtype == ref(*args).dtype
    check_grads(f, args, order=2, modes=("fwd", "rev"))
    for ct, x in zip(pull(np.ones_like(out)), args):
        assert ct.shape == np.shape(x) and ct.dtype == np.result_type(x)


X = randn(3, 6)  # even length along the last axis
XO = randn(3, 5, seed=1)  # odd
Z = randn(3, 6, seed=2, cplx=True)
Z3 = randn(2, 4, 5, seed=3, cplx=True)
X3 = Z3.real.copy()

ONE_D = [
    ("fft", {}, Z),
    ("fft", {}, X),
    ("fft", {"n": 9, "axis": 0}, Z),
    ("fft", {"n": 4}, Z),
    ("ifft", {}, Z),
    ("ifft", {"n": 8, "axis": -2}, X),
    ("rfft", {}, X),
    ("rfft", {}, XO),
    ("rfft", {"n": 7, "axis": 0}, X),
    ("rfft", {"n": 4}, XO),
    ("irfft", {}, Z),
    ("irfft", {"n": 9}, Z),
    ("irfft", {"n": 4}, Z),
    ("irfft", {"n": 14, "axis": 0}, Z),
    ("irfft", {}, X),  # real input is a half spectrum too
    ("hfft", {}, Z),
    ("hfft", {"n": 7, "axis": 0}, Z),
    ("ihfft", {}, X),
    ("ihfft", {"n": 5}, XO),
]


@pytest.mark.parametrize("norm", NORMS, ids=str)
@pytest.mark.parametrize(
    "name, kw, x", ONE_D, ids=lambda v: str(v) if not hasattr(v, "shape") else str(v.dtype)
)
def test_one_dimensional(name, kw, x, norm):
    f = lambda a: getattr(F, name)(a, norm=norm, **kw)
    ref = lambda a: getattr(np.fft, name)(a, norm=norm, **kw)
    check(f, ref, x)


N_D = [
    ("fft2", {}, Z3),
    ("fft2", {"s": (3, 7)}, X3),
    ("ifft2", {"s": (3, 7)}, Z3),
    ("fftn", {}, Z3),
    ("fftn", {"s": (5, 3), "axes": (0, 2)}, Z3),
    ("fftn", {"axes": (0, 0)}, Z3),  # a repeated axis transforms twice
    ("ifftn", {"axes": (1, 0)}, Z3),
    ("rfftn", {}, X3),
    ("rfftn", {"s": (3, 6), "axes": (0, 1)}, X3),
    ("rfft2", {}, X3),
    ("irfftn", {}, Z3),
    ("irfftn", {"s": (3, 7), "axes": (2, 1)}, Z3),
    ("irfft2", {}, Z3),
    ("irfft2", {"s": (5, 5)}, X3),
]


@pytest.mark.parametrize("norm", NORMS, ids=str)
@pytest.mark.parametrize(
    "name, kw, x", N_D, ids=lambda v: str(v) if not hasattr(v, "shape") else str(v.dtype)
)
def test_n_dimensional(name, kw, x, norm):
    f = lambda a: getattr(F, name)(a, norm=norm, **kw)
    ref = lambda a: getattr(np.fft, name)(a, norm=norm, **kw)
    check(f, ref, x)


@pytest.mark.parametrize("name", ["fftshift", "ifftshift"])
@pytest.mark.parametrize("axes", [None, 1, (0, 2), -1], ids=str)
def test_shifts(name, axes):
    for x in (X3, Z3):
        check(lambda a: getattr(F, name)(a, axes), lambda a: getattr(np.fft, name)(a, axes), x)


def test_frequencies_are_numpy_constants():
    np.testing.assert_array_equal(F.fftfreq(8, 0.5), np.fft.fftfreq(8, 0.5))
    np.testing.assert_array_equal(F.rfftfreq(9), np.fft.rfftfreq(9))


def test_round_trips_and_parseval():
    """Derivatives of identities: irfft(rfft(x)) = x, ifft(fft(z)) = z, and Parseval's
    Σ|x|² = Σ|X|²/n give identity Jacobians and 2x."""
    x = randn(8)
    np.testing.assert_allclose(jacfwd(lambda a: F.irfft(F.rfft(a)))(x), np.eye(8), atol=1e-12)
    np.testing.assert_allclose(jacrev(lambda a: F.irfft(F.rfft(a), n=8))(x), np.eye(8), atol=1e-12)
    np.testing.assert_allclose(
        jacrev(lambda a: F.irfft(F.rfft(a, norm="ortho"), 8, norm="ortho"))(x),
        np.eye(8),
        atol=1e-12,
    )
    z = randn(6, cplx=True)
    _, t = jvp(lambda a: F.ifft(F.fft(a)), (z,), (z,))
    np.testing.assert_allclose(t, z, atol=1e-12)
    g = grad(lambda a: wnp.sum(wnp.abs(F.fft(a)) ** 2) / 8)(x)
    np.testing.assert_allclose(g, 2 * x, atol=1e-12)
    w = np.full(5, 2.0)  # the half spectrum counts its inner bins twice
    w[[0, -1]] = 1
    g = grad(lambda a: wnp.sum(w * wnp.abs(F.rfft(a, norm="ortho")) ** 2))(x)
    np.testing.assert_allclose(g, 2 * x, atol=1e-12)


REAL_VALUED = {
    "fft": lambda a: wnp.real(F.fft(a, n=7)) + wnp.imag(F.fft(a, n=7)),
    "rfft": lambda a: wnp.abs(F.rfft(a, axis=0)) ** 2,
    "irfft": lambda a: F.irfft(F.fft(a), n=6),
    "hfft": lambda a: F.hfft(a * (1 + 2j), norm="ortho"),
    "ihfft": lambda a: wnp.imag(F.ihfft(a)),
    "fftn": lambda a: wnp.real(F.fftn(a, s=(4, 4))),
    "rfftn": lambda a: wnp.imag(F.rfftn(a, norm="forward")),
    "irfftn": lambda a: F.irfftn(a * 1j, s=(3, 4)),
    "fftshift": lambda a: F.fftshift(a) * a,
}


@pytest.mark.parametrize("name", REAL_VALUED)
def test_jacfwd_equals_jacrev(name):
    f = REAL_VALUED[name]
    x = randn(3, 4)
    np.testing.assert_allclose(jacfwd(f)(x), jacrev(f)(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "name", ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "rfftn", "irfftn"]
)
def test_float32_stays_single(name):
    x = randn(4, 6).astype(np.float32)
    z = (x + 1j * x[::-1]).astype(np.complex64)
    arg = z if name in ("irfft", "hfft", "irfftn") else x
    f = lambda a: wnp.abs(getattr(F, name)(a)) ** 2
    out, pull = vjp(f, arg)
    assert out.dtype == np.float32
    assert getattr(F, name)(arg).dtype == getattr(np.fft, name)(arg).dtype
    assert pull(np.ones_like(out))[0].dtype == arg.dtype
    assert jvp(f, (arg,), (np.ones_like(arg),))[1].dtype == np.float32
    check_grads(f, (arg,), order=1)


def test_plain_numpy_calls_are_routed():
    def f(a):
        spec = np.fft.rfft(a, axis=0)
        back = np.fft.irfft(spec * 0.5, n=a.shape[0], axis=0)
        z = np.fft.fftshift(np.fft.fft2(a))
        return np.sum(back**2) + np.sum(np.abs(np.fft.ifftn(z)) ** 2) + np.sum(np.fft.hfft(a))

    x = randn(4, 5)
    check_grads(f, (x,), order=2)
    assert grad(f)(x).shape == x.shape


def test_errors():
    x = randn(6)
    with pytest.raises(ValueError, match="Invalid norm"):
        grad(lambda a: wnp.sum(wnp.abs(F.fft(a, norm="both"))))(x)
    with pytest.raises(ValueError, match="Invalid number of FFT data points"):
        grad(lambda a: wnp.sum(wnp.abs(F.fft(a, n=0))))(x)
    with pytest.raises(TypeError, match="out="):
        grad(lambda a: wnp.sum(wnp.abs(F.fft(a, out=np.empty(6, complex)))))(x)
    with pytest.raises(ValueError, match="different lengths"):
        grad(lambda a: wnp.sum(wnp.abs(F.fftn(a[None], s=(2,), axes=(0, 1)))))(x)
