"""Zero-copy exchange with other array libraries through DLPack.

``from_dlpack(obj)`` turns anything that speaks the DLPack protocol (NumPy and
CuPy arrays, PyTorch, JAX, gradflow tensors) or a legacy DLPack capsule into a
gradflow tensor that shares the producer's memory. The other direction is
``Tensor.__dlpack__``, so ``numpy.from_dlpack(tensor)`` and
``torch.from_dlpack(tensor)`` work too.

The import itself is left to the backend's own ``from_dlpack`` (NumPy for host
memory, CuPy, imported lazily, for GPU memory): they negotiate the protocol
version, streams and read-only flags. This module picks the device, reads a
capsule's header where it must (with ctypes: a capsule says nothing about
itself to Python), and turns dtypes gradflow cannot hold into a DtypeError.
"""

from __future__ import annotations

import ctypes

from .device import device as _device
from .dtypes import ALL_DTYPES, from_numpy_dtype
from .errors import ArgumentTypeError, ArgumentValueError, DeviceMismatchError, DeviceUnavailableError, DtypeError
from .tensor import Tensor

# DLDeviceType values from dlpack.h.
KDL_CPU, KDL_CUDA, KDL_CUDA_HOST, KDL_CUDA_MANAGED = 1, 2, 3, 13
_HOST_TYPES = (KDL_CPU, KDL_CUDA_HOST)  # memory NumPy can read in place
_CUDA_TYPES = (KDL_CUDA, KDL_CUDA_MANAGED)  # memory CuPy can read in place
_DEVICE_NAMES = {
    1: "kDLCPU",
    2: "kDLCUDA",
    3: "kDLCUDAHost",
    4: "kDLOpenCL",
    7: "kDLVulkan",
    8: "kDLMetal",
    9: "kDLVPI",
    10: "kDLROCM",
    11: "kDLROCMHost",
    12: "kDLExtDev",
    13: "kDLCUDAManaged",
    14: "kDLOneAPI",
    15: "kDLWebGPU",
    16: "kDLHexagon",
    17: "kDLMAIA",
    18: "kDLTrn",
}

# DLDataTypeCode values: name prefix, or the full name for the float8/6/4 formats whose bits are fixed.
_DTYPE_CODES = {
    0: "int",
    1: "uint",
    2: "float",
    3: "opaque_handle",
    4: "bfloat",
    5: "complex",
    6: "bool",
    7: "float8_e3m4",
    8: "float8_e4m3",
    9: "float8_e4m3b11fnuz",
    10: "float8_e4m3fn",
    11: "float8_e4m3fnuz",
    12: "float8_e5m2",
    13: "float8_e5m2fnuz",
    14: "float8_e8m0fnu",
    15: "float6_e2m3fn",
    16: "float6_e3m2fn",
    17: "float4_e2m1fn",
}
_SUPPORTED = ", ".join(d.name for d in ALL_DTYPES if d.np is not None)


def from_dlpack(ext_tensor, *, device=None, copy: bool | None = None) -> Tensor:
    """A tensor sharing memory with ``ext_tensor``, an object with ``__dlpack__`` or a DLPack capsule.

    Host memory becomes a CPU tensor, CUDA memory a ``cuda:N`` tensor; writes through
    either side are seen by the other. ``device`` moves the result (a copy, when it is
    another device) and ``copy=True`` always copies, as in ``torch.from_dlpack``.
    A pre-1.0 ("dltensor") capsule of host memory imports read-only (NumPy's rule:
    such a capsule cannot say whether its memory may be written); pass the producer's
    array itself, which speaks DLPack 1.0, to get a writable tensor.

    >>> import numpy as np, gradflow as gf
    >>> array = np.arange(3.0)
    >>> x = gf.from_dlpack(array)
    >>> array[0] = 7.0
    >>> x
    tensor([7., 1., 2.], dtype=gradflow.float64)
    """
    if hasattr(ext_tensor, "__dlpack__"):
        source = ext_tensor
        device_type, device_id = (int(value) for value in ext_tensor.__dlpack_device__())
    elif _is_capsule(ext_tensor):
        device_type, device_id, dtype_name = _read_capsule(ext_tensor)
        _check_dtype_name(dtype_name)
        source = _CapsuleExporter(ext_tensor, (device_type, device_id))
    else:
        raise ArgumentTypeError(
            f"from_dlpack: expected an array with a __dlpack__ method (NumPy, CuPy, PyTorch, ...) or a DLPack "
            f"capsule, got {type(ext_tensor).__name__}; for Python data use gradflow.tensor(data)"
        )
    home = _home_device(device_type, device_id)
    result = Tensor._wrap(_import(source, home), home)
    target = home if device is None else _device(device)
    if target is not home:
        if copy is False:
            raise DeviceMismatchError(
                f"from_dlpack: the data is on {home} and device={target} was asked for, which needs a copy, but "
                "copy=False forbids one; pass copy=None (or True), or leave out device="
            )
        return result.to(target)
    if copy:
        with home.backend.context():
            return Tensor._wrap(result._data.copy(), home)
    return result


def _home_device(device_type: int, device_id: int):
    """The gradflow device whose backend can read memory of this DLPack device in place."""
    if device_type in _HOST_TYPES:
        return _device("cpu")
    if device_type in _CUDA_TYPES:
        return _device("cuda", device_id)  # raises DeviceUnavailableError (with the reason) without a GPU
    name = _DEVICE_NAMES.get(device_type, "unknown")
    raise DeviceUnavailableError(
        f"from_dlpack: the data lives on DLPack device type {device_type} ({name}), id {device_id}; gradflow reads "
        "only host memory (kDLCPU) and CUDA memory (kDLCUDA); copy it to the CPU or a CUDA GPU in its own "
        "library first"
    )


def _import(source, home):
    """The backend array over ``source``'s memory; a dtype gradflow cannot hold becomes a DtypeError."""
    backend = home.backend
    try:
        with backend.context():
            array = backend.xp.from_dlpack(source)
    except (BufferError, RuntimeError, TypeError, ValueError) as error:
        # NumPy and CuPy refuse some DLPack dtypes (bfloat16, float8) with a message that does not name
        # them: read the name from a fresh capsule, and keep the original error when the dtype is fine.
        dtype_name = _describe_dtype(source)
        if dtype_name is not None:
            _check_dtype_name(dtype_name, cause=error)
        raise
    try:
        from_numpy_dtype(array.dtype)
    except DtypeError:
        _check_dtype_name(str(array.dtype))
        raise
    return array


def _check_dtype_name(dtype_name: str, cause: BaseException | None = None) -> None:
    if dtype_name in _SUPPORTED.split(", "):
        return
    raise DtypeError(
        f"from_dlpack: dtype {dtype_name} cannot be held by a gradflow tensor (its arrays hold {_SUPPORTED}); "
        "convert it in the producing library first, e.g. torch_tensor.float() or array.astype(numpy.float32)"
    ) from cause


def _describe_dtype(source) -> str | None:
    """The DLPack dtype name of ``source``'s data, or None when a capsule cannot be had."""
    if isinstance(source, _CapsuleExporter):
        return _read_capsule(source.capsule)[2]
    try:
        capsule = source.__dlpack__()
    except Exception:  # the producer refuses even a plain export: nothing more to learn
        return None
    return _read_capsule(capsule)[2]  # dropping the unconsumed capsule calls its deleter


class _CapsuleExporter:
    """Presents a bare capsule through the protocol, which is all NumPy's and CuPy's importers take."""

    def __init__(self, capsule, dl_device: tuple):
        self.capsule = capsule
        self._dl_device = dl_device

    def __dlpack__(self, **_keywords):
        # The capsule is already made: stream and version requests cannot change it.
        return self.capsule

    def __dlpack_device__(self) -> tuple:
        return self._dl_device


# -- reading a capsule's header ------------------------------------------------
class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensorVersioned(ctypes.Structure):
    # DLPack >= 1.0: version, manager_ctx, deleter and flags come before the tensor.
    _fields_ = [
        ("major", ctypes.c_uint32),
        ("minor", ctypes.c_uint32),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
        ("flags", ctypes.c_uint64),
        ("dl_tensor", _DLTensor),
    ]


_get_name = ctypes.pythonapi.PyCapsule_GetName
_get_name.restype = ctypes.c_char_p
_get_name.argtypes = [ctypes.py_object]
_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _is_capsule(obj) -> bool:
    return type(obj).__name__ == "PyCapsule"


def _read_capsule(capsule) -> tuple:
    """``(device_type, device_id, dtype name)`` from a DLPack capsule, without consuming it."""
    name = _get_name(capsule)
    if name == b"dltensor":  # DLManagedTensor starts with its DLTensor
        header = _DLTensor.from_address(_get_pointer(capsule, name))
    elif name == b"dltensor_versioned":
        header = _DLManagedTensorVersioned.from_address(_get_pointer(capsule, name)).dl_tensor
    elif name in (b"used_dltensor", b"used_dltensor_versioned"):
        raise ArgumentValueError(
            "from_dlpack: this DLPack capsule was already consumed (a capsule can be imported once); "
            "export a new one from the producer, or pass the array itself"
        )
    else:
        shown = None if name is None else name.decode(errors="replace")
        raise ArgumentTypeError(
            f"from_dlpack: expected a DLPack capsule named 'dltensor', got a capsule named {shown!r}"
        )
    return header.device.device_type, header.device.device_id, _dtype_name(header.dtype)


def _dtype_name(dtype: _DLDataType) -> str:
    """The NumPy-style name of a DLPack dtype: (2, 32, 1) -> 'float32', (4, 16, 1) -> 'bfloat16'."""
    prefix = _DTYPE_CODES.get(dtype.code)
    if prefix is None:
        name = f"<DLPack type code {dtype.code}, {dtype.bits} bits>"
    elif dtype.code == 6:
        name = "bool" if dtype.bits == 8 else f"bool{dtype.bits}"
    elif dtype.code >= 7:
        name = prefix
    else:
        name = f"{prefix}{dtype.bits}"
    return name if dtype.lanes == 1 else f"{name}x{dtype.lanes}"


__all__ = ["from_dlpack"]
