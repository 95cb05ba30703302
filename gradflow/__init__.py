"""gradflow: a tape-based autograd framework for NVIDIA GPUs (CuPy) and CPUs (NumPy).

>>> import gradflow as gf
>>> x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import cuda, dtypes, errors
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .device import Device, device, get_default_device, set_default_device
from .dtypes import (
    bfloat16,
    bool,
    double,
    dtype,
    float,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    promote_types,
    set_default_dtype,
    short,
    uint8,
)
from .tensor import Tensor
from . import ops as _ops  # noqa: E402,F401 - binds the op methods onto Tensor
from . import autograd  # noqa: E402
from .ops.activation import elu, gelu, leaky_relu, relu, sigmoid, silu, softplus
from .ops.arithmetic import (
    abs,
    absolute,
    add,
    div,
    divide,
    floor_divide,
    mul,
    multiply,
    neg,
    negative,
    pow,
    remainder,
    rsub,
    sub,
    subtract,
    true_divide,
)
from .ops.compare import (
    allclose,
    clamp,
    clip,
    eq,
    equal,
    ge,
    gt,
    isclose,
    isfinite,
    isinf,
    isnan,
    le,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    maximum,
    minimum,
    ne,
    where,
)
from .ops.conversion import clone
from .ops.creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .ops.elementwise import (
    acos,
    asin,
    atan,
    ceil,
    cos,
    cosh,
    erf,
    exp,
    exp2,
    expm1,
    floor,
    frac,
    log,
    log1p,
    log2,
    log10,
    reciprocal,
    round,
    rsqrt,
    sign,
    sin,
    sinh,
    sqrt,
    square,
    tan,
    tanh,
    trunc,
)
from .ops.index import index_put
from .ops.linalg import bmm, dot, ger, matmul, mm, outer
from .ops.reduce import mean, sum, sum_to_size
from .ops.shape import broadcast_to, expand, permute, reshape, swapaxes, swapdims, t, transpose
from . import nn  # noqa: E402
