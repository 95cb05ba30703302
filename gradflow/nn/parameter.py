"""Parameter: a leaf Tensor that a Module registers as one of its learnable weights."""

from __future__ import annotations

from ..errors import ArgumentTypeError
from ..ops.creation import empty
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that, assigned as a Module attribute, is listed by ``parameters()``.

    It shares memory with ``data`` and requires grad by default. Ops on a
    Parameter return plain Tensors.
    """

    __slots__ = ()

    def __new__(cls, data=None, requires_grad: bool = True):
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise ArgumentTypeError(f"Parameter: data must be a Tensor, got {type(data).__name__}")
        parameter = Tensor._wrap(data._data, data._device, cls=cls)
        parameter._vc = data._shared_version_counter()
        parameter.requires_grad_(requires_grad)
        return parameter

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo):
        """A new Parameter with copied values (``copy.deepcopy(module)`` clones its weights).

        As in PyTorch, ``.grad`` is not copied: the copy starts with no gradient.
        """
        if id(self) not in memo:
            memo[id(self)] = Parameter(self.detach().clone(), self.requires_grad)
        return memo[id(self)]

    def __reduce_ex__(self, protocol):
        raise ArgumentTypeError("Parameter: use gradflow.save(module.state_dict(), path) rather than pickle")
