"""Tokens, from text: the cost of the BPE walk (gpt_core.model.bpe) and of the Tokens view —
a 1,000-token prompt walked with no piece cached, the view drawn for it, another piece
opened, and a 200-character piece (a 200-digit number) opened and painted.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_tokens.py   # or xvfb-run -a

Times run from the change (a section or position selected) to the end of a synchronous
repaint of the window.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIGITS = "3141592653" * 20  # one pre-tokenizer piece of 200 digits (201 with its space)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("GPT_EXPLORER_SETTINGS", str(ROOT / ".bench-settings.ini"))

    import torch
    from PySide6.QtWidgets import QApplication

    from benchmarks.bench_attention_view import window_with_prompt
    from gpt_core.model import bpe

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    bpe.merge_ranks(), bpe.encoder()
    print(f"vocab.bpe and encoder.json read: {(time.perf_counter() - start) * 1000:.0f} ms")
    app = QApplication.instance() or QApplication([])
    window, session = window_with_prompt(app, 8)
    text = varied_text(args.tokens)
    _run(app, window, session, text)
    walks = []
    for _ in range(args.repeats):
        _forget(bpe)
        start = time.perf_counter()
        walked = bpe.walk(text)
        walks.append(time.perf_counter() - start)
    print(
        f"walk of a {len(walked.ids):,}-token prompt ({len(walked.pieces):,} pieces), no piece "
        f"cached: median {statistics.median(walks) * 1000:.1f} ms"
    )
    _forget(bpe)
    first = _timed(window, lambda: session.select_section(0))
    print(f"Tokens view drawn for it (the walk included): {first * 1000:.0f} ms")
    opened = [
        _timed(window, lambda p=p: session.select_position(p))
        for p in range(3, 3 + 20 * args.repeats, 20)
    ]
    print(f"another piece opened: median {statistics.median(opened) * 1000:.1f} ms")
    print(f"200-digit piece opened: median {_long_piece(app, window, session, args, bpe):.1f} ms")
    window.close()
    Path(os.environ["GPT_EXPLORER_SETTINGS"]).unlink(missing_ok=True)


def varied_text(n_tokens: int) -> str:
    """The README's first n_tokens tokens: prose, code, numbers, punctuation, few repeats."""
    from gpt_core import get_tokenizer

    tokenizer = get_tokenizer()
    return tokenizer.decode(tokenizer.encode((ROOT / "README.md").read_text())[:n_tokens])


def _run(app, window, session, text: str) -> None:
    from benchmarks.bench_gui import wait

    window.prompt.set_text(text)
    session.run()
    wait(app, lambda: session.state.ran_text == text and not session.runner.is_busy())


def _long_piece(app, window, session, args, bpe) -> float:
    """Median milliseconds to open and paint the 200-digit piece, its walk not cached."""
    _run(app, window, session, f"pi is {DIGITS} and more")
    times = []
    for _ in range(args.repeats):
        session.select_position(0)
        window.repaint()
        _forget(bpe)
        times.append(_timed(window, lambda: session.select_position(3)))
    return statistics.median(times) * 1000


def _timed(window, change) -> float:
    start = time.perf_counter()
    change()
    window.repaint()
    return time.perf_counter() - start


def _forget(bpe) -> None:
    """Drop the walks and pieces kept, not the tables."""
    bpe.walk.cache_clear()
    bpe.walk_piece.cache_clear()
    bpe.symbol_display.cache_clear()


if __name__ == "__main__":
    main()
