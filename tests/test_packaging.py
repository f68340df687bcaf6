"""The project installs as a wheel that works from any directory: the tokenizer's files
ship inside it, and the gpt-explorer entry point runs the headless commands."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_for_the_wheel():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(folder.relative_to(ROOT).parts)
        for top in ("gpt_core", "explorer")
        for folder in [ROOT / top, *(ROOT / top).rglob("*")]
        if folder.is_dir() and any(folder.glob("*.py"))
    }
    assert found | {"gpt_core.resources"} == listed


def test_the_wheel_runs_from_another_folder(tmp_path):
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("gpt_explorer-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    # The installed copy, not this checkout; torch and the rest from this environment.
    env = {k: v for k, v in os.environ.items() if k != "GPT_EXPLORER_RESOURCES"}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run(
        [sys.executable, "-c", "import gpt_core.model.tokenizer as t; print(t.resources_dir())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()) == site / "gpt_core" / "resources"
    out = elsewhere / "hello.npz"
    command = [str(site / "bin" / "gpt-explorer"), "trace", "--preset", "tiny", "--device", "cpu"]
    result = subprocess.run(
        [*command, "--prompt", "Hello, world", "--out", str(out)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with np.load(out) as trace:
        assert trace["tokens/ids"].tolist() == [15496, 11, 995]
