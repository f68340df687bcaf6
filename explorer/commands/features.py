"""`gpt-explorer features`: which features of a sparse autoencoder fire on each token of a
prompt, the losses with its reconstruction spliced in, and chosen features' cards, written
to files; features can be switched off (--ablate-feature) or pushed (--steer)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from explorer.commands.options import check_folder, given, whole_number
from explorer.export.features import export_features
from gpt_core.sae import DEFAULT_TOP, FeatureSwitches, feature_card, features, load_sae
from gpt_core.sae.config import MAX_D_SAE

HELP = "which sparse-autoencoder features fire on each token"
MAX_TOP = 10_000  # features listed per token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sae",
        required=True,
        type=given,
        metavar="SOURCE",
        help="an SAE folder (cfg.json + sae_weights.safetensors), or REPO:FOLDER on the "
        "Hugging Face hub, e.g. jbloom/GPT2-Small-SAEs-Reformatted:blocks.8.hook_resid_pre",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.add_argument(
        "--top", default=str(DEFAULT_TOP), metavar="K", help="features listed per token"
    )
    parser.add_argument(
        "--feature", action="append", default=[], metavar="F", help="write feature_F.json"
    )
    parser.add_argument(
        "--ablate-feature", action="append", default=[], metavar="F", help="switch feature F off"
    )
    parser.add_argument(
        "--steer", action="append", default=[], metavar="F:ALPHA",
        help="add ALPHA × feature F's decoder direction at every position",
    )  # fmt: skip


def check(args) -> None:
    args.top = whole_number(args.top, "--top", 1, MAX_TOP)
    args.cards = sorted({whole_number(f, "--feature", 0, MAX_D_SAE) for f in args.feature})
    args.switches = FeatureSwitches.parse(args.ablate_feature, args.steer)
    check_folder(args.out, "--out")


def run(args, model) -> int:
    sae = load_sae(args.sae, model.cfg)
    for warning in sae.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    args.switches.check(sae.d_sae)
    for feature in args.cards:
        sae.check_feature(feature)
    result = features(model, args.ids, sae, top_k=args.top, interventions=args.interventions,
                      switches=args.switches)  # fmt: skip
    cards = [feature_card(model, sae, f, result.readout) for f in args.cards]
    args.out.mkdir(parents=True, exist_ok=True)
    written = export_features(result, sae, cards, args.out)
    print(f"wrote {len(written)} files of {sae.hook_name} features to {args.out}")
    return 0
