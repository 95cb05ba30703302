"""The differentiable op library, one module per family, written once against ``xp``."""

from . import methods

methods.bind()
