"""A worker that crashes, dies hard or runs out of memory becomes a record, never the caller's crash."""
from bench.harness.isolation import InProcess, IsolatedWorker

import tests.isolation_targets as T


def test_worker_survives_every_failure_kind():
    with IsolatedWorker() as worker:
        assert worker.call(T.add, a=2, b=3).value == 5
        first_pid = worker.call(T.pid).value

        err = worker.call(T.raise_value_error)
        assert err.status == "error" and "bad thing" in err.error
        assert worker.call(T.pid).value == first_pid       # an error keeps the worker

        oom = worker.call(T.fake_oom)
        assert oom.status == "oom"
        assert worker.call(T.pid).value == first_pid

        crash = worker.call(T.fake_cuda_crash)
        assert crash.status == "crashed" and "CUTLASS" in crash.error
        second_pid = worker.call(T.pid).value
        assert second_pid != first_pid                        # a dead context gets a fresh worker

        died = worker.call(T.die_hard)
        assert died.status == "crashed"
        assert "exit code 7" in died.error and "about to die" in died.error
        assert worker.call(T.add, a=1, b=1).value == 2     # and the next call still works


def test_in_process_classifies_the_same_way():
    runner = InProcess()
    assert runner.call(T.add, a=1, b=2).value == 3
    assert runner.call(T.fake_cuda_crash).status == "crashed"
    assert runner.call(T.fake_oom).status == "oom"
    assert runner.call(T.raise_value_error).status == "error"


def test_a_crash_swaps_in_the_warm_spare() -> None:
    from bench.harness.isolation import WithSpare
    with WithSpare() as worker:
        first = worker.call(T.pid).value
        assert worker.call(T.die_hard).status == "crashed"
        assert worker.swaps == 1
        second = worker.call(T.pid)
        assert second.ok and second.value != first                  # the spare, already started
        assert worker.call(T.add, a=2, b=3).value == 5
