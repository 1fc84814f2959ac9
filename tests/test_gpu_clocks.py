"""GPU clocks through NVML, and the nvidia-smi fallback, give the same keys and value formats."""
from __future__ import annotations

import os
import stat
import sys
import types

import pytest

from bench.harness import gpu_clocks as gc

KEYS = {f"nvsmi.{f}" for f in gc.FIELDS}


class NotSupported(Exception):
    pass


def fake_pynvml(temperature_fails: bool = False) -> types.ModuleType:
    m = types.ModuleType("pynvml")
    m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM, m.NVML_TEMPERATURE_GPU = 1, 2, 0
    m.calls = []
    m.nvmlInit = lambda: m.calls.append("init")
    m.nvmlDeviceGetHandleByIndex = lambda i: ("handle", i)
    m.nvmlDeviceGetHandleByUUID = lambda u: ("handle", u)
    m.nvmlSystemGetDriverVersion = lambda: b"580.159.04"
    m.nvmlDeviceGetClockInfo = lambda h, kind: {1: 1980, 2: 2619}[kind]
    m.nvmlDeviceGetMaxClockInfo = lambda h, kind: 1980

    def temperature(h, kind):
        if temperature_fails:
            raise NotSupported()
        return 52
    m.nvmlDeviceGetTemperature = temperature
    m.nvmlDeviceGetPowerUsage = lambda h: 78200          # milliwatts
    m.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: 0x44
    return m


@pytest.fixture(autouse=True)
def _fresh_handles():
    gc._handles.clear()
    yield
    gc._handles.clear()


def test_nvml_values_read_like_nvidia_smi(monkeypatch):
    nvml = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    values = gc.gpu_clocks("0")
    assert set(values) == KEYS
    assert values["nvsmi.driver_version"] == "580.159.04"
    assert values["nvsmi.clocks.sm"] == "1980" and values["nvsmi.clocks.mem"] == "2619"
    assert values["nvsmi.power.draw"] == "78.20"
    assert values["nvsmi.clocks_throttle_reasons.active"] == "0x0000000000000044"
    gc.gpu_clocks("0")
    assert nvml.calls == ["init"]                           # one nvmlInit per process


def test_a_refused_field_spoils_only_itself(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(temperature_fails=True))
    values = gc.gpu_clocks("GPU-1234")
    assert values["nvsmi.temperature.gpu"] is None
    assert values["nvsmi.clocks.sm"] == "1980"


def test_without_pynvml_nvidia_smi_answers(monkeypatch, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\ncase "$2" in --query-gpu=clocks.sm) echo 1755;; *) echo 7;; esac\n')
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setitem(sys.modules, "pynvml", None)          # import pynvml -> ImportError
    values = gc.gpu_clocks("0")
    assert set(values) == KEYS
    assert values["nvsmi.clocks.sm"] == "1755"


def test_without_pynvml_or_nvidia_smi_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    values = gc.gpu_clocks("0")
    assert "nvidia_smi_error" in values


def test_device_id_from_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert gc.default_device_id() == "3"
