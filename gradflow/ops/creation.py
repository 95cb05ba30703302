"""Tensor creation: tensor, as_tensor, from_numpy, zeros/ones/full/empty (and *_like),
arange, linspace, eye, and the random draws rand/randn/randint/randperm.

Every function takes ``dtype``, ``device`` and ``requires_grad`` where
PyTorch does; ``device=None`` means the default device.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backends
from ..device import device as to_device
from ..device import resolve
from ..dtypes import from_numpy_dtype, get_default_dtype, int64, numpy_dtype, scalar_dtype, to_dtype
from ..errors import (
    ArgumentTypeError,
    ArgumentValueError,
    DtypeError,
)
from ..tensor import Tensor
from ._values import allocate, check_fits, check_python_values, dimension, host_array, size_arg


def _finish(array, device, requires_grad: bool) -> Tensor:
    result = Tensor._wrap(array, device)
    if requires_grad:
        result.requires_grad_(True)
    return result


def _inferred_dtype(array: np.ndarray, from_python: bool):
    """The dtype of data given without ``dtype=``: Python floats take the default float dtype."""
    if from_python and array.dtype.kind == "f":
        return get_default_dtype()
    if array.dtype.kind in "iu" and from_python:
        return int64
    return from_numpy_dtype(array.dtype)


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, numbers, NumPy/CuPy arrays, tensors).

    Example:
        >>> import gradflow as gf
        >>> gf.tensor([[1, 2], [3, 4]])
        tensor([[1, 2],
                [3, 4]])
        >>> gf.tensor([1.0, 2.0], requires_grad=True)
        tensor([1., 2.], requires_grad=True)
        >>> gf.tensor(3.5, dtype=gf.float64)
        tensor(3.5, dtype=gradflow.float64)
    """
    target = resolve(device)
    if isinstance(data, Tensor):
        data = data.detach()
        source = data._device.backend.to_host(data._data) if data._device is not target else data._data
        array = source
        from_python = False
    elif type(data).__module__.startswith("cupy"):
        array = data
        from_python = False
    else:
        from_python = not isinstance(data, (np.ndarray, np.generic))
        array = host_array(data) if from_python else np.asarray(data)
    chosen = to_dtype(dtype) if dtype is not None else _inferred_dtype(array, from_python)
    if from_python:
        check_python_values(array, chosen)
    backend = target.backend
    with backend.context(), np.errstate(over="ignore", invalid="ignore"):  # 1e300 as float32 is inf, silently
        result = backend.asarray(array, dtype=numpy_dtype(chosen)).copy()
    return _finish(result, target, requires_grad)


def tensor_new(cls, data=None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``Tensor(data, ...)``: as ``tensor(data, ...)``, and a subclass gets an instance of itself.

    Bound as ``Tensor.__new__`` by ``ops/methods.py`` (Tensor sits below the ops).
    """
    made = tensor([] if data is None else data, dtype=dtype, device=device, requires_grad=requires_grad)
    if cls is not Tensor:
        return Tensor._wrap(made._data, made._device, made._requires_grad, cls=cls)
    return made


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with ``data`` when dtype and device already match."""
    target = resolve(device) if device is not None else None
    if isinstance(data, Tensor):
        result = data
        if dtype is not None:
            result = result.to(to_dtype(dtype))
        return result if target is None else result.to(target)
    module = type(data).__module__
    if module.startswith("numpy") and isinstance(data, np.ndarray):
        if target is None:
            target = resolve("cpu")
        wanted = to_dtype(dtype) if dtype is not None else from_numpy_dtype(data.dtype)
        if target.type == "cpu" and wanted.np == data.dtype:
            return Tensor._wrap(data, target)
    if module.startswith("cupy"):
        found = to_device("cuda", data.device.id)
        if target is None or target is found:
            wanted = to_dtype(dtype) if dtype is not None else from_numpy_dtype(data.dtype)
            return Tensor._wrap(data if wanted.np == data.dtype else data.astype(wanted.np), found)
    return tensor(data, dtype=dtype, device=target)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with a NumPy array."""
    if not isinstance(array, np.ndarray):
        raise ArgumentTypeError(
            f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}; use gradflow.tensor() for other data"
        )
    return Tensor._wrap(array, resolve("cpu"))


def _filled(shape, fill, dtype, device, requires_grad, op: str = "full"):
    target = resolve(device)
    chosen = to_dtype(dtype) if dtype is not None else get_default_dtype()
    if fill is not None:
        check_fits(op, [fill.item() if isinstance(fill, (Tensor, np.generic)) else fill], chosen, True)
    backend = target.backend
    xp = backend.xp
    with backend.context():
        if fill is None:
            array = allocate(op, shape, chosen, lambda: xp.empty(shape, dtype=numpy_dtype(chosen)))
        else:
            # uint8 wraps negative ints as torch does; NumPy would refuse them, so cast a wide array instead
            with np.errstate(over="ignore", invalid="ignore"):
                fill = np.asarray(fill).astype(numpy_dtype(chosen)) if chosen.name == "uint8" else fill
                array = allocate(op, shape, chosen, lambda: xp.full(shape, fill, dtype=numpy_dtype(chosen)))
    return _finish(array, target, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of the given size."""
    return _filled(size_arg(size, "zeros"), 0, dtype, device, requires_grad, "zeros")


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of the given size."""
    return _filled(size_arg(size, "ones"), 1, dtype, device, requires_grad, "ones")


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of the given size."""
    return _filled(size_arg(size, "empty"), None, dtype, device, requires_grad, "empty")


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value (bool, int64 or the default float).

    A value the dtype cannot hold (NaN or 300 as uint8, 1e300 as float32) raises ValueOutOfRangeError as in torch.
    """
    if dtype is None:
        dtype = scalar_dtype(fill_value.item() if isinstance(fill_value, (Tensor, np.generic)) else fill_value)
    size = (size,) if isinstance(size, (numbers.Integral, Tensor)) else tuple(size)
    return _filled(size_arg(size, "full"), fill_value, dtype, device, requires_grad, "full")


def _like(input: Tensor, fill, dtype, device, requires_grad, op: str = "full_like"):
    return _filled(
        input.shape,
        fill,
        input._dtype if dtype is None else dtype,
        input._device if device is None else device,
        requires_grad,
        op,
    )


def zeros_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(input, 0, dtype, device, requires_grad, "zeros_like")


def ones_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(input, 1, dtype, device, requires_grad, "ones_like")


def empty_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(input, None, dtype, device, requires_grad, "empty_like")


def full_like(input: Tensor, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(input, fill_value, dtype, device, requires_grad, "full_like")


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; int64 when all are integers."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ArgumentValueError("arange: step must be nonzero; pass e.g. step=1 or step=-1")
    if not all(math.isfinite(v) for v in (start, end, step)):
        raise ArgumentValueError(f"arange: unsupported range {start} -> {end} (step {step}); use finite bounds")
    if dtype is None:
        integral = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = int64 if integral else get_default_dtype()
    target = resolve(device)
    chosen = to_dtype(dtype)
    backend = target.backend
    with backend.context():
        if chosen.is_floating_point:
            # Count and step in float64 like PyTorch, then cast, so float32 rounding adds no element.
            count = max(0, int(np.ceil((end - start) / step)))
            array = (backend.xp.arange(count, dtype=np.float64) * step + start).astype(numpy_dtype(chosen))
        else:
            array = backend.xp.arange(start, end, step).astype(numpy_dtype(chosen))
    return _finish(array, target, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    steps = dimension(steps, "linspace", "steps")
    if steps < 0:
        raise ArgumentValueError(f"linspace: number of steps must be non-negative, got {steps}; pass steps >= 0")
    target = resolve(device)
    chosen = to_dtype(dtype) if dtype is not None else get_default_dtype()
    backend = target.backend
    with backend.context():
        array = backend.xp.linspace(start, end, steps, dtype=np.float64).astype(numpy_dtype(chosen))
    return _finish(array, target, requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An n x m matrix with ones on the diagonal."""
    n = dimension(n, "eye", "n")
    m = n if m is None else dimension(m, "eye", "m")
    for name, value in (("n", n), ("m", m)):
        if value < 0:
            raise ArgumentValueError(f"eye: {name} must be greater or equal to 0, got {value}; pass a size >= 0")
    target = resolve(device)
    chosen = to_dtype(dtype) if dtype is not None else get_default_dtype()
    backend = target.backend
    with backend.context():
        array = allocate("eye", (n, m), chosen, lambda: backend.xp.eye(n, m, dtype=numpy_dtype(chosen)))
    return _finish(array, target, requires_grad)


# -- random draws -------------------------------------------------------------------------------


def manual_seed(seed: int) -> None:
    """Seed the random generators of every backend (CPU and each GPU)."""
    backends.manual_seed_all(seed)


def _float_dtype(dtype, op: str):
    chosen = to_dtype(dtype) if dtype is not None else get_default_dtype()
    if not chosen.is_floating_point:
        raise DtypeError(f"{op}: expected a floating point dtype, got {chosen.name}")
    return chosen


def rand(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Samples from the uniform distribution on [0, 1)."""
    target = resolve(device)
    chosen = _float_dtype(dtype, "rand")
    return _finish(target.backend.rand(size_arg(size, "rand"), numpy_dtype(chosen)), target, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Samples from the standard normal distribution."""
    target = resolve(device)
    chosen = _float_dtype(dtype, "randn")
    return _finish(target.backend.randn(size_arg(size, "randn"), numpy_dtype(chosen)), target, requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Integers drawn uniformly from [low, high); ``randint(high, size)`` starts at 0."""
    if size is None:
        low, high, size = 0, low, high
    if size is None:
        raise ArgumentTypeError("randint: size is required, e.g. randint(0, 10, (3, 4))")
    if high <= low:
        raise ArgumentValueError(
            f"randint: high ({high}) must be greater than low ({low}); swap them or widen the range"
        )
    target = resolve(device)
    chosen = to_dtype(dtype) if dtype is not None else int64
    size = (size,) if isinstance(size, numbers.Integral) else tuple(size)
    array = target.backend.randint(int(low), int(high), size_arg(size, "randint"), numpy_dtype(chosen))
    return _finish(array, target, requires_grad)


def randperm(n: int, *, dtype=None, device=None) -> Tensor:
    """A random permutation of 0 .. n-1."""
    target = resolve(device)
    chosen = to_dtype(dtype) if dtype is not None else int64
    return Tensor._wrap(target.backend.randperm(int(n), numpy_dtype(chosen)), target)


def rand_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return rand(
        input.shape,
        dtype=input._dtype if dtype is None else dtype,
        device=input._device if device is None else device,
        requires_grad=requires_grad,
    )


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return randn(
        input.shape,
        dtype=input._dtype if dtype is None else dtype,
        device=input._device if device is None else device,
        requires_grad=requires_grad,
    )


def randint_like(input: Tensor, low, high=None, *, dtype=None, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(
        low,
        high,
        input.shape,
        dtype=input._dtype if dtype is None else dtype,
        device=input._device if device is None else device,
    )


__all__ = [
    "tensor",
    "as_tensor",
    "from_numpy",
    "zeros",
    "ones",
    "empty",
    "full",
    "zeros_like",
    "ones_like",
    "empty_like",
    "full_like",
    "arange",
    "linspace",
    "eye",
    "manual_seed",
    "rand",
    "randn",
    "randint",
    "randperm",
    "rand_like",
    "randn_like",
    "randint_like",
]
