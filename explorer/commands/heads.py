"""`gpt-explorer heads`: every head's type scores on a repeated sequence of random tokens
(induction, duplicate token, ...), as an .npz file and one image per score."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from explorer.commands.options import seed
from explorer.export.render import HeatmapFigure, save_figure
from gpt_core import ExportError
from gpt_core.analysis import REPEAT_LENGTH, head_type_scores
from gpt_core.util.atomic import atomic_path
from gpt_core.util.files import write_all

# (score in head_type_scores, its name in head_scores.npz, what its image says)
FILES = (
    ("induction", "induction", "Induction score"),
    ("duplicate_token", "duplicate_token", "Duplicate-token score"),
    ("previous", "previous_token", "Weight on the previous token"),
    ("first", "first_token", "Weight on the first token"),
    ("self", "self", "Weight on the token itself"),
    ("entropy", "entropy", "Attention entropy (nats)"),
)


HELP = "induction, duplicate-token and other head scores on a repeated sequence"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repeat-length",
        type=int,
        help=f"random tokens per copy (default: {REPEAT_LENGTH}, or as many as the context fits)",
    )
    parser.add_argument("--sequence-seed", type=seed, default=0, help="seed of the random tokens")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")


def run(args, model) -> int:
    scores = head_type_scores(model, args.repeat_length, args.sequence_seed)
    args.out.mkdir(parents=True, exist_ok=True)
    arrays = {file: scores[score].astype(np.float32) for score, file, _ in FILES}
    arrays["ids"] = scores["ids"]
    n_layers, n_heads = arrays["induction"].shape
    rows = tuple(f"L{layer}" for layer in range(n_layers))
    cols = tuple(f"H{head}" for head in range(n_heads))
    files = [(args.out / "head_scores.npz", lambda path: _write_npz(path, arrays))]
    for score, file, title in FILES:
        figure = HeatmapFigure(scores[score], rows, cols, title, "layer", "head")
        files.append((args.out / f"{file}.png", lambda path, f=figure: save_figure(path, [f])))
    write_all(files)
    print(f"wrote head_scores.npz and {len(FILES)} images to {args.out}")
    return 0


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, ExportError) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
