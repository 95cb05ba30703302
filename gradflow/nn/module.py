"""Module: the base of every layer, with PyTorch's attribute registration, traversal and state dicts.

Assigning a Parameter, a Module or (through ``register_buffer``) a tensor as an
attribute registers it, so ``parameters()``, ``state_dict()`` and ``to()`` find it.
"""

from __future__ import annotations

from collections import OrderedDict

from .. import dtypes
from ..autograd.grad_mode import no_grad
from ..errors import ArgumentKeyError, ArgumentTypeError, ArgumentValueError
from ..ops.conversion import parse_to_args
from ..tensor import Tensor
from ..utils.hooks import RemovableHandle
from . import state_dict as _state_dict
from .parameter import Parameter
from .state_dict import IncompatibleKeys


def _forward_unimplemented(self, *input):
    raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')


class Module:
    """Base class for all layers: subclass it, assign sub-modules and Parameters in ``__init__``, define ``forward``."""

    training: bool
    _version: int = 1  # bumped by a layer whose state dict changes; see _upgrade_state_dict
    forward = _forward_unimplemented

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise ArgumentTypeError(f"{type(self).__name__}.__init__() got unexpected arguments; Module takes none")
        setter = object.__setattr__
        setter(self, "training", True)
        setter(self, "_parameters", OrderedDict())
        setter(self, "_buffers", OrderedDict())
        setter(self, "_non_persistent_buffers_set", set())
        setter(self, "_modules", OrderedDict())
        setter(self, "_forward_hooks", OrderedDict())
        setter(self, "_forward_pre_hooks", OrderedDict())

    # -- registration ---------------------------------------------------------
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None, a placeholder such as a missing bias) under ``name``."""
        self._check_name("register_parameter", name, "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise ArgumentTypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' (gradflow.nn.Parameter or None "
                "required)"
            )
        if param is not None and not param.is_leaf:
            raise ArgumentValueError(f"register_parameter: cannot assign non-leaf Tensor to parameter '{name}'")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a tensor that is state but not a parameter (BatchNorm's running mean); in state_dict if persistent."""
        self._check_name("register_buffer", name, "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise ArgumentTypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' (Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name`` (also reachable as an attribute)."""
        if module is not None and not isinstance(module, Module):
            raise ArgumentTypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name("add_module", name, "_modules")
        self._modules[name] = module

    register_module = add_module

    def _check_name(self, caller: str, name, registry: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{caller}: cannot register before Module.__init__() call")
        if not isinstance(name, str):
            raise ArgumentTypeError(f"{caller}: name should be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise ArgumentKeyError(f'{caller}: name can\'t be empty or contain ".", got "{name}"')
        if hasattr(self, name) and name not in getattr(self, registry):
            raise ArgumentKeyError(f"{caller}: attribute '{name}' already exists")

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params, buffers, modules = d.get("_parameters"), d.get("_buffers"), d.get("_modules")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            _discard(name, d, buffers, modules)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise ArgumentTypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' (gradflow.nn.Parameter or None "
                    "expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            _discard(name, d, params, buffers)
            modules[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise ArgumentTypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' (Module or None)"
                )
            modules[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise ArgumentTypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' (Tensor or None expected)"
                )
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            found = d.get(registry)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # -- calling --------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            replaced = hook(self, args)
            if replaced is not None:
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        result = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, result)
            if replaced is not None:
                result = replaced
        return result

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, args)`` runs before forward; a non-None return replaces the positional args."""
        return RemovableHandle.add(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """``hook(module, args, output)`` runs after forward; a non-None return replaces the output."""
        return RemovableHandle.add(self._forward_hooks, hook)

    # -- traversal ------------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """Yield ``(name, module)`` for this module and every descendant, each module once."""
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:  # pre-order, children in registration order
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in memo:
                    continue
                memo.add(id(module))
            yield name, module
            children = [(f"{name}.{key}" if name else key, child) for key, child in module._modules.items()]
            stack.extend(reversed([(key, child) for key, child in children if child is not None]))

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool = True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Yield ``(dotted_name, parameter)``; a parameter shared by two modules is listed once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, parameter in self.named_parameters(recurse=recurse):
            yield parameter

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def get_submodule(self, target: str) -> Module:
        """The descendant at the dotted path ``target`` ('' is this module)."""
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules or module._modules[part] is None:
                raise AttributeError(f"{module._get_name()} has no submodule `{part}` (looking up '{target}')")
            module = module._modules[part]
        return module

    def get_parameter(self, target: str) -> Parameter:
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters:
            raise AttributeError(f"{module._get_name()} has no parameter `{name}`")
        return module._parameters[name]

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every child (recursively), then on this module; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # -- modes and gradients --------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode here, then call each child's own ``train(mode)`` (so overrides run, as in PyTorch)."""
        if not isinstance(mode, bool):
            raise ArgumentValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's ``.grad``: to None (the default) or to zeros in place."""
        for parameter in self.parameters():
            grad = parameter._grad
            if grad is None:
                continue
            if set_to_none:
                parameter._grad = None
                continue
            # Zero the same tensor in place, as PyTorch does: whoever holds ``.grad`` sees the zeros, and
            # zero_() bumps the version, so a graph that saved this gradient (create_graph=True) refuses to
            # backward instead of silently using zeros.
            if grad._node is not None:
                grad.detach_()
            else:
                grad.requires_grad_(False)
            with no_grad():
                grad.zero_()

    # -- moving and casting ---------------------------------------------------
    def to(self, *args, **kwargs) -> Module:
        """Move parameters and buffers to a device and/or cast floating ones to a dtype, in place.

        The Parameter objects stay the same (an optimizer built before ``to`` keeps working).
        """
        device, dtype = _parse_to(args, kwargs)

        def convert(tensor: Tensor) -> Tensor:
            if dtype is not None and tensor._dtype.is_floating_point:
                return tensor.to(device=device, dtype=dtype) if device is not None else tensor.to(dtype)
            return tensor.to(device) if device is not None else tensor

        return self._apply(convert)

    def _apply(self, convert) -> Module:
        with no_grad():
            for module in self.modules():
                for parameter in module._parameters.values():
                    if parameter is None:
                        continue
                    _state_dict.move_into(parameter, convert(parameter))
                    if parameter._grad is not None:
                        parameter._grad = convert(parameter._grad)
                for name, buffer in module._buffers.items():
                    if buffer is not None:
                        module._buffers[name] = convert(buffer)
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        return self.to("cuda" if device is None else (device if isinstance(device, str) else f"cuda:{device}"))

    def float(self) -> Module:
        return self.to(dtype=_dtypes().float32)

    def double(self) -> Module:
        return self.to(dtype=_dtypes().float64)

    def half(self) -> Module:
        return self.to(dtype=_dtypes().float16)

    # -- state dicts ----------------------------------------------------------
    def state_dict(self, *, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Parameters and persistent buffers by dotted name (detached unless ``keep_vars``)."""
        return _state_dict.state_dict(self, destination, prefix, keep_vars)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's parameters and buffers (onto their devices).

        With ``strict`` (the default), missing or unexpected keys raise a StateDictError listing them;
        a value that is not a Tensor raises one naming its key and type, and a shape that differs
        raises ShapeError. Returns ``(missing_keys, unexpected_keys)``.
        """
        return _state_dict.load_state_dict(self, state_dict, strict, assign)

    def _upgrade_state_dict(self, state_dict, prefix: str, local_metadata: dict) -> None:
        """Adapt ``state_dict`` (a copy) saved by an older ``_version`` of this module, before keys are matched.

        ``prefix`` is this module's dotted name plus ``.`` (``""`` for the root) and
        ``local_metadata`` its entry in the state dict's ``_metadata`` (``{}`` if none). The base
        class changes nothing; BatchNorm fills in ``num_batches_tracked``.
        """

    # -- printing -------------------------------------------------------------
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (layers describe their sizes here)."""
        return ""

    def __repr__(self) -> str:
        lines = self.extra_repr().split("\n") if self.extra_repr() else []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not lines:
            return f"{self._get_name()}()"
        if len(lines) == 1 and not self._modules:
            return f"{self._get_name()}({lines[0]})"
        return f"{self._get_name()}(\n  " + "\n  ".join(lines) + "\n)"


def _discard(name: str, *registries) -> None:
    for registry in registries:
        if registry is not None and name in registry:
            del registry[name]


def _dtypes():
    return dtypes


def _parse_to(args, kwargs):
    """Tensor.to's argument forms, as (device, dtype); a module converts floating dtypes only."""
    dtype, device, _ = parse_to_args(args, dict(kwargs))
    if dtype is not None and not dtype.is_floating_point:
        raise ArgumentTypeError(f"Module.to only accepts floating point dtypes, but got desired dtype={dtype.name}")
    return device, dtype
