"""``wengert.numpy``: NumPy's namespace, with every function wengert can differentiate.

Use it as ``import wengert.numpy as np``.  Names wengert does not wrap (dtypes, constants,
array creation) are NumPy's own.  Plain ``import numpy as np`` code differentiates too:
tracers implement ``__array_ufunc__`` and ``__array_function__`` and land here.
"""

from __future__ import annotations

import numpy as _np

from . import (
    _array_methods,
    _construction,
    _contract,
    _elementwise,
    _indexing,
    _reductions,
    _shape,
    _sorting,
    fft,
    linalg,
)
from ._construction import (
    array,
    asanyarray,
    asarray,
    ascontiguousarray,
    empty_like,
    meshgrid,
    vander,
)
from ._contract import (
    convolve,
    correlate,
    cross,
    dot,
    einsum,
    inner,
    kron,
    matmul,
    outer,
    tensordot,
    vdot,
)
from ._elementwise import (  # the rest of NumPy's ufuncs, and their function relatives
    absolute,
    add,
    angle,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    around,
    astype,
    cbrt,
    ceil,
    clip,
    conj,
    conjugate,
    copysign,
    cos,
    cosh,
    deg2rad,
    degrees,
    divide,
    divmod,
    equal,
    exp,
    exp2,
    expm1,
    fabs,
    fix,
    float_power,
    floor,
    floor_divide,
    fmax,
    fmin,
    fmod,
    frexp,
    full_like,
    greater,
    greater_equal,
    heaviside,
    hypot,
    imag,
    iscomplex,
    isfinite,
    isinf,
    isnan,
    isneginf,
    isposinf,
    isreal,
    ldexp,
    less,
    less_equal,
    log,
    log1p,
    log2,
    log10,
    logaddexp,
    logaddexp2,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    maximum,
    minimum,
    mod,
    modf,
    multiply,
    negative,
    not_equal,
    ones_like,
    positive,
    power,
    rad2deg,
    radians,
    real,
    reciprocal,
    remainder,
    rint,
    round,
    sign,
    signbit,
    sin,
    sinc,
    sinh,
    spacing,
    sqrt,
    square,
    subtract,
    tan,
    tanh,
    true_divide,
    trunc,
    where,
    zeros_like,
)
from ._reductions import (
    amax,
    amin,
    average,
    cumprod,
    cumsum,
    diff,
    logsumexp,
    max,
    mean,
    median,
    min,
    nancumprod,
    nancumsum,
    nanmax,
    nanmean,
    nanmedian,
    nanmin,
    nanpercentile,
    nanprod,
    nanquantile,
    nanstd,
    nansum,
    nanvar,
    percentile,
    prod,
    ptp,
    quantile,
    std,
    sum,
    var,
)
from ._shape import (
    array_split,
    atleast_1d,
    atleast_2d,
    atleast_3d,
    broadcast_arrays,
    broadcast_to,
    column_stack,
    concatenate,
    diag,
    diagflat,
    diagonal,
    dsplit,
    dstack,
    expand_dims,
    flip,
    fliplr,
    flipud,
    hsplit,
    hstack,
    moveaxis,
    pad,
    ravel,
    repeat,
    reshape,
    roll,
    rollaxis,
    rot90,
    row_stack,
    split,
    squeeze,
    stack,
    swapaxes,
    tile,
    trace,
    transpose,
    tril,
    triu,
    vsplit,
    vstack,
)
from ._sorting import (
    argpartition,
    argwhere,
    choose,
    compress,
    digitize,
    extract,
    flatnonzero,
    lexsort,
    nanargmax,
    nanargmin,
    partition,
    searchsorted,
    select,
    sort,
    take,
    take_along_axis,
    unique,
    unique_values,
)

abs = absolute  # noqa: A001 - mirrors numpy
pi = _np.pi
e = _np.e
inf = _np.inf
nan = _np.nan
newaxis = None


def shape(a):
    """The shape of ``a`` (traced or not)."""
    return _np.shape(_plain(a))


def ndim(a):
    """The number of axes of ``a``."""
    return _np.ndim(_plain(a))


def size(a, axis=None):
    """The number of elements of ``a`` (along ``axis``)."""
    return _np.size(_plain(a), axis)


from ._update import at, copy  # noqa: E402 - functional updates; x[idx] = v on tracers


def _plain(a):
    from wengert.core import primal_value

    return primal_value(a)


def _constant_query(name):
    return _elementwise.constant_op(getattr(_np, name), "its output carries no derivative.")


argmax = _constant_query("argmax")
argmin = _constant_query("argmin")
argsort = _constant_query("argsort")
nonzero = _constant_query("nonzero")
count_nonzero = _constant_query("count_nonzero")
all = _constant_query("all")  # noqa: A001
any = _constant_query("any")  # noqa: A001
isclose = _constant_query("isclose")
allclose = _constant_query("allclose")
array_equal = _constant_query("array_equal")
iscomplexobj = _constant_query("iscomplexobj")
isrealobj = _constant_query("isrealobj")
result_type = _constant_query("result_type")


def __getattr__(name: str):
    """Everything else is NumPy's own (constants, dtypes, array creation...)."""
    try:
        return getattr(_np, name)
    except AttributeError:
        raise AttributeError(f"module 'wengert.numpy' has no attribute {name!r}") from None


# NumPy functions routed here from __array_function__ / __array_ufunc__ on traced arrays.
UFUNCS: dict = _array_methods._ufunc_table()
FUNCTIONS: dict = {}
for _name, _obj in list(globals().items()):
    if _name.startswith("_") or _name in ("UFUNCS", "FUNCTIONS", "annotations"):
        continue
    _target = getattr(_np, _name, None)
    if callable(_obj) and callable(_target) and not isinstance(_target, _np.ufunc):
        FUNCTIONS[_target] = _obj
FUNCTIONS[_np.amax] = amax
FUNCTIONS[_np.amin] = amin
FUNCTIONS.update(linalg._routes())
FUNCTIONS.update(fft._routes())

_array_methods.install()

__all__ = [
    n
    for n in globals()
    if not n.startswith("_") and n not in ("UFUNCS", "FUNCTIONS", "annotations")
]
