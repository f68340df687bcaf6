"""Attention, step by step: how long a click on a cell of the head heatmap takes to the
redrawn steps, at T = 1,024 on gpt2-small (random weights, 2 CPU threads), against the
first draw of the view (which makes the head's scores and weights).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_attention_view.py   # or xvfb-run -a

A click is timed from the mouse press on the heatmap to the end of a synchronous repaint of
the window, so the pair's numbers, the plots, layout and painting are all included.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

from PySide6.QtCore import QPointF, Qt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--clicks", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("GPT_EXPLORER_SETTINGS", str(ROOT / ".bench-settings.ini"))

    import torch
    from PySide6.QtWidgets import QApplication

    torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication([])
    window, session = window_with_prompt(app, args.tokens)
    first_draw, head_change = open_view(app, window, session, layer=5)
    clicks, cpu = time_clicks(window, session, args.clicks)
    window.close()
    Path(os.environ["GPT_EXPLORER_SETTINGS"]).unlink(missing_ok=True)

    median = statistics.median(clicks)
    print(f"T = {session.trace.n_tokens}, gpt2-small (random weights), {args.threads} threads")
    print(f"first draw of the view (the head's scores and weights): {first_draw * 1000:.0f} ms")
    print(f"another head: {head_change * 1000:.0f} ms")
    print(
        f"click on a cell → redrawn steps: median {median * 1000:.1f} ms, worst "
        f"{max(clicks) * 1000:.1f} ms over {len(clicks)} clicks "
        f"({median / first_draw:.2f}× the first draw)"
    )
    print(
        f"  CPU time of the process per click: median {statistics.median(cpu) * 1000:.1f} ms "
        f"(wall time grows with the machine's load: load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores)"
    )


def window_with_prompt(app, n_tokens: int):
    from benchmarks.bench_gui import prompt_of, wait
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    options = gui_parser().parse_args(["--device", "cpu", "--preset", "gpt2-small"])
    window, session = build_window(options, open_settings())
    window.resize(1600, 1000)
    window.show()
    wait(app, lambda: session.model is not None and not session.runner.is_busy())
    window.prompt.set_text(prompt_of(session, n_tokens))
    session.run()
    wait(app, lambda: session.trace is not None and not session.runner.is_busy())
    return window, session


def open_view(app, window, session, layer: int) -> tuple[float, float]:
    """Seconds to the first drawn view, and to another head's."""
    from benchmarks.bench_gui import wait

    index = next(
        i for i, s in enumerate(session.sections) if (s.name, s.layer) == ("attention_steps", layer)
    )
    start = time.perf_counter()
    session.select_section(index)
    window.repaint()
    first_draw = time.perf_counter() - start
    view = window.stage_panel.current_view()
    wait(app, lambda: view.pair is not None and view.pair.attn_out is not None)  # out_proj read
    start = time.perf_counter()
    session.select_head(3)
    window.repaint()
    head_change = time.perf_counter() - start
    wait(app, lambda: not session.runner.is_busy())
    return first_draw, head_change


def time_clicks(window, session, count: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds from a click on a random cell of the lower half to the
    repainted window."""
    from PySide6.QtTest import QTest

    view = window.stage_panel.current_view()
    heatmap, T = view.weights, session.trace.n_tokens
    box = heatmap.plot.getViewBox()
    rng = random.Random(0)
    clicks, cpu = [], []
    for _ in range(count):
        t = rng.randrange(T // 2, T)
        s = rng.randrange(0, t + 1)
        point = heatmap.mapFromScene(box.mapViewToScene(QPointF(s + 0.5, t + 0.5)))
        start, start_cpu = time.perf_counter(), time.process_time()
        QTest.mouseClick(heatmap.viewport(), Qt.MouseButton.LeftButton, pos=point)
        window.repaint()
        clicks.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if view.pair.query != session.position:
            raise RuntimeError("the click did not reach the steps")
    return clicks, cpu


if __name__ == "__main__":
    main()
