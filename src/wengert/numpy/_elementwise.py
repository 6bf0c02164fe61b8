"""Element-wise primitives: arithmetic, powers, exponentials, trigonometry, and selections.

Each primitive stands with its NumPy implementation and its derivative rules.  A unary rule
``d(t, ans, x)`` multiplies by the (diagonal) derivative; wengert uses the transpose-without-
conjugation convention for complex numbers, so one such rule serves as both JVP and VJP for
holomorphic functions.  VJP rules return the cotangent at the broadcast output shape: the
backward sweep sums it down to each argument's shape (after its NaN fix-up, see core.py).
"""

from __future__ import annotations

import numpy as _np

from wengert.core import ANS, Primitive, Tracer, UnaryPrimitive, identity_rule, primal_value

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
    p = UnaryPrimitive(name, impl, elementwise=True, fmt=fmt)
    return p.defjvp(d).defvjp(d)


# ---------------------------------------------------------------------------------------------
# NaN safety (docs/nan_safety.md).  A derivative that is infinite or undefined at a point
# (log at 0, 1/y at y = 0, arcsin at ±1, sqrt of a negative number...) meets a *strong zero*:
# where the incoming tangent or cotangent is exactly 0 -- as in the branch a ``where`` did not
# take -- the rule gives 0, not 0·∞ = NaN.  Elsewhere an infinite or NaN derivative is kept, but
# as a constant that a ``where`` selects: the traced arithmetic that higher orders differentiate
# is redone at a safe point, so no ∞ or NaN enters it.  The common case pays one cheap test
# (``count_nonzero``) and keeps its plain formula.
# ---------------------------------------------------------------------------------------------


try:  # the C function itself: numpy.count_nonzero adds a Python frame to these hot tests
    from numpy._core.multiarray import count_nonzero as _count_nonzero
except ImportError:  # pragma: no cover - another NumPy layout
    _count_nonzero = _np.count_nonzero
_ndarray = _np.ndarray
_isfinite = _np.isfinite


def _has_zero(d) -> bool:
    """Does ``d`` hold a zero?  (One pass, no temporary, for an array.)"""
    if type(d) is not _ndarray:
        d = primal_value(d)
        if type(d) is not _ndarray:
            return bool(d == 0)
    return _count_nonzero(d) != d.size


def _all_finite(v) -> bool:
    if type(v) is _ndarray:
        return _count_nonzero(_isfinite(v)) == v.size
    return bool(_isfinite(v))


def _overlay(r, t, redo):
    """``r``, a rule's result for the (co)tangent ``t``, where every entry that is not finite
    becomes 0 if ``t`` is 0 there (a strong zero) and otherwise stays what it is -- as a constant
    picked by ``where``; ``redo(bad)`` recomputes the traced part at safe points."""
    rv = primal_value(r)
    if _all_finite(rv):
        return r
    bad = ~_np.isfinite(rv)
    const = _np.where(primal_value(t) == 0, 0, rv).astype(rv.dtype, copy=False)
    if not isinstance(r, Tracer):
        return _np.where(bad, const, rv)
    return where_p(bad, const, redo(bad))


def _sdiv(t, d):
    """``t / d`` with a strong zero where ``d == 0`` (0 where ``t == 0``, not 0/0 = NaN)."""
    if type(d) is _ndarray:
        if _count_nonzero(d) == d.size:
            return t / d
    elif not _has_zero(d):
        return t / d
    zero = primal_value(d) == 0
    with _np.errstate(divide="ignore", invalid="ignore"):
        const = _np.where(primal_value(t) == 0, 0, primal_value(t) / primal_value(d))
    if not isinstance(t, Tracer) and not isinstance(d, Tracer):
        return _np.where(zero, const, t / _np.where(zero, 1, d))
    return where_p(zero, const, t / where_p(zero, 1, d))


def _zdiv(n, d):
    """``n / d``, and 0 wherever ``d == 0``: the subgradient 0 at a kink (sqrt, hypot, |z| at 0).
    Its derivatives there are 0 too (the value is a selected constant)."""
    if not _has_zero(d):
        return n / d
    m = primal_value(d) == 0
    return where_p(m, 0, n / where_p(m, 1, d))


def _strong(rule, x0, ans0=None):
    """Guard the unary rule ``d(t, ans, x)`` (see ``_overlay``); ``x0`` (and ``ans0``) is a point
    where the rule is finite."""

    def guarded(t, ans, x):
        def redo(bad):
            return rule(t, ans if ans0 is None else where_p(bad, ans0, ans), where_p(bad, x0, x))

        return _overlay(rule(t, ans, x), t, redo)

    guarded.__name__ = getattr(rule, "__name__", "rule")
    return guarded


def _select(t, w):
    """``t·w`` for a constant weight ``w`` (0, ½ or 1): 0 where ``w == 0`` even if ``t`` is
    infinite or NaN there (a selection, not a product)."""
    return where_p(w == 0, 0, t * w)


# ---------------------------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------------------------

add = Primitive("add", _np.add, elementwise=True, fmt="{0} + {1}")
add.defjvp(lambda t, ans, x, y: to_out_shape(t, ans), lambda t, ans, x, y: to_out_shape(t, ans))
add.defvjp(identity_rule, identity_rule)

subtract = Primitive("subtract", _np.subtract, elementwise=True, fmt="{0} − {1}")
subtract.defjvp(
    lambda t, ans, x, y: to_out_shape(t, ans), lambda t, ans, x, y: to_out_shape(-t, ans)
)
subtract.defvjp(identity_rule, lambda g, ans, x, y: -g)

multiply = Primitive("multiply", _np.multiply, elementwise=True, fmt="{0} × {1}")
# (co)tangent first: a NumPy scalar times a Python complex stays a NumPy value
multiply.defjvp(lambda t, ans, x, y: t * y, lambda t, ans, x, y: t * x)
multiply.defvjp(
    lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x
)


def _div_dy(t, ans, y):
    """-t·ans/y = -t·x/y², with a strong zero where y == 0 (there ans is ±∞ or NaN)."""
    if type(y) is _ndarray:
        if _count_nonzero(y) == y.size:
            return -t * ans / y
    elif not _has_zero(y):
        return -t * ans / y
    zero = primal_value(y) == 0
    tv = primal_value(t)
    with _np.errstate(divide="ignore", invalid="ignore"):
        const = _np.where(tv == 0, 0, -tv * primal_value(ans) / primal_value(y))
    return where_p(zero, const, -t * where_p(zero, 0, ans) / where_p(zero, 1, y))


true_divide = Primitive("divide", _np.true_divide, elementwise=True, fmt="{0} / {1}")
true_divide.defjvp(lambda t, ans, x, y: _sdiv(t, y), lambda t, ans, x, y: _div_dy(t, ans, y))
true_divide.defvjp(
    lambda g, ans, x, y: (
        g / y if type(y) is _ndarray and _count_nonzero(y) == y.size else _sdiv(g, y)
    ),
    lambda g, ans, x, y: _div_dy(g, ans, y),
)
divide = true_divide

negative = _unary("negative", _np.negative, lambda t, ans, x: -t, fmt="−{0}")
positive = _unary("positive", _np.positive, lambda t, ans, x: t, fmt="+{0}")


def _pow_dx(x, y):
    """∂(x**y)/∂x = y·x**(y−1); the common square is 2·x (one array operation, not two)."""
    if type(y) in (int, float) and y == 2:
        return 2 * x
    return y * x ** (y - 1)


def _pow_x(t, ans, x, y):
    """t·y·x**(y−1).  A Python exponent y >= 1 that is a whole number is never singular; else a
    strong zero guards x = 0 with y < 1 (∞) and x < 0 with a fractional y (NaN)."""
    if isinstance(y, (int, float)):  # a Python (or NumPy float64) exponent
        if y == 2:
            return t * (2 * x)
        if y >= 1 and (type(y) is int or float(y).is_integer()):
            return t * (y * x ** (y - 1))
        if y == 0:
            return None  # x**0 = 1
    if type(t) is _ndarray and type(x) is _ndarray:  # first order on plain arrays
        r = t * _pow_dx(x, y)
        if type(r) is _ndarray and _count_nonzero(_isfinite(r)) == r.size:
            return r
    if _has_zero(x):  # y·x**(y−1) may be finite at 0 while its own derivative is not (y = 1.5)
        m = (primal_value(t) == 0) & (primal_value(x) == 0)
        if _np.any(m):
            x = where_p(m, 1, x)  # a strong zero to every order
    return _overlay(t * _pow_dx(x, y), t, lambda bad: t * _pow_dx(where_p(bad, 1, x), y))




def _pow_y(t, ans, x, y):
    """t·x**y·log x.  At x == 0 the factor is 0; for a real x < 0 (where x**y is real only at
    whole-number y) it is x**y·log|x|, the y-derivative of Re(x**y) there -- finite, so it
    cannot poison the x-derivative in a joint forward pass."""
    xv = primal_value(x)
    if isinstance(xv, (int, float, complex)):  # a Python base keeps float32 results float32
        if xv == 0:
            return None
        lg = _np.log(complex(xv)) if isinstance(xv, complex) else _np.log(abs(float(xv)))
        return t * ans * (complex(lg) if isinstance(xv, complex) else float(lg))
    is_real = _np.result_type(primal_value(ans)).kind != "c"
    if is_real and _np.count_nonzero(xv > 0) == _np.size(xv):
        return t * ans * log(x)  # the common case: a positive base
    if not is_real and _np.result_type(xv).kind != "c":  # a real base with a complex exponent
        x = astype(x, _np.result_type(primal_value(ans)))
        xv = primal_value(x)
    zero = xv == 0

    def factor(mask):  # x**y·log|x| with the masked positions (x = 0 at least) set to 0
        if mask is None:
            return t * ans * log(absolute(x) if is_real else x)
        x1 = where_p(mask, 1, x)
        return t * where_p(mask, 0, ans) * log(absolute(x1) if is_real else x1)

    return _overlay(factor(zero if _np.any(zero) else None), t, lambda bad: factor(bad | zero))


def _pow(x, y):
    return x**y  # the operator, so NumPy's fast paths for y = 2, 0.5, -1 apply


power = Primitive("power", _pow, elementwise=True, fmt="{0}^{1}")
power.defjvp(_pow_x, _pow_y).defvjp(_pow_x, _pow_y)


square = _unary("square", _np.square, lambda t, ans, x: t * (2 * x), fmt="{0}²")
reciprocal = _unary(
    "reciprocal", _np.reciprocal, _strong(lambda t, ans, x: -t * ans * ans, 1, 1), fmt="1/{0}"
)

# ---------------------------------------------------------------------------------------------
# Exponentials, logarithms, roots
# ---------------------------------------------------------------------------------------------

exp = _unary("exp", _np.exp, lambda t, ans, x: t * ans, fmt="exp {0}")
expm1 = _unary("expm1", _np.expm1, lambda t, ans, x: t * (ans + 1), fmt="expm1 {0}")
log = _unary(
    "log",
    _np.log,
    lambda t, ans, x: (
        t / x if type(x) is _ndarray and _count_nonzero(x) == x.size else _sdiv(t, x)
    ),
    fmt="ln {0}",
)
log1p = _unary("log1p", _np.log1p, lambda t, ans, x: _sdiv(t, x + 1), fmt="log1p {0}")
_LN2 = float(_np.log(2.0))
_LN10 = float(_np.log(10.0))
log2 = _unary("log2", _np.log2, lambda t, ans, x: _sdiv(t, x * _LN2), fmt="log₂ {0}")
log10 = _unary("log10", _np.log10, lambda t, ans, x: _sdiv(t, x * _LN10), fmt="log₁₀ {0}")
exp2 = _unary("exp2", _np.exp2, lambda t, ans, x: t * ans * _LN2, fmt="2^{0}")


def _sqrt_d(t, ans, x):
    """t / (2√x), with the subgradient 0 at x = 0 (not ∞) to every order, and a strong zero
    where √x is NaN (a negative real x)."""
    if type(ans) is _ndarray and type(t) is _ndarray and _count_nonzero(ans) == ans.size:
        r = t / (2 * ans)  # the common case: no zero, and no NaN (√ of a negative number)
        if _count_nonzero(_isfinite(r)) == r.size:
            return r
    if _has_zero(ans):  # tested first: no 1/0 is computed, so NumPy has nothing to warn about
        zero = primal_value(ans) == 0
        return where_p(zero, 0, _sqrt_d(t, where_p(zero, 1, ans), x))
    return _overlay(t / (2 * ans), t, lambda bad: t / (2 * where_p(bad, 1, ans)))


sqrt = _unary("sqrt", _np.sqrt, _sqrt_d, fmt="√{0}")
cbrt = _unary(
    "cbrt", _np.cbrt, _strong(lambda t, ans, x: t / (3 * (ans * ans)), 1.0, 1.0), fmt="∛{0}"
)

# ---------------------------------------------------------------------------------------------
# Trigonometric and hyperbolic functions
# ---------------------------------------------------------------------------------------------

sin = _unary("sin", _np.sin, lambda t, ans, x: t * cos(x), fmt="sin {0}")
cos = _unary("cos", _np.cos, lambda t, ans, x: -t * sin(x), fmt="cos {0}")
tan = _unary("tan", _np.tan, lambda t, ans, x: t * (1 + ans * ans), fmt="tan {0}")
arcsin = _unary(
    "arcsin", _np.arcsin, _strong(lambda t, ans, x: t / sqrt(1 - x * x), 0), fmt="arcsin {0}"
)
arccos = _unary(
    "arccos", _np.arccos, _strong(lambda t, ans, x: -t / sqrt(1 - x * x), 0), fmt="arccos {0}"
)
arctan = _unary("arctan", _np.arctan, lambda t, ans, x: t / (1 + x * x), fmt="arctan {0}")
sinh = _unary("sinh", _np.sinh, lambda t, ans, x: t * cosh(x), fmt="sinh {0}")
cosh = _unary("cosh", _np.cosh, lambda t, ans, x: t * sinh(x), fmt="cosh {0}")


def _tanh_d(t, ans, x):
    """t·(1 − tanh²) as t − t·tanh²: array-with-array operations only (a Python scalar in a
    NumPy operation costs more than the operation on a small array), and for plain arrays in
    place on the one fresh temporary."""
    d = ans * ans
    if type(d) is type(t) is _ndarray and d.shape == t.shape and d.dtype == t.dtype:
        d *= t
        return _np.subtract(t, d, out=d)
    return t - t * d


tanh = _unary("tanh", _np.tanh, _tanh_d, fmt="tanh {0}")
arcsinh = _unary("arcsinh", _np.arcsinh, lambda t, ans, x: t / sqrt(x * x + 1), fmt="arcsinh {0}")
arccosh = _unary(
    "arccosh", _np.arccosh, _strong(lambda t, ans, x: t / sqrt(x * x - 1), 2), fmt="arccosh {0}"
)
arctanh = _unary(
    "arctanh", _np.arctanh, _strong(lambda t, ans, x: t / (1 - x * x), 0), fmt="arctanh {0}"
)


def _sinc_d0(x):
    """sinc′ near 0 by its Taylor polynomial Σₙ (−1)ⁿ π²ⁿ 2n x²ⁿ⁻¹ / (2n+1)!, n = 1..5: accurate
    to rounding for |x| < 0.05, and exact at 0 up to the 10th derivative of sinc."""
    c = [(-1) ** n * _np.pi ** (2 * n) * 2 * n / float(_np.prod(_np.arange(1, 2 * n + 2)))
         for n in range(1, 6)]  # fmt: skip
    x2 = x * x
    return x * (c[0] + x2 * (c[1] + x2 * (c[2] + x2 * (c[3] + x2 * c[4]))))


def _sinc_d(t, ans, x):
    """sinc′(x) = (cos πx − sinc x) / x; near 0, where that quotient cancels (0/0 at 0), the
    Taylor polynomial, so that higher derivatives at 0 are right too (sinc″(0) = −π²/3)."""
    near = _np.abs(primal_value(x)) < 0.05
    if not _np.any(near):
        return t * ((cos(_np.pi * x) - ans) / x)
    xs = where_p(near, 1, x)
    away = (cos(_np.pi * xs) - where_p(near, 1, ans)) / xs  # finite where not selected
    return t * where_p(near, _sinc_d0(x), away)


sinc_p = _unary("sinc", _np.sinc, _sinc_d, fmt="sinc {0}")


def sinc(x):
    """The normalised sinc, sin(πx)/(πx) (1 at 0); sinc′(x) = (cos πx − sinc x)/x, 0 at 0."""
    return sinc_p(x)


# ---------------------------------------------------------------------------------------------
# More binary ufuncs: arctan2, hypot, logaddexp, fmod/remainder, heaviside, copysign, ldexp
# ---------------------------------------------------------------------------------------------


def _binary(name, impl, jx, jy, fmt=None):
    """A broadcasting binary primitive from the two partial-derivative rules ``j(t, ans, x, y)``
    (its output-shaped contribution); the VJPs are the same rules reduced to each input."""
    p = Primitive(name, impl, elementwise=True, fmt=fmt)
    p.defjvp(
        None if jx is None else lambda t, ans, x, y: to_out_shape(jx(t, ans, x, y), ans),
        None if jy is None else lambda t, ans, x, y: to_out_shape(jy(t, ans, x, y), ans),
    )
    p.defvjp(
        None if jx is None else lambda g, ans, x, y: jx(_real_part(g), ans, x, y),
        None if jy is None else lambda g, ans, x, y: jy(_real_part(g), ans, x, y),
    )
    return p


# arctan2(y, x) = the angle of (x, y): ∂/∂y = x/(x²+y²), ∂/∂x = −y/(x²+y²); 0 at the origin.
arctan2 = _binary(
    "arctan2",
    _np.arctan2,
    lambda t, ans, y, x: _zdiv(t * x, x * x + y * y),
    lambda t, ans, y, x: _zdiv(-t * y, x * x + y * y),
    fmt="arctan2({0}, {1})",
)

# hypot(x, y) = √(x² + y²): ∂/∂x = x / hypot, with the subgradient 0 at the origin.
hypot = _binary(
    "hypot",
    _np.hypot,
    lambda t, ans, x, y: _zdiv(t * x, ans),
    lambda t, ans, x, y: _zdiv(t * y, ans),
    fmt="hypot({0}, {1})",
)


def _softmax_weight(x, y, ans, base):
    """∂ logaddexp(x, y)/∂x = base^(x − ans) (the softmax weight of x); where x and the result
    are both infinite that is ∞ − ∞, and the limit is used: 1 if x > y, 0 if x < y, ½ if equal."""
    w = exp(x - ans) if base == "e" else exp2(x - ans)
    wv = primal_value(w)
    if _all_finite(wv):
        return w
    bad = ~_np.isfinite(wv)
    xv, yv = primal_value(x), primal_value(y)
    lim = _mask(_np.where(xv > yv, 1.0, _np.where(xv < yv, 0.0, 0.5)), ans)
    d = where_p(bad, 0, x - ans)
    return where_p(bad, lim, exp(d) if base == "e" else exp2(d))


logaddexp = _binary(
    "logaddexp",
    _np.logaddexp,
    lambda t, ans, x, y: t * _softmax_weight(x, y, ans, "e"),
    lambda t, ans, x, y: t * _softmax_weight(y, x, ans, "e"),
    fmt="logaddexp({0}, {1})",
)
logaddexp2 = _binary(
    "logaddexp2",
    _np.logaddexp2,
    lambda t, ans, x, y: t * _softmax_weight(x, y, ans, "2"),
    lambda t, ans, x, y: t * _softmax_weight(y, x, ans, "2"),
    fmt="logaddexp2({0}, {1})",
)


def _quotient(ans, x, y):
    """The whole number q with fmod/remainder(x, y) = x − q·y (0 where y == 0: NaN result)."""
    xv, yv, av = primal_value(x), primal_value(y), primal_value(ans)
    with _np.errstate(invalid="ignore", divide="ignore"):
        q = _np.rint((xv - av) / yv)
    return _mask(_np.nan_to_num(q, nan=0.0, posinf=0.0, neginf=0.0), ans)


# fmod (C's, the sign of x) and remainder (Python's %, the sign of y): x − q·y for a locally
# constant whole number q, so ∂/∂x = 1 and ∂/∂y = −q.
fmod = _binary(
    "fmod",
    _np.fmod,
    lambda t, ans, x, y: t,
    lambda t, ans, x, y: -t * _quotient(ans, x, y),
    fmt="fmod({0}, {1})",
)
remainder = _binary(
    "remainder",
    _np.remainder,
    lambda t, ans, x, y: t,
    lambda t, ans, x, y: -t * _quotient(ans, x, y),
    fmt="{0} mod {1}",
)
mod = remainder

# heaviside(x, h0): 0 for x < 0, h0 at 0, 1 for x > 0.  Piecewise constant in x (derivative 0);
# ∂/∂h0 is 1 where x == 0.
heaviside = _binary(
    "heaviside",
    _np.heaviside,
    None,
    lambda t, ans, x, h: where_p(primal_value(x) == 0, t, 0),
    fmt="H({0}; {1})",
)


def _copysign_factor(x, y, ans):
    xv, yv = primal_value(x), primal_value(y)
    return _mask(_np.sign(xv) * _np.where(_np.signbit(yv), -1.0, 1.0), ans)


# copysign(x, y) = |x| with the sign of y: ∂/∂x = sign(x)·(±1), 0 at x = 0 (|x|'s subgradient);
# piecewise constant in y.
copysign = _binary(
    "copysign",
    _np.copysign,
    lambda t, ans, x, y: t * _copysign_factor(x, y, ans),
    None,
    fmt="copysign({0}, {1})",
)

fmax = Primitive("fmax", _np.fmax, elementwise=True, fmt="fmax({0}, {1})")
fmin = Primitive("fmin", _np.fmin, elementwise=True, fmt="fmin({0}, {1})")


def _ldexp_rule(t, ans, x, i):
    return ldexp_p(t, i)


ldexp_p = Primitive("ldexp", _np.ldexp, elementwise=True, fmt="{0}·2^{1}")
ldexp_p.defjvp(_ldexp_rule).defvjp(
    lambda g, ans, x, i: ldexp_p(_real_part(g), i)
)


def ldexp(x1, x2):
    """x1·2**x2 for an integer x2 (exact; linear in x1, so ∂/∂x1 = 2**x2)."""
    i = _np.asarray(primal_value(x2))
    if i.dtype.kind not in "iub":
        raise TypeError(f"ldexp: the exponent must be an integer array, not {i.dtype}")
    return ldexp_p(x1, i)


def frexp(x):
    """(mantissa, exponent) with x = mantissa·2**exponent: the mantissa is x·2**(−exponent),
    with derivative 2**(−exponent); the integer exponent is a constant."""
    e = _np.frexp(primal_value(x))[1]
    return ldexp_p(x, -e), e


def modf(x):
    """(fractional part, integral part): x − trunc(x) (derivative 1) and trunc(x) (constant)."""
    whole = _np.trunc(primal_value(x))
    return subtract(x, whole), whole


def divmod(x1, x2):  # noqa: A001 - mirrors numpy
    """(floor_divide(x1, x2), remainder(x1, x2)): a constant quotient and a differentiable
    remainder."""
    return floor_divide(x1, x2), remainder(x1, x2)


def float_power(x1, x2):
    """``x1 ** x2`` computed in float64 (complex128 for complex input), like NumPy."""
    dt = _np.result_type(_np.float64, primal_value(x1), primal_value(x2))

    def promote(a):
        if isinstance(a, Tracer):
            return a if _np.result_type(primal_value(a)) == dt else astype(a, dt)
        return _np.asarray(a, dt)

    return power(promote(x1), promote(x2))


def _linear_unary(npfunc, doc):
    def f(x):
        xv = primal_value(x)
        dt = _np.result_type(xv)
        if dt.kind not in "fc" or not isinstance(x, Tracer):
            return npfunc(xv)
        if dt.kind == "c":
            raise TypeError(f"{npfunc.__name__} is not defined for complex input")
        return multiply(x, npfunc(_np.ones((), dt)))  # bit for bit NumPy's x·(π/180)

    f.__name__ = npfunc.__name__
    f.__doc__ = doc
    return f


deg2rad = _linear_unary(_np.deg2rad, "Degrees to radians: x·π/180 (a linear map).")
radians = _linear_unary(_np.radians, "Degrees to radians: x·π/180 (a linear map).")
rad2deg = _linear_unary(_np.rad2deg, "Radians to degrees: x·180/π (a linear map).")
degrees = _linear_unary(_np.degrees, "Radians to degrees: x·180/π (a linear map).")

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


def angle(z, deg=False):
    """The argument of ``z``, arctan2(Im z, Re z) (in degrees with ``deg``).  For a real ``z`` it
    is 0 or π, a constant; at z = 0 the derivative is the subgradient 0 (as for arctan2)."""
    if not (_is_complex(z) and isinstance(z, Tracer)):
        return _np.angle(primal_value(z), deg=deg)
    a = arctan2(imag(z), real(z))
    return a * (180 / _np.pi) if deg else a


def fabs(x):
    """|x| for real ``x`` (NumPy's ``fabs`` refuses complex input; use ``absolute``)."""
    if not isinstance(x, Tracer):
        return _np.fabs(x)
    if _is_complex(x):
        raise TypeError("fabs is not defined for complex input; use wengert.numpy.abs")
    return absolute(x)


def sign(x, **kwargs):
    """sign(x): −1, 0 or 1 for real x, piecewise constant (derivative 0); for complex z it is
    z/|z| (NumPy 2), which is differentiable away from 0, with the subgradient 0 at z = 0."""
    if isinstance(x, Tracer) and _is_complex(x) and not kwargs:
        return _zdiv(x, absolute(x))
    return _np.sign(primal_value(x), **kwargs)

# ---------------------------------------------------------------------------------------------
# Selection: maximum, minimum, clip, where.  Ties split the derivative equally (½ each).
# ---------------------------------------------------------------------------------------------


def _chooser_weight(x, ans, y):
    """1 where ``x`` was chosen, ½ where ``x`` and ``y`` tie, 0 elsewhere."""
    xv, yv, av = primal_value(x), primal_value(y), primal_value(ans)
    return _mask((xv == av) * _np.where(xv == yv, 0.5, 1.0), ans)


maximum = Primitive("maximum", _np.maximum, elementwise=True, fmt="max({0}, {1})")
maximum.defjvp(  # a selection: an infinite tangent of the losing argument stays out
    lambda t, ans, x, y: to_out_shape(_select(t, _chooser_weight(x, ans, y)), ans),
    lambda t, ans, x, y: to_out_shape(_select(t, _chooser_weight(y, ans, x)), ans),
)
maximum.defvjp(
    lambda g, ans, x, y: g * _chooser_weight(x, ans, y),
    lambda g, ans, x, y: g * _chooser_weight(y, ans, x),
)

minimum = Primitive("minimum", _np.minimum, elementwise=True, fmt="min({0}, {1})")
minimum.defjvp(*maximum.jvps).defvjp(*maximum.vjps)
# fmax/fmin ignore a NaN: the other argument is the result, and takes the whole derivative
fmax.defjvp(*maximum.jvps).defvjp(*maximum.vjps)
fmin.defjvp(*maximum.jvps).defvjp(*maximum.vjps)


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
    return lambda t, ans, x, lo, hi: to_out_shape(_select(t, _clip_weight(k, ans, x, lo, hi)), ans)


def _clip_vjp(k):
    return lambda g, ans, *args: _select(g, _clip_weight(k, ans, *args))


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
    lambda g, ans, c, x, y: where_p(c, g, 0),
    lambda g, ans, c, x, y: where_p(c, 0, g),
)


def where(condition, x=None, y=None):
    """``x`` where ``condition`` holds, else ``y``.  The branch not taken gets an exact zero
    cotangent, and the rules with singular derivatives (log, sqrt, 1/y, arcsin, x**y...) treat
    it as a strong zero, so ``where(x > 0, log(x), 0)`` has a finite gradient at x = 0, to any
    order (docs/nan_safety.md lists what is covered)."""
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


def constant_op(npfunc, doc: str = "its derivative is zero.", plain=primal_value):
    """``npfunc`` applied to the plain values of its arguments (``plain`` strips the tracing):
    a result with no derivative (rounding, comparisons, index outputs, queries)."""

    def op(*args, **kwargs):
        return npfunc(*[plain(a) for a in args], **{k: plain(v) for k, v in kwargs.items()})

    op.__name__ = npfunc.__name__
    op.__doc__ = f"``numpy.{npfunc.__name__}`` on the plain values: {doc}"
    return op


_constant_op = constant_op


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
spacing = _constant_op(_np.spacing)
isreal = _constant_op(_np.isreal)
iscomplex = _constant_op(_np.iscomplex)
isposinf = _constant_op(_np.isposinf)
isneginf = _constant_op(_np.isneginf)
round = _constant_op(_np.round)  # noqa: A001 - mirrors numpy
around = _constant_op(_np.around)
fix = _constant_op(_np.fix)


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
for _p in (log2, log10):
    _p.saving((0,))
for _p in (exp2, cbrt):
    _p.saving((ANS,))
sinc_p.saving((0, ANS))
arctan2.saving((0, 1), (0, 1))
hypot.saving((0, ANS), (1, ANS))
logaddexp.saving((0, 1, ANS), (0, 1, ANS))
logaddexp2.saving((0, 1, ANS), (0, 1, ANS))
fmod.saving((), (0, 1, ANS))
remainder.saving((), (0, 1, ANS))
heaviside.saving((), (0,))
copysign.saving((0, 1), ())
ldexp_p.saving((1,), ())
