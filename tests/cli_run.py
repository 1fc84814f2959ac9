"""Run the command line in this process (as `prefixbench` would, through `cli.run`): exit code, stdout, stderr."""
from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import cli


def cli_in_process(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.run(list(args))
    return code, out.getvalue(), err.getvalue()


def assert_one_error_line(code: int, err: str, *texts: str) -> str:
    """Exit 2 and exactly one `prefixbench: error:` line, the last on stderr, holding every text."""
    assert code == 2, err
    assert "Traceback" not in err and "╭" not in err, err
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("prefixbench: error:")]
    assert len(errors) == 1 and errors[0] == lines[-1], err
    for text in texts:
        assert text in errors[0], err
    return errors[0]
