"""Functional forms of layers, activations and losses (``gradflow.nn.functional``).

The differentiable ops live in ``gradflow.ops`` (one module per family); this
module gathers the ones PyTorch users find under ``torch.nn.functional``. Families are
re-exported whole (their ``__all__``), so a new activation, loss or layer op needs no edit here.
"""

from __future__ import annotations

from ..ops.activation import *
from ..ops.attention import *
from ..ops.conv import *
from ..ops.dropout import *
from ..ops.elementwise import tanh
from ..ops.embedding import *
from ..ops.linalg import linear
from ..ops.loss import *
from ..ops.loss_classification import *
from ..ops.norm import *
from ..ops.padding import pad
from ..ops.pool import *
from ..ops.softmax import log_softmax, softmax
from ..ops.statistics import logsumexp
