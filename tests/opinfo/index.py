"""Op table entries for indexing: x[...], index_put, index_select/add/fill, gather/scatter, masked_fill.

Index arrays are int64 NumPy arrays built from the drawn shapes (they become
tensors that do not require grad); repeated indices are drawn on purpose
wherever the op accumulates them.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import gradflow as gf

from . import OpInfo, Sample, shapes, values


def _rng(draw):
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def _basic_index_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=4)
    parts = []
    for size in shape:
        kind = draw(st.sampled_from(["int", "slice", "step", "full"]))
        if kind == "int":
            parts.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            parts.append(slice(draw(st.integers(-size, size)), draw(st.integers(-size, size))))
        elif kind == "step":
            parts.append(slice(None, None, draw(st.sampled_from([2, -1]))))
        else:
            parts.append(slice(None))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), None)
    return Sample((values(draw, shape), tuple(parts)))


def _advanced_index_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=4)
    index = _rng(draw).integers(-shape[0], shape[0], size=draw(st.integers(1, 6)))  # repeats and negatives
    return Sample((values(draw, shape), index))


def _mask_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=3)
    return Sample((values(draw, shape), _rng(draw).random(shape) > 0.5))


def _index_put_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=4)
    rows = _rng(draw).permutation(shape[0])[: draw(st.integers(1, shape[0]))]  # distinct: one write per place
    return Sample((values(draw, shape), rows, values(draw, (len(rows), *shape[1:]))))


def _index_put_ref(x, rows, v):
    out = x.copy()
    out[rows] = v
    return out


def _vector_index_sample(source: bool = False, fill: bool = False):
    def sample(draw):
        shape = shapes(draw, min_dims=1, max_side=4)
        dim = draw(st.integers(-len(shape), len(shape) - 1))
        size = shape[dim]
        low = -size if fill else 0  # index_fill counts negative indices from the end
        index = _rng(draw).integers(low, size, size=draw(st.integers(0, 5)))
        if fill:
            return Sample((values(draw, shape), dim, index, 1.25))
        if source:
            source_shape = list(shape)
            source_shape[dim] = len(index)
            return Sample((values(draw, shape), dim, index, values(draw, tuple(source_shape))))
        return Sample((values(draw, shape), dim, index))

    return sample


def _index_add_ref(x, dim, index, source):
    out = x.copy()
    np.add.at(out, (slice(None),) * (dim % x.ndim) + (index,), source)
    return out


def _index_fill_ref(x, dim, index, value):
    out = x.copy()
    out[(slice(None),) * (dim % x.ndim) + (index,)] = value
    return out


def _gather_sample(distinct: bool = False, src: bool = False):
    """index of the input's rank, no larger outside ``dim``; ``distinct`` avoids repeats along ``dim`` (scatter)."""

    def sample(draw):
        shape = shapes(draw, min_dims=1, max_side=3)
        dim = draw(st.integers(-len(shape), len(shape) - 1))
        axis = dim % len(shape)
        index_shape = [draw(st.integers(1, size)) for size in shape]
        rng = _rng(draw)
        if distinct:
            # Each line along dim takes distinct positions: a random permutation, cut short.
            order = np.argsort(rng.random(index_shape[:axis] + [shape[axis]] + index_shape[axis + 1 :]), axis=axis)
            index = np.take(order, np.arange(index_shape[axis]), axis=axis)
        else:
            index_shape[axis] = draw(st.integers(1, 4))
            index = rng.integers(0, shape[axis], size=index_shape)
        args = (values(draw, shape), dim, index.astype(np.int64))
        if src:
            args += (values(draw, tuple(s + draw(st.integers(0, 1)) for s in index.shape)),)
        return Sample(args)

    return sample


def _along(index, axis):
    return tuple(
        index if d == axis else np.arange(n).reshape([-1 if k == d else 1 for k in range(index.ndim)])
        for d, n in enumerate(index.shape)
    )


def _gather_ref(x, dim, index):
    axis = dim % x.ndim
    return x[_along(index, axis)]


def _scatter_ref(x, dim, index, src, add=False):
    axis = dim % x.ndim
    out = x.copy()
    block = src[tuple(slice(0, n) for n in index.shape)] if isinstance(src, np.ndarray) else src
    if add:
        np.add.at(out, _along(index, axis), block)
    else:
        out[_along(index, axis)] = block
    return out


def _scatter_value_sample(draw):
    x, dim, index = _gather_sample(distinct=True)(draw).args
    return Sample((x, dim, index), {"value": -0.5})


def _masked_fill_sample(tensor_value: bool):
    def sample(draw):
        shape = shapes(draw, max_side=3)
        mask_shape = shape[draw(st.integers(0, len(shape))) :]  # broadcasts against the input
        value = values(draw, ()) if tensor_value else 0.75
        return Sample((values(draw, shape), _rng(draw).random(mask_shape) > 0.5, value))

    return sample


def _take_along_dim_sample(draw):
    shape = shapes(draw, min_dims=1, max_side=3)
    rng = _rng(draw)
    if draw(st.booleans()):
        size = int(np.prod(shape))
        return Sample((values(draw, shape), rng.integers(-size, size, size=draw(st.integers(1, 5)))))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    # Dims other than dim are 1 or full: they broadcast against the input.
    index_shape = [draw(st.sampled_from([1, size])) for size in shape]
    index_shape[dim] = draw(st.integers(1, 4))
    return Sample((values(draw, shape), rng.integers(-shape[dim], shape[dim], size=index_shape), dim))


def _take_along_dim_ref(x, indices, dim=None):
    if dim is None:
        return x.ravel()[indices.ravel()]
    return np.take_along_axis(x, indices, axis=dim)


OPS = [
    OpInfo("getitem_basic", lambda x, i: x[i], lambda x, i: x[i], _basic_index_sample),
    OpInfo("getitem_int_array", lambda x, i: x[i], lambda x, i: x[i], _advanced_index_sample),
    OpInfo("getitem_bool_mask", lambda x, m: x[m], lambda x, m: x[m], _mask_sample),
    OpInfo("index_put", gf.index_put, _index_put_ref, _index_put_sample, method="index_put"),
    OpInfo(
        "index_select",
        gf.index_select,
        lambda x, d, i: np.take(x, i, axis=d),
        _vector_index_sample(),
        method="index_select",
    ),
    OpInfo("index_add", gf.index_add, _index_add_ref, _vector_index_sample(source=True), method="index_add"),
    OpInfo("index_fill", gf.index_fill, _index_fill_ref, _vector_index_sample(fill=True), method="index_fill"),
    OpInfo("gather", gf.gather, _gather_ref, _gather_sample(), method="gather"),
    OpInfo("scatter", gf.scatter, _scatter_ref, _gather_sample(distinct=True, src=True), method="scatter"),
    OpInfo(
        "scatter_value",
        gf.scatter,
        lambda x, d, i, value: _scatter_ref(x, d, i, value),
        _scatter_value_sample,
        method="scatter",
    ),
    OpInfo(
        "scatter_add",
        gf.scatter_add,
        lambda x, d, i, s: _scatter_ref(x, d, i, s, add=True),
        _gather_sample(src=True),
        method="scatter_add",
    ),
    OpInfo(
        "masked_fill",
        gf.masked_fill,
        lambda x, m, v: np.where(m, v, x),
        _masked_fill_sample(tensor_value=False),
        method="masked_fill",
    ),
    OpInfo(
        "masked_fill_tensor_value",
        gf.masked_fill,
        lambda x, m, v: np.where(m, v, x),
        _masked_fill_sample(tensor_value=True),
    ),
    OpInfo("take_along_dim", gf.take_along_dim, _take_along_dim_ref, _take_along_dim_sample, method="take_along_dim"),
]
