"""`prefixbench doctor`: one line per check, ok or the fix; exit 0 only when a GPU sweep can run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from profiles import doctor
from profiles.doctor import Check, check_nsys, check_output, diagnose, format_check

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a CPU-only machine lacks")
def test_cli_exits_nonzero_with_one_line_per_missing_part(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cli", "doctor", "--out", str(tmp_path / "runs")],
                          capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.strip().splitlines()
    by_name = {line[5:18].strip(): line for line in lines[:-1]}
    for name in ("torch", "gpu", "fa3", "fa3 build", "fa3 fwd+bwd", "fa4 compile", "fa4 fwd+bwd"):
        assert by_name[name].startswith("FAIL"), by_name[name]
    assert "hopper" in by_name["fa3"] and "build_fa3" not in proc.stdout
    assert "CUDA" in by_name["fa4 compile"]
    assert by_name["output"].startswith("ok")
    assert by_name["nsys"].startswith("warn") and by_name["ncu"].startswith("warn")
    assert "cannot run" in lines[-1]
    assert proc.stderr == ""


def test_verdict_ignores_optional_checks(monkeypatch, tmp_path):
    passing = {fn: (lambda n=name: Check(n, True, "found")) for fn, name in
               (("check_torch", "torch"), ("check_gpu", "gpu"), ("check_fa3_loads", "fa3"),
                ("check_fa3_build", "fa3 build"), ("check_fa3_runs", "fa3 fwd+bwd"))}
    monkeypatch.setattr(doctor, "check_fa4_loads", lambda: Check("fa4", False, "pip install"))
    for name, fn in passing.items():
        monkeypatch.setattr(doctor, name, fn)
    monkeypatch.setattr(doctor, "check_nvtx", lambda: Check("nvtx", False, "pip install nvtx", required=False))
    checks, can_sweep = diagnose(tmp_path)
    assert can_sweep
    nvtx = next(c for c in checks if c.name == "nvtx")
    assert not nvtx.ok and format_check(nvtx).startswith("warn")


def test_a_crashing_check_is_a_failed_line(monkeypatch, tmp_path):
    def boom() -> Check:
        raise RuntimeError("driver went away")
    monkeypatch.setattr(doctor, "check_gpu", boom)
    checks, can_sweep = diagnose(tmp_path)
    gpu = next(c for c in checks if c.name == "gpu")
    assert not gpu.ok and "driver went away" in gpu.detail
    assert not can_sweep
    assert "\n" not in format_check(gpu)


def test_output_check_writes_nothing_behind(tmp_path):
    target = tmp_path / "not" / "yet"
    assert check_output(target).ok
    assert not (tmp_path / "not").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_output_check_names_the_fix_for_a_read_only_folder(tmp_path):
    tmp_path.chmod(0o500)
    try:
        result = check_output(tmp_path / "runs")
    finally:
        tmp_path.chmod(0o700)
    assert not result.ok and "--out" in result.detail


def test_bundled_nsys_needs_libdw_for_its_importer(tmp_path):
    host = tmp_path / "nsight-compute" / "2025.3.1" / "host"
    nsys = host / "target-linux-x64" / "nsys"
    importer = host / "linux-desktop-glibc_2_11_3-x64" / "QdstrmImporter"
    for f in (nsys, importer):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("")
    missing = check_nsys(find=lambda: str(nsys), can_load=lambda lib: False)
    assert not missing.ok and "libdw.so.1" in missing.detail and "LD_LIBRARY_PATH" in missing.detail
    present = check_nsys(find=lambda: str(nsys), can_load=lambda lib: True)
    assert present.ok and present.detail == str(nsys)
    importer.unlink()
    assert "QdstrmImporter" in check_nsys(find=lambda: str(nsys), can_load=lambda lib: True).detail


def test_fa3_build_outside_the_default_configuration_fails(monkeypatch):
    monkeypatch.setattr("prefixlm_attn.backends.fa3_build.fa3_build_info",
                        lambda: {"head_dims": [64], "dtypes": ["bf16"], "backward": True})
    result = doctor.check_fa3_build()
    assert not result.ok and "head dims 64,128" in result.detail and "HDIM128 unset" in result.detail


def test_tiny_forward_backward_check_on_the_reference_backend():
    result = doctor.check_fa3_runs(device="cpu", backend="reference")   # the same check FA3 gets on a GPU
    assert result.ok, result.detail
    assert "relative error" in result.detail


def test_one_green_kernel_backend_is_enough(monkeypatch, tmp_path):
    """FA4 alone (no FA3) can run a sweep; neither cannot."""
    monkeypatch.setattr(doctor, "check_fa4_compile", lambda: Check("fa4 compile", True, "first call 9.0 s"))
    monkeypatch.setattr(doctor, "check_fa4_runs", lambda: Check("fa4 fwd+bwd", True, "ok"))
    monkeypatch.setattr(doctor, "check_fa4_loads", lambda: Check("fa4", True, "flash-attn-4"))
    monkeypatch.setattr(doctor, "check_torch", lambda: Check("torch", True, "ok"))
    monkeypatch.setattr(doctor, "check_gpu", lambda: Check("gpu", True, "ok"))
    checks, can = diagnose(tmp_path)
    assert can and doctor.usable_kernel_backends(checks) == ["fa4"]
    monkeypatch.setattr(doctor, "check_fa4_runs", lambda: Check("fa4 fwd+bwd", False, "relative error 1e-1"))
    checks, can = diagnose(tmp_path)
    assert not can and doctor.usable_kernel_backends(checks) == []


def test_fa4_checks_on_the_reference_backend():
    """The FA4 section's first-call timing and its dense-reference check, run on the reference backend."""
    compiled = doctor.check_fa4_compile(device="cpu", backend="reference")
    assert compiled.ok and "first call" in compiled.detail and "fa4_single_pass_sparse" in compiled.detail
    runs = doctor.check_fa4_runs(device="cpu", backend="reference")
    assert runs.ok, runs.detail
