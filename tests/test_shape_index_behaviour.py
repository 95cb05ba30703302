"""Shape and indexing behaviour the op table can't see: views and versions, copies, accumulation, errors, pad."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.backends.numpy_backend import NumpyBackend
from gradflow.errors import DeviceMismatchError, DtypeError, IndexOutOfRangeError, InplaceError, ShapeError


def _graph_tensor(*shape):
    """A non-leaf float64 tensor (in-place changes are allowed) and the leaf it came from."""
    leaf = gf.arange(float(np.prod(shape)), dtype=gf.float64).reshape(shape).requires_grad_()
    return leaf * 1, leaf


def _on_fake_gpu(array):
    """A tensor on Device('cuda', 7) backed by NumPy, to test device checks without a GPU."""
    fake = gf.Device("cuda", 7)
    fake._backend = NumpyBackend()
    return gf.Tensor._wrap(np.asarray(array), fake)


# -- views share memory and the version counter --------------------------------------------------

VIEWS = {
    "view": lambda x: x.view(3, 4),
    "reshape": lambda x: x.reshape(-1),
    "transpose": lambda x: x.transpose(0, 1),
    "permute": lambda x: x.permute(1, 0),
    "flatten": lambda x: x.flatten(),
    "unflatten": lambda x: x.unflatten(1, (2, 2)),
    "unsqueeze": lambda x: x.unsqueeze(0),
    "squeeze": lambda x: x.unsqueeze(1).squeeze(1),
    "movedim": lambda x: x.movedim(0, 1),
    "expand": lambda x: x.unsqueeze(0).expand(2, 3, 4),
    "narrow": lambda x: x.narrow(1, 1, 2),
    "select": lambda x: x.select(0, -1),
    "getitem_slice": lambda x: x[1:, ::2],
    "split": lambda x: x.split(2, dim=1)[1],
    "chunk": lambda x: x.chunk(3)[0],
    "unbind": lambda x: x.unbind(1)[2],
}


@pytest.mark.parametrize("make_view", VIEWS.values(), ids=VIEWS.keys())
def test_view_shares_memory_and_version_counter_with_its_base(make_view):
    base, _ = _graph_tensor(3, 4)
    view = make_view(base)
    assert np.shares_memory(view.detach().numpy(), base.detach().numpy())
    before = view._version
    with gf.no_grad():
        base.add_(1)
    assert view._version == before + 1


@pytest.mark.parametrize("make_view", VIEWS.values(), ids=VIEWS.keys())
def test_modifying_the_base_after_a_view_was_saved_makes_backward_raise(make_view):
    base, _ = _graph_tensor(3, 4)
    view = make_view(base)
    loss = (view * view).sum()  # mul saves the view
    base.mul_(2)
    with pytest.raises(InplaceError, match="modified by an in-place operation"):
        loss.backward()


COPIES = {
    "flip": lambda x: x.flip(0),
    "roll": lambda x: x.roll(1, 0),
    "cat": lambda x: gf.cat([x, x]),
    "stack": lambda x: gf.stack([x, x]),
    "repeat": lambda x: x.repeat(2, 1),
    "tile": lambda x: x.tile((2,)),
    "tril": lambda x: x.tril(),
    "getitem_int_array": lambda x: x[[0, 2]],
    "getitem_bool_mask": lambda x: x[x > 3],
    "index_select": lambda x: x.index_select(0, gf.tensor([1, 0])),
    "gather": lambda x: x.gather(1, gf.tensor([[0], [1], [3]])),
    "pad": lambda x: F.pad(x, (1, 1)),
}


@pytest.mark.parametrize("make_copy", COPIES.values(), ids=COPIES.keys())
def test_copying_ops_do_not_share_memory_and_survive_later_inplace_changes(make_copy):
    base, leaf = _graph_tensor(3, 4)
    copy = make_copy(base)
    assert not np.shares_memory(copy.detach().numpy(), base.detach().numpy())
    loss = (copy * copy).sum()
    base.mul_(2)
    loss.backward()  # the copy, not the base, was saved, so the change doesn't invalidate it
    assert leaf.grad is not None


def test_basic_indexing_is_a_view_and_advanced_indexing_a_copy():
    x = gf.arange(6.0).reshape(2, 3)
    basic = x[0, 1:]
    advanced = x[[0], 1:]
    basic.fill_(-1)
    advanced.fill_(-2)
    assert x.tolist() == [[0.0, -1.0, -1.0], [3.0, 4.0, 5.0]]
    assert basic._base is not None and advanced._base is None


def test_reshape_of_a_non_contiguous_tensor_is_a_copy_not_marked_as_a_view():
    x = gf.arange(6.0).reshape(2, 3)
    flat = x.t().reshape(-1)
    assert flat.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    assert flat._base is None
    assert not np.shares_memory(flat.numpy(), x.numpy())


# -- setitem and in-place indexing ops -------------------------------------------------------------


def test_setitem_bumps_the_version_and_gradients_reach_target_and_value():
    target, leaf = _graph_tensor(3, 2)
    value = gf.tensor([10.0, 20.0], dtype=gf.float64, requires_grad=True)
    before = target._version
    target[1] = value
    assert target._version == before + 1
    weights = gf.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=gf.float64)
    (target * weights).sum().backward()
    assert leaf.grad.tolist() == [[1.0, 2.0], [0.0, 0.0], [5.0, 6.0]]
    assert value.grad.tolist() == [3.0, 4.0]


def test_setitem_on_a_leaf_that_requires_grad_raises():
    leaf = gf.zeros(3, requires_grad=True)
    with pytest.raises(InplaceError, match="leaf tensor that requires grad"):
        leaf[0] = 1.0


@pytest.mark.parametrize(
    ("name", "apply", "expected_values", "expected_grad"),
    [
        ("masked_fill_", lambda t: t.masked_fill_(gf.tensor([True, False, True]), 0.5),
         [0.5, 1.0, 0.5], [0.0, 1.0, 0.0]),
        ("index_fill_", lambda t: t.index_fill_(0, gf.tensor([-1]), 7.0), [0.0, 1.0, 7.0], [1.0, 1.0, 0.0]),
        ("scatter_", lambda t: t.scatter_(0, gf.tensor([2, 0]), gf.tensor([5.0, 6.0], dtype=gf.float64)),
         [6.0, 1.0, 5.0], [0.0, 1.0, 0.0]),
        ("scatter_add_", lambda t: t.scatter_add_(0, gf.tensor([2, 2]), gf.ones(2, dtype=gf.float64)),
         [0.0, 1.0, 4.0], [1.0, 1.0, 1.0]),
        ("index_add_", lambda t: t.index_add_(0, gf.tensor([0, 0]), gf.ones(2, dtype=gf.float64), alpha=3),
         [6.0, 1.0, 2.0], [1.0, 1.0, 1.0]),
    ],
)  # fmt: skip
def test_inplace_indexing_ops_write_in_place_bump_the_version_and_backpropagate(
    name, apply, expected_values, expected_grad
):
    target, leaf = _graph_tensor(3)
    before = target._version
    assert apply(target) is target
    assert target._version == before + 1
    assert target.tolist() == expected_values
    assert target.grad_fn is not None
    target.sum().backward()
    assert leaf.grad.tolist() == expected_grad


def test_masked_fill_inplace_cannot_broadcast_the_tensor_to_a_larger_shape():
    with pytest.raises(ShapeError, match=r"output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"):
        gf.zeros(3).masked_fill_(gf.ones(2, 3, dtype=gf.bool), 1.0)


# -- masks, repeated and negative indices ----------------------------------------------------------


def test_boolean_mask_indexing_selects_in_order_and_routes_gradients():
    x = gf.tensor([[1.0, -2.0], [-3.0, 4.0]], requires_grad=True)
    picked = x[x > 0]
    assert picked.tolist() == [1.0, 4.0]
    (picked * gf.tensor([2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [[2.0, 0.0], [0.0, 3.0]]


@pytest.mark.parametrize(
    ("pick", "expected"),
    [
        (lambda x: x[[0, 0, 2, 0, 0]], [4.0, 0.0, 1.0]),
        (lambda x: x[gf.tensor([0, 0, 2, 0, 0])], [4.0, 0.0, 1.0]),
        (lambda x: x.index_select(0, gf.tensor([0, 0, 2, 0, 0])), [4.0, 0.0, 1.0]),
        (lambda x: x.gather(0, gf.tensor([0, 0, 2, 0, 0])), [4.0, 0.0, 1.0]),
        (lambda x: gf.take_along_dim(x, gf.tensor([0, 0, -1, 0, 0])), [4.0, 0.0, 1.0]),
        (lambda x: F.pad(x, (3, 0), mode="replicate"), [4.0, 1.0, 1.0]),
        (lambda x: F.pad(x, (2, 2), mode="circular"), [2.0, 3.0, 2.0]),
    ],
    ids=["list", "tensor", "index_select", "gather", "take_along_dim", "pad_replicate", "pad_circular"],
)
def test_repeated_indices_accumulate_gradients(pick, expected):
    x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    pick(x).sum().backward()
    assert x.grad.tolist() == expected


def test_scatter_add_accumulates_repeated_indices_and_its_gradient_gathers():
    src = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out = gf.zeros(2).scatter_add(0, gf.tensor([1, 1, 0]), src)
    assert out.tolist() == [3.0, 3.0]
    (out * gf.tensor([10.0, 100.0])).sum().backward()
    assert src.grad.tolist() == [100.0, 100.0, 10.0]


def test_negative_indices_count_from_the_end():
    x = gf.arange(12.0).reshape(3, 4)
    assert x[-1, -2].item() == 10.0
    assert x.select(1, -1).tolist() == [3.0, 7.0, 11.0]
    assert x.narrow(0, -2, 2).tolist() == x[1:].tolist()
    assert x.index_fill(1, gf.tensor([-1]), 0.0)[:, 3].tolist() == [0.0, 0.0, 0.0]
    assert gf.take_along_dim(x, gf.tensor([[-1], [0], [-4]]), 1).tolist() == [[3.0], [4.0], [8.0]]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: x[3], r"index 3 is out of bounds for axis 0 with size 3 \(tensor of shape \[3, 4\]\)"),
        (lambda x: x.gather(0, gf.tensor([[-1]])), r"gather: index -1 is out of bounds for dimension 0 with size 3"),
        (lambda x: x.index_select(1, gf.tensor([4])), r"index_select: index 4 is out of bounds for dimension 1"),
        (lambda x: x.scatter(1, gf.tensor([[9]]), 0.0), r"scatter: index 9 is out of bounds for dimension 1 with"),
        (lambda x: x.index_fill(0, gf.tensor([-4]), 0.0), r"index_fill: index -4 .* must lie in \[-3, 2\]"),
        (lambda x: x.select(0, 3), r"select: index 3 out of range for tensor of size \[3, 4\] at dimension 0"),
        (lambda x: x.narrow(1, 2, 3), r"narrow: start \(2\) \+ length \(3\) exceeds dimension 1 of size 4"),
        (lambda x: x.unsqueeze(3), r"unsqueeze: dimension out of range \(expected to be in range of \[-3, 2\]"),
        (lambda x: x.flatten(2), r"flatten: dimension out of range"),
    ],
)  # fmt: skip
def test_out_of_range_indices_and_dims_raise_index_errors_naming_op_index_and_size(call, message):
    with pytest.raises(IndexOutOfRangeError, match=message):
        call(gf.zeros(3, 4))


def test_float_index_tensors_raise_a_dtype_error():
    x = gf.zeros(3, 4)
    with pytest.raises(DtypeError, match=r"gather: expected an int64 or int32 index tensor, got float32"):
        x.gather(0, gf.tensor([[0.0]]))
    with pytest.raises(DtypeError, match="index_select: expected an int64 or int32 index tensor"):
        x.index_select(0, gf.tensor([0.0]))
    with pytest.raises(IndexError, match="tensors used as indices must be long, int or bool tensors"):
        x[gf.tensor([0.0])]
    assert x.index_select(0, gf.tensor([2, 0], dtype=gf.int32)).shape == (2, 4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: x.reshape(5, -1), r"reshape: shape \[5, -1\] is invalid for input of size 12 \(shape \[3, 4\]\)"),
        (lambda x: x.view(2, 5), r"view: shape \[2, 5\] is invalid for input of size 12.*number of elements must stay"),
        (lambda x: x.unflatten(1, (3, 2)), r"unflatten: sizes \[3, 2\] don't multiply up to the size 4"),
        (lambda x: gf.cat([x, gf.zeros(3, 5)]), r"cat: sizes of tensors must match except in dimension 0, got "
                                                 r"\[3, 4\] \(tensor 0\) and \[3, 5\] \(tensor 1\)"),
        (lambda x: gf.cat([x, gf.zeros(4)], dim=1), r"cat: sizes of tensors must match"),
        (lambda x: gf.cat([gf.tensor(1.0)]), "zero-dimensional tensors cannot be concatenated"),
        (lambda x: gf.stack([x, x.t()]), r"stack: expects each tensor to be equal size, but got \[3, 4\] at entry 0 "
                                         r"and \[4, 3\] at entry 1"),
        (lambda x: x.split([1, 1], dim=0), r"split: split sizes \[1, 1\] must be non-negative and sum exactly to 3"),
        (lambda x: x.repeat(2), r"repeat: number of repeat dims \(1\) can not be smaller"),
        (lambda x: x.expand(3, 5), r"expand: the expanded size 5 must match the existing size 4 at dimension 1"),
        (lambda x: x.tril().flatten().triu(), r"triu: input tensor must have at least 2 dimensions, got shape \[12\]"),
        (lambda x: x.gather(0, gf.tensor([0])), r"gather: index must have the same number of dimensions as the input"),
        (lambda x: x.scatter_add(0, gf.tensor([[0, 1, 2, 0, 1]]), gf.ones(1, 5)), r"index of shape \[1, 5\] is "
                                                                                     r"larger than the input"),
        (lambda x: x.masked_fill(x > 0, gf.ones(2)), "only supports a 0-dimensional value tensor"),
    ],
)  # fmt: skip
def test_shape_mistakes_raise_shape_errors_naming_op_and_shapes(call, message):
    with pytest.raises(ShapeError, match=message):
        call(gf.zeros(3, 4))


def test_mask_and_src_dtypes_are_checked():
    x = gf.zeros(3)
    with pytest.raises(DtypeError, match="masked_fill: only boolean masks are supported, got int64"):
        x.masked_fill(gf.tensor([1, 0, 1]), 1.0)
    with pytest.raises(DtypeError, match="scatter: expected src of the input's dtype float32, got float64"):
        x.scatter(0, gf.tensor([0]), gf.ones(1, dtype=gf.float64))


# -- joins: devices, dtypes, multi-output gradients --------------------------------------------------


def test_cat_and_stack_of_tensors_on_different_devices_raise_naming_both_devices():
    on_cpu = gf.zeros(2)
    elsewhere = _on_fake_gpu(np.zeros(2, dtype=np.float32))
    with pytest.raises(DeviceMismatchError, match=r"cat: the tensor 1 is on cuda:7 but tensor 0 is on cpu"):
        gf.cat([on_cpu, elsewhere])
    with pytest.raises(DeviceMismatchError, match="stack: .*cuda:7"):
        gf.stack([on_cpu, elsewhere])
    with pytest.raises(DeviceMismatchError, match="gather: the index is on cuda:7 but the input is on cpu"):
        gf.zeros(2).gather(0, _on_fake_gpu(np.zeros(1, dtype=np.int64)))
    with pytest.raises(DeviceMismatchError, match="masked_fill: the mask is on cuda:7"):
        on_cpu.masked_fill(_on_fake_gpu(np.ones(2, dtype=bool)), 0.0)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [("int32", "float16", "float16"), ("bool", "int64", "int64"), ("float32", "float64", "float64"),
     ("uint8", "int8", "int16"), ("int64", "float32", "float32")],
)  # fmt: skip
def test_cat_and_stack_promote_dtypes_like_pytorch(first, second, expected):
    a, b = gf.zeros(2, 2, dtype=first), gf.ones(1, 2, dtype=second)
    assert gf.cat([a, b]).dtype is getattr(gf, expected)
    assert gf.stack([a, b.expand(2, 2)]).dtype is getattr(gf, expected)


def test_cat_gradients_return_to_each_input_in_its_own_dtype():
    a = gf.ones(2, dtype=gf.float32, requires_grad=True)
    b = gf.ones(1, dtype=gf.float64, requires_grad=True)
    (gf.cat([a, b]) * gf.tensor([1.0, 2.0, 3.0], dtype=gf.float64)).sum().backward()
    assert a.grad.dtype is gf.float32 and a.grad.tolist() == [1.0, 2.0]
    assert b.grad.dtype is gf.float64 and b.grad.tolist() == [3.0]


def test_cat_skips_legacy_empty_1d_tensors():
    assert gf.cat([gf.ones(2, 3), gf.zeros(0), gf.ones(1, 3)]).shape == (3, 3)


def test_unused_outputs_of_split_and_unbind_get_zero_gradient():
    x = gf.arange(6.0).reshape(2, 3).requires_grad_()
    first, _ = x.split([1, 2], dim=1)
    (first * 5).sum().backward()
    assert x.grad.tolist() == [[5.0, 0.0, 0.0], [5.0, 0.0, 0.0]]
    x.grad = None
    _, second = x.unbind(0)
    second.sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]


def test_chunk_and_split_piece_counts_follow_pytorch():
    assert [p.shape[0] for p in gf.arange(6).chunk(4)] == [2, 2, 2]
    assert [p.shape[0] for p in gf.arange(5).chunk(3)] == [2, 2, 1]
    assert [p.shape[0] for p in gf.arange(5).split(2)] == [2, 2, 1]
    assert [p.shape for p in gf.zeros(0).chunk(3)] == [(0,), (0,), (0,)]
    assert gf.zeros(2, 0).unbind(1) == ()


def test_iterating_a_tensor_yields_rows_that_carry_gradients():
    x = gf.arange(4.0).reshape(2, 2).requires_grad_()
    rows = list(x)
    assert [r.tolist() for r in rows] == [[0.0, 1.0], [2.0, 3.0]]
    (rows[1] * 2).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0], [2.0, 2.0]]


def test_squeeze_leaves_dims_of_size_other_than_one_alone():
    x = gf.zeros(1, 3, 1)
    assert x.squeeze(1).shape == (1, 3, 1)
    assert x.squeeze((0, 1)).shape == (3, 1)
    assert x.squeeze().shape == (3,)
    assert gf.tensor(2.0).squeeze(0).shape == ()


# -- pad ------------------------------------------------------------------------------------------------


def test_pad_constant_fills_with_value_and_pads_last_dims_first():
    x = gf.ones(1, 2)
    padded = F.pad(x, (1, 2, 1, 0), value=-1.0)
    assert padded.tolist() == [[-1.0, -1.0, -1.0, -1.0, -1.0], [-1.0, 1.0, 1.0, -1.0, -1.0]]


def test_pad_with_negative_widths_crops_and_its_gradient_is_the_uncropped_part():
    x = gf.arange(5.0, requires_grad=True)
    cropped = F.pad(x, (-1, 2))
    assert cropped.tolist() == [1.0, 2.0, 3.0, 4.0, 0.0, 0.0]
    (cropped * gf.arange(1.0, 7.0)).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_pad_modes_on_a_row():
    row = gf.tensor([[1.0, 2.0, 3.0]])
    assert F.pad(row, (2, 1), mode="reflect").tolist() == [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
    assert F.pad(row, (2, 1), mode="replicate").tolist() == [[1.0, 1.0, 1.0, 2.0, 3.0, 3.0]]
    assert F.pad(row, (2, 1), mode="circular").tolist() == [[2.0, 3.0, 1.0, 2.0, 3.0, 1.0]]


def test_pad_errors_say_what_is_supported():
    x = gf.zeros(2, 3)
    with pytest.raises(ValueError, match="supported modes are constant, reflect, replicate, circular"):
        F.pad(x, (1, 1), mode="symmetric")
    with pytest.raises(ValueError, match="padding length must be divisible by 2"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(ShapeError, match=r"pads 3 dimensions, but the input of shape \[2, 3\] has only 2"):
        F.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(ShapeError, match="would give a negative size -1"):
        F.pad(x, (-2, -2))
    with pytest.raises(ShapeError, match="reflect padding \\(3, 0\\) of dimension 1 must be at most 2"):
        F.pad(x, (3, 0), mode="reflect")


# -- parity with PyTorch ------------------------------------------------------------------------------------


def _pair(lib, array):
    if lib is np:
        return gf.tensor(array, requires_grad=True)
    import torch

    return torch.tensor(array, requires_grad=True)


def _expression(lib, x):
    """A chain through most of the family; every op here has the same name and signature in both libraries."""
    if lib is np:
        cat, stack, take, pad = gf.cat, gf.stack, gf.take_along_dim, F.pad
        index = gf.tensor
    else:
        import torch

        cat, stack, take, pad = torch.cat, torch.stack, torch.take_along_dim, torch.nn.functional.pad
        index = torch.tensor
    a, b, c = x.chunk(3, dim=1)
    joined = cat([c.flip(0), a.roll(1, 0), b.movedim(0, 1).t()], dim=1)
    stacked = stack(joined.unbind(0), dim=1).unflatten(0, (2, 3)).flatten(1)
    picked = stacked.gather(1, index([[0, 0, 3], [5, 1, 1]])).repeat(2, 2).tile((1, 2))
    scattered = picked.scatter_add(1, index([[0, 0, 0], [1, 1, 1]]), stacked[:, :3] * 2)
    taken = take(scattered, index([[1], [-1], [0], [11]]), 1)
    filled = scattered.masked_fill(scattered > 1.0, 0.5).index_select(0, index([3, 0, 3]))
    padded = pad(filled.unsqueeze(0), (2, 1), mode="reflect") + pad(filled.unsqueeze(0), (1, 2), mode="circular")
    return (padded.squeeze(0).narrow(1, 1, 8) * taken.sum()).tril(0).triu(-1).select(0, -1).sum()


def test_values_and_gradients_of_a_chain_of_shape_and_index_ops_match_torch():
    torch = pytest.importorskip("torch")
    array = np.random.default_rng(0).uniform(-2, 2, size=(4, 6))
    ours, theirs = _pair(np, array), _pair(torch, array)
    value, expected = _expression(np, ours), _expression(torch, theirs)
    value.backward()
    expected.backward()
    np.testing.assert_allclose(value.item(), expected.item(), rtol=1e-10)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("widths", [(1, 2), (2, -1), (-1, 1, 1, 0), (0, 0, 2, 2)])
def test_pad_matches_torch_including_negative_widths(mode, widths):
    torch = pytest.importorskip("torch")
    array = np.random.default_rng(1).uniform(-2, 2, size=(2, 3, 4))
    ours = F.pad(gf.tensor(array), widths, mode=mode)
    theirs = torch.nn.functional.pad(torch.tensor(array), widths, mode=mode)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())


def test_view_with_a_dtype_reinterprets_the_bits_and_shares_memory():
    x = gf.tensor([1.0, -2.0])
    bits = x.view(gf.int32)
    np.testing.assert_array_equal(bits.numpy(), np.array([1.0, -2.0], dtype=np.float32).view(np.int32))
    assert x.view(gf.int16).shape == (4,) and not bits.requires_grad
    x.fill_(0.0)
    assert bits.tolist() == [0, 0]
    with pytest.raises(ShapeError, match="cannot view a int16 tensor of shape \\[3\\] as float32"):
        gf.ones(3, dtype=gf.int16).view(gf.float32)
