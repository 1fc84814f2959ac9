"""Distributions draw what their names say; packing fills a budget like a loader; files are read or refused."""
import json

import pytest

from bench.spec.errors import UserError
from bench.spec.distributions import NAMED, get_distribution, read_length_file
from bench.spec.packing import pack


@pytest.mark.parametrize("name", list(NAMED))
@pytest.mark.parametrize("budget", [512, 4096])
def test_pack_respects_budget_context_and_seed(name, budget):
    batch = pack(get_distribution(name), budget, seed=3, context=256)
    assert 0 < batch.total_tokens <= budget
    assert all(p + c <= 256 for p, c in zip(batch.prefix_lens, batch.causal_lens))
    assert pack(get_distribution(name), budget, seed=3, context=256) == batch        # seeded
    assert budget - batch.total_tokens < 256                                         # padding < one sequence


def test_named_distributions_have_their_shape():
    def batch(name):
        return pack(get_distribution(name), 65536, seed=0, context=4096)
    assert max(batch("no_causal").causal_lens) == 0
    mixed = batch("mixed_zero_causal")
    assert 0 in mixed.causal_lens and max(mixed.causal_lens) > 0
    fills = batch("prefix_fills_context")
    assert set(fills.causal_lens) == {1} and set(fills.prefix_lens) == {4095}
    sft, short = batch("sft_long_prompt"), batch("short_prefix_long_response")
    assert sum(sft.prefix_lens) > 3 * sum(sft.causal_lens)
    assert sum(short.causal_lens) > 3 * sum(short.prefix_lens)


def test_parametric_fraction():
    b = pack(get_distribution("frac:0.4-0.6"), 65536, seed=1, context=2048)
    frac = sum(b.prefix_lens) / b.total_tokens
    assert 0.38 < frac < 0.62
    for bad in ("frac:0.8-0.2", "frac:abc", "frac:0.1-1.5"):
        with pytest.raises(UserError):
            get_distribution(bad)


def test_length_files(tmp_path):
    csv = tmp_path / "lens.csv"
    csv.write_text("prefix_len,causal_len\n100,20\n50,0\n")
    jsonl = tmp_path / "lens.jsonl"
    jsonl.write_text("\n".join(json.dumps({"prefix_len": p, "causal_len": c}) for p, c in [(7, 3), (0, 9)]))
    assert read_length_file(csv) == [(100, 20), (50, 0)]
    assert read_length_file(jsonl) == [(7, 3), (0, 9)]
    b = pack(get_distribution(f"file:{csv}"), 1000, seed=0)
    assert set(zip(b.prefix_lens, b.causal_lens)) <= {(100, 20), (50, 0)}


@pytest.mark.parametrize("content, message", [
    ("prefix_len,causal\n1,2\n", "no length columns among prefix_len, causal"),
    ("prefix_len,causal_len\n1,x\n", "causal_len = 'x' is not an integer length"),
    ("prefix_len,causal_len\n1.0,2\n", "prefix_len = '1.0' is not an integer length"),
    ("prefix_len,causal_len\n-1,2\n", "must be >= 0"),
    ("prefix_len,causal_len\n", "holds no rows"),
])
def test_bad_length_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        get_distribution(f"file:{path}")
    with pytest.raises(UserError, match="does not exist"):
        get_distribution(f"file:{tmp_path / 'missing.csv'}")


def test_unknown_distribution():
    with pytest.raises(UserError, match="unknown distribution 'nope'"):
        get_distribution("nope")
