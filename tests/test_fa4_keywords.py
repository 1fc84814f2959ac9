"""Our FA4 calls use keyword names of the installed `flash_attn.cute.interface` entry points (private, so
the version is pinned and this test holds the names). The recording half runs everywhere; the signature
half is skipped when FA4 is not installed."""
from __future__ import annotations

import inspect

import pytest
import torch

from prefixlm_attn.backends.fa4 import BWD_KEYWORDS, FWD_KEYWORDS, PINNED_VERSION, FA4Backend
from prefixlm_attn.single_pass import SinglePassInputs


class RecordingInterface:
    """Stands in for flash_attn.cute.interface: records each call's keywords, refuses positional arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def _flash_attn_fwd(self, *args, **kwargs):
        assert args == (), f"_flash_attn_fwd called with {len(args)} positional arguments"
        self.calls.append(("fwd", kwargs))

    def _flash_attn_bwd(self, *args, **kwargs):
        assert args == (), f"_flash_attn_bwd called with {len(args)} positional arguments"
        self.calls.append(("bwd", kwargs))


def _recorded(monkeypatch) -> list[tuple[str, dict]]:
    import sys
    import types
    if "cutlass" not in sys.modules:      # the mask_mods need the CuTe DSL; stand-ins record as well
        stub = types.SimpleNamespace(varlen_prefixlm=object(), packed_prefixlm=object())
        monkeypatch.setitem(sys.modules, "prefixlm_attn.backends.fa4_mask_mods", stub)
        import prefixlm_attn.backends as backends_pkg
        monkeypatch.setattr(backends_pkg, "fa4_mask_mods", stub, raising=False)
    be, iface = FA4Backend(), RecordingInterface()
    be._iface = iface
    t = torch.zeros(8, 2, 16)
    cu, lens = torch.tensor([0, 8], dtype=torch.int32), torch.tensor([4], dtype=torch.int32)
    two_pass = dict(cu_seqlens_q=cu, cu_seqlens_k=cu, seqused_q=lens, seqused_k=None, max_seqlen_q=4,
                    max_seqlen_k=8, causal=True, softmax_scale=0.25)
    lse = be.forward(t, t, t, t, **two_pass)
    be.backward(t, t, t, t, t, lse, t, t, t, **two_pass)
    masked = SinglePassInputs(form="masked", cu_seqlens=cu, prefix_lens=lens, total=8, max_seqlen=8,
                              softmax_scale=0.25)
    be.single_pass_forward(t, t, t, t, inputs=masked)
    be.single_pass_backward(t, t, t, t, t, lse, t, t, t, inputs=masked)
    return iface.calls


def test_calls_stay_inside_the_declared_keywords(monkeypatch):
    calls = _recorded(monkeypatch)
    assert [name for name, _ in calls] == ["fwd", "bwd", "fwd", "bwd"]
    for name, kwargs in calls:
        declared = set(FWD_KEYWORDS if name == "fwd" else BWD_KEYWORDS)
        assert set(kwargs) <= declared, f"{name}: undeclared {sorted(set(kwargs) - declared)}"
        for buffer in (("out", "lse") if name == "fwd" else ("dq", "dk", "dv")):
            assert kwargs[buffer] is not None, f"{name}: the caller's {buffer} buffer is not passed"


def test_declared_keywords_are_in_the_installed_signatures():
    iface = pytest.importorskip("flash_attn.cute.interface", reason="flash-attn-4 is not installed")
    for fn, names in ((iface._flash_attn_fwd, FWD_KEYWORDS), (iface._flash_attn_bwd, BWD_KEYWORDS)):
        params = inspect.signature(fn).parameters
        missing = [n for n in names if n not in params]
        assert not missing, f"{fn.__name__} {PINNED_VERSION}: no parameter(s) {missing}"
        positional = [n for n, p in params.items() if p.default is inspect.Parameter.empty]
        assert set(positional) <= set(names), f"{fn.__name__}: required {sorted(set(positional) - set(names))}"


def test_pinned_version_is_the_extra():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert f'fa4 = ["flash-attn-4=={PINNED_VERSION}"]' in text
