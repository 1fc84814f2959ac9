"""Sharding is disjoint, covering and balanced; merging rank files gives one grid-ordered file."""
import json

from bench.distributed import RankInfo, merge_rank_files, rank_file, shard


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
