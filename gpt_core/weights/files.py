"""Reading tensors from .safetensors and PyTorch files, every failure as a WeightsError."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from ..errors import WeightsError

# Keys under which training scripts (the book's among them) nest the model's state_dict.
_NESTED_STATE_KEYS = ("model_state_dict", "state_dict", "model")


def read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """All tensors and the metadata of a .safetensors file."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except SafetensorError as exc:
        raise WeightsError(
            f"{path.name} is not a readable .safetensors file ({exc}); it may be truncated "
            "(an interrupted download or copy) or not a weights file at all"
        ) from exc
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return tensors, metadata


def read_torch_file(path: Path) -> dict[str, Tensor]:
    """A state_dict from a .pth/.pt/.bin file, loaded without running any pickled code."""
    _check_torch_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower():
            raise WeightsError(
                f"{path.name} holds Python objects besides tensors, which are not loaded "
                "because unpickling them could run code; save a plain state_dict "
                "(torch.save(model.state_dict(), ...)) or use .safetensors"
            ) from exc
        raise WeightsError(f"{path.name} is not a PyTorch checkpoint ({exc})") from exc
    except (RuntimeError, zipfile.BadZipFile) as exc:
        raise WeightsError(
            f"{path.name} is truncated or corrupt and cannot be read as a PyTorch "
            f"checkpoint ({str(exc).split('.')[0]})"
        ) from exc
    except EOFError as exc:
        raise WeightsError(f"{path.name} is empty or cut short") from exc
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # any other unpickling failure: not a checkpoint
        raise WeightsError(f"{path.name} is not a PyTorch checkpoint ({exc!r})") from exc
    return as_state_dict(obj, path.name)


def _check_torch_file(path: Path) -> None:
    """WeightsError unless the file starts as torch.save writes: a zip archive, or (the
    legacy format) a pickle."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not head:
        raise WeightsError(f"{path.name} is empty")
    if head != b"PK\x03\x04" and head[:1] != b"\x80":
        raise WeightsError(
            f"{path.name} is not a PyTorch checkpoint: torch.save writes a zip archive or a "
            "pickle, and this file is neither"
        )


def as_state_dict(obj: object, label: str) -> dict[str, Tensor]:
    if isinstance(obj, dict):
        for key in _NESTED_STATE_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{label} does not hold a state_dict (a mapping of names to tensors)")
    non_tensors = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if non_tensors:
        raise WeightsError(f"{label} is not a model state_dict: {non_tensors[0]!r} is not a tensor")
    return {_strip_wrapper_prefix(str(k)): v for k, v in obj.items()}


def _strip_wrapper_prefix(key: str) -> str:
    # torch.compile and DataParallel wrap the model and prefix every key.
    for prefix in ("_orig_mod.", "module."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key
