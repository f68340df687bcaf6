"""Before the window opens: can Qt's platform plugin start here? Qt's own message for a
missing system library ("Could not load the Qt platform plugin "xcb" … Reinstalling the
application may fix this problem") names neither the library nor the fix; this does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def xcb_plugin() -> Path:
    import PySide6

    return Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"


def missing_libraries(plugin: Path) -> list[str]:
    """The shared libraries the plugin needs that the system lacks (by ldd)."""
    if not plugin.exists() or shutil.which("ldd") is None:
        return []
    out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=30).stdout
    return parse_ldd(out)


def parse_ldd(out: str) -> list[str]:
    return sorted({line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line})


def debian_package(library: str) -> str:
    """libxcb-icccm.so.4 -> libxcb-icccm4, libxkbcommon-x11.so.0 -> libxkbcommon-x11-0."""
    name, _, version = library.partition(".so.")
    name = name.lower()
    return f"{name}-{version}" if name[-1:].isdigit() else f"{name}{version}"


def platform_problem() -> str | None:
    """What stops the window from opening here, said so a person can fix it; None if
    nothing visible does (or the platform is not X11)."""
    if not sys.platform.startswith("linux"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None  # offscreen, wayland, …: Qt's own checks apply
    if not platform and os.environ.get("WAYLAND_DISPLAY"):
        return None
    if not os.environ.get("DISPLAY"):
        return (
            "there is no display to open the window on (DISPLAY is not set). Run it in a "
            "desktop session, over ssh -X, or under Xvfb; the headless commands (export, "
            "trace, patch) need no display"
        )
    missing = missing_libraries(xcb_plugin())
    if not missing:
        return None
    packages = " ".join(debian_package(lib) for lib in missing)
    return (
        f"Qt cannot open a window: its X11 (xcb) plugin needs {', '.join(missing)}, which "
        f"this system lacks. On Debian or Ubuntu: sudo apt-get install -y {packages}. "
        "Elsewhere, install your distribution's packages that provide these libraries "
        f"(`ldd {xcb_plugin()}` lists what the plugin needs)."
    )
