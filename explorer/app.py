"""Entry point: `gpt-explorer` / `python main.py` open the window; a headless command
name first (commands/parser.py lists them) runs without one."""

from __future__ import annotations

import os
import sys

from explorer.commands.options import prompt_text
from explorer.commands.parser import SUBCOMMANDS, gui_parser, run_headless
from gpt_core.errors import PromptError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        return run_headless(argv)
    args = gui_parser().parse_args(argv)
    if args.prompt_file is not None:  # read as the commands read it, before a window opens
        try:
            args.prompt = prompt_text(args)
        except PromptError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return run_gui(args)


def run_gui(args) -> int:
    from explorer.ui.platform_check import platform_problem

    problem = platform_problem()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from explorer.ui.settings import APPLICATION, ORGANIZATION, open_settings
    from gpt_core import keep_freed_memory

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    pg.setConfigOptions(antialias=True)
    keep_freed_memory()  # runs reuse the last run's pages instead of faulting new ones
    window, session = build_window(args, open_settings())
    window.show()
    code = app.exec()
    if not session.runner.wait(0):
        # A job that cannot stop when asked (loading weights) would hold the process until
        # it ends: the settings are saved, so leave it behind.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def build_window(args, settings):
    """The session and window the command line asks for (the tests build them this way)."""
    from explorer.session.session import Session
    from explorer.ui.main_window import MainWindow
    from explorer.ui.settings import read_choice, read_text
    from gpt_core import ABLATION_MODES
    from gpt_core.util.devices import DEVICE_CHOICES

    session = Session()
    window = MainWindow(session, settings)
    window.restore_settings()
    prompt = args.prompt if args.prompt is not None else read_text(settings, "prompt/text")
    window.prompt.set_text(prompt)
    device = args.device or read_choice(settings, "model/device", DEVICE_CHOICES, "auto")
    session.set_ablation_mode(read_choice(settings, "model/ablation_mode", ABLATION_MODES, "zero"))
    session.start(device, args.weights, args.preset, args.seed, run=args.prompt is not None)
    return window, session
