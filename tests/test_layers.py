"""gpt_core is the Qt-free layer: importing it must not import Qt, and no module names Qt."""

import ast
import pathlib
import subprocess
import sys

GPT_CORE = pathlib.Path(__file__).resolve().parent.parent / "gpt_core"
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "explorer")


def test_no_module_of_gpt_core_imports_qt_or_the_app():
    offenders = []
    for path in GPT_CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_gpt_core_loads_no_qt():
    code = (
        "import sys, gpt_core, gpt_core.probe, gpt_core.analysis, gpt_core.util.files; "
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=GPT_CORE.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr
