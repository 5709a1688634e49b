"""The Lease protocol engine behind baton_worker.Worker: one stream from Hello to its end, the broker's
messages and the jobs they assign, and the clock thread that decides what to send and when. Worker
adds configuration, channels, reconnecting and closing on top.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

import grpc

# baton_job first: importing it puts ./gen on sys.path, where baton.v1 is.
from baton_job import Handler, Job, JobStopped, NonRetryableError, RetryAfterError, failure, success
from baton.v1 import broker_pb2_grpc, lease_pb2

#: The Lease protocol version this library speaks.
PROTOCOL_VERSION = 1
SDK_NAME = "baton-python/0.1.0"
#: Used when the broker's Welcome names no heartbeat interval / its Drain no deadline.
DEFAULT_HEARTBEAT_S = 10.0
DEFAULT_DRAIN_S = 30.0

log = logging.getLogger("baton")


@dataclass
class _Session:
    """One Lease stream and what is owed on it."""

    requests: "queue.Queue[Optional[lease_pb2.LeaseRequest]]" = field(default_factory=queue.Queue)
    call: Any = None
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
    next_heartbeat: float = float("inf")
    #: Monotonic time after which a draining stream is cut if the broker has not ended it.
    drain_backstop: float = float("inf")
    #: Lease tokens of results sent and not yet acknowledged.
    unacked: set = field(default_factory=set)


@dataclass
class _Held:
    """A job this process holds: from assignment until its handler returned and its result went out (or was dropped)."""

    token: str
    job: Job
    session: _Session
    deadline: float = float("inf")
    #: running -> queued (result waiting for the next flush) -> sent; or dropped (lease gone).
    phase: str = "running"
    settled: bool = False


class LeaseEngine:
    """The state of the jobs held and of the current Lease stream, all guarded by ``self._cond``.

    ``_lease(stub)`` runs one stream; ``_clock()`` runs on its own thread. ``_closing`` and the
    ``_close_*`` fields are set by ``Worker.close()``.
    """

    def __init__(
        self,
        handlers: Dict[str, Handler],
        concurrency: int,
        worker_id: str,
        metadata: Optional[List[Tuple[str, str]]],
    ):
        self.handlers = dict(handlers)
        self.queues = list(self.handlers)
        self.concurrency = concurrency
        self.worker_id = worker_id
        self._metadata = metadata
        self._cond = threading.Condition(threading.Lock())
        self._held: Dict[str, _Held] = {}
        self._session: Optional[_Session] = None
        self._dirty = False
        self._closing = False
        self._close_deadline = float("inf")
        self._close_phase = "open"  # open -> waiting -> final (half-closed at _close_sent)
        self._close_sent = 0.0
        self._stopped = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="baton-job")

    # ----------------------------------------------------------------------------------------------
    # One Lease stream

    def _lease(self, stub: broker_pb2_grpc.BrokerStub):
        s = _Session()
        hello = lease_pb2.LeaseRequest(
            hello=lease_pb2.Hello(
                worker_id=self.worker_id,
                queues=self.queues,
                capacity=self.concurrency,
                protocol_version=PROTOCOL_VERSION,
                sdk=SDK_NAME,
            )
        )
        s.requests.put(hello)

        def requests() -> Iterator[lease_pb2.LeaseRequest]:
            while True:
                message = s.requests.get()
                if message is None:
                    return  # half-close
                yield message

        with self._cond:
            self._session = s
        error = None
        try:
            s.call = stub.Lease(requests(), metadata=self._metadata)
            for response in s.call:
                with self._cond:
                    self._on_response(s, response)
        except grpc.RpcError as e:
            error = f"{e.code().name}: {e.details()}" if hasattr(e, "code") else str(e)
        except Exception as e:  # a bug of ours must not lose the stream silently
            log.exception("lease stream handling failed")
            error = str(e)
            if s.call is not None:
                s.call.cancel()
        with self._cond:
            self._end_session(s)
        return s.welcomed, s.draining, error

    def _on_response(self, s: _Session, res: lease_pb2.LeaseResponse) -> None:
        if s.ended:
            return
        if res.HasField("welcome") and not s.welcomed:
            w = res.welcome
            s.welcomed = True
            interval = w.heartbeat_interval.ToMilliseconds() / 1000 if w.HasField("heartbeat_interval") else 0
            s.heartbeat_every = max(0.05, interval) if interval > 0 else DEFAULT_HEARTBEAT_S
            s.next_heartbeat = time.monotonic() + s.heartbeat_every
            if w.protocol_version != PROTOCOL_VERSION:
                log.warning("broker speaks Lease protocol %s, this library %s", w.protocol_version, PROTOCOL_VERSION)
            log.info("connected to broker %s (session %s)", w.broker_id, w.session_id)
            self._dirty = True  # the first credits
        for ack in res.acks:
            s.unacked.discard(ack.lease_token)
            if not ack.accepted:
                log.warning("result of job %s refused: %s", ack.job_id, ack.error or "no reason given")
        for token in res.lost:
            h = self._held.get(token)
            if h and h.session is s and h.phase in ("running", "queued"):
                if h.phase == "queued":
                    s.results = [r for r in s.results if r.lease_token != token]
                log.warning("lease of job %s lost; its result will be dropped", h.job.id)
                self._drop(h, "lease lost")
        for notice in res.cancels:
            h = self._held.get(notice.lease_token)
            if not h or h.session is not s or h.phase != "running":
                continue
            if notice.reason == "timeout":
                self._time_out(h)
            else:
                self._stop(h, "cancelled")
                self._report(h, failure("cancelled", non_retryable=True))
        if len(res.jobs) > 0:
            if len(res.jobs) > s.credit:
                log.warning("broker sent %d job(s) with only %d credit(s) outstanding", len(res.jobs), s.credit)
            s.credit = max(0, s.credit - len(res.jobs))
            for assignment in res.jobs:
                self._start(s, assignment)
        if res.HasField("drain") and not s.draining:
            s.draining = True
            deadline = res.drain.deadline.ToMilliseconds() / 1000 if res.drain.HasField("deadline") else 0
            wait = deadline if deadline > 0 else DEFAULT_DRAIN_S
            s.drain_backstop = time.monotonic() + wait + 1.0
            log.info(
                "broker is draining; finishing %d job(s) within %.1f s, then reconnecting", len(self._tokens(s)), wait
            )
        self._maybe_half_close(s)
        self._cond.notify_all()

    def _start(self, s: _Session, a: lease_pb2.JobAssignment) -> None:
        if a.lease_token in self._held:
            log.warning("job %s assigned twice with the same lease token; ignored", a.job_id)
            return
        timeout = a.timeout.ToMilliseconds() / 1000 if a.HasField("timeout") else 0
        job = Job(
            id=a.job_id,
            queue=a.queue,
            payload=None,
            attempt=a.attempt,
            max_attempts=a.max_attempts,
            priority=a.priority,
            labels=dict(a.labels),
            traceparent=a.traceparent,
            created_at=a.created_at.ToMilliseconds() / 1000 if a.HasField("created_at") else 0.0,
            timeout=timeout or None,
            worker_id=self.worker_id,
        )
        h = _Held(token=a.lease_token, job=job, session=s)
        job._progress = lambda value: self._progress(h, value)
        self._held[h.token] = h
        handler = self.handlers.get(a.queue)
        if handler is None:
            h.settled = True  # retryable: another worker may serve the queue
            self._report(h, failure(f'no handler for queue "{a.queue}" on worker {self.worker_id}'))
            return
        try:
            job.payload = json.loads(a.payload_json.decode("utf-8")) if a.payload_json else None
        except (ValueError, UnicodeDecodeError) as e:
            h.settled = True
            self._report(h, failure(f"payload is not valid JSON: {e}", non_retryable=True))
            return
        if timeout > 0:
            h.deadline = time.monotonic() + timeout
        self._pool.submit(self._run_handler, h, handler)

    def _run_handler(self, h: _Held, handler: Handler) -> None:
        try:
            outcome = success(handler(h.job.payload, h.job))
        except NonRetryableError as e:
            outcome = failure(str(e) or type(e).__name__, non_retryable=True)
        except RetryAfterError as e:
            outcome = failure(str(e) or type(e).__name__, retry_after=e.seconds)
        except JobStopped as e:
            outcome = failure(str(e) or "stopped")
        except Exception as e:
            outcome = failure(f"{type(e).__name__}: {e}")
        with self._cond:
            h.settled = True
            if h.phase == "running":
                self._report(h, outcome)
            elif h.phase in ("sent", "dropped"):
                del self._held[h.token]  # its slot is free again: the next flush grants a credit
                self._dirty = True
            self._cond.notify_all()

    # ----------------------------------------------------------------------------------------------
    # State changes; all run with self._cond held

    def _report(self, h: _Held, result: lease_pb2.JobResult) -> None:
        h.phase = "queued"
        h.deadline = float("inf")
        result.job_id = h.job.id
        result.lease_token = h.token
        h.session.progress.pop(h.token, None)
        h.session.results.append(result)
        self._dirty = True

    def _stop(self, h: _Held, reason: str) -> None:
        if not h.job.cancelled.is_set():
            h.job.stop_reason = reason
            h.job.cancelled.set()

    def _time_out(self, h: _Held) -> None:
        if h.phase != "running":
            return
        self._stop(h, "timeout")
        ms = int((h.job.timeout or 0) * 1000)
        self._report(h, failure(f"timed out after {ms} ms"))

    def _drop(self, h: _Held, reason: str) -> None:
        h.phase = "dropped"
        h.deadline = float("inf")
        h.session.progress.pop(h.token, None)
        if h.settled:
            self._held.pop(h.token, None)
        else:
            self._stop(h, reason)
        self._dirty = True

    def _progress(self, h: _Held, value: Any) -> None:
        data = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
        with self._cond:
            if h.phase != "running":
                return
            h.session.progress[h.token] = lease_pb2.JobProgress(
                job_id=h.job.id, lease_token=h.token, progress_json=data
            )
            self._dirty = True
            self._cond.notify_all()

    def _end_session(self, s: _Session) -> None:
        """The stream is over and the broker released its leases: drop what was not reported."""
        if s.ended:
            return
        s.ended = True
        dropped = 0
        for h in list(self._held.values()):
            if h.session is s and h.phase in ("running", "queued"):
                dropped += 1
                self._drop(h, "lease lost: the stream to the broker closed")
        if dropped and not self._closing:
            log.warning("%d job(s) abandoned with the lease stream; the broker will deliver them again", dropped)
        s.results.clear()
        s.progress.clear()
        s.unacked.clear()
        s.requests.put(None)  # ends the request generator's thread
        if self._session is s:
            self._session = None
        self._cond.notify_all()

    def _tokens(self, s: _Session) -> List[str]:
        return [h.token for h in self._held.values() if h.session is s and h.phase == "running"]

    def _maybe_half_close(self, s: _Session) -> None:
        """While draining, end the stream once every job of it is reported and acknowledged."""
        if not s.draining or s.ending or s.ended or s.unacked or s.results:
            return
        if any(h.session is s and h.phase == "running" for h in self._held.values()):
            return
        s.ending = True
        s.requests.put(None)

    def _flush(self) -> None:
        """Sends queued results, progress, a due heartbeat and the credits free slots allow, as one message."""
        s = self._session
        if s is None or s.ended or s.ending or not s.welcomed:
            return
        msg = lease_pb2.LeaseRequest()
        send = False
        if s.results:
            msg.results.extend(s.results)
            for r in s.results:
                s.unacked.add(r.lease_token)
                h = self._held.get(r.lease_token)
                if h is not None:
                    h.phase = "sent"
                    if h.settled:
                        del self._held[h.token]
            s.results = []
            send = True
        if s.progress:
            msg.progress.extend(s.progress.values())
            s.progress.clear()
            send = True
        now = time.monotonic()
        if now >= s.next_heartbeat:
            msg.heartbeat.SetInParent()  # present even with no tokens: it is what renews the session
            msg.heartbeat.lease_tokens.extend(self._tokens(s))
            s.next_heartbeat = now + s.heartbeat_every
            send = True
        if not s.draining and not self._closing:
            grant = self.concurrency - len(self._held) - s.credit
            if grant > 0:
                msg.credits = grant
                s.credit += grant
                send = True
        if send:
            s.requests.put(msg)
        self._maybe_half_close(s)

    def _clock(self) -> None:
        """The thread that decides what to send and when: flushes, heartbeats, timeouts, backstops, closing."""
        with self._cond:
            while not self._stopped.is_set() or self._closing:
                now = time.monotonic()
                for h in list(self._held.values()):
                    if h.phase == "running" and h.deadline <= now:
                        self._time_out(h)
                s = self._session
                if s is not None and s.draining and not s.ended and now >= s.drain_backstop and s.call is not None:
                    s.call.cancel()
                if self._closing:
                    if self._close_step(now):
                        return
                self._dirty = False
                self._flush()
                wake = [now + 1.0]
                if s is not None and not s.ended:
                    wake += [s.next_heartbeat, s.drain_backstop]
                wake += [h.deadline for h in self._held.values() if h.phase == "running"]
                if self._closing:
                    wake.append(self._close_deadline)
                if not self._dirty:
                    self._cond.wait(max(0.0, min(wake) - time.monotonic()))

    def _close_step(self, now: float) -> bool:
        """Advances a graceful close; True once there is nothing left to do."""
        s = self._session
        running = [h for h in self._held.values() if not h.settled]
        if self._close_phase == "waiting":
            if running and now < self._close_deadline:
                return False
            for h in running:
                self._stop(h, "worker closing")
                if h.phase == "running":
                    self._report(h, failure("worker closed before the job finished"))
            self._flush()
            if s is not None and not s.ended and not s.ending:
                s.ending = True
                s.requests.put(None)
            self._close_phase = "final"
            self._close_sent = now
            return False
        # final: wait for the broker to acknowledge and end the stream (5 s at most)
        if s is None or s.ended:
            return True
        if now - self._close_sent > 5.0 and s.call is not None:
            s.call.cancel()
        return False

