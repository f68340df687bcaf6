"""`gpt-explorer attention`: one head of one block step by step — its queries, keys,
values, scaled scores, weights and context vectors, and every number from one query and
key to the weight between them (pair.json)."""

from __future__ import annotations

import argparse
from pathlib import Path

from explorer.commands.options import check_folder
from explorer.export.attention_steps import export_attention_steps
from gpt_core import GPTCoreError, capture
from gpt_core.analysis import attention_pair, default_key

HELP = "one head's queries, keys, values, scores and weights, and one pair step by step"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layer", type=int, required=True, help="the block")
    parser.add_argument("--head", type=int, required=True, help="the head")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.add_argument("--query", type=int, help="the query position T (default: the last)")
    parser.add_argument(
        "--key", type=int, help="the key position S (default: the key T weights most)"
    )


def run(args, model) -> int:
    cfg, n_tokens = model.cfg, len(args.ids)
    positions = f"the positions of this {n_tokens}-token prompt"
    _check_range("--layer", args.layer, cfg.n_layers, "this model's blocks")
    _check_range("--head", args.head, cfg.n_heads, "this model's heads")
    query = n_tokens - 1 if args.query is None else args.query
    _check_range("--query", query, n_tokens, positions)
    if args.key is not None:
        _check_range("--key", args.key, n_tokens, positions)
    check_folder(args.out, "--out")
    trace = capture(model, args.ids, args.interventions, device=args.device)
    key = default_key(trace, args.layer, args.head, query) if args.key is None else args.key
    pair = attention_pair(trace, args.layer, args.head, query, key)
    args.out.mkdir(parents=True, exist_ok=True)
    written = export_attention_steps(trace, args.layer, args.head, pair, args.out)
    state = "masked (S > T): weight 0" if pair.masked else f"weight {pair.weight:.6f}"
    print(
        f"block {args.layer} head {args.head}, query {query} → key {key}: "
        f"q·k = {pair.dot:.6g}, × 1/√{cfg.head_dim} = score {pair.score:.6g}, {state}; "
        f"wrote {len(written)} files to {args.out}"
    )
    return 0


def _check_range(option: str, value: int, size: int, what: str) -> None:
    if not 0 <= value < size:
        raise GPTCoreError(f"{option} {value} is out of range: {what} are 0 to {size - 1}")
