"""validate remembers its settings: a resume continues exactly them, and one that would change them is refused
with one line naming the difference (the kept records would pass for measurements they are not)."""
from __future__ import annotations

import json
from pathlib import Path

from bench.run.lock import DirLock
from tests.cli_run import assert_one_error_line, cli_in_process

FAST = ["--backend", "reference", "--device", "cpu", "--random", "0", "--no-probes", "--isolation", "none",
        "--variant", "prefix_rows_add"]


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]


def test_settings_are_saved_and_every_record_stores_heads_and_head_dim(tmp_path):
    code, _, err = cli_in_process("validate", "--out", str(tmp_path), *FAST, "--head-dim", "16", "--heads", "1")
    assert code == 0, err
    saved = json.loads((tmp_path / "validate.json").read_text())
    assert {k: saved[k] for k in ("heads", "head_dim", "dtype", "seed", "backend", "device", "random", "variants")} \
        == {"heads": 1, "head_dim": 16, "dtype": "float32", "seed": 0, "backend": "reference", "device": "cpu",
            "random": 0, "variants": ["prefix_rows_add"]}
    assert len(saved["patterns_sha256"]) == 64
    assert all((r["heads"], r["head_dim"], r["seed"]) == (1, 16, 0) for r in records(tmp_path))


def test_a_resume_that_changes_a_setting_is_refused_naming_it(tmp_path):
    out = tmp_path / "val"
    assert cli_in_process("validate", "--out", str(out), *FAST, "--head-dim", "16")[0] == 0
    lines = (out / "validation.jsonl").read_text().splitlines()
    (out / "validation.jsonl").write_text("\n".join(lines[:5]) + "\n")           # as if interrupted
    saved = (out / "validate.json").read_text()
    code, _, err = cli_in_process("validate", "--out", str(out), *FAST, "--head-dim", "32")    # no --resume
    assert_one_error_line(code, err, "already holds records: pass --resume")
    assert (out / "validate.json").read_text() == saved                          # the settings stay the run's
    for flags, named in ((["--head-dim", "32"], "--head-dim 16 -> 32"), (["--heads", "4"], "--heads 2 -> 4"),
                         (["--dtype", "bfloat16"], "--dtype float32 -> bfloat16"), (["--random", "3"], "--random 0 -> 3"),
                         (["--seed", "7"], "--seed 0 -> 7"), (["--variant", "zeros_always"], "--variant")):
        code, _, err = cli_in_process("validate", "--out", str(out), "--resume", "--isolation", "none", *flags)
        assert_one_error_line(code, err, "holds other settings", named)
    code, _, err = cli_in_process("validate", "--out", str(out), "--resume", "--isolation", "none", "--no-probes")
    assert code == 0, err                                         # no flags: the saved settings, continued
    after = records(out)
    assert len(after) == len(lines) and all(r["head_dim"] == 16 for r in after)
    assert len({r["pattern"] for r in after}) == len(after)


def test_an_edited_patterns_file_is_named_on_resume(tmp_path):
    pats = tmp_path / "p.jsonl"
    pats.write_text('{"name": "mine", "prefix_lens": [3], "causal_lens": [2]}\n')
    out = tmp_path / "val"
    assert cli_in_process("validate", "--out", str(out), *FAST, "--head-dim", "16", "--patterns", str(pats))[0] == 0
    pats.write_text('{"name": "mine", "prefix_lens": [4], "causal_lens": [2]}\n')
    code, _, err = cli_in_process("validate", "--out", str(out), "--resume", "--isolation", "none")
    assert_one_error_line(code, err, "an edited --patterns file")


def test_records_without_saved_settings_are_not_resumed(tmp_path):
    (tmp_path / "validation.jsonl").write_text(json.dumps({"variant": "prefix_rows_add", "pattern": "single_both",
                                                           "outcome": "ok"}) + "\n")
    code, _, err = cli_in_process("validate", "--out", str(tmp_path), "--resume", *FAST)
    assert_one_error_line(code, err, "no saved settings")


def test_a_second_validate_on_one_directory_is_refused(tmp_path):
    with DirLock(tmp_path):
        code, _, err = cli_in_process("validate", "--out", str(tmp_path), *FAST)
    assert_one_error_line(code, err, "is being written by pid", "remove")
    assert not (tmp_path / "validation.jsonl").exists()
