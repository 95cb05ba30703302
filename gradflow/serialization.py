"""gradflow.save / gradflow.load: checkpoints as one safetensors file, written atomically.

What can be saved: nested dicts (str or int keys; OrderedDict stays OrderedDict,
other mappings come back as dict), lists, tuples (tuple subclasses such as named
tuples come back as plain tuples), Tensors, ints, floats (inf and nan too),
bools, strings and None. NumPy scalars are saved as the Python number they
equal; Tensor subclasses (``nn.Parameter``) come back as plain Tensors that keep
their requires_grad.

File layout: the tensors are the safetensors entries ``t0``, ``t1``, ...; the
metadata key ``"gradflow"`` holds JSON with the format version, the tree (each
container a one-key object such as ``{"dict": [[key, value], ...]}``, each
tensor ``{"tensor": "t0"}``) and, per tensor, its dtype, shape, device and
requires_grad. Loading parses that JSON and copies arrays out of the file; no
code from the file ever runs (there is no pickle anywhere).

Sharing: one Tensor object that appears several times is stored once and
comes back as one object. Distinct tensors that share memory (a tensor and a
view of it) are stored separately and come back independent. Gradients
(``.grad``) and autograd history are not saved.

Writes are atomic (the file is built in host memory first, so saving needs about
its size in extra memory): it is written to a temporary file in the same folder,
flushed and fsync'ed, renamed over ``f`` with ``os.replace`` and the folder is
fsync'ed; on any failure the temporary file is removed and an existing file at
``f`` is left as it was.
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import json
import math
import numbers
import os
import re
import secrets

import numpy as np
import safetensors
import safetensors.numpy

from . import dtypes
from .device import Device
from .device import device as to_device
from .errors import ArgumentTypeError, ArgumentValueError, CheckpointFormatError, DeviceUnavailableError, DtypeError
from .tensor import Tensor

__all__ = ["save", "load"]

FORMAT_VERSION = 1
METADATA_KEY = "gradflow"
_CHUNK_BYTES = 64 << 20
_DEVICE_PATTERN = re.compile(r"cpu|cuda:\d+")
_SPECIAL_FLOATS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_CONTAINER_TAGS = ("dict", "odict", "list", "tuple")


def _path_of(f, op: str) -> str:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    raise ArgumentTypeError(
        f"{op}: expected a file path (str or os.PathLike), got {type(f).__name__}; file objects are not supported "
        "because checkpoints are written atomically (temporary file, then rename)"
    )


# -- saving ----------------------------------------------------------------------------------------


class _Encoder:
    """Turns the object tree into JSON-ready nodes and collects the tensors' host arrays."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.infos: dict[str, dict] = {}
        self._names: dict[int, str] = {}  # id(Tensor) -> entry name, so one object is stored once
        self._keep_alive: list = []  # ids stay unique only while their objects live
        self._open: set[int] = set()  # containers being encoded, to catch reference cycles

    def encode(self, value, where: str):
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            number = float(value)
            if math.isfinite(number):
                return number
            # JSON has no inf/nan; keep the file strict JSON.
            return {"float": "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")}
        if isinstance(value, Tensor):
            return {"tensor": self._tensor(value, where)}
        if isinstance(value, (collections.abc.Mapping, list, tuple)):
            if id(value) in self._open:
                raise ArgumentValueError(
                    f"save: {where} contains itself (a reference cycle); checkpoints must be trees"
                )
            self._open.add(id(value))
            try:
                return self._container(value, where)
            finally:
                self._open.discard(id(value))
        raise ArgumentTypeError(
            f"save: {where} is a {type(value).__module__}.{type(value).__qualname__}, which gradflow checkpoints "
            "cannot hold; use Tensors, numbers, strings, None, and dicts/lists/tuples of those "
            "(convert arrays with gradflow.tensor(...))"
        )

    def _container(self, value, where: str):
        if isinstance(value, collections.abc.Mapping):
            pairs = []
            for key, item in value.items():
                if isinstance(key, (bool, np.bool_)) or not isinstance(key, (str, numbers.Integral)):
                    raise ArgumentTypeError(
                        f"save: {where} has a key {key!r} of type {type(key).__name__}; dict keys must be str or int"
                    )
                key = key if isinstance(key, str) else int(key)
                pairs.append([key, self.encode(item, f"{where}[{key!r}]")])
            return {"odict" if isinstance(value, collections.OrderedDict) else "dict": pairs}
        items = [self.encode(item, f"{where}[{position}]") for position, item in enumerate(value)]
        return {"tuple" if isinstance(value, tuple) else "list": items}

    def _tensor(self, tensor: Tensor, where: str) -> str:
        name = self._names.get(id(tensor))
        if name is not None:
            return name
        if tensor._dtype.np is None:
            raise DtypeError(f"save: {where} has dtype {tensor._dtype.name}, which has no array type to store")
        host = tensor._device.backend.to_host(tensor._data)
        # safetensors reads raw memory: views with strides or offsets must be made contiguous first.
        if not host.flags.c_contiguous or not host.dtype.isnative:
            host = np.ascontiguousarray(host, dtype=host.dtype.newbyteorder("="))
        name = f"t{len(self.arrays)}"
        self.arrays[name] = host
        self.infos[name] = {
            "dtype": tensor._dtype.name,
            "shape": list(host.shape),
            "device": str(tensor._device),
            "requires_grad": bool(tensor._requires_grad),
        }
        self._names[id(tensor)] = name
        self._keep_alive.append(tensor)
        return name


def _write_all(handle, payload: bytes) -> None:
    """Write ``payload`` in chunks (large checkpoints need no second contiguous buffer per write)."""
    view = memoryview(payload)
    for start in range(0, len(view), _CHUNK_BYTES):
        handle.write(view[start : start + _CHUNK_BYTES])


def _create_temporary(directory: str, name: str) -> tuple[int, str]:
    """An exclusive new file beside the target; 0o666 so the umask decides its mode, as open() would."""
    while True:
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; directories cannot be opened for fsync on Windows.
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _atomic_write(path: str, payload: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: the folder {directory!r} of {path!r} does not exist; create it first")
    descriptor, temporary = _create_temporary(directory, os.path.basename(path))
    try:
        with os.fdopen(descriptor, "wb") as handle:
            _write_all(handle, payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def save(obj, f) -> None:
    """Save ``obj`` (nested dicts/lists/tuples of Tensors, numbers, strings, None) to the file ``f``.

    ``f`` is a path (str or os.PathLike). The file is one safetensors file and the
    write is atomic: a reader sees the old file or the new one, never a partial one.

    >>> import gradflow, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
    >>> gradflow.serialization.save({"step": 3, "w": gradflow.ones(2)}, path)
    >>> gradflow.serialization.load(path)
    {'step': 3, 'w': tensor([1., 1.])}
    """
    path = _path_of(f, "save")
    encoder = _Encoder()
    tree = encoder.encode(obj, "obj")
    header = {"format_version": FORMAT_VERSION, "tree": tree, "tensors": encoder.infos}
    metadata = {METADATA_KEY: json.dumps(header, allow_nan=False, separators=(",", ":"))}
    payload = safetensors.numpy.save(encoder.arrays, metadata=metadata)
    _atomic_write(path, payload)


# -- loading ---------------------------------------------------------------------------------------


class _Decoder:
    """Checks the JSON header of one file and rebuilds the object tree from it."""

    def __init__(self, path: str, handle, map_location):
        self.path = path
        self.handle = handle
        self.map_location = map_location
        self.tensors: dict[str, Tensor] = {}
        self._targets: dict[str, Device] = {}

    def fail(self, what: str) -> CheckpointFormatError:
        return CheckpointFormatError(
            f"load: {self.path!r} is not a valid gradflow checkpoint: {what}; it may be damaged or written by "
            "another program (re-create it with gradflow.save)"
        )

    def header(self) -> dict:
        metadata = self.handle.metadata() or {}
        if METADATA_KEY not in metadata:
            raise CheckpointFormatError(
                f"load: {self.path!r} is a safetensors file without gradflow's {METADATA_KEY!r} metadata, so it was "
                "not written by gradflow.save; read its arrays with safetensors.numpy.load_file"
            )
        try:
            header = json.loads(metadata[METADATA_KEY])
        except (ValueError, RecursionError) as error:
            raise self.fail(f"its {METADATA_KEY!r} metadata is not valid JSON ({error})") from None
        if not isinstance(header, dict) or not {"format_version", "tree", "tensors"} <= header.keys():
            raise self.fail("the metadata lacks 'format_version', 'tree' or 'tensors'")
        version = header["format_version"]
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise CheckpointFormatError(
                f"load: {self.path!r} has checkpoint format version {version!r}, but this gradflow reads version "
                f"{FORMAT_VERSION}; load it with the gradflow version that wrote it"
            )
        if not isinstance(header["tensors"], dict):
            raise self.fail("'tensors' is not an object")
        return header

    def load_tensors(self, infos: dict) -> None:
        stored = set(self.handle.keys())
        undescribed = sorted(stored - infos.keys())
        if undescribed:
            raise self.fail(f"the file holds tensors {undescribed} that the metadata does not describe")
        for name, info in infos.items():
            if name not in stored:
                raise self.fail(f"the metadata describes a tensor {name!r} that the file does not hold")
            self.tensors[name] = self._tensor(name, info)

    def _tensor(self, name: str, info) -> Tensor:
        if not isinstance(info, dict) or not {"dtype", "shape", "device", "requires_grad"} <= info.keys():
            raise self.fail(f"the description of tensor {name!r} lacks dtype, shape, device or requires_grad")
        dtype_name, device_name = info["dtype"], info["device"]
        try:
            dtype = dtypes.to_dtype(dtype_name) if isinstance(dtype_name, str) else None
        except DtypeError:
            dtype = None
        if dtype is None or dtype.np is None or dtype.name != dtype_name:
            raise self.fail(f"tensor {name!r} has unknown dtype {dtype_name!r}")
        if not isinstance(device_name, str) or not _DEVICE_PATTERN.fullmatch(device_name):
            raise self.fail(f"tensor {name!r} has unknown device {device_name!r}")
        if not isinstance(info["requires_grad"], bool) or (info["requires_grad"] and not dtype.is_floating_point):
            raise self.fail(f"tensor {name!r} has requires_grad={info['requires_grad']!r} with dtype {dtype_name}")
        try:
            array = self.handle.get_tensor(name)
        except (safetensors.SafetensorError, TypeError, ValueError, AttributeError) as error:
            # A stored type NumPy has no dtype for (BF16, F8_*): the safetensors reader raises TypeError or
            # AttributeError, not SafetensorError.
            stored = self.handle.get_slice(name).get_dtype()
            raise self.fail(
                f"tensor {name!r} is stored as {stored}, which cannot be read as {dtype_name} "
                f"({type(error).__name__}: {error})"
            ) from None
        if array.dtype != dtype.np or list(array.shape) != info["shape"]:
            raise self.fail(
                f"tensor {name!r} is stored as {array.dtype} of shape {list(array.shape)}, but the metadata says "
                f"{dtype_name} of shape {info['shape']}"
            )
        target = self._target(device_name)
        if target.type == "cpu":
            data = np.array(array, copy=True)  # owned memory, independent of the file
        else:
            data = target.backend.from_host(array)
        tensor = Tensor._wrap(data, target)
        if info["requires_grad"]:
            tensor.requires_grad_(True)
        return tensor

    def _target(self, saved: str) -> Device:
        found = self._targets.get(saved)
        if found is None:
            found = self._targets[saved] = self._resolve(saved)
        return found

    def _resolve(self, saved: str) -> Device:
        location = self.map_location
        if isinstance(location, dict):
            keys = {str(key): value for key, value in location.items()}
            location = keys.get(saved)
        if location is not None:
            return to_device(location)
        try:
            return to_device(saved)
        except DeviceUnavailableError as error:
            raise DeviceUnavailableError(
                f"load: {self.path!r} holds tensors saved on {saved}, which is not usable here ({error}); "
                "pass map_location='cpu' (or a dict such as {" + repr(saved) + ": 'cpu'}) to load them elsewhere"
            ) from None

    def decode(self, node, where: str = "obj"):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, dict) and len(node) == 1:
            ((tag, body),) = node.items()
            if tag == "tensor" and isinstance(body, str):
                if body not in self.tensors:
                    raise self.fail(f"{where} refers to tensor {body!r}, which the file does not describe")
                return self.tensors[body]
            if tag == "float" and body in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[body]
            if tag in _CONTAINER_TAGS and isinstance(body, list):
                if tag == "list":
                    return [self.decode(item, f"{where}[{position}]") for position, item in enumerate(body)]
                if tag == "tuple":
                    return tuple(self.decode(item, f"{where}[{position}]") for position, item in enumerate(body))
                return self._mapping(tag, body, where)
        raise self.fail(f"{where} is a malformed entry {json.dumps(node)[:80]}")

    def _mapping(self, tag: str, pairs: list, where: str):
        result = collections.OrderedDict() if tag == "odict" else {}
        for pair in pairs:
            valid_key = isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
            if not valid_key or isinstance(pair[0], bool):
                raise self.fail(f"{where} has a malformed key/value pair {json.dumps(pair)[:80]}")
            result[pair[0]] = self.decode(pair[1], f"{where}[{pair[0]!r}]")
        return result


def _check_map_location(map_location) -> None:
    if map_location is None or isinstance(map_location, (str, Device)):
        return
    if isinstance(map_location, dict):
        for key, value in map_location.items():
            if not isinstance(key, (str, Device)) or not isinstance(value, (str, Device)):
                raise ArgumentTypeError(
                    f"load: map_location dict must map saved device strings to devices, got {key!r}: {value!r}"
                )
        return
    raise ArgumentTypeError(
        f"load: map_location must be None, a device ('cpu', 'cuda:0', gradflow.device(...)) or a dict "
        f"{{'cuda:0': 'cpu'}}, got {type(map_location).__name__}"
    )


def load(f, map_location=None):
    """Load what ``gradflow.save`` wrote to ``f`` (a path). Never runs code from the file.

    ``map_location``: None puts each tensor back on the device it was saved from;
    a device ('cpu', 'cuda:1', gradflow.device(...)) puts all tensors there; a dict
    such as ``{'cuda:0': 'cpu'}`` maps saved devices to targets (devices not in it
    stay as saved). A file that is not a gradflow checkpoint raises
    ``CheckpointFormatError``; a saved CUDA device that is unusable here raises
    ``DeviceUnavailableError``, which suggests ``map_location='cpu'``.
    """
    path = _path_of(f, "load")
    _check_map_location(map_location)
    if os.path.isdir(path):
        raise IsADirectoryError(f"load: {path!r} is a folder, not a checkpoint file")
    try:
        handle = safetensors.safe_open(path, framework="np")
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no checkpoint file at {path!r}") from None
    except (safetensors.SafetensorError, ValueError, OSError) as error:
        if isinstance(error, PermissionError):
            raise
        raise CheckpointFormatError(
            f"load: {path!r} is not a safetensors file ({error}); gradflow.load reads files written by gradflow.save"
        ) from None
    with handle:
        decoder = _Decoder(path, handle, map_location)
        header = decoder.header()
        try:
            decoder.load_tensors(header["tensors"])
        except safetensors.SafetensorError as error:
            raise decoder.fail(f"its tensor data cannot be read ({error})") from None
        try:
            return decoder.decode(header["tree"])
        except RecursionError:
            raise decoder.fail("the tree is nested too deeply") from None
