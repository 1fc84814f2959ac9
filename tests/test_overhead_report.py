"""The report's clocks block: host overhead per configuration x implementation, the PR delta on both clocks,
and the reason when the records hold no host overhead (CPU reference)."""
from bench.results.records import Record
from plots.overhead import host_overhead_blocks
from plots.render import to_markdown


def _stat(m, lo, hi, n=3):
    return {"median": m, "lo": lo, "hi": hi, "n": n}


def _rec(variant, backward, eager_backward, overhead=None, mode="gpu", note=None, method="held"):
    obj = {"config_id": "sft_long_prompt/t16384/h16/d128/bfloat16/ctx8192/s0", "variant": variant,
           "distribution": "sft_long_prompt", "tokens": 16384, "status": "ok",
           "timings_ms": {"forward": _stat(1, 1, 1), "backward": _stat(2, 2, 2)},
           "timing_mode": mode, "timing_note": note,
           "samples_ms": {"forward": [1.0] * 3, "backward": backward}}
    if overhead is not None:
        obj.update(host_overhead_ms={"fwd_bwd": _stat(*overhead)}, gpu_method=method)
        obj["samples_ms"].update(eager_forward=[1.1] * 3, eager_backward=eager_backward)
    return Record.from_json(obj)


def test_host_overhead_table_and_pr_delta_on_both_clocks(tmp_path):
    records = [_rec("zeros_always", [2.10, 2.11, 2.12], [2.2, 2.5, 2.0], (0.1, 0.05, 0.2)),
               _rec("guarded_passthrough", [2.05, 2.06, 2.07], [2.15, 2.45, 1.95], (0.09, 0.01, 0.3), method="amortized")]
    md = to_markdown(host_overhead_blocks(records), tmp_path)
    assert "## Clocks and host overhead" in md and "GPU time" in md and "launching" in md
    assert "| configuration | zeros_always | guarded_passthrough |" in md
    assert "| sft_long_prompt 16k | 0.100 [0.050, 0.200] | 0.090 [0.010, 0.300] |" in md
    assert "amortized" in md and "guarded_passthrough" in md.split("amortized")[-1]
    assert "| sft_long_prompt 16k | 0.050 [0.050, 0.050] | 0.050 [0.050, 0.050] | 0.000 [0.000, 0.000] | yes |" in md
    assert "zero: 1 of 1 configurations" in md


def test_pr_delta_clocks_disagree_when_their_paired_difference_excludes_zero(tmp_path):
    gpu_a, gpu_b = [2.2, 2.3, 2.2, 2.3, 2.2, 2.3, 2.2, 2.3], [2.0] * 8            # gpu delta 0.2-0.3
    eager_a, eager_b = [2.6, 2.7, 2.6, 2.7, 2.6, 2.7, 2.6, 2.7], [2.5] * 8      # eager delta 0.1-0.2
    records = [_rec("zeros_always", gpu_a, eager_a, (0.4, 0.3, 0.5)), _rec("guarded_passthrough", gpu_b, eager_b, (0.5, 0.4, 0.6))]
    for r in records:
        r.samples_ms["forward"], r.samples_ms["eager_forward"] = [1.0] * 8, [1.1] * 8
    md = to_markdown(host_overhead_blocks(records), tmp_path)
    row = next(line for line in md.splitlines() if line.startswith("| sft_long_prompt 16k | 0.250"))
    assert row.endswith("| 0.250 [0.250, 0.250] | 0.150 [0.150, 0.150] | 0.100 [0.100, 0.100] | no |")
    assert "zero: 0 of 1 configurations" in md


def test_without_host_overhead_the_block_says_why(tmp_path):
    note = "gpu mode needs CUDA: timed eager"
    md = to_markdown(host_overhead_blocks([_rec("guarded_passthrough", [2.0] * 3, None, mode="eager", note=note)]),
                     tmp_path)
    assert "No host overhead in these records: timed eager only (gpu mode needs CUDA: timed eager)." in md
    assert "| configuration |" not in md
