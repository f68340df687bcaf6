"""What an SAE's cfg.json says, read from either of SAELens's config generations.

- Current (SAELens 6 and later): `architecture` ("standard" | "jumprelu" | "topk", with
  `k`), `d_in`, `d_sae`, `apply_b_dec_to_input`, `normalize_activations`, and
  `metadata.hook_name` / `metadata.model_name`.
- Before 6.0: `hook_point` (or `hook_name`) and `model_name` at the top level,
  `apply_b_dec_to_input` defaulting to true, no `architecture` meaning "standard", and
  `normalize_activations` possibly a bool (true = "expected_average_only_in").

A cfg.json says which generation it is through `sae_lens_version` (top level or in
`metadata`); none, or one before 6.0, is the old generation, as SAELens reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SAEError

ARCHITECTURES = ("standard", "jumprelu", "topk")
# "expected_average_only_in" scales the input by a constant found in training; SAELens folds
# that constant into the weights (autoencoder.py). The other SAELens modes normalise each
# input by its own norm at run time and are not supported here.
NORMALISATIONS = ("none", "expected_average_only_in")
MAX_D_SAE = 1 << 21  # 2,097,152 features: beyond any public GPT-2 SAE (128k is the largest)
CURRENT = "current"
PRE_6 = "pre-6.0"


@dataclass(frozen=True)
class SAEConfig:
    architecture: str  # "standard" (ReLU) | "jumprelu" | "topk"
    d_in: int  # width of the activation it reads
    d_sae: int  # number of features
    hook_name: str  # TransformerLens name of its site: "blocks.8.hook_resid_pre"
    apply_b_dec_to_input: bool  # subtract b_dec from the input before encoding
    normalize_activations: str  # as cfg.json says: "none" | "expected_average_only_in"
    k: int | None = None  # active features per token, TopK only
    model_name: str | None = None  # the model it was trained on, if the config says
    generation: str = CURRENT  # which config generation it was read from


def parse_config(cfg: object, where: str) -> SAEConfig:
    """The SAEConfig of a cfg.json's contents; SAEError naming `where` (the file) for a
    missing field, an unknown architecture or normalisation, or a value of the wrong type."""
    if not isinstance(cfg, dict):
        raise SAEError(f"{where} is not a JSON object")
    generation = CURRENT if _version_at_least_6(cfg) else PRE_6
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    if generation == CURRENT:
        architecture = _field(cfg, "architecture", str, where)
        hook_name = meta.get("hook_name", cfg.get("hook_name"))
        model_name = meta.get("model_name", cfg.get("model_name"))
    else:
        architecture = cfg.get("architecture", "standard")
        hook_name = cfg.get("hook_name", cfg.get("hook_point"))
        model_name = cfg.get("model_name")
    if not isinstance(hook_name, str) or not hook_name:
        field = "metadata.hook_name" if generation == CURRENT else "hook_point"
        raise SAEError(f"{where} has no {field}: which activation the SAE reads is unknown")
    if architecture not in ARCHITECTURES:
        raise SAEError(
            f"{where}: architecture {architecture!r} is not supported "
            f"(supported: {', '.join(ARCHITECTURES)})"
        )
    d_in = _size(cfg, "d_in", where, limit=1 << 16)
    d_sae = _size(cfg, "d_sae", where, limit=MAX_D_SAE)
    k = _size(cfg, "k", where, limit=d_sae) if architecture == "topk" else None
    if cfg.get("rescale_acts_by_decoder_norm"):
        raise SAEError(f"{where}: rescale_acts_by_decoder_norm is not supported")
    if meta.get("hook_head_index", cfg.get("hook_head_index")) is not None:
        raise SAEError(f"{where}: SAEs of one attention head (hook_head_index) are not supported")
    return SAEConfig(
        architecture=architecture,
        d_in=d_in,
        d_sae=d_sae,
        hook_name=hook_name,
        apply_b_dec_to_input=_flag(cfg, "apply_b_dec_to_input", where),
        normalize_activations=_normalisation(cfg.get("normalize_activations", "none"), where),
        k=k,
        model_name=model_name if isinstance(model_name, str) else None,
        generation=generation,
    )


def _version_at_least_6(cfg: dict) -> bool:
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    version = cfg.get("sae_lens_version") or meta.get("sae_lens_version")
    if not isinstance(version, str):
        return False
    major = version.strip().lstrip("v").split(".")[0]
    return major.isdigit() and int(major) >= 6


def _field(cfg: dict, name: str, kind: type, where: str):
    if name not in cfg:
        raise SAEError(f"{where} has no {name!r} field")
    value = cfg[name]
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise SAEError(f"{where}: {name} must be a {kind.__name__}, got {value!r}")
    return value


def _size(cfg: dict, name: str, where: str, limit: int) -> int:
    value = _field(cfg, name, int, where)
    if not 1 <= value <= limit:
        raise SAEError(f"{where}: {name} = {value:,} is out of range (1 to {limit:,})")
    return value


def _flag(cfg: dict, name: str, where: str) -> bool:
    """A bool field that both generations default to true."""
    return _field(cfg, name, bool, where) if name in cfg else True


def _normalisation(value: object, where: str) -> str:
    if isinstance(value, bool):  # before SAELens 4: a flag for the only mode there was
        value = "expected_average_only_in" if value else "none"
    if value is None:
        value = "none"
    if value not in NORMALISATIONS:
        raise SAEError(
            f"{where}: normalize_activations {value!r} is not supported "
            f"(supported: {', '.join(NORMALISATIONS)})"
        )
    return value
