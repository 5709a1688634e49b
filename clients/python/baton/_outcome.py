"""How a handler's return value or exception becomes a JobResult (docs/protocol.md, section 7)."""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Optional

from .errors import JobStopped, NonRetryableError, RetryAfterError, Snooze
from .v1 import lease_pb2

#: The broker keeps the first 4,000 characters of a failure message.
MAX_MESSAGE = 4000


def encode_json(value: Any) -> bytes:
    """JSON text as the broker stores it: compact, no NaN or Infinity (they are not JSON)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


def success(value: Any) -> lease_pb2.JobResult:
    """A successful result; a value JSON cannot encode fails the job for good instead."""
    try:
        data = b"" if value is None else encode_json(value)
    except (TypeError, ValueError) as e:
        return failure(f"the handler's result cannot be encoded as JSON: {e}", non_retryable=True)
    return lease_pb2.JobResult(result_json=data)


def failure(message: str, non_retryable: bool = False, retry_after: Optional[float] = None) -> lease_pb2.JobResult:
    """A failed attempt; ``retry_after`` in seconds."""
    result = lease_pb2.JobResult(
        failure=lease_pb2.JobFailure(message=message[:MAX_MESSAGE] or "failed (no message given)", non_retryable=non_retryable)
    )
    if retry_after is not None and retry_after > 0:
        result.failure.retry_after.FromMilliseconds(int(retry_after * 1000))
    return result


def snooze(seconds: float) -> lease_pb2.JobResult:
    """A snooze, with a retryable failure beside it that only a broker older than snooze records
    (a retry after the same delay, rather than the success it would make of a result it cannot read)."""
    ms = max(1, math.ceil(seconds * 1000))
    result = failure(f"snoozed for {ms} ms")
    result.failure.retry_after.FromMilliseconds(ms)
    result.snooze.delay.FromMilliseconds(ms)
    return result


def run(call: Callable[[], Any]) -> lease_pb2.JobResult:
    """Runs a handler call and returns its outcome; never raises."""
    try:
        return success(call())
    except NonRetryableError as e:
        return failure(str(e) or type(e).__name__, non_retryable=True)
    except RetryAfterError as e:
        return failure(str(e) or type(e).__name__, retry_after=e.seconds)
    except Snooze as e:
        return snooze(e.seconds)
    except JobStopped as e:
        return failure(str(e) or "stopped")
    except Exception as e:  # a handler's bug fails the attempt, retryably
        return failure(f"{type(e).__name__}: {e}")
