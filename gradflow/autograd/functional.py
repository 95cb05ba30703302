"""Functional transforms on top of ``autograd.grad``: jacobian, hessian, vjp, jvp, hvp, vhp.

Signatures, argument checks and return structures follow ``torch.autograd.functional``:
a single Tensor in gives a single Tensor out, a tuple gives a tuple, and a tuple of
outputs against a tuple of inputs gives ``result[i][j]``. Each transform works on
detached copies of the inputs that require grad (so the caller's tensors and their
``.grad`` are untouched); with ``create_graph=True`` those copies are differentiable
aliases instead, so the results can be differentiated again with respect to the
caller's tensors. Forward-mode products (``jvp``, ``strategy="forward-mode"``) use the
double-backward trick: the vector-Jacobian product is linear in its cotangent ``u``, so
differentiating ``u -> J^T u`` with respect to ``u`` against ``v`` gives ``J v``.

The transforms live by family: ``functional_jacobian.py`` (jacobian, hessian) and
``functional_products.py`` (vjp, jvp, vhp, hvp), on the shared checks of ``functional_args.py``;
this module is their public home, as ``torch.autograd.functional`` is.
"""

from __future__ import annotations

from .functional_jacobian import hessian, jacobian
from .functional_products import hvp, jvp, vhp, vjp

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]
