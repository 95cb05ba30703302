"""Function and Node: how an op runs forward on arrays and records itself.

An op subclasses ``Function`` with two static methods. ``forward(ctx, *args)``
receives backend arrays where the caller passed tensors (other arguments
unchanged) and returns an array or a tuple of arrays; it may call
``ctx.save_for_backward(*arrays)`` and set attributes on ``ctx``.
``backward(ctx, *grad_outputs)`` receives Tensors and returns one Tensor (or
None) per forward argument, built from gradflow ops so that, under
``create_graph=True``, the backward pass is itself recorded.

The ``ctx`` is the graph node. When no input requires grad, or grad mode is
off, the node is simply dropped: nothing is recorded.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..backends.fp_errors import enter as _fp_enter
from ..backends.fp_errors import leave as _fp_leave
from ..dtypes import from_numpy_dtype
from ..errors import GradflowError, GraphError, InplaceError, OutOfMemoryError, device_mismatch, not_a_tensor, shape_str
from ..tensor import Tensor, VersionCounter
from ..utils.hooks import RemovableHandle
from .anomaly_mode import _anomaly, forward_stack
from .grad_mode import _state

_sequence = itertools.count()
_RELEASED = "released"

# The active gradflow.profiler recorder, or None. Read once per op, so profiling off costs one global check.
profiler_hook = None

# The key under which retain_grad's hook sits in a node's hooks (run after the user's hooks).
RETAIN_KEY = "retain_grad"

# Kinds of saved values, chosen by identity of the saved array.
_SAVED_INPUT, _SAVED_OUTPUT, _SAVED_CONSTANT, _SAVED_SCALAR = 0, 1, 2, 3


class Node:
    """One recorded op: its backward, its edges to inputs, and what it saved.

    ``next_edges[i]`` is ``(node, output_nr)`` for an input produced by an op,
    ``(tensor, 0)`` for a leaf that requires grad, or None.
    """

    __slots__ = (
        "function",
        "next_edges",
        "needs_input_grad",
        "num_outputs",
        "output_meta",
        "seq",
        "device",
        "out_device",
        "hooks",
        "materialize_grads",
        "_to_save",
        "_saved",
        "__dict__",
        "__weakref__",
    )

    def __init__(self, function):
        self.function = function
        self._to_save = None
        self._saved = None
        self.out_device = None
        self.hooks = None
        self.materialize_grads = True

    # -- used inside forward ------------------------------------------------
    def save_for_backward(self, *arrays) -> None:
        """Keep ``arrays`` (inputs, outputs or intermediates) for backward."""
        self._to_save = arrays

    # -- used inside backward -----------------------------------------------
    @property
    def saved_tensors(self) -> tuple:
        """The saved values as Tensors, checked against in-place changes since saving."""
        saved = self._saved
        if saved is None:
            return ()
        if saved is _RELEASED:
            raise GraphError(
                f"{self.name()}: trying to backward through the graph a second time (or to read saved tensors "
                "after they were freed). Pass retain_graph=True to the first backward() or autograd.grad() "
                "call if you need to backward through the graph again."
            )
        unpacked = []
        for entry in saved:
            kind = entry[0]
            if kind == _SAVED_INPUT:
                tensor, version = entry[1], entry[2]
                current = tensor._vc.value if tensor._vc is not None else 0
                if current != version:
                    self._raise_modified(tensor._data.shape, tensor._dtype, current, version)
                unpacked.append(tensor)
            elif kind == _SAVED_OUTPUT:
                array, output_nr, counter = entry[1], entry[2], entry[3]
                if counter.value != 0:
                    self._raise_modified(array.shape, from_numpy_dtype(array.dtype), counter.value, 0)
                unpacked.append(Tensor._wrap(array, self.out_device or self.device, True, self, output_nr))
            elif kind == _SAVED_CONSTANT:
                unpacked.append(Tensor._wrap(entry[1], self.device))
            else:  # a Python scalar or None, passed back as it was
                unpacked.append(entry[1])
        return tuple(unpacked)

    def _raise_modified(self, shape, dtype, current, version):
        raise InplaceError(
            f"{self.name()}: one of the tensors needed for gradient computation has been modified by an in-place "
            f"operation: {dtype.name} {shape_str(shape)} is at version {current}; expected version {version}. "
            "Use the out-of-place form of the op (e.g. x = x * 2 instead of x.mul_(2)) or clone() the tensor "
            "before modifying it."
        )

    def release(self) -> None:
        """Free saved tensors after backward (a second backward then raises)."""
        if self._saved:
            self._saved = _RELEASED

    def name(self) -> str:
        return f"{self.function.__name__}Backward"

    @property
    def next_functions(self) -> tuple:
        """PyTorch's view of the edges: ``((node_or_None, output_nr), ...)``."""
        return tuple((None, 0) if edge is None else edge for edge in self.next_edges)

    def register_hook(self, output_nr: int, hook) -> RemovableHandle:
        """Run ``hook(grad)`` on the gradient of output ``output_nr`` before backward uses it.

        A non-None return value replaces the gradient. Returns a handle whose ``remove()`` undoes this.
        """
        if self.hooks is None:
            self.hooks = {}
        return RemovableHandle.add(self.hooks.setdefault(output_nr, {}), hook)

    def register_retain_hook(self, output_nr: int, hook) -> None:
        """``hook(grad)`` receives output ``output_nr``'s gradient after every other hook has run."""
        if self.hooks is None:
            self.hooks = {}
        self.hooks.setdefault(output_nr, {})[RETAIN_KEY] = hook

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class Function:
    """Base of every differentiable op (see the module docstring)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass defines forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass defines backward")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run forward on the arrays behind ``args`` and record a node when gradients are needed."""
        # The hot path of every op: kept free of closures, keyword parsing and repeated lookups.
        profiler = profiler_hook
        token = None
        if profiler is not None:
            frame = profiler.enter_op(cls.__name__, args)
        # try costs nothing until an op raises (Python 3.11); then the profiler closes the op's frame
        try:
            device = None
            requires_grad = False
            arrays = []
            for arg in args:
                if isinstance(arg, Tensor):
                    if device is None:
                        device = arg._device
                    elif arg._device is not device:
                        raise device_mismatch(cls.__name__.lower(), device, arg._device)
                    arrays.append(arg._data)
                    if arg._requires_grad:
                        requires_grad = True
                else:
                    arrays.append(arg)
            ctx = Node(cls)
            ctx.device = device
            if device.index:  # CuPy launches on the current GPU: make the operands' GPU current
                with device.backend.context():
                    result = cls.forward(ctx, *arrays, **kwargs)
            elif device.type == "cpu":
                # inf * 0, x / 0, log(0): PyTorch computes these silently, NumPy would also warn (CuPy never does).
                token = _fp_enter()
                result = cls.forward(ctx, *arrays, **kwargs) if kwargs else cls.forward(ctx, *arrays)
                _fp_leave(token)
                token = None
            elif kwargs:
                result = cls.forward(ctx, *arrays, **kwargs)
            else:
                result = cls.forward(ctx, *arrays)
            out_device = ctx.out_device or device
            if result.__class__ is tuple:
                outputs = tuple([Tensor._wrap(_as_array(ctx, array), out_device) for array in result])
            else:
                if result.__class__ is not np.ndarray:
                    result = _as_array(ctx, result)
                outputs = Tensor._wrap(result, out_device)
            if requires_grad and _state.enabled:
                _record(ctx, args, outputs)
        except BaseException as error:
            if token is not None:  # forward raised: restore the caller's NumPy error state
                _fp_leave(token)
            if profiler is not None:
                profiler.drop(frame)
            if device is None and isinstance(error, AttributeError):  # no Tensor among the arguments
                raise not_a_tensor(cls.__name__.lower(), args[0] if args else None) from None
            if isinstance(error, MemoryError) and not isinstance(error, GradflowError):  # NumPy's, CuPy's
                raise OutOfMemoryError(
                    f"{cls.__name__.lower()}: out of memory on {device} ({error}); use smaller tensors or batches, "
                    "or free tensors you no longer need"
                ) from None
            raise
        if profiler is not None:
            profiler.exit_op(frame)
        return outputs


def _as_array(ctx: Node, result):
    """NumPy returns scalars for 0-d results; make them arrays, and keep what forward saved pointing at them."""
    if not isinstance(result, np.generic):
        return result
    array = np.asarray(result)
    if ctx._to_save is not None:
        ctx._to_save = tuple(array if saved is result else saved for saved in ctx._to_save)
    return array


def _record(node: Node, args: tuple, outputs) -> None:
    node.seq = next(_sequence)
    if _anomaly.enabled:
        node.forward_stack = forward_stack()
    edges = []
    needs = []
    for arg in args:
        if isinstance(arg, Tensor) and arg._requires_grad:
            producer = arg._node
            edges.append((arg, 0) if producer is None else (producer, arg._output_nr))
            needs.append(True)
        else:
            edges.append(None)
            needs.append(False)
    node.next_edges = tuple(edges)
    node.needs_input_grad = tuple(needs)
    if outputs.__class__ is tuple:
        output_list = outputs
        node.output_meta = tuple([(out._data.shape, out._dtype) for out in outputs])
        node.num_outputs = len(outputs)
        for output_nr, out in enumerate(outputs):
            if out._dtype.category == 2:  # only floating outputs carry gradients
                out._requires_grad = True
                out._node = node
                out._output_nr = output_nr
    else:  # the common single output (its _output_nr is already 0)
        output_list = (outputs,)
        node.output_meta = ((outputs._data.shape, outputs._dtype),)
        node.num_outputs = 1
        if outputs._dtype.category == 2:
            outputs._requires_grad = True
            outputs._node = node
    to_save = node._to_save
    if to_save is not None:
        node._saved = tuple([_saved_entry(array, args, output_list) for array in to_save])
        node._to_save = None


def _saved_entry(array, args, outputs):
    if array is None or isinstance(array, (int, float)):
        return (_SAVED_SCALAR, array)
    for arg in args:
        if isinstance(arg, Tensor) and arg._data is array:
            return (_SAVED_INPUT, arg, arg._vc.value if arg._vc is not None else 0)
    for output_nr, out in enumerate(outputs):
        if out._data is array:
            if out._vc is None:
                out._vc = VersionCounter()
            return (_SAVED_OUTPUT, array, output_nr, out._vc)
    return (_SAVED_CONSTANT, array)
