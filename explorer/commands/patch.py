"""`gpt-explorer patch`: activation patching from the command line, written to files."""

from __future__ import annotations

import argparse
from pathlib import Path

from explorer.commands.options import given
from explorer.export.patching import export_patching
from gpt_core import get_tokenizer
from gpt_core.analysis import patching
from gpt_core.model.tokenizer import check_prompt_text

HELP = "activation patching between a clean and a corrupted prompt"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clean", required=True, help="the prompt whose answer is studied")
    parser.add_argument("--corrupted", required=True, help="the same length, a word changed")
    parser.add_argument("--answer", type=given, help="one token (default: the clean run's top-1)")
    parser.add_argument(
        "--distractor",
        type=given,
        help="one token (default: the corrupted run's top-1, or its second)",
    )
    parser.add_argument("--metric", choices=list(patching.METRICS), default="logit_diff")
    parser.add_argument("--position", type=int, help="the metric's position (default: last)")
    parser.add_argument("--direction", choices=list(patching.DIRECTIONS), default="denoise")
    parser.add_argument(
        "--sweep",
        default="resid,heads",
        help=f"comma-separated, from {','.join(patching.SWEEPS)} (default: resid,heads)",
    )
    parser.add_argument(
        "--method",
        choices=patching.PATCHING_METHODS,
        default="exact",
        help="one patched run per cell, the first-order estimate, or both",
    )
    parser.add_argument(
        "--receiver", type=given, metavar="L.H.q|k|v|logits", help="also path-patch into it"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")


def check(args) -> None:
    check_prompt_text(args.clean)
    check_prompt_text(args.corrupted)
    if not _sweeps(args) and not args.receiver:  # (the API's no sweep is logit attribution alone)
        raise patching.PatchError(
            f"no sweep chosen; choose from {', '.join(patching.SWEEPS)} (or a --receiver)"
        )


def _sweeps(args) -> list[str]:
    return [name.strip() for name in args.sweep.split(",") if name.strip()]


def run(args, model) -> int:
    """Run the experiment the options describe and write its files."""
    clean, corrupted, metric = patching.metric_from_text(
        model,
        args.clean,
        args.corrupted,
        args.metric,
        args.answer or "",
        args.distractor or "",
        args.position,
        args.device,
    )
    receiver = None if args.receiver is None else patching.Receiver.parse(args.receiver)
    sweeps = _sweeps(args)
    result = patching.patch(
        model,
        clean,
        corrupted,
        metric,
        sweeps,
        method=args.method,
        direction=args.direction,
        receiver=receiver,
        device=args.device,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer = get_tokenizer()
    written = export_patching(result, args.out, ("npy", "csv", "png"))
    print(
        f"clean {result.clean_value:.4f}, corrupted {result.corrupted_value:.4f} "
        f"({metric.describe()}, answer “{tokenizer.display(metric.answer)}”, distractor "
        f"“{tokenizer.display(metric.distractor)}”); wrote {len(written)} files to {args.out}"
    )
    return 0
