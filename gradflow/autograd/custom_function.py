"""User-defined differentiable ops with PyTorch's ``torch.autograd.Function`` shape.

::

    class Exp(gradflow.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    y = Exp.apply(x)

Unlike the built-in ops (``autograd.function.Function``: forward on arrays),
a user's forward receives and returns Tensors and runs with grad mode off. Its
node is an ordinary graph node, so saved tensors are version-checked, hooks,
anomaly detection and ``create_graph=True`` work as for built-in ops.
"""

from __future__ import annotations

import inspect

from ..errors import ArgumentTypeError, GraphError, InplaceError, shape_str
from ..tensor import Tensor
from .function import Node, _record
from .grad_mode import _state, no_grad


class FunctionCtx(Node):
    """The ``ctx`` of a custom Function: PyTorch's methods on top of a graph node."""

    __slots__ = ("non_differentiable", "dirty")

    def __init__(self, function):
        super().__init__(function)
        self.non_differentiable = ()
        self.dirty = ()

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors (inputs, outputs or None) for backward; ``ctx.saved_tensors`` returns them version-checked."""
        for position, tensor in enumerate(tensors):
            if tensor is not None and not isinstance(tensor, Tensor):
                raise ArgumentTypeError(
                    f"{self.name()}: save_for_backward can only save tensors (or None), but argument {position} is "
                    f"a {type(tensor).__name__}; store other values as attributes of ctx"
                )
        self._to_save = tuple(None if tensor is None else tensor._data for tensor in tensors)

    def mark_non_differentiable(self, *tensors) -> None:
        """Declare outputs that get no gradient (e.g. indices): they won't require grad."""
        self.non_differentiable = tuple(id(tensor) for tensor in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        """With False, backward receives None (instead of zeros) for outputs that got no gradient."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors) -> None:
        """Declare inputs that forward modified in place; forward must return them, and they join the graph here."""
        self.dirty = tuple(tensors)


class _Backward:
    """What the engine calls for a custom Function's node: the user's backward plus PyTorch's checks."""

    __slots__ = ("function", "__name__")

    def __init__(self, function):
        self.function = function
        self.__name__ = function.__name__

    def backward(self, ctx: FunctionCtx, *grad_outputs):
        # Forward may return non-tensors too; backward gets one grad per returned item (None for those).
        full = [None] * ctx.output_count
        for position, gradient in zip(ctx.output_positions, grad_outputs):
            full[position] = gradient
        result = self.function.backward(ctx, *full)
        grads = result if isinstance(result, tuple) else (result,)
        expected = len(ctx.next_edges)
        if len(grads) > expected and all(gradient is None for gradient in grads[expected:]):
            # PyTorch accepts trailing Nones, e.g. for a defaulted argument the caller left out.
            grads = grads[:expected]
        if len(grads) != expected:
            raise GraphError(
                f"function {ctx.name()} returned an incorrect number of gradients (expected {expected}, got "
                f"{len(grads)}); return one gradient per forward argument, None for those that need none"
            )
        for position, gradient in enumerate(grads):
            if gradient is None:
                continue
            if not isinstance(gradient, Tensor):
                raise ArgumentTypeError(
                    f"function {ctx.name()} returned a {type(gradient).__name__} as gradient {position}; "
                    "return gradflow Tensors (or None)"
                )
            if ctx.input_kinds[position] is not Tensor:
                raise GraphError(
                    f"function {ctx.name()} returned a gradient different than None at position {position}, but the "
                    "corresponding forward input was not a Tensor"
                )
        return grads


class Function:
    """Base class for user-defined differentiable ops (see the module docstring).

    Subclasses define static ``forward(ctx, *args, **kwargs)`` returning a Tensor (or a
    tuple) and static ``backward(ctx, *grad_outputs)`` returning one gradient per forward
    argument. Alternatively ``forward(*args)`` plus ``setup_context(ctx, inputs, output)``,
    as in PyTorch 2.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a custom Function subclass must implement forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(
            "a custom Function subclass must implement backward to be differentiated (or return the outputs "
            "through mark_non_differentiable)"
        )

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not overridden")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` (grad mode off) and record one node whose backward is ``cls.backward``."""
        separate_setup = cls.setup_context is not Function.setup_context
        if kwargs or separate_setup:
            args = _bind_to_positions(cls, args, kwargs, separate_setup)
        ctx = FunctionCtx(_backward_adapter(cls))
        tensors = [arg for arg in args if isinstance(arg, Tensor)]
        ctx.device = tensors[0]._device if tensors else None
        ctx.input_kinds = tuple(Tensor if isinstance(arg, Tensor) else None for arg in args)
        recording = _state.enabled and any(t._requires_grad for t in tensors)
        # As in PyTorch, forward sees which inputs require grad even when nothing will be recorded.
        ctx.needs_input_grad = tuple(isinstance(arg, Tensor) and arg._requires_grad for arg in args)
        with no_grad():
            if separate_setup:
                output = cls.forward(*args)
                cls.setup_context(ctx, args, output)
            else:
                output = cls.forward(ctx, *args)
        return _finish(ctx, args, output, recording)


def _bind_to_positions(cls, args: tuple, kwargs: dict, separate_setup: bool) -> tuple:
    """Keywords (and, with ``setup_context``, defaults) as positions, as PyTorch binds them.

    Backward then returns one gradient per bound argument. Keyword-only parameters have no
    position to bind to: PyTorch refuses them, and so do we, rather than dropping the value.
    """
    signature = cls.__dict__.get("_gradflow_signature")
    if signature is None:  # inspect.signature costs microseconds; setup_context style binds on every call
        signature = inspect.signature(cls.forward)
        cls._gradflow_signature = signature
    bound = signature.bind(*args, **kwargs) if separate_setup else signature.bind(None, *args, **kwargs)
    bound.apply_defaults()
    if bound.kwargs:
        names = ", ".join(repr(name) for name in bound.kwargs)
        raise ArgumentTypeError(
            f"{cls.__name__}.apply: forward() got keyword-only argument(s) {names}; autograd.Function passes "
            "arguments to forward by position, so make them ordinary (positional) parameters of forward"
        )
    return tuple(bound.args if separate_setup else bound.args[1:])


def _backward_adapter(cls) -> _Backward:
    adapter = cls.__dict__.get("_gradflow_backward")
    if adapter is None:
        adapter = _Backward(cls)
        cls._gradflow_backward = adapter
    return adapter


def _finish(ctx: FunctionCtx, args: tuple, output, recording: bool):
    """Make forward's outputs the node's outputs (fresh Tensors where forward returned an input as is)."""
    single = not isinstance(output, tuple)
    items = old_items = (output,) if single else output
    dirty_ids = {id(tensor) for tensor in ctx.dirty}
    _mark_modified(ctx, items, dirty_ids, recording)
    input_ids = {id(arg) for arg in args if isinstance(arg, Tensor)} - dirty_ids
    marked = set(ctx.non_differentiable)
    items = tuple(_own_output(item, input_ids) for item in items)
    # An input returned as is became a new view: carry a mark_non_differentiable over to it.
    ctx.non_differentiable = tuple(id(new) for old, new in zip(old_items, items) if id(old) in marked)
    tensor_outputs = tuple(item for item in items if isinstance(item, Tensor))
    ctx.output_positions = tuple(position for position, item in enumerate(items) if isinstance(item, Tensor))
    ctx.output_count = len(items)
    if recording and tensor_outputs:
        for item in tensor_outputs:
            if id(item) not in dirty_ids:  # a dirty input keeps its producer until _record links it
                item._requires_grad, item._node = False, None
        if ctx.device is None:
            ctx.device = tensor_outputs[0]._device
        _record(ctx, args, tensor_outputs)
        for item in tensor_outputs:
            if id(item) in ctx.non_differentiable:
                item._requires_grad, item._node = False, None
    return items[0] if single else items


def _mark_modified(ctx: FunctionCtx, items: tuple, dirty_ids: set, recording: bool) -> None:
    """Inputs changed in place by forward: bump their versions (saved copies elsewhere become stale)."""
    returned = {id(item) for item in items}
    for tensor in ctx.dirty:
        if id(tensor) not in returned:
            raise GraphError(
                f"{ctx.name()}: a tensor passed to mark_dirty() was not returned by forward; an input modified "
                "in place must be returned as an output"
            )
        if recording and tensor._node is None and tensor._requires_grad:
            raise InplaceError(
                f"{ctx.name()}: a leaf tensor that requires grad (shape {shape_str(tensor.shape)}) is being used in "
                "an in-place operation; clone() it first"
            )
        tensor._bump_version()


def _own_output(item, input_ids: set):
    """PyTorch gives an input returned unchanged a new identity (a view); so do we."""
    if isinstance(item, Tensor) and id(item) in input_ids:
        view = Tensor._wrap(item._data.view(), item._device)
        view._vc = item._shared_version_counter()
        # A view of the input (as ops/shape.as_view marks one), so in-place ops on it are refused while it is
        # in the graph, as PyTorch refuses them, instead of silently changing the input.
        view._base = item._base if item._base is not None else item
        return view
    return item
