"""MATLAB's ``dlarray``: an array with optional format labels (S, C, B, T, U).

The data is a NumPy array or a wengert tracer (``_value``); the labels (``_fmt``) are kept in
MATLAB's canonical order SCBTU, and operations carry them along by the rules in ``dlarray``'s
docstring.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as _np

from wengert.core import Tracer, primal_value

__all__ = ["dlarray", "isdlarray", "dims", "finddim", "stripdims", "extractdata"]

_ORDER = "SCBTU"
_SINGLE = "CBT"  # labels that may occur at most once


def _wnp():
    import wengert.numpy as wnp

    return wnp


# ---------------------------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------------------------


def _wrap(value: Any, fmt: str = "") -> dlarray:
    """A dlarray around ``value`` with labels ``fmt`` (already canonical): no checks, no copy."""
    out = object.__new__(dlarray)
    out._value = value
    out._fmt = fmt
    return out


def _check_dtype(value: Any) -> None:
    dt = _np.dtype(value.dtype)
    if dt.kind in "fcb":
        return
    if dt.kind in "iu":
        raise TypeError(
            f"dlarray data must be floating point (single/double) or logical, got {dt}; MATLAB "
            "refuses integer data too. Convert first, e.g. dlarray(X.astype(np.float32)) or "
            "dlarray(X.astype(np.float64))."
        )
    raise TypeError(f"dlarray data must be floating point (single/double) or logical, got {dt}.")


def _parse_fmt(fmt: Any, who: str = "dlarray") -> str:
    if not isinstance(fmt, str):
        raise TypeError(f"{who}: a format is a string of the letters S, C, B, T, U; got {fmt!r}.")
    f = fmt.upper()
    bad = sorted({c for c in f if c not in _ORDER})
    if bad:
        raise ValueError(
            f"{who}: format {fmt!r} has unknown label(s) {''.join(bad)!r}; use S (spatial), "
            "C (channel), B (batch), T (time) and U (unspecified)."
        )
    for c in _SINGLE:
        if f.count(c) > 1:
            raise ValueError(
                f"{who}: format {fmt!r} has more than one {c!r}; C, B and T may occur once each."
            )
    return f


def _canonical(fmt: Any, ndim: int) -> tuple[str, tuple[int, ...], int]:
    """Validate ``fmt`` for data of ``ndim`` axes: (canonical labels, the permutation to apply,
    the number of trailing singleton axes to append first)."""
    f = _parse_fmt(fmt)
    if len(f) < ndim:
        raise ValueError(
            f"dlarray: format {fmt!r} labels {len(f)} dimension(s) but the data has {ndim}; give "
            "one label per dimension (extra labels add trailing singleton dimensions)."
        )
    perm = tuple(sorted(range(len(f)), key=lambda i: (_ORDER.index(f[i]), i)))
    return "".join(f[i] for i in perm), perm, len(f) - ndim


def _as_value(X: Any) -> Any:
    """User data as an ndarray (a copy: dlarray has value semantics) or a tracer."""
    if isinstance(X, Tracer):
        return X
    if isinstance(X, (bool, int, float, complex, list, tuple)):
        value = _np.asarray(X)
        if value.dtype.kind in "iu":
            value = value.astype(_np.float64)  # Python numbers are doubles, as in MATLAB
        return value
    return _np.array(X)


def _construct(X: Any, fmt: str | None) -> tuple[Any, str]:
    if isinstance(X, dlarray):
        if fmt is None:
            return X._value, X._fmt
        value = X._value  # MATLAB: a new format replaces the old one, on the stored data
    else:
        value = _as_value(X)
    _check_dtype(value)
    if fmt is None or fmt == "":
        return value, ""
    f, perm, extra = _canonical(fmt, value.ndim)
    if extra:
        value = _wnp().reshape(value, tuple(value.shape) + (1,) * extra)
    if perm != tuple(range(len(perm))):
        value = _wnp().transpose(value, perm)
    return value, f


# ---------------------------------------------------------------------------------------------
# Label propagation helpers
# ---------------------------------------------------------------------------------------------


def _ndim(v: Any) -> int:
    return _np.ndim(primal_value(v))


def _unwrap(x: Any) -> Any:
    return x._value if isinstance(x, dlarray) else x


def _positions(fmt: str) -> dict:
    """label -> list of axes carrying it, in order."""
    pos: dict = {}
    for i, c in enumerate(fmt):
        pos.setdefault(c, []).append(i)
    return pos


def _union(fmts: list[str]) -> str:
    counts = {c: max(f.count(c) for f in fmts) for c in _ORDER}
    return "".join(c * counts[c] for c in _ORDER)


def _expand_to(value: Any, fmt: str, out: str) -> Any:
    """``value`` (labels ``fmt``) reshaped to broadcast against labels ``out``: a singleton
    axis for each label it lacks.  Both are canonical, so no transpose is needed."""
    if fmt == out:
        return value
    shape = list(_np.shape(primal_value(value)))
    mine = _positions(fmt)
    seen: dict = {}
    new = []
    for c in out:
        k = seen.get(c, 0)
        seen[c] = k + 1
        axes = mine.get(c, [])
        new.append(shape[axes[k]] if k < len(axes) else 1)
    return _wnp().reshape(value, tuple(new))


def _align(args: list, who: str) -> tuple[list, str]:
    """The label rule for element-wise operations: the operands' values, made to broadcast,
    and the result's labels."""
    fmts = [a._fmt for a in args if isinstance(a, dlarray) and a._fmt]
    if not fmts:
        return [_unwrap(a) for a in args], ""
    out = fmts[0] if all(f == fmts[0] for f in fmts) else _union(fmts)
    same = all(f == out for f in fmts)
    vals = []
    for a in args:
        if isinstance(a, dlarray) and a._fmt:
            vals.append(a._value if a._fmt == out else _expand_to(a._value, a._fmt, out))
            continue
        v = _unwrap(a)
        nd = _ndim(v) if v is not None else 0
        if nd and not (same and nd == len(out)):
            if same:
                why = f"has {nd} dimension(s) while the dlarray has format {out!r}"
            else:
                why = f"cannot be aligned with dlarrays of different formats {sorted(set(fmts))}"
            raise ValueError(
                f"{who}: an unformatted operand of shape {_np.shape(primal_value(v))} {why}. "
                "Give it labels with dlarray(v, fmt) so it aligns by label, or give it one axis "
                "per label (size 1 where it should broadcast)."
            )
        vals.append(v)
    return vals, out


def _rewrap(out: Any, fmt: str) -> Any:
    """Results of a computation on dlarray data as dlarrays (integer results stay plain)."""
    if type(out) is _np.ndarray and out.dtype.kind in "fcb":  # the common case, first
        return _wrap(out, fmt if len(fmt) == out.ndim else "")
    if isinstance(out, tuple):
        return tuple(_rewrap(o, fmt) for o in out)
    if isinstance(out, list):
        return [_rewrap(o, fmt) for o in out]
    if isinstance(out, Tracer):
        return _wrap(out, fmt if len(fmt) == out.ndim else "")
    if isinstance(out, (_np.ndarray, _np.generic)):
        if out.dtype.kind not in "fcb":
            return out
        out = _np.asarray(out)
        return _wrap(out, fmt if len(fmt) == out.ndim else "")
    return out


def _has_tracer(obj: Any) -> bool:
    if isinstance(obj, dlarray):
        return isinstance(obj._value, Tracer)
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_tracer(o) for o in obj)
    if isinstance(obj, dict):
        return any(_has_tracer(o) for o in obj.values())
    return False


def _strip(obj: Any) -> Any:
    """Replace every dlarray inside ``obj`` (lists, tuples, dicts) by its data."""
    if isinstance(obj, dlarray):
        return obj._value
    if isinstance(obj, list):
        return [_strip(o) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_strip(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items()}
    return obj


def _first_dl(obj: Any) -> dlarray | None:
    if isinstance(obj, dlarray):
        return obj
    if isinstance(obj, (list, tuple)):
        for o in obj:
            d = _first_dl(o)
            if d is not None:
                return d
    return None


def _constant_call(f, args, kwargs, name):
    """Call the NumPy function ``f`` on plain data (no derivative is possible)."""
    if _has_tracer(args) or _has_tracer(kwargs):
        raise TypeError(
            f"{name} has no derivative rule in wengert.numpy and a dlarray argument is traced; "
            "use the functions of wengert.numpy, or extractdata(x) if the value is all you need."
        )
    args = [primal_value(a) for a in _strip(args)]
    return f(*args, **{k: primal_value(v) for k, v in _strip(kwargs).items()})


# ---------------------------------------------------------------------------------------------
# Function handlers (NumPy's __array_function__ / ufuncs / methods all come here)
# ---------------------------------------------------------------------------------------------

_UNSET = object()


def _norm_axes(axis, nd) -> tuple:
    axes = (axis,) if isinstance(axis, (int, _np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = operator.index(a)
        if not -nd <= a < nd:
            raise _np.exceptions.AxisError(a, nd)
        out.append(a % nd)
    return tuple(sorted(set(out)))


def _reduction(f):
    """A reduction: MATLAB keeps the reduced axes (size 1) and their labels."""

    def handler(x, axis=None, *args, keepdims=_UNSET, **kwargs):
        if not isinstance(x, dlarray):
            x = dlarray(x)
        v, fmt = x._value, x._fmt
        kw = dict(kwargs)
        if not fmt or (axis is None and keepdims is not True):
            if keepdims is not _UNSET:
                kw["keepdims"] = keepdims
            return _rewrap(f(v, axis, *args, **kw), "")
        if axis is None:
            return _rewrap(f(v, axis, *args, keepdims=True, **kw), fmt)
        axes = _norm_axes(axis, len(fmt))
        if keepdims is False:
            out_fmt = "".join(c for i, c in enumerate(fmt) if i not in axes)
            return _rewrap(f(v, axes, *args, keepdims=False, **kw), out_fmt)
        return _rewrap(f(v, axes, *args, keepdims=True, **kw), fmt)

    return handler


def _along_axis(f):
    """Shape-preserving along an axis (cumsum, sort...): labels kept unless the data is
    flattened (axis=None)."""

    def handler(x, axis=_UNSET, *args, **kwargs):
        if not isinstance(x, dlarray):
            x = dlarray(x)
        if axis is _UNSET:
            out = f(x._value, *args, **kwargs)
        else:
            out = f(x._value, axis, *args, **kwargs)
        return _rewrap(out, x._fmt)

    return handler


def _elementwise(f, name):
    """Every array argument aligned by the element-wise label rule."""

    def handler(*args, **kwargs):
        vals, fmt = _align(list(args), name)
        return _rewrap(f(*vals, **_strip(kwargs)), fmt)

    return handler


def _same_labels(f):
    """Shape-preserving on the first argument: labels kept."""

    def handler(x, *args, **kwargs):
        fmt = x._fmt if isinstance(x, dlarray) else ""
        return _rewrap(f(_unwrap(x), *_strip(args), **_strip(kwargs)), fmt)

    return handler


def _squeeze(x, axis=None):
    if not isinstance(x, dlarray):
        x = dlarray(x)
    shape = x.shape
    if axis is None:
        axes = tuple(i for i, n in enumerate(shape) if n == 1)
    else:
        axes = _norm_axes(axis, len(shape))
    fmt = "".join(c for i, c in enumerate(x._fmt) if i not in axes) if x._fmt else ""
    return _rewrap(_wnp().squeeze(x._value, axis=axes), fmt)


def _concatenate(arrays, axis=0, **kwargs):
    arrays = list(arrays)
    fmts = {a._fmt for a in arrays if isinstance(a, dlarray) and a._fmt}
    if len(fmts) > 1:
        raise ValueError(
            f"concatenate: the dlarrays have different formats {sorted(fmts)}; MATLAB's cat "
            "needs matching formats. Relabel with dlarray(x, fmt) or stripdims first."
        )
    fmt = fmts.pop() if fmts else ""
    if fmt:
        for a in arrays:
            if not (isinstance(a, dlarray) and a._fmt) and _ndim(_unwrap(a)) != len(fmt):
                raise ValueError(
                    f"concatenate: an unformatted array of {_ndim(_unwrap(a))} dimension(s) "
                    f"cannot join dlarrays of format {fmt!r}."
                )
    out = _wnp().concatenate([_unwrap(a) for a in arrays], axis=axis, **kwargs)
    return _rewrap(out, fmt if axis is not None else "")


_HANDLERS: dict = {}


def _build_handlers() -> None:
    wnp = _wnp()
    for name in ("sum", "mean", "prod", "max", "min", "amax", "amin", "std", "var", "median",
                 "nansum", "nanmean", "nanprod", "nanmax", "nanmin", "nanstd", "nanvar",
                 "nanmedian", "ptp"):  # fmt: skip
        _HANDLERS[getattr(_np, name)] = _reduction(getattr(wnp, name))
    for name in ("any", "all"):
        _HANDLERS[getattr(_np, name)] = _reduction(getattr(_np, name))
    for name in ("cumsum", "cumprod", "nancumsum", "nancumprod", "sort", "flip"):
        _HANDLERS[getattr(_np, name)] = _along_axis(getattr(wnp, name))
    for name in (
        ("where", "clip", "nan_to_num") if hasattr(wnp, "nan_to_num") else ("where", "clip")
    ):
        _HANDLERS[getattr(_np, name)] = _elementwise(getattr(wnp, name), f"numpy.{name}")
    for name in ("copy", "real", "imag", "conj", "conjugate", "round", "around", "fix",
                 "zeros_like", "ones_like", "full_like", "empty_like"):  # fmt: skip
        f = getattr(wnp, name, None)
        if f is not None and hasattr(_np, name):
            _HANDLERS[getattr(_np, name)] = _same_labels(f)
    if hasattr(_np, "astype"):
        _HANDLERS[_np.astype] = lambda x, dtype, **kw: x.astype(dtype, **kw)
    _HANDLERS[_np.squeeze] = _squeeze
    _HANDLERS[_np.concatenate] = _concatenate
    _HANDLERS[_np.shape] = lambda a: tuple(_np.shape(primal_value(_unwrap(a))))
    _HANDLERS[_np.ndim] = lambda a: _ndim(_unwrap(a))
    _HANDLERS[_np.size] = lambda a, axis=None: _np.size(primal_value(_unwrap(a)), axis)


def _dispatch(func, args, kwargs):
    if not _HANDLERS:
        _build_handlers()
    h = _HANDLERS.get(func)
    if h is not None:
        return h(*args, **kwargs)
    wnp = _wnp()
    f = wnp.FUNCTIONS.get(func)
    name = f"numpy.{getattr(func, '__name__', func)}"
    if f is None:
        out = _constant_call(func, args, kwargs, name)
    else:
        out = f(*_strip(args), **_strip(kwargs))
    return _rewrap(out, "")


_UFUNC_REDUCE = {_np.add: _np.sum, _np.multiply: _np.prod, _np.maximum: _np.max,
                 _np.minimum: _np.min, _np.logical_and: _np.all, _np.logical_or: _np.any}  # fmt: skip


def _ufunc(ufunc, method, inputs, kwargs):
    if kwargs.get("out") is not None:
        raise TypeError(
            f"numpy.{ufunc.__name__}(..., out=...) on a dlarray: dlarrays are not written in "
            "place; use the returned value."
        )
    kwargs.pop("out", None)
    if method == "reduce" and ufunc in _UFUNC_REDUCE:
        axis = kwargs.pop("axis", 0)
        return _dispatch(_UFUNC_REDUCE[ufunc], (inputs[0], axis), kwargs)
    if method != "__call__":
        raise TypeError(f"numpy.{ufunc.__name__}.{method} is not supported on dlarrays.")
    vals, fmt = _align(list(inputs), f"numpy.{ufunc.__name__}")
    dtype = kwargs.pop("dtype", None)
    f = _wnp().UFUNCS.get(ufunc)
    if f is None:
        out = _constant_call(ufunc, vals, kwargs, f"numpy.{ufunc.__name__}")
    else:
        if kwargs:
            raise TypeError(
                f"numpy.{ufunc.__name__}: arguments {sorted(kwargs)} are not supported on dlarrays"
            )
        out = f(*vals)
    if dtype is not None:
        out = _wnp().astype(out, dtype)
    return _rewrap(out, fmt)


_OPERANDS = (Tracer, _np.ndarray, _np.generic, int, float, complex, bool)
_PY_SCALARS = (int, float, bool)


def _binary(wname):
    """The operator methods for the wengert.numpy function ``wname`` (with fast paths for
    a Python scalar or an equally formatted dlarray as the other operand)."""
    fn = []

    def f():
        if not fn:
            fn.append(getattr(_wnp(), wname))
        return fn[0]

    def op(self, other):
        t = type(other)
        if t in _PY_SCALARS or (t is dlarray and other._fmt == self._fmt):
            return _rewrap(f()(self._value, _unwrap(other)), self._fmt)
        if t is not dlarray and not isinstance(other, _OPERANDS):
            return NotImplemented
        vals, fmt = _align([self, other], wname)
        return _rewrap(f()(*vals), fmt)

    def rop(self, other):
        if type(other) in _PY_SCALARS:
            return _rewrap(f()(other, self._value), self._fmt)
        if not isinstance(other, (dlarray,) + _OPERANDS):
            return NotImplemented
        vals, fmt = _align([other, self], wname)
        return _rewrap(f()(*vals), fmt)

    return op, rop


# ---------------------------------------------------------------------------------------------
# Indexing
# ---------------------------------------------------------------------------------------------


def _is_index_array(k) -> bool:
    return isinstance(k, (list, _np.ndarray, Tracer)) and not isinstance(k, str)


def _index_fmt(fmt: str, key: tuple, ndim: int) -> str:
    if not fmt:
        return ""
    parts = []
    for k in key:
        if k is None:
            return ""
        if _is_index_array(k):
            a = _np.asarray(k)
            if a.ndim != 1:
                return ""
            parts.append("arr")
        elif k is Ellipsis:
            parts.append("...")
        elif isinstance(k, slice):
            parts.append("slice")
        else:
            parts.append("int")
    if parts.count("arr") > 1 or parts.count("...") > 1:
        return ""
    n_used = sum(1 for p in parts if p != "...")
    if "..." in parts:
        i = parts.index("...")
        parts[i : i + 1] = ["slice"] * (ndim - n_used)
    parts += ["slice"] * (ndim - len(parts))
    return "".join(c for c, p in zip(fmt, parts) if p != "int")


def _plain_key(key):
    if isinstance(key, dlarray):
        return _np.asarray(primal_value(key._value))
    if isinstance(key, tuple):
        return tuple(_plain_key(k) for k in key)
    if isinstance(key, Tracer):
        return _np.asarray(primal_value(key))
    return key


# ---------------------------------------------------------------------------------------------
# The class
# ---------------------------------------------------------------------------------------------


class dlarray:
    """A deep-learning array: data plus optional dimension labels, in MATLAB's canonical order.

    ``dlarray(X)`` wraps ``X`` (unformatted); ``dlarray(X, fmt)`` labels its axes with the
    letters of ``fmt`` (S spatial, C channel, B batch, T time, U unspecified) and permutes the
    data so the labels read in the order S…, C, B, T, U…; ``dlarray(Y, fmt)`` of a dlarray Y
    replaces its format.  The data stays single (float32) or double as given.

    Label rules (MATLAB's where it has them; axes are NumPy's, 0-based)
    --------------------------------------------------------------------
    * Construction: ``dlarray(X, fmt)`` permutes X to the canonical order (``dlarray(randn(3,4),
      "TS")`` has ``dims == "ST"`` and shape (4, 3)); extra labels add trailing singleton axes.
      C, B, T may occur once, S and U any number of times.  Data must be single/double/complex or
      logical; NumPy integer arrays are refused (MATLAB refuses them too), Python ints become
      float64.  ``dlarray(v, "C")`` of a 1-D ``v`` stays 1-D (MATLAB adds a "U" column axis).
    * Element-wise (ufuncs, operators, ``where``, ``clip``...): labels kept.  Two formatted
      operands are aligned by label, not by position (the k-th S with the k-th S, C with C...); a
      label missing from one operand is a singleton axis there; the result has the union of the
      labels in canonical order.  A formatted operand with an unformatted one (plain array or
      unformatted dlarray) is aligned axis by axis and needs the same number of axes (or a
      scalar); anything else is an error rather than a guess.
    * Reductions (NumPy's sum, mean, prod, max, min, std, var, median, any, all... and the
      methods) over given axes keep those axes with size 1 and their labels, as MATLAB keeps
      dimensions; pass ``keepdims=False`` for NumPy's behaviour (the axes and their labels go).
      ``axis=None`` reduces everything to an unformatted scalar.  Unformatted dlarrays follow
      NumPy exactly.  (``wengert.numpy`` functions called directly pass ``keepdims=False``
      explicitly, so they drop the axes.)
    * Cumulative ops, ``sort`` along an axis, ``copy``, ``astype``, ``squeeze`` (labels of the
      removed singleton axes go), and ``concatenate`` of equally formatted arrays keep labels.
    * ``reshape``, ``ravel``, ``transpose``/``.T``/``permute``, ``swapaxes``, ``moveaxis``,
      ``expand_dims``, ``stack``, ``matmul``/``dot``/``einsum`` and any other function return
      unformatted dlarrays (as MATLAB's reshape does).
    * Indexing: slices keep the label of their axis, an integer index removes the axis and its
      label, one 1-D integer/boolean index array keeps its axis' label; ``None``, several index
      arrays or an n-D mask give an unformatted result.  ``x[idx] = v`` is a functional update
      (traced values stay traced) and keeps the labels.
    * ``extractdata``, ``float(x)``, ``np.asarray(x)``: plain data; the last two refuse a traced
      dlarray (``extractdata`` drops the trace on purpose, as MATLAB's does).
    """

    __slots__ = ("_value", "_fmt")
    __array_priority__ = 2000.0  # above Tracer's, so mixed operations come to dlarray

    def __init__(self, X: Any, fmt: str | None = None) -> None:
        value, f = _construct(X, fmt)
        self._value = value
        self._fmt = f

    # properties ----------------------------------------------------------------------------
    @property
    def fmt(self) -> str:
        """The labels, one per axis, in canonical order ("" when unformatted)."""
        return self._fmt

    @property
    def shape(self) -> tuple:
        return tuple(self._value.shape)

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def dtype(self) -> _np.dtype:
        return self._value.dtype

    @property
    def size(self) -> int:
        return int(self._value.size)

    @property
    def T(self) -> dlarray:
        """The transpose (unformatted, as MATLAB's permute of a formatted array)."""
        return _rewrap(_wnp().transpose(self._value), "")

    @property
    def mT(self) -> dlarray:
        return _rewrap(_wnp().swapaxes(self._value, -1, -2), "")

    @property
    def real(self) -> dlarray:
        return _rewrap(_wnp().real(self._value), self._fmt)

    @property
    def imag(self) -> dlarray:
        return _rewrap(_wnp().imag(self._value), self._fmt)

    # Python protocols ----------------------------------------------------------------------
    def __repr__(self) -> str:
        tag = f"fmt={self._fmt!r}" if self._fmt else "unformatted"
        traced = ", traced" if isinstance(self._value, Tracer) else ""
        data = _np.asarray(primal_value(self._value))
        return f"dlarray({data!r}, {tag}{traced})"

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d dlarray")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __hash__(self) -> int:
        return id(self)

    def __reduce__(self):
        return (_wrap, (_np.asarray(self._plain("pickle")), self._fmt))

    def __copy__(self) -> dlarray:
        return _wrap(self._value, self._fmt)

    def __deepcopy__(self, memo: dict) -> dlarray:
        v = self._value
        return _wrap(v if isinstance(v, Tracer) else v.copy(), self._fmt)

    def _plain(self, what: str) -> Any:
        if isinstance(self._value, Tracer):
            raise TypeError(
                f"cannot {what} a traced dlarray: its derivative would be lost silently. Use "
                "extractdata(x) for the plain (untraced) data."
            )
        return self._value

    def __float__(self) -> float:
        return float(self._plain("convert to float"))

    def __int__(self) -> int:
        return int(self._plain("convert to int"))

    def __complex__(self) -> complex:
        return complex(self._plain("convert to complex"))

    def __bool__(self) -> bool:
        return bool(primal_value(self._value))

    def __array__(self, dtype: Any = None, copy: Any = None) -> _np.ndarray:
        v = _np.asarray(self._plain("convert to a NumPy array (np.asarray)"))
        return v if dtype is None else v.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _dispatch(func, args, kwargs)

    # indexing ------------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> dlarray:
        key = _plain_key(key)
        tkey = key if isinstance(key, tuple) else (key,)
        fmt = _index_fmt(self._fmt, tkey, self.ndim)
        out = self._value[key]
        return _rewrap(out if isinstance(out, Tracer) else _np.asarray(out), fmt)

    def __setitem__(self, key: Any, value: Any) -> None:
        key = _plain_key(key)
        v = _unwrap(value)
        self._value = _wnp().at(self._value)[key].set(v)

    # methods (each routes through the same handlers as NumPy's functions) -------------------
    def sum(self, axis=None, **kw):
        return _dispatch(_np.sum, (self, axis), kw)

    def mean(self, axis=None, **kw):
        return _dispatch(_np.mean, (self, axis), kw)

    def prod(self, axis=None, **kw):
        return _dispatch(_np.prod, (self, axis), kw)

    def max(self, axis=None, **kw):
        return _dispatch(_np.max, (self, axis), kw)

    def min(self, axis=None, **kw):
        return _dispatch(_np.min, (self, axis), kw)

    def std(self, axis=None, **kw):
        return _dispatch(_np.std, (self, axis), kw)

    def var(self, axis=None, **kw):
        return _dispatch(_np.var, (self, axis), kw)

    def any(self, axis=None, **kw):
        return _dispatch(_np.any, (self, axis), kw)

    def all(self, axis=None, **kw):
        return _dispatch(_np.all, (self, axis), kw)

    def cumsum(self, axis=None, **kw):
        return _dispatch(_np.cumsum, (self, axis), kw)

    def cumprod(self, axis=None, **kw):
        return _dispatch(_np.cumprod, (self, axis), kw)

    def argmax(self, axis=None, **kw):
        return _np.argmax(primal_value(self._value), axis=axis, **kw)

    def argmin(self, axis=None, **kw):
        return _np.argmin(primal_value(self._value), axis=axis, **kw)

    def reshape(self, *shape, **kw):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _rewrap(_wnp().reshape(self._value, tuple(shape), **kw), "")

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = axes[0]
        return _rewrap(_wnp().transpose(self._value, tuple(axes) or None), "")

    def ravel(self, order="C"):
        return _rewrap(_wnp().ravel(self._value, order), "")

    def flatten(self, order="C"):
        return self.ravel(order)

    def squeeze(self, axis=None):
        return _squeeze(self, axis)

    def swapaxes(self, a, b):
        return _rewrap(_wnp().swapaxes(self._value, a, b), "")

    def astype(self, dtype, **kw):
        dt = _np.dtype(dtype)
        if dt.kind not in "fcb":
            raise TypeError(
                f"dlarray.astype({dt}): dlarray data is single, double or logical; use "
                "extractdata(x).astype(...) for other types."
            )
        return _rewrap(_wnp().astype(self._value, dt), self._fmt)

    def copy(self):
        return _wrap(
            self._value if isinstance(self._value, Tracer) else self._value.copy(), self._fmt
        )

    def clip(self, a_min=None, a_max=None):
        return _dispatch(_np.clip, (self, a_min, a_max), {})

    def round(self, decimals=0):
        return _rewrap(_wnp().round(self._value, decimals), self._fmt)

    def conj(self):
        return _rewrap(_wnp().conj(self._value), self._fmt)

    conjugate = conj

    def dot(self, other):
        return _rewrap(_wnp().dot(self._value, _unwrap(other)), "")

    def item(self, *args):
        return self._plain("convert to a Python scalar").item(*args)

    def tolist(self):
        return self._plain("convert to a list").tolist()

    # unary operators -----------------------------------------------------------------------
    def __neg__(self):
        return _rewrap(_wnp().negative(self._value), self._fmt)

    def __pos__(self):
        return self

    def __abs__(self):
        return _rewrap(_wnp().absolute(self._value), self._fmt)

    def __invert__(self):
        return _rewrap(_np.logical_not(primal_value(self._value)), self._fmt)

    def __matmul__(self, other):
        return _rewrap(_wnp().matmul(self._value, _unwrap(other)), "")

    def __rmatmul__(self, other):
        return _rewrap(_wnp().matmul(_unwrap(other), self._value), "")


for _name, _wname in (
    ("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "true_divide"),
    ("floordiv", "floor_divide"), ("mod", "mod"), ("pow", "power"),
    ("and", "logical_and"), ("or", "logical_or"), ("xor", "logical_xor"),
):  # fmt: skip
    _op, _rop = _binary(_wname)
    setattr(dlarray, f"__{_name}__", _op)
    setattr(dlarray, f"__r{_name}__", _rop)
for _name, _wname in (("lt", "less"), ("le", "less_equal"), ("gt", "greater"),
                      ("ge", "greater_equal"), ("eq", "equal"), ("ne", "not_equal")):  # fmt: skip
    setattr(dlarray, f"__{_name}__", _binary(_wname)[0])
del _name, _wname, _op, _rop


# ---------------------------------------------------------------------------------------------
# Label helpers
# ---------------------------------------------------------------------------------------------


def isdlarray(x: Any) -> bool:
    """True when ``x`` is a dlarray."""
    return isinstance(x, dlarray)


def dims(x: dlarray) -> str:
    """The format labels of ``x`` ("" when unformatted), as MATLAB's ``dims``."""
    if not isinstance(x, dlarray):
        raise TypeError(f"dims expects a dlarray, got {type(x).__name__}.")
    return x._fmt


def finddim(x: dlarray, label: str) -> list[int]:
    """The (0-based) axes of ``x`` labelled ``label`` (one of S, C, B, T, U); ``[]`` if none.

    MATLAB's ``finddim`` returns 1-based dimension numbers; these are NumPy axes.
    """
    if not isinstance(x, dlarray):
        raise TypeError(f"finddim expects a dlarray, got {type(x).__name__}.")
    if not isinstance(label, str) or len(label) != 1 or label.upper() not in _ORDER:
        raise ValueError(f"finddim: label must be one of 'S', 'C', 'B', 'T', 'U'; got {label!r}.")
    lab = label.upper()
    return [i for i, c in enumerate(x._fmt) if c == lab]


def stripdims(x: dlarray, fmt: str | None = None) -> dlarray:
    """``x`` without its labels: an unformatted dlarray with the same (possibly traced) data.

    ``stripdims(x, fmt)`` also orders the axes as the labels in ``fmt`` say (a permutation of
    ``dims(x)``), e.g. ``stripdims(x, "CBSS")`` of an "SSCB" array has shape (C, B, H, W).
    """
    if not isinstance(x, dlarray):
        raise TypeError(f"stripdims expects a dlarray, got {type(x).__name__}.")
    if fmt is None:
        return _wrap(x._value, "")
    f = _parse_fmt(fmt, "stripdims")
    if sorted(f) != sorted(x._fmt):
        raise ValueError(
            f"stripdims: format {fmt!r} must use the labels of the dlarray, {x._fmt!r}, each once."
        )
    return _wrap(_wnp().transpose(x._value, _order(x._fmt, f)), "")


def _order(have: str, want: str) -> tuple[int, ...]:
    """The axes of labels ``have`` that, taken in this order, read as ``want``."""
    pos = _positions(have)
    seen: dict = {}
    perm = []
    for c in want:
        k = seen.get(c, 0)
        seen[c] = k + 1
        perm.append(pos[c][k])
    return tuple(perm)


def extractdata(x: Any) -> _np.ndarray:
    """The plain data of ``x``: a NumPy array with every level of tracing removed (the
    derivative trace ends here, as MATLAB's ``extractdata``)."""
    if isinstance(x, dlarray):
        x = x._value
    return _np.asarray(primal_value(x))
