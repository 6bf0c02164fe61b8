"""Dtypes: float32 stays float32, float64, complex inputs (JAX's convention), and integer /
boolean arguments as constants."""

from __future__ import annotations

import numpy as np
import pytest

import wengert.numpy as wnp
from wengert import (
    grad,
    hessian,
    holomorphic_grad,
    hvp,
    jacfwd,
    jacrev,
    jvp,
    value_and_grad,
    vjp,
)

F32 = np.float32
X32 = np.array([0.3, 0.5, 0.7], F32)
A32 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], F32)

# Functions of a float32 vector mixing Python scalars, float32 constants and many operations.
OPS32 = {
    "elementwise": lambda x: wnp.sin(x) * wnp.exp(x) + wnp.sqrt(x) / (1.0 + x**2),
    "trig": lambda x: wnp.tanh(x) + wnp.arctan(x) * wnp.cos(x) - wnp.log1p(x),
    "powers": lambda x: x**2.5 + 2.0**x + x**x + wnp.reciprocal(x),
    "select": lambda x: wnp.where(x > 0.4, x, 2 * x) + wnp.maximum(x, 0.5) + wnp.clip(x, 0.4, 0.6),
    "reduce": lambda x: wnp.stack([wnp.sum(x), wnp.mean(x), wnp.prod(x), wnp.var(x), wnp.max(x)]),
    "logsumexp": lambda x: wnp.logsumexp(x) * x,
    "contract": lambda x: wnp.matmul(A32, x) + wnp.einsum("ij,j->i", A32, x**2),
    "outer": lambda x: wnp.outer(x, x) + wnp.dot(x, x),
    "shape": lambda x: wnp.concatenate([x[1:], wnp.reshape(x, (3,))[:1]]) * wnp.pad(x, 1)[1:-1],
    "broadcast": lambda x: wnp.broadcast_to(x, (2, 3)) * wnp.reshape(x, (3, 1))[:2],
    "int_and_bool_constants": lambda x: x * 3 + (x > 0.4) * x,
    "complex_intermediate": lambda x: wnp.real(wnp.astype(x, np.complex64) * (1 + 1j)) * x,
}


def _sum(f):
    return lambda x: wnp.sum(f(x))


@pytest.mark.parametrize("name", list(OPS32))
def test_float32_stays_float32(name):
    f = OPS32[name]
    fs = _sum(f)
    assert np.result_type(f(X32)) == F32
    v, g = value_and_grad(fs)(X32)
    assert np.result_type(v) == F32 and g.dtype == F32
    out, t = jvp(f, (X32,), (np.ones(3, F32),))
    assert np.result_type(out) == F32 and np.result_type(t) == F32
    out, pull = vjp(f, X32)
    (ct,) = pull(np.ones(np.shape(out), F32))
    assert ct.dtype == F32
    assert jacfwd(f)(X32).dtype == F32
    assert jacrev(f)(X32).dtype == F32
    assert hessian(fs)(X32).dtype == F32
    assert hvp(fs, (X32,), (np.ones(3, F32),)).dtype == F32
    # and the float32 derivative agrees with the float64 one
    g64 = grad(fs)(X32.astype(np.float64))
    np.testing.assert_allclose(g, g64, rtol=2e-4, atol=1e-5)


def test_float32_scalar_input():
    x = F32(0.5)
    g = grad(lambda x: x**3 * 2.0)(x)
    assert g.dtype == F32 and g.shape == ()
    assert grad(grad(grad(grad(lambda x: wnp.sin(x) * 3.0))))(x).dtype == F32


def test_float32_with_float64_constant_gives_float32_gradient():
    # NumPy promotes the value to float64; the gradient still has the input's dtype
    c = np.ones(3)
    g = grad(lambda x: wnp.sum(x * c))(X32)
    assert g.dtype == F32


def test_float32_output_not_depending_on_input():
    assert grad(lambda x: F32(1.0))(X32).dtype == F32
    assert jacfwd(lambda x: np.ones(2, F32))(X32).dtype == F32
    assert jacrev(lambda x: np.ones(2, F32))(X32).dtype == F32
    assert jvp(lambda x: np.ones(2, F32), (X32,), (X32,))[1].dtype == F32


def test_float32_cotangent_from_python_float():
    out, pull = vjp(lambda x: wnp.sum(x * x), X32)
    assert pull(1.0)[0].dtype == F32


def test_float64_default():
    g = grad(lambda x: wnp.sum(x**2))(np.array([1.0, 2.0]))
    assert g.dtype == np.float64
    assert grad(lambda x: x**2)(3.0).dtype == np.float64  # Python float -> float64


def test_mixed_precision_arguments_keep_their_own_dtypes():
    gx, gy = grad(lambda x, y: wnp.sum(x * y), argnums=(0, 1))(X32, np.ones(3))
    assert gx.dtype == F32 and gy.dtype == np.float64


# ---------------------------------------------------------------------------------------------
# Complex numbers
# ---------------------------------------------------------------------------------------------


def test_grad_of_real_function_of_complex_input_is_conjugate_direction():
    z = np.array(1.0 + 2.0j)
    g = grad(lambda z: (z * wnp.conj(z)).real)(z)
    assert g.dtype == np.complex128
    np.testing.assert_allclose(g, 2 * np.conj(z))
    # |z|² through abs, and for arrays
    zs = np.array([3 + 4j, -1 + 0.5j])
    np.testing.assert_allclose(grad(lambda z: wnp.sum(wnp.abs(z) ** 2))(zs), 2 * np.conj(zs))


def test_complex_gradient_components_are_partial_derivatives():
    # grad = ∂f/∂a − i ∂f/∂b for z = a + ib
    f = lambda z: wnp.real(z) ** 2 * 3.0 + wnp.imag(z) * 5.0
    z = np.array(0.5 - 1.5j)
    np.testing.assert_allclose(grad(f)(z), 3.0 - 5.0j)


def test_complex_jvp_and_vjp_of_holomorphic_function():
    z = np.array([0.2 + 0.3j, -1.0 + 0.1j])
    v = np.array([1.0 - 1.0j, 0.5j])
    out, t = jvp(lambda z: z**2, (z,), (v,))
    np.testing.assert_allclose(t, 2 * z * v)
    out, pull = vjp(lambda z: z**2, z)
    np.testing.assert_allclose(pull(v)[0], 2 * z * v)  # transpose, no conjugation


def test_holomorphic_derivatives():
    z = np.array([0.2 + 0.3j, -1.0 + 0.1j])
    np.testing.assert_allclose(holomorphic_grad(lambda z: wnp.sum(wnp.exp(z)))(z), np.exp(z))
    J = jacfwd(lambda z: z**3, holomorphic=True)(z)
    np.testing.assert_allclose(J, np.diag(3 * z**2))
    np.testing.assert_allclose(jacrev(lambda z: z**3, holomorphic=True)(z), J)
    H = hessian(lambda z: wnp.sum(z**3), holomorphic=True)(z)
    np.testing.assert_allclose(H, np.diag(6 * z))


def test_complex64_stays_complex64():
    z = np.array([0.2 + 0.3j, -1.0 + 0.1j], np.complex64)
    g = grad(lambda z: wnp.sum(wnp.abs(z * 2.0) ** 2))(z)
    assert g.dtype == np.complex64
    out, t = jvp(lambda z: z * z, (z,), (z,))
    assert np.result_type(t) == np.complex64


def test_real_input_complex_intermediate_gives_real_gradient():
    g = grad(lambda x: wnp.real(wnp.exp(1j * x)))(0.3)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, -np.sin(0.3))


def test_jacfwd_of_real_input_complex_output():
    J = jacfwd(lambda x: wnp.exp(1j * x))(np.array([0.1, 0.2]))
    np.testing.assert_allclose(J, np.diag(1j * np.exp(1j * np.array([0.1, 0.2]))))


# ---------------------------------------------------------------------------------------------
# Integers and booleans are constants
# ---------------------------------------------------------------------------------------------


def test_integer_arguments_not_differentiated_are_fine():
    f = lambda x, n, flag: x**n if flag else x
    np.testing.assert_allclose(grad(f)(2.0, 3, True), 12.0)
    np.testing.assert_allclose(grad(lambda x, idx: wnp.sum(x[idx]))(np.ones(4), np.array([0, 2])),
                               [1.0, 0, 1.0, 0])  # fmt: skip


@pytest.mark.parametrize(
    "value, kind",
    [(3, "int64"), (np.array([1, 2]), "int64"), (True, "bool"), (np.array([True]), "bool")],
)
def test_differentiating_wrt_integer_or_bool_names_the_argument(value, kind):
    with pytest.raises(
        TypeError, match=rf"argument 1, which has dtype {kind}.*integer and boolean"
    ):
        grad(lambda x, y: x * y, argnums=1)(2.0, value)
    with pytest.raises(TypeError, match=r"argument 1"):
        jvp(lambda x, y: x * y, (2.0, value), (1.0, value))
    with pytest.raises(TypeError, match=r"argument 1"):
        vjp(lambda x, y: x * y, 2.0, value)


def test_integer_leaf_inside_a_pytree_is_named():
    with pytest.raises(TypeError, match=r"argument 0\['n'\], which has dtype int"):
        grad(lambda p: p["x"] * p["n"])({"x": 1.0, "n": 2})


def test_complex_input_to_jacobian_needs_holomorphic():
    z = np.array([1.0 + 1.0j])
    for jac in (jacfwd, jacrev):
        with pytest.raises(TypeError, match="holomorphic=True"):
            jac(lambda z: wnp.abs(z) ** 2)(z)


def test_holomorphic_needs_complex_inputs():
    with pytest.raises(TypeError, match="needs complex inputs"):
        holomorphic_grad(lambda z: z**2)(1.0)


def test_jacrev_refuses_complex_output_of_real_input():
    with pytest.raises(TypeError, match="use jacfwd"):
        jacrev(lambda x: wnp.exp(1j * x))(np.array([0.1, 0.2]))
