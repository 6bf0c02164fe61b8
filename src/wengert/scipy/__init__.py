"""``wengert.scipy``: differentiable versions of SciPy functions, under SciPy's module names.

Use it as ``import wengert.scipy as wsp`` (``wsp.special.gammaln``, ``wsp.stats.norm.logpdf``,
``wsp.linalg.expm``, ``wsp.signal.convolve``).  SciPy computes the values; wengert supplies the
derivative rules.  SciPy is optional for ``import wengert`` but required here.
"""

from __future__ import annotations

try:
    import scipy as _scipy  # noqa: F401
except ImportError as _err:  # pragma: no cover - exercised only without SciPy
    raise ImportError(
        "wengert.scipy needs SciPy, which is not installed: run `pip install scipy` "
        "(or `pip install wengert[scipy]`). The rest of wengert works without it."
    ) from _err

from . import linalg, signal, special, stats

__all__ = ["linalg", "signal", "special", "stats"]
