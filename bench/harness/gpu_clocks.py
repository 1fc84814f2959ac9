"""GPU clocks, temperature, power and throttle reasons, read in-process through NVML.

A record keeps them to show whether a configuration ran throttled. NVML (`nvidia-ml-py`, imported
as `pynvml`) answers in microseconds; without it, one `nvidia-smi` query per field is the fallback
(a field an older driver lacks spoils only itself). Both give the same keys, with values as
nvidia-smi prints them (`--format=csv,noheader,nounits`), so reports read either.
"""
from __future__ import annotations

import os
import subprocess
from typing import Any, Callable, Optional

FIELDS = ("driver_version", "clocks.sm", "clocks.max.sm", "clocks.mem", "temperature.gpu", "power.draw",
          "clocks_throttle_reasons.active")
_handles: dict[str, Any] = {}   # device id -> NVML handle, after one nvmlInit per process


def default_device_id() -> str:
    """What nvidia-smi calls the measuring GPU: the first CUDA_VISIBLE_DEVICES entry, else torch's device."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    if visible:
        return visible
    import torch
    return str(torch.cuda.current_device())


def _nvml_handle(nvml: Any, device_id: str) -> Any:
    if device_id not in _handles:
        if not _handles:
            nvml.nvmlInit()
        _handles[device_id] = (nvml.nvmlDeviceGetHandleByIndex(int(device_id)) if device_id.isdigit()
                               else nvml.nvmlDeviceGetHandleByUUID(device_id))
    return _handles[device_id]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _throttle_reasons(nvml: Any, handle: Any) -> int:
    """Newer NVML calls them clock event reasons; the old name stays as an alias in older bindings."""
    read = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return read(handle)


def nvml_clocks(nvml: Any, device_id: str) -> dict[str, Optional[str]]:
    """The FIELDS through NVML; a field the driver refuses is None."""
    handle = _nvml_handle(nvml, device_id)
    readers: dict[str, Callable[[], str]] = {
        "driver_version": lambda: _text(nvml.nvmlSystemGetDriverVersion()),
        "clocks.sm": lambda: str(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
        "clocks.max.sm": lambda: str(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM)),
        "clocks.mem": lambda: str(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)),
        "temperature.gpu": lambda: str(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
        "power.draw": lambda: f"{nvml.nvmlDeviceGetPowerUsage(handle) / 1000:.2f}",   # mW -> W
        "clocks_throttle_reasons.active": lambda: f"0x{_throttle_reasons(nvml, handle):016x}",
    }
    values: dict[str, Optional[str]] = {}
    for name in FIELDS:
        try:
            values[f"nvsmi.{name}"] = readers[name]()
        except Exception:  # noqa: BLE001 - NVMLError_NotSupported and kin: this field only
            values[f"nvsmi.{name}"] = None
    return values


def nvidia_smi_clocks(device_id: str) -> dict[str, Any]:
    """The FIELDS from nvidia-smi, one query per field."""
    values: dict[str, Any] = {}
    for name in FIELDS:
        try:
            proc = subprocess.run(["nvidia-smi", f"--id={device_id}", f"--query-gpu={name}",
                                   "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
            values[f"nvsmi.{name}"] = proc.stdout.strip() if proc.returncode == 0 else None
        except Exception as exc:  # noqa: BLE001
            return {**values, "nvidia_smi_error": str(exc)[:200]}
    return values


def gpu_clocks(device_id: Optional[str] = None) -> dict[str, Any]:
    """SM/memory clocks, driver, temperature, power and throttle reasons of the measuring GPU."""
    device_id = device_id or default_device_id()
    try:
        import pynvml
    except ImportError:
        return nvidia_smi_clocks(device_id)
    try:
        return nvml_clocks(pynvml, device_id)
    except Exception:  # noqa: BLE001 - NVML present but unusable (no driver, odd id): try nvidia-smi
        _handles.pop(device_id, None)
        return nvidia_smi_clocks(device_id)
