"""Atomic file writes: a file appears complete or not at all, so nothing is half-written
over a good file when a write fails."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, error: type[Exception]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; once the body succeeds it replaces `path`.
    Any OSError (missing folder, no permission, disk full) is raised as `error`."""
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
        os.replace(tmp, path)
    except OSError as exc:
        raise error(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
