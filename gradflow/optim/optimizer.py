"""Optimizer: parameter groups, per-parameter state, zero_grad, step and state_dict, as in torch.optim.

A concrete optimizer (``SGD``, ``Adam``, ...) validates its hyperparameters,
passes them as ``defaults`` and overrides ``_update_group(group)``: gather the
group's parameters that have a gradient, create their state on first use, and
make ONE call to its update function (``_functional.adam(...)``) per device with
lists of tensors. That function computes the step-dependent scalars and runs the
backend's primitive for the device kind, which updates the parameters' own arrays
in place, so tensors, views and optimizer state keep pointing at them.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict

import numpy as np

from ..autograd.grad_mode import enable_grad, no_grad
from ..device import resolve
from ..dtypes import float16, float32
from ..errors import ArgumentTypeError, ArgumentValueError, DtypeError, ShapeError, shape_str
from ..profiler import record_function
from ..tensor import Tensor


class _RequiredParameter:
    """Marks a hyperparameter without a default: every parameter group must give it."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def check_hyperparameter(valid: bool, label: str, value, expected: str) -> None:
    """Raise PyTorch's ``ValueError("Invalid <label>: <value>")`` when ``valid`` is false, plus the valid range."""
    if not valid:
        raise ArgumentValueError(f"Invalid {label}: {value} (expected {expected})")


class Optimizer:
    """Base class of all optimizers.

    ``params`` is an iterable of Tensors (one group) or of dicts (parameter groups,
    each with a ``'params'`` entry and any hyperparameters that override
    ``defaults``). ``state`` maps each parameter to its state dict.

    >>> import gradflow as gf
    >>> from gradflow.optim import SGD
    >>> w = gf.zeros(3, requires_grad=True)
    >>> opt = SGD([{"params": [w], "lr": 0.5}], lr=0.1)
    >>> (w - 1.0).pow(2).sum().backward()
    >>> opt.step()
    >>> w.tolist()
    [1.0, 1.0, 1.0]
    """

    # Group options that PyTorch added in later releases, with the value that keeps an older state dict's
    # behaviour; load_state_dict fills them into saved groups that lack them (PyTorch's __setstate__ does).
    _options_added_later: dict = {}
    # True where the fused update computes float16 parameters in float32 (SGD, Adam, AdamW): their
    # floating state is then float32, as in mixed-precision training (see ``_state_dtype``).
    _float32_state_for_half: bool = False

    def __init__(self, params, defaults: dict) -> None:
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise ArgumentTypeError(
                f"{type(self).__name__}: params argument given to the optimizer should be an iterable of Tensors "
                "or dicts, but got Tensor; wrap it in a list: [tensor]"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ArgumentValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for index, group in enumerate(self.param_groups):
            text += f"\nParameter Group {index}\n"
            for key in sorted(group):
                if key != "params":
                    text += f"    {key}: {group[key]}\n"
        return text + ")"

    # -- parameter groups -----------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (with its own hyperparameters; the rest come from ``defaults``).

        Parameters must be floating-point leaf tensors and belong to one group only.
        Entries of ``param_group['params']`` may be ``(name, tensor)`` pairs, kept as ``'param_names'``.
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise ArgumentTypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise ArgumentTypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of tensors "
                "in sets will change between runs. Please use a list instead."
            )
        params = list(params)
        names = [item[0] for item in params if isinstance(item, tuple)]
        params = [item[1] if isinstance(item, tuple) else item for item in params]
        if names:
            if len(names) != len(params):
                raise ArgumentValueError(
                    "all optimizer params should be with/without names. Some param names are missing"
                )
            param_group["param_names"] = names
        param_group["params"] = params
        for param in params:
            self._check_param(param, name)

        for key, default in self.defaults.items():
            if default is required and key not in param_group:
                raise ArgumentValueError(
                    f"parameter group didn't specify a value of required optimization parameter {key}"
                )
            param_group.setdefault(key, default)

        if len({id(p) for p in params}) != len(params):
            warnings.warn(
                f"{name}: optimizer contains a parameter group with duplicate parameters; each would be updated "
                "twice per step. Pass each parameter once.",
                stacklevel=3,
            )
        taken = set()
        for group in self.param_groups:
            taken.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                kind = "with names" if "param_names" in param_group else "without names"
                raise ArgumentValueError(
                    f"all optimizer param groups should be with/without names. cannot add param group {kind} "
                    "to the optimizer"
                )
        clashes = [p for p in params if id(p) in taken]
        if clashes:
            raise ArgumentValueError(
                "some parameters appear in more than one parameter group "
                f"(e.g. one of shape {shape_str(clashes[0].shape)}); put each parameter in exactly one group"
            )
        self.param_groups.append(param_group)

    @staticmethod
    def _check_param(param, name: str) -> None:
        if not isinstance(param, Tensor):
            raise ArgumentTypeError(
                f"optimizer can only optimize Tensors, but one of the params is {type(param).__name__}"
            )
        if not param.is_leaf:
            raise ArgumentValueError(
                f"can't optimize a non-leaf Tensor ({name}: a tensor of shape {shape_str(param.shape)} produced by "
                f"{param.grad_fn.name()}); optimize the leaf it came from, or use .detach().requires_grad_()"
            )
        if not param.is_floating_point():
            raise DtypeError(
                f"{name}: can only optimize floating point tensors, got one of dtype {param.dtype.name} and shape "
                f"{shape_str(param.shape)}; convert it first with .float() or .double()"
            )

    # -- gradients and steps --------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to None (default), or to zeros in place with ``set_to_none=False``."""
        for group in self.param_groups:
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                    continue
                if grad.grad_fn is not None:
                    grad.detach_()
                else:
                    grad.requires_grad_(False)
                grad.zero_()

    def step(self, closure=None):
        """Update every parameter that has a gradient; ``closure`` (re-evaluating the loss) runs first, with grad
        mode on, and its result is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad(), record_function(f"{type(self).__name__}.step"):
            for group in self.param_groups:
                self._update_group(group)
                for param in group["params"]:
                    if param.grad is not None:
                        # In place, like PyTorch's param.add_: a graph saved before the step now fails loudly.
                        param._bump_version()
        return loss

    def _update_group(self, group: dict) -> None:
        """Apply this optimizer's update to one parameter group; concrete optimizers override it."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no update rule: subclasses of Optimizer override _update_group(group) "
            "or step(closure)"
        )

    def _params_by_device(self, group: dict) -> dict:
        """The group's parameters that have a gradient, by device (one fused call per device)."""
        found: dict = {}
        name = type(self).__name__
        for param in group["params"]:
            grad = param.grad
            if grad is None:
                continue
            if grad._dtype != param._dtype:
                raise DtypeError(
                    f"{name}: a parameter of shape {shape_str(param.shape)} has dtype {param.dtype.name} but its "
                    f".grad has dtype {grad.dtype.name}; assign a gradient of the parameter's dtype"
                )
            found.setdefault(param._device, []).append(param)
        return found

    @staticmethod
    def _zeros_like(param: Tensor, fill: float = 0.0, dtype=None) -> Tensor:
        """A state tensor shaped like ``param``: its device, C-contiguous, filled with ``fill``; of ``dtype``
        (a gradflow dtype) or else the parameter's."""
        backend = param._device.backend
        with backend.context():
            array = backend.xp.full(param.shape, fill, dtype=(dtype or param._dtype).np)
        return Tensor._wrap(array, param._device)

    def _state_dtype(self, param: Tensor):
        """The dtype of ``param``'s floating state: float32 for a float16 parameter where the update computes
        in float32 (``_float32_state_for_half``: the moments keep their precision; PyTorch's own
        non-fused optimizers would keep float16 state), else the parameter's dtype."""
        if self._float32_state_for_half and param._dtype is float16:
            return float32
        return param._dtype

    def _new_state(self, param: Tensor) -> Tensor:
        """A zero state tensor for ``param`` (device, shape and ``_state_dtype``)."""
        return self._zeros_like(param, dtype=self._state_dtype(param))

    @staticmethod
    def _new_step() -> Tensor:
        """The step counter: a 0-d float32 CPU tensor, as PyTorch keeps it (also for CUDA parameters)."""
        return Tensor._wrap(np.zeros((), dtype=np.float32), resolve("cpu"))

    # -- saving and loading ----------------------------------------------------
    def state_dict(self) -> dict:
        """The optimizer's state in PyTorch's format: parameters replaced by their index in group order.

        ``{'state': {index: {name: tensor or number}}, 'param_groups': [{hyperparameters..., 'params': [index]}]}``;
        the tensors are the live state tensors (copy them to keep a snapshot). A deliberate difference:
        the state of a float16 parameter of SGD, Adam and AdamW is float32 here, float16 in PyTorch's
        non-fused optimizers. Both load either way: PyTorch casts floating state to the parameter's
        dtype on load, and ``load_state_dict`` here casts float16 state up to float32.
        """
        indices: dict = {}
        groups = []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            for param in group["params"]:
                indices.setdefault(id(param), len(indices))
            packed["params"] = [indices[id(param)] for param in group["params"]]
            groups.append(packed)
        state = {indices[id(key)] if isinstance(key, Tensor) else key: value for key, value in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a ``state_dict()``: hyperparameters and copies of the state, moved to each parameter's device.

        Floating state takes the parameter's dtype (float32 for float16 parameters of SGD and Adam);
        ``'step'`` stays as saved (a CPU counter). Options that an older state dict lacks (``'maximize'``,
        ...) take the value that reproduces its behaviour, as in PyTorch.
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ArgumentValueError(
                f"loaded state dict has a different number of parameter groups: {len(saved_groups)} saved, "
                f"{len(groups)} in this {type(self).__name__}; build the optimizer with the same groups"
            )
        for index, (group, saved) in enumerate(zip(groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ArgumentValueError(
                    f"loaded state dict contains a parameter group that doesn't match the size of optimizer's "
                    f"group: group {index} has {len(saved['params'])} parameters saved but {len(group['params'])} "
                    "here; build the optimizer with the same parameters in the same order"
                )
        id_map = {
            saved_id: param
            for group, saved in zip(groups, saved_groups)
            for saved_id, param in zip(saved["params"], group["params"])
        }
        state: defaultdict = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in id_map:
                param = id_map[key]
                _check_state_shapes(type(self).__name__, key, param, value, groups)
                dtype = self._state_dtype(param)
                state[param] = {name: _copy_state(param, name, item, dtype) for name, item in value.items()}
            else:
                state[key] = copy.deepcopy(value)
        for group, saved in zip(groups, saved_groups):
            for key, value in self._options_added_later.items():
                saved.setdefault(key, value)
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
        self.state = state
        self.param_groups = saved_groups


def _check_state_shapes(owner: str, key, param: Tensor, value: dict, groups) -> None:
    """Per-parameter state (exp_avg, momentum_buffer, ...) must have the parameter's shape: a smaller one would
    broadcast in step() and train on silently wrong values. ``step`` is a counter of any shape."""
    for name, item in value.items():
        if name == "step" or not isinstance(item, Tensor) or item.shape == param.shape:
            continue
        label = next(
            (
                f"'{group['param_names'][index]}'" if "param_names" in group else f"{index} of group {number}"
                for number, group in enumerate(groups)
                for index, candidate in enumerate(group["params"])
                if candidate is param
            ),
            repr(key),
        )
        raise ShapeError(
            f"{owner}.load_state_dict: state '{name}' of parameter {label} (saved id {key!r}) has shape "
            f"{shape_str(item.shape)} but the parameter has shape {shape_str(param.shape)}; load a state dict saved "
            "for these parameters, in the same order"
        )


def _copy_state(param: Tensor, name: str, value, state_dtype):
    """A private copy of one state entry, on ``param``'s device (and of ``state_dtype``, for floating state)."""
    if isinstance(value, Tensor):
        if name == "step":
            return value.detach().clone()
        dtype = state_dtype if value.is_floating_point() else value._dtype
        return value.detach().to(device=param._device, dtype=dtype, copy=True).contiguous()
    if name == "step":  # a plain number from an older checkpoint: the primitives need a counter array
        return Optimizer._new_step().fill_(float(value))
    return copy.deepcopy(value)
