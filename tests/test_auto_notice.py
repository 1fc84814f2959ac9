"""`--backend auto` says which kernel backend it picked on CUDA and why it passed each earlier one over."""
from bench.harness import target as target_mod
from bench.harness.target import Target, auto_notice


def test_auto_on_cuda_names_the_pick_and_the_reasons(monkeypatch):
    monkeypatch.setattr(target_mod, "auto_report", lambda: ["fa3: not used (flash_attn_3 is not installed)",
                                                            "fa4: picked"])
    line = auto_notice(("auto",), Target("fa4", "cuda"))
    assert line == "prefixbench: --backend auto: fa3: not used (flash_attn_3 is not installed); fa4: picked"


def test_a_named_backend_or_the_cpu_says_nothing():
    assert auto_notice(("fa3",), Target("fa3", "cuda")) is None
    assert auto_notice("auto", Target("reference", "cpu")) is None
