"""`gpt-explorer sample`: the distribution the next token is drawn from at one position
(÷ temperature, top-k, top-p, softmax: next_token_distribution) and N tokens drawn from it
with a seed, written as probs.npy and samples.json."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from explorer.commands.options import seed
from gpt_core import capture, get_tokenizer, next_token_distribution
from gpt_core.model.sampling import check_sampling, draw
from gpt_core.util.files import write_all, write_json, write_npy

HELP = "the next-token distribution under temperature, top-k and top-p, and seeded draws"
MAX_DRAWS = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--temperature", type=float, default=1.0, help="0: greedy (default 1)")
    parser.add_argument("--top-k", type=int, help="keep the k most likely tokens (default: all)")
    parser.add_argument(
        "--top-p", type=float, help="keep the smallest set whose probability reaches p, (0, 1]"
    )
    parser.add_argument("--position", type=int, help="the position read (default: the last)")
    parser.add_argument("--seed", dest="sample_seed", type=seed, default=0, help="of the draws")
    parser.add_argument("--n", type=int, default=1, help="how many tokens to draw (default 1)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")


def check(args) -> None:
    check_sampling(args.temperature, args.top_k, args.top_p)
    if not 1 <= args.n <= MAX_DRAWS:
        raise ValueError(f"--n must be from 1 to {MAX_DRAWS:,}, got {args.n}")


def run(args, model) -> int:
    tokenizer, ids = get_tokenizer(), args.ids
    position = len(ids) - 1 if args.position is None else args.position
    if not 0 <= position < len(ids):
        raise ValueError(f"position {position} is outside the prompt (0 to {len(ids) - 1})")
    # The model is causal: the prompt up to `position` gives that position's logits.
    trace = capture(model, ids[: position + 1], args.interventions, device=args.device)
    logits = trace["logits/last"][: tokenizer.size]  # only ids the tokenizer has a string for
    if not np.isfinite(logits).all():
        raise ValueError(f"the logits at position {position} are not finite (NaN or Inf)")
    distribution = next_token_distribution(logits, args.temperature, args.top_k, args.top_p)
    generator = torch.Generator().manual_seed(args.sample_seed)
    drawn = [draw(distribution, generator) for _ in range(args.n)]
    samples = {
        "position": position,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "seed": args.sample_seed,
        "ids": drawn,
        "tokens": [tokenizer.decode([i]) for i in drawn],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_all([
        (args.out / "probs.npy", lambda p: write_npy(p, distribution.probs.astype(np.float32))),
        (args.out / "samples.json", lambda p: write_json(p, samples)),
    ])  # fmt: skip
    print(
        f"wrote probs.npy and samples.json to {args.out}: {distribution.possible:,} tokens "
        f"possible at position {position}, entropy {distribution.entropy_after:.3f} nats"
    )
    return 0
