"""Pieces the commands share: a parser whose errors are one `error: …` line, the model's
options (weights, preset, device, seed), the switches (heads off, blocks skipped), the prompt
as --prompt TEXT or --prompt-file PATH (- for stdin), and a seed's range."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpt_core import ABLATION_MODES, PRESETS, PromptError
from gpt_core.model.tokenizer import check_prompt_text
from gpt_core.util.devices import DEVICE_CHOICES

SEED_LIMIT = 2**64  # what torch and numpy seed from


class OneLineErrors(argparse.ArgumentParser):
    """Bad arguments print one `error: …` line (no usage block) and exit with status 2."""

    def error(self, message: str):
        line = " ".join(message.split())
        self.exit(2, f"error: {line} (see `{self.prog} --help`)\n")

    def parse_known_args(self, args=None, namespace=None):
        argv = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(self._dash_values_glued(argv), namespace)

    def _dash_values_glued(self, argv: list[str]) -> list[str]:
        """argv with `--option VALUE` as `--option=VALUE` where VALUE starts with "-" but is
        no option (a receiver -1.0.q), which argparse would take for a missing value."""
        known = {name for action in self._actions for name in action.option_strings}
        takes_value = {
            name for action in self._actions if action.nargs is None
            for name in action.option_strings
        }  # fmt: skip
        glued, rest = [], iter(argv)
        for arg in rest:
            value = next(rest, None) if arg in takes_value else None
            if value is not None and value.startswith("-") and value not in known:
                glued.append(f"{arg}={value}")
            else:
                glued.extend(a for a in (arg, value) if a is not None)
        return glued


def seed(text: str) -> int:
    """An argparse type: a whole number that seeds torch and numpy alike."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit() and int(digits) < SEED_LIMIT):
        raise argparse.ArgumentTypeError(
            f"a seed is a whole number from 0 to 2**64 - 1, got {text!r}"
        )
    return int(digits)


def whole_number(text: str, option: str, least: int, most: int) -> int:
    """`text` as a whole number from `least` to `most`; ValueError saying so otherwise (the
    command line prints it as its one error line)."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) < 10) or not (
        least <= int(digits) <= most
    ):
        raise ValueError(f"{option} takes a whole number from {least} to {most:,}, got {text!r}")
    return int(digits)


def check_folder(path: Path, option: str) -> None:
    """ValueError for a path that is there but is no folder (checked before any work)."""
    if path.expanduser().exists() and not path.expanduser().is_dir():
        raise ValueError(f"{option} {path} is a file, not a folder")


def given(text: str) -> str:
    """An argparse type for an option whose empty value would silently mean "not given"."""
    if not text:
        raise argparse.ArgumentTypeError("is empty; give a value or leave the option out")
    return text


def add_model_options(parser: argparse.ArgumentParser, seed_flag: str = "--seed") -> None:
    """The model's options; `seed_flag` names the option that seeds random weights (a command
    whose --seed means something else calls it --weights-seed)."""
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
    parser.add_argument(
        seed_flag, dest="seed", type=seed, default=0, help="seed of the random weights"
    )


def add_switch_options(parser: argparse.ArgumentParser) -> None:
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


def add_prompt_options(
    parser: argparse.ArgumentParser,
    required: bool = True,
    help: str | None = None,
    text_option: str = "--prompt",
) -> None:
    """TEXT_OPTION TEXT or --prompt-file PATH (`tokenize` names its text --text)."""
    prompt = parser.add_mutually_exclusive_group(required=required)
    prompt.add_argument(text_option, metavar="TEXT", help=help)
    prompt.add_argument(
        "--prompt-file",
        type=Path,
        metavar="PATH",
        help="read the prompt from a UTF-8 file (- for stdin); one final newline is dropped",
    )


def prompt_text(args) -> str:
    """The prompt the options give, held to gpt_core's rule for a prompt."""
    if args.prompt_file is None:
        return check_prompt_text(args.prompt)
    return check_prompt_text(read_prompt_file(args.prompt_file))


def read_prompt_file(source: Path) -> str:
    """A prompt file's text (- for stdin), less one final newline; PromptError if it cannot
    be read or is not UTF-8."""
    try:
        text = sys.stdin.read() if str(source) == "-" else source.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(f"cannot read the prompt file {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PromptError(f"the prompt file {source} is not UTF-8 text ({exc.reason})") from exc
    return text.removesuffix("\n").removesuffix("\r")
