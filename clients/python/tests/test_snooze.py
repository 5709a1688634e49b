"""Snooze in the Python worker: ``raise Snooze(seconds)`` goes out as ``JobResult.snooze`` (with the
retryable failure an older broker would record instead), and a bad delay is the handler's bug."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fakes import Harness, assignment, results

from baton import JobContext, Snooze


def test_a_snooze_goes_out_with_its_delay_and_a_fallback_failure() -> None:
    def handler(payload: Any, ctx: JobContext) -> Any:
        raise Snooze(payload["seconds"])

    h = Harness({"q": handler}, concurrency=2)
    s = h.connect()
    s.tick()
    s.assign(assignment(1, payload=json.dumps({"seconds": 0.2}).encode()))
    s.assign(assignment(2, payload=json.dumps({"seconds": 0.0001}).encode()))
    h.executor.run_all()
    sent = results(s.tick())
    assert sent["job1"].snooze.delay.ToMilliseconds() == 200
    assert sent["job1"].failure.retry_after.ToMilliseconds() == 200
    assert sent["job1"].failure.message == "snoozed for 200 ms"
    assert not sent["job1"].failure.non_retryable
    # Rounded up: a delay the broker would refuse as 0 is never sent.
    assert sent["job2"].snooze.delay.ToMilliseconds() == 1


def test_other_outcomes_carry_no_snooze() -> None:
    h = Harness({"q": lambda payload, ctx: {"ok": True}})
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    h.executor.run_all()
    assert not results(s.tick())["job1"].HasField("snooze")


@pytest.mark.parametrize("seconds", [0, -1, math.nan, math.inf, 365 * 24 * 3600 + 1])
def test_a_delay_the_broker_would_refuse_is_refused_when_raised(seconds: float) -> None:
    with pytest.raises(ValueError):
        Snooze(seconds)


def test_a_bad_delay_fails_the_attempt_like_any_bug_of_the_handler() -> None:
    def handler(payload: Any, ctx: JobContext) -> Any:
        raise Snooze(0)

    h = Harness({"q": handler})
    s = h.connect()
    s.tick()
    s.assign(assignment(1))
    h.executor.run_all()
    sent = results(s.tick())["job1"]
    assert not sent.HasField("snooze")
    assert sent.failure.message.startswith("ValueError: Snooze: seconds must be more than 0")
