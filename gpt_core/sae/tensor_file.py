"""An SAE's sae_weights.safetensors, checked from its header before a byte of it is loaded.

A .safetensors file starts with an 8-byte little-endian header length N, then N bytes of
JSON: {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}.
Reading that much says every tensor's shape, dtype and size, so a file whose tensors do not
fit the config (or that claims more than it holds) is refused before anything is allocated.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from ..errors import SAEError
from .config import SAEConfig

HEADER_LIMIT = 100 << 20  # a header of more than 100 MB is no SAE's
_ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}  # the float dtypes an SAE may use


def expected_shapes(cfg: SAEConfig) -> dict[str, tuple[int, ...]]:
    """The tensors an SAE of this config needs, by name, with their shapes."""
    shapes = {
        "W_enc": (cfg.d_in, cfg.d_sae),
        "b_enc": (cfg.d_sae,),
        "W_dec": (cfg.d_sae, cfg.d_in),
        "b_dec": (cfg.d_in,),
    }
    if cfg.architecture == "jumprelu":
        shapes["threshold"] = (cfg.d_sae,)
    return shapes


def read_header(path: Path) -> dict[str, dict]:
    """The tensor entries of a .safetensors file's header (metadata left out)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            head = f.read(8)
            if len(head) < 8:
                raise SAEError(f"{path.name} is empty or truncated ({size} bytes)")
            (length,) = struct.unpack("<Q", head)
            if length > min(HEADER_LIMIT, size - 8):
                raise SAEError(f"{path.name} is not a .safetensors file (bad header length)")
            header = json.loads(f.read(length))
    except OSError as exc:
        raise SAEError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SAEError(f"{path.name} is not a .safetensors file (its header is no JSON)") from exc
    if not isinstance(header, dict):
        raise SAEError(f"{path.name} is not a .safetensors file (its header is no JSON object)")
    header.pop("__metadata__", None)
    data_bytes = size - 8 - length
    for name, entry in header.items():
        _check_entry(path, name, entry, data_bytes)
    return header


def check_tensors(path: Path, header: dict[str, dict], cfg: SAEConfig) -> None:
    """SAEError for a missing tensor, or one whose shape or dtype does not fit the config."""
    for name, shape in expected_shapes(cfg).items():
        if name not in header:
            raise SAEError(
                f"{path.name} has no tensor {name!r} (a {cfg.architecture} SAE needs it)"
            )
        entry = header[name]
        if tuple(entry["shape"]) != shape:
            raise SAEError(
                f"{path.name}: {name} has shape {list(entry['shape'])}; the config's "
                f"d_in = {cfg.d_in:,} and d_sae = {cfg.d_sae:,} need {list(shape)}"
            )
        if entry["dtype"] not in _ITEM_BYTES:
            raise SAEError(
                f"{path.name}: {name} is {entry['dtype']}; an SAE's tensors are floats "
                f"({', '.join(_ITEM_BYTES)})"
            )


def load_tensors(path: Path, names: list[str]) -> dict[str, Tensor]:
    """The named tensors as float32, after check_tensors; SAEError for non-finite values,
    each tensor named with its count."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {name: f.get_tensor(name).float() for name in names}
    except (SafetensorError, OSError) as exc:
        raise SAEError(f"cannot read {path.name}: {exc}") from exc
    bad = {name: int((~torch.isfinite(t)).sum()) for name, t in tensors.items()}
    bad = {name: count for name, count in bad.items() if count}
    if bad:
        listed = ", ".join(f"{name} ({count:,})" for name, count in bad.items())
        raise SAEError(f"{path.name} holds NaN or Inf values in {listed}")
    return tensors


def _check_entry(path: Path, name: str, entry: object, data_bytes: int) -> None:
    ok = (
        isinstance(entry, dict)
        and isinstance(entry.get("dtype"), str)
        and isinstance(entry.get("shape"), list)
        and all(isinstance(n, int) and n >= 0 for n in entry["shape"])
        and isinstance(entry.get("data_offsets"), list)
        and len(entry["data_offsets"]) == 2
        and all(isinstance(n, int) for n in entry["data_offsets"])
    )
    if not ok:
        raise SAEError(f"{path.name} is not a .safetensors file (bad entry for {name!r})")
    begin, end = entry["data_offsets"]
    if not 0 <= begin <= end <= data_bytes:
        raise SAEError(
            f"{path.name} is truncated: {name} lies past the end of the file "
            "(an interrupted download or copy?)"
        )
    item = _ITEM_BYTES.get(entry["dtype"])
    if item is not None and end - begin != math.prod(entry["shape"]) * item:
        raise SAEError(f"{path.name}: {name}'s size does not match its shape and dtype")
