"""Finite-difference checks of gradients (first and second order).

``gradcheck`` compares the Jacobian that backward computes with central
differences, element by element; ``gradgradcheck`` does the same for the
gradient function itself (built with ``create_graph=True``). Use float64
inputs: float32 central differences are too coarse for the tolerances.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentValueError, GradcheckError, shape_str
from ..tensor import Tensor
from .engine import grad as autograd_grad
from .grad_mode import enable_grad, no_grad


def _as_tuple(value) -> tuple:
    return (value,) if isinstance(value, Tensor) else tuple(value)


def _differentiable_outputs(fn, inputs) -> tuple:
    return tuple(out for out in _as_tuple(fn(*inputs)) if isinstance(out, Tensor) and out.dtype.is_floating_point)


def _host_outputs(fn, inputs) -> list:
    """The float outputs of ``fn(*inputs)`` as flat float64 host arrays."""
    return [
        out._device.backend.to_host(out._data).astype(np.float64).ravel() for out in _differentiable_outputs(fn, inputs)
    ]


def _numerical_jacobians(fn, inputs, targets, eps: float) -> list:
    """J[k][i] of shape (numel(output k), numel(input i)) from central differences."""
    with no_grad():
        outputs = _differentiable_outputs(fn, inputs)
    jacobians = [[np.zeros((out.numel(), inputs[i].numel())) for i in targets] for out in outputs]
    for column, i in enumerate(targets):
        array = inputs[i]._data
        for flat in range(array.size):
            position = np.unravel_index(flat, array.shape)
            original = array[position].item()
            with no_grad():
                array[position] = original + eps
                plus = _host_outputs(fn, inputs)
                array[position] = original - eps
                minus = _host_outputs(fn, inputs)
                array[position] = original
            for k in range(len(outputs)):
                jacobians[k][column][:, flat] = (plus[k] - minus[k]) / (2 * eps)
    return jacobians


def _analytical_jacobians(fn, inputs, targets) -> list:
    """J[k][i] from one backward pass per output element."""
    differentiated = [inputs[i] for i in targets]
    outputs = _differentiable_outputs(fn, inputs)
    jacobians = [[np.zeros((out.numel(), inputs[i].numel())) for i in targets] for out in outputs]
    for k, out in enumerate(outputs):
        if not out.requires_grad:
            continue
        xp = out._device.backend.xp
        for row in range(out.numel()):
            seed = xp.zeros(out.numel(), dtype=out._data.dtype)
            seed[row] = 1
            grad_output = Tensor._wrap(seed.reshape(out.shape), out._device)
            grads = autograd_grad(out, differentiated, grad_output, retain_graph=True, allow_unused=True)
            for column, gradient in enumerate(grads):
                if gradient is not None:
                    host = gradient._device.backend.to_host(gradient._data)
                    jacobians[k][column][row, :] = host.astype(np.float64).ravel()
    return jacobians


def _compare(numerical, analytical, inputs, targets, rtol, atol, raise_exception, what="Jacobian") -> bool:
    """True when every analytical Jacobian matches its numerical one; else raise (or return False)."""
    for k, (num_row, ana_row) in enumerate(zip(numerical, analytical)):
        for column, (num, ana) in enumerate(zip(num_row, ana_row)):
            if num.shape != ana.shape or not np.allclose(ana, num, rtol=rtol, atol=atol, equal_nan=True):
                if not raise_exception:
                    return False
                difference = np.abs(ana - num) if num.shape == ana.shape else np.zeros((1, 1))
                worst = np.unravel_index(np.argmax(difference), difference.shape) if difference.size else (0, 0)
                index = targets[column]
                raise GradcheckError(
                    f"gradcheck: {what} mismatch for output {k} with respect to input {index} "
                    f"(shape {shape_str(inputs[index].shape)}): at (output element {worst[0]}, input element "
                    f"{worst[1]}) analytical {ana[worst]:.6g} vs numerical {num[worst]:.6g}\n"
                    f"analytical:\n{ana}\nnumerical:\n{num}"
                )
    return True


def _targets(inputs) -> list:
    targets = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not targets:
        raise ArgumentValueError("gradcheck: no input requires grad; set requires_grad=True on the inputs to check")
    return targets


def gradcheck(
    fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True
) -> bool:
    """Check the gradients of ``fn`` at ``inputs`` against central differences.

    Every input tensor with ``requires_grad=True`` is checked against every
    floating-point output. Returns True, or raises ``GradcheckError`` naming
    the output, the input and the worst element (False if ``raise_exception=False``).

    >>> import gradflow as gf
    >>> x = gf.randn(3, dtype=gf.float64, requires_grad=True)
    >>> gf.autograd.gradcheck(lambda t: (t * t).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    targets = _targets(inputs)
    numerical = _numerical_jacobians(fn, inputs, targets, eps)
    analytical = _analytical_jacobians(fn, inputs, targets)
    return _compare(numerical, analytical, inputs, targets, rtol, atol, raise_exception)


def gradgradcheck(
    fn,
    inputs,
    grad_outputs=None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Check second derivatives: gradcheck of the vector-Jacobian product of ``fn``.

    ``grad_outputs`` default to random float64 tensors shaped like the outputs.

    The reference is the first-order gradient as plain ``backward`` computes it (the path
    ``gradcheck`` verifies against finite differences of ``fn``): the vector-Jacobian product
    that ``create_graph=True`` returns must equal it, and the graph it records is differentiated
    and compared with central differences of that first-order product. So a backward whose
    create_graph branch computes a different (wrong) formula fails here, not only one whose
    recorded graph does not match its own values.

    >>> import gradflow as gf
    >>> x = gf.randn(3, dtype=gf.float64, requires_grad=True)
    >>> gf.autograd.gradgradcheck(lambda t: (t * t * t).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    targets = _targets(inputs)
    outputs = _differentiable_outputs(fn, inputs)
    if grad_outputs is None:
        generator = np.random.default_rng(0)
        grad_outputs = tuple(
            Tensor._wrap(
                out._device.backend.from_host(generator.standard_normal(out.shape).astype(out._data.dtype)), out._device
            ).requires_grad_()
            for out in outputs
        )
    grad_outputs = _as_tuple(grad_outputs)
    count = len(inputs)

    def vector_jacobian_product(create_graph: bool):
        def product(*values):
            # gradcheck evaluates this under no_grad for its finite differences; the inner
            # backward still needs a graph to differentiate through.
            with enable_grad():
                primal, cotangents = values[:count], values[count:]
                outs = _differentiable_outputs(fn, primal)
                used = [(o, c) for o, c in zip(outs, cotangents) if o.requires_grad]
                if not used:
                    return tuple()
                grads = autograd_grad(
                    [o for o, _ in used],
                    [primal[i] for i in targets],
                    [c for _, c in used],
                    retain_graph=True,
                    create_graph=create_graph,
                    allow_unused=True,
                )
                # An unused input's gradient is zero on both paths, so the outputs line up.
                return tuple(
                    g
                    if g is not None
                    else Tensor._wrap(primal[i]._device.backend.xp.zeros_like(primal[i]._data), primal[i]._device)
                    for i, g in zip(targets, grads)
                )

        return product

    first_order, recorded = vector_jacobian_product(False), vector_jacobian_product(True)
    all_inputs = inputs + grad_outputs
    all_targets = _targets(all_inputs)
    # The values first: a constant error in the create_graph formula has the right derivatives.
    expected, got = _host_outputs(first_order, all_inputs), _host_outputs(recorded, all_inputs)
    for k, (want, have) in enumerate(zip(expected, got)):
        if want.shape != have.shape or not np.allclose(have, want, rtol=rtol, atol=atol, equal_nan=True):
            if not raise_exception:
                return False
            worst = int(np.argmax(np.abs(have - want))) if want.shape == have.shape and want.size else 0
            raise GradcheckError(
                f"gradgradcheck: the gradient with respect to input {targets[k]} differs between create_graph=True "
                f"and plain backward (at element {worst}); the backward's create_graph formula is wrong\n"
                f"create_graph=True:\n{have}\nplain backward:\n{want}"
            )
    numerical = _numerical_jacobians(first_order, all_inputs, all_targets, eps)
    analytical = _analytical_jacobians(recorded, all_inputs, all_targets)
    return _compare(numerical, analytical, all_inputs, all_targets, rtol, atol, raise_exception)
