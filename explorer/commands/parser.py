"""The command line: the window's options, and the table of headless commands. Each command
is one module of this package with HELP, add_arguments(parser), run(args, model) (run(args)
for a command that needs no model) and optionally check(args) (what can be refused before
the model loads); a new command is a module and a row of COMMANDS."""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import dataclass
from types import ModuleType

from explorer.commands import (
    attention,
    attribute,
    export_attention,
    features,
    features_scan,
    heads,
    patch,
    sample,
    sublayer_lens,
    tokenize,
    trace,
)
from explorer.commands.options import (
    OneLineErrors,
    add_model_options,
    add_prompt_options,
    add_switch_options,
    prompt_text,
)
from gpt_core import GPTCoreError, Interventions, get_tokenizer, keep_freed_memory, load_model
from gpt_core.errors import Terminated
from gpt_core.model.tokenizer import vocabulary_note
from gpt_core.util.devices import resolve_device
from gpt_core.weights import non_finite_parameters


@dataclass(frozen=True)
class Command:
    name: str  # what is typed after gpt-explorer
    module: ModuleType  # HELP, add_arguments(parser), run(args, model), maybe check(args)
    prompt: bool  # takes --prompt / --prompt-file (args.prompt, args.ids)
    switches: bool  # takes --ablate, --skip, --ablation-mode (args.interventions)
    crop: bool = False  # takes --crop: a too-long prompt runs on its last tokens
    model: bool = True  # loads a model (and takes --weights, --preset, --device, --seed)
    aliases: tuple[str, ...] = ()  # older names that still work
    weights_seed: str = "--seed"  # the option that seeds random weights


COMMANDS = (
    Command("export", export_attention, prompt=True, switches=True, crop=True),
    Command("trace", trace, prompt=True, switches=True, crop=True),
    Command("patch", patch, prompt=False, switches=False),
    Command("heads", heads, prompt=False, switches=False),
    Command("sublayer-lens", sublayer_lens, prompt=True, switches=True, aliases=("lens",)),
    Command("attribute", attribute, prompt=True, switches=True),
    Command("attention", attention, prompt=True, switches=True, crop=True),
    Command("sample", sample, prompt=True, switches=True, weights_seed="--weights-seed"),
    Command("features", features, prompt=True, switches=True, crop=True),
    Command("features-scan", features_scan, prompt=False, switches=False),
    Command("tokenize", tokenize, prompt=False, switches=False, model=False),
)
SUBCOMMANDS = tuple(name for c in COMMANDS for name in (c.name, *c.aliases))
_BY_NAME = {name: c for c in COMMANDS for name in (c.name, *c.aliases)}


def gui_parser() -> argparse.ArgumentParser:
    names = ", ".join(f"`{c.name} --help`" for c in COMMANDS)
    parser = OneLineErrors(
        prog="gpt-explorer",
        description=f"Look inside GPT-2 while it runs. Headless commands: {names}.",
    )
    add_prompt_options(parser, required=False, help="prompt to run at start")
    add_model_options(parser)
    return parser


def headless_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="gpt-explorer")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.module.HELP, aliases=command.aliases)
        if command.prompt:
            add_prompt_options(sub)
        command.module.add_arguments(sub)
        if command.crop:
            sub.add_argument(
                "--crop",
                action="store_true",
                help="run a too-long prompt on its last context-length tokens",
            )
        if command.model:
            add_model_options(sub, command.weights_seed)
        if command.switches:
            add_switch_options(sub)
    return parser


def run_headless(argv: list[str]) -> int:
    args = headless_parser().parse_args(argv)
    keep_freed_memory()
    on_terminate = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _run_command(_BY_NAME[args.command], args)
    except KeyboardInterrupt as exc:  # the write in progress has removed its temporary file
        written = getattr(exc, "written", [])
        done = f"written: {', '.join(p.name for p in written)}" if written else "nothing written"
        print(f"interrupted; {done}", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
    except (GPTCoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, on_terminate)


def _raise_terminated(signum, frame):
    raise Terminated("terminated")


def _run_command(command: Command, args) -> int:
    if command.prompt:  # what can be refused before the model loads, is
        args.prompt = prompt_text(args)
    if hasattr(command.module, "check"):
        command.module.check(args)
    if not command.model:
        return command.module.run(args)
    model, cfg = load_model(args.weights, args.preset, seed=args.seed)
    bad = non_finite_parameters(model)
    if bad:
        names = ", ".join(f"{name} ({count:,})" for name, count in bad.items())
        print(f"warning: the weights hold NaN or Inf values in {names}", file=sys.stderr)
    note = vocabulary_note(cfg.vocab_size)
    if note:
        print(f"note: {note}", file=sys.stderr)
    args.device = str(resolve_device(args.device or "auto"))
    if command.switches:
        args.interventions = Interventions.parse(args.ablate, args.skip, args.ablation_mode)
        args.interventions.check(cfg)
    if command.prompt:
        args.ids = get_tokenizer().encode(args.prompt)
        if getattr(args, "crop", False):
            args.ids = args.ids[-cfg.context_length :]
    model.to(args.device)
    return command.module.run(args, model)
