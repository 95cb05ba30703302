"""The autograd engine: grad mode, the tape, custom Functions, functional transforms, anomaly detection, checks."""

from . import functional, tensor_methods
from .anomaly_mode import detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled, set_detect_anomaly
from .custom_function import Function, FunctionCtx
from .engine import backward, grad
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import gradcheck, gradgradcheck

tensor_methods.bind()

__all__ = [
    "Function",
    "FunctionCtx",
    "functional",
    "detect_anomaly",
    "is_anomaly_enabled",
    "is_anomaly_check_nan_enabled",
    "set_detect_anomaly",
    "backward",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
]
