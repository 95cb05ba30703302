"""Typed exceptions raised by gradflow.

Each class subclasses the built-in exception a Python user would catch
(``ValueError``, ``TypeError``, ``IndexError``, ``MemoryError``) and, where
PyTorch raises ``RuntimeError`` for the same mistake, ``RuntimeError`` too, so
code written against either habit catches it. Messages name the op, the
shapes, dtypes or devices involved, and what to do about it.
"""

from __future__ import annotations


class GradflowError(Exception):
    """Base class of every error gradflow raises on purpose."""


class ShapeError(GradflowError, ValueError, RuntimeError):
    """Shapes that do not fit the op (broadcasting, matmul, reshape, ...)."""


class DtypeError(GradflowError, TypeError, RuntimeError):
    """A dtype the op cannot take (e.g. gradients of integer tensors)."""


class DeviceMismatchError(GradflowError, RuntimeError, TypeError):
    """Operands of one op live on different devices."""


class DeviceUnavailableError(GradflowError, RuntimeError):
    """The requested device cannot be used on this machine."""


class GraphError(GradflowError, RuntimeError):
    """Misuse of the autograd graph (backward twice, unused inputs, ...)."""


class AnomalyError(GraphError):
    """Anomaly detection found a NaN or inf produced by a backward step."""


class InplaceError(GradflowError, RuntimeError):
    """An in-place op that would make gradients wrong."""


class IndexOutOfRangeError(GradflowError, IndexError):
    """An index or dimension outside the tensor."""


class CheckpointFormatError(GradflowError, ValueError):
    """A checkpoint file that gradflow cannot read safely."""


class StateDictError(GradflowError, KeyError, RuntimeError):
    """A state dict whose keys do not match the module or optimizer loading it."""

    def __str__(self) -> str:  # KeyError would print the message with its newlines escaped
        return str(self.args[0]) if self.args else ""


class OutOfMemoryError(GradflowError, MemoryError, RuntimeError):
    """The device ran out of memory."""


class ArgumentTypeError(GradflowError, TypeError):
    """An op got an argument of the wrong kind, e.g. a Python number where it needs a Tensor."""


class ArgumentValueError(GradflowError, ValueError, RuntimeError):
    """An argument of the right kind but a value the op cannot take (a negative size, zero chunks, p > 1, ...).

    PyTorch raises ``ValueError`` for some of these and ``RuntimeError`` for others; this is both.
    """


class ArgumentKeyError(GradflowError, KeyError):
    """A name or key that is empty, malformed, already taken or not there."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class UsageError(GradflowError, RuntimeError):
    """An object used in the wrong order or state (results read before a profile ends, groups added later, ...)."""


class IntegerDivisionByZeroError(GradflowError, ZeroDivisionError, RuntimeError):
    """Integer division or remainder by zero, which has no integer result (PyTorch raises too)."""


class ValueOutOfRangeError(GradflowError, OverflowError, ValueError, RuntimeError):
    """A number that the requested dtype cannot hold (``tensor([2**70])``, ``full(300, dtype=uint8)``, NaN as int)."""


def not_a_tensor(op: str, value, name: str = "input", position: int = 1) -> ArgumentTypeError:
    """The error for an op called without the Tensor it needs: PyTorch's wording, then the fix."""
    return ArgumentTypeError(
        f"{op}(): argument '{name}' (position {position}) must be a Tensor, not {type(value).__name__}; "
        f"make it one first, e.g. gradflow.{op}(gradflow.tensor({value!r}), ...)"
    )


def device_mismatch(
    op: str, expected, got, role: str | None = None, reference: str = "the input"
) -> DeviceMismatchError:
    """The error every op raises for operands on two devices: it names the op, both devices and the move.

    ``role`` names the odd operand ("index", "mask", ...) and ``reference`` the one whose device
    wins; without a role the message speaks of all tensors.
    """
    if role is None:
        return DeviceMismatchError(
            f"{op}: expected all tensors on the same device, got {expected} and {got}; "
            f"move one explicitly with .to({str(expected)!r}) or .to({str(got)!r})"
        )
    return DeviceMismatchError(
        f"{op}: the {role} is on {got} but {reference} is on {expected}; move it with .to({str(expected)!r})"
    )


def shape_str(shape) -> str:
    """Format a shape the way messages show it: ``[2, 3]``."""
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


class GradcheckError(GradflowError, RuntimeError):
    """Analytical and numerical gradients disagree."""


class MissingDependencyError(GradflowError, ImportError):
    """An optional package or program that a feature needs is not installed (the message says what to install)."""


class DistributedError(GradflowError, RuntimeError):
    """A collective that cannot run: no process group, ranks that disagree or do not arrive, a wrong backend."""
