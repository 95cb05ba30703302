"""What every transform of ``autograd.functional`` shares: argument checks, tupling, strict mode.

Inputs are checked and replaced by fresh tensors that require grad (``_prepare_inputs``),
``v`` is checked against the tensors it multiplies (``_prepare_v``), gradients come from
``_autograd_grad`` (None for an unused input), and ``_fill_in_zeros`` turns those None into
zeros, or into a ``GraphError`` in strict mode. Results are detached unless ``create_graph``
and unpacked back to the caller's structure (``_finish``).
"""

from __future__ import annotations

from ..errors import ArgumentTypeError, DtypeError, GraphError, ShapeError, shape_str
from ..tensor import Tensor
from .engine import grad as _engine_grad


def _as_tuple(value, arg_name: str, fn_name: str) -> tuple:
    """(was it a tuple, the tensors as a tuple); anything but a Tensor or a tuple of Tensors is a TypeError."""
    is_tuple = isinstance(value, tuple)
    values = value if is_tuple else (value,)
    for index, element in enumerate(values):
        if not isinstance(element, Tensor):
            where = f"the value at index {index}" if is_tuple else f"the given {arg_name}"
            raise ArgumentTypeError(
                f"{fn_name}: the {arg_name} must be either a Tensor or a tuple of Tensors but {where} has type "
                f"{type(element).__name__}; pass gradflow tensors (a list is not accepted: use a tuple)"
            )
    return is_tuple, values


def _tuple_postprocess(result, to_unpack):
    """Undo ``_as_tuple``: ``to_unpack`` is one flag, or (outer, inner) flags for nested results."""
    if isinstance(to_unpack, tuple):
        outer, inner = to_unpack
        if not inner:
            result = tuple(element[0] for element in result)
        return result if outer else result[0]
    return result if to_unpack else result[0]


def _prepare_inputs(inputs, create_graph: bool, fn_name: str) -> tuple:
    """(was it a tuple, fresh float inputs that require grad) for the transform to differentiate."""
    is_tuple, inputs = _as_tuple(inputs, "inputs", fn_name)
    for index, tensor in enumerate(inputs):
        if not tensor._dtype.is_floating_point:
            raise DtypeError(
                f"{fn_name}: input {index} (shape {shape_str(tensor.shape)}) has dtype {tensor._dtype.name}, but only "
                "floating point tensors can be differentiated; convert it first with .double() or .float()"
            )
    return is_tuple, _grad_preprocess(inputs, create_graph, need_graph=True)


def _grad_preprocess(tensors: tuple, create_graph: bool, need_graph: bool) -> tuple:
    """Fresh tensor objects for the transform, so inputs the function also captures are told apart.

    With ``create_graph`` a tensor that requires grad gets a differentiable alias (a view),
    so results stay connected to it; otherwise a detached leaf that requires grad when
    ``need_graph`` says so.
    """
    prepared = []
    for tensor in tensors:
        if create_graph and tensor._requires_grad:
            prepared.append(tensor.view(tensor.shape))
        else:
            prepared.append(tensor.detach().requires_grad_(need_graph))
    return tuple(prepared)


def _finish(results: tuple, create_graph: bool, to_unpack):
    """Detach (possibly nested) results unless the caller asked for a graph, then undo the tupling."""
    return _tuple_postprocess(results if create_graph else _detached(results), to_unpack)


def _detached(results: tuple) -> tuple:
    return tuple(element.detach() if isinstance(element, Tensor) else _detached(element) for element in results)


def _prepare_v(v, reference: tuple, is_reference_tuple: bool, create_graph: bool, fn_name: str, role: str):
    """Check ``v`` against the tensors it multiplies (``role`` says which), or allow None for one element."""
    if v is None:
        if len(reference) != 1 or reference[0].numel() != 1:
            what = "user-provided function returns" if role == "output" else "input to the user-provided function is"
            sizes = ", ".join(shape_str(tensor.shape) for tensor in reference)
            raise ShapeError(
                f"{fn_name}: The vector v can only be None if the {what} a single Tensor with a single element, "
                f"got {len(reference)} tensor(s) of shape {sizes}; pass v with the {role}'s shape"
            )
        return None
    _, v = _as_tuple(v, "v", fn_name)
    v = _grad_preprocess(v, create_graph, need_graph=False)
    if len(v) != len(reference):
        if is_reference_tuple:
            raise ShapeError(
                f"{fn_name}: v is a tuple of invalid length: should be {len(reference)} but got {len(v)}; "
                f"pass one tensor per {role}"
            )
        raise ShapeError(f"{fn_name}: The given v should contain a single Tensor, got {len(v)}")
    for index, (vector, other) in enumerate(zip(v, reference)):
        if vector.shape != other.shape:
            prefix = f"Entry {index} in " if is_reference_tuple else ""
            raise ShapeError(
                f"{fn_name}: {prefix}v has invalid size: should be {shape_str(other.shape)} but got "
                f"{shape_str(vector.shape)}; v must have the shape of the {role}"
            )
    return v


def _call(func, inputs: tuple, strict: bool, fn_name: str) -> tuple:
    """Run ``func`` and return (was the output a tuple, the outputs as a tuple)."""
    is_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", fn_name)
    _check_requires_grad(outputs, "outputs", strict, fn_name)
    return is_tuple, outputs


def _require_scalar_output(is_tuple: bool, outputs: tuple, fn_name: str) -> None:
    if is_tuple:
        raise ShapeError(
            f"{fn_name}: The function given to {fn_name} should return a single Tensor, got a tuple of "
            f"{len(outputs)}; return one scalar (e.g. the sum of the terms)"
        )
    if outputs[0].numel() != 1:
        raise ShapeError(
            f"{fn_name}: The Tensor returned by the function given to {fn_name} should contain a single element, "
            f"got shape {shape_str(outputs[0].shape)}; reduce it first (e.g. .sum())"
        )


_STRICT = "This is not allowed in strict mode; pass strict=False to get zeros instead"
_STRICT_GRAPH = "This is not allowed in strict mode when create_graph=True; pass strict=False or create_graph=False"
_NO_GRAPH = {
    "outputs": (
        "Output {index} of the user-provided function does not require gradients. The outputs must be computed in "
        "a differentiable manner from the input when running in strict mode"
    ),
    "grad_inputs": "The gradient with respect to input {index} is independent of the inputs of the user-provided "
    "function",
    "jacobian": (
        "While computing the hessian, found that the jacobian of the user-provided function with respect to input "
        "{index} is independent of the input. You should ensure that your function is twice differentiable and that "
        "the jacobian depends on the inputs (this would be violated by a linear function for example)"
    ),
}
_UNUSED = "The output of the user-provided function is independent of input {index}"


def _check_requires_grad(tensors: tuple, kind: str, strict: bool, fn_name: str) -> None:
    """In strict mode, refuse outputs or gradients (``kind``) that cannot depend on the inputs."""
    if not strict:
        return
    for index, tensor in enumerate(tensors):
        if tensor is None:
            raise GraphError(f"{fn_name}: {_UNUSED.format(index=index)}. {_STRICT}")
        if not tensor._requires_grad:
            raise GraphError(f"{fn_name}: {_NO_GRAPH[kind].format(index=index)}. {_STRICT}")


def _autograd_grad(outputs: tuple, inputs: tuple, grad_outputs=None, create_graph=False, retain_graph=None) -> tuple:
    """``autograd.grad`` that skips outputs without a graph (None entries too) and returns None for unused inputs."""
    grad_outputs = (None,) * len(outputs) if grad_outputs is None else grad_outputs
    kept = [(out, g) for out, g in zip(outputs, grad_outputs) if out is not None and out._requires_grad]
    if not kept:
        return (None,) * len(inputs)
    outputs, grad_outputs = zip(*kept)
    return _engine_grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused=True)


def _fill_in_zeros(grads, refs, strict: bool, create_graph: bool, fn_name: str, missing=_UNUSED, graphless=None):
    """Replace None gradients by zeros shaped like ``refs``; strict mode raises instead.

    ``missing`` (for a None) and ``graphless`` (for a gradient without a graph under
    ``create_graph``) are messages with an ``{index}`` field for the gradient's position.
    """
    graphless = graphless or "The jacobian of the user-provided function is independent of input {index}"
    filled = []
    for index, gradient in enumerate(grads):
        if gradient is None:
            if strict:
                raise GraphError(f"{fn_name}: {missing.format(index=index)}. {_STRICT}")
            gradient = _zeros_like(refs[index])
        elif strict and create_graph and not gradient._requires_grad:
            raise GraphError(f"{fn_name}: {graphless.format(index=index)}. {_STRICT_GRAPH}")
        filled.append(gradient)
    return tuple(filled)


def _zeros(shape: tuple, dtype, device, requires_grad: bool = False) -> Tensor:
    with device.backend.context():  # allocate on the tensor's own GPU, not the current one
        return Tensor._wrap(device.backend.xp.zeros(shape, dtype=dtype), device, requires_grad)


def _zeros_like(reference: Tensor, requires_grad: bool = False) -> Tensor:
    return _zeros(reference.shape, reference._data.dtype, reference._device, requires_grad)
