"""The Tensor methods that run the engine: ``backward`` and ``retain_grad``.

``gradflow/tensor.py`` sits below the engine, so it cannot call it; this module, which sits
above both, defines the two methods and ``bind()`` puts them on Tensor when
``gradflow.autograd`` is imported (``tensor.pyi`` declares them for readers and type checkers).
"""

from __future__ import annotations

import weakref

from ..errors import GraphError
from ..tensor import Tensor
from .engine import backward as _run_backward
from .grad_mode import is_grad_enabled


def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """Accumulate the gradient of this tensor into the ``.grad`` of the leaves."""
    _run_backward(self, None if gradient is None else (gradient,), retain_graph, create_graph, inputs)


def retain_grad(self) -> None:
    """Keep ``.grad`` for this non-leaf tensor after backward."""
    if self._node is None:
        if not self._requires_grad:
            raise GraphError("retain_grad: can't retain_grad on a tensor that doesn't require grad")
        return
    if self._retains_grad:
        return
    self._retains_grad = True
    reference = weakref.ref(self)

    def keep_grad(gradient):
        tensor = reference()
        if tensor is None:
            return
        if not is_grad_enabled():  # first-order backward: keep a copy the engine can't touch
            gradient = Tensor._wrap(gradient._data.copy(), gradient._device)
        # Under create_graph the retained gradient stays differentiable, as in PyTorch.
        tensor._grad = gradient if tensor._grad is None else tensor._grad + gradient

    self._node.register_retain_hook(self._output_nr, keep_grad)


def bind() -> None:
    """Install ``backward`` and ``retain_grad`` on Tensor (idempotent)."""
    Tensor.backward = backward
    Tensor.retain_grad = retain_grad
