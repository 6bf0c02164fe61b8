"""``wengert.scipy.special``: SciPy's special functions with forward and reverse derivatives.

Each function is a primitive (SciPy computes the value) whose JVP and VJP rules are written
with wengert's own operations, so every order works, e.g. d/dx gammaln = digamma,
d/dx digamma = polygamma(1, ·), d/dx erf = 2/√π·e^(−x²).  Integer-like orders (the n of
``polygamma``, the v of ``iv``/``yv``/``kv``) are not differentiable: tracing one raises an
error; ``jv`` is differentiable in v by its power series (0 < x ≤ 25, v > −1).  The
incomplete gamma and beta functions are differentiable in their shape parameters too (series
in :mod:`wengert.scipy._series`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as _np
import scipy.special as _sp

import wengert.numpy as wnp
from wengert.core import ANS, Primitive, primal_value
from wengert.numpy._elementwise import to_out_shape
from wengert.numpy._reductions import normalize_axes

from . import _series

__all__ = [
    "gammaln",
    "digamma",
    "psi",
    "polygamma",
    "gamma",
    "beta",
    "betaln",
    "erf",
    "erfc",
    "erfcx",
    "erfinv",
    "erfcinv",
    "expit",
    "logit",
    "log_expit",
    "ndtr",
    "log_ndtr",
    "ndtri",
    "xlogy",
    "xlog1py",
    "entr",
    "rel_entr",
    "kl_div",
    "logsumexp",
    "softmax",
    "log_softmax",
    "i0",
    "i1",
    "i0e",
    "i1e",
    "iv",
    "ive",
    "jv",
    "j0",
    "j1",
    "yv",
    "kv",
    "kve",
    "multigammaln",
    "gammainc",
    "gammaincc",
    "betainc",
    "betaincc",
    "stdtr",
]

_SQRT_PI = math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2 * math.pi)
_LOG_PI = math.log(math.pi)


def _float_out(f):
    """SciPy's ``f``, with the result in the arguments' floating dtype (an integer order such
    as polygamma's n must not promote float32 to float64)."""

    def impl(*args):
        out = f(*args)
        dt = _np.result_type(*[primal_value(a) for a in args[-1:]], 1.0)
        return out.astype(dt, copy=False) if isinstance(out, _np.ndarray) else dt.type(out)

    return impl


class _NoDerivative:
    """The rule of an argument that has no derivative: tracing it is an error that says so."""

    def __init__(self, fname: str, arg: str, why: str) -> None:
        self.fname, self.arg, self.why = fname, arg, why

    @property
    def coverage_note(self) -> str:
        """What docs/coverage.md says about this argument."""
        return f"no derivative in {self.arg}"

    def __call__(self, *_args: Any, **_params: Any) -> Any:
        raise NotImplementedError(
            f"{self.fname}: no derivative with respect to {self.arg} ({self.why}). Pass "
            f"{self.arg} as a constant (wengert.stop_gradient({self.arg}) if it is computed "
            "from traced values)."
        )


def _unary(name: str, impl, coef, reads: tuple) -> Primitive:
    """An element-wise f(x) with f'(x) = ``coef(ans, x)``; the rule t·f'(x) serves as JVP and
    as VJP (transpose of a diagonal map)."""
    p = Primitive(name, impl, elementwise=True, fmt=name + " {0}")
    rule = lambda t, ans, x: t * coef(ans, x)
    return p.defjvp(rule).defvjp(rule).saving(reads)


def _binary(name: str, impl, coef0, coef1) -> Primitive:
    """An element-wise f(x, y) with ∂f/∂x = ``coef0(ans, x, y)`` and ∂f/∂y = ``coef1(...)``;
    a :class:`_NoDerivative` stands for an argument without a derivative."""
    p = Primitive(name, impl, elementwise=True, fmt=name + "({0}, {1})")

    def jvp(k, coef):
        if isinstance(coef, _NoDerivative):
            return coef
        return lambda t, ans, x, y: to_out_shape(t * coef(ans, x, y), ans)

    def vjp(k, coef):
        if isinstance(coef, _NoDerivative):
            return coef
        return lambda g, ans, x, y: g * coef(ans, x, y)

    return p.defjvp(jvp(0, coef0), jvp(1, coef1)).defvjp(vjp(0, coef0), vjp(1, coef1))


def _n_plus(n, k: int):
    """A constant order n + k (the order argument is never differentiated)."""
    return _np.asarray(primal_value(n)) + k


# ---------------------------------------------------------------------------------------------
# Gamma family
# ---------------------------------------------------------------------------------------------

_polygamma = _binary(
    "polygamma",
    _float_out(_sp.polygamma),
    _NoDerivative("polygamma", "n", "the order is an integer"),
    lambda ans, n, x: polygamma(_n_plus(n, 1), x),
)
_polygamma.saving((0, 1))

_digamma = _unary("digamma", _sp.digamma, lambda ans, x: polygamma(1, x), (0,))
_gammaln = _unary("gammaln", _sp.gammaln, lambda ans, x: digamma(x), (0,))
_gamma = _unary("gamma", _sp.gamma, lambda ans, x: ans * digamma(x), (0, ANS))


def _dbetaln(which):
    return lambda ans, a, b: digamma((a, b)[which]) - digamma(a + b)


_betaln = _binary("betaln", _sp.betaln, _dbetaln(0), _dbetaln(1))
_betaln.saving((0, 1))
_beta = _binary(
    "beta",
    _sp.beta,
    lambda ans, a, b: ans * _dbetaln(0)(ans, a, b),
    lambda ans, a, b: ans * _dbetaln(1)(ans, a, b),
)


def multigammaln(a: Any, d: int) -> Any:
    """log Γ_d(a) = d(d−1)/4 · log π + Σ_{j=1..d} log Γ(a − (j−1)/2), the multivariate
    log-gamma function (a composite of :func:`gammaln`)."""
    d = int(d)
    if d < 1:
        raise ValueError("multigammaln: d must be a positive integer")
    if _np.any(primal_value(a) <= 0.5 * (d - 1)):
        raise ValueError(f"multigammaln: a must be greater than (d - 1)/2 = {0.5 * (d - 1)}")
    out = gammaln(a)
    for j in range(1, d):
        out = out + gammaln(a - 0.5 * j)
    return out + d * (d - 1) / 4 * _LOG_PI


# ---------------------------------------------------------------------------------------------
# Error functions and the normal distribution function
# ---------------------------------------------------------------------------------------------

_erf = _unary("erf", _sp.erf, lambda ans, x: (2 / _SQRT_PI) * wnp.exp(-x * x), (0,))
_erfc = _unary("erfc", _sp.erfc, lambda ans, x: (-2 / _SQRT_PI) * wnp.exp(-x * x), (0,))
_erfcx = _unary("erfcx", _sp.erfcx, lambda ans, x: 2 * x * ans - 2 / _SQRT_PI, (0, ANS))
_erfinv = _unary("erfinv", _sp.erfinv, lambda ans, x: (_SQRT_PI / 2) * wnp.exp(ans * ans), (ANS,))
_erfcinv = _unary(
    "erfcinv", _sp.erfcinv, lambda ans, x: (-_SQRT_PI / 2) * wnp.exp(ans * ans), (ANS,)
)
_ndtr = _unary("ndtr", _sp.ndtr, lambda ans, x: wnp.exp(-0.5 * x * x) / _SQRT_2PI, (0,))
# d/dx log Φ(x) = φ(x)/Φ(x), formed as exp(log φ − log Φ) so it stays finite far in the tail.
_log_ndtr = _unary(
    "log_ndtr",
    _sp.log_ndtr,
    lambda ans, x: wnp.exp(-0.5 * x * x - ans) / _SQRT_2PI,
    (0, ANS),
)
_ndtri = _unary("ndtri", _sp.ndtri, lambda ans, x: _SQRT_2PI * wnp.exp(0.5 * ans * ans), (ANS,))

# ---------------------------------------------------------------------------------------------
# Logistic functions
# ---------------------------------------------------------------------------------------------

_expit = _unary("expit", _sp.expit, lambda ans, x: ans * (1 - ans), (ANS,))
_logit = _unary("logit", _sp.logit, lambda ans, x: 1 / (x * (1 - x)), (0,))
_log_expit = _unary("log_expit", _sp.log_expit, lambda ans, x: expit(-x), (0,))

# ---------------------------------------------------------------------------------------------
# x·log y and the entropies.  0·log 0 = 0: where x = 0 the y-derivative x/y is 0 (not NaN).
# ---------------------------------------------------------------------------------------------


def _x_over(x, y):
    """x / y, with 0 where x = y = 0 (the 0·log 0 = 0 convention's derivative in y)."""
    both = (primal_value(x) == 0) & (primal_value(y) == 0)
    return x / wnp.where(both, 1, y) if _np.any(both) else x / y


_xlogy = _binary("xlogy", _sp.xlogy, lambda ans, x, y: wnp.log(y), lambda ans, x, y: _x_over(x, y))
_xlogy.saving((1,), (0, 1))
_xlog1py = _binary(
    "xlog1py",
    _sp.xlog1py,
    lambda ans, x, y: wnp.log1p(y),
    lambda ans, x, y: _x_over(x, 1 + y),
)
_xlog1py.saving((1,), (0, 1))
_entr = _unary("entr", _sp.entr, lambda ans, x: -1 - wnp.log(x), (0,))
_rel_entr = _binary(
    "rel_entr",
    _sp.rel_entr,
    lambda ans, x, y: wnp.log(x) - wnp.log(y) + 1,
    lambda ans, x, y: -_x_over(x, y),
)
_rel_entr.saving((0, 1))
_kl_div = _binary(
    "kl_div",
    _sp.kl_div,
    lambda ans, x, y: wnp.log(x) - wnp.log(y),
    lambda ans, x, y: 1 - _x_over(x, y),
)
_kl_div.saving((0, 1))

# ---------------------------------------------------------------------------------------------
# Bessel functions: derivatives in x from the recurrences; the order v is a constant.
# ---------------------------------------------------------------------------------------------


def _order(fname):
    return _NoDerivative(fname, "v", "only the derivative in x is implemented")


def _sign(x):
    return _np.sign(primal_value(x))


_iv = _binary(
    "iv",
    _float_out(_sp.iv),
    _order("iv"),
    lambda ans, v, x: 0.5 * (iv(_n_plus(v, -1), x) + iv(_n_plus(v, 1), x)),
)
_ive = _binary(
    "ive",
    _float_out(_sp.ive),
    _order("ive"),
    lambda ans, v, x: 0.5 * (ive(_n_plus(v, -1), x) + ive(_n_plus(v, 1), x)) - _sign(x) * ans,
)
def _jv_dv(ans, v, x):
    """∂J_v(x)/∂v = J_v(x)·ln(x/2) − Σ_k (−1)^k ψ(v+k+1) (x/2)^(2k+v) / (k! Γ(v+k+1)).

    Defined here for x > 0 and v > −1 (every Γ(v+k+1) positive); the series is summed to
    k = 40 + 2x, with x ≤ 25 so cancellation stays below ~1e-8.  Written with wengert's own
    operations, so it differentiates again (in v and in x)."""
    vv, xv = _np.asarray(primal_value(v)), _np.asarray(primal_value(x))
    if _np.any(xv <= 0) or _np.any(xv > 25) or _np.any(vv <= -1):
        raise NotImplementedError(
            "jv: the derivative with respect to the order v is implemented for 0 < x ≤ 25 and "
            "v > −1 (a power series); pass v as a constant (wengert.stop_gradient(v)) elsewhere."
        )
    kmax = int(40 + 2 * _np.max(xv))
    k = _np.arange(kmax, dtype=_np.result_type(xv, vv, float)).reshape((kmax,) + (1,) * _np.ndim(ans))
    sign = (-1.0) ** k
    log_half_x = wnp.log(x / 2)
    a = v + k + 1
    terms = sign * digamma(a) * wnp.exp((2 * k + v) * log_half_x - _sp.gammaln(k + 1) - gammaln(a))
    return ans * log_half_x - wnp.sum(terms, axis=0)


_jv = _binary(
    "jv",
    _float_out(_sp.jv),
    _jv_dv,
    lambda ans, v, x: 0.5 * (jv(v - 1, x) - jv(v + 1, x)),
)
_yv = _binary(
    "yv",
    _float_out(_sp.yv),
    _order("yv"),
    lambda ans, v, x: 0.5 * (yv(_n_plus(v, -1), x) - yv(_n_plus(v, 1), x)),
)
_kv = _binary(
    "kv",
    _float_out(_sp.kv),
    _order("kv"),
    lambda ans, v, x: -0.5 * (kv(_n_plus(v, -1), x) + kv(_n_plus(v, 1), x)),
)
_kve = _binary(
    "kve",
    _float_out(_sp.kve),
    _order("kve"),
    lambda ans, v, x: ans - 0.5 * (kve(_n_plus(v, -1), x) + kve(_n_plus(v, 1), x)),
)
for _p in (_iv, _jv, _yv, _kv):
    _p.saving((0, 1))
_jv.saving((0, 1, ANS), (0, 1))  # the order's rule also reads J_v itself
_i0 = _unary("i0", _sp.i0, lambda ans, x: i1(x), (0,))
_i1 = _unary("i1", _sp.i1, lambda ans, x: 0.5 * (i0(x) + iv(2, x)), (0,))
_i0e = _unary("i0e", _sp.i0e, lambda ans, x: i1e(x) - _sign(x) * ans, (0, ANS))
_i1e = _unary("i1e", _sp.i1e, lambda ans, x: 0.5 * (i0e(x) + ive(2, x)) - _sign(x) * ans, (0, ANS))
_j0 = _unary("j0", _sp.j0, lambda ans, x: -j1(x), (0,))
_j1 = _unary("j1", _sp.j1, lambda ans, x: 0.5 * (j0(x) - jv(2, x)), (0,))

# ---------------------------------------------------------------------------------------------
# Regularized incomplete gamma and beta functions, differentiable in every argument.
# igamma_p(a, x, k=k, upper=u) = ∂^k/∂a^k of P(a, x) (u False) or Q(a, x) = 1 − P (u True).
# ibeta_p(a, b, x, i=i, j=j) = ∂^(i+j)/∂a^i ∂b^j of I_x(a, b).
# ---------------------------------------------------------------------------------------------


def _igamma_impl(a, x, k, upper):
    if k == 0:
        return (_sp.gammaincc if upper else _sp.gammainc)(a, x)
    d = _series.igamma_da(a, x, k)
    return -d if upper else d


def _gamma_density_da(a, x, k):
    """∂^k/∂a^k of the gamma density x^(a−1) e^(−x) / Γ(a) (= ∂P/∂x), in wengert operations."""
    logx = wnp.log(x)
    dens = wnp.exp((a - 1) * logx - x - gammaln(a))
    if k == 0:
        return dens
    y = _series.leibniz((k,), lambda b: logx - digamma(a) if b[0] == 1 else -polygamma(b[0] - 1, a))
    return dens * y


igamma_p = Primitive("igamma", _igamma_impl, elementwise=True, fmt="igamma({0}, {1})")
igamma_p.defjvp(
    lambda t, ans, a, x, k, upper: to_out_shape(t * igamma_p(a, x, k=k + 1, upper=upper), ans),
    lambda t, ans, a, x, k, upper: to_out_shape(
        t * _gamma_density_da(a, x, k) * (-1 if upper else 1), ans
    ),
)
igamma_p.defvjp(
    lambda g, ans, a, x, k, upper: g * igamma_p(a, x, k=k + 1, upper=upper),
    lambda g, ans, a, x, k, upper: g * _gamma_density_da(a, x, k) * (-1 if upper else 1),
)
igamma_p.saving((0, 1))


def gammainc(a: Any, x: Any) -> Any:
    """P(a, x) = γ(a, x)/Γ(a), the regularized lower incomplete gamma function.

    ∂P/∂x = x^(a−1) e^(−x)/Γ(a); ∂P/∂a by the series Σ_n exp(L_n)·∂L_n/∂a (all orders)."""
    return igamma_p(a, x, k=0, upper=False)


def gammaincc(a: Any, x: Any) -> Any:
    """Q(a, x) = 1 − P(a, x), the regularized upper incomplete gamma function (accurate where
    Q is small); derivatives are those of P with the opposite sign."""
    return igamma_p(a, x, k=0, upper=True)


def _ibeta_impl(a, b, x, i, j):
    if i == j == 0:
        return _sp.betainc(a, b, x)
    return _series.ibeta_dab(a, b, x, i, j)


def _beta_density_dab(a, b, x, i, j):
    """∂^(i+j)/∂a^i ∂b^j of the beta density x^(a−1)(1−x)^(b−1)/B(a, b) (= ∂I/∂x)."""
    logx, log1mx = wnp.log(x), wnp.log1p(-x)
    dens = wnp.exp((a - 1) * logx + (b - 1) * log1mx - betaln(a, b))
    if i == j == 0:
        return dens

    def dlog(beta_):
        u, v = beta_
        if u + v == 1:
            return (logx - digamma(a) if u else log1mx - digamma(b)) + digamma(a + b)
        out = polygamma(u + v - 1, a + b)
        if v == 0:
            out = out - polygamma(u - 1, a)
        if u == 0:
            out = out - polygamma(v - 1, b)
        return out

    return dens * _series.leibniz((i, j), dlog)


ibeta_p = Primitive("ibeta", _ibeta_impl, elementwise=True, fmt="ibeta({0}, {1}, {2})")
ibeta_p.defjvp(
    lambda t, ans, a, b, x, i, j: to_out_shape(t * ibeta_p(a, b, x, i=i + 1, j=j), ans),
    lambda t, ans, a, b, x, i, j: to_out_shape(t * ibeta_p(a, b, x, i=i, j=j + 1), ans),
    lambda t, ans, a, b, x, i, j: to_out_shape(t * _beta_density_dab(a, b, x, i, j), ans),
)
ibeta_p.defvjp(
    lambda g, ans, a, b, x, i, j: g * ibeta_p(a, b, x, i=i + 1, j=j),
    lambda g, ans, a, b, x, i, j: g * ibeta_p(a, b, x, i=i, j=j + 1),
    lambda g, ans, a, b, x, i, j: g * _beta_density_dab(a, b, x, i, j),
)
ibeta_p.saving((0, 1, 2))


def betainc(a: Any, b: Any, x: Any) -> Any:
    """I_x(a, b) = B(x; a, b)/B(a, b), the regularized incomplete beta function.

    ∂I/∂x = x^(a−1)(1−x)^(b−1)/B(a, b); ∂I/∂a and ∂I/∂b by the hypergeometric series (all
    orders)."""
    return ibeta_p(a, b, x, i=0, j=0)


def betaincc(a: Any, b: Any, x: Any) -> Any:
    """1 − I_x(a, b) = I_{1−x}(b, a), the complemented regularized incomplete beta function."""
    return ibeta_p(b, a, 1 - x, i=0, j=0)


# ---------------------------------------------------------------------------------------------
# Student's t distribution function
# ---------------------------------------------------------------------------------------------


def _t_pdf(df, t):
    return wnp.exp(
        gammaln(0.5 * (df + 1))
        - gammaln(0.5 * df)
        - 0.5 * wnp.log(df * math.pi)
        - 0.5 * (df + 1) * wnp.log1p(t * t / df)
    )


def _stdtr_ddf(df, t):
    """∂F/∂ν of F(ν, t) = ½ I_{ν/(ν+t²)}(ν/2, ½) (t ≤ 0; 1 − that for t > 0):
    −¼ sign(t) ∂_a I − ½ t x^(ν/2−1) / ((ν + t²)^(3/2) B(ν/2, ½)), with x = ν/(ν + t²).
    At t = 0 (where x = 1) the derivative is 0; the guard keeps 0·∞ out of higher orders."""
    zero = primal_value(t) == 0
    ts = wnp.where(zero, 1, t) if _np.any(zero) else t
    s = df + ts * ts
    x = df / s
    a = 0.5 * df
    out = -0.25 * _sign(ts) * ibeta_p(a, 0.5, x, i=1, j=0) - 0.5 * ts * wnp.exp(
        (a - 1) * wnp.log(x) - 1.5 * wnp.log(s) - betaln(a, 0.5)
    )
    return wnp.where(zero, 0, out) if _np.any(zero) else out


stdtr_p = Primitive("stdtr", _sp.stdtr, elementwise=True, fmt="stdtr({0}, {1})")
stdtr_p.defjvp(
    lambda t_, ans, df, t: to_out_shape(t_ * _stdtr_ddf(df, t), ans),
    lambda t_, ans, df, t: to_out_shape(t_ * _t_pdf(df, t), ans),
)
stdtr_p.defvjp(
    lambda g, ans, df, t: g * _stdtr_ddf(df, t),
    lambda g, ans, df, t: g * _t_pdf(df, t),
)
stdtr_p.saving((0, 1))


def stdtr(df: Any, t: Any) -> Any:
    """Student's t distribution function F(ν, t) = P(T ≤ t).  ∂F/∂t is the t density; ∂F/∂ν
    comes from the incomplete beta function's derivative in its parameter.  At t = 0 exactly,
    derivatives of ∂F/∂ν in t are taken as 0 (a limitation; F itself is exact there)."""
    return stdtr_p(df, t)


# ---------------------------------------------------------------------------------------------
# log-sum-exp and softmax (composites: their derivatives follow from exp, log and sum)
# ---------------------------------------------------------------------------------------------


def logsumexp(
    a: Any,
    axis: Any = None,
    b: Any = None,
    keepdims: bool = False,
    return_sign: bool = False,
) -> Any:
    """log Σ b·exp(a) over ``axis`` (b = 1 if not given), shifted by the maximum of ``a``
    (a constant whose effect cancels exactly), so it never overflows.

    With ``return_sign`` the result is (log|Σ b·eᵃ|, sign(Σ b·eᵃ)), the sign a constant;
    without it a negative sum gives NaN, as in SciPy.  ∂/∂a = b·eᵃ / Σ b·eᵃ (softmax)."""
    av = primal_value(a)
    if b is not None:
        shape = _np.broadcast_shapes(_np.shape(av), _np.shape(primal_value(b)))
        a = wnp.broadcast_to(a, shape)
        av = _np.broadcast_to(av, shape)
    axes = normalize_axes(axis, _np.ndim(av))
    with _np.errstate(invalid="ignore"):
        real = _np.real(av)
        if b is not None:
            real = _np.where(_np.broadcast_to(primal_value(b), real.shape) != 0, real, -_np.inf)
        m = _np.max(real, axis=axes, keepdims=True) if real.size else _np.zeros((1,) * real.ndim)
    m = _np.where(_np.isfinite(m), m, 0).astype(_np.result_type(real, _np.float16))
    if b is not None:  # a term with b = 0 is 0 even where its exp(a − m) would overflow
        with _np.errstate(invalid="ignore"):
            off = _np.real(av) - m > 700
        off &= _np.broadcast_to(primal_value(b), off.shape) == 0
        if _np.any(off):
            a = wnp.where(off, -_np.inf, a)
    e = wnp.exp(a - m)
    s = wnp.sum(e if b is None else b * e, axis=axes, keepdims=True)
    if return_sign:
        sv = primal_value(s)
        sgn = _np.sign(sv) if not _np.iscomplexobj(sv) else sv / _np.where(sv == 0, 1, abs(sv))
        out = wnp.log(wnp.abs(s)) + m
    else:
        out = wnp.log(s) + m
    if not keepdims:
        out = wnp.squeeze(out, axes)
        if return_sign:
            sgn = _np.squeeze(sgn, axes)
    return (out, sgn) if return_sign else out


def softmax(x: Any, axis: Any = None) -> Any:
    """exp(x − logsumexp(x)) along ``axis`` (all axes if None)."""
    return wnp.exp(x - logsumexp(x, axis=axis, keepdims=True))


def log_softmax(x: Any, axis: Any = None) -> Any:
    """x − logsumexp(x) along ``axis``: the log of :func:`softmax`, computed stably."""
    return x - logsumexp(x, axis=axis, keepdims=True)


# ---------------------------------------------------------------------------------------------
# The public functions: SciPy's names and signatures over the primitives above.
# ---------------------------------------------------------------------------------------------


def gammaln(x: Any) -> Any:
    """log|Γ(x)|; d/dx = ψ(x) (:func:`digamma`)."""
    return _gammaln(x)


def digamma(x: Any) -> Any:
    """ψ(x) = d/dx log Γ(x); d/dx ψ = ψ⁽¹⁾ (:func:`polygamma` with n = 1)."""
    return _digamma(x)


psi = digamma


def polygamma(n: Any, x: Any) -> Any:
    """ψ⁽ⁿ⁾(x), the n-th derivative of the digamma function; d/dx = ψ⁽ⁿ⁺¹⁾(x).  The integer
    order n has no derivative."""
    return _polygamma(n, x)


def gamma(x: Any) -> Any:
    """Γ(x); d/dx = Γ(x)·ψ(x)."""
    return _gamma(x)


def betaln(a: Any, b: Any) -> Any:
    """log|B(a, b)|; ∂/∂a = ψ(a) − ψ(a + b), ∂/∂b = ψ(b) − ψ(a + b)."""
    return _betaln(a, b)


def beta(a: Any, b: Any) -> Any:
    """B(a, b) = Γ(a)Γ(b)/Γ(a + b); ∂/∂a = B·(ψ(a) − ψ(a + b)), likewise in b."""
    return _beta(a, b)


def erf(x: Any) -> Any:
    """erf x = 2/√π ∫₀ˣ e^(−t²) dt; d/dx = 2/√π·e^(−x²)."""
    return _erf(x)


def erfc(x: Any) -> Any:
    """erfc x = 1 − erf x; d/dx = −2/√π·e^(−x²)."""
    return _erfc(x)


def erfcx(x: Any) -> Any:
    """erfcx x = e^(x²)·erfc x; d/dx = 2x·erfcx x − 2/√π."""
    return _erfcx(x)


def erfinv(y: Any) -> Any:
    """The inverse of erf; d/dy = √π/2·e^(erfinv(y)²)."""
    return _erfinv(y)


def erfcinv(y: Any) -> Any:
    """The inverse of erfc; d/dy = −√π/2·e^(erfcinv(y)²)."""
    return _erfcinv(y)


def ndtr(x: Any) -> Any:
    """Φ(x), the standard normal distribution function; d/dx = φ(x) = e^(−x²/2)/√(2π)."""
    return _ndtr(x)


def log_ndtr(x: Any) -> Any:
    """log Φ(x), accurate far in the lower tail; d/dx = φ(x)/Φ(x), formed as
    exp(log φ(x) − log Φ(x)) so it stays finite there."""
    return _log_ndtr(x)


def ndtri(p: Any) -> Any:
    """Φ⁻¹(p), the normal quantile function; d/dp = √(2π)·e^(Φ⁻¹(p)²/2)."""
    return _ndtri(p)


def expit(x: Any) -> Any:
    """The logistic sigmoid σ(x) = 1/(1 + e^(−x)); d/dx = σ(x)(1 − σ(x))."""
    return _expit(x)


def logit(p: Any) -> Any:
    """log(p/(1 − p)), the inverse of :func:`expit`; d/dp = 1/(p(1 − p))."""
    return _logit(p)


def log_expit(x: Any) -> Any:
    """log σ(x), computed stably; d/dx = σ(−x)."""
    return _log_expit(x)


def xlogy(x: Any, y: Any) -> Any:
    """x·log y, 0 where x = 0; ∂/∂x = log y, ∂/∂y = x/y (0 where x = y = 0, not NaN)."""
    return _xlogy(x, y)


def xlog1py(x: Any, y: Any) -> Any:
    """x·log(1 + y), 0 where x = 0; ∂/∂x = log(1 + y), ∂/∂y = x/(1 + y) (0 where x = 0 and
    y = −1)."""
    return _xlog1py(x, y)


def entr(x: Any) -> Any:
    """−x·log x for x > 0, 0 at x = 0, −∞ for x < 0; d/dx = −1 − log x."""
    return _entr(x)


def rel_entr(x: Any, y: Any) -> Any:
    """x·log(x/y) for x, y > 0, 0 at x = 0 (y ≥ 0), ∞ otherwise; ∂/∂x = log(x/y) + 1,
    ∂/∂y = −x/y (0 where x = y = 0)."""
    return _rel_entr(x, y)


def kl_div(x: Any, y: Any) -> Any:
    """x·log(x/y) − x + y for x, y > 0 (y at x = 0); ∂/∂x = log(x/y), ∂/∂y = 1 − x/y."""
    return _kl_div(x, y)


def iv(v: Any, x: Any) -> Any:
    """The modified Bessel function I_v(x); d/dx = (I_{v−1}(x) + I_{v+1}(x))/2.  The order v
    has no derivative."""
    return _iv(v, x)


def ive(v: Any, x: Any) -> Any:
    """I_v(x)·e^(−|x|), the exponentially scaled I_v (real x);
    d/dx = (ive(v−1, x) + ive(v+1, x))/2 − sign(x)·ive(v, x).  No derivative in v."""
    return _ive(v, x)


def jv(v: Any, x: Any) -> Any:
    """The Bessel function J_v(x); ∂/∂x = (J_{v−1}(x) − J_{v+1}(x))/2, and ∂/∂v by its power
    series where that is defined here: 0 < x ≤ 25 and v > −1 (elsewhere tracing v raises)."""
    return _jv(v, x)


def yv(v: Any, x: Any) -> Any:
    """The Bessel function Y_v(x); d/dx = (Y_{v−1}(x) − Y_{v+1}(x))/2.  No derivative in v."""
    return _yv(v, x)


def kv(v: Any, x: Any) -> Any:
    """The modified Bessel function K_v(x); d/dx = −(K_{v−1}(x) + K_{v+1}(x))/2.  No
    derivative in v."""
    return _kv(v, x)


def kve(v: Any, x: Any) -> Any:
    """K_v(x)·eˣ; d/dx = kve(v, x) − (kve(v−1, x) + kve(v+1, x))/2.  No derivative in v."""
    return _kve(v, x)


def i0(x: Any) -> Any:
    """I₀(x); d/dx = I₁(x)."""
    return _i0(x)


def i1(x: Any) -> Any:
    """I₁(x); d/dx = (I₀(x) + I₂(x))/2."""
    return _i1(x)


def i0e(x: Any) -> Any:
    """I₀(x)·e^(−|x|); d/dx = i1e(x) − sign(x)·i0e(x)."""
    return _i0e(x)


def i1e(x: Any) -> Any:
    """I₁(x)·e^(−|x|); d/dx = (i0e(x) + ive(2, x))/2 − sign(x)·i1e(x)."""
    return _i1e(x)


def j0(x: Any) -> Any:
    """J₀(x); d/dx = −J₁(x)."""
    return _j0(x)


def j1(x: Any) -> Any:
    """J₁(x); d/dx = (J₀(x) − J₂(x))/2."""
    return _j1(x)
