"""The CUDA backend's SGD and Adam/AdamW: one launch of ``kernels/optim.cu`` per parameter group and dtype.

The launchers take the lists of arrays documented in ``gradflow/backends/optim_numpy.py``
(the CPU implementation: the reference these kernels are tested against) and update
parameters and state in place; ``gradflow.optim._functional`` calls them (through
``CupyBackend``) with the step-dependent scalars already computed. Every tensor of a
group is handled by ONE launch:

- a device table of ``[param, grad, state0, state1, state2, numel]`` per tensor (pointers as
  integers) and a chunk table of ``[tensor, first element]`` per ``CHUNK_ELEMENTS`` elements;
  each block walks chunks, each thread elements. The chunk table depends only on the sizes and
  the tensor table only on the pointers, so each is cached by them: after the first step
  building them costs dict look-ups, and a gradient at a new address re-uploads only the
  small tensor table (asynchronously).
  The checks of parameters and state run once too (a layout cached by the arrays' identities);
  only the gradients, new arrays each step, are checked per call. Measured on one H100 (torch
  2.11 on the same card): Adam over 64M float32 parameters in 100 tensors took 0.64 ms, 96% of
  the device-to-device copy bandwidth at 28 bytes per parameter, against 0.77 ms for
  ``torch.optim.Adam(fused=True)``; about 0.28 ms of host time per call.
- scalars (learning rate, bias corrections) are kernel arguments; when the tensors' step
  counts differ (parameters added later), a small per-tensor array carries the corrections
  (Adam's step sizes, SGD's first-step flags).
- parameters of different dtypes go to one launch per dtype. float32 and float64 parameters
  keep state of their own dtype; float16 and bfloat16 parameters keep float32 state, compute
  in float32 and are rounded to nearest even once per step (mixed precision).
- bfloat16 has no NumPy/CuPy dtype: pass its bits as uint16 arrays with ``param_dtype="bfloat16"``.
- 16-byte vector loads when every pointer of the launch is 16-byte aligned (CuPy's allocations
  are); the last few elements of each tensor take the scalar path.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import numpy as np

from ...errors import ArgumentValueError, DeviceMismatchError, DtypeError, ShapeError
from .. import kernels

# Elements per chunk (one block's work item); a multiple of 4 keeps vector positions 16-byte aligned.
CHUNK_ELEMENTS = 16384
BLOCK = 256
# Grid cap per SM: well above the resident blocks, so chunks spread as many even waves, not one long tail.
GRID_BLOCKS_PER_SM = 32

_STORAGE = ("float", "double", "gf_half", "gf_bfloat16")
KERNELS = tuple(f"gf_optim_{op}<{t}, {v}>" for op in ("adam", "sgd") for t in _STORAGE for v in ("false", "true"))

_TABLE_CACHE: OrderedDict = OrderedDict()
_LAYOUTS: OrderedDict = OrderedDict()
_TABLE_CACHE_SIZE = 64  # distinct (device, layout) tables kept; bounded so nothing grows without end


def _check_param_dtype(param_dtype) -> None:
    if param_dtype not in (None, "bfloat16"):
        raise ArgumentValueError(
            f"param_dtype must be None or 'bfloat16' (uint16 arrays then hold bfloat16 bits), got {param_dtype!r}"
        )


def _storage(array, param_dtype, op: str) -> str:
    """The kernel's storage type for a parameter array (and the state dtype it needs)."""
    dtype = np.dtype(array.dtype)
    if dtype == np.uint16 and param_dtype == "bfloat16":
        return "gf_bfloat16"
    if dtype == np.uint16:
        raise DtypeError(f"{op}: got a uint16 parameter; pass param_dtype='bfloat16' if it holds bfloat16 bits")
    return kernels.dtype_suffix(dtype)


def _state_dtype(storage: str):
    return np.dtype(np.float64) if storage == "double" else np.dtype(np.float32)


class _Launch:
    """The tensors of one launch (one parameter dtype): positions, static pointers and sizes."""

    def __init__(self, storage: str):
        self.storage = storage
        self.indices: list[int] = []
        self.static: list[tuple] = []  # (param, state0, state1, state2 pointers, numel) per tensor
        self.aligned = True  # every static pointer 16-byte aligned


class _Layout:
    """The parameters and state of one call, checked and split into launches by parameter dtype.

    Parameters and optimizer state are the same array objects step after step, so a layout is
    cached by their identities (weak references confirm them) and the checks run once; only the
    gradients, new arrays each step, are checked on every call (``_rows``).
    """

    def __init__(self, cupy, op: str, params, state_lists, param_dtype):
        self.write_backs: list[tuple] = []  # (original, contiguous copy) for non-contiguous arrays
        self.device_id = params[0].data.device_id
        launches: dict[str, _Launch] = {}
        for index, param in enumerate(params):
            storage = _storage(param, param_dtype, op)
            states = [states[index] for states in state_lists]
            for state in states:
                if state.dtype != _state_dtype(storage):
                    raise DtypeError(
                        f"{op}: parameter {index} ({param.dtype}) needs {_state_dtype(storage)} optimizer state, "
                        f"got {state.dtype}; create the state with that dtype (16-bit parameters keep float32 state)"
                    )
                if state.size != param.size:
                    raise ShapeError(
                        f"{op}: parameter {index} has shape {param.shape} but its state has shape {state.shape}; "
                        "state arrays must match their parameter"
                    )
            for array in (param, *states):
                _check_device(op, array, self.device_id)
            if param.size == 0:
                continue
            pointers = [self._contiguous(cupy, array).data.ptr for array in (param, *states)]
            pointers += [0] * (4 - len(pointers))
            launch = launches.setdefault(storage, _Launch(storage))
            launch.indices.append(index)
            launch.static.append((*pointers, int(param.size)))
            launch.aligned = launch.aligned and all(pointer % 16 == 0 for pointer in pointers)
        self.launches = list(launches.values())
        self.refs = [weakref.ref(array) for array in (*params, *(a for states in state_lists for a in states))]

    def _contiguous(self, cupy, array):
        if array.flags.c_contiguous:
            return array
        copy = cupy.ascontiguousarray(array)  # rare: gradflow's parameters and state are contiguous
        self.write_backs.append((array, copy))
        return copy

    def is_for(self, arrays) -> bool:
        return len(arrays) == len(self.refs) and all(ref() is array for ref, array in zip(self.refs, arrays))

    def finish(self) -> None:
        for original, copy in self.write_backs:
            original[...] = copy


def _check_device(op: str, array, device_id: int) -> None:
    if array.data.device_id != device_id:
        raise DeviceMismatchError(
            f"{op}: expected every array of a group on cuda:{device_id}, got one on cuda:{array.data.device_id}; "
            "move the parameters, gradients and state to one device"
        )


def _layout(cupy, op: str, params, state_lists, param_dtype) -> _Layout:
    """The cached layout of these parameter and state arrays, or a new one (cached unless it copies)."""
    arrays = [*params, *(array for states in state_lists for array in states)]
    key = (op, param_dtype, len(params), tuple(map(id, arrays)))
    found = _LAYOUTS.get(key)
    if found is not None and found.is_for(arrays):
        _LAYOUTS.move_to_end(key)
        return found
    found = _Layout(cupy, op, params, state_lists, param_dtype)
    if not found.write_backs:  # a layout with copies must copy again next step
        _LAYOUTS[key] = found
        if len(_LAYOUTS) > _TABLE_CACHE_SIZE:
            _LAYOUTS.popitem(last=False)
    return found


def _rows(cupy, op: str, layout: _Layout, launch: _Launch, params, grads, keep: list) -> tuple[list, bool]:
    """The launch's table rows with this step's gradient pointers, and whether every pointer is 16-byte aligned."""
    rows, aligned = [], launch.aligned
    for index, (param, *states, numel) in zip(launch.indices, launch.static):
        grad, dtype = grads[index], params[index].dtype
        if grad.dtype != dtype:
            raise DtypeError(
                f"{op}: parameter {index} is {dtype} but its gradient is {grad.dtype}; pass a gradient of the "
                "parameter's dtype"
            )
        if grad.size != numel:
            raise ShapeError(
                f"{op}: parameter {index} has shape {params[index].shape} but its gradient has shape {grad.shape}; "
                "pass a gradient of the parameter's shape"
            )
        _check_device(op, grad, layout.device_id)
        if not grad.flags.c_contiguous:
            grad = cupy.ascontiguousarray(grad)
            keep.append(grad)  # the copy must outlive the (asynchronous) launch
        pointer = grad.data.ptr
        aligned = aligned and pointer % 16 == 0
        rows.append((param, pointer, *states, numel))
    return rows, aligned


def host_tables(rows: list[tuple], chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """The tensor table (int64, one row ``[param, grad, state0, state1, state2, numel]`` per tensor) and the
    chunk table (int64, one row ``[tensor index, first element]`` per ``chunk`` elements of each tensor)."""
    tensor_table = _tensor_table(rows)
    return tensor_table, _chunk_table(tensor_table[:, 5], chunk)


def _tensor_table(rows: list[tuple]) -> np.ndarray:
    return np.array(rows, dtype=np.uint64).view(np.int64).reshape(len(rows), 6)


def _chunk_table(numels, chunk: int) -> np.ndarray:
    counts = (np.asarray(numels, dtype=np.int64) + chunk - 1) // chunk
    tensor_index = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    first_chunk = np.repeat(np.cumsum(counts) - counts, counts)  # each tensor's first chunk number
    starts = (np.arange(int(counts.sum()), dtype=np.int64) - first_chunk) * chunk
    return np.ascontiguousarray(np.stack([tensor_index, starts], axis=1))


def _cached(key, build):
    """``_TABLE_CACHE[key]``, built by ``build()`` on a miss (least recently used entries dropped)."""
    found = _TABLE_CACHE.get(key)
    if found is not None:
        _TABLE_CACHE.move_to_end(key)
        return found
    found = _TABLE_CACHE[key] = build()
    if len(_TABLE_CACHE) > _TABLE_CACHE_SIZE:
        _TABLE_CACHE.popitem(last=False)
    return found


def _tables(cupy, device_id: int, rows: list[tuple]):
    """(tensor table, chunk table, number of chunks) on the device.

    The chunk table depends only on the sizes, so it is cached by them and survives new
    gradient arrays; the small tensor table is cached by its pointers. Gradients are new
    arrays every step: where the memory pool hands back the same addresses the tensor table
    is found in the cache, and otherwise only it is rebuilt and uploaded (``cupy.asarray``
    of host data stages through pinned memory and copies asynchronously: no wait).
    """
    if CHUNK_ELEMENTS <= 0 or CHUNK_ELEMENTS % 4:
        raise ArgumentValueError(
            f"CHUNK_ELEMENTS must be a positive multiple of 4 (vector alignment), got {CHUNK_ELEMENTS}"
        )
    numels = tuple(row[5] for row in rows)

    def build_chunks():
        chunk_table = _chunk_table(numels, CHUNK_ELEMENTS)
        return cupy.asarray(chunk_table), len(chunk_table)

    def build_tensors():
        return cupy.asarray(_tensor_table(rows))

    chunks, n_chunks = _cached(("chunks", device_id, CHUNK_ELEMENTS, numels), build_chunks)
    tensors = _cached(("tensors", device_id, tuple(rows)), build_tensors)
    return tensors, chunks, n_chunks


def _run(cupy, op: str, launch: _Launch, rows: list, aligned: bool, per_tensor, uniform_args, args) -> None:
    """Launch ``gf_optim_<op>`` over every tensor of ``launch``.

    ``per_tensor`` is None (every tensor uses ``uniform_args``) or a host float64 array indexed
    by position in the launch.
    """
    device_id = cupy.cuda.runtime.getDevice()
    tensors, chunks, n_chunks = _tables(cupy, device_id, rows)
    name = f"gf_optim_{op}<{launch.storage}, {'true' if aligned else 'false'}>"
    # The kernel reads per_tensor only when the flag is set; otherwise any valid pointer will do.
    per_tensor_array = tensors if per_tensor is None else cupy.asarray(per_tensor, dtype=np.float64)
    grid = kernels.grid_size(n_chunks, 1, device_id, blocks_per_sm=GRID_BLOCKS_PER_SM)
    head = (tensors, chunks, np.int64(n_chunks), np.int64(CHUNK_ELEMENTS), per_tensor_array)
    head += (np.int64(per_tensor is not None),)
    kernels.launch("optim", name, tensors, grid, BLOCK, head + uniform_args + args)


def _launch_all(op: str, params, grads, state_lists, param_dtype, launch_one) -> None:
    """Check, lay out and launch: ``launch_one(cupy, launch, rows, aligned)`` runs once per parameter dtype."""
    import cupy

    with params[0].device:
        layout = _layout(cupy, op, params, state_lists, param_dtype)
        keep: list = []
        for launch in layout.launches:
            rows, aligned = _rows(cupy, op, layout, launch, params, grads, keep)
            launch_one(cupy, launch, rows, aligned)
        layout.finish()


def cuda_sgd_step(
    params,
    grads,
    momentum_buffers,
    *,
    lr,
    momentum,
    dampening,
    weight_decay,
    nesterov,
    maximize,
    first_steps,
    param_dtype=None,
) -> None:
    """SGD over CuPy arrays in place, one launch per parameter dtype (contract: ``optim_numpy.sgd_step``).

    float16/bfloat16 parameters need float32 momentum buffers. ``param_dtype="bfloat16"`` marks
    uint16 parameters (and gradients) as bfloat16 bits.
    """
    _check_param_dtype(param_dtype)
    if len(params) == 0:
        return
    use_momentum = momentum != 0
    constants = (np.float64(-lr), np.float64(momentum), np.float64(1 - dampening), np.float64(weight_decay))
    flags = (np.int64(use_momentum), np.int64(bool(nesterov)), np.int64(bool(maximize)))

    def launch_one(cupy, launch, rows, aligned):
        firsts = [bool(first_steps[i]) for i in launch.indices] if use_momentum else [False]
        uniform = all(firsts) or not any(firsts)
        per_tensor = None if uniform else np.array(firsts, dtype=np.float64)
        _run(cupy, "sgd", launch, rows, aligned, per_tensor, (np.int64(firsts[0]),), constants + flags)

    _launch_all("sgd_step", params, grads, [momentum_buffers] if use_momentum else [], param_dtype, launch_one)


def cuda_adam_step(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    *,
    step_sizes,
    bias_correction2_sqrts,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled_weight_decay,
    amsgrad,
    maximize,
    param_dtype=None,
) -> None:
    """Adam / AdamW over CuPy arrays in place, one launch per parameter dtype (contract: ``optim_numpy.adam_step``).

    float16/bfloat16 parameters need float32 moments. ``param_dtype="bfloat16"`` marks uint16
    parameters (and gradients) as bfloat16 bits.
    """
    _check_param_dtype(param_dtype)
    if len(params) == 0:
        return
    decoupled = bool(decoupled_weight_decay) and weight_decay != 0
    lerp_weight = 1 - beta1
    lerp_from_end = abs(lerp_weight) >= 0.5  # PyTorch's lerp rounding: from the end for large weights
    args = (
        np.float64(1 - lr * weight_decay if decoupled else 1.0),
        np.float64(0.0 if decoupled_weight_decay else weight_decay),
        np.float64(1 - lerp_weight if lerp_from_end else lerp_weight),
        np.int64(lerp_from_end),
        np.float64(beta2),
        np.float64(1 - beta2),
        np.float64(eps),
        np.int64(decoupled),
        np.int64(bool(amsgrad)),
        np.int64(bool(maximize)),
    )

    def launch_one(cupy, launch, rows, aligned):
        # The kernel takes -lr / (1 - beta1^t) and sqrt(1 - beta2^t), uniform or per tensor.
        mine = [(-step_sizes[i], bias_correction2_sqrts[i]) for i in launch.indices]
        uniform = all(pair == mine[0] for pair in mine)
        per_tensor = None if uniform else np.array(mine, dtype=np.float64).reshape(-1)
        uniform_args = (np.float64(mine[0][0]), np.float64(mine[0][1]))
        _run(cupy, "adam", launch, rows, aligned, per_tensor, uniform_args, args)

    state_lists = [exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if amsgrad else [])
    _launch_all("adam_step", params, grads, state_lists, param_dtype, launch_one)
