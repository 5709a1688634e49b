"""Prefetch, driven step by step (tests/fakes.py): the worker leases ``concurrency + prefetch`` jobs,
runs at most ``concurrency`` handlers and starts the waiting ones in arrival order as handlers free
up. A waiting job is leased from its delivery (the heartbeat names it, its timeout runs); a cancel,
a timeout or a lost lease reaches it without running it; close and drain hand it back unstarted, as
a 1 ms snooze (docs/protocol.md, section 5)."""

from __future__ import annotations

import json
from typing import Any, List

import pytest
from fakes import Harness, assignment, credits, results

from baton import JobContext, Worker
from baton.v1 import lease_pb2


class Recorder:
    """A handler that notes the order jobs began in and answers with their number."""

    def __init__(self) -> None:
        self.began: List[int] = []

    def __call__(self, payload: Any, ctx: JobContext) -> Any:
        self.began.append(payload["n"])
        return payload["n"]


def numbered(n: int, timeout_ms: int = 0) -> lease_pb2.JobAssignment:
    return assignment(n, payload=json.dumps({"n": n}).encode(), timeout_ms=timeout_ms)


def assert_handed_back(result: lease_pb2.JobResult) -> None:
    """A waiting job returned unstarted: a 1 ms snooze, which gives the attempt back."""
    assert result.HasField("snooze") and result.snooze.delay.ToMilliseconds() == 1
    assert not result.failure.non_retryable


def test_hello_declares_concurrency_plus_prefetch_and_welcome_grants_it_all() -> None:
    h = Harness({"q": Recorder()}, concurrency=2, prefetch=3)
    s = h.engine.open_stream()
    hello = s.requests.get_nowait()
    assert hello is not None and hello.hello.capacity == 5
    h.engine.receive(s, lease_pb2.LeaseResponse(welcome=lease_pb2.Welcome(session_id="s1", protocol_version=1)))
    h.engine.tick()
    granted = s.requests.get_nowait()
    assert granted is not None and granted.credits == 5


def test_at_most_concurrency_handlers_run_and_the_rest_start_in_arrival_order() -> None:
    handler = Recorder()
    h = Harness({"q": handler}, concurrency=2, prefetch=3)
    s = h.connect()
    s.tick()
    s.assign(numbered(1), numbered(2), numbered(3), numbered(4), numbered(5))
    assert len(h.executor.pending) == 2
    assert (h.engine.running, h.engine.waiting, h.engine.held) == (2, 3, 5)
    assert s.tick() == []  # every slot is taken: no credit
    h.executor.run_next()  # job 1 returns; job 3 takes its handler
    assert handler.began == [1]
    assert len(h.executor.pending) == 2 and h.engine.waiting == 2
    [message] = s.tick()
    assert list(results([message])) == ["job1"] and message.credits == 1
    h.executor.run_all()
    assert handler.began == [1, 2, 3, 4, 5]
    sent = s.tick()
    assert sorted(results(sent)) == ["job2", "job3", "job4", "job5"]
    assert credits(sent) == 4
    assert (h.engine.running, h.engine.waiting, h.engine.held) == (0, 0, 0)


def test_the_heartbeat_names_waiting_jobs() -> None:
    h = Harness({"q": Recorder()}, concurrency=1, prefetch=2)
    s = h.connect(heartbeat_ms=500)
    s.tick()
    s.assign(numbered(1), numbered(2), numbered(3))
    h.clock.advance(0.5)
    [message] = s.tick()
    assert sorted(message.heartbeat.lease_tokens) == ["t1", "t2", "t3"]


def test_a_waiting_jobs_timeout_runs_from_delivery_and_fails_it_without_running_it() -> None:
    handler = Recorder()
    h = Harness({"q": handler}, concurrency=1, prefetch=1)
    s = h.connect()
    s.tick()
    s.assign(numbered(1), numbered(2, timeout_ms=500))
    assert h.engine.waiting == 1
    h.clock.advance(0.5)
    [message] = s.tick()
    [result] = message.results
    assert result.job_id == "job2"
    assert (result.failure.message, result.failure.non_retryable) == ("timed out after 500 ms", False)
    assert message.credits == 1  # its slot is free with the result
    h.executor.run_all()
    assert handler.began == [1]
    assert h.engine.waiting == 0


def test_a_cancel_of_a_waiting_job_reports_it_cancelled_without_running_it() -> None:
    handler = Recorder()
    h = Harness({"q": handler}, concurrency=1, prefetch=1)
    s = h.connect()
    s.tick()
    s.assign(numbered(1), numbered(2))
    s.send(cancels=[lease_pb2.CancelNotice(job_id="job2", lease_token="t2", reason="cancelled")])
    [message] = s.tick()
    [result] = message.results
    assert result.job_id == "job2"
    assert (result.failure.message, result.failure.non_retryable) == ("cancelled", True)
    assert message.credits == 1
    h.executor.run_all()
    assert handler.began == [1]
    assert sorted(results(s.tick())) == ["job1"]


def test_a_broker_timeout_notice_for_a_waiting_job_reports_the_timeout() -> None:
    handler = Recorder()
    h = Harness({"q": handler}, concurrency=1, prefetch=1)
    s = h.connect()
    s.tick()
    s.assign(numbered(1), numbered(2, timeout_ms=800))
    s.send(cancels=[lease_pb2.CancelNotice(job_id="job2", lease_token="t2", reason="timeout")])
    assert results(s.tick())["job2"].failure.message == "timed out after 800 ms"
    h.executor.run_all()
    assert handler.began == [1]


def test_a_lost_lease_drops_a_waiting_job() -> None:
    handler = Recorder()
    h = Harness({"q": handler}, concurrency=1, prefetch=1)
    s = h.connect()
    s.tick()
    s.assign(numbered(1), numbered(2))
    s.send(lost=["t2"])
    [message] = s.tick()
    assert len(message.results) == 0 and message.credits == 1
    h.executor.run_all()
    assert handler.began == [1]
    assert sorted(results(s.tick())) == ["job1"]


def test_the_end_of_a_stream_drops_its_waiting_jobs() -> None:
    handler = Recorder()
    h = Harness({"q": handler}, concurrency=1, prefetch=2)
    s = h.connect()
    s.tick()
    s.assign(numbered(1), numbered(2), numbered(3))
    s.end()
    assert h.engine.waiting == 0
    s2 = h.connect()
    assert credits(s2.tick()) == 2  # the old stream's handler still runs
    h.executor.run_all()
    assert handler.began == [1]
    sent = s2.tick()
    assert results(sent) == {} and credits(sent) == 1


def test_close_hands_waiting_jobs_back_at_once_and_lets_the_running_one_finish() -> None:
    handler = Recorder()
    h = Harness({"q": handler}, concurrency=1, prefetch=2)
    s = h.connect()
    s.tick()
    s.assign(numbered(1), numbered(2), numbered(3))
    h.engine.close(timeout=30)
    [message] = s.tick()
    assert sorted(results([message])) == ["job2", "job3"]
    for result in message.results:
        assert_handed_back(result)
    assert message.credits == 0
    assert not s.half_closed  # job 1 still runs
    h.executor.run_all()
    assert handler.began == [1]
    sent = s.tick()
    assert json.loads(results(sent)["job1"].result_json) == 1
    assert s.half_closed


def test_jobs_arriving_during_a_close_beyond_the_free_handlers_are_handed_back() -> None:
    handler = Recorder()
    h = Harness({"q": handler}, concurrency=1, prefetch=2)
    s = h.connect()
    s.tick()
    h.engine.close(timeout=30)
    s.assign(numbered(1), numbered(2), numbered(3))  # on credit granted before the close
    assert len(h.executor.pending) == 1
    sent = results(s.tick())
    assert sorted(sent) == ["job2", "job3"]
    assert_handed_back(sent["job2"])
    h.executor.run_all()
    assert handler.began == [1]


def test_a_drain_hands_waiting_jobs_back_and_half_closes_once_the_rest_is_acknowledged() -> None:
    handler = Recorder()
    h = Harness({"q": handler}, concurrency=1, prefetch=2)
    s = h.connect()
    s.tick()
    s.assign(numbered(1), numbered(2))
    drain = lease_pb2.Drain()
    drain.deadline.FromMilliseconds(5000)
    s.send(drain=drain)
    [message] = s.tick()
    [result] = message.results
    assert result.job_id == "job2"
    assert_handed_back(result)
    assert message.credits == 0
    s.assign(numbered(3))  # on credit granted before the drain: handed back as well
    assert_handed_back(results(s.tick())["job3"])
    h.executor.run_all()
    assert handler.began == [1]
    [message] = s.tick()
    assert list(results([message])) == ["job1"] and message.credits == 0
    s.send(acks=[lease_pb2.ResultAck(job_id=f"job{n}", lease_token=f"t{n}", accepted=True) for n in (1, 2, 3)])
    s.sent()
    assert s.half_closed


def test_prefetch_zero_declares_and_grants_concurrency_as_before() -> None:
    h = Harness({"q": Recorder()}, concurrency=3)
    s = h.engine.open_stream()
    hello = s.requests.get_nowait()
    assert hello is not None and hello.hello.capacity == 3
    assert h.engine.prefetch == 0


def test_the_worker_validates_prefetch() -> None:
    handlers = {"q": Recorder()}
    assert Worker(handlers, address="127.0.0.1:1").prefetch == 0
    assert Worker(handlers, address="127.0.0.1:1", concurrency=10, prefetch=99_990).prefetch == 99_990
    for bad in (-1, 1.5, True, "2", None):
        with pytest.raises(ValueError, match="prefetch must be an integer 0..99990"):
            Worker(handlers, address="127.0.0.1:1", concurrency=10, prefetch=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"prefetch must be an integer 0\.\.99990, got 99991"):
        Worker(handlers, address="127.0.0.1:1", concurrency=10, prefetch=99_991)
