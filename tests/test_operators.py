"""Tracer operators with operands of other array types."""

import numpy as np

import wengert.numpy as wnp
from wengert import grad


def test_operators_defer_to_array_wrappers():
    """A type with its own ``__array_ufunc__`` (or ``__array_ufunc__ = None``) handles
    ``tracer op other`` through its reflected operator, as with NumPy arrays."""

    class OptOut:
        __array_ufunc__ = None

        def __rmul__(self, other):
            return "rmul"

    class Wrapper:
        def __init__(self, v):
            self.v = v

        def __array_ufunc__(self, ufunc, method, *inputs, **kw):
            return NotImplemented

        def __radd__(self, other):
            return other + self.v

    seen = []

    def f(x):
        seen.append(x * OptOut())
        return wnp.sum(x + Wrapper(2.0))

    g = grad(f)(np.arange(3.0))
    assert seen == ["rmul"]
    np.testing.assert_allclose(g, np.ones(3))
