"""The lease engine against docs/protocol.md, driven step by step (tests/fakes.py): a fake stream,
a fake clock and handlers that run when the test says. Hello, credits, results and what handlers
see; heartbeats, lost leases, cancels, timeouts, drains and closing: test_engine_timers.py."""

from __future__ import annotations

import json
from typing import Any, List

import pytest

from fakes import Harness, assignment, credits, echo, results

from baton import JobContext, JobStopped, NonRetryableError, RetryAfterError
from baton._lease_state import PROTOCOL_VERSION
from baton._version import SDK_NAME
from baton.v1 import lease_pb2


# --------------------------------------------------------------------------------------------------
# Hello, welcome, credits (sections 4 and 5)


def test_hello_is_the_first_message_and_no_credit_goes_out_before_welcome() -> None:
    h = Harness({"q": echo, "other": echo}, concurrency=5)
    s = h.engine.open_stream()
    hello = s.requests.get_nowait()
    assert hello is not None and hello.HasField("hello")
    assert list(hello.hello.queues) == ["q", "other"]
    assert hello.hello.capacity == 5
    assert hello.hello.worker_id == "w1"
    assert hello.hello.protocol_version == PROTOCOL_VERSION
    assert hello.hello.sdk == SDK_NAME
    assert not hello.HasField("heartbeat") and hello.credits == 0
    h.engine.tick()
    assert s.requests.empty()  # no welcome yet: nothing else


def test_welcome_grants_the_whole_capacity_once() -> None:
    h = Harness({"q": echo}, concurrency=4)
    s = h.connect()
    sent = s.tick()
    assert credits(sent) == 4
    assert s.tick() == []  # nothing more is owed


def test_a_finished_job_goes_out_with_the_credit_its_slot_frees() -> None:
    h = Harness({"q": echo}, concurrency=2)
    s = h.connect()
    s.tick()
    s.assign(assignment(1, payload=b'{"n": 12345678901234567890}'))
    assert len(h.executor.pending) == 1
    assert s.tick() == []  # still running: no result, no credit (held 1 + credit 1 = capacity)
    h.executor.run_all()
    [message] = s.tick()
    [result] = message.results
    assert (result.job_id, result.lease_token) == ("job1", "t1")
    assert json.loads(result.result_json) == {"got": {"n": 12345678901234567890}, "attempt": 1}
    assert message.credits == 1
    assert h.engine.held == 0


def test_results_are_batched_into_one_message() -> None:
    h = Harness({"q": echo}, concurrency=3)
    s = h.connect()
    s.tick()
    s.assign(assignment(1), assignment(2), assignment(3))
    h.executor.run_all()
    sent = s.tick()
    assert len(sent) == 1
    assert sorted(results(sent)) == ["job1", "job2", "job3"]
    assert sent[0].credits == 3


@pytest.mark.parametrize(
    ("concurrency", "prefetch", "finish_every"),
    [(3, 0, 2), (2, 2, 3)],
    ids=["no prefetch", "prefetch"],
)
def test_held_plus_outstanding_credit_never_exceeds_capacity(concurrency: int, prefetch: int, finish_every: int) -> None:
    # Capacity is concurrency + prefetch; handlers never run more than concurrency at once.
    h = Harness({"q": echo}, concurrency=concurrency, prefetch=prefetch)
    s = h.connect()
    granted = credits(s.tick())
    for n in range(1, 40):
        s.assign(assignment(n))
        granted -= 1
        if n % finish_every == 0:
            h.executor.run_next()
        granted += credits(s.tick())
        assert h.engine.held + granted <= concurrency + prefetch
        assert h.engine.running <= concurrency


def test_jobs_beyond_the_credit_are_still_handled() -> None:
    h = Harness({"q": echo}, concurrency=1)
    s = h.connect()
    s.tick()
    s.assign(assignment(1), assignment(2))  # one more than the credit
    h.executor.run_all()
    assert sorted(results(s.tick())) == ["job1", "job2"]


def test_a_lease_token_assigned_twice_is_ignored() -> None:
    h = Harness({"q": echo}, concurrency=3)
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    s.assign(assignment(1))
    assert len(h.executor.pending) == 1


# --------------------------------------------------------------------------------------------------
# Jobs and outcomes (sections 6 and 7)


def test_a_queue_without_handler_fails_retryably_and_bad_json_for_good() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    s.assign(assignment(1, queue="nobody"), assignment(2, payload=b"{not json"))
    assert h.executor.pending == []
    sent = results(s.tick())
    assert sent["job1"].failure.message == 'no handler for queue "nobody" on worker w1'
    assert not sent["job1"].failure.non_retryable
    assert sent["job2"].failure.message.startswith("payload is not valid JSON")
    assert sent["job2"].failure.non_retryable


def test_an_empty_payload_is_null() -> None:
    seen: List[Any] = []
    h = Harness({"q": lambda payload, ctx: seen.append((payload, ctx.payload_json))})
    s = h.connect()
    s.tick()
    s.assign(assignment(1, payload=None))
    h.executor.run_all()
    assert seen == [(None, "null")]
    assert results(s.tick())["job1"].result_json == b""  # None is JSON null: empty bytes


def test_handler_exceptions_become_failures() -> None:
    def fail(payload: Any, ctx: JobContext) -> Any:
        kind = payload["kind"]
        if kind == "plain":
            raise RuntimeError("boom")
        if kind == "final":
            raise NonRetryableError("bad input")
        if kind == "later":
            raise RetryAfterError("rate limited", 2.5)
        return {"not json": {1, 2}}

    h = Harness({"q": fail}, concurrency=4)
    s = h.connect()
    s.tick()
    for n, kind in enumerate(["plain", "final", "later", "set"], start=1):
        s.assign(assignment(n, payload=json.dumps({"kind": kind}).encode()))
    h.executor.run_all()
    sent = results(s.tick())
    assert sent["job1"].failure.message == "RuntimeError: boom"
    assert not sent["job1"].failure.non_retryable
    assert (sent["job2"].failure.message, sent["job2"].failure.non_retryable) == ("bad input", True)
    assert sent["job3"].failure.message == "rate limited"
    assert sent["job3"].failure.retry_after.ToMilliseconds() == 2500
    assert sent["job4"].failure.non_retryable
    assert sent["job4"].failure.message.startswith("the handler's result cannot be encoded as JSON")


def test_acks_are_consumed_and_refusals_do_not_resend() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    h.executor.run_all()
    assert "job1" in results(s.tick())
    s.send(acks=[lease_pb2.ResultAck(job_id="job1", lease_token="t1", accepted=False, error="stale lease")])
    assert s.stream.unacked == set()
    assert results(s.tick()) == {}


# --------------------------------------------------------------------------------------------------
# What handlers see


def test_the_context_carries_the_assignment() -> None:
    contexts: List[JobContext] = []
    h = Harness({"q": lambda payload, ctx: contexts.append(ctx)})
    s = h.connect()
    s.tick()
    a = assignment(7, payload=b'{"a": 1}', timeout_ms=1500, attempt=2)
    a.labels["team"] = "ops"
    a.traceparent = "00-abc-def-01"
    a.created_at.FromMilliseconds(1_700_000_000_000)
    s.assign(a)
    h.executor.run_all()
    [ctx] = contexts
    assert (ctx.id, ctx.queue, ctx.attempt, ctx.max_attempts) == ("job7", "q", 2, 3)
    assert ctx.labels == {"team": "ops"} and ctx.traceparent == "00-abc-def-01"
    assert ctx.timeout == 1.5 and ctx.worker_id == "w1"
    assert ctx.payload_json == '{"a": 1}'
    assert ctx.created_at is not None and ctx.created_at.timestamp() == 1_700_000_000


def test_check_and_sleep_raise_once_stopped() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    [(_, (held, _, _))] = h.executor.pending
    held.ctx.check()  # not stopped: returns
    s.send(cancels=[lease_pb2.CancelNotice(job_id="job1", lease_token="t1", reason="cancelled")])
    for stop in (held.ctx.check, lambda: held.ctx.sleep(60)):
        try:
            stop()
        except JobStopped as e:
            assert str(e) == "cancelled"
        else:
            raise AssertionError("JobStopped was not raised")
