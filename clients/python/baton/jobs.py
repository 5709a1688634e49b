"""Jobs as the producer Client hands them out: plain values (a JobStatus enum, datetimes, seconds,
parsed JSON) instead of protobuf messages, and their translation to and from the wire."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence

from google.protobuf import duration_pb2, timestamp_pb2

from ._outcome import encode_json
from .v1 import broker_pb2, job_pb2


class JobStatus(enum.Enum):
    """Where a job is in its lifecycle (docs/state-machine.md)."""

    #: Runnable now: waiting for a worker with credit and a free concurrency slot.
    PENDING = "pending"
    #: Not runnable yet: its run_at is in the future, as requested or while a retry backs off.
    SCHEDULED = "scheduled"
    #: Held by a worker.
    RUNNING = "running"
    #: Terminal: the handler succeeded.
    COMPLETED = "completed"
    #: Terminal: attempts exhausted or a non-retryable failure. ``Client.retry`` revives it.
    FAILED = "failed"
    #: Terminal: cancelled. ``Client.retry`` revives it.
    CANCELLED = "cancelled"
    #: A status a newer broker added that this library does not know.
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        """True for the statuses a job never leaves by itself."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    @classmethod
    def from_proto(cls, value: int) -> "JobStatus":
        return _FROM_PROTO.get(value, JobStatus.UNKNOWN)

    def to_proto(self) -> "job_pb2.JobStatus":
        if self not in _TO_PROTO:
            raise ValueError(f"{self} has no wire value")
        return _TO_PROTO[self]


_TO_PROTO: Dict[JobStatus, "job_pb2.JobStatus"] = {
    JobStatus.PENDING: job_pb2.JOB_STATUS_PENDING,
    JobStatus.SCHEDULED: job_pb2.JOB_STATUS_SCHEDULED,
    JobStatus.RUNNING: job_pb2.JOB_STATUS_RUNNING,
    JobStatus.COMPLETED: job_pb2.JOB_STATUS_COMPLETED,
    JobStatus.FAILED: job_pb2.JOB_STATUS_FAILED,
    JobStatus.CANCELLED: job_pb2.JOB_STATUS_CANCELLED,
}
_FROM_PROTO: Dict[int, JobStatus] = {int(wire): status for status, wire in _TO_PROTO.items()}


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between attempts, in seconds: the delay before attempt n+1 is
    ``min(max_backoff, initial_backoff * multiplier**(n-1))``, less a random fraction up to ``jitter``."""

    initial_backoff: float = 1.0
    max_backoff: float = 600.0
    multiplier: float = 2.0
    jitter: float = 0.2


@dataclass(frozen=True)
class AttemptError:
    """The error of one failed attempt."""

    attempt: int
    message: str
    at: Optional[datetime] = None
    #: The worker that held the attempt; None when the broker failed it before any worker took it.
    worker_id: Optional[str] = None


@dataclass(frozen=True)
class Job:
    """A job as the broker stores it. Optional fields are None when the broker left them empty.
    ``payload``, ``result`` and ``progress`` are parsed from the exact JSON text (``*_json``), so
    integers keep every digit."""

    id: str
    queue: str
    status: JobStatus
    payload: Any = None
    #: The payload as the exact JSON text the broker stores (PostgreSQL's formatting, e.g. ``{"n": 1}``).
    payload_json: str = "null"
    priority: int = 0
    run_at: Optional[datetime] = None
    #: Attempts started so far.
    attempt: int = 0
    max_attempts: int = 0
    retry_policy: Optional[RetryPolicy] = None
    #: Seconds one attempt may run; None: no limit.
    timeout: Optional[float] = None
    idempotency_key: Optional[str] = None
    labels: Dict[str, str] = field(default_factory=dict)
    result: Any = None
    result_json: Optional[str] = None
    #: Every failed attempt's error, oldest first.
    errors: List[AttemptError] = field(default_factory=list)
    created_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    worker_id: Optional[str] = None
    cancel_requested: bool = False
    progress: Any = None
    progress_json: Optional[str] = None
    traceparent: Optional[str] = None


@dataclass(frozen=True)
class EnqueuedJob(Job):
    """A job just enqueued."""

    #: True when the idempotency key matched an earlier job, which is the one returned.
    duplicate: bool = False


@dataclass(frozen=True)
class JobChange:
    """One change of ``Client.watch_queue``: the job's id, queue and new status (``get`` the rest)."""

    id: str
    queue: str
    status: JobStatus


@dataclass(frozen=True)
class JobPage:
    """One page of ``Client.list``, newest first."""

    jobs: List[Job]
    #: Pass as ``page_token`` for the next page; None on the last page.
    next_page_token: Optional[str] = None


@dataclass(frozen=True)
class ServerInfo:
    """What a broker speaks."""

    version: str
    protocol_version: int
    capabilities: List[str]
    #: Seconds; None when the broker did not say.
    lease_ttl: Optional[float]
    max_payload_bytes: int


@dataclass(frozen=True)
class UniqueOptions:
    """At most one job of the queue holds ``key`` at a time (docs/scheduling.md, "Unique jobs"): an
    enqueue while it is held returns the holder with ``duplicate`` set."""

    key: str
    #: The holder keeps the key at most this many seconds after its enqueue; None: no limit.
    window: Optional[float] = None
    #: The statuses in which the holder keeps the key; empty: PENDING, SCHEDULED and RUNNING.
    states: Sequence[JobStatus] = ()


@dataclass(frozen=True)
class EnqueueItem:
    """One job to store; everything left out takes the queue's or the broker's default. ``payload``
    is any JSON-encodable value. Times are datetimes (naive ones are taken as UTC), durations seconds."""

    queue: str
    payload: Any = None
    #: Higher runs first, -1000..1000.
    priority: int = 0
    #: Do not start before this time. Exclusive with ``delay``.
    run_at: Optional[datetime] = None
    #: Do not start before now + delay seconds. Exclusive with ``run_at``.
    delay: Optional[float] = None
    #: Attempts allowed in all, 1..1000; None: the queue's default.
    max_attempts: Optional[int] = None
    retry_policy: Optional[RetryPolicy] = None
    #: Longest one attempt may run, in seconds; None: the queue's default.
    timeout: Optional[float] = None
    #: At most one job with this key exists; a repeat returns the first (``duplicate`` set).
    idempotency_key: Optional[str] = None
    labels: Mapping[str, str] = field(default_factory=dict)
    #: W3C trace context handed to the worker.
    traceparent: Optional[str] = None
    #: A unique key (exclusive with ``idempotency_key``).
    unique: Optional[UniqueOptions] = None
    #: The key its queue's per-key rate limit counts the job under (e.g. a customer id).
    rate_limit_key: Optional[str] = None
    #: The key (e.g. a tenant) a queue with fair keys takes in turn and limits per key.
    concurrency_key: Optional[str] = None


# --------------------------------------------------------------------------------------------------
# To the wire


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def _timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc))
    return t


def enqueue_request(item: EnqueueItem) -> broker_pb2.EnqueueRequest:
    """The wire request; raises ValueError for options no broker would accept."""
    if item.run_at is not None and item.delay is not None:
        raise ValueError("enqueue: give run_at or delay, not both")
    req = broker_pb2.EnqueueRequest(
        queue=item.queue,
        # JSON text as bytes, stored as is (docs/encoding.md): no google.protobuf.Value conversion.
        payload_json=encode_json(item.payload),
        priority=item.priority,
        max_attempts=item.max_attempts or 0,
        idempotency_key=item.idempotency_key or "",
        labels=dict(item.labels),
        traceparent=item.traceparent or "",
        rate_limit_key=item.rate_limit_key or "",
        concurrency_key=item.concurrency_key or "",
    )
    if item.run_at is not None:
        req.run_at.CopyFrom(_timestamp(item.run_at))
    if item.delay is not None:
        req.delay.CopyFrom(_duration(item.delay))
    if item.timeout is not None:
        req.timeout.CopyFrom(_duration(item.timeout))
    if item.unique is not None:
        if item.idempotency_key is not None:
            raise ValueError("enqueue: give unique or idempotency_key, not both")
        req.unique.key = item.unique.key
        if item.unique.window is not None:
            req.unique.window.CopyFrom(_duration(item.unique.window))
        req.unique.states.extend(s.to_proto() for s in item.unique.states)
    if item.retry_policy is not None:
        # Every field is sent: proto3 cannot tell "unset" from 0.
        p = item.retry_policy
        req.retry_policy.initial_backoff.CopyFrom(_duration(p.initial_backoff))
        req.retry_policy.max_backoff.CopyFrom(_duration(p.max_backoff))
        req.retry_policy.multiplier = p.multiplier
        req.retry_policy.jitter = p.jitter
    return req


# --------------------------------------------------------------------------------------------------
# From the wire


def _text(data: bytes) -> Optional[str]:
    return data.decode("utf-8") if data else None


def _json(data: bytes) -> Any:
    return json.loads(data) if data else None


def _seconds(message: Any, name: str) -> Optional[float]:
    if not message.HasField(name):
        return None
    nanos: int = getattr(message, name).ToNanoseconds()
    return nanos / 1e9


def _datetime(message: Any, name: str) -> Optional[datetime]:
    if not message.HasField(name):
        return None
    at: datetime = getattr(message, name).ToDatetime(tzinfo=timezone.utc)
    return at


def job_fields(m: job_pb2.Job) -> Dict[str, Any]:
    """The fields of a Job (or EnqueuedJob) read from the wire message."""
    policy = None
    if m.HasField("retry_policy"):
        p = m.retry_policy
        defaults = RetryPolicy()
        policy = RetryPolicy(
            initial_backoff=_seconds(p, "initial_backoff") or defaults.initial_backoff,
            max_backoff=_seconds(p, "max_backoff") or defaults.max_backoff,
            multiplier=p.multiplier if p.HasField("multiplier") else defaults.multiplier,
            jitter=p.jitter if p.HasField("jitter") else defaults.jitter,
        )
    timeout = _seconds(m, "timeout")
    return dict(
        id=m.id,
        queue=m.queue,
        status=JobStatus.from_proto(m.status),
        payload=_json(m.payload_json),
        payload_json=_text(m.payload_json) or "null",
        priority=m.priority,
        run_at=_datetime(m, "run_at"),
        attempt=m.attempt,
        max_attempts=m.max_attempts,
        retry_policy=policy,
        timeout=timeout or None,
        idempotency_key=m.idempotency_key or None,
        labels=dict(m.labels),
        result=_json(m.result_json),
        result_json=_text(m.result_json),
        errors=[
            AttemptError(e.attempt, e.message, _datetime(e, "at"), e.worker_id or None) for e in m.errors
        ],
        created_at=_datetime(m, "created_at"),
        started_at=_datetime(m, "started_at"),
        finished_at=_datetime(m, "finished_at"),
        worker_id=m.worker_id or None,
        cancel_requested=m.cancel_requested,
        progress=_json(m.progress_json),
        progress_json=_text(m.progress_json),
        traceparent=m.traceparent or None,
    )


def job_from_proto(m: job_pb2.Job) -> Job:
    return Job(**job_fields(m))


def enqueued_from_proto(r: broker_pb2.EnqueueResponse) -> EnqueuedJob:
    return EnqueuedJob(**job_fields(r.job), duplicate=r.duplicate)
