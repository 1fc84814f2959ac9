"""The median's interval covers the median, tightens with samples, and drives the stopping rule."""
import random

from bench.results.stats import StoppingRule, median, median_ci


def test_median_and_interval_basics():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    st = median_ci([5.0] * 20)
    assert (st.median, st.lo, st.hi, st.rel_ci) == (5.0, 5.0, 5.0, 0.0)


def test_interval_contains_median_and_shrinks():
    rng = random.Random(0)
    small = median_ci([rng.gauss(10, 1) for _ in range(20)])
    large = median_ci([rng.gauss(10, 1) for _ in range(2000)])
    for st in (small, large):
        assert st.lo <= st.median <= st.hi
    assert large.rel_ci < small.rel_ci / 4
    assert 9.9 < large.median < 10.1


def test_interval_covers_true_median_about_95_percent():
    rng = random.Random(1)
    hits = sum(1 for _ in range(400)
               if (st := median_ci([rng.expovariate(1.0) for _ in range(50)])).lo <= 0.6931 <= st.hi)
    assert 0.9 <= hits / 400 <= 0.995


def test_stopping_rule_reasons():
    rule = StoppingRule(min_reps=5, max_reps=50, target_rel_ci=0.01, time_cap_s=1.0)
    flat = [[1.0] * 5]
    noisy = [[1.0, 2.0, 3.0, 1.5, 2.5, 1.2]]
    assert rule.verdict([[1.0] * 4], 0.0) is None                 # below min_reps
    assert rule.verdict(flat, 0.0) == "converged"
    assert rule.verdict(noisy, 0.1) is None
    assert rule.verdict(noisy, 2.0) == "time_cap"
    assert rule.verdict([noisy[0] * 10], 0.1) == "max_reps"
    assert rule.verdict([[1.0] * 5, noisy[0]], 0.1) is None        # every series must converge
