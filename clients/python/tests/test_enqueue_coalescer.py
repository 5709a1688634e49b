"""Concurrent enqueue() calls sent together, through the Client and a Broker stub whose RPCs the test
answers by hand. Each call runs on a thread of its own, as an application's would."""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any, Callable, List, Optional

import grpc

from fakes import FakeRpcError

from baton import BatonError, Client, EnqueuedJob
from baton._enqueue_coalescer import CoalesceLimits, EnqueueCoalescer
from baton.v1 import broker_pb2, job_pb2

#: Long enough for any thread to get where the test waits for it; reached only when a test fails.
PATIENCE = 5.0


class HeldRpc:
    """One RPC in flight: what it carried, and the test's hand on its answer."""

    def __init__(self, name: str, queues: List[str], kw: Any) -> None:
        self.name, self.queues, self.kw = name, queues, kw
        self._answered = threading.Event()

    def answer(self) -> None:
        self._answered.set()

    def wait(self) -> None:
        assert self._answered.wait(PATIENCE), f"{self.name} {self.queues} was never answered"


class HeldBroker:
    """The Broker stub: each Enqueue and EnqueueBatch waits for the test to answer it. The queue "bad"
    is refused with INVALID_ARGUMENT; a batch is refused with ``fail_batch_with`` when given."""

    def __init__(self, fail_batch_with: Optional[grpc.StatusCode] = None) -> None:
        self.fail_batch_with = fail_batch_with
        self.sent: List[HeldRpc] = []
        self._changed = threading.Condition()

    def _hold(self, name: str, queues: List[str], kw: Any) -> None:
        rpc = HeldRpc(name, queues, kw)
        with self._changed:
            self.sent.append(rpc)
            self._changed.notify_all()
        rpc.wait()

    def Enqueue(self, request: broker_pb2.EnqueueRequest, **kw: Any) -> broker_pb2.EnqueueResponse:
        self._hold("Enqueue", [request.queue], kw)
        if request.queue == "bad":
            raise FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad queue")
        return respond(request)

    def EnqueueBatch(self, request: broker_pb2.EnqueueBatchRequest, **kw: Any) -> broker_pb2.EnqueueBatchResponse:
        assert not request.ids_only
        self._hold("EnqueueBatch", [r.queue for r in request.jobs], kw)
        if self.fail_batch_with is not None:
            raise FakeRpcError(self.fail_batch_with, "refused")
        return broker_pb2.EnqueueBatchResponse(jobs=[respond(r) for r in request.jobs])

    def wait_sent(self, count: int) -> List[HeldRpc]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.sent) >= count, PATIENCE), f"sent: {self.sent_as_lists()}"
            return self.sent[:]

    def sent_as_lists(self) -> List[List[Any]]:
        return [[rpc.name, rpc.queues] for rpc in self.sent]


def respond(request: broker_pb2.EnqueueRequest) -> broker_pb2.EnqueueResponse:
    return broker_pb2.EnqueueResponse(job=job_pb2.Job(id=f"id-{request.queue}", queue=request.queue, status=job_pb2.JOB_STATUS_PENDING))


class Caller(threading.Thread):
    """One enqueue() call on a thread of its own: its job, or the error it raised."""

    def __init__(self, enqueue: Callable[[], EnqueuedJob]) -> None:
        super().__init__(daemon=True)
        self._enqueue = enqueue
        self.job: Optional[EnqueuedJob] = None
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            self.job = self._enqueue()
        except BaseException as e:
            self.error = e

    def outcome(self) -> str:
        self.join(PATIENCE)
        assert not self.is_alive(), "the call never returned"
        if self.error is not None:
            return f"raised {type(self.error).__name__}"
        assert self.job is not None
        return self.job.id


def until(condition: Callable[[], bool]) -> None:
    """Waits for another thread to get somewhere the test cannot be told of (a call's wait)."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def waiting(coalescer: Optional[EnqueueCoalescer]) -> int:
    assert coalescer is not None
    with coalescer._lock:
        return len(coalescer._waiting)


def held_client(broker: HeldBroker, *, coalesce_enqueues: bool = True) -> Client:
    client = Client("broker:7700", token="key", timeout=5, coalesce_enqueues=coalesce_enqueues)
    client._stub = broker  # type: ignore[assignment]  # no channel, no network
    return client


def call_in_turn(client: Client, broker: HeldBroker, queues: List[str], payload: Any = None) -> List[Caller]:
    """Starts one call per queue, each once the one before is sent or waiting, so their order is known."""
    callers: List[Caller] = []
    for queue in queues:
        before = (len(broker.sent), waiting(client._coalescer))
        caller = Caller(partial(client.enqueue, queue, payload))
        caller.start()
        until(lambda: (len(broker.sent), waiting(client._coalescer)) != before)
        callers.append(caller)
    return callers


def test_a_lone_call_is_one_enqueue() -> None:
    broker = HeldBroker()
    client = held_client(broker)
    [caller] = call_in_turn(client, broker, ["a"])
    [rpc] = broker.wait_sent(1)
    rpc.answer()
    assert caller.outcome() == "id-a"
    assert broker.sent_as_lists() == [["Enqueue", ["a"]]]
    assert rpc.kw == {"timeout": 5, "metadata": (("authorization", "Bearer key"),)}


def test_calls_made_while_two_are_in_flight_leave_together_in_order() -> None:
    broker = HeldBroker()
    client = held_client(broker)
    callers = call_in_turn(client, broker, ["a", "b", "c", "d", "e"])
    assert broker.sent_as_lists() == [["Enqueue", ["a"]], ["Enqueue", ["b"]]]
    broker.sent[0].answer()
    batch = broker.wait_sent(3)[2]
    assert (batch.name, batch.queues) == ("EnqueueBatch", ["c", "d", "e"])
    assert batch.kw == {"timeout": 5, "metadata": (("authorization", "Bearer key"),)}  # the Client's _call
    broker.sent[1].answer()
    batch.answer()
    assert [c.outcome() for c in callers] == ["id-a", "id-b", "id-c", "id-d", "id-e"]
    assert len(broker.sent) == 3


def test_a_batch_refused_for_its_content_is_sent_again_job_by_job_and_only_the_bad_call_fails() -> None:
    broker = HeldBroker(fail_batch_with=grpc.StatusCode.INVALID_ARGUMENT)
    client = held_client(broker)
    callers = call_in_turn(client, broker, ["a", "b", "c", "bad", "e"])
    broker.sent[0].answer()
    broker.sent[1].answer()
    broker.wait_sent(3)[2].answer()  # the batch of c, bad and e: refused
    resent = broker.wait_sent(6)[3:]
    # Each caller's thread sends its own job again, all at once: their order is the threads'.
    assert sorted(rpc.queues[0] for rpc in resent) == ["bad", "c", "e"] and {rpc.name for rpc in resent} == {"Enqueue"}
    for rpc in resent:
        rpc.answer()
    assert [c.outcome() for c in callers] == ["id-a", "id-b", "id-c", "raised BatonError", "id-e"]
    error = callers[3].error
    assert isinstance(error, BatonError) and (error.code, error.message) == (grpc.StatusCode.INVALID_ARGUMENT, "bad queue")
    assert len(broker.sent) == 6


def test_an_error_that_says_nothing_about_the_jobs_reaches_every_call_and_nothing_is_sent_again() -> None:
    broker = HeldBroker(fail_batch_with=grpc.StatusCode.UNAVAILABLE)
    client = held_client(broker)
    callers = call_in_turn(client, broker, ["a", "b", "c", "d"])
    broker.sent[0].answer()
    broker.sent[1].answer()
    broker.wait_sent(3)[2].answer()
    assert [c.outcome() for c in callers] == ["id-a", "id-b", "raised BatonError", "raised BatonError"]
    errors = [c.error for c in callers[2:]]
    assert all(isinstance(e, BatonError) and (e.code, e.message) == (grpc.StatusCode.UNAVAILABLE, "refused") for e in errors)
    assert errors[0] is not errors[1]  # each thread raises its own, with its own traceback
    assert len(broker.sent) == 3


def test_the_limits_split_what_waits_into_batches() -> None:
    broker = HeldBroker()
    client = held_client(broker)
    client._coalescer = EnqueueCoalescer(
        client._send_enqueue, client._send_enqueue_batch, CoalesceLimits(max_in_flight=1, max_jobs=3, max_bytes=2_500)
    )
    callers = call_in_turn(client, broker, ["first", "a", "b", "c", "d"])
    big = "x" * 1_198  # 1,200 bytes of JSON text with its quotes; 1,712 with the 512 for the rest
    callers += call_in_turn(client, broker, ["big1", "big2"], big)
    for count in range(1, 5):
        broker.wait_sent(count)[-1].answer()
    assert [c.outcome() for c in callers] == ["id-" + q for q in ["first", "a", "b", "c", "d", "big1", "big2"]]
    assert broker.sent_as_lists() == [
        ["Enqueue", ["first"]],
        ["EnqueueBatch", ["a", "b", "c"]],  # max_jobs
        ["EnqueueBatch", ["d", "big1"]],  # max_bytes: 512 + 1,712 fits, 1,712 more does not
        ["Enqueue", ["big2"]],  # left alone: an Enqueue
    ]


def test_coalesce_enqueues_false_sends_one_enqueue_per_call() -> None:
    broker = HeldBroker()
    client = held_client(broker, coalesce_enqueues=False)
    callers = [Caller(partial(client.enqueue, queue)) for queue in ["a", "b", "c"]]
    for caller in callers:
        caller.start()
    for rpc in broker.wait_sent(3):
        rpc.answer()
    assert sorted(c.outcome() for c in callers) == ["id-a", "id-b", "id-c"]
    assert {rpc.name for rpc in broker.sent} == {"Enqueue"} and len(broker.sent) == 3

