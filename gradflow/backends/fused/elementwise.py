"""Activations: ``y = act(x)`` and its backward ``grad * act'(x)`` (``kernels/elementwise.cu``).

The primitives, as both backends expose them:

- ``activation_forward(x, activation) -> y`` in x's dtype.
- ``activation_backward(grad, x, activation) -> grad * act'(x)`` in x's dtype; grad has x's shape.

Activations: ``identity``, ``relu``, ``gelu`` (exact, with erf), ``gelu_tanh`` (torch's
``approximate='tanh'``), ``silu``, ``tanh``, ``sigmoid``, ``mish`` (``x tanh(softplus(x))``).
float16 is computed in float32 and rounded once at the end, in the references and in the
kernels alike. The CUDA side launches one elementwise kernel per call, in 16-byte packs where
every pointer is 16-byte aligned.

The activation's code is its position in ``ACTIVATIONS``, which must match the ``GF_ACT_*``
defines in kernels/elementwise.cu (tests/kernels/test_elementwise.py parses the .cu to check).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special

from ...errors import ArgumentValueError, ShapeError, shape_str
from .. import kernels

# Position = the activation's code in kernels/elementwise.cu (GF_ACT_*).
ACTIVATIONS = ("identity", "relu", "gelu", "gelu_tanh", "silu", "tanh", "sigmoid", "mish")

_FAMILY = "elementwise"
_SUFFIXES = ("float", "double", "gf_half")
# Elements per 16-byte pack, by template argument.
_PACK = {"float": 4, "double": 2, "gf_half": 8}
_BLOCK = 256

KERNELS = tuple(
    f"gf_elementwise_activation_{direction}<{s}, {v}>"
    for direction in ("forward", "backward")
    for s in _SUFFIXES
    for v in (1, _PACK[s])
)

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_CUBIC = 0.044715


def activation_code(activation: str) -> int:
    """The kernel's code for ``activation``; an unknown name raises ValueError listing the known ones."""
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS.index(activation)
    raise ArgumentValueError(
        f"activation: unknown activation {activation!r}; the known ones are {', '.join(ACTIVATIONS)}"
    )


def _check_grad(x, grad) -> None:
    if tuple(grad.shape) != tuple(x.shape):
        raise ShapeError(
            f"activation_backward: grad has shape {shape_str(grad.shape)} but x has shape {shape_str(x.shape)}; "
            "pass the gradient of the output, which has x's shape"
        )


def _compute_dtype(dtype) -> type:
    # float16 (and any narrower float) is computed in float32, as the kernels do.
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


# -- NumPy references --------------------------------------------------------------
def _gelu_tanh_inner(z):
    return _SQRT_2_OVER_PI * (z + _GELU_TANH_CUBIC * z * z * z)


def _tanh_softplus(z):
    # softplus as max(z, 0) + log1p(e^-|z|), which never overflows (torch's log1p(exp(z)) goes to inf
    # past z = 88 in float32, and tanh(inf) = 1 is what this gives there too).
    return np.tanh(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))))


_FORWARD = {
    "identity": lambda z: z.copy(),
    "relu": lambda z: np.maximum(z, 0),  # keeps NaN, as torch does
    # Phi(z) as erfc(-z / sqrt 2) / 2, which does not cancel for z << 0 (as the kernel computes it).
    "gelu": lambda z: 0.5 * z * scipy.special.erfc(z * -_INV_SQRT_2),
    # (1 + tanh(u)) / 2 = sigmoid(2u), which does not cancel for z << 0 either.
    "gelu_tanh": lambda z: z * scipy.special.expit(2 * _gelu_tanh_inner(z)),
    "silu": lambda z: z * scipy.special.expit(z),
    "tanh": np.tanh,
    "sigmoid": scipy.special.expit,  # stable for any |z|
    "mish": lambda z: z * _tanh_softplus(z),
}


def _gelu_backward(g, z):
    cdf = 0.5 * scipy.special.erfc(z * -_INV_SQRT_2)
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    return g * (cdf + z * pdf)


def _gelu_tanh_backward(g, z):
    # With s = sigmoid(2u) = (1 + tanh u) / 2: d/dz [z s] = s + z * 2 s (1 - s) * du/dz.
    s = scipy.special.expit(2 * _gelu_tanh_inner(z))
    d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_CUBIC * z * z)
    return g * (s + 2 * z * s * (1 - s) * d_inner)


def _silu_backward(g, z):
    s = scipy.special.expit(z)
    return g * (s * (1 + z * (1 - s)))


def _sigmoid_backward(g, z):
    s = scipy.special.expit(z)
    return g * (s * (1 - s))


def _tanh_backward(g, z):
    t = np.tanh(z)
    return g * (1 - t * t)


def _mish_backward(g, z):
    # d/dz [z t] with t = tanh(softplus(z)), softplus' = sigmoid; torch's formula and order.
    t = _tanh_softplus(z)
    return g * (t + z * scipy.special.expit(z) * (1 - t * t))


def _relu_backward(g, z):
    # torch selects (threshold_backward): 0 where z <= 0, even for an infinite gradient, and the
    # gradient itself elsewhere, NaN inputs included. np.where does that but is ~10x slower than
    # a multiply on unpredictable masks, so the select is a bitwise AND with an all-ones/zeros mask.
    ints = np.dtype(f"i{g.dtype.itemsize}")
    keep = ~(z <= 0)
    return (g.view(ints) & -keep.view(np.int8).astype(ints)).view(g.dtype)


_BACKWARD = {
    "identity": lambda g, z: g.copy(),
    "relu": _relu_backward,
    "gelu": _gelu_backward,
    "gelu_tanh": _gelu_tanh_backward,
    "silu": _silu_backward,
    "tanh": _tanh_backward,
    "sigmoid": _sigmoid_backward,
    "mish": _mish_backward,
}


def numpy_activation_forward(x, activation):
    """``activation(x)`` in x's dtype."""
    activation_code(activation)
    out = _FORWARD[activation](x.astype(_compute_dtype(x.dtype), copy=False))
    return np.asarray(out).astype(x.dtype, copy=False)


def numpy_activation_backward(grad, x, activation):
    """``grad * act'(x)`` in x's dtype."""
    activation_code(activation)
    _check_grad(x, grad)
    compute = _compute_dtype(x.dtype)
    grad_x = _BACKWARD[activation](grad.astype(compute, copy=False), x.astype(compute, copy=False))
    return np.asarray(grad_x).astype(x.dtype, copy=False)


# -- CUDA launchers ------------------------------------------------------------------
def _launch(direction: str, code: int, operands: tuple, out, anchor) -> None:
    """One elementwise kernel over the flat, C-contiguous ``operands`` and ``out``, in 16-byte packs where aligned."""
    n = out.size
    # The work is flat: a pack may span two rows, and the tail loop takes the last n % width elements.
    width = kernels.pack_width(out.dtype, None, *operands, out)
    grid = kernels.grid_size((n + width - 1) // width, _BLOCK, anchor.device.id)
    name = f"gf_elementwise_activation_{direction}<{kernels.dtype_suffix(out.dtype)}, {width}>"
    kernels.launch(_FAMILY, name, anchor, grid, _BLOCK, (*operands, out, np.int64(n), np.int64(code)))


def cuda_activation_forward(x, activation, out=None):
    """``activation(x)`` by ``gf_elementwise_activation_forward``; ``out`` (x's shape and dtype) is optional."""
    import cupy

    code = activation_code(activation)
    with x.device:
        out = kernels.output_buffer(cupy, out, x.shape, x.dtype, "activation_forward", "out")
        if x.size:
            # ascontiguousarray may turn a 0-d array 1-d: the kernel reads flat arrays, out keeps x's shape.
            _launch("forward", code, (cupy.ascontiguousarray(x).reshape(-1),), out, x)
    return out


def cuda_activation_backward(grad, x, activation, grad_x_out=None):
    """``grad * act'(x)`` by ``gf_elementwise_activation_backward``; ``grad_x_out`` (x's shape, dtype) is optional."""
    import cupy

    code = activation_code(activation)
    _check_grad(x, grad)
    with x.device:
        grad_x = kernels.output_buffer(cupy, grad_x_out, x.shape, x.dtype, "activation_backward", "grad_x_out")
        if x.size:
            flat_grad = cupy.ascontiguousarray(grad, dtype=x.dtype).reshape(-1)
            _launch("backward", code, (flat_grad, cupy.ascontiguousarray(x).reshape(-1)), grad_x, x)
    return grad_x
