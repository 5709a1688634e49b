"""A small Baton worker library for Python, on grpcio and the stubs generated into ./gen.

It implements the worker side of the Lease protocol as docs/protocol.md specifies it: hello, credits
(never more jobs in hand than ``concurrency``), heartbeats at the broker's interval, results batched
into as few messages as possible, cancel notices, per-job timeouts, drain, and reconnecting with
exponential backoff and full jitter.

Handlers are plain functions ``handler(payload, job)`` run on a thread pool. Python cannot stop a
thread from outside, so cancellation is cooperative: ``job.cancelled`` is a ``threading.Event`` that is
set when the job is cancelled, times out, loses its lease or the worker closes; long handlers wait on
it (``job.sleep(seconds)``) or poll it (``job.check()``). The job's outcome is reported as soon as the
event is set; the handler's slot stays taken until it actually returns.

    from baton_worker import Worker

    def fibonacci(payload, job):
        ...
        return {"n": n, "value": str(value)}

    Worker({"fibonacci": fibonacci}, address="localhost:7700").run()  # until SIGINT/SIGTERM
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional

_GEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen")
if _GEN not in sys.path:
    sys.path.insert(0, _GEN)

import grpc  # noqa: E402

from baton.v1 import broker_pb2_grpc, lease_pb2  # noqa: E402

__all__ = ["Worker", "Job", "Handler", "NonRetryableError", "RetryAfterError", "JobStopped", "PROTOCOL_VERSION"]

#: The Lease protocol version this library speaks.
PROTOCOL_VERSION = 1
SDK_NAME = "baton-python/0.1.0"
DEFAULT_ADDRESS = "localhost:7700"
#: Used when the broker's Welcome names no heartbeat interval / its Drain no deadline.
DEFAULT_HEARTBEAT_S = 10.0
DEFAULT_DRAIN_S = 30.0

log = logging.getLogger("baton")


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


class Worker:
    """Leases jobs of the queues named in ``handlers`` and runs them, ``concurrency`` at a time.

    ``address`` is any gRPC target (``host:port``, ``dns:name:port``, ``ipv4:10.0.0.1:7700,10.0.0.2:7700``);
    default ``$BATON_ADDRESS`` or localhost:7700. ``token`` (default ``$BATON_TOKEN``) is sent as
    ``authorization: Bearer <token>`` to brokers that require API keys; ``credentials`` (e.g.
    ``grpc.ssl_channel_credentials(ca_pem)``) switches to TLS. Reconnect delays are uniform in
    ``[0, min(reconnect_max, reconnect_initial * 2**failures)]`` seconds.
    """

    def __init__(
        self,
        handlers: Dict[str, Handler],
        address: Optional[str] = None,
        concurrency: int = 10,
        worker_id: Optional[str] = None,
        reconnect_initial: float = 0.1,
        reconnect_max: float = 10.0,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        channel_options: Optional[List[tuple]] = None,
    ):
        if not handlers:
            raise ValueError("handlers must name at least one queue")
        if not isinstance(concurrency, int) or not 1 <= concurrency <= 100_000:
            raise ValueError(f"concurrency must be an integer 1..100000, got {concurrency!r}")
        self.handlers = dict(handlers)
        self.queues = list(self.handlers)
        self.concurrency = concurrency
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.address = address or os.environ.get("BATON_ADDRESS") or DEFAULT_ADDRESS
        self._reconnect = (reconnect_initial, reconnect_max)
        token = token or os.environ.get("BATON_TOKEN")
        self._metadata = [("authorization", f"Bearer {token}")] if token else None
        self._credentials = credentials
        options = [
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # Each Lease attempt gets a channel of its own (see run()): sharing grpc-core's global
            # subchannel pool would bring back the old channel's reconnect backoff.
            ("grpc.use_local_subchannel_pool", 1),
            # One broker message may carry many jobs (up to the credit granted) of up to
            # max_payload_bytes each: 4 MiB, grpc's default, is too little.
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ]
        if "," in self.address:
            options.append(("grpc.lb_policy_name", "round_robin"))
        self._channel_options = options + list(channel_options or [])
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
    # Public API

    def run(self, install_signal_handlers: bool = True) -> None:
        """Connects and works until ``close()`` (or SIGINT/SIGTERM) and every job is reported."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                # close() takes a lock the interrupted code may hold: call it from another thread.
                signal.signal(sig, lambda *_: threading.Thread(target=self.close, daemon=True).start())
        clock = threading.Thread(target=self._clock, name="baton-clock", daemon=True)
        clock.start()
        try:
            failures = 0
            last_error = None
            while not self._closing:
                # A fresh channel per attempt: our backoff below paces reconnects. A long-lived channel
                # would add grpc-core's own reconnect backoff on top, which after a broker restart was
                # seen to keep a worker away for 10 s or more.
                if self._credentials is not None:
                    channel = grpc.secure_channel(self.address, self._credentials, options=self._channel_options)
                else:
                    channel = grpc.insecure_channel(self.address, options=self._channel_options)
                try:
                    welcomed, drained, error = self._lease(broker_pb2_grpc.BrokerStub(channel))
                finally:
                    channel.close()
                if self._closing:
                    break
                if welcomed:
                    failures = 0
                    last_error = None
                if error:
                    # The same failure again and again (a broker down for a while) is logged once.
                    repeated = not welcomed and error == last_error
                    level = logging.DEBUG if repeated else logging.WARNING
                    log.log(level, "lease stream %s: %s; reconnecting", "lost" if welcomed else "failed", error)
                    last_error = error
                else:
                    log.info("%s; reconnecting", "drained" if drained else "broker ended the lease stream")
                cap = min(self._reconnect[1], self._reconnect[0] * 2 ** min(failures, 30))
                self._stopped.wait(random.uniform(0, cap))
                failures += 1
        finally:
            with self._cond:
                self._stopped.set()
                self._cond.notify_all()
            clock.join(timeout=2)
            self._pool.shutdown(wait=False)

    def close(self, timeout: float = 30.0) -> None:
        """Stops gracefully, without blocking: no new jobs; running handlers get ``timeout`` seconds to
        finish (then they are told to stop and reported failed); results are sent and acknowledged;
        then ``run()`` returns. Thread-safe, and safe to call more than once; a signal handler should call
        it on another thread, as the ones ``run()`` installs do."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._close_deadline = time.monotonic() + timeout
            self._close_phase = "waiting"
            self._stopped.set()  # wakes a reconnect wait
            self._cond.notify_all()

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
