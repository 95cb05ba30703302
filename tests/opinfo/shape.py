"""Op table entries for the shape family: views, joins and splits, rearranging copies, and F.pad."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import gradflow as gf
import gradflow.nn.functional as F

from . import OpInfo, Sample, shapes, values


def _dim(draw, ndim: int, extra: int = 0) -> int:
    """A dimension index, negative half the time (``extra`` widens the range, e.g. 1 for unsqueeze)."""
    bound = max(ndim + extra, 1)
    return draw(st.integers(-bound, bound - 1))


def _reshape_sample(draw):
    shape = shapes(draw, max_side=3)
    size = int(np.prod(shape))
    target = draw(st.sampled_from([(-1,), tuple(reversed(shape)), (1, *shape), (size, 1), (-1, 1)]))
    return Sample((values(draw, shape), target))


def _expand_sample(draw):
    shape = shapes(draw, max_side=3)
    small = tuple(size if draw(st.booleans()) else 1 for size in shape)
    target = tuple(-1 if draw(st.booleans()) else size for size in shape)
    return Sample((values(draw, small), (2, *target) if draw(st.booleans()) else target))


def _expand_ref(x, sizes):
    lead = len(sizes) - x.ndim
    return np.broadcast_to(x, [x.shape[i - lead] if size == -1 else size for i, size in enumerate(sizes)])


def _permute_sample(draw):
    shape = shapes(draw, max_side=3)
    return Sample((values(draw, shape), tuple(draw(st.permutations(range(len(shape)))))))


def _two_dims_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=3)
    return Sample((values(draw, shape), _dim(draw, len(shape)), _dim(draw, len(shape))))


def _flatten_sample(draw):
    shape = shapes(draw, max_side=3)
    first, second = sorted(draw(st.integers(0, max(len(shape) - 1, 0))) for _ in range(2))
    return Sample((values(draw, shape),), {"start_dim": first, "end_dim": second - len(shape) * draw(st.booleans())})


def _flatten_ref(x, start_dim, end_dim):
    if x.ndim == 0:
        return x.reshape(1)
    return x.reshape(x.shape[:start_dim] + (-1,) + x.shape[end_dim % x.ndim + 1 :])


def _unflatten_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=4)
    dim = _dim(draw, len(shape))
    size = shape[dim]
    divisor = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
    sizes = draw(st.sampled_from([(divisor, size // divisor), (divisor, -1), (1, size, 1)]))
    return Sample((values(draw, shape), dim, sizes))


def _unflatten_ref(x, dim, sizes):
    dim = dim % x.ndim
    return x.reshape(x.shape[:dim] + tuple(sizes) + x.shape[dim + 1 :])


def _squeeze_sample(draw):
    shape = tuple(draw(st.sampled_from([1, 1, 2, 3])) for _ in range(draw(st.integers(0, 3))))
    choice = draw(st.sampled_from(["none", "int", "tuple"]))
    if choice == "none" or not shape:
        return Sample((values(draw, shape),))
    if choice == "int":
        return Sample((values(draw, shape), _dim(draw, len(shape))))
    dims = tuple(draw(st.sets(st.integers(0, len(shape) - 1), min_size=1)))
    return Sample((values(draw, shape), dims))


def _squeeze_ref(x, dim=None):
    if dim is None:
        return np.squeeze(x)
    dims = (dim,) if isinstance(dim, int) else dim
    return np.squeeze(x, tuple(d for d in dims if x.ndim and x.shape[d] == 1))


def _unsqueeze_sample(draw):
    shape = shapes(draw, max_side=3)
    return Sample((values(draw, shape), _dim(draw, len(shape), extra=1)))


def _movedim_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=3)
    count = draw(st.integers(1, len(shape)))
    source = draw(st.permutations(range(len(shape))))[:count]
    target = draw(st.permutations(range(-len(shape), 0)))[:count]
    if count == 1 and draw(st.booleans()):
        return Sample((values(draw, shape), source[0], target[0]))
    return Sample((values(draw, shape), tuple(source), tuple(target)))


def _join_sample(stacked: bool):
    def sample(draw):
        shape = shapes(draw, min_dims=1, max_side=3)
        dim = _dim(draw, len(shape), extra=int(stacked))
        arrays = []
        for _ in range(draw(st.integers(1, 3))):
            own = list(shape)
            if not stacked:
                own[dim] = draw(st.integers(1, 3))
            arrays.append(values(draw, tuple(own)))
        return Sample(tuple(arrays), {"dim": dim})

    return sample


def _split_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=4)
    dim = _dim(draw, len(shape))
    length = shape[dim]
    if draw(st.booleans()):
        return Sample((values(draw, shape), draw(st.integers(1, length + 1)), dim))
    cuts = sorted(draw(st.lists(st.integers(0, length), min_size=1, max_size=3)))
    sections = [b - a for a, b in zip([0, *cuts], [*cuts, length])]
    return Sample((values(draw, shape), sections, dim))


def _split_ref(x, split, dim):
    length = x.shape[dim]
    sizes = [min(split, length - start) for start in range(0, length, split)] if isinstance(split, int) else split
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=dim))


def _chunk_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=4)
    return Sample((values(draw, shape), draw(st.integers(1, 5)), _dim(draw, len(shape))))


def _chunk_ref(x, chunks, dim):
    return _split_ref(x, -(-x.shape[dim] // chunks), dim)


def _unbind_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=3)
    return Sample((values(draw, shape), _dim(draw, len(shape))))


def _dims_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=3)
    return Sample((values(draw, shape), tuple(draw(st.sets(st.integers(0, len(shape) - 1), min_size=1)))))


def _roll_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=3)
    if draw(st.booleans()):
        return Sample((values(draw, shape), draw(st.integers(-5, 5))))
    dims = tuple(draw(st.sets(st.integers(0, len(shape) - 1), min_size=1)))
    return Sample((values(draw, shape), tuple(draw(st.integers(-4, 4)) for _ in dims), dims))


def _repeat_sample(draw):
    shape = shapes(draw, max_dims=2, max_side=3)
    extra = draw(st.integers(0, 1))
    return Sample((values(draw, shape), tuple(draw(st.integers(0, 2)) for _ in range(len(shape) + extra))))


def _repeat_ref(x, sizes):
    return np.tile(x.reshape((1,) * (len(sizes) - x.ndim) + x.shape), sizes)


def _tile_sample(draw):
    shape = shapes(draw, max_dims=2, max_side=3)
    return Sample((values(draw, shape), tuple(draw(st.integers(1, 2)) for _ in range(draw(st.integers(1, 3))))))


def _triangle_sample(draw):
    shape = shapes(draw, min_dims=2, max_side=3)
    return Sample((values(draw, shape), draw(st.integers(-3, 3))))


def _narrow_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=4)
    dim = _dim(draw, len(shape))
    start = draw(st.integers(-shape[dim], shape[dim]))
    length = draw(st.integers(0, shape[dim] - (start % shape[dim] if start < 0 else start)))
    return Sample((values(draw, shape), dim, start, length))


def _narrow_ref(x, dim, start, length):
    start = start + x.shape[dim] if start < 0 else start
    return np.take(x, np.arange(start, start + length), axis=dim)


def _select_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=3)
    dim = _dim(draw, len(shape))
    return Sample((values(draw, shape), dim, draw(st.integers(-shape[dim], shape[dim] - 1))))


def _pad_sample(mode: str):
    def sample(draw):
        shape = shapes(draw, min_dims=1, max_side=3, min_side=2)
        padded = draw(st.integers(1, len(shape)))
        if mode == "constant":
            widths = [draw(st.integers(-1, 2)) for _ in range(2 * padded)]
        else:  # reflect needs pads < size; circular <= size; no cropping keeps the reference simple
            widths = [draw(st.integers(0, 1)) for _ in range(2 * padded)]
        kwargs = {"mode": mode, "value": 1.5} if mode == "constant" else {"mode": mode}
        return Sample((values(draw, shape), tuple(widths)), kwargs)

    return sample


def _pad_ref(x, pad, mode="constant", value=0.0):
    pairs = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        pairs[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    crop = tuple(slice(max(-a, 0), x.shape[d] - max(-b, 0)) for d, (a, b) in enumerate(pairs))
    grow = [(max(a, 0), max(b, 0)) for a, b in pairs]
    numpy_mode = {"replicate": "edge", "circular": "wrap"}.get(mode, mode)
    if mode == "constant":
        return np.pad(x[crop], grow, mode="constant", constant_values=value)
    return np.pad(x[crop], grow, mode=numpy_mode)


OPS = [
    OpInfo("reshape", gf.reshape, np.reshape, _reshape_sample, method="reshape"),
    OpInfo("view", gf.view, np.reshape, _reshape_sample, method="view"),
    OpInfo("expand", gf.expand, _expand_ref, _expand_sample, method="expand"),
    OpInfo("permute", gf.permute, np.transpose, _permute_sample, method="permute"),
    OpInfo("transpose", gf.transpose, np.swapaxes, _two_dims_sample, method="transpose"),
    OpInfo("t", gf.t, lambda x: x.T, lambda d: Sample((values(d, shapes(d, max_dims=2)),)), method="t"),
    OpInfo("flatten", gf.flatten, _flatten_ref, _flatten_sample, method="flatten"),
    OpInfo("unflatten", gf.unflatten, _unflatten_ref, _unflatten_sample, method="unflatten"),
    OpInfo("squeeze", gf.squeeze, _squeeze_ref, _squeeze_sample, method="squeeze"),
    OpInfo("unsqueeze", gf.unsqueeze, lambda x, d: np.expand_dims(x, d), _unsqueeze_sample, method="unsqueeze"),
    OpInfo("movedim", gf.movedim, np.moveaxis, _movedim_sample, method="movedim"),
    OpInfo(
        "cat",
        lambda *ts, dim: gf.cat(ts, dim),
        lambda *a, dim: np.concatenate(a, axis=dim),
        _join_sample(stacked=False),
    ),
    OpInfo(
        "stack", lambda *ts, dim: gf.stack(ts, dim), lambda *a, dim: np.stack(a, axis=dim), _join_sample(stacked=True)
    ),
    OpInfo("split", gf.split, _split_ref, _split_sample, method="split"),
    OpInfo("chunk", gf.chunk, _chunk_ref, _chunk_sample, method="chunk"),
    OpInfo("unbind", gf.unbind, lambda x, d: tuple(np.moveaxis(x, d, 0)), _unbind_sample, method="unbind"),
    OpInfo("narrow", gf.narrow, _narrow_ref, _narrow_sample, method="narrow"),
    OpInfo("select", gf.select, lambda x, d, i: np.take(x, i, axis=d), _select_sample, method="select"),
    OpInfo("flip", gf.flip, np.flip, _dims_sample, method="flip"),
    OpInfo("roll", gf.roll, lambda x, s, d=None: np.roll(x, s, axis=d), _roll_sample, method="roll"),
    OpInfo("repeat", lambda x, sizes: x.repeat(*sizes), _repeat_ref, _repeat_sample),
    OpInfo("tile", gf.tile, np.tile, _tile_sample, method="tile"),
    OpInfo("tril", gf.tril, np.tril, _triangle_sample, method="tril"),
    OpInfo("triu", gf.triu, np.triu, _triangle_sample, method="triu"),
    *(
        OpInfo(f"pad_{mode}", F.pad, _pad_ref, _pad_sample(mode), max_examples=4)
        for mode in ("constant", "reflect", "replicate", "circular")
    ),
]
