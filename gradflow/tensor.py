"""Tensor: a backend array, the device it lives on, and its autograd fields.

This module sits below the engine and the ops, so the methods whose code lives there are
bound onto Tensor by the layer that defines them, at import: ``backward`` and
``retain_grad`` by ``gradflow.autograd`` (``autograd/tensor_methods.py``); ``Tensor(data)``,
``size`` and the op methods and operators (``x.exp()``, ``x + y``, ``x.sum(dim=1)``, ...) by
``gradflow.ops`` (``ops/methods.py``). ``tensor.pyi`` beside this file declares the whole
API, bound methods included, for readers and type checkers; ``tests/test_tensor_stub.py``
fails when it differs from what is bound (``python -m tools.tensor_stub`` rewrites it).
"""

from __future__ import annotations

import numpy as np

from .dtypes import from_numpy_dtype
from .errors import (
    ArgumentTypeError,
    ArgumentValueError,
    DeviceMismatchError,
    DtypeError,
    GraphError,
    ShapeError,
    shape_str,
)
from .utils.hooks import RemovableHandle

_new_object = object.__new__


class VersionCounter:
    """How many times a tensor's memory was changed in place; shared by views."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Tensor:
    """An n-dimensional array on a device that can take part in autograd.

    Create tensors with ``gradflow.tensor``, ``gradflow.zeros``, ... rather
    than with this class.
    """

    __slots__ = (
        "_data",
        "_device",
        "_dtype",
        "_requires_grad",
        "_grad",
        "_node",
        "_output_nr",
        "_vc",
        "_base",
        "_hooks",
        "_post_hooks",
        "_retains_grad",
        "__weakref__",
    )
    __array_priority__ = 1000  # numpy scalars defer to Tensor operators

    @staticmethod
    def _wrap(data, device, requires_grad=False, node=None, output_nr=0, cls=None):
        """Build a tensor around an existing backend array (no copy, no checks)."""
        if isinstance(data, np.generic):  # NumPy reductions of 0-d arrays return scalars
            data = np.asarray(data)
        tensor = _new_object(cls or Tensor)
        tensor._data = data
        tensor._device = device
        tensor._dtype = from_numpy_dtype(data.dtype)
        tensor._requires_grad = requires_grad
        tensor._grad = None
        tensor._node = node
        tensor._output_nr = output_nr
        tensor._vc = None
        tensor._base = None
        tensor._hooks = None
        tensor._post_hooks = None
        tensor._retains_grad = False
        return tensor

    # -- metadata ------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return self._device

    @property
    def is_cuda(self) -> bool:
        return self._device.type == "cuda"

    def numel(self) -> int:
        return int(self._data.size)

    def dim(self) -> int:
        return self._data.ndim

    def element_size(self) -> int:
        return self._dtype.itemsize

    def is_floating_point(self) -> bool:
        return self._dtype.is_floating_point

    # -- autograd fields -----------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Make this leaf record operations for autograd (in place; returns self)."""
        if self._node is not None:
            if not requires_grad:
                raise GraphError(
                    "requires_grad_: you can only change requires_grad of leaf tensors; this tensor was produced "
                    f"by {self._node.name()}. Use detach() to get a leaf that does not require grad"
                )
            return self
        if requires_grad and not self._dtype.is_floating_point:
            raise DtypeError(
                f"requires_grad_: only tensors of floating point dtype can require gradients, got {self._dtype.name}; "
                "convert first with .float() or .double()"
            )
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise ArgumentTypeError(
                    f"grad: expected a Tensor or None, got {type(value).__name__}; assign a Tensor of the same shape"
                )
            if value._dtype is not self._dtype:
                raise DtypeError(
                    f"grad: assigned grad has dtype {value._dtype.name} but the tensor has dtype {self._dtype.name}; "
                    f"convert it first with .to({self._dtype!r})"
                )
            if value._data.shape != self._data.shape or value._device is not self._device:
                raise ShapeError(
                    f"grad: assigned grad has shape {shape_str(value.shape)} on {value._device}, but the tensor has "
                    f"shape {shape_str(self.shape)} on {self._device}; assign a grad of the tensor's shape and device"
                )
        self._grad = value

    @property
    def grad_fn(self):
        return self._node

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    @property
    def _version(self) -> int:
        return 0 if self._vc is None else self._vc.value

    def _bump_version(self) -> None:
        if self._vc is None:
            self._vc = VersionCounter()
        self._vc.value += 1

    def _shared_version_counter(self) -> VersionCounter:
        if self._vc is None:
            self._vc = VersionCounter()
        return self._vc

    def detach(self) -> Tensor:
        """A new leaf that shares memory (and the version counter) but records nothing."""
        detached = Tensor._wrap(self._data.view(), self._device)
        detached._vc = self._shared_version_counter()
        return detached

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph, in place."""
        self._node = None
        self._output_nr = 0
        self._requires_grad = False
        return self

    def register_hook(self, hook):
        """Call ``hook(grad)`` each time the gradient of this tensor is computed; a non-None return replaces it.

        On a leaf the hook sees the leaf's whole gradient of one backward pass, before it is
        accumulated into ``.grad``. Returns a handle; ``handle.remove()`` takes the hook out.
        """
        if not self._requires_grad:
            raise GraphError("register_hook: cannot register a hook on a tensor that doesn't require gradient")
        if self._node is not None:
            return self._node.register_hook(self._output_nr, hook)
        if self._hooks is None:
            self._hooks = {}
        return RemovableHandle.add(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on a leaf right after backward has accumulated into its ``.grad``."""
        if self._node is not None:
            raise GraphError(
                "register_post_accumulate_grad_hook: post accumulate grad hooks cannot be registered on non-leaf "
                f"tensors (this one was produced by {self._node.name()})"
            )
        if not self._requires_grad:
            raise GraphError(
                "register_post_accumulate_grad_hook: cannot register a hook on a tensor that doesn't require gradient"
            )
        if self._post_hooks is None:
            self._post_hooks = {}
        return RemovableHandle.add(self._post_hooks, hook)

    @property
    def data(self) -> Tensor:
        """This tensor's values without autograd history (unlike detach(), not version-tracked)."""
        return Tensor._wrap(self._data, self._device)

    @data.setter
    def data(self, other: Tensor) -> None:
        if other._device is not self._device:
            raise DeviceMismatchError(
                f"data: cannot assign data on {other._device} to a tensor on {self._device}; "
                f"move it first with .to({str(self._device)!r})"
            )
        self._data = other._data
        self._dtype = other._dtype

    # -- conversion to Python and NumPy --------------------------------------
    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ArgumentValueError(
                f"item: a Tensor with {self._data.size} elements cannot be converted to a Python scalar; "
                "index or reduce it first"
            )
        return self._data.reshape(()).item()

    def tolist(self):
        """Nested Python lists of Python numbers."""
        return self._device.backend.to_host(self._data).tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The NumPy array behind this CPU tensor (shared memory, no copy).

        As in PyTorch, a tensor that requires grad must be detached first and a CUDA tensor
        copied to the host first; ``force=True`` does both (``detach().cpu().numpy()``).
        """
        if not force:
            if self._requires_grad:
                raise GraphError(
                    "numpy: can't call numpy() on a tensor that requires grad (its values would leave autograd "
                    "unseen); use tensor.detach().numpy() instead, or numpy(force=True)"
                )
            if self._device.type != "cpu":
                raise DeviceMismatchError(
                    f"numpy: can't convert a {self._device} tensor to NumPy, which holds host memory only; "
                    "use tensor.cpu() to copy it to the host first, or numpy(force=True)"
                )
        if self._device.type != "cpu":
            return self._device.backend.to_host(self._data)
        return self._data

    def __array__(self, dtype=None, copy=None):
        """NumPy's conversion protocol (``np.asarray(tensor)``): the rules of numpy(), plus ``dtype``/``copy``."""
        array = self.numpy()
        if dtype is not None and array.dtype != np.dtype(dtype):
            if copy is False:
                # NumPy 2's contract: copy=False means "never copy", so refuse rather than copy silently.
                raise ArgumentValueError(
                    f"__array__: converting a {self._dtype.name} tensor to {np.dtype(dtype)} needs a copy, but "
                    "copy=False was requested; use np.asarray(tensor, dtype=...) to allow the copy"
                )
            return array.astype(dtype)
        return array.copy() if copy else array

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Export this tensor as a DLPack capsule (the Python array API's protocol).

        The keywords are those of the array API standard; they are passed on to the backend
        array, and handled here when that array is from a library too old to take them.
        """
        if self._requires_grad:
            # PyTorch's rule and message: a capsule cannot carry the autograd graph.
            raise BufferError("__dlpack__: can't export tensors that require gradient, use tensor.detach()")
        array = self._data
        if stream == -1 and self._device.type == "cpu":
            stream = None  # -1 means "no synchronisation", which is all a CPU array can do
        keywords = {"max_version": max_version, "dl_device": dl_device, "copy": copy}
        keywords = {name: value for name, value in keywords.items() if value is not None}
        legacy = {} if stream is None else {"stream": stream}
        try:
            return array.__dlpack__(**legacy, **keywords)
        except TypeError:
            if not keywords:
                raise
        # An array library older than DLPack 1.0 refused the new keywords: honour them here.
        if dl_device is not None and tuple(dl_device) != tuple(array.__dlpack_device__()):
            raise BufferError(
                f"__dlpack__: can't export a {self._device} tensor to DLPack device {tuple(dl_device)}; "
                f"move it first with .to(...)"
            )
        if copy:
            array = array.copy()
        return array.__dlpack__(**legacy)

    def __dlpack_device__(self) -> tuple:
        """``(DLPack device type, device id)``: (1, 0) for the CPU, (2, N) for cuda:N."""
        return tuple(self._data.__dlpack_device__())

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise ArgumentTypeError("len() of a 0-d tensor; use .item() for its value, .numel() to count its elements")
        return self._data.shape[0]

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise ArgumentValueError(
                f"bool: a tensor with {self._data.size} elements is ambiguous as a truth value; use .any() or .all()"
            )
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._dtype.category == 2 or self._data.size != 1:
            raise ArgumentTypeError(
                f"__index__: only integer tensors of a single element can be converted to an index, got a "
                f"{self._dtype.name} tensor of {self._data.size} elements; use int(t.item()) or .long() first"
            )
        return int(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self):
        if self._data.ndim == 0:
            raise ArgumentTypeError("iteration over a 0-d tensor; use .item() for its value, or .reshape(1) to iterate")
        return iter(self.unbind(0))

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return format(str(self), spec)

    def __repr__(self) -> str:
        host = self._device.backend.to_host(self._data)
        body = np.array2string(host, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3)
        extras = []
        if self._device.type != "cpu":
            extras.append(f"device='{self._device}'")
        default_dtypes = ("float32", "int64", "bool")
        if self._dtype.name not in default_dtypes or host.size == 0:
            extras.append(f"dtype={self._dtype!r}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name()}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    __str__ = __repr__
