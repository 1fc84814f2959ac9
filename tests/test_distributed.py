"""Sharding is disjoint, covering and balanced; merging rank files gives one grid-ordered file."""
import json

import pytest

from bench.run.distributed import RankInfo, merge_rank_files, rank_file, shard


def test_shards_are_disjoint_covering_and_balanced():
    items = [f"c{i}" for i in range(23)]
    cost = lambda name: 1 + int(name[1:]) % 5  # noqa: E731
    shares = [shard(items, cost, r, 4) for r in range(4)]
    flat = [x for s in shares for x in s]
    assert sorted(flat) == sorted(items) and len(flat) == len(set(flat))
    loads = [sum(cost(x) for x in s) for s in shares]
    assert max(loads) - min(loads) <= max(cost(x) for x in items)
    for s in shares:  # grid order kept inside a share
        assert s == sorted(s, key=items.index)


def test_single_process_takes_everything():
    assert shard([3, 1, 2], float, 0, 1) == [3, 1, 2]


def test_rank_info_from_torchrun_env():
    info = RankInfo.from_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "3"})
    assert info.distributed and (info.rank, info.world_size, info.local_rank) == (3, 8, 3)
    assert not RankInfo.from_env({}).distributed


def test_merge_orders_by_grid_and_keeps_earlier_results(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps({"config_id": "b", "variant": "x", "run": 0}) + "\n")
    rank_file(tmp_path, 0).write_text(json.dumps({"config_id": "c", "variant": "x", "rank": 0}) + "\n")
    rank_file(tmp_path, 1).write_text(json.dumps({"config_id": "a", "variant": "x", "rank": 1}) + "\n"
                                      + '{"config_id": "a", "var')  # a line cut short by a killed rank
    merged = merge_rank_files(tmp_path, 2, ["a", "b", "c"])
    records = [json.loads(line) for line in merged.read_text().splitlines()]
    assert [r["config_id"] for r in records] == ["a", "b", "c"]
    assert not rank_file(tmp_path, 0).exists() and not rank_file(tmp_path, 1).exists()


def _torchrun_sweep(out, nproc, *extra):
    import os
    import subprocess
    import sys
    args = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
            f"--master-port={29500 + (os.getpid() + nproc) % 1000}", "-m", "cli", "sweep", "--out", str(out),
            "--backend", "reference", "--device", "cpu", "--distribution", "sft_long_prompt",
            "--distribution", "uniform", "--distribution", "no_causal", "--tokens", "128", "--tokens", "256",
            "--heads", "1", "--head-dim", "16", "--dtype", "float32", "--context", "64",
            "--variant", "unguarded", "--variant", "prefix_rows_add", "--warmup", "0", "--min-reps", "3",
            "--max-reps", "3", "--phase-reps", "1", "--no-progress", *extra]
    root = os.path.dirname(os.path.dirname(__file__))
    return subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=root,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_two_gloo_ranks_merge_into_the_single_process_records(tmp_path):
    """torchrun with 2 CPU ranks: one merged results.jsonl, same configurations as one process."""
    proc = _torchrun_sweep(tmp_path / "two", 2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = _torchrun_sweep(tmp_path / "one", 1)
    assert single.returncode == 0, single.stderr[-3000:]
    two = [json.loads(x) for x in (tmp_path / "two" / "results.jsonl").read_text().splitlines()]
    one = [json.loads(x) for x in (tmp_path / "one" / "results.jsonl").read_text().splitlines()]
    key = lambda r: (r["config_id"], r["variant"], r["status"])  # noqa: E731
    assert [key(r) for r in two] == [key(r) for r in one]
    assert len(two) == 12 and {r["rank"] for r in two} == {0, 1}
    crashed = [r for r in two if r["status"] == "crashed"]
    assert {(r["distribution"], r["variant"]) for r in crashed} == {("no_causal", "unguarded")}
    assert not list((tmp_path / "two").glob("rank-*.jsonl"))
    # --resume on the merged file skips everything
    again = _torchrun_sweep(tmp_path / "two", 2, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert len((tmp_path / "two" / "results.jsonl").read_text().splitlines()) == 12


@pytest.mark.slow
def test_two_nodes_without_a_shared_filesystem(tmp_path):
    """Multi-node torchrun (2 nodes x 1 rank, each with its own --out): rank 0 gets every record
    over the process group; the other node keeps no stray rank file."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(__file__))
    port = str(30500 + os.getpid() % 1000)
    procs = []
    for node in (0, 1):
        args = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={node}",
                "--nproc-per-node=1", "--master-addr=127.0.0.1", f"--master-port={port}", "-m", "cli", "sweep",
                "--out", str(tmp_path / f"node{node}"), "--backend", "reference", "--device", "cpu",
                "--distribution", "sft_long_prompt", "--distribution", "uniform", "--tokens", "128",
                "--heads", "1", "--head-dim", "16", "--dtype", "float32", "--context", "64",
                "--variant", "prefix_rows_add", "--min-reps", "3", "--max-reps", "3", "--phase-reps", "1",
                "--no-progress"]
        procs.append(subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "OMP_NUM_THREADS": "1"}))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    records = [json.loads(x) for x in (tmp_path / "node0" / "results.jsonl").read_text().splitlines()]
    assert [r["distribution"] for r in records] == ["sft_long_prompt", "uniform"]
    assert {r["rank"] for r in records} == {0, 1}
    assert not (tmp_path / "node1" / "results.jsonl").exists()
    assert not list((tmp_path / "node1").glob("rank-*.jsonl"))
