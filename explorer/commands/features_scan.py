"""`gpt-explorer features-scan`: where each feature of a sparse autoencoder fires most in a
corpus (a text file or a folder of .txt files): every feature's top K windows, written to
files; the scan is cached and resumes where an interrupted one stopped."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from explorer.commands.options import check_folder, given, whole_number
from explorer.state.features import SCAN_CACHE as CACHE
from gpt_core.sae import DEFAULT_SCAN_TOP, DEFAULT_WINDOW, load_sae, scan_corpus
from gpt_core.sae.corpus import MAX_WINDOW, corpus_files
from gpt_core.util.files import write_all, write_json, write_npy

HELP = "each sparse-autoencoder feature's top contexts in a corpus"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sae", required=True, type=given, metavar="SOURCE",
                        help="an SAE folder, or REPO:FOLDER on the Hugging Face hub")  # fmt: skip
    parser.add_argument("--corpus", required=True, type=given, metavar="PATH",
                        help="a UTF-8 text file, or a folder of .txt files")  # fmt: skip
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.add_argument("--window", default=str(DEFAULT_WINDOW), metavar="N",
                        help="tokens per window")  # fmt: skip
    parser.add_argument("--top", default=str(DEFAULT_SCAN_TOP), metavar="K",
                        help="windows kept per feature")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=CACHE, metavar="DIR",
                        help=f"scans kept and resumed here (default {CACHE})")  # fmt: skip


def check(args) -> None:
    args.window = whole_number(args.window, "--window", 2, MAX_WINDOW)
    args.top = whole_number(args.top, "--top", 1, 1000)
    corpus_files(Path(args.corpus))
    check_folder(args.out, "--out")
    check_folder(args.cache, "--cache")


def run(args, model) -> int:
    sae = load_sae(args.sae, model.cfg)
    for warning in sae.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    result = scan_corpus(model, sae, Path(args.corpus), window=args.window, top_k=args.top,
                         cache_dir=args.cache,
                         progress=_report if sys.stderr.isatty() else None)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "sae": sae.source,
        "hook": sae.hook_name,
        "windows": len(result.windows),
        "window": args.window,
        "tokens_scanned": result.tokens,
        "seconds": result.seconds,
        "tokens_per_second": result.tokens_per_second,
        "from_cache": result.from_cache,
    }
    files = [
        (args.out / "top_acts.npy", lambda p: write_npy(p, result.top_acts)),
        (args.out / "top_where.npy", lambda p: write_npy(p, result.top_where)),
        (args.out / "windows.npy", lambda p: write_npy(p, result.windows)),
        (args.out / "summary.json", lambda p: write_json(p, summary)),
    ]
    write_all(files)
    print(f"scanned {result.tokens:,} tokens; wrote the top {args.top} windows of "
          f"{sae.d_sae:,} features to {args.out}")  # fmt: skip
    return 0


def _report(done: int, total: int, rate: float) -> None:
    """One line on a terminal, rewritten as the scan goes."""
    print(f"\r{done:,} / {total:,} tokens · {rate:,.0f} tokens/s", end="", file=sys.stderr)
    if done == total:
        print(file=sys.stderr)
