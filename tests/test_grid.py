"""Suites load, flags override them, and a bad grid is refused before anything runs."""
import pytest

from bench.spec.errors import UserError
from bench.harness.registry import check_suite
from bench.spec.grid import available_suites, load_suite


def test_builtin_suites_load_and_check():
    assert {"smoke", "default", "pr_delta"} <= set(available_suites())
    default = load_suite("default")
    check_suite(default)
    assert len(default.variants) == 9 and len(default.distributions) == 6
    assert default.tokens == (16384, 65536) and default.heads == (16,) and default.head_dims == (128,)
    assert len(default.configs()) == 12


def test_overrides_replace_axes_and_timing():
    s = load_suite("smoke").with_overrides(tokens=[64, 128], variants=["prefix_rows_add"], min_reps=2,
                                           distributions=[], seed=None)
    assert s.tokens == (64, 128) and s.variants == ("prefix_rows_add",) and s.timing.min_reps == 2
    assert len(s.distributions) == 6                      # an empty flag list keeps the suite's axis
    ids = [c.config_id for c in s.configs()]
    assert len(ids) == len(set(ids)) == 12


@pytest.mark.parametrize("override, message", [
    (dict(variants=["nope"]), "unknown variant 'nope'"),
    (dict(distributions=["nope"]), "unknown distribution"),
    (dict(tokens=[0]), "--tokens 0"),
    (dict(dtypes=["int8"]), "--dtype 'int8'"),
    (dict(min_reps=5, max_reps=2), "min_reps"),
    (dict(peers=["nope"]), "unknown peer 'nope'"),
    (dict(tokens=["abc"]), "--tokens abc: must be a positive integer"),
    (dict(context=10), r"--context 10: must be an integer in \[16, "),
    (dict(context="big"), "--context 'big'"),
    (dict(min_reps="3"), "timing option min_reps = '3'"),
    (dict(variants=[3]), "--variant 3: must be a name"),
])
def test_bad_grid_is_one_clear_error(override, message):
    with pytest.raises(UserError, match=message):
        check_suite(load_suite("smoke").with_overrides(**override))


def test_suite_file_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_suite("no-such-suite")
    bad = tmp_path / "bad.toml"
    bad.write_text("[axes]\ncolour = [1]\n")
    with pytest.raises(UserError, match="unknown axis 'colour'"):
        load_suite(str(bad))
    bad.write_text("[axes\n")
    with pytest.raises(UserError, match="invalid TOML"):
        load_suite(str(bad))


def test_suite_tables_must_be_tables(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("axes = 3\n")
    with pytest.raises(UserError, match=r"\[axes\] must be a table"):
        load_suite(str(bad))


def test_pr_delta_suite_keeps_the_pair_side_by_side_and_waits_for_its_delta():
    suite = load_suite("pr_delta")
    assert list(suite.variants) == ["zeros_always", "guarded_passthrough"]
    assert suite.timing.watch_pairs == (("zeros_always", "guarded_passthrough"),)
    assert suite.timing.cap_for(65536) == 40.0 and suite.timing.cap_for(16384) == 20.0
