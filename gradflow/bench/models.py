"""The three built-in workloads of ``gradflow bench``, for gradflow and (identically) for torch.

Each model is written once against a framework module ``lib`` (``gradflow`` or ``torch``:
they share the API), so the baseline runs the same architecture and the same step:

- ``mlp``: 784-1024-1024-10 with ReLU on flat 28x28 images (the training issue's MLP);
- ``cnn``: conv 32 3x3 - ReLU - maxpool 2 - conv 64 3x3 - ReLU - maxpool 2 - linear 10 on 1x28x28;
- ``transformer``: token embedding + learned positions, a 2-layer TransformerEncoder (d_model 128,
  4 heads, feed-forward 256, no dropout, batch first), mean over the 64 tokens, linear 10.

Inputs are random (the step's cost does not depend on the values); targets are 10 classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from .. import dtypes, nn
from ..errors import ArgumentValueError
from ..ops.creation import randint, randn

__all__ = ["MODELS", "Workload", "workload"]

# The part of gradflow's namespace the builders use, taken from the modules that define it: bench is
# imported by the `gradflow` package, so importing that package here would be a cycle.
_GRADFLOW = SimpleNamespace(nn=nn, randn=randn, randint=randint)

CLASSES = 10
SEQUENCE, VOCABULARY, D_MODEL, HEADS, LAYERS, FEED_FORWARD = 64, 1000, 128, 4, 2, 256


def _mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, CLASSES))


def _cnn(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, CLASSES),
    )


def _transformer(lib):
    nn = lib.nn

    class TokenClassifier(nn.Module):
        """Classify a sequence of token ids: embed, encode, average over positions, project."""

        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(VOCABULARY, D_MODEL)
            self.position = nn.Parameter(lib.randn(1, SEQUENCE, D_MODEL) * 0.02)
            layer = nn.TransformerEncoderLayer(
                D_MODEL, HEADS, dim_feedforward=FEED_FORWARD, dropout=0.0, batch_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
            self.head = nn.Linear(D_MODEL, CLASSES)

        def forward(self, tokens):
            hidden = self.encoder(self.embedding(tokens) + self.position)
            return self.head(hidden.mean(dim=1))

    return TokenClassifier()


def _images(shape):
    def make(lib, batch_size, device, dtype):
        inputs = lib.randn(batch_size, *shape, device=device).to(dtype)
        return inputs, lib.randint(0, CLASSES, (batch_size,), device=device)

    return make


def _tokens(lib, batch_size, device, dtype):
    tokens = lib.randint(0, VOCABULARY, (batch_size, SEQUENCE), device=device)
    return tokens, lib.randint(0, CLASSES, (batch_size,), device=device)


_BUILDERS = {
    "mlp": (_mlp, _images((784,))),
    "cnn": (_cnn, _images((1, 28, 28))),
    "transformer": (_transformer, _tokens),
}
MODELS = tuple(_BUILDERS)


@dataclass(frozen=True)
class Workload:
    """A built-in model's builders: ``model_fn`` / ``input_fn`` for gradflow, ``torch_*`` for the baseline.

    ``input_fn(batch_size, device)`` returns ``(inputs, targets)`` in ``dtype`` (token ids stay int64).
    """

    name: str
    dtype: str = "float32"

    def model_fn(self):
        return _BUILDERS[self.name][0](_GRADFLOW)

    def input_fn(self, batch_size: int, device):
        return _BUILDERS[self.name][1](_GRADFLOW, batch_size, device, getattr(dtypes, self.dtype))

    def torch_model_fn(self):
        import torch

        return _BUILDERS[self.name][0](torch)

    def torch_input_fn(self, batch_size: int, device):
        import torch

        return _BUILDERS[self.name][1](torch, batch_size, device, getattr(torch, self.dtype))


def workload(name: str, dtype: str = "float32") -> Workload:
    """The built-in workload ``name`` (one of ``MODELS``)."""
    if name not in _BUILDERS:
        raise ArgumentValueError(f"bench: unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return Workload(name, dtype)
