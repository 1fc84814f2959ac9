"""The clocks on the CPU: mode planning and refusal, held rounds with a fake hold, amortized
fallback, interleaving, paired host overhead and the record fields (CUDA parts replaced by fakes)."""
import json
import time

import pytest
import torch

from bench.harness.clocks import interleave
from bench.harness.clocks.interleave import ClockSet, Interleaved, build_clock_set, measure_interleaved
from bench.harness.clocks.plan import CPU_GPU_NOTE, TimingPlan, plan_timing
from bench.harness.clocks.rounds import EagerRounds, HeldRounds, amortized_call
from bench.results.stats import paired_deltas
from bench.harness.timing import round_order
from bench.harness.clocks.summary import host_overhead, paired_difference, timing_fields
from bench.spec.errors import UserError
from bench.spec.grid import Config
from bench.harness.registry import registry
from bench.harness.workloads import build_workload
from bench.results.stats import StoppingRule
from bench.harness.timing import Clock


class FakeHold:
    """Times out like a real hold: the host took longer than the timeout, or the 'device' says so."""
    kind = "fake"

    def __init__(self, timeout_s: float = 0.05, device_timeout: bool = False):
        self.timeout_s, self.device_timeout = timeout_s, device_timeout
        self.engaged = self.released = 0

    def engage(self):
        self.engaged += 1
        self._t = time.perf_counter()

    def release(self):
        self.released += 1
        self._host_s = time.perf_counter() - self._t

    def timed_out(self):
        return self.device_timeout or self._host_s >= self.timeout_s


def _leaf():
    x = torch.ones(4, requires_grad=True)
    (x * 2).backward(torch.ones(4))      # autograd's first backward starts its threads: not in a timed call
    return x, torch.ones(4), lambda: setattr(x, "grad", None)


def test_plan_refuses_gpu_mode_on_cpu_with_the_reason():
    plan = plan_timing(None, "cpu", cuda_graph=True)
    assert plan.mode == "eager" and plan.series == ("eager",)
    assert plan.note.startswith(CPU_GPU_NOTE) and "CUDA graphs need a CUDA device" in plan.note
    assert plan_timing("eager", "cpu").note is None
    assert plan_timing("gpu", "cpu").note == CPU_GPU_NOTE


def test_plan_on_cuda_measures_gpu_and_eager_and_graph_when_asked():
    assert plan_timing(None, "cuda") == TimingPlan("gpu", ("gpu", "eager"))
    assert plan_timing("eager", "cuda", cuda_graph=True) == TimingPlan("eager", ("eager", "graph"))
    demoted = plan_timing("gpu", "cuda", cuda_graph=True).demoted("no Triton")
    assert demoted.mode == "eager" and demoted.series == ("eager", "graph") and "no Triton" in demoted.note
    with pytest.raises(UserError, match="--timing 'wall'"):
        plan_timing("wall", "cuda")


def test_round_order_runs_every_pair_in_both_orders_and_every_place():
    names = ["a", "b", "c", "d"]
    orders = [round_order(names, r) for r in range(2 * len(names))]
    assert all(sorted(o) == names for o in orders)
    assert orders[0] == ["a", "b", "c", "d"] and orders[1] == ["d", "c", "b", "a"] and orders[2] == ["b", "c", "d", "a"]
    for x in names:
        assert sorted(o.index(x) for o in orders) == sorted(list(range(4)) * 2)   # every place, twice
        for y in names:
            if x != y:
                before = [o.index(x) < o.index(y) for o in orders]
                assert all(before[r] != before[r + 1] for r in range(0, len(before), 2))   # opposite in 2k, 2k+1
    assert round_order([], 3) == []


def test_round_order_keeps_watched_pairs_side_by_side_in_both_orders():
    names = ["u", "a", "x", "b", "y"]
    orders = [round_order(names, r, together=[("a", "b")]) for r in range(10)]
    assert all(sorted(o) == sorted(names) for o in orders)
    assert all(abs(o.index("a") - o.index("b")) == 1 for o in orders)          # never split, even at the wrap
    a_first = [o.index("a") < o.index("b") for o in orders]
    assert all(a_first[r] != a_first[r + 1] for r in range(0, 10, 2))
    places = sorted(o.index("u") for o in orders)                               # singletons still visit every place
    assert set(places) >= {0, 4}
    assert round_order(names, 0, together=[("a", "missing")]) == names          # a pair with an absent name: ignored
    assert round_order(["a", "b"], 3, together=[("a", "b"), ("b", "a")]) == ["b", "a"]


def test_paired_deltas_cancel_a_place_effect_that_biases_plain_per_round_differences():
    # a is 0.1 slower than b; the later call of a round is 0.5 slower; round_order puts a second in odd rounds
    names, true_delta, place = ["a", "b"], 0.1, 0.5
    a, b = [], []
    for r in range(40):
        order = round_order(names, r)
        a.append(10.0 + true_delta + place * order.index("a"))
        b.append(10.0 + place * order.index("b"))
    assert paired_deltas(a, b) == pytest.approx([true_delta] * 20)
    assert sorted({round(x - y, 6) for x, y in zip(a, b)}) == [-0.4, 0.6]     # raw rounds: either side
    assert paired_deltas([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]) == [0.5, 1.5, 2.5]  # too few rounds to pair


def test_held_rounds_time_every_call_behind_the_hold():
    x, dout, clear = _leaf()
    hold = FakeHold(timeout_s=5.0)
    held = HeldRounds({"a": lambda: x * 2, "b": lambda: x * 3}, dout, clear, Clock(torch.device("cpu")), lambda: None, hold)
    result = held(0)
    assert set(result) == {"a", "b"} and all(set(r) == {"forward", "backward"} for r in result.values())
    assert all(v >= 0 for r in result.values() for v in r.values())
    assert hold.engaged == hold.released == 2 and held.fallbacks == {}
    assert len(held.enqueue_ms["a"]) == 1


def test_a_synchronizing_call_is_detected_and_timed_amortized():
    x, dout, clear = _leaf()
    counts = {"slow": 0}

    def slow():  # stands in for a call whose enqueue waits for the held stream (.item(), a sync)
        counts["slow"] += 1
        time.sleep(0.06)
        return x * 2

    held = HeldRounds({"fast": lambda: x * 2, "slow": slow}, dout, clear, Clock(torch.device("cpu")),
                      lambda: None, FakeHold(timeout_s=0.05), amortized_reps=3)
    first = held(0)
    assert set(held.fallbacks) == {"slow"} and "synchronizes" in held.fallbacks["slow"]
    assert counts["slow"] == 1 + 2 + 3         # an unheld first call, two timed-out held ones, 3 amortized
    assert first["slow"]["forward"] == pytest.approx(60, rel=0.5)
    held(1)
    assert counts["slow"] == 6 + 3                       # from now on amortized only


def test_one_stall_is_forgiven_two_in_a_row_convict():
    x, dout, clear = _leaf()
    hold = FakeHold(timeout_s=5.0)
    outcomes = iter([True, False])         # the first held call times out (a stall), the retry does not
    hold.timed_out = lambda: next(outcomes)
    held = HeldRounds({"a": lambda: x * 2}, dout, clear, Clock(torch.device("cpu")), lambda: None, hold)
    held(0)
    assert held.fallbacks == {} and hold.engaged == 2


def test_a_device_side_timeout_alone_also_falls_back():
    x, dout, clear = _leaf()
    held = HeldRounds({"a": lambda: x * 2}, dout, clear, Clock(torch.device("cpu")), lambda: None,
                      FakeHold(device_timeout=True), amortized_reps=2)
    held(0)
    assert "a" in held.fallbacks


def test_amortized_call_divides_the_span_by_the_calls():
    x, dout, clear = _leaf()

    def forward():
        time.sleep(0.01)
        return x * 2

    r = amortized_call(forward, dout, clear, Clock(torch.device("cpu")), lambda: None, reps=4)
    assert 9 <= r["forward"] < 30 and r["backward"] < 5


def _fake_round(values):
    def fn(i):
        return {name: {"forward": v + i % 3, "backward": 2 * v} for name, v in values.items()}
    return fn


def test_interleaving_rotates_clocks_and_stops_on_every_series():
    order = []

    def recording(name, values):
        inner = _fake_round(values)

        def fn(i):
            order.append(name)
            return inner(i)
        return fn

    clock_set = ClockSet(TimingPlan("gpu", ("gpu", "eager")),
                         {"gpu": recording("gpu", {"a": 1.0, "b": 2.0}), "eager": recording("eager", {"a": 1.5, "b": 2.5})})
    result = measure_interleaved(clock_set, StoppingRule(5, 8, 0.001, 60.0), warmup=1)
    assert result.rounds == 8 and result.stop_reason == "max_reps"      # forward varies by 0..2: never converges
    assert order[:2] == ["gpu", "eager"] and order[2:4] == ["gpu", "eager"] and order[4:6] == ["eager", "gpu"]
    assert set(result.samples_ms) == {"gpu", "eager"}
    assert len(result.samples_ms["eager"]["b"]["backward"]) == 8


def test_host_overhead_is_paired_by_round():
    gpu = [1.0, 5.0, 2.0, 9.0, 3.0, 7.0, 4.0, 6.0, 8.0, 1.5]          # drift far larger than the overhead
    series = lambda fwd: {"forward": fwd, "backward": [2 * v for v in fwd]}
    result = Interleaved({"gpu": {"a": series(gpu)}, "eager": {"a": series([v + 0.25 for v in gpu])}}, 10, "max_reps", 0.0)
    overhead = host_overhead(result, "a")
    assert overhead["forward"].median == pytest.approx(0.25) and overhead["forward"].lo == pytest.approx(0.25)
    assert overhead["backward"].median == pytest.approx(0.5) and overhead["fwd_bwd"].median == pytest.approx(0.75)
    assert host_overhead(Interleaved({"eager": {"a": series(gpu)}}, 10, "max_reps", 0.0), "a") is None
    with pytest.raises(ValueError, match="unpaired"):
        paired_difference(series(gpu), series(gpu[:5]))


def test_record_fields_with_gpu_fallback_and_a_failed_graph():
    s = {"forward": [1.0, 1.1, 1.2], "backward": [2.0, 2.1, 2.2]}
    clock_set = ClockSet(TimingPlan("gpu", ("gpu", "eager", "graph")), {},
                         {"gpu": {"b": "enqueue took 300 ms ... timed amortized"}, "graph": {"b": "RuntimeError: capture"}})
    result = Interleaved({"gpu": {"a": s, "b": s}, "eager": {"a": s, "b": s}, "graph": {"a": s}}, 3, "max_reps", 0.0)
    a, b = timing_fields(clock_set, result, "a"), timing_fields(clock_set, result, "b")
    assert a["timing_mode"] == "gpu" and a["gpu_method"] == "held" and a["gpu_note"] is None
    assert set(a["timings_ms"]) == {"gpu", "eager", "graph"}
    assert set(a["timings_ms"]["graph"]) == {"forward", "backward", "fwd_bwd"}
    assert a["timings_ms"]["gpu"]["fwd_bwd"]["median"] == pytest.approx(3.2)
    assert b["gpu_method"] == "amortized" and "amortized" in b["gpu_note"]
    assert b["timings_ms"]["graph"] == {"error": "RuntimeError: capture"}
    assert b["host_overhead_ms"]["fwd_bwd"]["median"] == 0


def test_build_clock_set_demotes_gpu_when_no_hold_can_be_built(monkeypatch):
    x, dout, clear = _leaf()
    monkeypatch.setattr(interleave, "build_hold", lambda timeout_s: (None, "no stream hold (ImportError: triton)"))
    clock_set = build_clock_set(plan_timing(None, "cuda"), {"a": lambda: x * 2}, dout, clear,
                                Clock(torch.device("cpu")), lambda: None)
    assert clock_set.plan.mode == "eager" and list(clock_set.rounds) == ["eager"]
    assert "gpu mode unavailable" in clock_set.plan.note and "triton" in clock_set.plan.note


def test_reference_backend_on_cpu_records_eager_with_the_refusal(tmp_path):
    w = build_workload(Config("sft_long_prompt", 512, 2, 16, "float32", context=256), "cpu")
    names = ["guarded_passthrough", "prefix_rows_add"]
    calls = {n: registry()[n].prepare(w, "reference").forward for n in names}
    clock = Clock(w.device)
    clock_set = build_clock_set(plan_timing(None, "cpu"), calls, w.dout, w.clear_grads, clock, lambda: None)
    assert isinstance(clock_set.rounds["eager"], EagerRounds)
    result = measure_interleaved(clock_set, StoppingRule(3, 3, 0.5, 30.0), warmup=1)
    path = tmp_path / "fields.jsonl"
    path.write_text("".join(json.dumps({"impl": n, **timing_fields(clock_set, result, n)}) + "\n" for n in names))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["impl"] for r in records] == names
    for r in records:
        assert r["timing_mode"] == "eager" and r["timing_note"] == CPU_GPU_NOTE
        assert list(r["timings_ms"]) == ["eager"] and r["host_overhead_ms"] is None and "gpu_method" not in r
        assert r["timings_ms"]["eager"]["fwd_bwd"]["n"] == 3 and r["timings_ms"]["eager"]["forward"]["median"] > 0


def test_held_rounds_with_a_fake_hold_run_the_real_op_on_cpu():
    w = build_workload(Config("sft_long_prompt", 512, 2, 16, "float32", context=256), "cpu")
    calls = {n: registry()[n].prepare(w, "reference").forward for n in ("guarded_passthrough", "zeros_always")}
    clock_set = build_clock_set(plan_timing(None, "cuda"), calls, w.dout, w.clear_grads, Clock(w.device),
                                lambda: None, hold=FakeHold(timeout_s=5.0))
    result = measure_interleaved(clock_set, StoppingRule(3, 3, 0.5, 30.0), warmup=1)
    fields = timing_fields(clock_set, result, "zeros_always")
    assert fields["timing_mode"] == "gpu" and fields["gpu_method"] == "held"
    assert set(fields["timings_ms"]) == {"gpu", "eager"} and fields["host_overhead_ms"]["fwd_bwd"]["n"] == 3
    assert w.q.grad is not None          # the calls really ran backward


def test_eager_round_drains_the_queue_before_every_call():
    from bench.harness.timing import timed_round
    log = []

    class RecordingClock:
        def mark(self):
            log.append("mark")
            return float(len(log))

        def sync(self):
            log.append("sync")

        def elapsed_ms(self, a, b):
            return b - a

    x = torch.ones(3, requires_grad=True)
    calls = {n: (lambda: (x * 2).sum()) for n in ("a", "b", "c")}
    timed_round(calls, torch.tensor(1.0), lambda: None, RecordingClock(), lambda: log.append("flush"), 0)
    calls_started = [i for i in range(len(log) - 2) if log[i:i + 2] == ["flush", "sync"]]
    assert len(calls_started) == 3                                   # flush, then drain, before each call
    assert all(log[i + 2] == "mark" for i in calls_started)         # the call's first event right after the drain
    assert log.count("mark") == 9 and log[-1] == "sync"
