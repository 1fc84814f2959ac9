"""bench/harness/clocks/timeline.py: calls cut out of a timeline by marker kernels, and their idle gaps."""
from bench.harness.clocks.timeline import MARKER, call_gaps, split_calls


def test_calls_are_cut_at_markers_and_gaps_name_their_neighbours():
    k = [(0, 10, MARKER), (20, 30, "fwd"), (30, 50, "memset"), (80, 100, "bwd"), (200, 210, MARKER), (220, 230, "fwd")]
    calls = split_calls(k)
    assert [[n for _, _, n in c] for c in calls] == [["fwd", "memset", "bwd"], ["fwd"]]
    g = call_gaps(calls[0])
    assert g["span_us"] == 80 and g["busy_us"] == 50 and g["idle_us"] == 30
    assert g["gaps"] == [{"us": 30, "after": "memset", "before": "bwd", "index": 2}]


def test_overlapping_kernels_are_busy_once():
    g = call_gaps([(0, 10, "a"), (5, 20, "b"), (22, 30, "c")])
    assert g["busy_us"] == 28 and g["gaps"] == []          # the 2 us gap is below the threshold
