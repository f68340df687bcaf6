"""`gpt-explorer attribute`: which input tokens made a prediction, by each method, written
to files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gpt_core import ExportError, get_tokenizer
from gpt_core.analysis.attribution import METHODS, Explained, attribute
from gpt_core.util.atomic import atomic_path
from gpt_core.util.files import write_matrix_csv, write_npy

from .cli_options import add_prompt_options
from .export_render import HeatmapFigure, save_figure


def add_attribute_command(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser("attribute", help="input-token attributions of a prediction")
    add_prompt_options(parser)
    parser.add_argument("--target", required=True, help="one token whose logit is explained")
    parser.add_argument("--foil", help="one token whose logit is subtracted (contrastive)")
    parser.add_argument("--position", type=int, help="the prediction read (default: last)")
    parser.add_argument("--method", default=",".join(METHODS), help=f"from {','.join(METHODS)}")
    parser.add_argument("--steps", type=int, default=32, help="integrated-gradients steps")
    parser.add_argument("--baseline", default="zero", help="zero, or a token (IG, occlusion)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    return parser


def run_attribute(args, model, interventions) -> int:
    tokenizer = get_tokenizer()
    ids = tokenizer.encode(args.prompt)
    position = len(ids) - 1 if args.position is None else args.position
    target = tokenizer.single_id(args.target, "the target")
    foil = tokenizer.single_id(args.foil, "the foil") if args.foil else None
    baseline = (
        None if args.baseline == "zero" else tokenizer.single_id(args.baseline, "the baseline")
    )
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    result = attribute(model, ids, Explained(target, foil, position), methods, steps=args.steps,
                       baseline_token=baseline, interventions=interventions)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    labels = [f"{i}:{s}" for i, s in enumerate(tokenizer.displays(ids))]
    for method, scores in result.scores.items():
        write_npy(args.out / f"{method}.npy", scores.astype(np.float32))
        write_matrix_csv(args.out / f"{method}.csv", scores[None], [method], labels, "method")
        signed = bool((scores < 0).any())
        figure = HeatmapFigure(scores[None], (method,), tuple(labels), method, "", "token", signed)
        save_figure(args.out / f"{method}.png", [figure])
    summary = {
        "ids": ids,
        "target_id": target,
        "foil_id": foil,
        "position": position,
        "value": result.value,
        "baseline_value": result.baseline_value,
        "integrated_gradients_completeness_gap": result.completeness_gap,
        "methods": list(result.scores),
    }
    with atomic_path(args.out / "summary.json", ExportError) as tmp:
        tmp.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"wrote {len(result.scores)} attributions of {result.value:.4f} to {args.out}")
    return 0
