"""`gpt-explorer sublayer-lens` (also `lens`): the logit lens read at every sub-layer of
the residual stream, at every position (the Sub-layer lens tab's grid), written as .npy arrays."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from explorer.commands.options import given
from gpt_core import capture, get_tokenizer
from gpt_core.analysis import sublayer_lens
from gpt_core.util.files import write_all, write_npy

HELP = "the logit lens at every sub-layer of the residual stream, every position"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", type=given, help="one token whose rank to record at every point"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")


def run(args, model) -> int:
    tokenizer, ids = get_tokenizer(), args.ids
    target = None if args.target is None else tokenizer.single_id(args.target, "the target")
    lens = sublayer_lens(model, capture(model, ids, args.interventions, device=args.device), target)
    args.out.mkdir(parents=True, exist_ok=True)
    arrays = {
        "lens_top1_ids": lens.top1_ids.astype(np.int64),
        "lens_top1_probs": lens.top1_probs.astype(np.float32),
        "lens_entropy": lens.entropy.astype(np.float32),
        "lens_kl": lens.kl.astype(np.float32),
    }
    if lens.target_rank is not None:
        arrays["lens_target_rank"] = lens.target_rank.astype(np.int64)
    write_all(
        (args.out / f"{name}.npy", lambda path, a=values: write_npy(path, a))
        for name, values in arrays.items()
    )
    rows = ", ".join(lens.labels)
    print(f"wrote {len(arrays)} arrays [{len(lens.labels)} points x {len(ids)} tokens] "
          f"to {args.out} (points: {rows})")  # fmt: skip
    return 0
