"""The autograd engine: grad mode, the tape, gradient checks."""

from .engine import backward, grad
from .gradcheck import gradcheck, gradgradcheck
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = [
    "backward",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
]
