"""The sweep's timing modes on the CPU: the record fields of every clock round-trip, gpu mode is refused
on the reference backend with the reason, and the stopping rule waits for the mode's samples only."""
import json
import time

import pytest

from bench.harness import measure
from bench.harness.clocks.interleave import ClockSet, measure_interleaved
from bench.harness.clocks.plan import CPU_GPU_NOTE, TimingPlan
from bench.spec.grid import Config, TimingOptions, load_suite
from bench.harness.isolation import Outcome
from bench.harness.record_builder import build_records
from bench.results.records import Record
from bench.harness.registry import registry
from bench.results.stats import StoppingRule
from bench.run.sweep import resolve_target, run_sweep
from bench.harness.workloads import packed_batch

CONFIG = Config("sft_long_prompt", 128, 1, 16, "float32", context=64)
NAMES = ["zeros_always", "guarded_passthrough"]
FAST = TimingOptions(warmup=0, min_reps=3, max_reps=4, time_cap_s=5.0, phase_reps=1)


class FakeHold:
    """A stream hold that never times out (the CPU has no stream to hold)."""
    kind, timeout_s = "fake", 5.0

    def engage(self):
        pass

    def release(self):
        pass

    def timed_out(self):
        return False


def _gpu_plan_on_cpu(monkeypatch):
    """The worker as it runs on CUDA (gpu + eager + graph planned, a hold built), on CPU tensors."""
    monkeypatch.setattr(measure, "plan_timing",
                        lambda mode, device_type, graph=False: TimingPlan("gpu", ("gpu", "eager")))
    monkeypatch.setattr(measure, "_stream_hold", lambda device: (FakeHold(), None))


def _records(measured: dict) -> list[Record]:
    batch = packed_batch(CONFIG)
    probes = {n: Outcome("ok", {"peak_memory": None}) for n in NAMES}
    return build_records(CONFIG, batch, [registry()[n] for n in NAMES], "reference", "cpu", 0, None,
                         probes, Outcome("ok", measured))


def test_gpu_mode_records_carry_every_clock_host_overhead_and_round_trip(monkeypatch):
    _gpu_plan_on_cpu(monkeypatch)
    measured = measure.measure_config(CONFIG, packed_batch(CONFIG), NAMES, "reference", "cpu", FAST)
    assert measured.timing["mode"] == "gpu" and measured.timing["watched"] == ["gpu"]
    for rec in _records(measured):
        assert rec.status == "ok" and rec.timing_mode == "gpu" and rec.gpu_method == "held"
        assert rec.timing_note is None
        t = rec.timings_ms
        assert set(t.clocks) == {"gpu", "eager"} and set(t.clocks["gpu"]) == {"forward", "backward", "fwd_bwd"}
        assert t.forward == t.clocks["gpu"]["forward"] and t.backward == t.clocks["gpu"]["backward"]
        assert set(rec.host_overhead_ms) == {"forward", "backward", "fwd_bwd"}
        assert rec.samples_ms["forward"] == measured.clock_samples_ms["gpu"][rec.variant]["forward"]
        assert rec.samples_ms["eager_backward"] == measured.clock_samples_ms["eager"][rec.variant]["backward"]
        assert len(rec.samples_ms["eager_forward"]) == len(rec.samples_ms["forward"]) == rec.repetitions
        line = json.loads(json.dumps(rec.to_json()))
        assert line["timing_mode"] == "gpu" and "timing_note" in line
        assert line["timings_ms"]["eager"]["fwd_bwd"]["n"] == rec.repetitions
        back = Record.from_json(line)
        assert back.to_json() == line and back.host_overhead_ms == rec.host_overhead_ms
        assert back.stat("eager.fwd_bwd") == t.clocks["eager"]["fwd_bwd"] and back.extra == {}


def _measured(mode_samples: dict, eager: dict, graph: dict | None, notes: dict | None = None) -> dict:
    series = ["gpu", "eager"] + (["graph"] if graph is not None else [])
    by_clock = {"gpu": mode_samples, "eager": eager, **({"graph": graph} if graph is not None else {})}
    return {"samples_ms": mode_samples, "clock_samples_ms": by_clock, "phase_samples_ms": {n: [] for n in NAMES},
            "timing": {"mode": "gpu", "series": series, "note": None, "notes": notes or {}},
            "rounds": 3, "stop_reason": "converged", "gpu_clocks": None,
            "bandwidth": {"fill_gbps": 1.0, "add_gbps": 1.0, "fill_ms": {"median": 1, "lo": 1, "hi": 1},
                          "add_ms": {"median": 1, "lo": 1, "hi": 1}, "kv_bytes": 1}}


def test_pairing_uses_the_mode_and_host_overhead_is_eager_minus_gpu_by_round():
    gpu = {"zeros_always": {"forward": [1.0, 1.0, 1.0], "backward": [2.2, 2.2, 2.2]},
           "guarded_passthrough": {"forward": [1.0, 1.0, 1.0], "backward": [2.0, 2.0, 2.0]}}
    # eager reverses the order (host time hides the GPU saving): the mode, not eager, picks the best
    eager = {"zeros_always": {"forward": [1.5, 1.6, 1.4], "backward": [2.5, 2.5, 2.5]},
             "guarded_passthrough": {"forward": [1.5, 1.6, 1.4], "backward": [2.6, 2.6, 2.6]}}
    graph = {"zeros_always": {"forward": [1.1] * 3, "backward": [2.3] * 3}}
    notes = {"graph": {"guarded_passthrough": "RuntimeError: capture failed"},
             "gpu": {"zeros_always": "enqueue took 300 ms, past the timeout; timed amortized"}}
    by = {r.variant: r for r in _records(_measured(gpu, eager, graph, notes))}
    zeros, passthrough = by["zeros_always"], by["guarded_passthrough"]
    assert zeros.prediction["best_variant"] == "guarded_passthrough"
    assert zeros.timings_ms.extra_vs_best.median == pytest.approx(0.2)
    assert zeros.host_overhead_ms["backward"].median == pytest.approx(0.3)
    assert zeros.host_overhead_ms["forward"].median == pytest.approx(0.5)
    assert zeros.timings_ms.graph_fwd_bwd.median == pytest.approx(3.4)
    assert zeros.samples_ms["graph_backward"] == [2.3] * 3
    assert passthrough.timings_ms.graph_error == "RuntimeError: capture failed"
    assert passthrough.to_json()["timings_ms"]["graph"] == {"error": "RuntimeError: capture failed"}
    assert zeros.gpu_method == "amortized" and "timed amortized" in zeros.timing_note
    assert passthrough.gpu_method == "held" and passthrough.timing_note is None
    again = Record.from_json(json.loads(json.dumps(passthrough.to_json())))
    assert again.timings_ms.clock_errors == {"graph": "RuntimeError: capture failed"}


def test_gpu_mode_is_refused_on_the_cpu_reference_with_the_reason(tmp_path):
    suite = load_suite("smoke").with_overrides(
        distributions=["sft_long_prompt"], variants=NAMES, tokens=[128], heads=[1], head_dims=[16],
        context=64, warmup=0, min_reps=3, max_reps=4, time_cap_s=0.3, phase_reps=1, mode="gpu", cuda_graph=True)
    run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), isolation="none")
    records = [Record.from_json(json.loads(line)) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for rec in records:
        assert rec.status == "ok" and rec.timing_mode == "eager" and rec.gpu_method is None
        assert rec.timing_note.startswith(CPU_GPU_NOTE) and "CUDA graphs need a CUDA device" in rec.timing_note
        assert set(rec.timings_ms.clocks) == {"eager"} and rec.host_overhead_ms is None
        assert set(rec.samples_ms) == {"forward", "backward"}


def test_eager_mode_on_the_cpu_has_no_note(tmp_path):
    suite = load_suite("smoke").with_overrides(
        distributions=["uniform"], variants=["guarded_passthrough"], tokens=[128], heads=[1], head_dims=[16],
        context=64, warmup=0, min_reps=3, max_reps=3, time_cap_s=0.3, phase_reps=0, mode="eager")
    run_sweep(suite, tmp_path, resolve_target("reference", "cpu"), isolation="none")
    (line,) = (tmp_path / "results.jsonl").read_text().splitlines()
    rec = json.loads(line)
    assert rec["timing_mode"] == "eager" and rec["timing_note"] is None


def _series_round(values: dict[str, list[float]]):
    def round_fn(i: int) -> dict:
        return {"a": {"forward": values["a"][i % len(values["a"])], "backward": 1.0}}
    return round_fn


def test_the_stopping_rule_waits_for_the_mode_not_for_eager():
    steady = _series_round({"a": [1.0]})
    noisy = _series_round({"a": [1.0, 3.0, 0.2, 5.0, 0.1]})
    clock_set = ClockSet(TimingPlan("gpu", ("gpu", "eager")), {"gpu": steady, "eager": noisy})
    rule = StoppingRule(min_reps=5, max_reps=40, target_rel_ci=0.01, time_cap_s=60.0)
    watched = measure_interleaved(clock_set, rule, warmup=0, watch=("gpu",))
    assert (watched.stop_reason, watched.rounds) == ("converged", 5)
    assert len(watched.samples_ms["eager"]["a"]["forward"]) == 5      # eager rode along, paired
    every = measure_interleaved(clock_set, rule, warmup=0)
    assert (every.stop_reason, every.rounds) == ("max_reps", 40)


def test_bad_timing_mode_in_a_suite_is_a_user_error(tmp_path):
    from bench.spec.errors import UserError
    from bench.harness.registry import check_suite
    with pytest.raises(UserError, match="--timing 'wall'"):
        check_suite(load_suite("smoke").with_overrides(mode="wall"))
    path = tmp_path / "s.toml"
    path.write_text('[axes]\nvariant = ["guarded_passthrough"]\ndistribution = ["uniform"]\ntokens = [128]\n'
                    '[timing]\nmode = "eager"\n')
    assert load_suite(str(path)).timing.mode == "eager"


def test_compare_across_timing_modes_uses_the_eager_clock_both_runs_have():
    from plots.compare import SAME_NOISE, compare_pair
    stat = {"median": 2.0, "lo": 1.99, "hi": 2.01, "n": 20}
    base = {"config_id": "c", "variant": "v", "distribution": "uniform", "tokens": 128, "status": "ok",
            "timings_ms": {"forward": stat, "backward": stat}}                    # an eager run (no timing_mode)
    gpu_stat = {**stat, "median": 1.8, "lo": 1.79, "hi": 1.81}
    new = {**base, "timing_mode": "gpu", "timings_ms": {"forward": gpu_stat, "backward": gpu_stat,
                                                        "eager": {"backward": stat, "forward": stat}}}
    c = compare_pair(Record.from_json(base), Record.from_json(new), "backward", 1.0)
    assert c.verdict == SAME_NOISE and c.ratio == 1.0 and "compared on eager" in c.detail
    same = compare_pair(Record.from_json(new), Record.from_json(new), "backward", 1.0)
    assert same.base_ms == 1.8 and same.detail == ""
