"""SyncBatchNorm: batch normalisation whose statistics cover the whole global batch, across all ranks.

In training, each rank sums its slice per channel; one all-reduce gives the global mean and
variance, so every rank normalises exactly as one process would on the whole batch. Backward
all-reduces the two per-channel sums the input gradient needs. The weight and bias gradients
stay local sums, which DistributedDataParallel then averages like every other gradient (as in
PyTorch). Outside a process group of more than one rank, or in eval mode, it is BatchNorm.
"""

from __future__ import annotations

import numpy as np

from ... import distributed as dist
from ...autograd.custom_function import Function
from ...autograd.grad_mode import no_grad
from ...errors import ShapeError
from ...tensor import Tensor
from ..module import Module
from ..modules.normalization import _BatchNorm


class _SyncBatchNormFunction(Function):
    @staticmethod
    def forward(ctx, input, weight, bias, running_mean, running_var, eps, momentum):
        x = input._data
        xp = input.device.backend.xp
        axes = (0, *range(2, x.ndim))
        channels = x.shape[1]
        count = x.size // channels
        # float64 sums: the global variance is E[x^2] - E[x]^2, which float32 would round badly.
        wide = x.astype(np.float64)
        stats = xp.concatenate([wide.sum(axis=axes), (wide * wide).sum(axis=axes), xp.asarray([float(count)])])
        stats_tensor = Tensor._wrap(stats, input.device)
        dist.all_reduce(stats_tensor)
        total = float(stats[-1])
        mean = stats[:channels] / total
        var = xp.maximum(stats[channels : 2 * channels] / total - mean * mean, 0.0)
        shape = (1, channels) + (1,) * (x.ndim - 2)
        invstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)
        normalized = (x - mean.astype(x.dtype).reshape(shape)) * invstd.reshape(shape)
        output = normalized
        if weight is not None:
            output = output * weight._data.reshape(shape)
        if bias is not None:
            output = output + bias._data.reshape(shape)
        if running_mean is not None:
            running_mean._data[...] = (1 - momentum) * running_mean._data + momentum * mean
            running_mean._bump_version()
        if running_var is not None:
            unbiased = var * total / max(total - 1.0, 1.0)
            running_var._data[...] = (1 - momentum) * running_var._data + momentum * unbiased
            running_var._bump_version()
        ctx.normalized = normalized
        ctx.invstd = invstd.reshape(shape)
        ctx.total = total
        ctx.axes = axes
        ctx.weight = None if weight is None else weight._data.reshape(shape)
        return Tensor._wrap(output.astype(x.dtype, copy=False), input.device)

    @staticmethod
    def backward(ctx, grad_output):
        dy = grad_output._data
        device = grad_output.device
        xp = device.backend.xp
        normalized = ctx.normalized
        sum_dy = dy.sum(axis=ctx.axes)
        sum_dy_normalized = (dy * normalized).sum(axis=ctx.axes)
        grad_weight = Tensor._wrap(sum_dy_normalized.copy(), device)  # local: DDP averages it
        grad_bias = Tensor._wrap(sum_dy.copy(), device)
        sums = Tensor._wrap(xp.concatenate([sum_dy, sum_dy_normalized]), device)
        dist.all_reduce(sums)
        channels = sum_dy.shape[0]
        shape = ctx.invstd.shape
        mean_dy = (sums._data[:channels] / ctx.total).reshape(shape)
        mean_dy_normalized = (sums._data[channels:] / ctx.total).reshape(shape)
        scale = ctx.invstd if ctx.weight is None else ctx.invstd * ctx.weight
        grad_input = scale * (dy - mean_dy - normalized * mean_dy_normalized)
        return (
            Tensor._wrap(grad_input.astype(dy.dtype, copy=False), device),
            grad_weight,
            grad_bias,
            None,
            None,
            None,
            None,
        )


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation over (N, C, *) input whose training statistics span every rank's batch.

    Same arguments as BatchNorm; ``process_group`` is accepted as in PyTorch (the default group is
    used). Convert a model's BatchNorm layers with ``SyncBatchNorm.convert_sync_batchnorm(model)``.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group=None,
        device=None,
        dtype=None,
    ):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input) -> None:
        if input.ndim < 2:
            raise ShapeError(
                f"SyncBatchNorm: expected at least 2D input (N, C, *), got {input.ndim}D input of shape "
                f"{list(input.shape)}"
            )

    def forward(self, input):
        self._check_input_dim(input)
        syncing = self.training and dist.is_initialized() and dist.get_world_size() > 1
        if not syncing:
            return super().forward(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        track = self.track_running_stats
        return _SyncBatchNormFunction.apply(
            input,
            self.weight,
            self.bias,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.eps,
            factor,
        )

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """Replace every BatchNorm layer in ``module`` with a SyncBatchNorm that shares its parameters and buffers.

        Returns the converted module (``module`` itself, changed in place, unless it is a BatchNorm).
        """
        converted = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                process_group,
            )
            if module.affine:
                converted.weight = module.weight
                converted.bias = module.bias
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
            converted.train(module.training)
        for name, child in list(module.named_children()):
            converted.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return converted
