"""SAEs made in the tests, in SAELens's folder layout (cfg.json + sae_weights.safetensors),
in either config generation, and a numpy float64 SAE written from the formulas alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file


def random_weights(d_in: int, d_sae: int, architecture: str = "standard", seed: int = 0):
    """Random SAE tensors (float32): enough features fire on GPT-2 activations, few enough
    stay off, for every case to show."""
    g = torch.Generator().manual_seed(seed)
    tensors = {
        "W_enc": torch.randn(d_in, d_sae, generator=g) / d_in**0.5,
        "b_enc": 0.3 * torch.randn(d_sae, generator=g) - 0.2,
        "W_dec": torch.randn(d_sae, d_in, generator=g) / d_sae**0.5,
        "b_dec": 0.5 * torch.randn(d_in, generator=g),
    }
    if architecture == "jumprelu":
        tensors["threshold"] = 0.5 * torch.rand(d_sae, generator=g)
    return tensors


def sae_config(
    d_in: int,
    d_sae: int,
    hook: str,
    architecture: str = "standard",
    generation: str = "current",
    **fields,
) -> dict:
    """A cfg.json as SAELens writes it: generation "current" (6.x, metadata) or "pre-6.0"
    (hook_point, no architecture for a standard SAE)."""
    if generation == "current":
        cfg = {
            "architecture": architecture,
            "d_in": d_in,
            "d_sae": d_sae,
            "dtype": "float32",
            "device": "cpu",
            "apply_b_dec_to_input": True,
            "normalize_activations": "none",
            "reshape_activations": "hook_z" if hook.endswith("hook_z") else "none",
            "metadata": {
                "model_name": "gpt2-small",
                "hook_name": hook,
                "sae_lens_version": "6.5.1",
            },
        }
    else:
        cfg = {
            "d_in": d_in,
            "d_sae": d_sae,
            "hook_point": hook,
            "hook_point_layer": int(hook.split(".")[1]),
            "model_name": "gpt2-small",
            "dtype": "torch.float32",
            "sae_lens_training_version": "2.1.3",
        }
        if architecture != "standard":
            cfg["architecture"] = architecture
    cfg.update(fields)
    return cfg


def write_sae(folder: Path, cfg: dict, tensors: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file(
        {k: v.contiguous() for k, v in tensors.items()}, str(folder / "sae_weights.safetensors")
    )
    return folder


def make_sae(folder: Path, d_in: int, d_sae: int, hook: str, architecture="standard",
             generation="current", seed=0, **fields) -> Path:  # fmt: skip
    cfg = sae_config(d_in, d_sae, hook, architecture, generation, **fields)
    return write_sae(folder, cfg, random_weights(d_in, d_sae, architecture, seed))


def numpy_encode_decode(x, tensors, cfg: dict, scale: float = 1.0):
    """The SAE from the formulas, in float64, unfolded: the input scaled by `scale`, b_dec
    subtracted (when apply_b_dec_to_input, default true), the encoder, the activation
    (ReLU; JumpReLU strictly above the threshold; TopK the k largest), the decoder, the
    scale undone."""
    t = {k: v.double().numpy() for k, v in tensors.items()}
    arch = cfg.get("architecture", "standard")
    x = np.asarray(x, dtype=np.float64) * scale
    x_in = x - t["b_dec"] if cfg.get("apply_b_dec_to_input", True) else x
    pre = x_in @ t["W_enc"] + t["b_enc"]
    if arch == "jumprelu":
        acts = np.where(pre > t["threshold"], np.maximum(pre, 0.0), 0.0)
    elif arch == "topk":
        acts = np.zeros_like(pre)
        order = np.argsort(-pre, axis=-1)[..., : cfg["k"]]
        np.put_along_axis(acts, order, np.maximum(np.take_along_axis(pre, order, -1), 0), -1)
    else:
        acts = np.maximum(pre, 0.0)
    x_hat = (acts @ t["W_dec"] + t["b_dec"]) / scale
    return acts * 1.0, x_hat
