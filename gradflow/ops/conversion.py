"""Moving and casting: to(), clone(), contiguous() and the dtype shortcuts.

``to`` is differentiable: the gradient goes back to the source device and
dtype. It is the only way tensors change devices; nothing moves silently.
"""

from __future__ import annotations

import builtins

from .. import dtypes
from ..autograd.function import Function
from ..device import Device, resolve
from ..dtypes import dtype as dtype_class
from ..dtypes import from_numpy_dtype, numpy_dtype, to_dtype
from ..errors import ArgumentTypeError, ArgumentValueError
from ..tensor import Tensor


class ToCopy(Function):
    @staticmethod
    def forward(ctx, x, dtype, device):
        source = ctx.device
        ctx.source_dtype = x.dtype
        ctx.source_device = source
        if dtype is not None:
            x = x.astype(numpy_dtype(dtype), copy=device is None or device is source)
        if device is not None and device is not source:
            ctx.out_device = device
            if source.type == "cpu":
                x = device.backend.from_host(x)
            elif device.type == "cpu":
                x = source.backend.to_host(x)
            else:
                x = device.backend.asarray(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad.to(device=ctx.source_device, dtype=from_numpy_dtype(ctx.source_dtype))


# Python types that torch accepts as dtypes in to(): float means float64 there, not the default float.
_PYTHON_DTYPES = {builtins.float: dtypes.float64, builtins.int: dtypes.int64, builtins.bool: dtypes.bool}
_DEVICE_TYPES = ("cpu", "cuda", "auto")


def _to_dtype_arg(value):
    """A dtype argument of to(): a gradflow dtype, a Python type, or None (keep the dtype)."""
    if value is None or isinstance(value, dtype_class):
        return value
    if isinstance(value, builtins.type) and value in _PYTHON_DTYPES:
        return _PYTHON_DTYPES[value]
    raise ArgumentTypeError(
        f"to: dtype must be a gradflow dtype, got {value!r}; pass gradflow.{_dtype_name(value) or 'float64'}"
    )


def _dtype_name(value) -> str | None:
    """The gradflow name of what a user meant as a dtype (np.float64, "float64"), for the fix in a message."""
    try:
        return to_dtype(value).name
    except (TypeError, ValueError, SyntaxError):
        return None


def _to_device_arg(value):
    """A device argument of to(): a Device, a device string such as 'cuda:0', or None (keep the device)."""
    if value is None or isinstance(value, Device):
        return value
    if isinstance(value, str) and value.split(":")[0] in _DEVICE_TYPES:
        return value
    if isinstance(value, str):
        name = _dtype_name(value)
        hint = f"; for a dtype pass gradflow.{name}" if name else ""
        raise ArgumentValueError(f"to: invalid device string {value!r}; use 'cpu', 'cuda' or 'cuda:N'{hint}")
    raise ArgumentTypeError(
        f"to: device must be a string or a gradflow.Device, got {type(value).__name__}; pass e.g. 'cuda:0'"
    )


def parse_to_args(args, kwargs):
    """``to``'s forms (device, dtype, both, a tensor; keywords device=, dtype=, copy=) as (dtype, device, copy).

    Like torch, ``None`` keeps the dtype and device, Python ``float``/``int``/``bool`` are float64/int64/bool,
    and a string is always a device (``to("float64")`` is an error that says to pass ``gradflow.float64``).
    """
    dtype = _to_dtype_arg(kwargs.pop("dtype", None))
    device = _to_device_arg(kwargs.pop("device", None))
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise ArgumentTypeError(f"to: unexpected keyword arguments {sorted(kwargs)}; to() takes dtype, device, copy")
    for arg in args:
        if arg is None:
            continue
        if isinstance(arg, Tensor):
            dtype, device = arg._dtype, arg._device
        elif isinstance(arg, (dtype_class, builtins.type)):
            dtype = _to_dtype_arg(arg)
        elif isinstance(arg, builtins.bool):
            copy = arg if arg else copy
        elif isinstance(arg, (Device, str)):
            device = _to_device_arg(arg)
        else:
            raise ArgumentTypeError(
                f"to: can't interpret {arg!r} (a {type(arg).__name__}) as a device or a dtype; "
                "pass a gradflow dtype such as gradflow.float64, a device such as 'cuda', or a Tensor"
            )
    return dtype, (None if device is None else resolve(device)), copy


def to(input: Tensor, *args, **kwargs) -> Tensor:
    """Return this tensor on another device and/or dtype: ``x.to('cuda')``, ``x.to(gradflow.float64)``,
    ``x.to(device, dtype)``, ``x.to(other_tensor)``. Returns ``input`` itself when nothing changes."""
    dtype, device, copy = parse_to_args(args, kwargs)
    if dtype is input._dtype:
        dtype = None
    if device is input._device:
        device = None
    if dtype is None and device is None:
        return clone(input) if copy else input
    return ToCopy.apply(input, dtype, device)


def cpu(input: Tensor) -> Tensor:
    """This tensor on the CPU."""
    return to(input, "cpu")


def cuda(input: Tensor, device=None) -> Tensor:
    """This tensor on a CUDA device (the current one by default)."""
    return to(input, "cuda" if device is None else (device if isinstance(device, (str, Device)) else f"cuda:{device}"))


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


def clone(input: Tensor) -> Tensor:
    """A copy with its own memory; gradients flow back to ``input``."""
    return Clone.apply(input)


def contiguous(input: Tensor) -> Tensor:
    """``input`` itself when C-contiguous, otherwise a contiguous copy."""
    if input._data.flags.c_contiguous:
        return input
    return clone(input)


def is_contiguous(input: Tensor) -> bool:
    """Whether the elements are laid out in row-major order without gaps."""
    return input._data.flags.c_contiguous is True


def type_as(input: Tensor, other: Tensor) -> Tensor:
    return to(input, other._dtype)


def float(input: Tensor) -> Tensor:  # noqa: A001 - PyTorch's method name
    return to(input, dtypes.float32)


def double(input: Tensor) -> Tensor:
    return to(input, dtypes.float64)


def half(input: Tensor) -> Tensor:
    return to(input, dtypes.float16)


def int(input: Tensor) -> Tensor:  # noqa: A001
    return to(input, dtypes.int32)


def long(input: Tensor) -> Tensor:
    return to(input, dtypes.int64)


def bool(input: Tensor) -> Tensor:  # noqa: A001
    return to(input, dtypes.bool)


# Functions that are also Tensor methods of the same name (bound in gradflow.ops.methods).
TENSOR_METHODS = (
    "to",
    "cpu",
    "cuda",
    "clone",
    "contiguous",
    "is_contiguous",
    "type_as",
    "float",
    "double",
    "half",
    "int",
    "long",
    "bool",
)

__all__ = ["clone"]
