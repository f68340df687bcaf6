"""`gpt-explorer patch`: activation patching from the command line, written to files."""

from __future__ import annotations

import argparse
from pathlib import Path

from gpt_core import get_tokenizer, resolve_device
from gpt_core.analysis import patching

from .patch_export import export_patching


def add_patch_command(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "patch", help="activation patching between a clean and a corrupted prompt"
    )
    parser.add_argument("--clean", required=True, help="the prompt whose answer is studied")
    parser.add_argument("--corrupted", required=True, help="the same length, a word changed")
    parser.add_argument("--answer", help="one token (default: the clean run's top-1)")
    parser.add_argument(
        "--distractor", help="one token (default: the corrupted run's top-1, or its second)"
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
        choices=("exact", "attribution", "both"),
        default="exact",
        help="one patched run per cell, the first-order estimate, or both",
    )
    parser.add_argument("--receiver", metavar="L.H.q|k|v|logits", help="also path-patch into it")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    return parser


def run_patch(args, model, device: str) -> int:
    """Run the experiment the options describe and write its files."""
    tokenizer = get_tokenizer()
    clean, corrupted = tokenizer.encode(args.clean), tokenizer.encode(args.corrupted)
    if len(clean) != len(corrupted):
        strips = ["|".join(tokenizer.displays(ids)) for ids in (clean, corrupted)]
        raise patching.PatchError(
            f"clean has {len(clean)} tokens, corrupted {len(corrupted)}: patching compares "
            f"position by position (clean: {strips[0]}; corrupted: {strips[1]})"
        )
    position = len(clean) - 1 if args.position is None else args.position
    model.to(resolve_device(device))
    answer, distractor = patching.default_tokens(model, clean, corrupted, position)
    if args.answer is not None:
        answer = tokenizer.single_id(args.answer, "the answer")
    if args.distractor is not None:
        distractor = tokenizer.single_id(args.distractor, "the distractor")
    metric = patching.Metric(args.metric, answer, distractor, position)
    receiver = patching.Receiver.parse(args.receiver) if args.receiver else None
    sweeps = [name.strip() for name in args.sweep.split(",") if name.strip()]
    result = patching.patch(
        model,
        clean,
        corrupted,
        metric,
        sweeps,
        method=args.method,
        direction=args.direction,
        receiver=receiver,
        device=device,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    written = export_patching(result, args.out, ("npy", "csv", "png"))
    print(
        f"clean {result.clean_value:.4f}, corrupted {result.corrupted_value:.4f} "
        f"({metric.describe()}, answer “{tokenizer.display(answer)}”, distractor "
        f"“{tokenizer.display(distractor)}”); wrote {len(written)} files to {args.out}"
    )
    return 0
