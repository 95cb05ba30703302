"""vjp, jvp, vhp and hvp: products of a Jacobian or Hessian with a vector ``v``.

Each returns ``(func_output, product)``. The products with ``v`` on the right (``jvp``,
``hvp``) use the double-backward trick: two reverse passes, as PyTorch does.
"""

from __future__ import annotations

from .functional_args import (
    _autograd_grad,
    _call,
    _check_requires_grad,
    _fill_in_zeros,
    _finish,
    _prepare_inputs,
    _prepare_v,
    _require_scalar_output,
    _zeros_like,
)
from .grad_mode import enable_grad

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
