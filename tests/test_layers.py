"""The layout's rules, read from the source: which folders may import Qt or a widget, and no
module reaching into another module's private names."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph")
WIDGETS = ("PySide6.QtWidgets", "pyqtgraph", "explorer.ui")

# folder -> import prefixes its modules must never name
RULES = {
    "gpt_core": (*QT, "explorer"),
    "explorer/state": (*QT, "explorer.session", "explorer.ui", "explorer.commands"),
    "explorer/commands": (*WIDGETS, "explorer.session"),
    "explorer/export": (*WIDGETS, "explorer.session", "explorer.commands"),
    "explorer/session": (*WIDGETS, "explorer.commands"),
}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import, relative ones resolved."""
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = node.module or ""
            if node.level:
                module = ".".join([*base, module] if module else base)
            found.append((module, [alias.name for alias in node.names]))
    return found


def _names(prefix: str) -> tuple[str, ...]:
    return (prefix, prefix + ".")


def _sources(*folders: str) -> list[pathlib.Path]:
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]


@pytest.mark.parametrize("folder", sorted(RULES))
def test_a_folder_imports_only_what_its_role_allows(folder):
    offenders = []
    for path in _sources(folder):
        for module, names in _imports(path):
            full = [module, *(f"{module}.{name}" for name in names)]
            bad = [p for p in RULES[folder] if any(m.startswith(_names(p)) for m in full)]
            offenders += [f"{path.relative_to(ROOT)}: {module} ({', '.join(bad)})" for _ in bad]
    assert not offenders, "\n".join(offenders)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_imports_another_modules_private_names():
    """A private module (`_hooks`) is imported only from its own package; a private name
    (`_apply`) only from its own module."""
    offenders = []
    for path in _sources("gpt_core", "explorer", "benchmarks"):
        me = _module_name(path)
        for module, names in _imports(path):
            parts = module.split(".")
            owner = ".".join(parts[: next(i for i, p in enumerate(parts + ["_"]) if _private(p))])
            if owner != module and me != owner and not me.startswith(owner + "."):
                offenders.append(f"{me} imports {module}")
            offenders += [f"{me} imports {module}.{n}" for n in names if _private(n)]
    assert not offenders, "\n".join(offenders)


def test_no_module_calls_another_objects_private_attributes():
    """`session._apply(...)` from a job module is a reach-in: only `self` and `cls` may touch
    underscore names (torch's own `_foreach_*` kernels excepted)."""
    offenders = []
    for path in _sources("gpt_core", "explorer"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls", "torch", "os"):
                continue
            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "\n".join(offenders)


def test_modules_stay_under_400_lines():
    long = [
        f"{path.relative_to(ROOT)}: {n}"
        for path in _sources("gpt_core", "explorer", "benchmarks", "tests")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400
    ]
    assert long == []


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        ("gpt_core, gpt_core.probe, gpt_core.analysis, gpt_core.util.files", QT),
        ("explorer.state.app_state, explorer.state.analysis", QT),
        ("explorer.commands.parser, explorer.export.render, explorer.export.patching", WIDGETS),
    ],
)
def test_importing_a_headless_layer_loads_no_qt_widgets(modules, forbidden):
    code = (
        f"import sys, {modules}; "
        f"bad = [m for m in sys.modules if m.startswith({forbidden!r})]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
