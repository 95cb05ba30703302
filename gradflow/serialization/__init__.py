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

Any nesting depth up to ``MAX_DEPTH`` (100,000 containers) saves and loads: the tree
walks keep their own stack (``_tree``) and so does the JSON fallback (``_json``).

Writes are atomic (the file is built in host memory first, so saving needs about
its size in extra memory): it is written to a temporary file in the same folder,
flushed and fsync'ed, renamed over ``f`` with ``os.replace`` and the folder is
fsync'ed; on any failure the temporary file is removed and an existing file at
``f`` is left as it was. A writer killed mid-save leaves its temporary file; the
next save to the same target removes it once no live writer can own it (see
``_files`` for how that is decided). ``load`` refuses anything but a regular file
(a FIFO would block it) before opening it, and every malformed header raises
``CheckpointFormatError``.

Modules: ``_tree`` (the object tree and the header checks), ``_json`` (JSON at any
depth), ``_files`` (atomic writes, orphan sweep, opening for read).
"""

from __future__ import annotations

import os

import numpy as np
import safetensors
import safetensors.numpy

from ..device import Device
from ..device import device as to_device
from ..errors import ArgumentTypeError, CheckpointFormatError, DeviceUnavailableError
from ..tensor import Tensor
from . import _files, _json, _tree
from ._tree import FORMAT_VERSION, MAX_DEPTH, METADATA_KEY

__all__ = ["save", "load", "FORMAT_VERSION", "MAX_DEPTH", "METADATA_KEY"]


def _path_of(f, op: str) -> str:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    raise ArgumentTypeError(
        f"{op}: expected a file path (str or os.PathLike), got {type(f).__name__}; file objects are not supported "
        "because checkpoints are written atomically (temporary file, then rename)"
    )


def save(obj, f) -> None:
    """Save ``obj`` (nested dicts/lists/tuples of Tensors, numbers, strings, None) to the file ``f``.

    ``f`` is a path (str or os.PathLike). The file is one safetensors file and the
    write is atomic: a reader sees the old file or the new one, never a partial one.
    Temporary files that killed writers left beside ``f`` are removed first.

    >>> import gradflow, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
    >>> gradflow.serialization.save({"step": 3, "w": gradflow.ones(2)}, path)
    >>> gradflow.serialization.load(path)
    {'step': 3, 'w': tensor([1., 1.])}
    """
    path = _path_of(f, "save")
    encoder = _tree.Encoder()
    tree = encoder.encode(obj)
    header = {"format_version": FORMAT_VERSION, "tree": tree, "tensors": encoder.infos}
    metadata = {METADATA_KEY: _json.dumps(header)}
    payload = safetensors.numpy.save(encoder.arrays, metadata=metadata)
    _files.atomic_write(path, payload)


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


class _Targets:
    """Where each saved device's tensors go under ``map_location`` (resolved once per device)."""

    def __init__(self, path: str, map_location):
        self.path = path
        self.map_location = map_location
        self._found: dict[str, Device] = {}

    def __call__(self, saved: str) -> Device:
        found = self._found.get(saved)
        if found is None:
            found = self._found[saved] = self._resolve(saved)
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


def _header(path: str, handle) -> dict:
    metadata = handle.metadata() or {}
    if METADATA_KEY not in metadata:
        raise CheckpointFormatError(
            f"load: {path!r} is a safetensors file without gradflow's {METADATA_KEY!r} metadata, so it was "
            "not written by gradflow.save; read its arrays with safetensors.numpy.load_file"
        )
    try:
        header = _json.loads(metadata[METADATA_KEY])
    except (ValueError, RecursionError) as error:
        raise _tree.format_error(path, f"its {METADATA_KEY!r} metadata is not valid JSON ({error})") from None
    return _tree.check_header(path, header)


def _load_tensors(path: str, handle, infos: dict, targets: _Targets) -> dict:
    stored = set(handle.keys())
    undescribed = sorted(stored - infos.keys())
    if undescribed:
        shown = undescribed if len(undescribed) <= 10 else [*undescribed[:10], "..."]
        raise _tree.format_error(path, f"the file holds tensors {shown} that the metadata does not describe")
    tensors = {}
    for name, info in infos.items():
        if name not in stored:
            raise _tree.format_error(path, f"the metadata describes a tensor {name[:80]!r} that the file does not hold")
        dtype = _tree.check_tensor_info(path, name, info)
        try:
            array = handle.get_tensor(name)
        except (safetensors.SafetensorError, TypeError, ValueError, AttributeError) as error:
            # A stored type NumPy has no dtype for (BF16, F8_*): the safetensors reader raises TypeError or
            # AttributeError, not SafetensorError.
            kind = handle.get_slice(name).get_dtype()
            raise _tree.format_error(
                path,
                f"tensor {name!r} is stored as {kind}, which cannot be read as {dtype.name} "
                f"({type(error).__name__}: {error})",
            ) from None
        if array.dtype != dtype.np or list(array.shape) != info["shape"]:
            raise _tree.format_error(
                path,
                f"tensor {name!r} is stored as {array.dtype} of shape {list(array.shape)}, but the metadata says "
                f"{dtype.name} of shape {info['shape']}",
            )
        target = targets(info["device"])
        if target.type == "cpu":
            data = np.array(array, copy=True)  # owned memory, independent of the file
        else:
            data = target.backend.from_host(array)
        tensor = Tensor._wrap(data, target)
        if info["requires_grad"]:
            tensor.requires_grad_(True)
        tensors[name] = tensor
    return tensors


def load(f, map_location=None):
    """Load what ``gradflow.save`` wrote to ``f`` (a path). Never runs code from the file.

    ``map_location``: None puts each tensor back on the device it was saved from;
    a device ('cpu', 'cuda:1', gradflow.device(...)) puts all tensors there; a dict
    such as ``{'cuda:0': 'cpu'}`` maps saved devices to targets (devices not in it
    stay as saved). A file that is not a gradflow checkpoint (a damaged or foreign
    file, or no regular file at all: a FIFO, device or socket) raises
    ``CheckpointFormatError``; a missing file or a folder raises the usual OSError;
    a saved CUDA device that is unusable here raises ``DeviceUnavailableError``,
    which suggests ``map_location='cpu'``.
    """
    path = _path_of(f, "load")
    _check_map_location(map_location)
    descriptor, readable = _files.open_regular(path)
    try:
        try:
            handle = safetensors.safe_open(readable, framework="np")
        except (safetensors.SafetensorError, ValueError, OSError) as error:
            if isinstance(error, PermissionError):
                raise
            raise CheckpointFormatError(
                f"load: {path!r} is not a safetensors file ({error}); gradflow.load reads files written by "
                "gradflow.save"
            ) from None
    finally:
        os.close(descriptor)  # safe_open has its own handle (and map) of the file by now
    with handle:
        header = _header(path, handle)
        try:
            tensors = _load_tensors(path, handle, header["tensors"], _Targets(path, map_location))
        except safetensors.SafetensorError as error:
            raise _tree.format_error(path, f"its tensor data cannot be read ({error})") from None
        return _tree.decode(path, header["tree"], tensors)
