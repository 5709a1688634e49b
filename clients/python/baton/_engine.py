"""The Lease protocol engine behind Worker (docs/protocol.md): the jobs this process holds, the
current stream and what is owed on it, and the decisions of what to send and when.

The engine does no I/O and reads no clock of its own, so that tests drive it step by step:

- ``open_stream()`` starts a stream: its ``requests`` queue holds what to send (None = half-close);
- ``receive(stream, response)`` handles one broker message;
- ``end_stream(stream)`` says the stream is over (the broker released its leases);
- ``tick()`` runs the timers (heartbeats, timeouts, backstops, closing) and sends what is owed, and
  returns when it wants to run next;
- ``close(timeout)`` starts a graceful close.

Handlers run on ``executor`` (a thread pool in production) and time is ``clock()`` (monotonic
seconds). Worker adds the gRPC stream, the clock thread (``run_clock``) and reconnecting. The
state kept here (held jobs, streams, phases, default timings) is defined in _lease_state.py.

Slot accounting: a job occupies one of ``concurrency + prefetch`` slots (Hello.capacity) from its
assignment until its handler has returned AND its result has gone out (or was dropped); credits keep
held + outstanding credit within that. At most ``concurrency`` handlers run at once; prefetched jobs
wait in ``_waiting``, in arrival order, already leased: the heartbeat names them and their timeout
runs from delivery, as the broker counts them.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Executor
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import _outcome
from ._lease_state import (
    CLOSE_GRACE_S,
    DEFAULT_DRAIN_S,
    DEFAULT_HEARTBEAT_S,
    DRAIN_GRACE_S,
    IDLE_TICK_S,
    NEVER,
    PROTOCOL_VERSION,
    ClosePhase,
    Held,
    LeaseStream,
    Phase,
    job_context,
    log,
)
from ._version import SDK_NAME
from .handler import Handler, StopReason
from .v1 import lease_pb2


class LeaseEngine:
    """The state of the held jobs and of the current stream, all guarded by ``cond``."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        concurrency: int,
        worker_id: str,
        executor: Executor,
        clock: Callable[[], float] = time.monotonic,
        prefetch: int = 0,
    ) -> None:
        self.handlers = dict(handlers)
        self.queues = list(self.handlers)
        self.concurrency = concurrency
        #: Jobs leased beyond ``concurrency``, waiting here for a handler to free up.
        self.prefetch = prefetch
        self.worker_id = worker_id
        self.cond = threading.Condition(threading.Lock())
        self._executor = executor
        self._clock = clock
        self._held: Dict[str, Held] = {}
        #: Prefetched jobs not begun yet, by lease token, oldest first, with their handler and payload.
        self._waiting: Dict[str, Tuple[Held, Handler, Any]] = {}
        #: Handlers submitted to the executor that have not returned.
        self._executing = 0
        self._stream: Optional[LeaseStream] = None
        #: Something changed that the next tick must send.
        self._dirty = False
        self._close_phase = ClosePhase.OPEN
        self._close_deadline = NEVER
        self._half_closed_at = 0.0
        #: run_clock() returns once this is set (or the close is done).
        self._shutdown = False

    # ----------------------------------------------------------------------------------------------
    # The entry points; each takes the lock.

    @property
    def closing(self) -> bool:
        return self._close_phase is not ClosePhase.OPEN

    @property
    def held(self) -> int:
        """Jobs held now: handlers not returned or results not sent."""
        with self.cond:
            return len(self._held)

    @property
    def running(self) -> int:
        """Handlers running now (or submitted to the executor and not returned)."""
        with self.cond:
            return self._executing

    @property
    def waiting(self) -> int:
        """Prefetched jobs waiting for a handler."""
        with self.cond:
            return len(self._waiting)

    def open_stream(self) -> LeaseStream:
        """A new stream, its Hello queued; from now on the stream the engine sends on."""
        s = LeaseStream()
        hello = lease_pb2.Hello(
            worker_id=self.worker_id,
            queues=self.queues,
            # The broker bounds credit by capacity: the jobs held, prefetched ones included.
            capacity=self.concurrency + self.prefetch,
            protocol_version=PROTOCOL_VERSION,
            sdk=SDK_NAME,
        )
        s.requests.put(lease_pb2.LeaseRequest(hello=hello))
        with self.cond:
            self._stream = s
        return s

    def receive(self, s: LeaseStream, res: lease_pb2.LeaseResponse) -> None:
        """Handles one broker message, in the order section 19 gives."""
        with self.cond:
            self._on_response(s, res)
            self.cond.notify_all()

    def end_stream(self, s: LeaseStream) -> None:
        """The stream is over and the broker released its leases: drops what was not reported."""
        with self.cond:
            self._end_stream(s)
            self.cond.notify_all()

    def tick(self) -> Optional[float]:
        """Fires what is due and sends what is owed, as one message; returns the clock time at which
        to tick again (sooner if something changes), or None once a close has finished."""
        with self.cond:
            return self._tick()

    def close(self, timeout: float) -> None:
        """Starts a graceful close: no new credits; running handlers get ``timeout`` seconds, then they
        are told to stop and reported failed; then the stream is half-closed. Safe to call twice."""
        with self.cond:
            if self._close_phase is not ClosePhase.OPEN:
                return
            self._close_phase = ClosePhase.WAITING
            self._close_deadline = self._clock() + timeout
            self._return_waiting()
            self._dirty = True
            self.cond.notify_all()

    def shutdown(self) -> None:
        """Makes ``run_clock`` return."""
        with self.cond:
            self._shutdown = True
            self.cond.notify_all()

    def run_clock(self) -> None:
        """The clock thread: ticks when something changed or a timer is due, until ``shutdown()`` or
        the end of a close."""
        with self.cond:
            while not self._shutdown:
                wake = self._tick()
                if wake is None:
                    return
                if not self._dirty and not self._shutdown:
                    self.cond.wait(max(0.0, wake - self._clock()))

    # ----------------------------------------------------------------------------------------------
    # Broker messages; all below run with the lock held.

    def _on_response(self, s: LeaseStream, res: lease_pb2.LeaseResponse) -> None:
        if s.ended:
            return
        if res.HasField("welcome") and not s.welcomed:
            w = res.welcome
            s.welcomed = True
            interval = w.heartbeat_interval.ToMilliseconds() / 1000 if w.HasField("heartbeat_interval") else 0
            s.heartbeat_every = max(0.05, interval) if interval > 0 else DEFAULT_HEARTBEAT_S
            s.next_heartbeat = self._clock() + s.heartbeat_every
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
            if h and h.stream is s and h.phase in (Phase.RUNNING, Phase.QUEUED):
                log.warning("lease of job %s lost; its result will be dropped", h.ctx.id)
                self._drop(h)
        for notice in res.cancels:
            h = self._held.get(notice.lease_token)
            if not h or h.stream is not s or h.phase is not Phase.RUNNING:
                continue  # not ours, or already reported
            if notice.reason == "timeout":
                self._time_out(h)
            else:
                self._unqueue(h)
                self._stop(h, StopReason.CANCELLED)
                self._report(h, _outcome.failure("cancelled", non_retryable=True))
        if len(res.jobs) > 0:
            if len(res.jobs) > s.credit:
                log.warning("broker sent %d job(s) with only %d credit(s) outstanding", len(res.jobs), s.credit)
            s.credit = max(0, s.credit - len(res.jobs))
            for assignment in res.jobs:
                self._start(s, assignment)
            # Jobs that came on credit granted before a close or a drain are not started ahead of time.
            if self.closing or s.draining:
                self._return_waiting(s)
        if res.HasField("drain") and not s.draining:
            s.draining = True
            self._return_waiting(s)
            deadline = res.drain.deadline.ToMilliseconds() / 1000 if res.drain.HasField("deadline") else 0
            wait = deadline if deadline > 0 else DEFAULT_DRAIN_S
            s.drain_backstop = self._clock() + wait + DRAIN_GRACE_S
            log.info("broker is draining; finishing %d job(s) within %.1f s, then reconnecting", len(self._tokens(s)), wait)
        self._maybe_half_close(s)

    def _start(self, s: LeaseStream, a: lease_pb2.JobAssignment) -> None:
        if a.lease_token in self._held:
            log.warning("job %s assigned twice with the same lease token; ignored", a.job_id)
            return
        ctx = job_context(a, self.worker_id)
        timeout = ctx.timeout or 0
        h = Held(token=a.lease_token, ctx=ctx, stream=s)
        ctx._progress = lambda value: self._progress(h, value)
        self._held[h.token] = h
        handler = self.handlers.get(a.queue)
        if handler is None:
            h.settled = True  # retryable: another worker may serve the queue
            self._report(h, _outcome.failure(f'no handler for queue "{a.queue}" on worker {self.worker_id}'))
            return
        try:
            payload = json.loads(a.payload_json.decode("utf-8")) if a.payload_json else None
        except (ValueError, UnicodeDecodeError) as e:
            h.settled = True
            self._report(h, _outcome.failure(f"payload is not valid JSON: {e}", non_retryable=True))
            return
        # Armed at delivery, prefetched or not: the broker's deadline for the attempt runs from its claim.
        if timeout > 0:
            h.deadline = self._clock() + timeout
        if self._executing < self.concurrency:
            self._begin(h, handler, payload)
        else:
            self._waiting[h.token] = (h, handler, payload)

    def _begin(self, h: Held, handler: Handler, payload: Any) -> None:
        self._executing += 1
        self._executor.submit(self._run_handler, h, handler, payload)

    def _begin_waiting(self) -> None:
        """Begins waiting jobs, oldest first, while handlers are free."""
        while self._waiting and self._executing < self.concurrency:
            token = next(iter(self._waiting))
            self._begin(*self._waiting.pop(token))

    def _unqueue(self, h: Held) -> None:
        """A waiting job leaves the line without running (cancelled, timed out, lost, handed back):
        it is settled as it is."""
        if self._waiting.pop(h.token, None) is not None:
            h.settled = True

    def _return_waiting(self, s: Optional[LeaseStream] = None) -> None:
        """Hands waiting jobs (of ``s``, or all) back to the broker unstarted, as a snooze of 1 ms
        (the attempt does not count, docs/protocol.md section 7): a closing or draining worker should
        not start new jobs, and they should not wait for its running ones to finish either."""
        for h, _, _ in list(self._waiting.values()):
            if s is not None and h.stream is not s:
                continue
            self._unqueue(h)
            self._report(h, _outcome.snooze(0.001))

    def _run_handler(self, h: Held, handler: Handler, payload: Any) -> None:
        """On the executor: runs the handler, then reports its outcome unless that was decided before."""
        result = _outcome.run(lambda: handler(payload, h.ctx))
        with self.cond:
            h.settled = True
            self._executing -= 1
            self._begin_waiting()
            if h.phase is Phase.RUNNING:
                self._report(h, result)
            elif h.phase in (Phase.SENT, Phase.DROPPED):
                del self._held[h.token]  # its slot is free again: the next tick grants a credit
                self._dirty = True
            self.cond.notify_all()

    # ----------------------------------------------------------------------------------------------
    # State changes of one held job

    def _report(self, h: Held, result: lease_pb2.JobResult) -> None:
        h.phase = Phase.QUEUED
        h.deadline = NEVER
        result.job_id = h.ctx.id
        result.lease_token = h.token
        h.stream.progress.pop(h.token, None)
        h.stream.results.append(result)
        self._dirty = True

    def _stop(self, h: Held, reason: StopReason) -> None:
        if not h.ctx.cancelled.is_set():
            h.ctx.stop_reason = reason
            h.ctx.cancelled.set()

    def _time_out(self, h: Held) -> None:
        if h.phase is not Phase.RUNNING:
            return
        self._unqueue(h)
        self._stop(h, StopReason.TIMEOUT)
        ms = int((h.ctx.timeout or 0) * 1000)
        self._report(h, _outcome.failure(f"timed out after {ms} ms"))

    def _drop(self, h: Held) -> None:
        """The lease is gone: the result (queued or not) never goes out; the slot frees when the
        handler has returned."""
        if h.phase is Phase.QUEUED:
            h.stream.results = [r for r in h.stream.results if r.lease_token != h.token]
        h.phase = Phase.DROPPED
        h.deadline = NEVER
        h.stream.progress.pop(h.token, None)
        self._unqueue(h)
        if h.settled:
            self._held.pop(h.token, None)
        else:
            self._stop(h, StopReason.LEASE_LOST)
        self._dirty = True

    def _progress(self, h: Held, value: Any) -> None:
        data = _outcome.encode_json(value)
        with self.cond:
            if h.phase is not Phase.RUNNING:
                return
            h.stream.progress[h.token] = lease_pb2.JobProgress(job_id=h.ctx.id, lease_token=h.token, progress_json=data)
            self._dirty = True
            self.cond.notify_all()

    # ----------------------------------------------------------------------------------------------
    # The stream

    def _end_stream(self, s: LeaseStream) -> None:
        if s.ended:
            return
        s.ended = True
        dropped = [h for h in self._held.values() if h.stream is s and h.phase in (Phase.RUNNING, Phase.QUEUED)]
        for h in dropped:
            self._drop(h)
        if dropped and not self.closing:
            log.warning("%d job(s) abandoned with the lease stream; the broker will deliver them again", len(dropped))
        s.results.clear()
        s.progress.clear()
        s.unacked.clear()
        s.requests.put(None)  # ends the request iterator
        if self._stream is s:
            self._stream = None

    def _tokens(self, s: LeaseStream) -> List[str]:
        return [h.token for h in self._held.values() if h.stream is s and h.phase is Phase.RUNNING]

    def _maybe_half_close(self, s: LeaseStream) -> None:
        """While draining, ends the stream once every job of it is reported and acknowledged."""
        if not s.draining or s.ending or s.ended or s.unacked or s.results:
            return
        if any(h.stream is s and h.phase is Phase.RUNNING for h in self._held.values()):
            return
        s.ending = True
        s.requests.put(None)

    def _flush(self, now: float) -> None:
        """Sends queued results, progress, a due heartbeat and the credits free slots allow, as one message."""
        s = self._stream
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
                    h.phase = Phase.SENT
                    if h.settled:
                        del self._held[h.token]
            s.results = []
            send = True
        if s.progress:
            msg.progress.extend(s.progress.values())
            s.progress.clear()
            send = True
        if now >= s.next_heartbeat:
            msg.heartbeat.SetInParent()  # present even with no tokens: it is what renews the session
            msg.heartbeat.lease_tokens.extend(self._tokens(s))
            s.next_heartbeat = now + s.heartbeat_every
            send = True
        if not s.draining and not self.closing:
            # The invariant of section 5: held + outstanding credit <= capacity.
            grant = self.concurrency + self.prefetch - len(self._held) - s.credit
            if grant > 0:
                msg.credits = grant
                s.credit += grant
                send = True
        if send:
            s.requests.put(msg)
        self._maybe_half_close(s)

    # ----------------------------------------------------------------------------------------------
    # Timers and closing

    def _tick(self) -> Optional[float]:
        now = self._clock()
        for h in list(self._held.values()):
            if h.phase is Phase.RUNNING and h.deadline <= now:
                self._time_out(h)
        s = self._stream
        if s is not None and s.draining and not s.ended and now >= s.drain_backstop:
            s.cancel()
        if self.closing and self._close_step(now):
            return None
        self._dirty = False
        self._flush(now)
        wake = [now + IDLE_TICK_S]
        if s is not None and not s.ended:
            wake += [s.next_heartbeat, s.drain_backstop]
        wake += [h.deadline for h in self._held.values() if h.phase is Phase.RUNNING]
        if self._close_phase is ClosePhase.WAITING:
            wake.append(self._close_deadline)
        elif self._close_phase is ClosePhase.HALF_CLOSED:
            wake.append(self._half_closed_at + CLOSE_GRACE_S)
        return min(wake)

    def _close_step(self, now: float) -> bool:
        """Advances a graceful close; True once there is nothing left to do."""
        s = self._stream
        if self._close_phase is ClosePhase.WAITING:
            running = [h for h in self._held.values() if not h.settled]
            if running and now < self._close_deadline:
                return False
            for h in running:
                self._stop(h, StopReason.WORKER_CLOSING)
                if h.phase is Phase.RUNNING:
                    self._report(h, _outcome.failure("worker closed before the job finished"))
            self._flush(now)
            if s is not None and not s.ended and not s.ending:
                s.ending = True
                s.requests.put(None)
            self._close_phase = ClosePhase.HALF_CLOSED
            self._half_closed_at = now
        if self._close_phase is ClosePhase.HALF_CLOSED:
            # Wait for the broker to acknowledge and end the stream, CLOSE_GRACE_S at most.
            if s is None or s.ended:
                self._close_phase = ClosePhase.DONE
                return True
            if now - self._half_closed_at >= CLOSE_GRACE_S:
                s.cancel()
            return False
        return self._close_phase is ClosePhase.DONE

