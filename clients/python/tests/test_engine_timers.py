"""The lease engine against docs/protocol.md, driven step by step (tests/fakes.py): heartbeats, lost
leases, progress, cancels, timeouts, drains, the end of a stream and closing. Hello, credits,
results and what handlers see: test_engine.py."""

from __future__ import annotations

import json
from typing import List

from fakes import Harness, assignment, credits, echo, results

from baton import JobContext, JobStopped, StopReason
from baton._lease_state import ClosePhase
from baton.v1 import lease_pb2


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
