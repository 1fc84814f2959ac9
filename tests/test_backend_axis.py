"""The backend axis: every backend's variants in the same rounds of a configuration, on the CPU reference
mirroring FA3 (`reference`) and FA4 (`reference@fa4`); resume, report and compare read the axis."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.results.records import Record, Timings
from bench.results.stats import Stat
from bench.run.runstate import load_run
from bench.run.sweep import run_sweep
from bench.spec.errors import UserError
from bench.spec.grid import GridFlags, Suite, TimingOptions, check_backends, load_suite
from bench.spec.names import split_backend
from bench.harness.target import Target, backend_for_kernel, resolve_run_target, resolve_target
from plots.backends import side_by_side
from plots.compare import compare_records, coverage, setup_differences
from plots.report import build_report

TWO = ("reference", "reference@fa4")
VARIANTS = ("zeros_always", "guarded_passthrough", "fa4_single_pass_sparse", "auto")
PEERS = ("fa3_bidir_bound", "fa4_bidir_bound")
FAST = TimingOptions(warmup=0, min_reps=3, max_reps=4, target_rel_ci=0.5, time_cap_s=0.3, phase_reps=1)


def tiny(backends=TWO, **extra) -> Suite:
    axes = {"variants": VARIANTS, "peers": PEERS, "distributions": ("sft_long_prompt", "no_causal"), **extra}
    return Suite(name="axis", tokens=(128,), heads=(1,), head_dims=(16,), dtypes=("float32",), context=64,
                 backends=backends, device="cpu", timing=FAST, **axes)


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def two_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("axis") / "two"
    suite = tiny()
    run_sweep(suite, out, resolve_run_target(suite.backends, "cpu"), isolation="none")
    return out


def test_the_plan_names_each_backend_after_the_first():
    suite = tiny()
    assert suite.implementations() == [*VARIANTS, *(f"{v} [reference@fa4]" for v in VARIANTS), *PEERS]
    assert tiny(backends=("reference",)).implementations() == [*VARIANTS, *PEERS]   # one backend: as before
    assert split_backend("auto [reference@fa4]") == ("auto", "reference@fa4")
    assert split_backend("block:auto") == ("block:auto", None)


def test_two_backends_are_measured_in_the_same_rounds(two_run):
    records = read(two_run / "results.jsonl")
    assert len(records) == 2 * (2 * len(VARIANTS) + len(PEERS))
    by = {(r["distribution"], r["variant"]): r for r in records}
    for dist in ("sft_long_prompt", "no_causal"):
        for v in VARIANTS:
            first, other = by[dist, v], by[dist, f"{v} [reference@fa4]"]
            assert (first["backend"], other["backend"]) == TWO
            assert first["status"] == other["status"] == "ok"
            # one set of rounds: the same count, and every sample list as long as the other's
            assert first["repetitions"] == other["repetitions"]
            assert len(first["samples_ms"]["backward"]) == len(other["samples_ms"]["backward"])
            assert first["backend_version"] == {"package": "torch", "version": first["backend_version"]["version"],
                                                "mirrors": "fa3"}
            assert other["backend_version"]["mirrors"] == "fa4"
        # each bound runs on the backend that mirrors its kernel
        assert by[dist, "fa3_bidir_bound"]["backend"] == "reference"
        assert by[dist, "fa4_bidir_bound"]["backend"] == "reference@fa4"
    env = json.loads((two_run / "env.json").read_text())
    assert env["backends"] == list(TWO)
    assert env["reference"]["mirrors"] == "fa3" and env["reference@fa4"]["mirrors"] == "fa4"
    assert load_run(two_run).backends == TWO


def test_a_one_backend_run_keeps_its_names(tmp_path):
    suite = tiny(backends=("reference",), peers=("fa3_bidir_bound",), distributions=("sft_long_prompt",))
    run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), isolation="none")
    records = read(tmp_path / "results.jsonl")
    assert [r["variant"] for r in records] == [*VARIANTS, "fa3_bidir_bound"]
    assert {r["backend"] for r in records} == {"reference"}
    assert all(r["backend_version"]["package"] == "torch" for r in records)
    assert "backends" not in json.loads((tmp_path / "env.json").read_text())
    build_report([tmp_path], tmp_path / "report")
    assert "Backends side by side" not in (tmp_path / "report" / "report.md").read_text()


def test_resume_measures_only_the_configuration_a_backend_lacks(two_run, tmp_path):
    out = tmp_path / "copy"
    out.mkdir()
    for f in ("results.jsonl", "run.json"):
        (out / f).write_text((two_run / f).read_text())
    suite = tiny()
    target = resolve_run_target(suite.backends, "cpu")
    again = run_sweep(suite, out, target, resume=True, isolation="none")
    assert again.records == [] and again.skipped_configs == 2
    kept = [r for r in read(out / "results.jsonl")
            if not (r["distribution"] == "no_causal" and r["variant"] == "auto [reference@fa4]")]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    again = run_sweep(suite, out, target, resume=True, isolation="none")
    assert again.skipped_configs == 1 and {r.distribution for r in again.records} == {"no_causal"}
    final = read(out / "results.jsonl")
    keys = [(r["config_id"], r["variant"]) for r in final]
    assert len(keys) == len(set(keys)) == len(read(two_run / "results.jsonl"))
    with pytest.raises(UserError, match="--backend"):          # another axis is another grid
        run_sweep(tiny(backends=("reference",)), out, resolve_target("reference", "cpu"), resume=True,
                  isolation="none")


def test_the_report_puts_the_backends_side_by_side(two_run, tmp_path):
    build_report([two_run], tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Backends side by side: reference vs reference@fa4" in md
    table = md.split("## Backends side by side")[1].split("\n## ")[0]
    for v in VARIANTS:
        assert f"| {v} |" in table
    assert "| fa4_single_pass_sparse [reference@fa4] |" in table and "| auto |" in table   # single vs auto
    assert "zeros_always [reference@fa4] ms" not in md          # the verdict reads the first backend only


def _rec(variant: str, backend: str, fwd: list[float], bwd: list[float]) -> Record:
    tot = sorted(a + b for a, b in zip(fwd, bwd))
    mid = tot[len(tot) // 2]
    stat = Stat(mid, tot[0], tot[-1], len(tot))
    return Record(config_id="sft_long_prompt/t128/h1/d16/float32/ctx64/s0", variant=variant,
                  distribution="sft_long_prompt", tokens=128, status="ok", heads=1, head_dim=16, dtype="float32",
                  seed=0, context=64, backend=backend, timing_mode="eager", samples_ms={"forward": fwd, "backward": bwd},
                  timings_ms=Timings(stat, stat, clocks={"eager": {"fwd_bwd": stat}}))


def test_side_by_side_status_is_paired_and_never_a_saving_in_the_noise():
    rounds = [1.0 + 0.01 * (i % 5) for i in range(24)]
    fa3 = _rec("zeros_always", "fa3", rounds, rounds)
    faster = _rec("zeros_always [fa4]", "fa4", [0.5 * x for x in rounds], [0.5 * x for x in rounds])
    [pair] = side_by_side([fa3, faster])
    assert pair.delta.status() == "faster" and pair.ratio().median == pytest.approx(0.5, abs=0.02)
    noisy = _rec("zeros_always [fa4]", "fa4", [x * (1.3 if i % 2 else 0.7) for i, x in enumerate(rounds)], rounds)
    [pair] = side_by_side([fa3, noisy])
    assert pair.delta.status() == "same" and pair.ratio().lo < 1 < pair.ratio().hi


def test_compare_pairs_records_by_backend():
    rounds = [1.0] * 12
    axis = [_rec("zeros_always", "fa3", rounds, rounds), _rec("zeros_always [fa4]", "fa4", rounds, rounds)]
    fa4_alone = [_rec("zeros_always", "fa4", rounds, [2.0] * 12)]
    rows = compare_records(axis, fa4_alone)
    assert [(r.variant, r.verdict) for r in rows] == [("zeros_always [fa4]", "slower")]
    assert coverage(axis, fa4_alone).impls_base_only == [(axis[0].config_id, "zeros_always")]
    assert setup_differences(axis, fa4_alone) == []                         # they share fa4
    assert setup_differences([axis[0]], fa4_alone) == ["backend: fa3 -> fa4"]


def test_bad_axes_are_one_line():
    for axis, message in ((("auto", "fa4"), "auto picks one backend"), (("fa3", "fa3"), "named twice"),
                          ((), "empty backend axis")):
        with pytest.raises(UserError, match=message):
            check_backends(axis)
    with pytest.raises(UserError, match="needs --device cuda"):
        resolve_run_target(("reference", "fa4"), "cpu")


def test_a_suite_and_flags_give_the_axis(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[axes]\nvariant = ["auto"]\n[run]\nbackend = ["fa3", "fa4"]\n')
    assert load_suite(str(path)).backends == ("fa3", "fa4")
    assert load_suite("smoke").backends == ("reference",)
    assert load_suite("backends").backends == ("fa3", "fa4")
    assert load_suite("smoke").with_flags(GridFlags(backends=TWO)).backends == TWO
    assert load_suite("smoke").with_overrides(backend="reference@fa4").backends == ("reference@fa4",)


def test_a_bound_runs_where_its_kernel_is():
    reference = Target("reference", "cpu")
    assert backend_for_kernel("fa4", reference) == "reference@fa4"
    assert backend_for_kernel("fa3", reference) == "reference"
    assert backend_for_kernel("fa4", Target("fa3", "cuda")) == "fa4"      # skipped there when FA4 is absent
    assert backend_for_kernel("fa3", Target("fa3", "cuda", ("fa4",))) == "fa3"


def test_a_bound_without_its_kernel_is_skipped_with_the_reason():
    from prefixlm_attn.backends import get_backend
    if get_backend("fa4").available():
        pytest.skip("FA4 runs here")
    from bench.harness.peers.base import PeerUnsupported
    from bench.harness.peers.bounds import prepare_bidir_bound
    from bench.harness.workloads import build_workload, packed_batch
    config = tiny().configs()[0]
    w = build_workload(config, "cpu", packed_batch(config))
    with pytest.raises(PeerUnsupported, match="^fa4: "):
        prepare_bidir_bound(w, "fa4")


def test_the_cli_takes_the_axis(tmp_path):
    from typer.testing import CliRunner
    from cli import app
    result = CliRunner().invoke(app, ["sweep", "--out", str(tmp_path / "o"), "--suite", "smoke", "--dry-run",
                                      "--backend", "reference", "--backend", "reference@fa4"])
    assert result.exit_code == 0, result.output
    assert "backend=reference,reference@fa4" in result.output and "zeros_always [reference@fa4]" in result.output


def test_single_pass_names_are_the_backends_own():
    from bench.spec.names import SINGLE_PASS_VARIANTS
    from prefixlm_attn.backends import get_backend
    assert set(SINGLE_PASS_VARIANTS) == set(get_backend("reference@fa4").single_pass_variants)


def test_the_sweep_summary_shows_the_backends_side_by_side(two_run):
    from bench.results.io import read_records
    from plots.terminal import sweep_summary
    text = sweep_summary([Record.from_json(r) for r in read_records([two_run / "results.jsonl"])])
    assert "Backends side by side" in text and "auto [reference@fa4] ms" not in text


def test_a_grid_saved_before_the_axis_resumes(tmp_path):
    from bench.run.runstate import suite_from_json, suite_to_json
    old = suite_to_json(tiny(backends=("reference",)))
    old["backend"] = old.pop("backends")[0]                 # run.json as written before the axis
    assert suite_from_json(old, "run.json").backends == ("reference",)
    assert suite_from_json(suite_to_json(tiny()), "run.json").backends == TWO
