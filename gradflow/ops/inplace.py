"""In-place ops: ``add_``, ``mul_``, ``x[i] = v``, ``+=`` ... on top of their out-of-place forms.

An in-place op computes the out-of-place result and writes it into the
tensor's own memory, so views and other references see the change, then
bumps the version counter. When the graph is being recorded, the out-of-place
op runs on a copy of the old value, and the tensor takes over the new node as
its ``grad_fn``; anything that saved the tensor before sees the version change.
"""

from __future__ import annotations

from ..autograd.grad_mode import _state, no_grad
from ..errors import ArgumentTypeError, DtypeError, InplaceError, ShapeError, shape_str
from ..tensor import Tensor
from .compare import where
from .creation import ones


def _records(target: Tensor, others) -> bool:
    if not _state.enabled:
        return False
    return target._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in others)


def apply_inplace(target: Tensor, op_name: str, compute, *others) -> Tensor:
    """Overwrite ``target`` with ``compute(old_value, *others)`` and return ``target``.

    ``compute`` is an out-of-place gradflow op; its result must have target's shape
    and a dtype that casts to target's within its category.
    """
    records = _records(target, others)
    if records:
        if target._node is None and target._requires_grad:
            raise InplaceError(
                f"{op_name}: a leaf tensor that requires grad (shape {shape_str(target.shape)}) is being used in an "
                "in-place operation; do it under `with gradflow.no_grad():` or on a clone()"
            )
        if target._base is not None and (target._base._requires_grad or target._requires_grad):
            raise InplaceError(
                f"{op_name}: in-place change of a view (shape {shape_str(target.shape)}) of a tensor that is part of "
                "the autograd graph is not supported; clone() the view first, or index-assign into the base tensor"
            )
        old = Tensor._wrap(target._data.copy(), target._device, target._requires_grad, target._node, target._output_nr)
        result = compute(old, *others)
    else:
        with no_grad():
            result = compute(target, *others)
    if result._data.shape != target._data.shape:
        raise ShapeError(
            f"{op_name}: output with shape {shape_str(target.shape)} doesn't match the broadcast shape "
            f"{shape_str(result.shape)}; an in-place op cannot change the shape of its tensor"
        )
    if result._dtype.category > target._dtype.category:
        raise DtypeError(
            f"{op_name}: result type {result._dtype.name} can't be cast to the tensor's dtype {target._dtype.name} "
            "in place; use the out-of-place op, or convert the tensor first"
        )
    write_into(target, result._data, op_name)
    if records:
        target._node = result._node
        target._output_nr = result._output_nr
        target._requires_grad = result._requires_grad
    return target


def write_into(target: Tensor, values, op_name: str, index=Ellipsis) -> None:
    """Copy ``values`` into ``target[index]`` in memory and bump its version."""
    array = target._data
    # NumPy marks broadcast views read-only; CuPy does not, so look for zero strides too.
    overlapping = any(stride == 0 and size > 1 for stride, size in zip(array.strides, array.shape))
    if overlapping:
        raise InplaceError(
            f"{op_name}: the tensor of shape {shape_str(target.shape)} is an expanded view (several elements share one "
            "memory location) and can't be written in place; clone() it first"
        )
    if not getattr(array.flags, "writeable", True):
        raise InplaceError(
            f"{op_name}: the memory of the tensor of shape {shape_str(target.shape)} is read-only (e.g. imported from "
            "a read-only NumPy array or a legacy DLPack capsule); clone() it first"
        )
    array[index] = values
    target._bump_version()


def add_(self, other, *, alpha=1) -> Tensor:
    return apply_inplace(self, "add_", lambda old, o: old.add(o, alpha=alpha), other)


def sub_(self, other, *, alpha=1) -> Tensor:
    return apply_inplace(self, "sub_", lambda old, o: old.sub(o, alpha=alpha), other)


def mul_(self, other) -> Tensor:
    return apply_inplace(self, "mul_", lambda old, o: old * o, other)


def div_(self, other, *, rounding_mode=None) -> Tensor:
    return apply_inplace(self, "div_", lambda old, o: old.div(o, rounding_mode=rounding_mode), other)


def pow_(self, exponent) -> Tensor:
    return apply_inplace(self, "pow_", lambda old, e: old**e, exponent)


def clamp_(self, min=None, max=None) -> Tensor:  # noqa: A002
    return apply_inplace(self, "clamp_", lambda old: old.clamp(min, max))


def neg_(self) -> Tensor:
    return apply_inplace(self, "neg_", lambda old: -old)


def zero_(self) -> Tensor:
    """Set every element to 0 (in place)."""
    return fill_(self, 0)


def fill_(self, value) -> Tensor:
    """Set every element to ``value`` (a number or a 0-d tensor), in place."""

    if not _records(self, (value,)):
        write_into(self, value._data if isinstance(value, Tensor) else value, "fill_")
        return self
    return apply_inplace(self, "fill_", _overwrite, value)


def _overwrite(old: Tensor, value) -> Tensor:
    """``value`` broadcast to ``old``'s shape, still linked to ``old`` in the graph (with gradient zero)."""
    everywhere = ones(old.shape, dtype="bool", device=old.device)
    if isinstance(value, Tensor):
        value = value.to(old.dtype)
    return where(everywhere, value, old)


def copy_(self, src, non_blocking: bool = False) -> Tensor:
    """Copy ``src`` (broadcast, cast and moved to this tensor's device) into this tensor, in place."""
    if not isinstance(src, Tensor):
        raise ArgumentTypeError(f"copy_: expected a Tensor as src, got {type(src).__name__}")

    def copied(old, source):
        return _overwrite(old, source.to(device=old.device, dtype=old.dtype))

    if not _records(self, (src,)):
        moved = src.detach().to(device=self.device, dtype=self.dtype)
        write_into(self, moved._data, "copy_")
        return self
    return apply_inplace(self, "copy_", copied, src)


def _unary_inplace(name: str):
    def method(self, *args, **kwargs) -> Tensor:
        return apply_inplace(self, f"{name}_", lambda old: getattr(old, name)(*args, **kwargs))

    method.__name__ = f"{name}_"
    method.__doc__ = f"In-place {name}."
    return method


INPLACE_UNARY = (
    "exp",
    "log",
    "sqrt",
    "abs",
    "sigmoid",
    "tanh",
    "relu",
    "sin",
    "cos",
    "floor",
    "ceil",
    "round",
    "sign",
    "reciprocal",
    "square",
    "trunc",
)


def iadd(self, other) -> Tensor:
    return add_(self, other)


def isub(self, other) -> Tensor:
    return sub_(self, other)


def imul(self, other) -> Tensor:
    return mul_(self, other)


def itruediv(self, other) -> Tensor:
    return div_(self, other)
