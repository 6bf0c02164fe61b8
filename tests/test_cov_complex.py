"""Complex numbers: real, imag, conj, angle and abs of complex inputs, complex arithmetic through
the element-wise family, the no-conjugation convention, and holomorphic derivatives."""

import numpy as np
import pytest
from _checks import check, rng

import wengert.numpy as wnp
from wengert import check_grads, grad, holomorphic_grad, jacfwd, jacrev, jvp, vjp


def Z(r, s=(2, 3), lo=0.4, hi=1.5):
    """Complex numbers away from 0, the branch cuts and the poles of the functions below."""
    return r.uniform(lo, hi, s) + 1j * r.uniform(lo, hi, s) * r.choice([-1, 1], s)


# ---------------------------------------------------------------------------------------------
# The parts of a complex number
# ---------------------------------------------------------------------------------------------

PARTS = {
    "real": wnp.real,
    "imag": wnp.imag,
    "conj": wnp.conj,
    "conjugate": wnp.conjugate,
    "angle": wnp.angle,
    "angle deg": lambda z: wnp.angle(z, deg=True),
    "abs": wnp.abs,
    "absolute": wnp.absolute,
    "sign": wnp.sign,
    ".real": lambda z: z.real,
    ".imag": lambda z: z.imag,
    ".conj()": lambda z: z.conj(),
    "abs²": lambda z: wnp.abs(z) ** 2,
    "re·im": lambda z: wnp.real(z) * wnp.imag(z),
}


@pytest.mark.parametrize("name", PARTS)
def test_parts(name):
    z = Z(rng())
    f = PARTS[name]
    check(f, z)
    np.testing.assert_allclose(f(z), {"angle deg": lambda w: np.angle(w, deg=True),
                                      "abs²": lambda w: np.abs(w) ** 2,
                                      "re·im": lambda w: w.real * w.imag,
                                      ".real": np.real, ".imag": np.imag,
                                      ".conj()": np.conj}.get(name, getattr(np, name, None))(z))  # fmt: skip


def test_part_gradients_follow_the_convention():
    # grad of a real function of z = a + ib is ∂f/∂a − i ∂f/∂b (the conjugate direction)
    z = np.array([3.0 + 4.0j, -1.0 + 2.0j])
    s = lambda f: lambda w: wnp.sum(f(w))
    np.testing.assert_allclose(grad(s(wnp.real))(z), [1, 1])
    np.testing.assert_allclose(grad(s(wnp.imag))(z), [-1j, -1j])
    np.testing.assert_allclose(grad(s(lambda w: wnp.abs(w) ** 2))(z), 2 * np.conj(z))
    np.testing.assert_allclose(grad(s(wnp.abs))(z), np.conj(z) / np.abs(z))
    # angle = arctan2(b, a): ∂/∂a = −b/|z|², ∂/∂b = a/|z|²
    np.testing.assert_allclose(grad(s(wnp.angle))(z), (-z.imag - 1j * z.real) / np.abs(z) ** 2)
    # conj: the VJP of a linear map is its transpose with no conjugation
    _, pull = vjp(wnp.conj, z)
    np.testing.assert_allclose(pull(np.array([1j, 2.0]))[0], [-1j, 2.0])


def test_parts_of_real_inputs():
    x = rng(1).standard_normal(4)
    assert np.all(jacrev(wnp.imag)(x) == 0)
    np.testing.assert_array_equal(jacrev(wnp.real)(x), np.eye(4))
    np.testing.assert_array_equal(jacrev(wnp.conj)(x), np.eye(4))
    assert np.all(jacfwd(wnp.angle)(x) == 0)  # 0 or π: a constant


def test_parts_at_zero_are_finite():
    z = np.array([0j, 1 + 1j])
    for f in (wnp.abs, wnp.angle, wnp.sign):
        _, pull = vjp(f, z)
        out = pull(np.ones(2, np.result_type(f(z))))[0]
        assert np.all(np.isfinite(out))
        _, t = jvp(f, (z,), (np.array([1 + 1j, 1j]),))
        assert np.all(np.isfinite(t))


# ---------------------------------------------------------------------------------------------
# Complex arithmetic through the element-wise family
# ---------------------------------------------------------------------------------------------

HOLOMORPHIC = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b,
    "power": lambda a, b: a**b,
    "power int": lambda a, b: a**3 + b**-2,
    "exp": lambda a, b: wnp.exp(a) * b,
    "exp2": lambda a, b: wnp.exp2(a) + b,
    "expm1": lambda a, b: wnp.expm1(a) - b,
    "log": lambda a, b: wnp.log(a) * b,
    "log2": lambda a, b: wnp.log2(a) + wnp.log10(b),
    "log1p": lambda a, b: wnp.log1p(a) + b,
    "sqrt": lambda a, b: wnp.sqrt(a) * b,
    "square": lambda a, b: wnp.square(a) + wnp.reciprocal(b),
    "trig": lambda a, b: wnp.sin(a) * wnp.cos(b) + wnp.tan(a),
    "hyperbolic": lambda a, b: wnp.sinh(a) * wnp.cosh(b) + wnp.tanh(a),
    "inverse trig": lambda a, b: wnp.arcsin(a / 2) + wnp.arccos(b / 2) + wnp.arctan(a),
    "inverse hyperbolic": lambda a, b: wnp.arcsinh(a) + wnp.arccosh(b + 2) + wnp.arctanh(a / 2),
    "sinc": lambda a, b: wnp.sinc(a) * b,
    "negative positive": lambda a, b: -a + (+b),
    "where": lambda a, b: wnp.where(np.array([True, False, True]), a, b),
    "float_power": lambda a, b: wnp.float_power(a, 2) * b,
}


@pytest.mark.parametrize("name", HOLOMORPHIC)
def test_complex_arithmetic(name):
    r = rng(2)
    a, b = Z(r), Z(r)
    f = HOLOMORPHIC[name]
    check(f, a, b)
    # holomorphic: the Jacobians by both modes agree, and equal the complex derivative
    ja, jb = jacfwd(f, argnums=(0, 1), holomorphic=True)(a, b)
    ra, rb = jacrev(f, argnums=(0, 1), holomorphic=True)(a, b)
    np.testing.assert_allclose(ja, ra, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jb, rb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "f",
    [
        lambda a, x: a * x + wnp.exp(x) / a,
        lambda a, x: wnp.abs(a * x) ** 2 + wnp.real(a) * x,
        lambda a, x: wnp.arctan2(wnp.imag(a), x) + wnp.hypot(wnp.real(a), x),
        lambda a, x: wnp.maximum(wnp.abs(a), x) * a,
        lambda a, x: wnp.astype(x, np.complex128) * a,
    ],
)
def test_mixed_real_and_complex(f):
    r = rng(3)
    a, x = Z(r), r.uniform(0.5, 1.5, (2, 3))
    check(f, a, x)


def test_complex64_stays_complex64():
    z = Z(rng(4)).astype(np.complex64)
    f = lambda w: wnp.sum(wnp.abs(wnp.exp(w) * w + wnp.log(w)) ** 2)
    assert grad(f)(z).dtype == np.complex64
    g = holomorphic_grad(lambda w: wnp.sum(wnp.sin(w) * w))(z)
    assert g.dtype == np.complex64
    _, t = jvp(wnp.sqrt, (z,), (np.ones_like(z),))
    assert t.dtype == np.complex64


# ---------------------------------------------------------------------------------------------
# Holomorphic derivatives
# ---------------------------------------------------------------------------------------------

HOLO = {
    "exp": (wnp.exp, np.exp),
    "sin": (wnp.sin, np.cos),
    "z**3": (lambda z: z**3, lambda z: 3 * z**2),
    "1/z": (lambda z: 1 / z, lambda z: -1 / z**2),
    "log": (wnp.log, lambda z: 1 / z),
    "sqrt": (wnp.sqrt, lambda z: 0.5 / np.sqrt(z)),
    "tanh": (wnp.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "z·exp(z)": (lambda z: z * wnp.exp(z), lambda z: (1 + z) * np.exp(z)),
}


@pytest.mark.parametrize("name", HOLO)
def test_holomorphic_grad(name):
    f, df = HOLO[name]
    z0 = np.complex128(0.7 - 0.4j)
    np.testing.assert_allclose(holomorphic_grad(f)(z0), df(z0), rtol=1e-12)
    np.testing.assert_allclose(grad(f, holomorphic=True)(z0), df(z0), rtol=1e-12)
    # elementwise for arrays (the sum's gradient), and the Jacobian is diagonal
    z = Z(rng(5), (4,))
    np.testing.assert_allclose(holomorphic_grad(lambda w: wnp.sum(f(w)))(z), df(z), rtol=1e-12)
    np.testing.assert_allclose(jacfwd(f, holomorphic=True)(z), np.diag(df(z)), rtol=1e-12)
    np.testing.assert_allclose(jacrev(f, holomorphic=True)(z), np.diag(df(z)), rtol=1e-12)
    # second derivative: the derivative of f' (itself holomorphic)
    d2 = holomorphic_grad(holomorphic_grad(f))(z0)
    h = 1e-4
    fd = (df(z0 + h) - df(z0 - h)) / (2 * h)
    np.testing.assert_allclose(d2, fd, rtol=1e-6)


def test_real_part_of_holomorphic_function():
    # for a real-valued g = Re f(z), grad = ∂g/∂a − i ∂g/∂b = Re f′ + i Im f′ = f′(z), and for
    # Im f(z) it is −i f′(z) (JAX's convention)
    z = Z(rng(6), (3,))
    for f, df in HOLO.values():
        g = grad(lambda w, f=f: wnp.sum(wnp.real(f(w))))(z)
        np.testing.assert_allclose(g, df(z), rtol=1e-10)
        g = grad(lambda w, f=f: wnp.sum(wnp.imag(f(w))))(z)
        np.testing.assert_allclose(g, -1j * df(z), rtol=1e-10)


def test_holomorphic_needs_complex_input():
    with pytest.raises(TypeError, match="complex"):
        holomorphic_grad(wnp.sin)(np.float64(1.0))


def test_python_complex_constant_times_a_reduced_tangent():
    # sum(x) gives NumPy scalars; 1j * (NumPy scalar) must stay an array value in the rules
    out, t = jvp(lambda x: 1j * wnp.sum(x) + 1, (np.ones(3),), (np.ones(3),))
    assert out == 1 + 3j and t == 3j
    check_grads(lambda x: 1j * wnp.sum(x) + 1, (np.ones(3),))
