"""What a Baton handler sees, for baton_worker: the Job, the exceptions a handler raises or meets, and how
its outcome becomes a JobResult. Importing this module puts ./gen on ``sys.path`` for the stubs.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

_GEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen")
if _GEN not in sys.path:
    sys.path.insert(0, _GEN)

from baton.v1 import lease_pb2  # noqa: E402


class NonRetryableError(Exception):
    """Raise from a handler when retrying cannot help: the job is FAILED at once."""


class RetryAfterError(Exception):
    """Raise from a handler to fail this attempt and ask for the next no sooner than ``seconds``."""

    def __init__(self, message: str, seconds: float):
        super().__init__(message)
        self.seconds = seconds


class JobStopped(Exception):
    """Raised by ``Job.check()``/``Job.sleep()`` once the job was cancelled, timed out, lost or the worker closes."""


@dataclass
class Job:
    """One attempt of a job, as a handler sees it."""

    id: str
    queue: str
    payload: Any
    attempt: int
    max_attempts: int
    priority: int
    labels: Dict[str, str]
    traceparent: str
    #: Seconds since the epoch.
    created_at: float
    #: Seconds this attempt may run (None: no limit). The worker enforces it.
    timeout: Optional[float]
    worker_id: str
    #: Set when the handler should stop; ``stop_reason`` says why.
    cancelled: threading.Event = field(default_factory=threading.Event)
    #: "cancelled", "timeout", "lease lost" or "worker closing" once ``cancelled`` is set.
    stop_reason: Optional[str] = None
    _progress: Callable[[Any], None] = field(default=lambda value: None, repr=False)

    def check(self) -> None:
        """Raises JobStopped if the handler should stop."""
        if self.cancelled.is_set():
            raise JobStopped(self.stop_reason or "stopped")

    def sleep(self, seconds: float) -> None:
        """Sleeps, or raises JobStopped as soon as the job is stopped."""
        if self.cancelled.wait(max(0.0, seconds)):
            raise JobStopped(self.stop_reason or "stopped")

    def progress(self, value: Any) -> None:
        """Reports progress (any JSON value); the latest value is sent with the next message."""
        self._progress(value)


Handler = Callable[[Any, Job], Any]


def success(value: Any) -> lease_pb2.JobResult:
    try:
        data = b"" if value is None else json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        return failure(f"the handler's result cannot be encoded as JSON: {e}", non_retryable=True)
    return lease_pb2.JobResult(result_json=data)


def failure(message: str, non_retryable: bool = False, retry_after: Optional[float] = None) -> lease_pb2.JobResult:
    result = lease_pb2.JobResult(failure=lease_pb2.JobFailure(message=message[:4000], non_retryable=non_retryable))
    if retry_after is not None and retry_after > 0:
        result.failure.retry_after.FromMilliseconds(int(retry_after * 1000))
    return result
