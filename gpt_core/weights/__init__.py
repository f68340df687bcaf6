"""load_model / save_model: every source of GPT-2 weights the app accepts.

Sources: None (a seeded random GPT-2 in GPT-2's init scheme); a gpt_core .safetensors
checkpoint (its config in the metadata); a book-style state_dict (.pth/.pt, or
.safetensors without gpt_core metadata); a Hugging Face GPT-2 folder; a hub model id.
Every failure raises WeightsError with a message a person can act on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor

from ..errors import Cancelled, WeightsError
from ..model import GPTModel
from ..model.config import PRESETS, GPTConfig
from ..util.atomic import atomic_path
from .files import read_safetensors, read_torch_file
from .hf import hf_config, hf_to_book_state_dict, is_hf_folder, is_hf_state_dict, read_hf_weights
from .hub import Progress, download_gpt2, looks_like_hub_id
from .init import empty_model, init_gpt2_weights, random_model
from .shapes import check_fits

CONFIG_METADATA_KEY = "gpt_core_config"
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
# Heads of the GPT-2 sizes, by width: a state_dict's shapes give every size but this one.
_HEADS_BY_WIDTH = {p.emb_dim: p.n_heads for p in PRESETS.values() if p.emb_dim >= 768}

__all__ = [
    "load_model",
    "save_model",
    "random_model",
    "init_gpt2_weights",
    "infer_config",
    "looks_like_hub_id",
    "non_finite_parameters",
]


def load_model(
    source: str | os.PathLike | None = None,
    config: GPTConfig | str | None = None,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[GPTModel, GPTConfig]:
    """Build a GPTModel from `source`, in eval mode on the CPU. `config` (a GPTConfig or a
    preset name) is needed only where the source cannot say: a state_dict whose head count
    is not a GPT-2 size's, or no source at all (the random model; gpt2-small by default)."""
    report = progress or (lambda fraction, message: None)
    given = _config_argument(config)
    if source is None or str(source) == "":
        cfg = given or GPTConfig.preset("gpt2-small")
        report(0.0, f"initialising a random {_describe(cfg)} (seed {seed})")
        return random_model(cfg, seed, report, cancel), cfg

    path = _local_path(source)
    if path is None:  # a hub id: no such file or folder here
        path = download_gpt2(str(source), report, cancel)
    report(None, f"reading {path.name}")
    cfg, state = _read_source(path, given)
    check_fits(cfg, state, path.name, _describe)  # before a model of that size is built
    if cancel is not None and cancel():
        raise Cancelled("loading cancelled")
    report(None, f"building {_describe(cfg)}")
    model = empty_model(cfg)
    with torch.no_grad():
        for key, target in model.state_dict().items():
            target.copy_(state[key])
    return model.eval(), cfg


def non_finite_parameters(model: GPTModel) -> dict[str, int]:
    """Parameters holding NaN or Inf, with how many such values each holds."""
    counts = {}
    for name, param in model.named_parameters():
        bad = int((~torch.isfinite(param.detach())).sum())
        if bad:
            counts[name] = bad
    return counts


def _local_path(source: str | os.PathLike) -> Path | None:
    """The file or folder `source` names; None for a hub id (it looks like one and no such
    path exists); WeightsError for a path that cannot be read."""
    path = Path(source).expanduser()
    if path.is_symlink() and not path.exists():
        raise WeightsError(f"{path} is a link to {os.readlink(path)}, which does not exist")
    if not path.exists():
        if looks_like_hub_id(str(source)):
            return None
        raise WeightsError(f"no such file or folder: {path.absolute()}")
    if path.is_file():
        try:
            path.open("rb").close()
        except PermissionError:
            raise WeightsError(f"cannot read {path}: permission denied") from None
    return path


def save_model(model: GPTModel, path: str | os.PathLike) -> Path:
    """Write weights and config to a .safetensors file, atomically (an existing file is
    replaced only once the new one is complete)."""
    path = Path(path).expanduser()
    # safetensors refuses tensors that share memory; a tied head is saved as its own copy.
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", CONFIG_METADATA_KEY: json.dumps(model.cfg.to_dict())}
    with atomic_path(path, WeightsError) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path


def infer_config(state: dict[str, Tensor], base: GPTConfig | None = None) -> GPTConfig:
    """The config a book-style state_dict was made with, read off its tensor shapes."""
    try:
        vocab, emb = state["tok_emb.weight"].shape
        context = state["pos_emb.weight"].shape[0]
    except (KeyError, ValueError) as exc:
        raise WeightsError("the state_dict has no tok_emb/pos_emb weights of GPT shape") from exc
    n_layers = len({k.split(".")[1] for k in state if k.startswith("trf_blocks.")})
    n_heads = base.n_heads if base else _HEADS_BY_WIDTH.get(emb)
    if n_heads is None:
        raise WeightsError(
            f"the weights have width {emb}, which is no GPT-2 size, so the number of heads "
            "cannot be told from them; pass a config (a preset name or GPTConfig)"
        )
    try:
        return GPTConfig(
            vocab_size=vocab,
            context_length=context,
            emb_dim=emb,
            n_heads=n_heads,
            n_layers=n_layers,
            drop_rate=base.drop_rate if base else 0.1,
            qkv_bias="trf_blocks.0.att.W_query.bias" in state,
        )
    except ValueError as exc:
        raise WeightsError(f"the weights imply an impossible config: {exc}") from exc


def _config_argument(config: GPTConfig | str | None) -> GPTConfig | None:
    if config is None or isinstance(config, GPTConfig):
        return config
    try:
        return GPTConfig.preset(str(config))
    except ValueError as exc:
        raise WeightsError(str(exc)) from exc


def _read_source(path: Path, given: GPTConfig | None) -> tuple[GPTConfig, dict[str, Tensor]]:
    if path.is_dir():
        if not is_hf_folder(path):
            raise WeightsError(
                f"{path} is a folder without config.json; pick a weights file, or a Hugging "
                "Face GPT-2 folder (config.json + model.safetensors)"
            )
        return _from_hf(path, read_hf_weights(path), given)
    if path.suffix == ".json":
        raise WeightsError(f"{path.name} is a config, not weights; pick its folder instead")
    if path.suffix == ".safetensors":
        state, metadata = read_safetensors(path)
        if CONFIG_METADATA_KEY in metadata:
            return _config_from_metadata(metadata, given, path.name), state
    elif path.suffix in TORCH_SUFFIXES:
        state = read_torch_file(path)
    else:
        raise WeightsError(
            f"{path.name}: unknown weights format; use .safetensors, .pth/.pt or a Hugging "
            "Face GPT-2 folder"
        )
    if is_hf_state_dict(state):
        if not is_hf_folder(path.parent):
            raise WeightsError(
                f"{path.name} holds Hugging Face GPT-2 weights but no config.json lies beside "
                "it; put it in a folder with its config.json and load the folder"
            )
        return _from_hf(path.parent, state, given)
    state = {k: v for k, v in state.items() if not k.endswith(".att.mask")}  # book's buffer
    if given is not None:
        return given, state
    return infer_config(state), state


def _from_hf(folder: Path, state, given: GPTConfig | None) -> tuple[GPTConfig, dict[str, Tensor]]:
    cfg = hf_config(folder)
    _check_agrees(cfg, given, "config.json")
    return cfg, hf_to_book_state_dict(state, cfg)


def _config_from_metadata(metadata: dict[str, str], given: GPTConfig | None, label: str):
    try:
        cfg = GPTConfig.from_dict(json.loads(metadata[CONFIG_METADATA_KEY]))
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{label} carries an unreadable config in its metadata ({exc})") from exc
    _check_agrees(cfg, given, label)
    return cfg


def _check_agrees(found: GPTConfig, given: GPTConfig | None, label: str) -> None:
    if given is None:
        return
    differ = [
        f"{name} {getattr(given, name)} vs {getattr(found, name)}"
        for name in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "qkv_bias")
        if getattr(given, name) != getattr(found, name)
    ]
    if differ:
        raise WeightsError(
            f"the config given does not match {label}: {'; '.join(differ)} (given vs file)"
        )


def _describe(cfg: GPTConfig) -> str:
    for name, preset in PRESETS.items():
        if preset == cfg:
            return name
    return f"GPT ({cfg.n_layers} layers, width {cfg.emb_dim}, {cfg.n_heads} heads)"
