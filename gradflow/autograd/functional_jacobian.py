"""jacobian and hessian: whole derivative blocks, one autograd pass per row or column.

Reverse mode runs one backward pass per output element (a row of each block); forward mode
one Jacobian-vector product per input element (a column), by the double-backward trick. The
Hessian is the Jacobian of the gradient.
"""

from __future__ import annotations

from ..errors import ArgumentValueError, GraphError
from ..ops.join import stack
from ..tensor import Tensor
from .engine import grad as _engine_grad
from .functional_args import (
    _STRICT,
    _as_tuple,
    _autograd_grad,
    _call,
    _check_requires_grad,
    _fill_in_zeros,
    _finish,
    _prepare_inputs,
    _require_scalar_output,
    _tuple_postprocess,
    _zeros,
    _zeros_like,
)
from .grad_mode import enable_grad

_STRATEGIES = ("forward-mode", "reverse-mode")
_INDEPENDENT = "Output {output} of the user-provided function is independent of input {input}"


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
