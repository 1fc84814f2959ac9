"""The gpu clock on a GPU: the spin holds the stream and times out, synchronizing calls are caught,
held fwd+bwd lands on the profiler's kernel sum (eager above it), graph replays of identical work agree."""
import time

import pytest
import torch

from bench.spec.grid import Config
from bench.results.stats import StoppingRule

pytestmark = pytest.mark.gpu

SFT_16K = Config("sft_long_prompt", 16384, 16, 128, "bfloat16")


@pytest.fixture(scope="module")
def backend():
    from bench.run.sweep import resolve_target
    return resolve_target("auto", "cuda").backend


@pytest.fixture(scope="module")
def hold():
    from bench.harness.clocks.hold import FlagSpinHold
    return FlagSpinHold()


def test_the_spin_holds_the_stream_until_released(hold):
    from bench.harness.clocks.hold import held_ms
    assert 25 <= held_ms(hold, 0.03) < 250


def test_the_spin_ends_by_its_timeout_when_never_released():
    from bench.harness.clocks.hold import FlagSpinHold
    short = FlagSpinHold(timeout_s=0.05)
    short.engage()
    start = time.perf_counter()
    torch.cuda.synchronize()
    assert short.timed_out() and time.perf_counter() - start >= 0.04
    short.release()


def test_calls_that_synchronize_fall_back_to_amortized(backend):
    from bench.harness.clocks.crosscheck import detection
    d = detection(Config("sft_long_prompt", 4096, 4, 128, "bfloat16"), backend, timeout_s=0.1, rounds=2)
    assert set(d["fallbacks"]) == {"synchronize", "item"}
    assert all(v > 0 for values in d["fwd_bwd_ms"].values() for v in values)


def test_eager_sits_above_held_time_in_interleaved_rounds(backend, hold):
    # Held rounds against a later, separate profiling pass differ by the clock change between the two
    # passes (-1.3% to +3.6% seen on a power-capped H100); the same-calls test below checks the clock.
    from bench.harness.clocks.crosscheck import held_vs_kernels
    res = held_vs_kernels(SFT_16K, ["guarded_passthrough", "prefix_rows_add"], backend,
                          StoppingRule(20, 100, 0.005, 5.0), hold)
    for row in res["rows"]:
        assert row["gpu_method"] == "held"
        assert row["eager_ms"]["median"] > row["gpu_ms"]["median"], row


def test_graph_replays_of_identical_gpu_work_agree_within_one_percent(backend, hold):
    from bench.harness.clocks.crosscheck import graph_pair
    g = graph_pair(SFT_16K, ["guarded_zero_fill", "guarded_passthrough"], backend, StoppingRule(20, 100, 0.005, 5.0), hold)
    assert not g["errors"]
    assert abs(g["graph_ratio"]["median"] - 1) < 0.01, g


def test_the_same_held_calls_match_their_kernel_sum_within_three_percent(backend, hold):
    from bench.harness.clocks.crosscheck import held_under_profiler
    for row in held_under_profiler(SFT_16K, ["guarded_passthrough", "prefix_rows_add"], backend, hold, reps=10):
        assert row["gpu_method"] == "held"
        assert abs(row["held_vs_kernels"]) < 0.03, row
