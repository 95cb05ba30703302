"""Functional forms of layers and activations (``gradflow.nn.functional``)."""

from __future__ import annotations

from ..ops.activation import elu, gelu, leaky_relu, relu, sigmoid, silu, softplus
from ..ops.elementwise import tanh

__all__ = ["elu", "gelu", "leaky_relu", "relu", "sigmoid", "silu", "softplus", "tanh"]
