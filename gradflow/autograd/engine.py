"""The tape: replay recorded nodes in reverse recording order.

``backward`` collects the nodes reachable from the roots with an explicit
stack (no recursion, so a 100,000-op chain is fine), sorts them by sequence
number, highest first, and runs each once its incoming gradient is complete:
every consumer of a node was recorded after it, so it has run already.
Gradients are summed back to each input's shape here and only here.
"""

from __future__ import annotations

import sys
import threading

from ..errors import AnomalyError, GraphError, ShapeError, device_mismatch, shape_str
from ..tensor import Tensor
from . import function as _function
from .anomaly_mode import _anomaly, forward_location
from .function import RETAIN_KEY, Node
from .grad_mode import _state


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
            _accumulate_into_leaf(tensor, gradient, create_graph, False)
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


# sys.getrefcount(...) inside _accumulate_into_leaf when nothing outside the engine holds the object:
# a gradient: _run's local, this function's parameter, getrefcount's argument; its array: the
# tensor's slot, getrefcount's argument.
_UNSHARED_GRADIENT_REFERENCES = 3
_UNSHARED_ARRAY_REFERENCES = 2


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
        return _run(roots, retain_graph, create_graph, captures)
    finally:
        _state.enabled = previous_mode
        pass_kind.accumulates_everywhere = previous_kind


def _run(roots, retain_graph, create_graph, captures):
    buffers: dict = {}
    # Leaf gradients are summed here first, so a leaf's hooks see its whole gradient once (as in PyTorch).
    leaf_buffers: dict = {}
    stack = []
    captured = None
    leaf_slots = node_slots = None
    if captures is not None:
        captured = [None] * len(captures)
        leaf_slots = {}
        node_slots = {}
        for slot, tensor in enumerate(captures):
            if tensor._node is None:
                leaf_slots.setdefault(id(tensor), []).append(slot)
            else:
                node_slots.setdefault(tensor._node, []).append((slot, tensor._output_nr))

    # Without create_graph, sums of gradients go into arrays the engine owns, in place: the first
    # sum allocates, later ones add into it (gradients reaching one slot are never aliased by it).
    owned = None if create_graph else set()

    def accumulate(key, previous, gradient):
        if owned is None:
            return previous + gradient
        if key in owned:
            previous._data += gradient._data
            return previous
        owned.add(key)
        return Tensor._wrap(previous._data + gradient._data, previous._device)

    def to_leaf(leaf, gradient):
        entry = leaf_buffers.get(id(leaf))
        if entry is None:
            leaf_buffers[id(leaf)] = [leaf, gradient]
        else:
            entry[1] = accumulate(id(leaf), entry[1], gradient)

    for tensor, gradient in roots:
        node = tensor._node
        if node is None:
            to_leaf(tensor, gradient)
            continue
        buffer = buffers.get(node)
        if buffer is None:
            buffer = buffers[node] = [None] * node.num_outputs
            stack.append(node)
        slot = tensor._output_nr
        buffer[slot] = gradient if buffer[slot] is None else buffer[slot] + gradient

    order = _reachable_nodes(stack)
    needed = _nodes_leading_to(order, leaf_slots, node_slots) if captures is not None else None
    anomaly = _anomaly.enabled
    profiler = _function.profiler_hook

    for node in order:
        grads = buffers.pop(node, None)
        if grads is None:
            continue
        if node.hooks:
            _run_hooks(node, grads)
        if node_slots is not None:
            for slot, output_nr in node_slots.get(node, ()):
                captured[slot] = grads[output_nr]
        if needed is not None and node not in needed:
            continue
        if node.materialize_grads:
            for output_nr, gradient in enumerate(grads):
                if gradient is None:
                    shape, dtype = node.output_meta[output_nr]
                    xp = node.device.backend.xp
                    grads[output_nr] = Tensor._wrap(xp.zeros(shape, dtype=dtype.np), node.out_device or node.device)
        if profiler is not None:
            frame = profiler.enter_backward(node)
        try:  # free until a backward raises; then the profiler closes its frame
            if anomaly:
                input_grads = _backward_with_anomaly_checks(node, grads)
            else:
                input_grads = node.function.backward(node, *grads)
        except BaseException:
            if profiler is not None:
                profiler.drop(frame)
            raise
        if profiler is not None:
            profiler.exit_op(frame)
        if not retain_graph:
            node.release()
        if input_grads.__class__ is not tuple or len(input_grads) != len(node.next_edges):
            input_grads = _check_count(node, input_grads)
        for edge, gradient in zip(node.next_edges, input_grads):
            if edge is None or gradient is None:
                continue
            target, output_nr = edge
            # The input's shape and dtype: its producer's output meta, or the leaf's own.
            if isinstance(target, Node):
                shape, dtype = target.output_meta[output_nr]
            else:
                shape, dtype = target._data.shape, target._dtype
            if gradient._data.shape != shape or gradient._dtype is not dtype:
                gradient = _fit_to_input(node, gradient, shape, dtype)
            if isinstance(target, Node):
                buffer = buffers.get(target)
                if buffer is None:
                    buffer = buffers[target] = [None] * target.num_outputs
                previous = buffer[output_nr]
                buffer[output_nr] = (
                    gradient if previous is None else accumulate((id(target), output_nr), previous, gradient)
                )
            else:
                to_leaf(target, gradient)

    # Drop the loop's last references so that a leaf's gradient can be recognised as unshared below.
    grads = input_grads = gradient = None
    for entry in leaf_buffers.values():
        leaf, gradient = entry[0], entry.pop()
        if captures is not None:
            slots = leaf_slots.get(id(leaf))
            if slots is None:  # a leaf nobody asked for: its hooks do not run (as in PyTorch)
                continue
        hooks = leaf._hooks
        if hooks:
            for hook in tuple(hooks.values()):
                replaced = hook(gradient)
                if replaced is not None:
                    gradient = replaced
        if captures is not None:
            for slot in slots:
                captured[slot] = gradient
        else:
            _accumulate_into_leaf(leaf, gradient, create_graph, owned is not None and id(leaf) in owned)
    return captured


def _backward_with_anomaly_checks(node: Node, grads: list):
    """Run one backward step; name the op and its forward location on an error or a NaN/inf gradient."""
    try:
        input_grads = node.function.backward(node, *grads)
    except Exception as error:
        if hasattr(error, "add_note"):
            error.add_note(f"Error detected in {node.name()}. {forward_location(node)}")
        raise
    if not _anomaly.check_nan:
        return input_grads
    as_tuple = input_grads if isinstance(input_grads, (tuple, list)) else (input_grads,)
    for position, gradient in enumerate(as_tuple):
        if isinstance(gradient, Tensor) and gradient._dtype.is_floating_point:
            xp = gradient._device.backend.xp
            if not bool(xp.isfinite(gradient._data).all()):
                kind = "nan" if bool(xp.isnan(gradient._data).any()) else "inf"
                raise AnomalyError(
                    f"Function '{node.name()}' returned {kind} values in its {_ordinal(position)} output "
                    f"(the gradient for input {position}, shape {shape_str(gradient.shape)}).\n{forward_location(node)}"
                )
    return input_grads


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _reachable_nodes(stack: list) -> list:
    """Every node reachable from ``stack``, highest sequence number first."""
    seen = set(stack)
    order = []
    while stack:
        node = stack.pop()
        order.append(node)
        for edge in node.next_edges:
            if edge is not None:
                target = edge[0]
                if isinstance(target, Node) and target not in seen:
                    seen.add(target)
                    stack.append(target)
    order.sort(key=_sequence_of, reverse=True)
    return order


def _sequence_of(node: Node) -> int:
    return node.seq


def _nodes_leading_to(order: list, leaf_slots: dict, node_slots: dict) -> set:
    """The nodes whose backward can reach a captured input (autograd.grad prunes the rest)."""
    needed = set()
    for node in reversed(order):  # producers before consumers
        for edge in node.next_edges:
            if edge is None:
                continue
            target = edge[0]
            if isinstance(target, Node):
                reaches = target in needed or target in node_slots
            else:
                reaches = id(target) in leaf_slots
            if reaches:
                needed.add(node)
                break
    return needed


def _run_hooks(node: Node, grads: list) -> None:
    for output_nr, hooks in node.hooks.items():
        gradient = grads[output_nr]
        if gradient is None:
            continue
        retain = None
        for key, hook in tuple(hooks.items()):
            if key == RETAIN_KEY:  # retain_grad keeps the gradient as every other hook left it
                retain = hook
                continue
            replaced = hook(gradient)
            if replaced is not None:
                gradient = replaced
        grads[output_nr] = gradient
        if retain is not None:
            retain(gradient)


def _check_count(node: Node, input_grads) -> tuple:
    if input_grads.__class__ is not tuple:
        input_grads = (input_grads,) if not isinstance(input_grads, list) else tuple(input_grads)
    expected = len(node.next_edges)
    if len(input_grads) < expected:
        missing = node.next_edges[len(input_grads) :]
        if any(edge is not None for edge in missing):
            raise GraphError(
                f"{node.name()}: backward returned {len(input_grads)} gradients but forward took {expected} "
                "arguments; return one gradient (or None) per forward argument"
            )
        input_grads = input_grads + (None,) * (expected - len(input_grads))
    elif len(input_grads) > expected:
        raise GraphError(
            f"{node.name()}: backward returned {len(input_grads)} gradients but forward took {expected} "
            "arguments; return one gradient (or None) per forward argument"
        )
    return input_grads


def _fit_to_input(node: Node, gradient: Tensor, shape: tuple, dtype) -> Tensor:
    """Sum a gradient back over broadcast dimensions and cast it to its input's dtype."""
    if gradient._data.shape != shape:
        try:
            gradient = gradient.sum_to_size(shape)
        except ShapeError:
            raise GraphError(
                f"{node.name()}: backward returned a gradient of shape {shape_str(gradient.shape)} for an input "
                f"of shape {shape_str(shape)}; the gradient must have the input's shape or broadcast to it"
            ) from None
    if gradient._dtype is not dtype:
        gradient = gradient.to(dtype)
    return gradient


def _accumulate_into_leaf(leaf: Tensor, gradient: Tensor, create_graph: bool, owned: bool) -> None:
    current = leaf._grad
    if current is None:
        # .grad never aliases another tensor (one gradient may reach several leaves, or be an op's
        # output): copy it unless the engine made this sum itself, or nothing else holds the tensor
        # or its memory (PyTorch "steals" such a gradient too).
        unshared = (
            sys.getrefcount(gradient) <= _UNSHARED_GRADIENT_REFERENCES
            and gradient._data.base is None
            and sys.getrefcount(gradient._data) <= _UNSHARED_ARRAY_REFERENCES
        )
        leaf._grad = (
            gradient if create_graph or owned or unshared else Tensor._wrap(gradient._data.copy(), gradient._device)
        )
    elif not create_graph and current._node is None and getattr(current._data.flags, "writeable", True):
        # As PyTorch does in first-order backward: add into the existing .grad in place (a reference
        # the user holds to it sees the sum; optimizers that cached it stay valid).
        current._data += gradient._data
        current._bump_version()
    else:
        leaf._grad = current + gradient
    post_hooks = leaf._post_hooks
    if post_hooks:
        for hook in tuple(post_hooks.values()):
            hook(leaf)
