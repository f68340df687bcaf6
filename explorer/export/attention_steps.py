"""One head's attention step by step, as files: its queries, keys, values, scaled scores,
weights and context vectors as float32 .npy arrays, and one (query, key) pair's numbers as
pair.json. Written by the `attention` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gpt_core import Trace, stage_key
from gpt_core.analysis import AttentionPair
from gpt_core.util.files import write_all, write_json, write_npy


def head_arrays(trace: Trace, layer: int, head: int) -> dict[str, np.ndarray]:
    """The head's arrays by file stem: [T, d_head] vectors and [T, T] matrices, float32."""

    def per_head(name: str) -> np.ndarray:
        return trace[stage_key(name, layer)][:, head]  # [T, d_head]

    return {
        "queries": per_head("attn/queries"),
        "keys": per_head("attn/keys"),
        "values": per_head("attn/values"),
        "scores": trace.head_scores(layer, head),  # [T, T], -inf above the diagonal
        "weights": trace.head_weights(layer, head),  # [T, T]
        "context": per_head("attn/context"),
    }


def pair_record(pair: AttentionPair) -> dict:
    """pair.json: every number from the two vectors to the weight and the context vector."""
    return {
        "layer": pair.layer,
        "head": pair.head,
        "query": pair.query,
        "key": pair.key,
        "q": pair.q.tolist(),
        "k": pair.k.tolist(),
        "products": pair.products.tolist(),
        "dot": pair.dot,
        "scale": pair.scale,
        "score": pair.score,
        "masked": pair.masked,
        "row_max": pair.row_max,
        "exp_sum": pair.exp_sum,
        "weight": 0.0 if pair.masked else pair.weight,
        "context": pair.context.tolist(),
        "head_switched_off": pair.ablated,
    }


def export_attention_steps(
    trace: Trace, layer: int, head: int, pair: AttentionPair, folder: Path
) -> list[Path]:
    """Write the head's arrays and the pair's numbers into `folder` (which must exist)."""
    files = [
        (folder / f"{stem}.npy", lambda path, a=array: write_npy(path, a.astype(np.float32)))
        for stem, array in head_arrays(trace, layer, head).items()
    ]
    files.append((folder / "pair.json", lambda path: write_json(path, pair_record(pair))))
    return write_all(files)
