"""Flatten parameters into one vector and back (for second-order methods and line searches)."""

from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...errors import ArgumentTypeError, DeviceMismatchError, ShapeError, shape_str
from ...ops.join import cat
from ...tensor import Tensor


def parameters_to_vector(parameters) -> Tensor:
    """One 1-D tensor holding every parameter, flattened, in order (differentiable)."""
    parameters = list(parameters)
    devices = {p._device for p in parameters}
    if len(devices) > 1:
        raise DeviceMismatchError(
            f"parameters_to_vector: parameters live on several devices ({', '.join(sorted(map(str, devices)))}); "
            "move the module to one device first"
        )
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of ``vec`` into the parameters, in place."""
    if not isinstance(vec, Tensor):
        raise ArgumentTypeError(f"expected Tensor, but got: {type(vec).__name__}")
    parameters = list(parameters)
    needed = sum(p.numel() for p in parameters)
    if vec.ndim != 1 or vec.numel() != needed:
        raise ShapeError(
            f"vector_to_parameters: vec has shape {shape_str(vec.shape)} but the parameters hold {needed} elements; "
            "pass a 1-D tensor of that length"
        )
    offset = 0
    with no_grad():
        for parameter in parameters:
            count = parameter.numel()
            chunk = vec._data[offset : offset + count].reshape(parameter.shape)
            if vec._device is not parameter._device:
                chunk = parameter._device.backend.from_host(vec._device.backend.to_host(chunk))
            parameter._data[...] = chunk
            parameter._bump_version()
            offset += count
