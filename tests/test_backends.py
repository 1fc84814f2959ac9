"""The backend registry and contract: names, auto's pick and its report, torch-free import, the reference mirror."""
from __future__ import annotations

import subprocess
import sys

import pytest

from prefixlm_attn.backends import BACKENDS, Unavailable, auto_report, get_backend, resolve_backend_name
from prefixlm_attn.backends.registry import BACKEND_CHOICES, backend_names, kernel_backend_names


def test_registry_imports_no_torch():
    code = ("import sys, prefixlm_attn.backends.registry as r; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:5]; "
            "print(','.join(r.BACKEND_CHOICES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ",".join(BACKEND_CHOICES)


def test_names_in_auto_order():
    assert backend_names()[-1] == "reference"
    assert BACKEND_CHOICES == ("auto", *backend_names())
    assert "reference" not in kernel_backend_names() and len(kernel_backend_names()) >= 2
    assert list(BACKENDS) == list(backend_names())


def test_auto_without_cuda_picks_reference_and_says_why():
    assert resolve_backend_name("auto") == "reference"
    lines = auto_report()
    assert len(lines) == len(backend_names())
    assert all("not used (" in line for line in lines[:-1]) and lines[-1].startswith("reference: picked")


def test_unknown_names_refused():
    for bad in ("fa5", "reference@nope", "fa3@fa4", ""):
        with pytest.raises(ValueError, match="unknown backend"):
            resolve_backend_name(bad)


@pytest.mark.parametrize("name", backend_names())
def test_every_backend_keeps_the_contract(name):
    be = get_backend(name)
    assert be is get_backend(name)                      # one instance per process
    assert be.kind in ("kernel", "reference")
    assert isinstance(be.single_pass_variants, tuple)
    for direction in ("forward", "backward"):
        why = be.availability(direction)
        assert why is None or (isinstance(why, Unavailable) and why.reason)
    assert be.available() == (be.availability("forward") is None and be.availability("backward") is None)
    with pytest.raises(ValueError):
        be.availability("sideways")
    assert isinstance(be.version_info(), dict) and "package" in be.version_info()
    ok = be.check_supported(head_dim=128, dtype="bfloat16")
    assert ok is None or isinstance(ok, Unavailable)


def test_kernel_backends_unavailable_on_cpu_with_a_reason():
    for name in kernel_backend_names():
        why = get_backend(name).availability("backward")
        assert isinstance(why, Unavailable) and "CUDA" in why.reason


def test_reference_mirrors_a_named_contract():
    ref, ref4 = get_backend("reference"), get_backend("reference@fa4")
    assert ref.contract.kernel == "fa3" and ref4.contract.kernel == "fa4"
    assert ref4.name == "reference@fa4" and ref4.kind == "reference"


def _empty_causal_backward(backend_name: str):
    import torch
    from prefixlm_attn import build_batch_metadata
    from prefixlm_attn.passes import PassPlan
    meta = build_batch_metadata([4, 3], [0, 0], 8)
    plan = PassPlan.from_op_args(backend_name, *meta.op_args(), False, 0.25)
    q = torch.randn(8, 2, 16)
    out = torch.zeros_like(q)
    lse = plan.causal_forward(q, q, q, out)
    dq, dk, dv = (torch.full_like(q, float("nan")) for _ in range(3))
    plan.causal_backward(q, q, q, q, out, lse, dq, dk, dv)
    return dq, dk, dv


def test_the_mirror_fails_where_its_kernel_fails():
    from prefixlm_attn.backends import KernelCrash
    from prefixlm_attn.backends.contracts import FA3_CONTRACT, FA4_CONTRACT
    from prefixlm_attn.backends.reference import reset_dead_context
    assert FA3_CONTRACT.empty_backward == "crash"
    with pytest.raises(KernelCrash):                 # FA3: CUTLASS error, context dead afterwards
        _empty_causal_backward("reference")
    with pytest.raises(KernelCrash, match="context unusable"):
        _empty_causal_backward("reference@fa4")
    reset_dead_context()
    if FA4_CONTRACT.empty_backward == "raise":       # FA4: a Python error, the context lives on
        with pytest.raises(RuntimeError) as exc:
            _empty_causal_backward("reference@fa4")
        assert not isinstance(exc.value, KernelCrash)
    else:
        _empty_causal_backward("reference@fa4")
    get_backend("reference@fa4").forward  # still usable
    assert get_backend("reference").available()


def test_contract_probes_hold_each_mirror_to_its_own_contract(tmp_path):
    from bench.harness.contract_probes import run_probes
    report = run_probes(["reference", "reference@fa4"], tmp_path, isolation="none")
    assert report["all_match_contract"]
    contracts = {b["contract"] for p in report["probes"] for b in p["backends"].values()}
    assert contracts == {"fa3", "fa4"}
