"""`gpt-explorer attribute`: which input tokens made a prediction, by each method, written
to files."""

from __future__ import annotations

import argparse
from pathlib import Path

from explorer.commands.options import given
from explorer.export.input_attribution import export_attribution
from gpt_core import get_tokenizer
from gpt_core.analysis.input_attribution import (
    DEFAULT_STEPS,
    INPUT_ATTRIBUTION_METHODS,
    INTEGRATION_RULES,
    MAX_STEPS,
    Explained,
    attribute,
    check_steps,
)

HELP = "input-token attributions of a prediction"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", required=True, type=given, help="one token whose logit is explained"
    )
    parser.add_argument(
        "--foil", type=given, help="one token whose logit is subtracted (contrastive)"
    )
    parser.add_argument("--position", type=int, help="the prediction read (default: last)")
    parser.add_argument(
        "--method",
        default=",".join(INPUT_ATTRIBUTION_METHODS),
        help=f"from {','.join(INPUT_ATTRIBUTION_METHODS)}",
    )
    parser.add_argument(
        "--steps",
        type=int,
        help=f"integrated-gradients steps (1 to {MAX_STEPS:,}; default: "
        + ", ".join(f"{steps} {rule}" for rule, steps in DEFAULT_STEPS.items())
        + ")",
    )
    parser.add_argument(
        "--integration",
        choices=INTEGRATION_RULES,
        default="gauss",
        help="integrated gradients' rule: Gauss–Legendre nodes or the midpoint rule",
    )
    parser.add_argument(
        "--baseline", type=given, default="zero", help="zero, or a token (IG, occlusion)"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")


def check(args) -> None:
    if args.steps is not None:
        check_steps(args.steps)


def run(args, model) -> int:
    tokenizer, ids = get_tokenizer(), args.ids
    position = len(ids) - 1 if args.position is None else args.position
    target = tokenizer.single_id(args.target, "the target")
    foil = None if args.foil is None else tokenizer.single_id(args.foil, "the foil")
    baseline = (
        None if args.baseline == "zero" else tokenizer.single_id(args.baseline, "the baseline")
    )
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    explained = Explained(target, foil, position)
    result = attribute(model, ids, explained, methods, steps=args.steps,
                       integration=args.integration, baseline_token=baseline,
                       interventions=args.interventions)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    labels = [f"{i}:{s}" for i, s in enumerate(tokenizer.displays(ids))]
    export_attribution(result, explained, ids, labels, args.out)
    print(f"wrote {len(result.scores)} attributions of {result.value:.4f} to {args.out}")
    return 0
