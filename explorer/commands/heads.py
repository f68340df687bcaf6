"""`gpt-explorer heads` (every head's type scores on the repeated probe) and `gpt-explorer
lens` (the logit lens at every sub-layer), written to files."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from explorer.commands.options import add_prompt_options, seed
from explorer.export.render import HeatmapFigure, save_figure
from gpt_core import ExportError, capture, get_tokenizer
from gpt_core.analysis import REPEAT_LENGTH, head_type_scores, sublayer_lens
from gpt_core.util.atomic import atomic_path
from gpt_core.util.files import write_npy

# (score in head_type_scores, its name in head_scores.npz, what its image says)
FILES = (
    ("induction", "induction", "Induction score"),
    ("duplicate_token", "duplicate_token", "Duplicate-token score"),
    ("previous", "previous_token", "Weight on the previous token"),
    ("first", "first_token", "Weight on the first token"),
    ("self", "self", "Weight on the token itself"),
    ("entropy", "entropy", "Attention entropy (nats)"),
)


def add_heads_command(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "heads", help="induction, duplicate-token and other head scores on a repeated probe"
    )
    parser.add_argument(
        "--repeat-length", type=int, default=REPEAT_LENGTH, help="random tokens per copy"
    )
    parser.add_argument("--probe-seed", type=seed, default=0, help="seed of the random tokens")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    return parser


def run_heads(args, model) -> int:
    if args.repeat_length < 2:
        raise ExportError("--repeat-length must be at least 2")
    scores = head_type_scores(model, args.repeat_length, args.probe_seed)
    args.out.mkdir(parents=True, exist_ok=True)
    arrays = {file: scores[score].astype(np.float32) for score, file, _ in FILES}
    arrays["ids"] = scores["ids"]
    path = args.out / "head_scores.npz"
    with atomic_path(path, ExportError) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    n_layers, n_heads = arrays["induction"].shape
    rows = tuple(f"L{layer}" for layer in range(n_layers))
    cols = tuple(f"H{head}" for head in range(n_heads))
    for score, file, title in FILES:
        figure = HeatmapFigure(scores[score], rows, cols, title, "layer", "head")
        save_figure(args.out / f"{file}.png", [figure])
    print(f"wrote head_scores.npz and {len(FILES)} images to {args.out}")
    return 0


def add_lens_command(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "lens", help="the logit lens at every point of the residual stream, every position"
    )
    add_prompt_options(parser)
    parser.add_argument("--target", help="one token whose rank to record at every point")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    return parser


def run_lens(args, model, interventions, device) -> int:
    tokenizer = get_tokenizer()
    ids = tokenizer.encode(args.prompt)
    target = tokenizer.single_id(args.target, "the target") if args.target else None
    lens = sublayer_lens(model, capture(model, ids, interventions, device=device), target)
    args.out.mkdir(parents=True, exist_ok=True)
    arrays = {
        "lens_top1_ids": lens.top1_ids.astype(np.int64),
        "lens_top1_probs": lens.top1_probs.astype(np.float32),
        "lens_entropy": lens.entropy.astype(np.float32),
        "lens_kl": lens.kl.astype(np.float32),
    }
    if lens.target_rank is not None:
        arrays["lens_target_rank"] = lens.target_rank.astype(np.int64)
    for name, values in arrays.items():
        write_npy(args.out / f"{name}.npy", values)
    rows = ", ".join(lens.labels)
    print(f"wrote {len(arrays)} arrays [{len(lens.labels)} points x {len(ids)} tokens] "
          f"to {args.out} (points: {rows})")  # fmt: skip
    return 0
