"""The lease engine against docs/protocol.md, driven step by step (tests/fakes.py): a fake stream,
a fake clock and handlers that run when the test says."""

from __future__ import annotations

import json
from typing import Any, List

from fakes import Harness, assignment, credits, results

from baton import JobContext, JobStopped, NonRetryableError, RetryAfterError, StopReason
from baton._engine import PROTOCOL_VERSION, ClosePhase
from baton._version import SDK_NAME
from baton.v1 import lease_pb2


def echo(payload: Any, ctx: JobContext) -> Any:
    return {"got": payload, "attempt": ctx.attempt}


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


def test_held_plus_outstanding_credit_never_exceeds_capacity() -> None:
    h = Harness({"q": echo}, concurrency=3)
    s = h.connect()
    granted = credits(s.tick())
    for n in range(1, 30):
        s.assign(assignment(n))
        granted -= 1
        if n % 2 == 0:
            h.executor.run_next()
        granted += credits(s.tick())
        assert h.engine.held + granted <= 3


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
# Heartbeats and lost leases (sections 8 and 9)


def test_heartbeats_go_out_at_the_welcome_interval_with_the_running_tokens() -> None:
    h = Harness({"q": echo})
    s = h.connect(heartbeat_ms=700)
    s.tick()
    s.assign(assignment(1))
    h.clock.advance(0.69)
    assert s.tick() == []
    h.clock.advance(0.01)
    [message] = s.tick()
    assert message.HasField("heartbeat")
    assert list(message.heartbeat.lease_tokens) == ["t1"]
    h.executor.run_all()
    s.tick()
    h.clock.advance(0.7)
    [message] = s.tick()
    assert message.HasField("heartbeat")  # present with no tokens: it renews the session
    assert list(message.heartbeat.lease_tokens) == []


def test_the_next_wake_is_the_earliest_timer() -> None:
    h = Harness({"q": echo})
    s = h.connect(heartbeat_ms=700)
    wake = h.engine.tick()
    assert wake == h.clock.now + 0.7
    s.assign(assignment(1, timeout_ms=300))
    assert h.engine.tick() == h.clock.now + 0.3


def test_a_lost_lease_stops_the_handler_and_drops_its_result() -> None:
    h = Harness({"q": lambda payload, ctx: ctx.check()})
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    s.send(lost=["t1", "unknown"])
    [(fn, (held, _, _))] = h.executor.pending
    assert held.ctx.cancelled.is_set() and held.ctx.stop_reason is StopReason.LEASE_LOST
    assert s.tick() == []  # the slot stays taken until the handler returns
    h.executor.run_all()
    sent = s.tick()
    assert results(sent) == {}  # never reported
    assert credits(sent) == 1


def test_a_lost_lease_removes_a_queued_result() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    h.executor.run_all()  # the result is queued, not sent yet
    s.send(lost=["t1"])
    sent = s.tick()
    assert results(sent) == {}
    assert credits(sent) == 1


# --------------------------------------------------------------------------------------------------
# Progress (section 10)


def test_only_the_latest_progress_goes_out_and_none_after_the_result() -> None:
    contexts: List[JobContext] = []
    h = Harness({"q": lambda payload, ctx: contexts.append(ctx)})
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    [(_, (held, _, _))] = h.executor.pending
    held.ctx.progress({"step": 1})
    held.ctx.progress({"step": 2})
    [message] = s.tick()
    assert [json.loads(p.progress_json) for p in message.progress] == [{"step": 2}]
    h.executor.run_all()
    contexts[0].progress({"step": 3})  # after the outcome: ignored
    [message] = s.tick()
    assert len(message.results) == 1 and len(message.progress) == 0


# --------------------------------------------------------------------------------------------------
# Cancel and timeout (sections 11 and 12)


def test_a_cancel_reports_at_once_and_frees_the_slot_when_the_handler_returns() -> None:
    h = Harness({"q": lambda payload, ctx: ctx.sleep(60)}, concurrency=1)
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    s.send(cancels=[lease_pb2.CancelNotice(job_id="job1", lease_token="t1", reason="cancelled")])
    [message] = s.tick()
    [result] = message.results
    assert (result.failure.message, result.failure.non_retryable) == ("cancelled", True)
    assert message.credits == 0  # the handler still runs
    h.executor.run_all()  # ctx.sleep raises JobStopped at once: the event is set
    [message] = s.tick()
    assert len(message.results) == 0 and message.credits == 1


def test_a_cancel_for_a_token_not_held_is_ignored() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    s.send(cancels=[lease_pb2.CancelNotice(job_id="job9", lease_token="t9", reason="cancelled")])
    assert s.tick() == []


def test_the_timeout_fails_the_attempt_retryably_and_stops_the_handler() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    s.assign(assignment(1, timeout_ms=500))
    [(_, (held, _, _))] = h.executor.pending
    h.clock.advance(0.499)
    assert results(s.tick()) == {}
    h.clock.advance(0.001)
    result = results(s.tick())["job1"]
    assert (result.failure.message, result.failure.non_retryable) == ("timed out after 500 ms", False)
    assert held.ctx.stop_reason is StopReason.TIMEOUT
    h.executor.run_all()  # its late outcome is not sent
    assert results(s.tick()) == {}


def test_a_broker_timeout_notice_reports_the_timeout() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    s.assign(assignment(1, timeout_ms=500))
    s.send(cancels=[lease_pb2.CancelNotice(job_id="job1", lease_token="t1", reason="timeout")])
    assert results(s.tick())["job1"].failure.message == "timed out after 500 ms"


# --------------------------------------------------------------------------------------------------
# Drain and the end of a stream (sections 13 and 14)


def test_drain_stops_credits_and_half_closes_once_everything_is_acknowledged() -> None:
    h = Harness({"q": echo}, concurrency=2)
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    drain = lease_pb2.Drain()
    drain.deadline.FromMilliseconds(5000)
    s.send(drain=drain)
    h.executor.run_all()
    [message] = s.tick()
    assert len(message.results) == 1 and message.credits == 0
    assert not s.half_closed  # not acknowledged yet
    s.send(acks=[lease_pb2.ResultAck(job_id="job1", lease_token="t1", accepted=True)])
    s.sent()
    assert s.half_closed


def test_a_drain_the_broker_never_ends_is_cut_after_its_deadline() -> None:
    h = Harness({"q": lambda payload, ctx: None})
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    drain = lease_pb2.Drain()
    drain.deadline.FromMilliseconds(2000)
    s.send(drain=drain)
    h.clock.advance(2.999)
    s.tick()
    assert not s.cancelled
    h.clock.advance(0.001)
    s.tick()
    assert s.cancelled


def test_a_stream_end_drops_its_jobs_and_the_next_stream_counts_them_as_held() -> None:
    h = Harness({"q": lambda payload, ctx: ctx.check()}, concurrency=3)
    s = h.connect()
    s.tick()
    s.assign(assignment(1), assignment(2))
    [(_, (first, _, _)), _] = h.executor.pending
    s.end()
    assert first.ctx.stop_reason is StopReason.LEASE_LOST
    s2 = h.connect()
    assert credits(s2.tick()) == 1  # two handlers of the old stream still run
    h.executor.run_all()
    sent = s2.tick()
    assert results(sent) == {}  # never reported on the new stream
    assert credits(sent) == 2


def test_messages_of_an_ended_stream_are_ignored() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    s.end()
    s.assign(assignment(1))
    assert h.executor.pending == []


# --------------------------------------------------------------------------------------------------
# Closing (section 18)


def test_close_waits_for_running_handlers_then_half_closes() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    h.engine.close(timeout=30)
    assert s.tick() == []  # no credits while closing; the handler still has time
    h.executor.run_all()
    sent = s.tick()
    assert len(results(sent)) == 1 and credits(sent) == 0
    assert s.half_closed
    assert h.engine.tick() is not None  # waiting for the broker to end the stream
    s.end()
    assert h.engine.tick() is None


def test_close_stops_handlers_that_outlive_the_timeout() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    [(_, (held, _, _))] = h.executor.pending
    h.engine.close(timeout=2)
    h.clock.advance(2)
    sent = s.tick()
    assert results(sent)["job1"].failure.message == "worker closed before the job finished"
    assert held.ctx.stop_reason is StopReason.WORKER_CLOSING
    assert s.half_closed


def test_close_cuts_a_stream_the_broker_does_not_end() -> None:
    h = Harness({"q": echo})
    s = h.connect()
    s.tick()
    h.engine.close(timeout=1)
    s.tick()
    assert s.half_closed and not s.cancelled
    h.clock.advance(5)
    s.tick()
    assert s.cancelled
    assert h.engine._close_phase is ClosePhase.HALF_CLOSED
    s.end()
    assert h.engine.tick() is None


def test_close_without_a_stream_finishes_at_once() -> None:
    h = Harness({"q": echo})
    h.engine.close(timeout=1)
    h.engine.close(timeout=1)  # twice is fine
    assert h.engine.tick() is None


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
