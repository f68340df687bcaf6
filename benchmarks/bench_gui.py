"""How the window feels: launch to first paint, stage-switch redraws, the 12-head grid,
prompt-to-first-view, toggle-to-updated-view and Backward-to-gradient-view, with gpt2-small
(random weights) on 2 CPU threads. Model latencies are also given as ratios to a plain
forward (or forward + backward) measured in the same run.

    xvfb-run -a python benchmarks/bench_gui.py        # or QT_QPA_PLATFORM=offscreen

Every redraw is timed to the end of a synchronous repaint of the window, so layout and
painting are included, not only the Python that sets the data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_FIRST_PAINT_CHILD = r"""
import sys, time
start = float(sys.argv[1])
sys.argv = sys.argv[:1]
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication
from explorer.app import build_window
from explorer.commands.parser import gui_parser
from explorer.ui.settings import open_settings
app = QApplication([])
window, session = build_window(gui_parser().parse_args([]), open_settings())
class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not hasattr(self, "painted"):
            self.painted = time.time() - start
        return False
spy = FirstPaint()
window.installEventFilter(spy)
window.show()
session.modelChanged.connect(lambda: (print(f"{spy.painted:.3f} {time.time() - start:.3f}"),
                                      app.quit()))
app.exec()
"""


def launch_times(repeats: int) -> tuple[float, float]:
    """Median seconds from starting the process to the first paint and to the model ready."""
    paints, readies = [], []
    env = dict(os.environ, GPT_EXPLORER_SETTINGS=str(ROOT / ".bench-settings.ini"))
    for _ in range(repeats):
        start = time.time()
        out = subprocess.run(
            [sys.executable, "-c", _FIRST_PAINT_CHILD, str(start)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        paint, ready = map(float, out.split()[-2:])
        paints.append(paint)
        readies.append(ready)
    (ROOT / ".bench-settings.ini").unlink(missing_ok=True)
    return statistics.median(paints), statistics.median(readies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--launches", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("GPT_EXPLORER_SETTINGS", str(ROOT / ".bench-settings.ini"))

    paint, ready = launch_times(args.launches)
    print(
        f"launch → first painted window: {paint * 1000:.0f} ms (median of {args.launches}); "
        f"→ gpt2-small ready: {ready * 1000:.0f} ms"
    )

    import torch
    from PySide6.QtWidgets import QApplication

    torch.set_num_threads(args.threads)
    from explorer.app import build_window
    from gpt_core import keep_freed_memory

    keep_freed_memory()  # as the app does at start
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    app = QApplication.instance() or QApplication([])
    window, session = build_window(gui_parser().parse_args(["--device", "cpu"]), open_settings())
    window.resize(1600, 1000)
    window.show()
    wait(app, lambda: session.model is not None and not session.runner.is_busy())
    rows = []
    for T in (32, 128, 512):
        text = prompt_of(session, T)
        window.prompt.set_text(text)
        start = time.perf_counter()
        session.run()
        wait(
            app,
            lambda n=T: (
                session.trace is not None
                and session.trace.n_tokens == n
                and not session.runner.is_busy()
            ),
        )
        window.repaint()
        first_view = time.perf_counter() - start
        stage_switches(app, window, session)  # the first visit of each view builds it
        switches = stage_switches(app, window, session)
        grid = grid_redraws(app, window, session)
        plain, plain_fb = model_baselines(session, T) if T <= 128 else (None, None)
        toggle = backward = None
        if T <= 128:
            toggle = toggle_latency(app, window, session)
            backward = backward_latency(app, window, session)
        rows.append((T, first_view, switches, grid, plain, plain_fb, toggle, backward))
        print(f"T = {T} done", file=sys.stderr)
    window.close()
    Path(os.environ["GPT_EXPLORER_SETTINGS"]).unlink(missing_ok=True)

    print(
        "\n| T | prompt → first view ms | stage switch ms, median (worst kind) | 12-head grid ms "
        "| toggle → view ms (÷ plain fwd) | Backward → gradient view ms (÷ plain fwd+bwd) |"
    )
    print("|---|---|---|---|---|---|")
    for T, first_view, switches, grid, plain, plain_fb, toggle, backward in rows:
        worst_kind, worst = max(
            ((k, statistics.median(v)) for k, v in switches.items()), key=lambda kv: kv[1]
        )
        every = statistics.median([t for v in switches.values() for t in v])
        toggle_text = backward_text = "—"
        if toggle is not None:
            toggle_text = f"{toggle * 1000:.0f} ({toggle / plain:.2f}×)"
            backward_text = f"{backward * 1000:.0f} ({backward / plain_fb:.2f}×)"
        print(
            f"| {T} | {first_view * 1000:.0f} | {every * 1000:.1f} ({worst_kind} "
            f"{worst * 1000:.1f}) | {statistics.median(grid) * 1000:.1f} | {toggle_text} "
            f"| {backward_text} |"
        )


def wait(app, condition, timeout: float = 600.0) -> None:
    """Let the event loop run (idle, as in use: no busy polling that would take a core
    from the model's threads) until `condition()` holds."""
    loop = QEventLoop()
    timer = QTimer(interval=2)
    deadline = time.perf_counter() + timeout

    def check():
        if condition() or time.perf_counter() > deadline:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    if not condition():
        raise TimeoutError("the window did not finish in time")


def prompt_of(session, n_tokens: int) -> str:
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "seven",
        "wizards",
        "judge",
        "it",
    ]
    text, i = "", 0
    while len(session.tokenizer.encode(text)) < n_tokens:
        text += " " + words[i % len(words)]
        i += 1
    ids = session.tokenizer.encode(text)[:n_tokens]
    return session.tokenizer.decode(ids)


def stage_switches(app, window, session) -> dict[str, list[float]]:
    """Seconds per step switch (select + repaint), by kind of view, over every step."""
    times: dict[str, list[float]] = {}
    for index in range(len(session.sections)):
        start = time.perf_counter()
        session.select_section(index)
        window.repaint()
        times.setdefault(session.section.name, []).append(time.perf_counter() - start)
    return times


def grid_redraws(app, window, session, repeats: int = 10) -> list[float]:
    session.select_layer(5)
    view = window.stage_panel.current_view()
    weights = session.trace["blocks/5/attn/weights"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        view.grid.set_layer(weights)
        view.grid.repaint()
        times.append(time.perf_counter() - start)
    return times


def model_baselines(session, T: int, repeats: int = 5) -> tuple[float, float]:
    """Median plain forward and plain forward + backward at this prompt."""
    import torch
    import torch.nn.functional as F

    model = session.model
    x = torch.tensor([session.trace.token_ids.tolist()])
    forward, forward_backward = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            model(x)
        forward.append(time.perf_counter() - start)
        start = time.perf_counter()
        F.cross_entropy(model(x)[0, :-1], x[0, 1:]).backward()
        for p in model.parameters():
            p.grad = None
        forward_backward.append(time.perf_counter() - start)
    return statistics.median(forward), statistics.median(forward_backward)


def toggle_latency(app, window, session, repeats: int = 4) -> float:
    """Switching head 3.5 off (or on) until the attention view shows the new run."""
    session.select_layer(3)
    times = []
    for _ in range(repeats):
        before = session.trace
        start = time.perf_counter()
        session.toggle_head(3, 5)
        wait(app, lambda b=before: session.trace is not b and not session.runner.is_busy())
        window.repaint()
        times.append(time.perf_counter() - start)
    if not session.interventions.is_empty:
        session.restore_all()
        wait(app, lambda: session.result.comparison is None and not session.runner.is_busy())
    return statistics.median(times)


def backward_latency(app, window, session, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        before = session.gradients
        start = time.perf_counter()
        window.actions_by_name["backward"].trigger()
        wait(
            app,
            lambda b=before: (
                session.gradients is not None
                and session.gradients is not b
                and not session.runner.is_busy()
            ),
        )
        window.repaint()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
