"""``wengert.scipy.stats``: probability distributions with differentiable densities and
distribution functions, in the argument and in every parameter (loc, scale, shapes).

Each distribution object mirrors SciPy's (``norm.logpdf(x, loc=0, scale=1)``,
``gamma.cdf(x, a, loc, scale)``, ``poisson.logpmf(k, mu)``...); calling it freezes the
parameters as in SciPy.  Everything is a composite of :mod:`wengert.scipy.special`
functions.  Outside the support the densities are 0 (log-densities −∞) with zero derivative
(no NaN leaks from the branch not taken); invalid parameters give NaN, as in SciPy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as _np

import wengert.numpy as wnp
from wengert.core import primal_value

from . import linalg as _la
from . import special as _sc

__all__ = ["norm", "t", "gamma", "beta", "chi2", "poisson", "dirichlet", "multivariate_normal"]

_LOG_2PI = math.log(2 * math.pi)


def _pv(x):
    return _np.asarray(primal_value(x))


def _guard(cond, x, safe):
    """``x`` where ``cond`` holds, else the constant ``safe`` (so a branch that will be
    discarded is evaluated at a harmless point: no 0·∞ = NaN in its derivative)."""
    return x if _np.all(cond) else wnp.where(cond, x, safe)


def _select(cond, x, other):
    """``x`` where ``cond`` holds, else the constant ``other``."""
    return x if _np.all(cond) else wnp.where(cond, x, other)


class _Frozen:
    """A distribution with its parameters fixed: ``norm(loc=1, scale=2).pdf(x)``."""

    def __init__(self, dist: Any, args: tuple, kwds: dict) -> None:
        self.dist, self.args, self.kwds = dist, args, kwds

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.dist, name)
        return lambda x, *a, **k: method(x, *self.args, *a, **self.kwds, **k)

    def __repr__(self) -> str:
        return f"<frozen wengert.scipy.stats.{self.dist.name}>"


class _Distribution:
    """What every univariate distribution shares: SciPy's argument binding and freezing."""

    name = ""
    shapes: tuple = ()
    discrete = False

    def __call__(self, *args: Any, **kwds: Any) -> _Frozen:
        return _Frozen(self, args, kwds)

    def __repr__(self) -> str:
        return f"<wengert.scipy.stats.{self.name}>"

    def _bind(self, args: tuple, kwds: dict):
        names = self.shapes + (("loc",) if self.discrete else ("loc", "scale"))
        if len(args) > len(names):
            raise TypeError(f"{self.name}: too many positional arguments")
        vals = dict(zip(names, args))
        for k, v in kwds.items():
            if k not in names or k in vals:
                raise TypeError(f"{self.name}: unexpected or repeated argument {k!r}")
            vals[k] = v
        missing = [n for n in self.shapes if n not in vals]
        if missing:
            raise TypeError(f"{self.name}: missing shape parameter(s) {missing}")
        shapes = [vals[n] for n in self.shapes]
        return shapes, vals.get("loc", 0), vals.get("scale", 1)

    def _finish(self, out, ok):
        if _np.all(ok):
            return out
        return wnp.where(ok, out, _np.nan)


class _Univariate(_Distribution):
    """A continuous location-scale family: z = (x − loc)/scale, density f(z)/scale."""

    lower, upper = -_np.inf, _np.inf

    def _valid(self, *shapes) -> Any:
        return _np.all([_pv(s) > 0 for s in shapes], axis=0) if shapes else True

    def _standardize(self, x, args, kwds):
        shapes, loc, scale = self._bind(args, kwds)
        ok = self._valid(*shapes) & (_pv(scale) > 0)
        z = (x - loc) / _guard(_pv(scale) > 0, scale, 1)
        zv = _pv(z)
        inside = (zv >= self.lower) & (zv <= self.upper)
        return z, shapes, scale, ok, inside

    def logpdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """log f((x − loc)/scale) − log scale; −∞ outside the support."""
        z, shapes, scale, ok, inside = self._standardize(x, args, kwds)
        if isinstance(scale, (int, float)):  # a Python number stays weak (float32 is kept)
            log_scale = math.log(scale) if scale > 0 else math.nan
        else:
            log_scale = wnp.log(_guard(_pv(scale) > 0, scale, 1))
        out = self._logpdf(_guard(inside, z, self._safe), *shapes) - log_scale
        return self._finish(_select(inside, out, -_np.inf), ok)

    def pdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """f((x − loc)/scale)/scale, the exponential of :meth:`logpdf`."""
        return wnp.exp(self.logpdf(x, *args, **kwds))

    def cdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """P(X ≤ x): 0 below the support, 1 above."""
        z, shapes, scale, ok, inside = self._standardize(x, args, kwds)
        out = self._cdf(_guard(inside, z, self._safe), *shapes)
        out = _select(inside, out, (_pv(z) > self.upper).astype(_pv(out).dtype))
        return self._finish(out, ok)

    def logcdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """log P(X ≤ x): −∞ below the support, 0 above."""
        z, shapes, scale, ok, inside = self._standardize(x, args, kwds)
        out = self._logcdf(_guard(inside, z, self._safe), *shapes)
        out = _select(inside, out, _np.where(_pv(z) > self.upper, 0.0, -_np.inf))
        return self._finish(out, ok)

    def sf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """P(X > x) = 1 − cdf, computed directly where that is more accurate."""
        z, shapes, scale, ok, inside = self._standardize(x, args, kwds)
        out = self._sf(_guard(inside, z, self._safe), *shapes)
        out = _select(inside, out, (_pv(z) < self.lower).astype(_pv(out).dtype))
        return self._finish(out, ok)

    def logsf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """log P(X > x)."""
        z, shapes, scale, ok, inside = self._standardize(x, args, kwds)
        out = self._logsf(_guard(inside, z, self._safe), *shapes)
        out = _select(inside, out, _np.where(_pv(z) < self.lower, 0.0, -_np.inf))
        return self._finish(out, ok)

    _safe = 0.5  # a point inside every support, used where the argument is outside

    def _logcdf(self, z, *shapes):
        return wnp.log(self._cdf(z, *shapes))

    def _logsf(self, z, *shapes):
        return wnp.log(self._sf(z, *shapes))


class _Norm(_Univariate):
    """The normal distribution: log f(z) = −z²/2 − log √(2π); F = Φ (:func:`~special.ndtr`)."""

    name = "norm"

    def _logpdf(self, z):
        return -0.5 * z * z - 0.5 * _LOG_2PI

    def _cdf(self, z):
        return _sc.ndtr(z)

    def _logcdf(self, z):
        return _sc.log_ndtr(z)

    def _sf(self, z):
        return _sc.ndtr(-z)

    def _logsf(self, z):
        return _sc.log_ndtr(-z)

    def ppf(self, q: Any, loc: Any = 0, scale: Any = 1) -> Any:
        """The quantile function loc + scale·Φ⁻¹(q)."""
        return loc + scale * _sc.ndtri(q)

    def isf(self, q: Any, loc: Any = 0, scale: Any = 1) -> Any:
        """The inverse survival function loc − scale·Φ⁻¹(q)."""
        return loc - scale * _sc.ndtri(q)


class _T(_Univariate):
    """Student's t with ν = df degrees of freedom: log f(z) = log Γ((ν+1)/2) − log Γ(ν/2)
    − ½ log(νπ) − (ν+1)/2 · log(1 + z²/ν); F = :func:`~special.stdtr` (differentiable in ν)."""

    name = "t"
    shapes = ("df",)

    def _logpdf(self, z, df):
        return (
            _sc.gammaln(0.5 * (df + 1))
            - _sc.gammaln(0.5 * df)
            - 0.5 * wnp.log(df * math.pi)
            - 0.5 * (df + 1) * wnp.log1p(z * z / df)
        )

    def _cdf(self, z, df):
        return _sc.stdtr(df, z)

    def _sf(self, z, df):
        return _sc.stdtr(df, -z)


class _Gamma(_Univariate):
    """The gamma distribution with shape a: log f(z) = (a−1) log z − z − log Γ(a);
    F = P(a, z) (:func:`~special.gammainc`, differentiable in a)."""

    name = "gamma"
    shapes = ("a",)
    lower = 0.0

    def _logpdf(self, z, a):
        return _sc.xlogy(a - 1, z) - z - _sc.gammaln(a)

    def _cdf(self, z, a):
        return _sc.gammainc(a, z)

    def _sf(self, z, a):
        return _sc.gammaincc(a, z)


class _Chi2(_Univariate):
    """The χ² distribution with df degrees of freedom: a gamma distribution with a = df/2 and
    scale 2; F = P(df/2, z/2)."""

    name = "chi2"
    shapes = ("df",)
    lower = 0.0

    def _logpdf(self, z, df):
        k = 0.5 * df
        return _sc.xlogy(k - 1, z) - 0.5 * z - _sc.gammaln(k) - k * math.log(2)

    def _cdf(self, z, df):
        return _sc.gammainc(0.5 * df, 0.5 * z)

    def _sf(self, z, df):
        return _sc.gammaincc(0.5 * df, 0.5 * z)


class _Beta(_Univariate):
    """The beta distribution on [0, 1]: log f(z) = (a−1) log z + (b−1) log(1−z) − log B(a, b);
    F = I_z(a, b) (:func:`~special.betainc`, differentiable in a and b)."""

    name = "beta"
    shapes = ("a", "b")
    lower, upper = 0.0, 1.0

    def _logpdf(self, z, a, b):
        return _sc.xlogy(a - 1, z) + _sc.xlog1py(b - 1, -z) - _sc.betaln(a, b)

    def _cdf(self, z, a, b):
        return _sc.betainc(a, b, z)

    def _sf(self, z, a, b):
        return _sc.betaincc(a, b, z)


class _Poisson(_Distribution):
    """The Poisson distribution with mean mu: log p(k) = k log mu − mu − log k!, and
    P(X ≤ k) = Q(⌊k⌋ + 1, mu).  Differentiable in mu; k (and loc) are integers, constants."""

    name = "poisson"
    shapes = ("mu",)
    discrete = True

    def _prep(self, k, args, kwds):
        (mu,), loc, _ = self._bind(args, kwds)
        kv = _pv(k) - _pv(loc)
        return kv, mu, _pv(mu) >= 0

    def logpmf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """k·log mu − mu − log Γ(k + 1) at integers k ≥ 0, −∞ elsewhere."""
        kv, mu, ok = self._prep(k, args, kwds)
        inside = (kv >= 0) & (kv == _np.floor(kv))
        ks = _np.where(inside, kv, 0)
        out = _sc.xlogy(ks, mu) - mu - _sc.gammaln(ks + 1)
        return self._finish(_select(inside, out, -_np.inf), ok)

    def pmf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """P(X = k) = mu^k e^(−mu)/k!."""
        return wnp.exp(self.logpmf(k, *args, **kwds))

    def cdf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """P(X ≤ k) = Q(⌊k⌋ + 1, mu) (:func:`~special.gammaincc`) for k ≥ 0, else 0."""
        kv, mu, ok = self._prep(k, args, kwds)
        inside = kv >= 0
        out = _sc.gammaincc(_np.floor(_np.where(inside, kv, 0)) + 1, mu)
        return self._finish(_select(inside, out, 0.0), ok)

    def logcdf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """log P(X ≤ k)."""
        kv, mu, ok = self._prep(k, args, kwds)
        inside = kv >= 0
        out = wnp.log(_sc.gammaincc(_np.floor(_np.where(inside, kv, 0)) + 1, mu))
        return self._finish(_select(inside, out, -_np.inf), ok)

    def sf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """P(X > k) = P(⌊k⌋ + 1, mu) (:func:`~special.gammainc`) for k ≥ 0, else 1."""
        kv, mu, ok = self._prep(k, args, kwds)
        inside = kv >= 0
        out = _sc.gammainc(_np.floor(_np.where(inside, kv, 0)) + 1, mu)
        return self._finish(_select(inside, out, 1.0), ok)

    def logsf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """log P(X > k)."""
        return wnp.log(self.sf(k, *args, **kwds))


norm = _Norm()
t = _T()
gamma = _Gamma()
chi2 = _Chi2()
beta = _Beta()
poisson = _Poisson()


# ---------------------------------------------------------------------------------------------
# Multivariate distributions
# ---------------------------------------------------------------------------------------------


class _Dirichlet:
    """The Dirichlet distribution: log f(x) = Σ (αᵢ − 1) log xᵢ − log B(α), with
    log B(α) = Σ log Γ(αᵢ) − log Γ(Σ αᵢ).  As in SciPy, the first axis of x indexes the
    components; with K − 1 rows the last component is 1 − Σ x."""

    name = "dirichlet"

    def __call__(self, alpha: Any) -> _Frozen:
        return _Frozen(self, (alpha,), {})

    def __repr__(self) -> str:
        return "<wengert.scipy.stats.dirichlet>"

    def logpdf(self, x: Any, alpha: Any) -> Any:
        """Σᵢ (αᵢ − 1) log xᵢ − log B(α); x on the simplex (columns summing to 1)."""
        av, xv = _pv(alpha), _pv(x)
        if av.ndim != 1 or av.size < 2:
            raise ValueError("dirichlet: alpha must be a 1-D array of at least 2 parameters")
        if _np.any(av <= 0):
            raise ValueError("dirichlet: all parameters alpha must be positive")
        k = av.shape[0]
        if xv.shape[0] == k - 1:
            x = wnp.concatenate([x, 1 - wnp.sum(x, axis=0, keepdims=True)], axis=0)
            xv = _pv(x)
        elif xv.shape[0] != k:
            raise ValueError(
                f"dirichlet: x must have {k} or {k - 1} rows (the first axis indexes the "
                "components)"
            )
        if _np.any(xv < 0) or _np.any(xv > 1):
            raise ValueError("dirichlet: each entry of x must lie in [0, 1]")
        if _np.any(_np.abs(_np.sum(xv, axis=0) - 1) > 1e-9):
            raise ValueError("dirichlet: the components of x must sum to 1 (along axis 0)")
        a = wnp.reshape(alpha, (k,) + (1,) * (xv.ndim - 1))
        log_b = wnp.sum(_sc.gammaln(alpha)) - _sc.gammaln(wnp.sum(alpha))
        return wnp.sum(_sc.xlogy(a - 1, x), axis=0) - log_b

    def pdf(self, x: Any, alpha: Any) -> Any:
        """The Dirichlet density, exp of :meth:`logpdf`."""
        return wnp.exp(self.logpdf(x, alpha))


class _MultivariateNormal:
    """The multivariate normal distribution N(mean, cov): log f(x) = −½(k log 2π + log det Σ
    + (x − μ)ᵀ Σ⁻¹ (x − μ)), through the Cholesky factor of Σ.  The last axis of x indexes the
    components; cov may be a scalar (σ²·I), a 1-D diagonal or a full matrix."""

    name = "multivariate_normal"

    def __call__(self, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> _Frozen:
        return _Frozen(self, (), dict(mean=mean, cov=cov, allow_singular=allow_singular))

    def __repr__(self) -> str:
        return "<wengert.scipy.stats.multivariate_normal>"

    def logpdf(self, x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
        """−½(k log 2π + log det Σ + (x − μ)ᵀ Σ⁻¹ (x − μ)).  Differentiable in x, mean and cov
        (only the symmetric part of a change in cov counts).  A singular cov is an error."""
        cv, mv = _pv(cov), None if mean is None else _pv(mean)
        # the dimension as SciPy infers it: from mean, else from a 2-D cov, else 1
        dim = mv.size if mv is not None else (cv.shape[0] if cv.ndim == 2 else 1)
        xv = _pv(x)
        if xv.ndim == 0:
            x = wnp.reshape(x, (1,))
        elif xv.ndim == 1 and dim == 1:
            x = wnp.reshape(x, (-1, 1))
        if _np.shape(_pv(x))[-1] != dim:
            raise ValueError(f"multivariate_normal: x has {_np.shape(_pv(x))[-1]} components, "
                             f"the distribution {dim}")  # fmt: skip
        d = x if mean is None else x - mean
        if cv.ndim == 2:
            try:
                low = _la.cholesky(cov, lower=True)
            except _np.linalg.LinAlgError:
                raise ValueError(
                    "multivariate_normal: cov must be symmetric positive definite (singular "
                    "covariances are not supported here, even with allow_singular=True)"
                ) from None
            lead = _np.shape(_pv(d))[:-1]
            flat = wnp.reshape(d, (-1, dim))
            z = _la.solve_triangular(low, wnp.transpose(flat), lower=True)
            maha = wnp.reshape(wnp.sum(z * z, axis=0), lead)
            logdet = 2 * wnp.sum(wnp.log(low[_np.arange(dim), _np.arange(dim)]))
        else:
            if _np.any(cv <= 0):
                raise ValueError("multivariate_normal: the variances in cov must be positive")
            var = wnp.broadcast_to(cov, (dim,)) if cv.ndim == 0 else cov
            maha = wnp.sum(d * d / var, axis=-1)
            logdet = wnp.sum(wnp.log(var))
        out = -0.5 * (dim * _LOG_2PI + logdet + maha)
        return wnp.squeeze(out) if _np.ndim(_pv(out)) else out

    def pdf(self, x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
        """The multivariate normal density, exp of :meth:`logpdf`."""
        return wnp.exp(self.logpdf(x, mean, cov, allow_singular))


dirichlet = _Dirichlet()
multivariate_normal = _MultivariateNormal()
