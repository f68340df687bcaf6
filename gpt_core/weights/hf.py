"""Hugging Face GPT-2 folders (config.json + weights) -> GPTConfig and a book-style state_dict.

HF's GPT-2 stores linear weights as Conv1D ([in, out], the transpose of nn.Linear) and the
query, key and value projections as one fused `c_attn`; both are undone here.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor

from ..errors import WeightsError
from ..model.config import GPTConfig
from .files import read_safetensors, read_torch_file

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# Per-layer buffers HF keeps in some versions; derived, not weights.
_SKIPPED_SUFFIXES = (".attn.bias", ".attn.masked_bias")
_TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def hf_config(folder: Path) -> GPTConfig:
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{folder / 'config.json'} is not a readable JSON file ({exc})") from exc
    if not isinstance(raw, dict):
        raise WeightsError(f"{folder / 'config.json'} does not hold a JSON object")
    if raw.get("model_type", "gpt2") != "gpt2":
        raise WeightsError(
            f"{folder.name} holds a {raw.get('model_type')!r} model; only GPT-2 is supported"
        )
    required = ("vocab_size", "n_positions", "n_embd", "n_head", "n_layer")
    missing = [k for k in required if k not in raw]
    if missing:
        raise WeightsError(f"config.json lacks {', '.join(missing)}; is it a GPT-2 config?")
    sizes = {key: _field(raw, key, int) for key in required}
    emb = sizes["n_embd"]
    n_inner = _field(raw, "n_inner", int, None, none_ok=True)
    _require(n_inner in (None, 4 * emb), "n_inner", n_inner, 4 * emb)
    activation = _field(raw, "activation_function", str, "gelu_new")
    _require(activation in _TANH_GELUS, "activation_function", activation, "gelu_new")
    eps = _field(raw, "layer_norm_epsilon", float, 1e-5)
    _require(abs(eps - 1e-5) < 1e-12, "layer_norm_epsilon", eps, 1e-5)
    scaled = _field(raw, "scale_attn_weights", bool, True)
    _require(scaled, "scale_attn_weights", scaled, True)
    by_layer = _field(raw, "scale_attn_by_inverse_layer_idx", bool, False)
    _require(not by_layer, "scale_attn_by_inverse_layer_idx", by_layer, False)
    try:
        return GPTConfig(
            vocab_size=sizes["vocab_size"],
            context_length=sizes["n_positions"],
            emb_dim=emb,
            n_heads=sizes["n_head"],
            n_layers=sizes["n_layer"],
            drop_rate=_field(raw, "resid_pdrop", float, 0.1),
            qkv_bias=True,  # HF's c_attn always has a bias
        )
    except ValueError as exc:
        raise WeightsError(f"config.json describes an impossible model: {exc}") from exc


_MISSING = object()
_KIND_NAMES = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}


def _field(raw: dict, name: str, kind: type, default=_MISSING, none_ok: bool = False):
    """raw[name] checked to be of `kind` (a float may be written as an int), else a
    WeightsError that names the field."""
    if name not in raw:
        return default
    value = raw[name]
    if value is None and none_ok:
        return None
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok:
        raise WeightsError(
            f"config.json: {name} must be {_KIND_NAMES[kind]}, got {json.dumps(value)}"
        )
    return value


def _require(ok: bool, field: str, got, expected) -> None:
    if not ok:
        raise WeightsError(
            f"config.json sets {field} = {got!r}; this model supports only {expected!r}"
        )


def read_hf_weights(folder: Path) -> dict[str, Tensor]:
    for index_name in _SHARD_INDEXES:
        if (folder / index_name).is_file():
            return _read_shards(folder, index_name)
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            return _read_weights_file(path)
    raise WeightsError(
        f"{folder} has config.json but no weights: expected one of {', '.join(WEIGHT_FILES)}"
    )


def _read_shards(folder: Path, index_name: str) -> dict[str, Tensor]:
    try:
        index = json.loads((folder / index_name).read_text())
        shard_names = sorted(set(index["weight_map"].values()))
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise WeightsError(f"{index_name} is not a valid shard index ({exc})") from exc
    state: dict[str, Tensor] = {}
    for shard in shard_names:
        path = folder / shard
        if not path.is_file():
            raise WeightsError(f"shard {shard} listed in {index_name} is missing")
        state.update(_read_weights_file(path))
    return state


def _read_weights_file(path: Path) -> dict[str, Tensor]:
    return read_safetensors(path)[0] if path.suffix == ".safetensors" else read_torch_file(path)


def is_hf_state_dict(state: dict[str, Tensor]) -> bool:
    return "wte.weight" in state or "transformer.wte.weight" in state


def hf_to_book_state_dict(state: dict[str, Tensor], cfg: GPTConfig) -> dict[str, Tensor]:
    """Rename, transpose and split HF GPT-2 tensors into the book's GPTModel layout."""
    hf = {
        k.removeprefix("transformer."): v
        for k, v in state.items()
        if not k.endswith(_SKIPPED_SUFFIXES)
    }
    emb, vocab = cfg.emb_dim, cfg.vocab_size
    taken: set[str] = set()

    def take(key: str, shape: tuple[int, ...]) -> Tensor:
        if key not in hf:
            raise WeightsError(f"the weights lack {key!r}, which a GPT-2 of this config needs")
        tensor = hf[key]
        if tuple(tensor.shape) != shape:
            raise WeightsError(
                f"{key} has shape {list(tensor.shape)}, but config.json implies {list(shape)}"
            )
        taken.add(key)
        return tensor

    out = {
        "tok_emb.weight": take("wte.weight", (vocab, emb)),
        "pos_emb.weight": take("wpe.weight", (cfg.context_length, emb)),
        "final_norm.scale": take("ln_f.weight", (emb,)),
        "final_norm.shift": take("ln_f.bias", (emb,)),
    }
    for i in range(cfg.n_layers):
        h, b = f"h.{i}.", f"trf_blocks.{i}."
        q_w, k_w, v_w = take(h + "attn.c_attn.weight", (emb, 3 * emb)).split(emb, dim=1)
        q_b, k_b, v_b = take(h + "attn.c_attn.bias", (3 * emb,)).split(emb)
        out |= {
            b + "norm1.scale": take(h + "ln_1.weight", (emb,)),
            b + "norm1.shift": take(h + "ln_1.bias", (emb,)),
            b + "att.W_query.weight": q_w.T,
            b + "att.W_query.bias": q_b,
            b + "att.W_key.weight": k_w.T,
            b + "att.W_key.bias": k_b,
            b + "att.W_value.weight": v_w.T,
            b + "att.W_value.bias": v_b,
            b + "att.out_proj.weight": take(h + "attn.c_proj.weight", (emb, emb)).T,
            b + "att.out_proj.bias": take(h + "attn.c_proj.bias", (emb,)),
            b + "norm2.scale": take(h + "ln_2.weight", (emb,)),
            b + "norm2.shift": take(h + "ln_2.bias", (emb,)),
            b + "ff.layers.0.weight": take(h + "mlp.c_fc.weight", (emb, 4 * emb)).T,
            b + "ff.layers.0.bias": take(h + "mlp.c_fc.bias", (4 * emb,)),
            b + "ff.layers.2.weight": take(h + "mlp.c_proj.weight", (4 * emb, emb)).T,
            b + "ff.layers.2.bias": take(h + "mlp.c_proj.bias", (emb,)),
        }
    # GPT-2 ties the output head to the token embedding; lm_head is often not saved.
    head = take("lm_head.weight", (vocab, emb)) if "lm_head.weight" in hf else out["tok_emb.weight"]
    out["out_head.weight"] = head.clone()
    unexpected = sorted(set(hf) - taken)
    if unexpected:
        raise WeightsError(
            f"the weights hold {len(unexpected)} tensor(s) a GPT-2 of this config has no place "
            f"for, e.g. {', '.join(unexpected[:3])}; does config.json match them?"
        )
    return {k: v.contiguous() for k, v in out.items()}
