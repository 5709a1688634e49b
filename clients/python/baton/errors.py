"""The exceptions of the package: the ones handlers raise to steer retries, the one a handler meets
once its job is stopped, and the ones the producer Client raises, so that callers can tell a failed
call from a failed job without parsing messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import grpc

if TYPE_CHECKING:
    from .jobs import Job


class NonRetryableError(Exception):
    """Raise from a handler when retrying cannot help (bad input, a missing record): the job is FAILED
    at once, whatever attempts remain. Reported as ``JobFailure.non_retryable``."""


class RetryAfterError(Exception):
    """Raise from a handler to fail this attempt and ask for the next one no sooner than ``seconds``
    from now (a rate limit, a dependency known to be down), overriding the job's backoff. The attempt
    still counts."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        if not seconds >= 0:  # also refuses NaN
            raise ValueError(f"RetryAfterError: seconds must be >= 0, got {seconds!r}")
        #: The least time to wait before the next attempt.
        self.seconds = float(seconds)


#: The longest snooze the broker takes (``JobSnooze.delay``): 365 days.
MAX_SNOOZE_SECONDS = 365 * 24 * 3600.0


class Snooze(Exception):
    """Raise from a handler to run the job again after ``seconds`` without spending an attempt
    (River's JobSnooze): an upstream that is not ready yet, a poll that found nothing. The job goes
    back to SCHEDULED, its ``attempt`` does not go up and no error is recorded; the broker counts the
    snoozes in the job's label ``baton.snoozes``. ``seconds`` must be more than 0 and at most 365 days
    (rounded up to a whole millisecond). Reported as ``JobResult.snooze``."""

    def __init__(self, seconds: float) -> None:
        if not 0 < seconds <= MAX_SNOOZE_SECONDS:  # also refuses NaN
            raise ValueError(f"Snooze: seconds must be more than 0 and at most 365 days, got {seconds!r}")
        super().__init__(f"snoozed for {seconds:g} s")
        #: How long the job waits before it runs again.
        self.seconds = float(seconds)


class JobStopped(Exception):
    """Raised by ``JobContext.check()`` and ``JobContext.sleep()`` once the job was cancelled, timed
    out, lost its lease or the worker is closing. Its outcome has already been reported; let it
    propagate."""


class BatonError(Exception):
    """A call to the broker failed. ``code`` is the gRPC status (``grpc.StatusCode.NOT_FOUND``, ...);
    ``message`` is the broker's text, exactly."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "BatonError":
        """The status of a failed grpcio call. The broker's main port also sends the message as UTF-8
        in the ``baton-message-bin`` trailer (docs/protocol.md, section 15); it wins when present."""
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        message = error.details() if isinstance(error, grpc.Call) else str(error)
        if isinstance(error, grpc.Call):
            for key, value in error.trailing_metadata() or ():
                if key == "baton-message-bin" and isinstance(value, bytes):
                    message = value.decode("utf-8", errors="replace")
        return cls(code or grpc.StatusCode.UNKNOWN, message or "")


class JobFailedError(Exception):
    """``Client.result()`` waited for a job that ended FAILED; ``job`` has its errors."""

    def __init__(self, job: "Job") -> None:
        last: Optional[str] = job.errors[-1].message if job.errors else None
        super().__init__(f"job {job.id} failed" + (f": {last}" if last else ""))
        self.job = job


class JobCancelledError(Exception):
    """``Client.result()`` waited for a job that ended CANCELLED."""

    def __init__(self, job: "Job") -> None:
        super().__init__(f"job {job.id} was cancelled")
        self.job = job
