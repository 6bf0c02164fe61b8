"""Element-wise primitives: arithmetic, powers, exponentials, trigonometry, and selections.

Each primitive stands with its NumPy implementation and its derivative rules.  A unary rule
``d(t, ans, x)`` multiplies by the (diagonal) derivative; wengert uses the transpose-without-
conjugation convention for complex numbers, so one such rule serves as both JVP and VJP for
holomorphic functions.  Binary rules reduce broadcast cotangents with :func:`unbroadcast`.
"""

from __future__ import annotations

import numpy as _np

from wengert.core import ANS, Primitive, primal_value

from . import _reductions as R
from . import _shape as S

# ---------------------------------------------------------------------------------------------
# Helpers shared by the rules
# ---------------------------------------------------------------------------------------------


def unbroadcast(g, x):
    """Sum the cotangent ``g`` down to the shape of ``x`` (undo NumPy broadcasting)."""
    try:
        shape = x.shape
    except AttributeError:  # a Python number
        shape = ()
    gshape = g.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(-len(gshape), -len(shape))) if lead > 0 else ()
    axes += tuple(i - len(shape) for i, d in enumerate(shape) if d == 1 and gshape[lead + i] != 1)
    if axes:
        g = R.sum(g, axis=axes, keepdims=False)
    return S.reshape(g, shape) if g.shape != shape else g


def to_out_shape(t, ans):
    """Broadcast a tangent contribution to the full (batch +) output shape."""
    s = ans.shape
    ts = t.shape
    nb = len(ts) - len(s)
    if nb >= 0 and ts[nb:] == s:
        return t
    return S.broadcast_to(t, ts[: max(nb, 0)] + s)


def _mask(cond, like):
    """A constant 0/1 array of ``like``'s real dtype."""
    dt = _np.result_type(primal_value(like))
    if dt.kind not in "fc":
        dt = _np.dtype(float)
    return _np.asarray(cond, dtype=dt.type(0).real.dtype)


def _unary(name, impl, d, fmt=None):
    p = Primitive(name, impl, elementwise=True, fmt=fmt)
    return p.defjvp(d).defvjp(d)


# ---------------------------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------------------------

add = Primitive("add", _np.add, elementwise=True, fmt="{0} + {1}")
add.defjvp(lambda t, ans, x, y: to_out_shape(t, ans), lambda t, ans, x, y: to_out_shape(t, ans))
add.defvjp(lambda g, ans, x, y: unbroadcast(g, x), lambda g, ans, x, y: unbroadcast(g, y))

subtract = Primitive("subtract", _np.subtract, elementwise=True, fmt="{0} − {1}")
subtract.defjvp(
    lambda t, ans, x, y: to_out_shape(t, ans), lambda t, ans, x, y: to_out_shape(-t, ans)
)
subtract.defvjp(lambda g, ans, x, y: unbroadcast(g, x), lambda g, ans, x, y: unbroadcast(-g, y))

multiply = Primitive("multiply", _np.multiply, elementwise=True, fmt="{0} × {1}")
multiply.defjvp(lambda t, ans, x, y: t * y, lambda t, ans, x, y: x * t)
multiply.defvjp(
    lambda g, ans, x, y: unbroadcast(g * y, x), lambda g, ans, x, y: unbroadcast(x * g, y)
)

true_divide = Primitive("divide", _np.true_divide, elementwise=True, fmt="{0} / {1}")
true_divide.defjvp(lambda t, ans, x, y: t / y, lambda t, ans, x, y: -t * ans / y)
true_divide.defvjp(
    lambda g, ans, x, y: unbroadcast(g / y, x),
    lambda g, ans, x, y: unbroadcast(-g * ans / y, y),
)
divide = true_divide

negative = _unary("negative", _np.negative, lambda t, ans, x: -t, fmt="−{0}")
positive = _unary("positive", _np.positive, lambda t, ans, x: t, fmt="+{0}")


def _pow_dx(x, y):
    """∂(x**y)/∂x = y·x**(y−1); the common square is 2·x (one array operation, not two)."""
    if type(y) is int and y == 2:
        return 2 * x
    return y * x ** (y - 1)


def _log_base(x):
    """log x where it is defined; at x == 0 (where d/dy x**y is 0 · log 0) use 1.  A Python
    number stays a Python number, so it cannot promote float32 results."""
    if isinstance(x, (int, float, complex)):
        return (complex if isinstance(x, complex) else float)(_np.log(x or 1))
    return log(where(primal_value(x) == 0, 1, x))


def _pow(x, y):
    return x**y  # the operator, so NumPy's fast paths for y = 2, 0.5, -1 apply


power = Primitive("power", _pow, elementwise=True, fmt="{0}^{1}")
power.defjvp(lambda t, ans, x, y: t * _pow_dx(x, y), lambda t, ans, x, y: t * ans * _log_base(x))
power.defvjp(
    lambda g, ans, x, y: unbroadcast(g * _pow_dx(x, y), x),
    lambda g, ans, x, y: unbroadcast(g * ans * _log_base(x), y),
)

square = _unary("square", _np.square, lambda t, ans, x: t * (2 * x), fmt="{0}²")
reciprocal = _unary("reciprocal", _np.reciprocal, lambda t, ans, x: -t * ans * ans, fmt="1/{0}")

# ---------------------------------------------------------------------------------------------
# Exponentials, logarithms, roots
# ---------------------------------------------------------------------------------------------

exp = _unary("exp", _np.exp, lambda t, ans, x: t * ans, fmt="exp {0}")
expm1 = _unary("expm1", _np.expm1, lambda t, ans, x: t * (ans + 1), fmt="expm1 {0}")
log = _unary("log", _np.log, lambda t, ans, x: t / x, fmt="ln {0}")
log1p = _unary("log1p", _np.log1p, lambda t, ans, x: t / (x + 1), fmt="log1p {0}")
sqrt = _unary("sqrt", _np.sqrt, lambda t, ans, x: t / (2 * ans), fmt="√{0}")

# ---------------------------------------------------------------------------------------------
# Trigonometric and hyperbolic functions
# ---------------------------------------------------------------------------------------------

sin = _unary("sin", _np.sin, lambda t, ans, x: t * cos(x), fmt="sin {0}")
cos = _unary("cos", _np.cos, lambda t, ans, x: -t * sin(x), fmt="cos {0}")
tan = _unary("tan", _np.tan, lambda t, ans, x: t * (1 + ans * ans), fmt="tan {0}")
arcsin = _unary("arcsin", _np.arcsin, lambda t, ans, x: t / sqrt(1 - x * x), fmt="arcsin {0}")
arccos = _unary("arccos", _np.arccos, lambda t, ans, x: -t / sqrt(1 - x * x), fmt="arccos {0}")
arctan = _unary("arctan", _np.arctan, lambda t, ans, x: t / (1 + x * x), fmt="arctan {0}")
sinh = _unary("sinh", _np.sinh, lambda t, ans, x: t * cosh(x), fmt="sinh {0}")
cosh = _unary("cosh", _np.cosh, lambda t, ans, x: t * sinh(x), fmt="cosh {0}")


def _tanh_d(t, ans, x):
    """t·(1 − tanh²).  The in-place steps touch only the fresh temporary ``d`` (for tracers they
    rebind it), so a large cotangent costs one new array, not two."""
    d = ans * ans
    d *= -1
    d += 1
    if type(d) is type(t) is _np.ndarray and d.shape == t.shape and d.dtype == t.dtype:
        d *= t
        return d
    return d * t


tanh = _unary("tanh", _np.tanh, _tanh_d, fmt="tanh {0}")
arcsinh = _unary("arcsinh", _np.arcsinh, lambda t, ans, x: t / sqrt(x * x + 1), fmt="arcsinh {0}")
arccosh = _unary("arccosh", _np.arccosh, lambda t, ans, x: t / sqrt(x * x - 1), fmt="arccosh {0}")
arctanh = _unary("arctanh", _np.arctanh, lambda t, ans, x: t / (1 - x * x), fmt="arctanh {0}")

# ---------------------------------------------------------------------------------------------
# Complex parts and absolute value (not holomorphic: JVP and VJP differ)
# ---------------------------------------------------------------------------------------------


def _is_complex(x) -> bool:
    return _np.iscomplexobj(primal_value(x))


def _abs_jvp(t, ans, x):
    if _is_complex(x):
        return real(conj(x) * t) / _nonzero(ans)
    return t * _np.sign(primal_value(x))


def _abs_vjp(g, ans, x):
    if _is_complex(x):
        return _real_part(g) * conj(x) / _nonzero(ans)
    return g * _np.sign(primal_value(x))


def _real_part(g):
    """The cotangent of a real value is real: drop the imaginary part a complex one carries."""
    return real(g) if _is_complex(g) else g


def _nonzero(a):
    """``a`` with zeros replaced by ones (the subgradient at 0 is then 0 · x / 1 = 0)."""
    return where(primal_value(a) == 0, 1, a)


absolute = Primitive("absolute", _np.absolute, elementwise=True, fmt="|{0}|")
absolute.defjvp(_abs_jvp).defvjp(_abs_vjp)

real = Primitive("real", _np.real, elementwise=True, fmt="Re {0}")
real.defjvp(lambda t, ans, x: real(t))
real.defvjp(
    lambda g, ans, x: (
        _real_part(g) * _np.ones((), _np.result_type(primal_value(x))) if _is_complex(x) else g
    )
)

imag = Primitive("imag", _np.imag, elementwise=True, fmt="Im {0}")
imag.defjvp(lambda t, ans, x: imag(t))
imag.defvjp(
    lambda g, ans, x: (
        _real_part(g) * _np.asarray(-1j, _np.result_type(primal_value(x)))
        if _is_complex(x)
        else None
    )
)

conjugate = Primitive("conjugate", _np.conjugate, elementwise=True, fmt="conj {0}")
conjugate.defjvp(lambda t, ans, x: conj(t)).defvjp(lambda g, ans, x: conj(g))
conj = conjugate

# ---------------------------------------------------------------------------------------------
# Selection: maximum, minimum, clip, where.  Ties split the derivative equally (½ each).
# ---------------------------------------------------------------------------------------------


def _chooser_weight(x, ans, y):
    """1 where ``x`` was chosen, ½ where ``x`` and ``y`` tie, 0 elsewhere."""
    xv, yv, av = primal_value(x), primal_value(y), primal_value(ans)
    return _mask((xv == av) * _np.where(xv == yv, 0.5, 1.0), ans)


maximum = Primitive("maximum", _np.maximum, elementwise=True, fmt="max({0}, {1})")
maximum.defjvp(
    lambda t, ans, x, y: to_out_shape(t * _chooser_weight(x, ans, y), ans),
    lambda t, ans, x, y: to_out_shape(t * _chooser_weight(y, ans, x), ans),
)
maximum.defvjp(
    lambda g, ans, x, y: unbroadcast(g * _chooser_weight(x, ans, y), x),
    lambda g, ans, x, y: unbroadcast(g * _chooser_weight(y, ans, x), y),
)

minimum = Primitive("minimum", _np.minimum, elementwise=True, fmt="min({0}, {1})")
minimum.defjvp(*maximum.jvps).defvjp(*maximum.vjps)


def _clip_impl(x, lo, hi):
    return _np.clip(x, lo, hi)


def _clip_weight(k, ans, x, lo, hi):
    """∂clip/∂(x, lo, hi)[k] as a constant: clip(x, lo, hi) = min(max(x, lo), hi), each tie
    sharing ½ as in maximum and minimum."""
    xv = primal_value(x)
    w = [1.0, 0.0, 0.0]
    m = xv
    if lo is not None:
        lv = primal_value(lo)
        w[0], w[1] = (xv > lv) + 0.5 * (xv == lv), (lv > xv) + 0.5 * (xv == lv)
        m = _np.maximum(xv, lv)
    if hi is not None:
        hv = primal_value(hi)
        below = (m < hv) + 0.5 * (m == hv)
        w = [w[0] * below, w[1] * below, (hv < m) + 0.5 * (m == hv)]
    return _mask(w[k], ans)


def _clip_jvp(k):
    return lambda t, ans, x, lo, hi: to_out_shape(t * _clip_weight(k, ans, x, lo, hi), ans)


def _clip_vjp(k):
    return lambda g, ans, *args: unbroadcast(g * _clip_weight(k, ans, *args), args[k])


clip_p = Primitive("clip", _clip_impl, elementwise=True, fmt="clip({0}, {1}, {2})")
clip_p.defjvp(_clip_jvp(0), _clip_jvp(1), _clip_jvp(2))
clip_p.defvjp(_clip_vjp(0), _clip_vjp(1), _clip_vjp(2))


def clip(a, a_min=None, a_max=None, **kw):
    """Limit ``a`` to [a_min, a_max]: d/da is 1 inside the interval and 0 outside, where the
    active bound takes the derivative; at an end point a and the bound share it (½ each).
    NumPy's ``min=``/``max=`` spellings are accepted too."""
    if kw.pop("out", None) is not None:
        raise TypeError("clip: 'out=' writes in place and cannot be differentiated")
    a_min = kw.pop("min", a_min)
    a_max = kw.pop("max", a_max)
    if kw:
        raise TypeError(f"clip() got unexpected keyword arguments {sorted(kw)}")
    if a_min is None and a_max is None:
        raise ValueError("clip: give at least one of a_min and a_max")
    return clip_p(a, a_min, a_max)


def _where_impl(c, x, y):
    return _np.where(c, x, y)


where_p = Primitive("where", _where_impl, elementwise=True, fmt="where({0}, {1}, {2})")
where_p.defjvp(
    None,
    lambda t, ans, c, x, y: to_out_shape(where_p(c, t, 0), ans),
    lambda t, ans, c, x, y: to_out_shape(where_p(c, 0, t), ans),
)
where_p.defvjp(
    None,
    lambda g, ans, c, x, y: unbroadcast(where_p(c, g, 0), x),
    lambda g, ans, c, x, y: unbroadcast(where_p(c, 0, g), y),
)


def where(condition, x=None, y=None):
    """``x`` where ``condition`` holds, else ``y``.  The branch not taken gets an exact zero
    cotangent.  A rule inside that branch may still make 0·∞ = NaN (``sqrt`` at 0, say): keep
    its input in the domain with a second ``where``, e.g. ``sqrt(where(x > 0, x, 1))``."""
    if x is None and y is None:
        return _np.where(primal_value(condition))
    if x is None or y is None:
        raise ValueError("where: give both x and y, or neither")
    return where_p(primal_value(condition), x, y)


# ---------------------------------------------------------------------------------------------
# Dtype conversion
# ---------------------------------------------------------------------------------------------


def _astype_impl(x, dtype):
    return _np.asarray(x).astype(dtype)


def _astype_vjp(g, ans, x, dtype):
    xdt = _np.result_type(primal_value(x))
    if xdt.kind != "c" and _np.iscomplexobj(primal_value(g)):
        g = real(g)
    return astype_p(g, dtype=xdt)


astype_p = Primitive("astype", _astype_impl, elementwise=True, fmt="{0} as dtype")
astype_p.defjvp(lambda t, ans, x, dtype: astype_p(t, dtype=dtype))
astype_p.defvjp(_astype_vjp)


def astype(x, dtype):
    """Convert ``x`` to ``dtype``.  Converting to an integer or boolean type cuts the derivative."""
    dtype = _np.dtype(dtype)
    if dtype.kind not in "fc":
        return _np.asarray(primal_value(x)).astype(dtype)
    return astype_p(x, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Functions with zero derivative: they act on the plain value and return a constant.
# ---------------------------------------------------------------------------------------------


def _constant_op(npfunc):
    def op(*args, **kwargs):
        return npfunc(*[primal_value(a) for a in args], **kwargs)

    op.__name__ = npfunc.__name__
    op.__doc__ = f"``numpy.{npfunc.__name__}`` on the plain value: its derivative is zero."
    return op


sign = _constant_op(_np.sign)
floor = _constant_op(_np.floor)
ceil = _constant_op(_np.ceil)
rint = _constant_op(_np.rint)
trunc = _constant_op(_np.trunc)
floor_divide = _constant_op(_np.floor_divide)
isfinite = _constant_op(_np.isfinite)
isnan = _constant_op(_np.isnan)
isinf = _constant_op(_np.isinf)
signbit = _constant_op(_np.signbit)
equal = _constant_op(_np.equal)
not_equal = _constant_op(_np.not_equal)
less = _constant_op(_np.less)
less_equal = _constant_op(_np.less_equal)
greater = _constant_op(_np.greater)
greater_equal = _constant_op(_np.greater_equal)
logical_and = _constant_op(_np.logical_and)
logical_or = _constant_op(_np.logical_or)
logical_not = _constant_op(_np.logical_not)
logical_xor = _constant_op(_np.logical_xor)


def zeros_like(a, dtype=None, **kw):
    """Zeros shaped like ``a`` (a constant: no derivative flows through it)."""
    return _np.zeros_like(primal_value(a), dtype=dtype, **kw)


def ones_like(a, dtype=None, **kw):
    """Ones shaped like ``a`` (a constant)."""
    return _np.ones_like(primal_value(a), dtype=dtype, **kw)


def full_like(a, fill_value, dtype=None, **kw):
    """``fill_value`` shaped like ``a`` (a constant)."""
    return _np.full_like(primal_value(a), fill_value, dtype=dtype, **kw)


# ---------------------------------------------------------------------------------------------
# What each VJP reads.  The tape keeps just these values; of the other arguments (and of the
# output) it keeps only shape and dtype, so big intermediates are freed as early as possible.
# ---------------------------------------------------------------------------------------------

for _p in (add, subtract, negative, positive, real, imag, conjugate, astype_p):
    _p.saving(())
for _p in (square, log, log1p, sin, cos, arcsin, arccos, arctan, sinh, cosh, arcsinh, arccosh, arctanh):
    _p.saving((0,))
for _p in (reciprocal, exp, expm1, sqrt, tan, tanh):
    _p.saving((ANS,))
multiply.saving((1,), (0,))
true_divide.saving((1,), (1, ANS))
power.saving((0, 1), (0, ANS))
where_p.saving((), (0,), (0,))
