"""load_sae(): an SAE in SAELens's folder layout (cfg.json + sae_weights.safetensors), from a
folder or the hub, checked in full before its tensors are read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..errors import SAEError
from ..model.config import GPTConfig
from ..weights.hub import Progress
from .autoencoder import SparseAutoencoder, fold_norm_scaling
from .config import SAEConfig, parse_config
from .sites import site_of
from .sources import CFG_FILE, WEIGHTS_FILE, download_sae, parse_source
from .tensor_file import check_tensors, expected_shapes, load_tensors, read_header


def load_sae(
    source: str | Path,
    model_cfg: GPTConfig | None = None,
    *,
    norm_scaling_factor: float | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SparseAutoencoder:
    """The SAE at `source`: a folder, or `REPO:FOLDER` from the Hugging Face cache or
    downloaded (progress(fraction or None, text) and cancel() as for model weights).

    model_cfg: the model it will read; its site must exist there with width d_in.
    norm_scaling_factor: s of an SAE trained with normalize_activations =
        "expected_average_only_in" (the built-in releases know theirs), folded into the
        weights as SAELens folds it.
    Raises SAEError, with nothing allocated, for anything that does not fit.
    """
    where = parse_source(str(source))
    if isinstance(where, Path):
        folder, label = where, str(where)
    else:
        norm_scaling_factor = norm_scaling_factor or where.norm_scaling_factor
        folder, label = download_sae(where, progress, cancel), where.label
    cfg = read_config(folder)
    if model_cfg is not None:
        check_fits(cfg, model_cfg)
    factor = _scaling(cfg, norm_scaling_factor, label)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise SAEError(f"{folder} has no {WEIGHTS_FILE}")
    check_tensors(weights, read_header(weights), cfg)
    tensors = load_tensors(weights, list(expected_shapes(cfg)))
    if factor is not None:
        tensors = fold_norm_scaling(tensors, factor)
    return SparseAutoencoder(
        cfg,
        tensors["W_enc"],
        tensors["b_enc"],
        tensors["W_dec"],
        tensors["b_dec"],
        tensors.get("threshold"),
        source=label,
        norm_scaling_factor=factor,
        warnings=_warnings(cfg),
    )


def read_config(folder: Path) -> SAEConfig:
    path = folder / CFG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SAEError(
            f"{folder} has no {CFG_FILE}: not an SAE folder in SAELens's layout"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SAEError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SAEError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    return parse_config(data, str(path))


def check_fits(cfg: SAEConfig, model_cfg: GPTConfig) -> None:
    """SAEError for an SAE whose site the model lacks or whose d_in is not its width."""
    site = site_of(cfg.hook_name, model_cfg)
    if cfg.d_in != site.width:
        raise SAEError(
            f"the SAE reads {cfg.d_in:,} numbers per token at {cfg.hook_name}, but this "
            f"model's activation there has {site.width:,}"
        )


def _scaling(cfg: SAEConfig, factor: float | None, label: str) -> float | None:
    if cfg.normalize_activations == "none":
        return None
    if factor is None:
        raise SAEError(
            f"the SAE {label} was trained on inputs scaled by a constant "
            "(normalize_activations = expected_average_only_in) that its files do not hold; "
            "give it as norm_scaling_factor"
        )
    if not 0 < factor < float("inf"):
        raise SAEError(f"norm_scaling_factor must be a positive number, got {factor}")
    return float(factor)


def _warnings(cfg: SAEConfig) -> tuple[str, ...]:
    name = cfg.model_name
    if name is None or "gpt2" in name.lower().replace("-", "").replace("_", ""):
        return ()
    return (f"the SAE was trained on {name!r}, not GPT-2: its features may mean nothing here",)
