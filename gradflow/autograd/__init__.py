"""The autograd engine: grad mode, the tape, gradient checks."""

from .engine import backward, grad
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import gradcheck, gradgradcheck

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
