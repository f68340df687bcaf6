"""The names and shapes of a GPTModel's parameters, worked out from its config alone, so a
checkpoint can be checked against its config before any model is built."""

from __future__ import annotations

from torch import Tensor

from ..errors import WeightsError
from ..model.config import GPTConfig


def parameter_shapes(cfg: GPTConfig) -> dict[str, tuple[int, ...]]:
    """Every entry of GPTModel(cfg).state_dict() with its shape, in the same order."""
    emb, vocab, hidden = cfg.emb_dim, cfg.vocab_size, 4 * cfg.emb_dim
    shapes: dict[str, tuple[int, ...]] = {
        "tok_emb.weight": (vocab, emb),
        "pos_emb.weight": (cfg.context_length, emb),
    }
    for layer in range(cfg.n_layers):
        block = f"trf_blocks.{layer}."
        for name in ("W_query", "W_key", "W_value"):
            shapes[f"{block}att.{name}.weight"] = (emb, emb)
            if cfg.qkv_bias:
                shapes[f"{block}att.{name}.bias"] = (emb,)
        shapes |= {
            f"{block}att.out_proj.weight": (emb, emb),
            f"{block}att.out_proj.bias": (emb,),
            f"{block}ff.layers.0.weight": (hidden, emb),
            f"{block}ff.layers.0.bias": (hidden,),
            f"{block}ff.layers.2.weight": (emb, hidden),
            f"{block}ff.layers.2.bias": (emb,),
            f"{block}norm1.scale": (emb,),
            f"{block}norm1.shift": (emb,),
            f"{block}norm2.scale": (emb,),
            f"{block}norm2.shift": (emb,),
        }
    shapes |= {
        "final_norm.scale": (emb,),
        "final_norm.shift": (emb,),
        "out_head.weight": (vocab, emb),
    }
    return shapes


def check_fits(cfg: GPTConfig, state: dict[str, Tensor], label: str, describe) -> None:
    """WeightsError unless `state` holds exactly the parameters of a model with `cfg`, in
    floating point; nothing is allocated, whatever sizes the config claims."""
    expected = parameter_shapes(cfg)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing):,}: {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected):,}: {', '.join(unexpected[:3])}")
        hint = ""
        if any(".att.W_query.bias" in k for k in missing + unexpected):
            hint = " (the query/key/value biases differ: check qkv_bias)"
        raise WeightsError(f"{label} does not fit a {describe(cfg)}: {'; '.join(parts)}{hint}")
    for key, shape in expected.items():
        tensor = state[key]
        if tuple(tensor.shape) != shape:
            raise WeightsError(
                f"{label}: {key} has shape {list(tensor.shape)}, but the model expects "
                f"{list(shape)}"
            )
        if not tensor.is_floating_point():
            raise WeightsError(f"{label}: {key} holds {tensor.dtype}, not floating-point weights")
