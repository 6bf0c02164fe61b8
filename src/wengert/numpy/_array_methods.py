"""The array face of a tracer: operators, methods, and NumPy's dispatch protocols.

With these, ``import numpy as np`` code differentiates unchanged: ``np.sin(x)`` reaches
``__array_ufunc__``, ``np.sum(x)`` reaches ``__array_function__``, and both route to the
primitives of :mod:`wengert.numpy`.
"""

from __future__ import annotations

import numpy as _np

from wengert.core import NO_PARAMS, Primitive, Tracer, VJPTracer, primal_value

from . import _construction as B
from . import _contract as C
from . import _elementwise as E
from . import _indexing as I
from . import _reductions as R
from . import _shape as S
from . import _sorting as O


def _const(f):
    """A query answered from the plain value (no derivative)."""

    def method(self, *args, **kwargs):
        return f(primal_value(self), *[primal_value(a) for a in args], **kwargs)

    return method


def _setitem(self, key, value):
    """``x[idx] = v``: a functional update that the tracer ``x`` is rebound to (see _update)."""
    from . import _update

    _update.setitem(self, key, value)


def _copy(x):
    from . import _update

    return _update.copy(x)


def _reshape_method(self, *shape, **kw):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return S.reshape(self, shape, **kw)


def _transpose_method(self, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = axes[0]
    return S.transpose(self, axes or None)


def _iter(self):
    for k in range(len(self)):
        yield I.getitem(self, k)


def _item(self, *args):
    raise self._no_conversion("a Python scalar (.item())")


_METHODS = {
    "__add__": E.add,
    "__sub__": E.subtract,
    "__mul__": E.multiply,
    "__truediv__": E.true_divide,
    "__pow__": E.power,
    "__matmul__": lambda s, o: C.matmul(s, o),
    "__rmatmul__": lambda s, o: C.matmul(o, s),
    "__floordiv__": lambda s, o: E.floor_divide(s, o),
    "__rfloordiv__": lambda s, o: E.floor_divide(o, s),
    "__neg__": lambda s: E.negative(s),
    "__pos__": lambda s: E.positive(s),
    "__abs__": lambda s: E.absolute(s),
    "__lt__": _const(_np.less),
    "__le__": _const(_np.less_equal),
    "__gt__": _const(_np.greater),
    "__ge__": _const(_np.greater_equal),
    "__eq__": _const(_np.equal),
    "__ne__": _const(_np.not_equal),
    "__getitem__": I.getitem,
    "__setitem__": _setitem,
    "__iter__": _iter,
    "sum": R.sum,
    "mean": R.mean,
    "prod": R.prod,
    "max": R.max,
    "min": R.min,
    "var": R.var,
    "std": R.std,
    "reshape": _reshape_method,
    "transpose": _transpose_method,
    "ravel": S.ravel,
    "flatten": lambda s, order="C": _copy(S.ravel(s, order)),  # a copy, unlike ravel
    "squeeze": S.squeeze,
    "swapaxes": S.swapaxes,
    "dot": C.dot,
    "clip": E.clip,
    "astype": E.astype,
    "conj": lambda s: E.conj(s),
    "conjugate": lambda s: E.conj(s),
    "copy": lambda s, order="K": _copy(s),  # a new tracer: x[idx] = v on it leaves s alone
    "item": _item,
    "tolist": _item,
    "argmax": _const(_np.argmax),
    "argmin": _const(_np.argmin),
    "argsort": _const(_np.argsort),
    "nonzero": _const(_np.nonzero),
    "all": _const(_np.all),
    "any": _const(_np.any),
    # coverage of sorting, shape and cumulative methods (wengert.numpy._sorting/_shape/...)
    "cumsum": R.cumsum,
    "cumprod": R.cumprod,
    "ptp": R.ptp,
    "repeat": S.repeat,
    "take": O.take,
    "trace": S.trace,
    "diagonal": S.diagonal,
    "compress": O.compress_method,
    "round": O.round_method,
    "searchsorted": _const(_np.searchsorted),
    "argpartition": _const(_np.argpartition),
    "sort": O.in_place_method("sort", "x = wengert.numpy.sort(x) (or np.sort(x))"),
    "partition": O.in_place_method("partition", "x = wengert.numpy.partition(x, kth)"),
    "fill": O.in_place_method("fill", "wengert.numpy.full_like(x, value)"),
    "put": O.in_place_method("put", "wengert.numpy.where or wengert.numpy.concatenate"),
    "resize": O.in_place_method("resize", "x = wengert.numpy.reshape(x, shape)"),
    "__array__": B.no_array_conversion,
}

# o ⊕ x for a traced x: the primitive with the operands in their written order
_REFLECTED = {
    "__radd__": E.add,
    "__rsub__": E.subtract,
    "__rmul__": E.multiply,
    "__rtruediv__": E.true_divide,
    "__rpow__": E.power,
}

_PROPERTIES = {
    "T": lambda s: S.transpose(s),
    "mT": lambda s: S.swapaxes(s, -1, -2),
    "real": lambda s: E.real(s),
    "imag": lambda s: E.imag(s),
}


def _ufunc_table() -> dict:
    names = [
        "add", "subtract", "multiply", "true_divide", "divide", "negative", "positive", "power",
        "square", "reciprocal", "exp", "expm1", "log", "log1p", "sqrt", "sin", "cos", "tan",
        "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
        "absolute", "conjugate", "maximum", "minimum", "sign", "floor", "ceil", "rint", "trunc",
        "floor_divide", "isfinite", "isnan", "isinf", "signbit", "equal", "not_equal", "less",
        "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_not",
        "logical_xor",
        # the other differentiable (or zero-derivative) ufuncs, see _elementwise.py
        "arctan2", "hypot", "logaddexp", "logaddexp2", "float_power", "fmod", "remainder", "mod",
        "divmod", "cbrt", "deg2rad", "rad2deg", "radians", "degrees", "exp2", "log2", "log10",
        "fabs", "fmax", "fmin", "heaviside", "copysign", "ldexp", "frexp", "modf", "spacing",
    ]  # fmt: skip
    table = {getattr(_np, n): getattr(E, n) for n in names}
    table[_np.matmul] = C.matmul
    if hasattr(_np, "vecdot"):  # NumPy 2's contraction ufuncs, as composites
        from . import linalg

        table[_np.vecdot] = linalg.vecdot
    if hasattr(_np, "matvec"):
        table[_np.matvec] = lambda a, v: I.getitem(C.matmul(a, S.expand_dims(v, -1)), (..., 0))
        table[_np.vecmat] = lambda v, a: I.getitem(
            C.matmul(S.expand_dims(E.conj(v) if E._is_complex(v) else v, -2), a), (..., 0, slice(None))
        )
    return table


def array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """NumPy's ufunc protocol: route ``np.sin(x)`` and friends to wengert's primitives."""
    from . import UFUNCS

    if method == "reduce" and ufunc in (_np.add, _np.multiply, _np.maximum, _np.minimum):
        red = {_np.add: R.sum, _np.multiply: R.prod, _np.maximum: R.max, _np.minimum: R.min}[ufunc]
        axis = kwargs.pop("axis", 0)
        return red(inputs[0], axis=axis, keepdims=kwargs.pop("keepdims", False), **kwargs)
    f = UFUNCS.get(ufunc)
    if method != "__call__" or f is None:
        raise TypeError(
            f"wengert has no derivative rule for numpy.{ufunc.__name__}"
            + ("" if method == "__call__" else f".{method}")
            + " on traced arrays; see wengert.numpy for the differentiable functions, or wrap "
            "your own with wengert.custom_jvp / custom_vjp."
        )
    if kwargs.get("out") is not None:
        raise TypeError(
            f"numpy.{ufunc.__name__}: 'out=' writes in place and cannot be differentiated"
        )
    kwargs.pop("out", None)
    dtype = kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(
            f"numpy.{ufunc.__name__}: arguments {sorted(kwargs)} are not supported on traced arrays"
        )
    out = f(*inputs)
    return out if dtype is None else E.astype(out, dtype)


def array_function(self, func, types, args, kwargs):
    """NumPy's function protocol: route ``np.sum(x)`` and friends to ``wengert.numpy``."""
    from . import FUNCTIONS

    f = FUNCTIONS.get(func)
    if f is None:
        raise TypeError(
            f"wengert has no derivative rule for {_qualified(func)} on traced arrays; use the "
            "functions of wengert.numpy, or wrap your own with wengert.custom_jvp / custom_vjp."
        )
    return f(*args, **kwargs)


def _qualified(func) -> str:
    """``numpy.linalg.norm`` rather than ``norm``."""
    module = getattr(func, "__module__", None) or "numpy"
    return f"{module}.{func.__name__}" if module.startswith("numpy") else f"numpy.{func.__name__}"


# Operand types a tracer's operators take on directly; Python numbers take the shortest path
# (the hot path of ``x * 0.9``).
_NUMBERS = frozenset({float, int})
_OPERANDS = frozenset({float, int, complex, bool, _np.ndarray} | set(_np.sctypeDict.values()))


def _defers(other) -> bool:
    """Does ``other`` handle this operation itself, as NumPy's own operators let it?  True for
    a type that opts out of ufuncs (``__array_ufunc__ = None``) or brings its own
    ``__array_ufunc__`` (an array wrapper such as ``wengert.dl.dlarray``): the tracer returns
    ``NotImplemented`` and Python asks ``other``'s reflected operator."""
    cls = type(other)
    if not hasattr(cls, "__array_ufunc__") or isinstance(other, (_np.ndarray, _np.generic)):
        return False
    return cls.__array_ufunc__ is None or cls.__array_ufunc__ is not _np.ndarray.__array_ufunc__


def _as_method(prim, reflected=False):
    """A binary operator method.  With a constant operand the tracer's own trace is the top
    one, so it processes the primitive directly (the hot path of ``x * 0.9``)."""
    if reflected:

        def method(self, other, /):
            if type(other) in _NUMBERS and type(self) is VJPTracer:
                return self._trace.process_unwrapped(
                    prim, NO_PARAMS, [other, self.primal], [(1, self.idx)]
                )
            if isinstance(other, Tracer):
                return prim(other, self)
            if type(other) not in _OPERANDS and _defers(other):
                return NotImplemented
            return self._trace.process(prim, (other, self), NO_PARAMS)

    else:

        def method(self, other, /):
            if type(other) in _NUMBERS and type(self) is VJPTracer:
                return self._trace.process_unwrapped(
                    prim, NO_PARAMS, [self.primal, other], [(0, self.idx)]
                )
            if isinstance(other, Tracer):
                if other._trace is not self._trace:
                    return prim(self, other)
                if type(self) is VJPTracer:
                    return self._trace.process_unwrapped(
                        prim, NO_PARAMS, [self.primal, other.primal], [(0, self.idx), (1, other.idx)]
                    )
            elif type(other) not in _OPERANDS and _defers(other):
                return NotImplemented
            return self._trace.process(prim, (self, other), NO_PARAMS)

    method.__name__ = prim.name
    return method


def install() -> None:
    """Attach the array interface to :class:`wengert.core.Tracer`."""
    for name, f in _METHODS.items():
        if isinstance(f, Primitive):  # a primitive is no descriptor: bind it through a function
            f = _as_method(f)
        setattr(Tracer, name, f)
    for name, f in _REFLECTED.items():
        setattr(Tracer, name, _as_method(f, reflected=True))
    for name, f in _PROPERTIES.items():
        setattr(Tracer, name, property(f))
    Tracer.__array_ufunc__ = array_ufunc
    Tracer.__array_function__ = array_function
    Tracer.__hash__ = lambda self: id(self)
