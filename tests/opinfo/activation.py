"""Op table entries for the activations (sigmoid and tanh are with the unary math in elementwise.py).

relu, gelu (exact and tanh) and silu run their backward through the fused
``ActivationBackward``; their gradgradcheck differentiates that Function's own backward
against finite differences of the fused first-order gradient. Samples keep away from
kinks (relu, leaky_relu and elu at 0, softplus at its threshold), where finite differences
straddle a jump in the derivative.

``FUSED`` names every fused activation (each name in
``gradflow.backends.fused.elementwise.ACTIVATIONS`` but ``identity``) with the one call that
runs it through ``gradflow.nn.functional`` or ``torch.nn.functional`` alike. The kernel tests
(tests/kernels/test_elementwise.py) and the torch second-order checks
(tests/test_fused_second_order.py) iterate over it, so a new fused activation is one entry
here (and its ``OpInfo`` below) and no edit there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

import gradflow.nn.functional as F

from . import OpInfo, unary_sample


@dataclass(frozen=True)
class FusedActivation:
    """How to call a fused activation: ``call(functional, x)`` with gradflow's or torch's ``nn.functional``."""

    call: Callable
    # Its gradient is ActivationBackward over activation_backward; sigmoid and tanh read theirs from the output.
    fused_backward: bool = True


# Keyed by the name in ACTIVATIONS (tests/kernels/test_elementwise.py checks that the keys match).
FUSED = {
    "relu": FusedActivation(lambda functional, x: functional.relu(x)),
    "gelu": FusedActivation(lambda functional, x: functional.gelu(x)),
    "gelu_tanh": FusedActivation(lambda functional, x: functional.gelu(x, approximate="tanh")),
    "silu": FusedActivation(lambda functional, x: functional.silu(x)),
    "tanh": FusedActivation(lambda functional, x: functional.tanh(x), fused_backward=False),
    "sigmoid": FusedActivation(lambda functional, x: functional.sigmoid(x), fused_backward=False),
    "mish": FusedActivation(lambda functional, x: functional.mish(x)),
}


def _sigmoid(x):
    return special.expit(x)


def _gelu(x):
    return 0.5 * x * (1 + special.erf(x / math.sqrt(2)))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)


OPS = [
    OpInfo("relu", F.relu, lambda x: np.maximum(x, 0), unary_sample(away_from=[0.0]), method="relu"),
    OpInfo(
        "leaky_relu",
        lambda x: F.leaky_relu(x, 0.2),
        lambda x: np.where(x > 0, x, 0.2 * x),
        unary_sample(away_from=[0.0]),
    ),
    OpInfo(
        "elu",
        lambda x: F.elu(x, alpha=1.5),
        lambda x: np.where(x > 0, x, 1.5 * np.expm1(x)),
        unary_sample(away_from=[0.0]),
    ),
    # Wide enough to reach the tails, where the second derivatives change sign.
    OpInfo("gelu", F.gelu, _gelu, unary_sample(-4.0, 4.0)),
    OpInfo("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), _gelu_tanh, unary_sample(-4.0, 4.0)),
    OpInfo("silu", F.silu, lambda x: x * _sigmoid(x), unary_sample(-4.0, 4.0)),
    # Wide enough to reach where mish'' changes sign (near -2.26 and 1.49) and the tails flatten.
    OpInfo("mish", F.mish, lambda x: x * np.tanh(np.log1p(np.exp(x))), unary_sample(-5.0, 5.0)),
    OpInfo("softplus", F.softplus, _softplus, unary_sample(-3.0, 3.0)),
    OpInfo(
        "softplus_beta_threshold",
        lambda x: F.softplus(x, beta=2.0, threshold=1.0),
        lambda x: _softplus(x, 2.0, 1.0),
        unary_sample(away_from=[0.5]),
    ),
]
