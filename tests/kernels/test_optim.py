"""Multi-tensor SGD and Adam: kernels/optim.cu against the CPU's update (optim_numpy), which is their reference."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow
from gradflow import optim
from gradflow.backends import optim_numpy
from gradflow.backends.fused import optim as fused
from gradflow.errors import DtypeError

from .optim_groups import (
    ADAM_OPTIONS,
    SGD_OPTIONS,
    STORAGES,
    bfloat16_bits_to_float32,
    count_launches,
    cpu_step,
    cuda_step,
    decoded,
    float32_to_bfloat16_bits,
    make_group,
    step,
)


# -- CPU: the reference -----------------------------------------------------------------------------
def test_bfloat16_bits_round_to_nearest_even_like_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.standard_normal(1000).astype(np.float32) * np.float32(10.0) ** rng.integers(-30, 30, 1000),
            np.array([0.0, -0.0, 1.0, np.inf, -np.inf, 3.3895314e38, 1.00390625, 1.01171875], np.float32),
            (np.arange(200, dtype=np.uint32) + np.uint32(0x3F808000)).view(np.float32),  # halfway cases and near
        ]
    )
    bits = float32_to_bfloat16_bits(values)
    expected = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(bits, expected)
    np.testing.assert_array_equal(
        bfloat16_bits_to_float32(bits), torch.from_numpy(expected.view(np.int16)).view(torch.bfloat16).float()
    )
    assert np.isnan(bfloat16_bits_to_float32(float32_to_bfloat16_bits(np.array([np.nan], np.float32))))


@pytest.mark.parametrize("kind", ["adam", "sgd"])
@pytest.mark.parametrize("chunk", [8, 32768])
def test_float16_parameters_compute_in_float32_and_round_once(kind, chunk, monkeypatch):
    # The mixed-precision reference equals a float32 update of the float16 values, rounded to float16.
    monkeypatch.setattr(optim_numpy, "CHUNK_ELEMENTS", chunk)
    options = dict(ADAM_OPTIONS[1] if kind == "adam" else SGD_OPTIONS[1], maximize=True)
    extra = {"amsgrad": True} if kind == "adam" else {}
    half = make_group(kind, [5, 37], "float16", seed=3, amsgrad=True)
    single = copy.deepcopy(half)
    for iteration in range(3):
        first = {} if kind == "adam" else {"first_steps": [iteration == 0] * 2}
        single["params"] = [p.astype(np.float32) for p in half["params"]]
        single["grads"] = [g.astype(np.float32) for g in half["grads"]]
        step(kind, half, cpu_step, options, "float16", **extra, **first)
        step(kind, single, cpu_step, options, "float32", **extra, **first)
        for got, want in zip(half["params"], single["params"]):
            assert got.dtype == np.float16
            np.testing.assert_array_equal(got, want.astype(np.float16))
        for key in ("exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs", "momentum_buffers"):
            for got, want in zip(half.get(key, []), single.get(key, [])):
                assert got.dtype == np.float32
                np.testing.assert_array_equal(got, want)


def closed_form_adam(param, grads, lr, beta1, beta2, eps):
    """Adam in float64 from the paper's formulas, one gradient per step (an independent reference)."""
    m = v = 0.0
    for t, grad in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        param = param - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return param


def test_bfloat16_reference_tracks_the_closed_form_within_bfloat16_rounding():
    rng = np.random.default_rng(1)
    values = rng.uniform(-1, 1, 301).astype(np.float32)
    grads = [rng.standard_normal(301).astype(np.float32) for _ in range(4)]
    bits = float32_to_bfloat16_bits(values)
    group = {"params": [bits], "exp_avgs": [np.zeros(301, np.float32)], "exp_avg_sqs": [np.zeros(301, np.float32)]}
    group.update(max_exp_avg_sqs=[], steps=[np.array(0.0, np.float32)])
    options = {"lr": 0.05, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
    for grad in grads:
        group["grads"] = [float32_to_bfloat16_bits(grad)]
        step("adam", group, cpu_step, options, "bfloat16", decoupled_weight_decay=False, amsgrad=False, maximize=False)
    assert bits.dtype == np.uint16 and float(group["steps"][0]) == 4.0
    start = bfloat16_bits_to_float32(float32_to_bfloat16_bits(values)).astype(np.float64)
    rounded_grads = [bfloat16_bits_to_float32(float32_to_bfloat16_bits(g)).astype(np.float64) for g in grads]
    want = closed_form_adam(start, rounded_grads, 0.05, 0.9, 0.999, 1e-8)
    # Each of the 4 steps (moving p by ~0.05) rounds to bfloat16: half an ulp, <= 2**-8 for |p| < 2.
    np.testing.assert_allclose(bfloat16_bits_to_float32(bits), want, atol=5 * 2.0**-8)


def test_bad_param_dtype_and_bits_without_param_dtype_are_refused():
    group = make_group("sgd", [4], "bfloat16", seed=0, momentum=False)
    with pytest.raises(ValueError, match="param_dtype must be None or 'bfloat16'"):
        fused.cuda_sgd_step(group["params"], group["grads"], [], param_dtype="float8", **SGD_OPTIONS[0],
                            maximize=False, first_steps=[])  # fmt: skip
    with pytest.raises(DtypeError, match="param_dtype='bfloat16'"):
        fused._storage(group["params"][0], None, "sgd_step")


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=6), chunk=st.sampled_from([4, 8, 64, 16384]))
def test_chunk_table_covers_every_element_once(sizes, chunk):
    rows = [(1000 * i, 1000 * i + 1, 0, 0, 0, n) for i, n in enumerate(sizes)]
    tensor_table, chunk_table = fused.host_tables(rows, chunk)
    assert tensor_table.dtype == chunk_table.dtype == np.int64
    assert tensor_table.shape == (len(sizes), 6) and list(tensor_table[:, 5]) == sizes
    covered = [np.zeros(n, int) for n in sizes]
    for tensor, start in chunk_table:
        assert start % 4 == 0  # vector positions stay 16-byte aligned
        covered[tensor][start : start + chunk] += 1
    assert all((c == 1).all() for c in covered)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW, optim.SGD])
def test_float16_parameters_get_float32_state_that_survives_a_state_dict(cls):
    options = {"momentum": 0.9} if cls is optim.SGD else {"amsgrad": True}
    half = gradflow.tensor([0.5, -0.25, 1.0], dtype=gradflow.float16, requires_grad=True)
    single = gradflow.tensor([0.5, -0.25, 1.0], requires_grad=True)
    optimizer = cls([half, single], lr=0.1, **options)
    for _ in range(2):
        half.grad = gradflow.tensor([1.0, -2.0, 0.5], dtype=gradflow.float16)
        single.grad = gradflow.tensor([1.0, -2.0, 0.5])
        optimizer.step()
    floating = [key for key, value in optimizer.state[half].items() if key != "step"]
    assert floating and all(optimizer.state[half][key].dtype == gradflow.float32 for key in floating)
    np.testing.assert_allclose(half.detach().numpy(), single.detach().numpy(), atol=1e-3)
    restored = cls([half, single], lr=0.1, **options)
    restored.load_state_dict(optimizer.state_dict())
    assert all(restored.state[half][key].dtype == gradflow.float32 for key in floating)
    assert all(restored.state[single][key].dtype == gradflow.float32 for key in floating)


def test_rmsprop_state_still_follows_the_parameter_dtype():
    half = gradflow.tensor([0.5, -0.25], dtype=gradflow.float16, requires_grad=True)
    optimizer = optim.RMSprop([half], lr=0.1)
    half.grad = gradflow.tensor([1.0, -2.0], dtype=gradflow.float16)
    optimizer.step()
    assert optimizer.state[half]["square_avg"].dtype == gradflow.float16


# -- CUDA: the kernels against the references ----------------------------------------------------
def to_gpu(group):
    import cupy

    # The step counters stay host arrays (the contract), but the GPU copy gets counters of its own.
    return {
        key: (copy.deepcopy(arrays) if key == "steps" else [cupy.asarray(a) for a in arrays])
        for key, arrays in group.items()
    }


def assert_matches(gpu, host, storage, kind):
    import cupy

    for key, arrays in host.items():
        if key == "steps":
            assert [float(s) for s in gpu[key]] == [float(s) for s in arrays]
            continue
        for index, (got, want) in enumerate(zip(gpu[key], arrays)):
            got = cupy.asnumpy(got)
            assert got.dtype == want.dtype, key
            message = f"{kind} {storage} {key}[{index}] (size {want.size})"
            if key == "grads":
                np.testing.assert_array_equal(got, want, err_msg=message)  # only read
            elif storage == "float64":
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=message)
            elif key == "params" and storage in ("float16", "bfloat16"):
                # Both round a float32 result once: at most a couple of 16-bit ulps apart.
                got, want = decoded(got, storage), decoded(want, storage)
                # Near-cancelling updates (p close to -lr * d) turn float32 noise into many ulps of a tiny
                # result, and a flip at |p| ~ 1 survives later steps: allow two ulps at 2.0 as well.
                if storage == "bfloat16":
                    ulp = np.spacing(np.abs(want)) * 2.0**16  # float32 has 16 more significand bits
                    atol = 2 * 2.0**-7
                else:
                    ulp = np.spacing(np.abs(want).astype(np.float16)).astype(np.float32)
                    atol = 2 * 2.0**-10
                bad = np.abs(got - want) > 2 * ulp + atol
                assert not bad.any(), f"{message}: {got[bad][:5]} != {want[bad][:5]}"
            else:
                # 16-bit parameters one ulp apart (a rounding flip) feed the weight decay into the moments.
                rtol, atol = (2e-3, 1e-4) if storage in ("float16", "bfloat16") else (1e-5, 1e-6)
                np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=message)


def run_both(kind, sizes, storage, options, seed, steps=3, amsgrad=False, momentum=True, first_mixed=False):
    host = make_group(kind, sizes, storage, seed, amsgrad=amsgrad, momentum=momentum)
    if first_mixed:  # some buffers already exist (parameters added later): per-tensor first-step flags
        rng = np.random.default_rng(seed + 1)
        host["momentum_buffers"] = [rng.standard_normal(b.size).astype(b.dtype) for b in host["momentum_buffers"]]
    gpu = to_gpu(host)
    before = [decoded(p, storage) for p in host["params"]]
    for iteration in range(steps):
        extra = {"amsgrad": amsgrad} if kind == "adam" else {"first_steps": [iteration == 0] * len(sizes)}
        if kind == "sgd" and first_mixed and iteration == 0:
            extra["first_steps"] = [i % 2 == 0 for i in range(len(sizes))]
        step(kind, host, cpu_step, options, storage, **extra)
        step(kind, gpu, cuda_step, options, storage, **extra)
        # The first step moves every parameter element: none may be left unwritten.
        if iteration == 0 and not first_mixed:
            for index, (start, got) in enumerate(zip(before, gpu["params"])):
                assert np.all(decoded(got.get(), storage) != start), f"{kind} {storage} param {index} not written"
        assert_matches(gpu, host, storage, kind)
    return host, gpu


MANY_SIZES = [1, 2, 3, 4, 5, 7, 8, 31, 33, 255, 256, 257, 1023, 1025, 4097, 16383, 16384, 16385, 30001, 65537, 99999]
MANY_SIZES += [100000, 12, 13, 17, 64, 999, 5000, 77777, 6]


@pytest.mark.cuda
@pytest.mark.parametrize("storage", sorted(STORAGES))
@pytest.mark.parametrize("option_index", range(len(ADAM_OPTIONS)))
def test_cuda_adam_matches_reference(storage, option_index):
    options = dict(ADAM_OPTIONS[option_index], maximize=option_index == 1)
    run_both("adam", MANY_SIZES, storage, options, seed=option_index, amsgrad=option_index != 0)
    run_both("adam", [1], storage, options, seed=7, amsgrad=option_index == 0)


@pytest.mark.cuda
@pytest.mark.parametrize("storage", sorted(STORAGES))
@pytest.mark.parametrize("option_index", range(len(SGD_OPTIONS)))
def test_cuda_sgd_matches_reference(storage, option_index):
    options = dict(SGD_OPTIONS[option_index], maximize=option_index == 1)
    momentum = options["momentum"] != 0
    run_both("sgd", MANY_SIZES, storage, options, seed=option_index, momentum=momentum)
    run_both("sgd", [1], storage, options, seed=7, momentum=momentum)
    if momentum:
        run_both("sgd", MANY_SIZES[:9], storage, options, seed=11, momentum=True, first_mixed=True)


@pytest.mark.cuda
def test_cuda_small_chunks_make_blocks_loop_over_chunks(monkeypatch):
    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", 8)  # ~70K chunks: more than the grid, so blocks stride
    run_both("adam", [99999, 300001, 5], "float32", dict(ADAM_OPTIONS[0], maximize=False), seed=5, steps=2)
    run_both("sgd", [99999, 300001, 5], "float16", dict(SGD_OPTIONS[1], maximize=False), seed=5, steps=2)


@pytest.mark.cuda
@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_cuda_misaligned_and_strided_arrays_take_the_scalar_path(kind):
    import cupy

    options = dict(ADAM_OPTIONS[1] if kind == "adam" else SGD_OPTIONS[1], maximize=False)
    host = make_group(kind, [12, 1001, 4], "float32", seed=9, amsgrad=True)
    gpu = to_gpu(host)
    # Parameter 0: a view one element into a buffer (4-byte aligned only); parameter 1: a transposed view.
    base = cupy.zeros(13, cupy.float32)
    base[1:] = gpu["params"][0]
    gpu["params"][0] = base[1:]
    strided = cupy.asfortranarray(cupy.asarray(host["params"][1].reshape(7, 143)))
    gpu["params"][1] = strided
    host["params"][1] = host["params"][1].reshape(7, 143)
    host["grads"][1] = host["grads"][1].reshape(7, 143)
    gpu["grads"][1] = cupy.asarray(host["grads"][1])
    for key in ("exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs", "momentum_buffers"):
        if host.get(key):
            host[key][1] = host[key][1].reshape(7, 143)
            gpu[key][1] = gpu[key][1].reshape(7, 143)
    for iteration in range(2):
        extra = {"amsgrad": True} if kind == "adam" else {"first_steps": [iteration == 0] * 3}
        step(kind, host, cpu_step, options, "float32", **extra)
        step(kind, gpu, cuda_step, options, "float32", **extra)
    assert not gpu["params"][1].flags.c_contiguous
    np.testing.assert_allclose(base[1:].get(), host["params"][0], rtol=1e-5, atol=1e-6)
    assert float(base[0]) == 0.0  # nothing written before the view
    assert_matches(gpu, host, "float32", kind)


@pytest.mark.cuda
@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_cuda_one_launch_per_dtype_group_and_cached_tables(kind, monkeypatch):
    storages = ["float32", "float16", "float64", "float32", "float16", "float32", "float64"]
    groups = [make_group(kind, [3 + 5 * i], s, seed=i, amsgrad=True) for i, s in enumerate(storages)]
    host = {key: [g[key][0] for g in groups] for key in groups[0] if groups[0][key]}
    gpu = to_gpu(host)
    options = dict(ADAM_OPTIONS[0] if kind == "adam" else SGD_OPTIONS[1], maximize=False)
    launches = count_launches(monkeypatch)
    for iteration in range(3):
        extra = {"amsgrad": True} if kind == "adam" else {"first_steps": [iteration == 0] * 7}
        cached, layouts = len(fused._TABLE_CACHE), len(fused._LAYOUTS)
        launches.clear()
        step(kind, gpu, cuda_step, options, "float32", **extra)
        assert len(launches) == 3  # float32, float16 and float64: one launch each
        assert all(name.startswith(f"gf_optim_{kind}<") for name in launches)
        if iteration > 0:
            assert len(fused._TABLE_CACHE) == cached  # the tables of step 1 are reused
            assert len(fused._LAYOUTS) == layouts  # and so is the checked layout of parameters and state
        step(kind, host, cpu_step, options, "float32", **extra)
    for index, storage in enumerate(storages):
        one = {key: [arrays[index]] for key, arrays in host.items() if arrays}
        one_gpu = {key: [arrays[index]] for key, arrays in gpu.items() if arrays}
        assert_matches(one_gpu, one, storage, kind)


@pytest.mark.cuda
def test_cuda_empty_tensors_launch_nothing(monkeypatch):
    import cupy

    launches = count_launches(monkeypatch)
    empty = [cupy.zeros(0, cupy.float32) for _ in range(5)]
    fused.cuda_adam_step(empty[:1], empty[1:2], empty[2:3], empty[3:4], [], step_sizes=[0.1],
                         bias_correction2_sqrts=[0.5], **ADAM_OPTIONS[0], amsgrad=False, maximize=False)  # fmt: skip
    fused.cuda_sgd_step(empty[:1], empty[1:2], empty[2:3], **SGD_OPTIONS[1], maximize=False, first_steps=[True])
    assert launches == []


@pytest.mark.cuda
@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (optim.Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}),
        (optim.AdamW, {"lr": 0.01, "maximize": True}),
        (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ],
)
def test_cuda_optimizer_tracks_the_cpu_optimizer(cls, options):
    rng = np.random.default_rng(0)
    shapes, dtypes = [(33, 17), (17,), (5, 3, 3)], [gradflow.float32, gradflow.float32, gradflow.float16]
    values = [rng.uniform(-1, 1, s).astype(np.float32) for s in shapes]
    runs = {}
    for device in ("cpu", "cuda"):
        params = [gradflow.tensor(v, dtype=d, device=device, requires_grad=True) for v, d in zip(values, dtypes)]
        optimizer = cls(params, **options)
        for iteration in range(4):
            for param, value in zip(params, values):
                grad = np.sin(value * (iteration + 1)).astype(np.float32)
                param.grad = gradflow.tensor(grad, dtype=param.dtype, device=device)
            optimizer.step()
        runs[device] = (params, optimizer)
    for cpu, gpu in zip(runs["cpu"][0], runs["cuda"][0]):
        tolerance = 2e-3 if cpu.dtype == gradflow.float16 else 1e-5
        np.testing.assert_allclose(gpu.detach().cpu().numpy(), cpu.detach().numpy(), rtol=tolerance, atol=tolerance)
        state_cpu, state_gpu = runs["cpu"][1].state[cpu], runs["cuda"][1].state[gpu]
        for key, value in state_cpu.items():
            assert state_gpu[key].dtype == value.dtype, key
            np.testing.assert_allclose(state_gpu[key].detach().cpu().numpy(), value.detach().numpy(), rtol=1e-4,
                                       atol=1e-6, err_msg=key)  # fmt: skip
