"""Functional transforms on top of ``autograd.grad``: jacobian, hessian, vjp, jvp, hvp, vhp.

Signatures, argument checks and return structures follow ``torch.autograd.functional``:
a single Tensor in gives a single Tensor out, a tuple gives a tuple, and a tuple of
outputs against a tuple of inputs gives ``result[i][j]``. Each transform works on
detached copies of the inputs that require grad (so the caller's tensors and their
``.grad`` are untouched); with ``create_graph=True`` those copies are differentiable
aliases instead, so the results can be differentiated again with respect to the
caller's tensors. Forward-mode products (``jvp``, ``strategy="forward-mode"``) use the
double-backward trick: the vector-Jacobian product is linear in its cotangent ``u``, so
differentiating ``u -> J^T u`` with respect to ``u`` against ``v`` gives ``J v``.
"""

from __future__ import annotations

from ..errors import ArgumentTypeError, ArgumentValueError, DtypeError, GraphError, ShapeError, shape_str
from ..ops.join import stack
from ..tensor import Tensor
from .engine import grad as _engine_grad
from .grad_mode import enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]

_STRATEGIES = ("forward-mode", "reverse-mode")


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


def _basis(reference: Tensor, position: int) -> Tensor:
    """A one-hot tensor shaped like ``reference``, fresh each time: the engine may return a seed as a gradient."""
    seed = _zeros_like(reference)
    seed._data.reshape(-1)[position] = 1
    return seed


def _assemble(pieces: list, out: Tensor, inp: Tensor, pieces_are_rows: bool) -> Tensor:
    """Stack per-element gradients into one block of shape ``out.shape + inp.shape``.

    Reverse mode gives one input-shaped row per output element, in the input's dtype;
    forward mode one output-shaped column per input element, in the output's dtype.
    """
    shape = out.shape + inp.shape
    if not pieces:  # an empty output or input, or an output without a graph
        return _zeros(shape, (inp if pieces_are_rows else out)._data.dtype, inp._device)
    return stack(pieces, 0 if pieces_are_rows else out.ndim).reshape(shape)


_BACK_TRICK = (
    "The gradient with respect to the input is independent of entry {index} in the grad_outputs when using the "
    "double backward trick to compute forward mode gradients"
)
_DOUBLE_BACK = "The jacobian of the user-provided function is independent of input {index}"
_DOUBLE_BACK_TRICK = (
    "The hessian of the user-provided function is independent of entry {index} in the grad_jacobian, which "
    "prevents using the double backward trick to replace forward mode AD"
)
_HESSIAN_GRAPHLESS = "The hessian of the user-provided function is independent of input {index}"
_INDEPENDENT = "Output {output} of the user-provided function is independent of input {input}"


def _check_strategy(strategy, fn_name: str, arg_name: str) -> None:
    if strategy not in _STRATEGIES:
        raise ArgumentValueError(
            f'{fn_name}: Expected {arg_name} to be either "forward-mode" or "reverse-mode", got {strategy!r}. Hint: '
            'if your function has more outputs than inputs, "forward-mode" tends to be more performant; otherwise, '
            'prefer "reverse-mode"'
        )


def _reverse_blocks(outputs: tuple, inputs: tuple, create_graph: bool, strict: bool, fn_name: str) -> tuple:
    """Jacobian blocks row by row: one backward pass per output element."""
    blocks = []
    for i, out in enumerate(outputs):
        rows = [[] for _ in inputs]
        for position in range(out.numel() if out._requires_grad else 0):
            seed = _basis(out, position)
            row = _engine_grad([out], inputs, [seed], retain_graph=True, create_graph=create_graph, allow_unused=True)
            missing = _INDEPENDENT.format(output=i, input="{index}")
            for j, gradient in enumerate(_fill_in_zeros(row, inputs, strict, create_graph, fn_name, missing)):
                rows[j].append(gradient)
        blocks.append(tuple(_assemble(rows[j], out, inp, True) for j, inp in enumerate(inputs)))
    return tuple(blocks)


def _forward_blocks(outputs: tuple, inputs: tuple, create_graph: bool, strict: bool, fn_name: str) -> tuple:
    """Jacobian blocks column by column: one Jacobian-vector product per input element.

    The vector-Jacobian product ``u -> J^T u`` is built once with zero cotangents ``u``
    that require grad; differentiating it with respect to ``u`` against a one-hot
    tangent gives one column of every output's block. A None column means that output
    never reaches that input.
    """
    cotangents = tuple(_zeros_like(out, requires_grad=True) for out in outputs)
    grad_inputs = _autograd_grad(outputs, inputs, cotangents, create_graph=True)
    columns = [[[] for _ in inputs] for _ in outputs]
    for j, grad_input in enumerate(grad_inputs):
        if grad_input is None or not grad_input._requires_grad:
            if strict and inputs[j].numel():
                raise GraphError(f"{fn_name}: {_INDEPENDENT.format(output=0, input=j)}. {_STRICT}")
            continue
        missing = _INDEPENDENT.format(output="{index}", input=j)
        graphless = f"The jacobian of the user-provided function is independent of input {j}"
        for position in range(grad_input.numel()):
            tangent = _basis(grad_input, position)
            column = _engine_grad(
                [grad_input], cotangents, [tangent], retain_graph=True, create_graph=create_graph, allow_unused=True
            )
            column = _fill_in_zeros(column, outputs, strict, create_graph, fn_name, missing, graphless)
            for i, product in enumerate(column):
                columns[i][j].append(product)
    return tuple(
        tuple(_assemble(columns[i][j], out, inp, False) for j, inp in enumerate(inputs))
        for i, out in enumerate(outputs)
    )


def _jacobian(func, inputs, create_graph: bool, strict: bool, strategy: str, fn_name: str):
    with enable_grad():
        is_inputs_tuple, inputs = _prepare_inputs(inputs, create_graph, fn_name)
        is_outputs_tuple, outputs = _call(func, inputs, strict, fn_name)
        compute = _forward_blocks if strategy == "forward-mode" else _reverse_blocks
        blocks = compute(outputs, inputs, create_graph, strict, fn_name)
    return _finish(blocks, create_graph, (is_outputs_tuple, is_inputs_tuple))


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """The vector-Jacobian product ``v^T J`` of ``func`` at ``inputs``; returns ``(func_output, vjp)``.

    ``v`` has the shape of the output (a tuple of tensors for a tuple of outputs); it may
    be None when the output is a single one-element tensor. ``vjp`` has the structure of
    ``inputs``. ``strict=True`` raises a GraphError when the outputs do not depend on an
    input instead of returning zeros for it.

    >>> import gradflow as gf
    >>> from gradflow.autograd.functional import vjp
    >>> vjp(lambda x: 2 * x, gf.ones(2), gf.tensor([1.0, 3.0]))[1]
    tensor([2., 6.])
    """
    with enable_grad():
        is_inputs_tuple, inputs = _prepare_inputs(inputs, create_graph, "vjp")
        is_outputs_tuple, outputs = _call(func, inputs, strict, "vjp")
        v = _prepare_v(v, outputs, is_outputs_tuple, create_graph, "vjp", "output")
        result = _autograd_grad(outputs, inputs, v, create_graph=create_graph)
        result = _fill_in_zeros(result, inputs, strict, create_graph, "vjp")
    return _finish(outputs, create_graph, is_outputs_tuple), _finish(result, create_graph, is_inputs_tuple)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """The Jacobian-vector product ``J v`` of ``func`` at ``inputs``; returns ``(func_output, jvp)``.

    ``v`` has the shape of the inputs (None allowed for a single one-element input);
    ``jvp`` has the structure of the output. Computed with the double-backward trick
    (two reverse passes), as ``torch.autograd.functional.jvp`` does.

    >>> import gradflow as gf
    >>> from gradflow.autograd.functional import jvp
    >>> jvp(lambda x: x * x, gf.tensor([1.0, 2.0]), gf.tensor([1.0, 1.0]))[1]
    tensor([2., 4.])
    """
    with enable_grad():
        is_inputs_tuple, inputs = _prepare_inputs(inputs, create_graph, "jvp")
        v = _prepare_v(v, inputs, is_inputs_tuple, create_graph, "jvp", "input")
        is_outputs_tuple, outputs = _call(func, inputs, strict, "jvp")
        # The cotangents' values never reach the result (the backward is linear in them); zeros keep inf/nan out.
        cotangents = tuple(_zeros_like(out, requires_grad=True) for out in outputs)
        grad_inputs = _autograd_grad(outputs, inputs, cotangents, create_graph=True)
        _check_requires_grad(grad_inputs, "grad_inputs", strict, "jvp")
        result = _autograd_grad(grad_inputs, cotangents, v, create_graph=create_graph)
        result = _fill_in_zeros(result, outputs, strict, create_graph, "jvp", _BACK_TRICK)
    return _finish(outputs, create_graph, is_outputs_tuple), _finish(result, create_graph, is_outputs_tuple)


def jacobian(
    func,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
):
    """The Jacobian of ``func`` at ``inputs``.

    One input and one output give one Tensor of shape ``output.shape + input.shape``; a
    tuple on one side gives a tuple; tuples on both give ``result[i][j]`` for output ``i``
    and input ``j``. ``strategy="reverse-mode"`` runs one backward pass per output element
    (blocks take the input's dtype); ``"forward-mode"`` one Jacobian-vector product per
    input element (blocks take the output's dtype), cheaper when outputs outnumber
    inputs. Both support ``create_graph`` and ``strict``. ``vectorize`` is PyTorch's
    performance hint; it is accepted and the same row-by-row path runs.

    >>> import gradflow as gf
    >>> from gradflow.autograd.functional import jacobian
    >>> jacobian(lambda x: x * x, gf.tensor([1.0, 2.0]))
    tensor([[2., 0.],
            [0., 4.]])
    """
    _check_strategy(strategy, "jacobian", "strategy")
    return _jacobian(func, inputs, create_graph, strict, strategy, "jacobian")


def hessian(
    func,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
):
    """The Hessian of a scalar ``func`` at ``inputs``: the Jacobian of its gradient.

    One input gives one Tensor of shape ``input.shape + input.shape``; a tuple of inputs
    gives ``result[i][j]`` of shape ``inputs[i].shape + inputs[j].shape``. The inner
    Jacobian is always reverse mode; ``outer_jacobian_strategy`` picks the outer one.
    ``vectorize`` is accepted as a hint and changes nothing.

    >>> import gradflow as gf
    >>> from gradflow.autograd.functional import hessian
    >>> hessian(lambda x: (x ** 3).sum(), gf.tensor([1.0, 2.0]))
    tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    _check_strategy(outer_jacobian_strategy, "hessian", "outer_jacobian_strategy")

    def scalar_output(*args):
        is_tuple, outputs = _call(func, args, strict, "hessian")
        _require_scalar_output(is_tuple, outputs, "hessian")
        return outputs[0].reshape(())

    def gradient(*args):
        gradients = _jacobian(scalar_output, args, True, False, "reverse-mode", "hessian")
        _check_requires_grad(gradients, "jacobian", strict, "hessian")
        return gradients

    blocks = _jacobian(gradient, inputs, create_graph, strict, outer_jacobian_strategy, "hessian")
    return _tuple_postprocess(blocks, (is_inputs_tuple, is_inputs_tuple))


def _scalar_gradient(func, inputs, v, create_graph: bool, strict: bool, fn_name: str) -> tuple:
    """Shared start of vhp and hvp: checked inputs, v, the scalar output and its gradient (with a graph)."""
    is_inputs_tuple, inputs = _prepare_inputs(inputs, create_graph, fn_name)
    v = _prepare_v(v, inputs, is_inputs_tuple, create_graph, fn_name, "input")
    is_outputs_tuple, outputs = _call(func, inputs, strict, fn_name)
    _require_scalar_output(is_outputs_tuple, outputs, fn_name)
    gradients = _autograd_grad(outputs, inputs, create_graph=True)
    _check_requires_grad(gradients, "jacobian", strict, fn_name)
    return is_inputs_tuple, inputs, v, outputs, gradients


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """The vector-Hessian product ``v^T H`` of a scalar ``func``; returns ``(func_output, vhp)``.

    ``v`` has the shape of the inputs (None allowed for a single one-element input).

    >>> import gradflow as gf
    >>> from gradflow.autograd.functional import vhp
    >>> vhp(lambda x: (x ** 3).sum(), gf.tensor([1.0, 2.0]), gf.tensor([1.0, 1.0]))[1]
    tensor([ 6., 12.])
    """
    with enable_grad():
        is_inputs_tuple, inputs, v, outputs, gradients = _scalar_gradient(func, inputs, v, create_graph, strict, "vhp")
        result = _autograd_grad(gradients, inputs, v, create_graph=create_graph)
        result = _fill_in_zeros(result, inputs, strict, create_graph, "vhp", _DOUBLE_BACK, _HESSIAN_GRAPHLESS)
    return _finish(outputs, create_graph, False), _finish(result, create_graph, is_inputs_tuple)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """The Hessian-vector product ``H v`` of a scalar ``func``; returns ``(func_output, hvp)``.

    Computed with the double-backward trick on the gradient, as PyTorch does; for a
    twice continuously differentiable ``func`` it equals ``vhp`` (H is symmetric), which
    is cheaper.

    >>> import gradflow as gf
    >>> from gradflow.autograd.functional import hvp
    >>> hvp(lambda x: (x ** 3).sum(), gf.tensor([1.0, 2.0]), gf.tensor([1.0, 1.0]))[1]
    tensor([ 6., 12.])
    """
    with enable_grad():
        is_inputs_tuple, inputs, v, outputs, gradients = _scalar_gradient(func, inputs, v, create_graph, strict, "hvp")
        cotangents = tuple(_zeros_like(inp, requires_grad=True) for inp in inputs)
        double_back = _autograd_grad(gradients, inputs, cotangents, create_graph=True)
        result = _autograd_grad(double_back, cotangents, v, create_graph=create_graph)
        result = _fill_in_zeros(result, inputs, strict, create_graph, "hvp", _DOUBLE_BACK_TRICK, _HESSIAN_GRAPHLESS)
    return _finish(outputs, create_graph, False), _finish(result, create_graph, is_inputs_tuple)
