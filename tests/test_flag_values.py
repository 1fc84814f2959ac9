"""Every bad flag value is one line on stderr that names the value, and exit 2 (never typer's usage box)."""
from __future__ import annotations

import pytest

from tests.cli_run import assert_one_error_line, cli_in_process


@pytest.mark.parametrize("args, shown", [
    (["sweep", "--dry-run", "--tokens", "1e12"], "--tokens '1e12'"),
    (["sweep", "--dry-run", "--tokens", "1e400"], "--tokens '1e400'"),
    (["sweep", "--dry-run", "--tokens", "nan"], "--tokens 'nan'"),
    (["sweep", "--dry-run", "--tokens", "abc"], "--tokens 'abc'"),
    (["sweep", "--dry-run", "--seed", "1e3"], "--seed '1e3'"),
    (["sweep", "--dry-run", "--heads", "2.5"], "--heads '2.5'"),
    (["sweep", "--dry-run", "--time-cap", "abc"], "--time-cap 'abc'"),
    (["validate", "--out", "x", "--head-dim", "0"], "--head-dim '0'"),
    (["validate", "--out", "x", "--seed", "1e3"], "--seed '1e3'"),
    (["profile", "--out", "x", "--reps", "five"], "--reps 'five'"),
    (["compare", "a", "b", "--threshold", "x"], "--threshold 'x'"),
])
def test_a_value_of_the_wrong_type_is_one_line_naming_it(args, shown):
    code, out, err = cli_in_process(*args)
    assert_one_error_line(code, err, shown, f"see prefixbench {args[0]} --help")
    assert out == ""


@pytest.mark.parametrize("args, shown", [
    (["report", "somewhere"], "Missing option '--out'"),
    (["sweep", "--bogus"], "No such option: --bogus"),
    (["sweep", "--out"], "requires an argument"),
])
def test_usage_errors_are_one_line(args, shown):
    code, _, err = cli_in_process(*args)
    assert_one_error_line(code, err, shown)


@pytest.mark.parametrize("command", [["sweep", "--dry-run"], ["validate"], ["report", "d"], ["profile"],
                                     ["review"], ["doctor"]])
@pytest.mark.parametrize("empty", ["", " "])
def test_an_empty_out_is_refused(command, empty, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli_in_process(*command, "--out", empty)
    assert_one_error_line(code, err, f"--out {empty!r}: an empty path")
    assert list(tmp_path.iterdir()) == []                  # nothing written into the current directory
