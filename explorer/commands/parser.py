"""Command-line options, and the headless commands `export` and `trace`, which use the same
gpt_core calls and exporters as the window."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from explorer.commands.attribute import add_attribute_command, run_attribute
from explorer.commands.heads import add_heads_command, add_lens_command, run_heads, run_lens
from explorer.commands.options import OneLineErrors, add_prompt_options, prompt_text, seed
from explorer.commands.patch import add_patch_command, run_patch
from explorer.export.attention import (
    FORMATS,
    IMAGE_FORMATS,
    chosen_heads,
    export_attention,
    parse_formats,
)
from gpt_core import (
    ABLATION_MODES,
    PRESETS,
    GPTCoreError,
    Interventions,
    backward_step,
    capture,
    get_tokenizer,
    keep_freed_memory,
    load_model,
)
from gpt_core.model.tokenizer import check_prompt_text
from gpt_core.util.devices import DEVICE_CHOICES, resolve_device
from gpt_core.weights import non_finite_parameters

SUBCOMMANDS = ("export", "trace", "patch", "heads", "lens", "attribute")


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights",
        metavar="PATH-or-HF-ID",
        help="GPT-2 weights: .safetensors, .pth/.pt, a Hugging Face folder, or a "
        "hub id such as gpt2 or distilgpt2 (from the Hugging Face cache, else downloaded); "
        "default: random weights (the window opens on GPT-2 small when it is cached)",
    )
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="model size for random weights, or for a state_dict that cannot say",
    )
    parser.add_argument(
        "--device",
        choices=DEVICE_CHOICES,
        default=None,
        help="where the model runs (default: auto, CUDA when present)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed of the random weights")


def _intervention_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ablate", default="", metavar="L.H[,L.H…]", help="switch these heads off, e.g. 0.3,5.11"
    )
    parser.add_argument("--skip", default="", metavar="L[,L…]", help="skip these blocks")
    parser.add_argument(
        "--ablation-mode",
        choices=ABLATION_MODES,
        default="zero",
        help="replace a switched-off head's output by zeros or by its mean",
    )


def gui_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="gpt-explorer",
        description="Look inside GPT-2 while it runs. Headless commands: "
        "`gpt-explorer export --help`, `trace --help`, `patch --help`, `heads --help`, "
        "`lens --help`, `attribute --help`.",
    )
    parser.add_argument("--prompt", help="prompt to run at start")
    _model_options(parser)
    return parser


def headless_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="gpt-explorer")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="attention heatmaps and weights, no window")
    add_prompt_options(export)
    export.add_argument("--out", required=True, type=Path, metavar="DIR")
    export.add_argument("--layer", type=int, help="one layer (default: every layer)")
    export.add_argument("--head", type=int, help="one head (default: every head)")
    export.add_argument(
        "--format",
        default=",".join(FORMATS),
        help=f"comma-separated, from {','.join(FORMATS)} (default: all)",
    )
    export.add_argument(
        "--crop",
        action="store_true",
        help="run a too-long prompt on its last context-length tokens",
    )
    _model_options(export)
    _intervention_options(export)
    trace = commands.add_parser("trace", help="every stage of one run, as an .npz file")
    add_prompt_options(trace)
    trace.add_argument(
        "--out", required=True, type=Path, metavar="FILE.npz", help="or a folder: FOLDER/trace.npz"
    )
    trace.add_argument(
        "--backward", action="store_true", help="also run one backward step and store the gradients"
    )
    trace.add_argument(
        "--target",
        metavar="TOKEN",
        help="with --backward: the loss is -log p(TOKEN) after the prompt's last token "
        "(exactly one token; a leading space counts), else the mean next-token loss",
    )
    trace.add_argument(
        "--crop",
        action="store_true",
        help="run a too-long prompt on its last context-length tokens",
    )
    _model_options(trace)
    _intervention_options(trace)
    _model_options(add_patch_command(commands))
    _model_options(add_heads_command(commands))
    for command in (add_lens_command(commands), add_attribute_command(commands)):
        _model_options(command)
        _intervention_options(command)
    return parser


def run_headless(argv: list[str]) -> int:
    args = headless_parser().parse_args(argv)
    keep_freed_memory()
    try:
        return _run_command(args)
    except (GPTCoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2


def _run_command(args) -> int:
    _check_before_loading(args)
    model, cfg = load_model(args.weights, args.preset, seed=args.seed)
    bad = non_finite_parameters(model)
    if bad:
        names = ", ".join(f"{name} ({count:,})" for name, count in bad.items())
        print(f"warning: the weights hold NaN or Inf values in {names}", file=sys.stderr)
    device = args.device or "auto"
    if args.command in ("patch", "heads"):
        _qt_for_images()
        model.to(resolve_device(device))
        if args.command == "heads":
            return run_heads(args, model)
        return run_patch(args, model, device)
    interventions = Interventions.parse(args.ablate, args.skip, args.ablation_mode)
    interventions.check(cfg)
    if args.command == "lens":
        return run_lens(args, model, interventions, device)
    if args.command == "attribute":
        _qt_for_images()
        model.to(resolve_device(device))
        return run_attribute(args, model, interventions)
    ids = get_tokenizer().encode(args.prompt)
    if args.crop:
        ids = ids[-cfg.context_length :]
    if args.command == "trace":
        return _write_trace(args, model, ids, interventions, device)
    return _export(args, model, cfg, ids, interventions, device)


def _check_before_loading(args) -> None:
    """What can be checked without the model, checked before it loads."""
    if hasattr(args, "prompt_file"):
        args.prompt = prompt_text(args)
    if args.command == "patch":
        check_prompt_text(args.clean)
        check_prompt_text(args.corrupted)
    if args.command == "trace":
        args.out = _trace_path(args.out)
        if args.target is not None and not args.backward:
            raise GPTCoreError("--target names the loss of the backward step: add --backward")
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


def _write_trace(args, model, ids, interventions, device) -> int:
    if args.backward:
        if args.target is None and len(ids) == 1:
            raise GPTCoreError(
                "a one-token prompt has no next token to predict: add text, or give --target TOKEN"
            )
        target = None if args.target is None else (len(ids) - 1, args.target)
        trace = backward_step(model, ids, target, interventions=interventions, device=device)
    else:
        trace = capture(model, ids, interventions, device=device)
    trace.save(args.out)
    print(
        f"wrote {args.out} ({trace.n_tokens} tokens, {len(trace.stages)} stages, "
        f"{trace.nbytes / 1e6:.1f} MB in memory)"
    )
    return 0


def _export(args, model, cfg, ids, interventions, device) -> int:
    formats = parse_formats(args.format)
    layers, heads = chosen_heads(
        cfg,
        None if args.layer is None else [args.layer],
        None if args.head is None else [args.head],
    )  # all checked before anything is created
    trace = capture(model, ids, interventions, device=device)
    if any(f in IMAGE_FORMATS for f in formats):
        _qt_for_images()
    args.out.mkdir(parents=True, exist_ok=True)
    written = export_attention(trace, args.out, layers, heads, formats, args.prompt)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def _qt_for_images():
    """Painting text needs a QGuiApplication; without a display, draw offscreen."""
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.instance() is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _qt_for_images.app = QGuiApplication([])
    return QGuiApplication.instance()
