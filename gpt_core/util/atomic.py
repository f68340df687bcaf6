"""Atomic file writes: a file appears complete or not at all, so nothing is half-written
over a good file when a write fails."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, error: type[Exception]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; once the body succeeds it replaces `path`.
    Any OSError (missing folder, no permission, disk full) is raised as `error`.
    The file gets the mode an ordinary write would give it: an existing file's mode, else
    0666 less the umask (a temporary file alone would be 0600)."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise error(f"cannot write {path}: the folder {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".part", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise error(f"cannot write in {path.parent}: {exc.strerror or exc}") from exc
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except OSError as exc:
        raise error(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, error: type[Exception]) -> Path:
    """`data` as the whole of `path`, atomically; a failed write keeps the old file."""
    with atomic_path(path, error) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return Path(path)


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask. Linux reports it in /proc; elsewhere it is read by setting it,
    which is not atomic across threads, so that is only the fallback."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
