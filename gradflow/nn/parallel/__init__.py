"""Data parallelism across processes: ``DistributedDataParallel`` and ``SyncBatchNorm`` (on gradflow.distributed)."""

from .distributed import DistributedDataParallel, consume_prefix_in_state_dict_if_present
from .sync_batchnorm import SyncBatchNorm

__all__ = ["DistributedDataParallel", "SyncBatchNorm", "consume_prefix_in_state_dict_if_present"]
