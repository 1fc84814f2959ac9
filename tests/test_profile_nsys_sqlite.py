"""The nsys SQLite parser: a synthetic export with nsys's schema, and real exports from an H100 run."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from profiles.attribution import aggregate
from profiles.nsys_sqlite import NsysSchemaError, attributed_activities

FIXTURES = Path(__file__).parent / "fixtures" / "profiles"
REAL = sorted(FIXTURES.glob("*.sqlite"))
TID = (1234 << 24) | 1234          # globalTid of the main thread of pid 1234
BWD_TID = (1234 << 24) | 1240      # the autograd engine's device thread
PID = 1234 << 24

SCHEMA = """
CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE NVTX_EVENTS (start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, rangeId INTEGER,
  category INTEGER, color INTEGER, text TEXT, globalTid INTEGER, endGlobalTid INTEGER, textId INTEGER,
  domainId INTEGER, uint64Value INTEGER, int64Value INTEGER, doubleValue REAL, uint32Value INTEGER,
  int32Value INTEGER, floatValue REAL, jsonTextId INTEGER, jsonText TEXT);
CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER,
  globalTid INTEGER, correlationId INTEGER, nameId INTEGER, returnValue INTEGER, callchainId INTEGER);
CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
  contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER, demangledName INTEGER,
  shortName INTEGER, mangledName INTEGER, gridX INTEGER, blockX INTEGER);
CREATE TABLE CUPTI_ACTIVITY_KIND_MEMSET (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
  contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER, value INTEGER,
  bytes INTEGER, memKind INTEGER);
"""


def _synthetic(path: Path, variant: str = "a") -> None:
    """Two reps of `variant`: zero_fill (two fill kernels + a memset) then bidir_pass (one kernel)."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO StringIds VALUES (?, ?)",
                   [(1, "void fill_kernel<float>(float*)"), (2, "fill_kernel"), (3, "void flash_bwd<128>()"),
                    (4, "flash_bwd"), (5, "bwd.bidir_pass")])
    nvtx = [(0, 0, 75, "prefixbench", None, 1), (0, 10_000, 59, "config:c", None, 1)]
    for rep in range(2):
        base = rep * 5_000
        nvtx += [(base, base + 4_000, 59, f"rep:{variant}:{rep}", None, 1),
                 (base + 100, base + 1_000, 59, "bwd.zero_fill", None, 1),
                 (base + 1_000, base + 3_000, 59, None, 5, 1)]          # name via textId (thread below)
    nvtx += [(0, 0, 75, "other", None, 7), (49_000, 51_000, 59, "other-domain", None, 7)]
    db.executemany("INSERT INTO NVTX_EVENTS (start, end, eventType, text, textId, domainId, globalTid) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", [(s, e, t, x, i, d, BWD_TID if i == 5 else TID) for s, e, t, x, i, d in nvtx])
    runtime, kernels, memsets = [], [], []
    corr = 100
    for rep in range(2):
        base = rep * 5_000
        for launch, gpu, name in ((base + 200, base + 6_000, 1), (base + 300, base + 6_200, 1),
                                  (base + 1_500, base + 7_000, 3)):
            corr += 1
            runtime.append((launch, launch + 50, BWD_TID if name == 3 else TID, corr))
            kernels.append((gpu, gpu + 100_000, corr, PID, name, name + 1))
        corr += 1
        runtime.append((base + 400, base + 450, TID, corr))
        memsets.append((base + 6_500, base + 6_600, corr, PID, 4096))
    corr += 1                                   # a warm-up kernel outside every range
    runtime.append((50_000, 50_010, TID, corr))
    kernels.append((60_000, 61_000, corr, PID, 3, 4))
    db.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME (start, end, globalTid, correlationId) "
                   "VALUES (?, ?, ?, ?)", runtime)
    db.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL (start, end, correlationId, globalPid, demangledName, "
                   "shortName) VALUES (?, ?, ?, ?, ?, ?)", kernels)
    db.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_MEMSET (start, end, correlationId, globalPid, bytes) "
                   "VALUES (?, ?, ?, ?, ?)", memsets)
    db.commit()
    db.close()


def test_synthetic_export_attributes_kernels_to_innermost_range(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.sqlite"
    _synthetic(path)
    acts = attributed_activities(path)
    assert len(acts) == 9
    assert acts[0].stack == ("config:c", "rep:a:0", "bwd.zero_fill")
    ranges = aggregate(acts, reps=2)["a"]["ranges"]
    assert set(ranges) == {"bwd.zero_fill", "bwd.bidir_pass"}
    fill = ranges["bwd.zero_fill"]
    assert fill["kernels"]["void fill_kernel<float>(float*)"]["count"] == 2
    assert fill["kernels"]["void fill_kernel<float>(float*)"]["short_name"] == "fill_kernel"
    assert fill["kernels"]["memset"]["count"] == 1
    assert fill["bytes"] == 4096
    assert fill["gpu_ms"] == pytest.approx(0.2 + 0.0001)
    assert ranges["bwd.bidir_pass"]["gpu_ms"] == pytest.approx(0.1)


def test_domain_filter_drops_other_domains(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.sqlite"
    _synthetic(path)
    def warmup_kernel_stack(domains):
        return [a for a in attributed_activities(path, domains) if a.kind == "kernel"][-1].stack
    assert warmup_kernel_stack(None) == ("other-domain",)
    assert warmup_kernel_stack(["prefixbench"]) == ()
    assert warmup_kernel_stack(["never-created"]) == ("other-domain",)       # unknown domain: no filter


def test_missing_nvtx_table_is_a_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "bare.sqlite"
    sqlite3.connect(path).executescript("CREATE TABLE StringIds (id INTEGER, value TEXT);")
    with pytest.raises(NsysSchemaError):
        attributed_activities(path)


@pytest.mark.skipif(not REAL, reason="no real nsys export in tests/fixtures/profiles (run "
                                     "scripts/capture_profile_fixtures.sh on the GPU host)")
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_h100_export(path: Path) -> None:
    meta_path = path.with_suffix(".meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"reps": 3}
    variants = aggregate(attributed_activities(path), reps=meta["reps"])
    assert {"zeros_always", "guarded_passthrough"} <= set(variants)
    for name in ("zeros_always", "guarded_passthrough"):
        ranges = variants[name]["ranges"]
        for phase in ("fwd.bidir_pass", "fwd.causal_pass", "bwd.zero_fill", "bwd.bidir_pass",
                      "bwd.causal_pass", "bwd.accumulate"):
            assert phase in ranges, (name, phase, sorted(ranges))
            assert ranges[phase]["gpu_ms"] > 0
            for kernel in ranges[phase]["kernels"].values():
                assert kernel["count"] == pytest.approx(round(kernel["count"]))   # same work every rep
    fill = {n: variants[n]["ranges"]["bwd.zero_fill"] for n in ("zeros_always", "guarded_passthrough")}
    count = {n: sum(k["count"] for k in f["kernels"].values()) for n, f in fill.items()}
    assert count["zeros_always"] == pytest.approx(2 * count["guarded_passthrough"])   # dK1,dV1 (+dK2,dV2)
    assert fill["zeros_always"]["gpu_ms"] > fill["guarded_passthrough"]["gpu_ms"]


def test_trim_keeps_what_attribution_reads(tmp_path: Path) -> None:
    from profiles.nsys_trim import trim
    src, dst = tmp_path / "full.sqlite", tmp_path / "trimmed.sqlite"
    _synthetic(src)
    db = sqlite3.connect(src)
    db.executescript("CREATE TABLE TARGET_INFO_GPU (x); INSERT INTO StringIds VALUES (99, 'unused');")
    db.close()
    trim(src, dst)
    db = sqlite3.connect(dst)
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    unused = db.execute("SELECT count(*) FROM StringIds WHERE id = 99").fetchone()[0]
    db.close()
    assert "TARGET_INFO_GPU" not in names and unused == 0
    assert attributed_activities(dst) == attributed_activities(src)
