"""`gpt-explorer export`: attention heatmaps and weights of chosen heads, as the window's
Export writes them."""

from __future__ import annotations

import argparse
from pathlib import Path

from explorer.export.attention import FORMATS, chosen_heads, export_attention, parse_formats
from gpt_core import capture

HELP = "attention heatmaps and weights, no window"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.add_argument("--layer", type=int, help="one layer (default: every layer)")
    parser.add_argument("--head", type=int, help="one head (default: every head)")
    parser.add_argument(
        "--format",
        default=",".join(FORMATS),
        help=f"comma-separated, from {','.join(FORMATS)} (default: all)",
    )


def run(args, model) -> int:
    formats = parse_formats(args.format)
    layers, heads = chosen_heads(
        model.cfg,
        None if args.layer is None else [args.layer],
        None if args.head is None else [args.head],
    )  # all checked before anything is created
    trace = capture(model, args.ids, args.interventions, device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    written = export_attention(trace, args.out, layers, heads, formats, args.prompt)
    print(f"wrote {len(written)} files to {args.out}")
    return 0
