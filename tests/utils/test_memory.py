"""peak_memory: nested blocks keep the outer peak, and the CUDA hook counts only the measured device."""

from __future__ import annotations

import numpy as np
import pytest

from gradflow.utils.memory import peak_memory


def test_nested_peak_memory_keeps_the_outer_peak():
    size = 2_000_000  # 16 MB of float64
    with peak_memory() as outer:
        big = np.ones(size)
        del big
        with peak_memory() as inner:
            small = np.ones(100)
            del small
    assert inner.peak_bytes < size * 8 // 10
    assert outer.peak_bytes >= size * 8  # the inner block's reset must not erase it


def test_cuda_peak_hook_counts_only_the_measured_device():
    pytest.importorskip("cupy")
    from gradflow.utils.memory import _cupy_peak_hook

    # Driven by hand (no GPU needed): CuPy calls the hook for every GPU's pool, cuda:0's included.
    hook = _cupy_peak_hook(1)
    hook.malloc_postprocess(device_id=0, size=100, mem_size=512, mem_ptr=1, pmem_id=1)
    hook.malloc_postprocess(device_id=1, size=10, mem_size=256, mem_ptr=2, pmem_id=2)
    hook.free_postprocess(device_id=1, mem_size=256, mem_ptr=2, pmem_id=2)
    assert hook.peak == 256 and hook.in_use == 0
