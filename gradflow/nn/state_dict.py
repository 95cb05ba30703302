"""Module state dicts: collecting parameters and buffers by dotted name, and loading them back.

``Module.state_dict`` / ``Module.load_state_dict`` call these. As in PyTorch, a state dict
made here carries ``_metadata`` (each module's ``_version`` by prefix); ``load_state_dict``
gives every module a chance to upgrade a state dict saved by an older version of it
(``Module._upgrade_state_dict``) before matching keys, which is how BatchNorm fills in a
missing ``num_batches_tracked``.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

from ..autograd.grad_mode import no_grad
from ..errors import ArgumentTypeError, ShapeError, StateDictError, shape_str
from ..tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def state_dict(module, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
    """Parameters and persistent buffers of ``module`` and its descendants by dotted name."""
    if destination is None:
        destination = OrderedDict()
        destination._metadata = OrderedDict()
    metadata = getattr(destination, "_metadata", None)
    for module_prefix, child in module.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
        if metadata is not None:
            metadata[module_prefix] = {"version": child._version}
        dot = f"{module_prefix}." if module_prefix else ""
        for name, parameter in child._parameters.items():
            if parameter is not None:
                destination[dot + name] = parameter if keep_vars else parameter.detach()
        for name, buffer in child._buffers.items():
            if buffer is not None and name not in child._non_persistent_buffers_set:
                destination[dot + name] = buffer if keep_vars else buffer.detach()
    return destination


def load_state_dict(module, state_dict, strict: bool = True, assign: bool = False) -> IncompatibleKeys:
    """Copy ``state_dict``'s tensors into ``module``'s parameters and buffers; see ``Module.load_state_dict``."""
    if not hasattr(state_dict, "items"):
        raise ArgumentTypeError(f"load_state_dict: expected a dict-like state_dict, got {type(state_dict).__name__}")
    metadata = getattr(state_dict, "_metadata", None)
    state_dict = OrderedDict(state_dict)  # the upgrade hooks may add keys: never to the caller's dict
    for module_prefix, child in module.named_modules(remove_duplicate=False):
        local = metadata.get(module_prefix, {}) if isinstance(metadata, dict) else {}
        child._upgrade_state_dict(state_dict, f"{module_prefix}." if module_prefix else "", local)
    own = module.state_dict(keep_vars=True)
    missing = [key for key in own if key not in state_dict]
    unexpected = [key for key in state_dict if key not in own]
    problems = []
    if strict and missing:
        problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{key}"' for key in missing) + ".")
    if strict and unexpected:
        problems.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{key}"' for key in unexpected) + ".")
    for key in own:
        if key in state_dict and not isinstance(state_dict[key], Tensor):
            problems.append(
                f'While copying the parameter named "{key}", expected a gradflow Tensor from the checkpoint but got '
                f"{type(state_dict[key]).__module__}.{type(state_dict[key]).__qualname__}; convert it with "
                "gradflow.tensor(...) or gradflow.from_numpy(...)"
            )
    if problems:
        fix = "\n\tPass strict=False to load the matching keys only." if strict and (missing or unexpected) else ""
        raise StateDictError(
            f"Error(s) in loading state_dict for {module._get_name()}:\n\t" + "\n\t".join(problems) + fix
        )
    mismatched = [
        f"size mismatch for {key}: copying a param with shape {shape_str(state_dict[key].shape)} from checkpoint, "
        f"the shape in current model is {shape_str(target.shape)}."
        for key, target in own.items()
        if key in state_dict and tuple(state_dict[key].shape) != tuple(target.shape)
    ]
    if mismatched:
        raise ShapeError(f"Error(s) in loading state_dict for {module._get_name()}:\n\t" + "\n\t".join(mismatched))
    with no_grad():
        for key, target in own.items():
            if key in state_dict:
                _copy_into(target, state_dict[key], assign)
    return IncompatibleKeys(missing, unexpected)


def move_into(parameter: Tensor, moved: Tensor) -> None:
    """Give ``parameter`` the storage of ``moved`` while keeping the Parameter object."""
    if moved is parameter:
        return
    parameter._data = moved._data
    parameter._device = moved._device
    parameter._dtype = moved._dtype


def _copy_into(target: Tensor, value: Tensor, assign: bool) -> None:
    """Write ``value`` into ``target``'s memory, moved to target's device and cast to its dtype."""
    if assign:
        move_into(target, value.to(target._device))
        return
    converted = value.to(device=target._device, dtype=target._dtype)
    target._data[...] = converted._data
    target._bump_version()
