"""The screenshot gallery: every section of the stage walk and every tab, before and after
its job has run, at each screen size, on random gpt2-small and on the test suite's
hand-built induction model, as PNGs with an index.html to look through.

    python tools/gallery.py --out DIR [--size 1280x800 ...] [--model gpt2-small ...]

It drives the real window offscreen (no display needed) along the same tour as the layout
audit (tests/window_tour.py), so what the audit checks is what the gallery shows."""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# a prompt whose second half repeats its first: the induction head's stripe shows
INDUCTION_PROMPT = " the cat sat on a mat and the dog ran home" * 2
GPT2_PROMPT = " When Mary and John went to the store, John gave a drink to"
MODELS = ("gpt2-small", "induction")


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"a size is WIDTHxHEIGHT, e.g. 1280x800, not {text!r}")
    return int(match[1]), int(match[2])


def parse_args(argv=None) -> argparse.Namespace:
    from tests.window_tour import SIZES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the PNGs")
    parser.add_argument(
        "--size", type=_size, action="append", help="screen size (repeatable); default: "
        + ", ".join(f"{w}x{h}" for w, h in SIZES)
    )  # fmt: skip
    parser.add_argument("--model", choices=MODELS, action="append", help="default: both")
    args = parser.parse_args(argv)
    args.size = args.size or list(SIZES)
    args.model = args.model or list(MODELS)
    return args


def _settings(model: str, size, folder: Path):
    """The tour's Setting for `model` at `size` (the induction model saved into `folder`)."""
    from gpt_core import GPTConfig, get_tokenizer, save_model
    from tests.induction_model import induction_model
    from tests.window_tour import Setting

    tokenizer = get_tokenizer()
    if model == "gpt2-small":
        ids = tokenizer.encode(GPT2_PROMPT)
        return Setting(size, GPTConfig.preset("gpt2-small"), len(ids), False, GPT2_PROMPT, model)
    ids = tokenizer.encode(INDUCTION_PROMPT)
    path = folder / "hand-built-induction.safetensors"  # the name the window shows
    if not path.exists():
        corrupted = tokenizer.encode(" dog cat")  # the patching pair's changed word
        save_model(induction_model([*ids, *corrupted]), path)
    return Setting(size, str(path), len(ids), False, INDUCTION_PROMPT, model)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def shoot(setting, out: Path) -> list[tuple[str, str]]:
    """(file name, state) of each PNG written for one window: the window as it shows, and
    where the page scrolls, the whole page as scrolling through it would show it."""
    from tests.window_tour import open_window, tour

    window = open_window(setting)
    shots = []
    try:
        for index, state in enumerate(tour(window, setting)):
            name = f"{setting.name}-{index:02d}-{_slug(state)}"
            window.grab().save(str(out / f"{name}.png"))
            shots.append((f"{name}.png", state))
            page = _scrolled_page(window.tabs.currentWidget())
            if page is not None:
                page.grab().save(str(out / f"{name}-page.png"))
                shots.append((f"{name}-page.png", f"{state} (the whole page)"))
    finally:
        window.close()
    return shots


def _scrolled_page(tab):
    """The content of the tab's largest scroll area, if it is taller than the area shows."""
    from PySide6.QtWidgets import QScrollArea

    areas = [a for a in tab.findChildren(QScrollArea) if a.isVisible() and a.widget()]
    if not areas:
        return None
    area = max(areas, key=lambda a: a.width() * a.height())
    return area.widget() if area.widget().height() > area.viewport().height() else None


def write_index(out: Path, pages: dict[str, list[tuple[str, str]]], seconds: float) -> Path:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>GPT Explorer gallery</title>",
        "<style>body{font-family:sans-serif} figure{display:inline-block;margin:6px}"
        "img{width:480px;border:1px solid #ccc} figcaption{font-size:12px}</style>",
        f"<h1>GPT Explorer gallery</h1><p>{sum(map(len, pages.values()))} screenshots in "
        f"{seconds:.0f} s.</p>",
    ]
    for window, shots in pages.items():
        parts.append(f"<h2>{html.escape(window)}</h2>")
        for name, state in shots:
            parts.append(
                f"<figure><a href='{name}'><img src='{name}' loading='lazy'></a>"
                f"<figcaption>{html.escape(state)}</figcaption></figure>"
            )
    index = out / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


def main(argv=None) -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # noqa: F841 (kept alive)
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    pages = {}
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.model:
            for size in args.size:
                setting = _settings(model, size, Path(scratch))
                pages[setting.name] = shoot(setting, args.out)
                print(f"{setting.name}: {len(pages[setting.name])} screenshots", flush=True)
    index = write_index(args.out, pages, time.monotonic() - start)
    print(f"{index} ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
