"""The entry points of the backward pass: ``backward()`` and ``grad()``.

They check the roots and their gradients, set grad mode for the pass (on only under
``create_graph``) and hand the roots to the tape replay (``tape_replay.replay``).
``backward(inputs=...)`` then accumulates the captured gradients into the inputs' ``.grad``
(``leaf_accumulation``); ``grad()`` returns them and never touches ``.grad``.
"""

from __future__ import annotations

import threading

from ..backends import fp_errors
from ..errors import GraphError, ShapeError, device_mismatch, shape_str
from ..tensor import Tensor
from .grad_mode import _state
from .leaf_accumulation import accumulate_into_leaf
from .tape_replay import replay


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """Accumulate d(tensors)/d(leaf) into the ``.grad`` of every leaf that requires grad.

    ``grad_tensors`` holds one gradient per tensor (None for scalars). ``inputs``, when given,
    limits the pass to those tensors (leaves or not): only they get ``.grad``, and only the part
    of the graph leading to them runs.
    """
    tensors = _as_tuple(tensors)
    grads = _as_tuple(grad_tensors) if grad_tensors is not None else (None,) * len(tensors)
    roots = _make_roots(tensors, grads, "backward")
    retain = create_graph if retain_graph is None else retain_graph
    if inputs is None:
        _execute(roots, retain, create_graph, captures=None)
        return
    inputs = _as_tuple(inputs)
    if not inputs:
        raise GraphError(
            "backward: the `inputs` argument cannot be empty; pass the tensors to accumulate into, or None"
        )
    _check_differentiable("backward", inputs)
    results = _execute(roots, retain, create_graph, captures=inputs)
    for tensor, gradient in zip(inputs, results):
        if gradient is None:
            continue
        if tensor._node is None:
            accumulate_into_leaf(tensor, gradient, create_graph, False)
        else:  # a non-leaf named in inputs keeps its gradient, as retain_grad() would
            gradient = gradient if create_graph else Tensor._wrap(gradient._data.copy(), gradient._device)
            tensor._grad = gradient if tensor._grad is None else tensor._grad + gradient


def _check_differentiable(caller: str, inputs: tuple) -> None:
    for position, tensor in enumerate(inputs):
        if not isinstance(tensor, Tensor) or not tensor._requires_grad:
            raise GraphError(f"{caller}: input {position} does not require grad; call requires_grad_() on it")


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Return d(outputs)/d(inputs) as a tuple, without touching any ``.grad``.

    Example:
        >>> import gradflow as gf
        >>> x = gf.tensor([1.0, 2.0], requires_grad=True)
        >>> gf.autograd.grad((x**3).sum(), x)  # 3 x^2; create_graph=True makes it differentiable again
        (tensor([ 3., 12.]),)
    """
    outputs = _as_tuple(outputs)
    inputs_tuple = _as_tuple(inputs)
    grads = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    _check_differentiable("autograd.grad", inputs_tuple)
    roots = _make_roots(outputs, grads, "autograd.grad")
    retain = create_graph if retain_graph is None else retain_graph
    results = _execute(roots, retain, create_graph, captures=inputs_tuple)
    for position, result in enumerate(results):
        if result is None and not allow_unused:
            raise GraphError(
                f"autograd.grad: input {position} (shape {shape_str(inputs_tuple[position].shape)}) was not used "
                "to compute the outputs; pass allow_unused=True to get None for it"
            )
    return tuple(results)


def _as_tuple(value) -> tuple:
    if isinstance(value, Tensor) or value is None:
        return (value,)
    return tuple(value)


def _make_roots(tensors, grads, caller: str) -> list:
    if len(grads) != len(tensors):
        raise GraphError(f"{caller}: got {len(tensors)} tensors but {len(grads)} gradients; pass one per tensor")
    roots = []
    for position, (tensor, gradient) in enumerate(zip(tensors, grads)):
        if not tensor._requires_grad:
            raise GraphError(
                f"{caller}: element {position} of tensors does not require grad and has no grad_fn; "
                "set requires_grad=True on the leaves you differentiate with respect to"
            )
        if gradient is None:
            if tensor._data.size != 1:
                raise GraphError(
                    f"{caller}: grad can be implicitly created only for scalar outputs, but the output has "
                    f"shape {shape_str(tensor.shape)}; pass gradient= a tensor of that shape "
                    "(e.g. gradflow.ones_like(out)), or reduce the output first (out.sum())"
                )
            xp = tensor._device.backend.xp
            gradient = Tensor._wrap(xp.ones(tensor._data.shape, dtype=tensor._data.dtype), tensor._device)
        elif not isinstance(gradient, Tensor):
            gradient = Tensor._wrap(tensor._device.backend.asarray(gradient, dtype=tensor._data.dtype), tensor._device)
        if gradient._data.shape != tensor._data.shape:
            raise ShapeError(
                f"{caller}: gradient {position} has shape {shape_str(gradient.shape)} but output {position} "
                f"has shape {shape_str(tensor.shape)}; pass a gradient of the output's shape"
            )
        if gradient._device is not tensor._device:
            raise device_mismatch(
                caller, tensor._device, gradient._device, f"gradient {position}", f"output {position}"
            )
        roots.append((tensor, gradient))
    return roots


class _PassKind(threading.local):
    """Whether the running backward pass accumulates into every leaf's .grad (read by checkpoint)."""

    def __init__(self):
        self.accumulates_everywhere = True


pass_kind = _PassKind()


def _execute(roots, retain_graph: bool, create_graph: bool, captures):
    """Run the backward pass; return captured gradients for ``captures`` (autograd.grad) or None."""
    previous_mode = _state.enabled
    previous_kind = pass_kind.accumulates_everywhere
    _state.enabled = bool(create_graph)
    pass_kind.accumulates_everywhere = captures is None
    try:
        # Backward formulas that work on arrays directly (fused references, Linear's first-order
        # backward) compute inf * 0 and the like silently, as PyTorch does.
        token = fp_errors.enter()
        try:
            return replay(roots, retain_graph, create_graph, captures)
        finally:
            fp_errors.leave(token)
    finally:
        _state.enabled = previous_mode
        pass_kind.accumulates_everywhere = previous_kind
