"""gradflow.load of an entry stored as a type NumPy cannot read (BF16, F8_*) raises CheckpointFormatError.

A tampered or foreign checkpoint must never surface the safetensors reader's TypeError or AttributeError.
"""

from __future__ import annotations

import json
import struct

import pytest

import gradflow as gf
from gradflow.errors import CheckpointFormatError


def _write_checkpoint(path, stored_dtype: str, item_bytes: int, described_dtype: str) -> None:
    """A safetensors file with gradflow's metadata and one 4-element entry stored as ``stored_dtype``."""
    metadata = {
        "format_version": 1,
        "tree": {"dict": [["w", {"tensor": "t0"}]]},
        "tensors": {"t0": {"dtype": described_dtype, "shape": [4], "device": "cpu", "requires_grad": False}},
    }
    header = {
        "__metadata__": {"gradflow": json.dumps(metadata)},
        "t0": {"dtype": stored_dtype, "shape": [4], "data_offsets": [0, 4 * item_bytes]},
    }
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # safetensors pads the header to 8 bytes
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"\x01" * (4 * item_bytes))


@pytest.mark.parametrize(("stored_dtype", "item_bytes"), [("BF16", 2), ("F8_E4M3", 1), ("F8_E5M2", 1)])
def test_entry_stored_as_a_type_numpy_cannot_read_is_a_format_error(tmp_path, stored_dtype, item_bytes):
    # The hand-written layout is a valid checkpoint when the entry's type matches its description, so what
    # follows fails for the stored type alone.
    valid = tmp_path / "valid.safetensors"
    _write_checkpoint(valid, "F32", 4, "float32")
    loaded = gf.load(valid)["w"]
    assert loaded.dtype == gf.float32
    assert loaded.numpy().tobytes() == b"\x01" * 16

    path = tmp_path / "tampered.safetensors"
    _write_checkpoint(path, stored_dtype, item_bytes, "float32")
    with pytest.raises(CheckpointFormatError, match=rf"'t0' is stored as {stored_dtype}.*float32"):
        gf.load(path)
