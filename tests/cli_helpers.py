"""Running a command in this process, as main(ARGS) (quicker than a subprocess per case),
and the rule for what bad input prints."""

import contextlib
import io
from types import SimpleNamespace
from unittest import mock

from explorer.app import main

TINY = ("--preset", "tiny")  # the tests' model: a seeded random tiny GPT


def run_cli(*args: str, cwd=None, stdin: str | None = None) -> SimpleNamespace:
    """main(ARGS) in this process (quicker than a subprocess per case), from the folder
    `cwd`, with its stdout, stderr and exit status."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        if stdin is not None:
            stack.enter_context(mock.patch("sys.stdin", io.StringIO(stdin)))
        try:
            status = main(list(args))
        except SystemExit as exit_:
            status = exit_.code
    return SimpleNamespace(returncode=status, stdout=out.getvalue(), stderr=err.getvalue())


def assert_one_error_line(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""
