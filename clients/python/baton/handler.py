"""What a handler is given: the payload (parsed JSON) and a JobContext, everything else about the
running attempt, including how it learns that it should stop."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Dict, Optional

from .errors import JobStopped


class StopReason(enum.Enum):
    """Why the worker told a handler to stop (``JobContext.stop_reason``)."""

    #: A producer called Cancel.
    CANCELLED = "cancelled"
    #: The job's timeout passed.
    TIMEOUT = "timeout"
    #: The broker gave the job up: the stream ended or the session expired. It runs again elsewhere.
    LEASE_LOST = "lease lost"
    #: The worker is closing and the handler did not finish within the close timeout.
    WORKER_CLOSING = "worker closing"


@dataclass
class JobContext:
    """One attempt of a job, as a handler sees it (the payload is the handler's first argument).

    Python cannot stop a thread from outside, so stopping is cooperative: ``cancelled`` is set when the
    job is cancelled, times out, loses its lease or the worker closes. Long handlers wait on it
    (``sleep``) or look at it (``check``). The outcome is reported as soon as it is set; the handler's
    slot stays taken until it returns.
    """

    id: str
    queue: str
    #: This attempt's number, from 1.
    attempt: int
    #: Attempts allowed in all; ``attempt == max_attempts`` is the last try.
    max_attempts: int
    priority: int
    labels: Dict[str, str]
    #: W3C trace context from the producer; empty when none was given.
    traceparent: str
    #: When the job was enqueued (UTC), if the broker said.
    created_at: Optional[datetime]
    #: Seconds this attempt may run; None: no limit. The worker enforces it.
    timeout: Optional[float]
    #: This worker's id.
    worker_id: str
    #: The payload as the exact JSON text the broker sent ("null" when empty).
    payload_json: str
    #: Set when the handler should stop; ``stop_reason`` says why.
    cancelled: threading.Event = field(default_factory=threading.Event)
    stop_reason: Optional[StopReason] = None
    _progress: Callable[[Any], None] = field(default=lambda value: None, repr=False)

    def check(self) -> None:
        """Raises JobStopped if the handler should stop."""
        if self.cancelled.is_set():
            raise JobStopped(self._why())

    def sleep(self, seconds: float) -> None:
        """Sleeps, or raises JobStopped as soon as the handler should stop."""
        if self.cancelled.wait(max(0.0, seconds)):
            raise JobStopped(self._why())

    def progress(self, value: Any) -> None:
        """Reports progress (any JSON value); only the latest value goes out, with the next message.
        Raises TypeError or ValueError if the value cannot be JSON-encoded; ignored once the job has
        been reported."""
        self._progress(value)

    def _why(self) -> str:
        return self.stop_reason.value if self.stop_reason else "stopped"


#: A handler: ``handler(payload, ctx) -> result``, run on a thread of the worker's pool. The result is
#: any JSON-encodable value (None is JSON null). Raise to fail the attempt: NonRetryableError fails
#: the job for good, RetryAfterError picks the wait before the next attempt.
Handler = Callable[[Any, JobContext], Any]
