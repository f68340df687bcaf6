"""`gpt-explorer trace`: every stage of one run (and optionally its backward step) as an
.npz file, as the window's Save trace writes it."""

from __future__ import annotations

import argparse
from pathlib import Path

from explorer.commands.options import given
from gpt_core import GPTCoreError, backward_step, capture, get_tokenizer

HELP = "every stage of one run, as an .npz file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, type=Path, metavar="FILE.npz", help="or a folder: FOLDER/trace.npz"
    )
    parser.add_argument(
        "--backward", action="store_true", help="also run one backward step and store the gradients"
    )
    parser.add_argument(
        "--target",
        type=given,
        metavar="TOKEN",
        help="with --backward: the loss is -log p(TOKEN) after the prompt's last token "
        "(exactly one token; a leading space counts), else the mean next-token loss",
    )
    parser.add_argument(
        "--train",
        action="store_true",
        help="with --backward: training mode, dropout on as when the model is trained (its "
        "masks are stored, and the loss with dropout off beside the loss)",
    )
    parser.add_argument(
        "--dropout-seed",
        type=int,
        metavar="S",
        help="with --train: the dropout masks are those drawn right after "
        "torch.manual_seed(S) (default 0)",
    )


def check(args) -> None:
    args.out = _trace_path(args.out)
    if args.target is not None and not args.backward:
        raise GPTCoreError("--target names the loss of the backward step: add --backward")
    if args.train and not args.backward:
        raise GPTCoreError("--train is the backward step's training mode: add --backward")
    if args.dropout_seed is not None and not args.train:
        raise GPTCoreError("--dropout-seed seeds training mode's dropout: add --train")
    args.dropout_seed = args.dropout_seed or 0
    if not 0 <= args.dropout_seed < 2**63:
        raise GPTCoreError(f"--dropout-seed {args.dropout_seed}: give a seed from 0 to 2**63 - 1")
    if args.target is not None:
        args.target = get_tokenizer().single_id(args.target, "the target")


def _trace_path(out: Path) -> Path:
    """--out FILE.npz, or an existing folder: the trace goes in as trace.npz."""
    if out.is_dir():
        return out / "trace.npz"
    if out.suffix != ".npz":
        raise GPTCoreError(f"--out {out}: give a file name ending in .npz, or an existing folder")
    if not out.parent.is_dir():
        raise GPTCoreError(f"cannot write {out}: the folder {out.parent} does not exist")
    return out


def run(args, model) -> int:
    ids, interventions, device = args.ids, args.interventions, args.device
    if args.backward:
        if args.target is None and len(ids) == 1:
            raise GPTCoreError(
                "a one-token prompt has no next token to predict: add text, or give --target TOKEN"
            )
        target = None if args.target is None else (len(ids) - 1, args.target)
        trace = backward_step(
            model,
            ids,
            target,
            interventions=interventions,
            device=device,
            train=args.train,
            dropout_seed=args.dropout_seed,
        )
    else:
        trace = capture(model, ids, interventions, device=device)
    trace.save(args.out)
    mode = f", training mode, dropout seed {trace.dropout_seed}" if trace.training else ""
    print(
        f"wrote {args.out} ({trace.n_tokens} tokens, {len(trace.stages)} stages, "
        f"{trace.nbytes / 1e6:.1f} MB in memory{mode})"
    )
    return 0
