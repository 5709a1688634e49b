"""The state the Lease engine (_engine.py) keeps: a held job's phase, the steps of a graceful
close, one stream and what is owed on it, and the protocol's default timings."""

from __future__ import annotations

import enum
import logging
import queue
from dataclasses import dataclass, field
from datetime import timezone
from typing import Callable, Dict, List, Optional, Set

from .handler import JobContext
from .v1 import lease_pb2

#: The Lease protocol version this library speaks.
PROTOCOL_VERSION = 1
#: Used when the broker's Welcome names no heartbeat interval / its Drain no deadline.
DEFAULT_HEARTBEAT_S = 10.0
DEFAULT_DRAIN_S = 30.0
#: How long a closing worker waits for the broker to end the stream after half-closing it.
CLOSE_GRACE_S = 5.0
#: A draining stream the broker has not ended this long after its deadline is cut.
DRAIN_GRACE_S = 1.0
#: The clock thread looks around at least this often.
IDLE_TICK_S = 1.0

log = logging.getLogger("baton")

NEVER = float("inf")


class Phase(enum.Enum):
    """Where a held job is, from its assignment to its end in this process."""

    #: The handler runs and nothing is reported yet.
    RUNNING = "running"
    #: The outcome is decided and waits for the next message.
    QUEUED = "queued"
    #: The result went out on its stream.
    SENT = "sent"
    #: The lease is gone (lost, or its stream ended): nothing will be sent for it.
    DROPPED = "dropped"


class ClosePhase(enum.Enum):
    """The steps of a graceful close (docs/protocol.md, section 18)."""

    #: Not closing.
    OPEN = "open"
    #: No new credits; running handlers have until the close deadline.
    WAITING = "waiting"
    #: Outcomes sent and the stream half-closed; waiting (CLOSE_GRACE_S at most) for the broker to end it.
    HALF_CLOSED = "half-closed"
    #: Nothing left to do.
    DONE = "done"


@dataclass(eq=False)
class LeaseStream:
    """One Lease stream (a session) and what is owed on it."""

    #: What to send, in order; None half-closes the stream.
    requests: "queue.Queue[Optional[lease_pb2.LeaseRequest]]" = field(default_factory=queue.Queue)
    #: Cancels the call; set by whoever opened it.
    cancel: Callable[[], None] = lambda: None
    welcomed: bool = False
    draining: bool = False
    #: We half-closed and wait for the broker to end the stream.
    ending: bool = False
    ended: bool = False
    #: Credits granted and not yet used by assignments.
    credit: int = 0
    results: List[lease_pb2.JobResult] = field(default_factory=list)
    progress: Dict[str, lease_pb2.JobProgress] = field(default_factory=dict)
    heartbeat_every: float = DEFAULT_HEARTBEAT_S
    next_heartbeat: float = NEVER
    #: When a draining stream is cut if the broker has not ended it.
    drain_backstop: float = NEVER
    #: Lease tokens of results sent and not yet acknowledged.
    unacked: Set[str] = field(default_factory=set)


@dataclass(eq=False)
class Held:
    """A job this process holds: from its assignment until its handler returned and its result went
    out (or was dropped). It counts against the capacity all that time, across streams."""

    token: str
    ctx: JobContext
    stream: LeaseStream
    deadline: float = NEVER
    phase: Phase = Phase.RUNNING
    #: The handler returned (or never ran).
    settled: bool = False


def job_context(a: lease_pb2.JobAssignment, worker_id: str) -> JobContext:
    """What the handler is told of its job, from the broker's assignment."""
    timeout = a.timeout.ToMilliseconds() / 1000 if a.HasField("timeout") else 0
    return JobContext(
        id=a.job_id,
        queue=a.queue,
        attempt=a.attempt,
        max_attempts=a.max_attempts,
        priority=a.priority,
        labels=dict(a.labels),
        traceparent=a.traceparent,
        created_at=a.created_at.ToDatetime(tzinfo=timezone.utc) if a.HasField("created_at") else None,
        timeout=timeout or None,
        worker_id=worker_id,
        payload_json=a.payload_json.decode("utf-8", errors="replace") if a.payload_json else "null",
    )
