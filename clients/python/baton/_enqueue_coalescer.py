"""Concurrent ``enqueue()`` calls of one Client, sent together (the TypeScript SDK's
worker-sdk/src/enqueue-coalescer.ts, for threads). While fewer than two enqueue RPCs are in flight a
call goes out at once as its own Enqueue; calls made while two are in flight wait, and when one
returns they leave together in one EnqueueBatch (one RPC, one transaction, one commit). An
application that enqueues from many threads at once thus pays for a handful of RPCs instead of one
each, and a lone call waits for nothing: there is no timer.

No thread of its own: the thread whose call heads a group sends the group's RPC and hands each other
caller its answer. Each call keeps the answer it would have had alone: its own job, its own
``duplicate``, its own error. A batch is all or none, so when the broker refuses one for what a job
says (a bad field, a size limit, a queue the key may not use), nothing was stored and each job of it
is sent again as its own Enqueue, each by its own caller's thread. Errors that say nothing about the
jobs (the broker unreachable, a deadline) go to every call of the batch as they are: a batch whose
answer was lost may have been stored, and sending it again would store it twice."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional, Sequence

import grpc

from .errors import BatonError
from .v1 import broker_pb2

SendOne = Callable[[broker_pb2.EnqueueRequest], broker_pb2.EnqueueResponse]
SendMany = Callable[[Sequence[broker_pb2.EnqueueRequest]], Sequence[broker_pb2.EnqueueResponse]]


@dataclass(frozen=True)
class CoalesceLimits:
    #: RPCs at once; a call waits only while this many are in flight.
    max_in_flight: int = 2
    max_jobs: int = 1_000
    #: Payload bytes of one batch, near enough (see ``_size_of``).
    max_bytes: int = 1 << 20


#: Far under the broker's batch limit (10,000 by default) and its message size limit.
COALESCE_LIMITS = CoalesceLimits()

#: Refusals about the jobs themselves: nothing of the batch was stored.
_ABOUT_THE_JOBS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.ALREADY_EXISTS,
    }
)


class _Call:
    """One enqueue() call: its request, and what its thread is woken (``ready``) for: to lead
    ``group`` (the first call of a group leads it), to send its job again alone (``resend``), or to
    return ``response`` or raise ``error``."""

    def __init__(self, request: broker_pb2.EnqueueRequest) -> None:
        self.request = request
        self.ready = threading.Event()
        self.group: Optional[List[_Call]] = None
        self.resend = False
        self.response: Optional[broker_pb2.EnqueueResponse] = None
        self.error: Optional[BaseException] = None

    def answer(self, response: Optional[broker_pb2.EnqueueResponse], error: Optional[BaseException]) -> None:
        self.response, self.error = response, error
        self.ready.set()

    def result(self) -> broker_pb2.EnqueueResponse:
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


class EnqueueCoalescer:
    """``enqueue(request)`` from any number of threads; see the module's text for what it does."""

    def __init__(self, one: SendOne, many: SendMany, limits: CoalesceLimits = COALESCE_LIMITS) -> None:
        self._one = one
        self._many = many
        self._limits = limits
        self._lock = threading.Lock()
        self._waiting: Deque[_Call] = deque()
        self._in_flight = 0

    def enqueue(self, request: broker_pb2.EnqueueRequest) -> broker_pb2.EnqueueResponse:
        call = _Call(request)
        with self._lock:
            self._waiting.append(call)
            self._flush()
        try:
            call.ready.wait()
        except BaseException:
            self._abandon(call)
            raise
        if call.group is not None and len(call.group) > 1:
            if self._send_together(call.group):
                return call.result()
            # Refused for what its jobs say: this thread's job goes again alone, in the batch's slot.
        elif call.resend:
            with self._lock:
                self._in_flight += 1
        elif call.group is None:
            return call.result()  # answered by the thread that led its group
        return self._send_alone(call)

    def _flush(self) -> None:
        """Hands what waits, in order, to free slots, each group to its first call's thread. Called
        with the lock held."""
        while self._waiting and self._in_flight < self._limits.max_in_flight:
            group = self._take_group()
            self._in_flight += 1
            group[0].group = group
            group[0].ready.set()

    def _take_group(self) -> List[_Call]:
        group = [self._waiting.popleft()]
        size = _size_of(group[0].request)
        while self._waiting and len(group) < self._limits.max_jobs:
            more = _size_of(self._waiting[0].request)
            if size + more > self._limits.max_bytes:
                break
            size += more
            group.append(self._waiting.popleft())
        return group

    def _send_together(self, group: List[_Call]) -> bool:
        """Sends the group as one EnqueueBatch and answers each of its calls. False when the broker
        refused it for what its jobs say: the other calls are then woken to send theirs again alone,
        and the batch's slot is left to the first call's job."""
        try:
            responses = self._many([call.request for call in group])
            if len(responses) != len(group):
                raise BatonError(
                    grpc.StatusCode.INTERNAL, f"EnqueueBatch answered {len(responses)} jobs for {len(group)}"
                )
        except BatonError as e:
            if e.code in _ABOUT_THE_JOBS:
                for call in group[1:]:
                    call.resend = True
                    call.ready.set()
                return False
            # Each caller raises its own copy: one instance raised on many threads would collect all
            # their tracebacks.
            self._answer_all(group, lambda: BatonError(e.code, e.message))
            return True
        except BaseException as e:
            self._answer_all(group, lambda: e)
            return True
        for call, response in zip(group, responses):
            call.answer(response, None)
        self._release()
        return True

    def _send_alone(self, call: _Call) -> broker_pb2.EnqueueResponse:
        """Sends the call's job as its own Enqueue, in a slot already taken for it."""
        try:
            return self._one(call.request)
        finally:
            self._release()

    def _abandon(self, call: _Call) -> None:
        """A wait interrupted (Ctrl-C reaches the main thread, which may be a caller): the call is given
        up, but a group it was picked to lead is sent all the same, since its other calls wait for it."""
        with self._lock:
            if call in self._waiting:
                self._waiting.remove(call)
                return
            group = call.group
        if group is None:
            return  # in a group another thread leads: nothing waits for this one
        if len(group) == 1 or not self._send_together(group):
            self._release()  # its own job is not sent: its caller has the interrupt instead

    def _answer_all(self, group: List[_Call], error: Callable[[], BaseException]) -> None:
        for call in group:
            call.answer(None, error())
        self._release()

    def _release(self) -> None:
        """One RPC returned: its slot goes to what waits."""
        with self._lock:
            self._in_flight -= 1
            self._flush()


def _size_of(request: broker_pb2.EnqueueRequest) -> int:
    """What a job adds to a batch's message, near enough: its payload and a margin for the rest."""
    return len(request.payload_json) + 512
