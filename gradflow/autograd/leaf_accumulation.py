"""Leaf accumulation: a finished leaf gradient becomes (or is added into) ``.grad``.

Called by the tape replay as each leaf's gradient completes, and by ``backward(inputs=...)``
for the leaves it captured; post-accumulate-grad hooks run here.
"""

from __future__ import annotations

import sys

from ..tensor import Tensor

# sys.getrefcount(...) inside accumulate_into_leaf when nothing outside the engine holds the object:
# a gradient: the caller's local, this function's parameter, getrefcount's argument; its array: the
# tensor's slot, getrefcount's argument.
_UNSHARED_GRADIENT_REFERENCES = 3
_UNSHARED_ARRAY_REFERENCES = 2


def accumulate_into_leaf(leaf: Tensor, gradient: Tensor, create_graph: bool, owned: bool) -> None:
    """Store or add ``gradient`` into ``leaf.grad`` (in place when first-order), then run its post-accumulate hooks.

    ``owned``: the engine made this array itself (a sum), so it can become ``.grad`` without a copy.
    """
    current = leaf._grad
    if current is None:
        # .grad never aliases another tensor (one gradient may reach several leaves, or be an op's
        # output): copy it unless the engine made this sum itself, or nothing else holds the tensor
        # or its memory (PyTorch "steals" such a gradient too).
        unshared = (
            sys.getrefcount(gradient) <= _UNSHARED_GRADIENT_REFERENCES
            and gradient._data.base is None
            and sys.getrefcount(gradient._data) <= _UNSHARED_ARRAY_REFERENCES
        )
        leaf._grad = (
            gradient if create_graph or owned or unshared else Tensor._wrap(gradient._data.copy(), gradient._device)
        )
    elif not create_graph and current._node is None and getattr(current._data.flags, "writeable", True):
        # As PyTorch does in first-order backward: add into the existing .grad in place (a reference
        # the user holds to it sees the sum; optimizers that cached it stay valid).
        current._data += gradient._data
        current._bump_version()
    else:
        leaf._grad = current + gradient
    post_hooks = leaf._post_hooks
    if post_hooks:
        for hook in tuple(post_hooks.values()):
            hook(leaf)
