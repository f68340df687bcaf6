"""Whatever bad input a command gets, it exits 0 or 2, says at most one `error:` line and
never prints a traceback: a property over every command and a table of the hostile inputs
the issues reported (one drawn per example, each command with its own options)."""

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.commands.parser import COMMANDS
from gpt_core import GPTConfig, save_model
from gpt_core.weights import random_model
from tests.cli_helpers import TINY, run_cli
from tests.sae_helpers import make_sae

PROMPT = "The cat sat on the"
CLEAN = "When Mary and John went, John gave it to"
CORRUPTED = "When Mary and John went, Mary gave it to"

# A run each command completes; {out} names nothing yet, {folder} is a folder and {file} a
# file that exist, {small_vocab} a model of 1,000 token ids (the prompts' tokens are past them),
# {sae} an SAE of the tiny model (96 features) and {sae14} one of a block it does not have,
# {corpus} a text file of some 60 tokens.
VALID = {
    "export": {"--prompt": PROMPT, "--out": "{out}", "--layer": "0", "--head": "0"},
    "trace": {"--prompt": PROMPT, "--out": "{out}.npz"},
    "patch": {"--clean": CLEAN, "--corrupted": CORRUPTED, "--sweep": "resid", "--out": "{out}"},
    "heads": {"--out": "{out}", "--repeat-length": "8"},
    "sublayer-lens": {"--prompt": PROMPT, "--out": "{out}"},
    "lens": {"--prompt": PROMPT, "--out": "{out}"},
    "attribute": {
        "--prompt": PROMPT,
        "--target": " mat",
        "--out": "{out}",
        "--method": "grad_norm",
    },
    "attention": {"--prompt": PROMPT, "--layer": "0", "--head": "0", "--out": "{out}"},
    "sample": {"--prompt": PROMPT, "--out": "{out}", "--top-k": "5", "--top-p": "0.9"},
    "features": {"--prompt": PROMPT, "--sae": "{sae}", "--out": "{out}", "--feature": "3"},
    "features-scan": {
        "--sae": "{sae}",
        "--corpus": "{corpus}",
        "--out": "{out}",
        "--window": "8",
        "--cache": "{folder}/cache",
    },
    "tokenize": {"--text": PROMPT, "--json": None},
}
NO_MODEL = {command.name for command in COMMANDS if not command.model}  # no --preset
PROMPTED = (
    "export",
    "trace",
    "sublayer-lens",
    "lens",
    "attribute",
    "attention",
    "sample",
    "features",
)  # + switches
TOKEN_OPTIONS = {
    "trace": [{"--backward": None, "--target": "{token}"}],
    "patch": [{"--answer": "{token}"}, {"--distractor": "{token}"}],
    "sublayer-lens": [{"--target": "{token}"}],
    "lens": [{"--target": "{token}"}],
    "attribute": [{"--target": "{token}"}, {"--foil": "{token}"}, {"--baseline": "{token}"}],
}
BAD_TOKENS = (
    "",  # empty
    " Mary Ann",  # two tokens
    "#50300",  # the display form of an id past the vocabulary
    "<|endoftext|>",  # the special token
    "\udcff",  # a byte that is no UTF-8, as Python passes it on from argv
    "␣",  # a space in its display form
)
BAD_PROMPTS = ("", " \n\t ", "\u3000", "word " * 80, "\udcff\udcfe", "<|endoftext|>" * 70)
OUT_OF_RANGE = ("9", "-1", "-99", "100000000000000000000")
LAYER_HEAD = [{"--layer": n} for n in OUT_OF_RANGE] + [{"--head": n} for n in OUT_OF_RANGE]
CROPPED = [{"--crop": None, "--prompt": "word " * 80}]
# Each command's own bad inputs, beside those of the options it shares (_bad_inputs).
OWN = {
    "export": LAYER_HEAD + CROPPED + [{"--format": f} for f in ("", "bmp", ",", "png,png")],
    "attention": LAYER_HEAD + CROPPED
    + [{"--query": n} for n in OUT_OF_RANGE] + [{"--key": n} for n in OUT_OF_RANGE],
    "trace": [
        {"--out": "{out}.txt"}, {"--backward": None, "--prompt": "cat"}, {"--train": None},
        {"--dropout-seed": "3"}, {"--backward": None, "--train": None, "--dropout-seed": "-1"},
        {"--backward": None, "--train": None, "--dropout-seed": "x"},
    ],
    "patch": [
        {"--answer": " Mary", "--distractor": " Mary"}, {"--sweep": ""}, {"--method": ""},
        *({"--sweep": s} for s in (",", "resid,resid", "everything")),
        {"--position": "99"}, {"--position": "-99"},
        *({"--receiver": r} for r in ("", "0.0.x", "9.0.q", "1.9.k", "-1.0.q", "logits.q")),
        {"--receiver": "0.0.q", "--sweep": ""}, {"--corrupted": CLEAN + " her"},
        {"--clean": " ", "--corrupted": " "}, {"--corrupted": CLEAN},
    ],
    "heads": [{"--repeat-length": n} for n in ("0", "1", "32", "10000", "-5")]
    + [{"--sequence-seed": "-1"}],
    "tokenize": [
        {"--text": ""}, {"--text": "\udcff\udcfe"}, {"--prompt-file": "{binary}"},
        {"--prompt": PROMPT}, {"--text": "word " * 80, "--preset": "tiny"},
    ],
    "attribute": [
        {"--foil": " mat"}, {"--method": ""}, {"--method": "grad_norm,grad_norm"},
        *({"--method": "integrated_gradients", "--steps": s} for s in ("10" * 6, "0")),
        *({"--position": n} for n in OUT_OF_RANGE),
    ],
    "sample": [
        *({"--temperature": t} for t in ("-1", "-0.01", "nan", "inf", "warm", "")),
        *({"--top-k": k} for k in ("0", "-3", "2.5", "")),
        *({"--top-p": p} for p in ("0", "-0.5", "1.01", "nan", "")),
        *({"--position": n} for n in OUT_OF_RANGE), {"--n": "0"}, {"--n": "-2"},
        {"--seed": "-1"}, {"--weights-seed": "x"},
    ],
    "features": [
        {"--sae": "{folder}"}, {"--sae": "{file}"}, {"--sae": "{sae14}"}, {"--sae": ""},
        {"--sae": "nowhere:"}, {"--sae": "someone/saes:blocks.0.hook_resid_pre"},
        *({"--top": n} for n in ("0", "-1", "x", "1" * 12, "")),
        *({"--feature": f} for f in ("96", "-1", "x", "")),
        *({"--ablate-feature": f} for f in ("96", "-3", "1.5")),
        *({"--steer": s} for s in ("5", "5:x", "5:nan", "96:1", ":1", "5:1e9")),
    ],
    "features-scan": [
        {"--sae": "{folder}"}, {"--sae": "{sae14}"}, {"--sae": ""},
        {"--corpus": "{folder}"}, {"--corpus": "{out}"}, {"--corpus": ""}, {"--corpus": "{sae}"},
        *({"--window": n} for n in ("0", "1", "1025", "x", "", "500")),
        *({"--top": n} for n in ("0", "1001", "-1", "y")), {"--cache": "{file}"},
    ],
}  # fmt: skip


def _bad_inputs(command: str) -> list[dict]:
    """Edits of the command's valid options, each one bad input (None: a flag)."""
    bad = [{"--out": "{file}"}, {"--seed": "18446744073709551616"}, {"--device": "tpu"}]
    bad += [{"--weights": "{small_vocab}"}, {"--weights": "{out}"}, {"--weights": "{file}"}]
    bad += [{"--prompt-file": "{folder}"}, {"--prompt-file": "{out}/missing.txt"}]
    for option in TOKEN_OPTIONS.get(command, []):
        bad += [{k: v if v is None else v.format(token=t) for k, v in option.items()}
                for t in BAD_TOKENS]  # fmt: skip
    if command in PROMPTED:
        bad += [{"--prompt": text} for text in BAD_PROMPTS]
        bad += [{"--ablate": a} for a in ("9.9", "0.9", "-1.0", "", "0.0,0.0", "x")]
        bad += [{"--skip": s} for s in ("9", "-1", ",", "0,0,1,1")]
        bad += [{"--ablation-mode": "median"}]
    return bad + OWN.get(command, [])


def _argv(command: str, edit: dict, folder: Path, small_vocab: Path) -> list[str]:
    options = {**VALID[command], **edit}
    if "--prompt-file" in options:
        options.pop("--prompt", None)
        options.pop("--text", None)
    places = {"out": folder / "out", "folder": folder, "file": folder / "a-file"}
    places["small_vocab"], places["binary"] = small_vocab, folder / "latin-1.txt"
    places["sae"], places["sae14"] = small_vocab.parent / "sae", small_vocab.parent / "sae14"
    places["corpus"] = small_vocab.parent / "corpus.txt"
    model = command not in NO_MODEL and "--weights" not in options
    argv = [command, *TINY] if model else [command]
    for option, value in options.items():
        argv += [option] if value is None else [option, value.format(**places)]
    return argv


@pytest.fixture(scope="module")
def small_vocab(tmp_path_factory) -> Path:
    """A tiny model of 1,000 token ids, as a weights file."""
    config = replace(GPTConfig.preset("tiny"), vocab_size=1000)
    path = tmp_path_factory.mktemp("weights") / "small-vocab.safetensors"
    make_sae(path.parent / "sae", 32, 96, "blocks.1.hook_resid_pre")  # {sae}, {sae14}
    make_sae(path.parent / "sae14", 32, 96, "blocks.14.hook_resid_pre")
    (path.parent / "corpus.txt").write_text(PROMPT + ". " + CLEAN + ". " + CORRUPTED + ".")
    return save_model(random_model(config, seed=0), path)


@st.composite
def bad_runs(draw) -> tuple[str, dict]:
    command = draw(st.sampled_from(sorted(VALID)))
    return command, draw(st.sampled_from(_bad_inputs(command)))


@pytest.mark.usefixtures("qapp")  # the image writers paint text
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad_runs())
def test_every_command_meets_bad_input_with_one_line_at_most(small_vocab, run):
    command, edit = run
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "a-file").write_text("a file, not a folder")
        (Path(folder) / "latin-1.txt").write_bytes("café".encode("latin-1"))
        result = run_cli(*_argv(command, edit, Path(folder), small_vocab))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode in (0, 2), result.stderr
    assert len(errors) <= 1 and "Traceback" not in result.stderr, result.stderr
    if result.returncode == 2:
        assert len(result.stderr.splitlines()) == 1 and errors, result.stderr


def test_each_command_runs_unedited_and_has_bad_inputs(small_vocab):
    assert all(len(_bad_inputs(command)) >= 8 for command in VALID)
    for command in VALID:  # the valid runs really are: what the property edits is one thing
        with tempfile.TemporaryDirectory() as folder:
            result = run_cli(*_argv(command, {}, Path(folder), small_vocab))
        assert result.returncode == 0, f"{command}: {result.stderr}"
