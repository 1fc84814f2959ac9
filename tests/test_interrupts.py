"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and SIGTERM: one line, exit 130 / 143,
no traceback from the parent or any worker, every finished record kept, and --resume completes the run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.cli_run import cli_in_process

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = ["sft_long_prompt", "uniform", "no_causal", "mixed_zero_causal", "short_prefix_long_response"]
SWEEP = ["--backend", "reference", "--device", "cpu", "--variant", "prefix_rows_add", "--tokens", "128",
         "--heads", "1", "--head-dim", "16", "--dtype", "float32", "--context", "64", "--min-reps", "3",
         "--max-reps", "3", "--phase-reps", "1", "--warmup", "0", "--no-progress",
         *[a for d in DISTRIBUTIONS for a in ("--distribution", d)]]
pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc for worker processes")


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def wait_for(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "never reached the point to interrupt"
        time.sleep(0.02)


def stop(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    os.killpg(proc.pid, sig)                        # the parent and every worker, as Ctrl-C does
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def the_line(code: int, err: str, expected: int) -> str:
    assert code == expected, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    said = [ln for ln in err.splitlines() if "interrupted" in ln]
    assert len(said) == 1 and said[0] == err.strip().splitlines()[-1], err
    return said[0]


def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path):
    proc = start("sweep", "--out", str(tmp_path), *SWEEP)
    time.sleep(0.3)                                  # inside the parent's imports
    line = the_line(*stop(proc, signal.SIGINT), 130)
    assert line.startswith("prefixbench: interrupted")


def test_ctrl_c_while_the_worker_starts_names_no_results_file(tmp_path):
    proc = start("sweep", "--out", str(tmp_path), *SWEEP)
    wait_for(proc, lambda: bool(children(proc.pid)))     # the worker is being spawned / importing torch
    line = the_line(*stop(proc, signal.SIGINT), 130)
    assert "before the first record" in line and "results.jsonl" not in line


@pytest.mark.parametrize("sig, code, said", [(signal.SIGINT, 130, "interrupted:"),
                                             (signal.SIGTERM, 143, "interrupted (SIGTERM):")])
def test_a_signal_inside_a_worker_keeps_the_records_and_resume_completes(tmp_path, sig, code, said):
    results = tmp_path / "results.jsonl"
    proc = start("sweep", "--out", str(tmp_path), *SWEEP)
    wait_for(proc, lambda: lines(results) >= 1 and bool(children(proc.pid)))
    line = the_line(*stop(proc, sig), code)
    kept = [json.loads(ln) for ln in results.read_text().splitlines()]       # whole lines only
    assert 1 <= len(kept) < len(DISTRIBUTIONS) and all(r["status"] == "ok" for r in kept)
    assert line == (f"prefixbench: {said} {len(kept)} records kept in {results}; resume with: "
                    f"prefixbench sweep --out {tmp_path} --resume")
    code, _, err = cli_in_process("sweep", "--out", str(tmp_path), "--resume", "--isolation", "none",
                                  "--no-progress")
    assert code == 0, err
    done = [json.loads(ln)["distribution"] for ln in results.read_text().splitlines()]
    assert sorted(done) == sorted(DISTRIBUTIONS)                       # none lost, none twice


def test_ctrl_c_inside_a_validate_worker_is_one_line_naming_the_resume(tmp_path):
    records = tmp_path / "validation.jsonl"
    proc = start("validate", "--out", str(tmp_path), "--backend", "reference", "--device", "cpu", "--random", "0",
                 "--no-probes", "--head-dim", "16", "--spare-workers", "1")
    wait_for(proc, lambda: lines(records) >= 1)
    line = the_line(*stop(proc, signal.SIGINT), 130)
    kept = lines(records)
    assert line == (f"prefixbench: interrupted: {kept} records kept in {records}; resume with: "
                    f"prefixbench validate --out {tmp_path} --resume")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_command_returned_keeps_its_exit_code(sig):
    """A Ctrl-C landing while the interpreter shuts down (the run already finished) must not turn exit 0
    into death by signal (-2) with no line."""
    code = ("import os, signal, sys\n"
            "from bench.run import interrupts\n"
            "interrupts.install()\n"
            "interrupts.ignore_from_now()\n"
            f"os.kill(os.getpid(), {int(sig)})\n"
            "sys.exit(0)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""
