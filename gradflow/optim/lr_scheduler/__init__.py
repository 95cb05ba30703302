"""Learning-rate schedulers with PyTorch's names, arguments and sequences.

Create a scheduler after the optimizer and call ``scheduler.step()`` after
``optimizer.step()`` (per epoch, or per batch for CyclicLR and OneCycleLR)::

    optimizer = gradflow.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=100)
    for epoch in range(100):
        train_one_epoch(model, optimizer)
        scheduler.step()

Every scheduler's ``get_lr()`` is PyTorch's chainable form, so the rates equal
``torch.optim.lr_scheduler``'s for the same arguments, and ``state_dict()`` /
``load_state_dict()`` resume a schedule where it stopped.
"""

from ._base import EPOCH_DEPRECATION_WARNING as EPOCH_DEPRECATION_WARNING
from ._base import LRScheduler
from ._base import _LRScheduler as _LRScheduler  # PyTorch keeps the old private name importable
from .combine import ChainedScheduler, SequentialLR
from .cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from .cyclic import CyclicLR
from .decay import ConstantLR, ExponentialLR, LinearLR, MultiStepLR, PolynomialLR, StepLR
from .lambda_lr import LambdaLR, MultiplicativeLR
from .one_cycle import OneCycleLR
from .plateau import ReduceLROnPlateau

__all__ = [
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "SequentialLR",
    "CosineAnnealingLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
    "CyclicLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "PolynomialLR",
    "LRScheduler",
]
