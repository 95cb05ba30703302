"""The tape: replay recorded nodes in reverse recording order.

``replay`` collects the nodes reachable from the roots with an explicit
stack (no recursion, so a 100,000-op chain is fine), sorts them by sequence
number, highest first, and runs each once its incoming gradient is complete:
every consumer of a node was recorded after it, so it has run already.
Gradients are summed back to each input's shape here and only here.
"""

from __future__ import annotations

from ..errors import AnomalyError, GraphError, ShapeError, shape_str
from ..tensor import Tensor
from . import function as _function
from .anomaly_mode import _anomaly, forward_location
from .function import RETAIN_KEY, Node
from .leaf_accumulation import accumulate_into_leaf


def replay(roots, retain_graph, create_graph, captures):
    """Run the backward pass from ``roots``; return the gradients of ``captures`` (None when not capturing)."""
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
    # In backward(), a leaf is finished (hooks, .grad, post-accumulate hooks) as soon as the last node
    # with an edge to it has run, as PyTorch's AccumulateGrad does: DistributedDataParallel starts
    # reducing early gradients while the rest of backward still runs.
    pending = _leaf_edge_counts(order) if captures is None else None

    def finish_leaves(node) -> None:
        for edge in node.next_edges:
            if edge is None or isinstance(edge[0], Node):
                continue
            key = id(edge[0])
            left = pending[key] - 1
            pending[key] = left
            if left == 0 and key in leaf_buffers:
                finish_leaf(leaf_buffers.pop(key))

    def finish_leaf(entry) -> None:
        leaf, gradient = entry[0], entry.pop()
        hooks = leaf._hooks
        if hooks:
            for hook in tuple(hooks.values()):
                replaced = hook(gradient)
                if replaced is not None:
                    gradient = replaced
        accumulate_into_leaf(leaf, gradient, create_graph, owned is not None and id(leaf) in owned)

    for node in order:
        grads = buffers.pop(node, None)
        if grads is None:
            if pending is not None:
                finish_leaves(node)
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
        if pending is not None:
            # Drop the loop's references so that a leaf's gradient can be recognised as unshared.
            grads = input_grads = gradient = None
            finish_leaves(node)

    # Drop the loop's last references so that a leaf's gradient can be recognised as unshared below.
    grads = input_grads = gradient = None
    if pending is not None:  # leaves that were roots themselves, with no node feeding them
        for entry in tuple(leaf_buffers.values()):
            finish_leaf(entry)
        return captured
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
            accumulate_into_leaf(leaf, gradient, create_graph, owned is not None and id(leaf) in owned)
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


def _leaf_edge_counts(order: list) -> dict:
    """For each leaf (by id), how many edges of the nodes in ``order`` lead to it."""
    counts: dict = {}
    for node in order:
        for edge in node.next_edges:
            if edge is not None and not isinstance(edge[0], Node):
                key = id(edge[0])
                counts[key] = counts.get(key, 0) + 1
    return counts


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
