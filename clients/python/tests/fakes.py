"""Fakes for driving the lease engine step by step: a clock the test moves, an executor that runs
handlers when the test says, and a stream whose requests the test reads and whose responses it
writes. No threads of the engine's own, no sleeps, no broker. Also a failed gRPC call, for the
Client's tests."""

from __future__ import annotations

from concurrent.futures import Executor, Future
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import grpc

from baton._engine import LeaseEngine
from baton._lease_state import LeaseStream
from baton.handler import Handler, JobContext
from baton.v1 import lease_pb2


class FakeClock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeExecutor(Executor):
    """Keeps submitted handler calls until ``run_next``/``run_all`` runs them on the test's thread."""

    def __init__(self) -> None:
        self.pending: List[Tuple[Callable[..., Any], Tuple[Any, ...]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "Future[Any]":
        self.pending.append((fn, args))
        return Future()

    def run_next(self) -> None:
        fn, args = self.pending.pop(0)
        fn(*args)

    def run_all(self) -> None:
        while self.pending:
            self.run_next()


class FakeStream:
    """A Lease stream as the broker sees it: what the worker sent, and a way to answer."""

    def __init__(self, engine: LeaseEngine) -> None:
        self.engine = engine
        self.stream: LeaseStream = engine.open_stream()
        self.cancelled = False
        self.stream.cancel = self._cancel
        self.half_closed = False

    def _cancel(self) -> None:
        self.cancelled = True

    def sent(self) -> List[lease_pb2.LeaseRequest]:
        """Everything the worker sent since the last call (a half-close sets ``half_closed``)."""
        out = []
        while not self.stream.requests.empty():
            message = self.stream.requests.get_nowait()
            if message is None:
                self.half_closed = True
            else:
                out.append(message)
        return out

    def tick(self) -> List[lease_pb2.LeaseRequest]:
        """Runs the engine's clock once and returns what it sent."""
        self.engine.tick()
        return self.sent()

    def send(self, **fields: Any) -> None:
        """The broker sends a LeaseResponse."""
        self.engine.receive(self.stream, lease_pb2.LeaseResponse(**fields))

    def welcome(self, heartbeat_ms: int = 1000) -> None:
        welcome = lease_pb2.Welcome(session_id="s1", broker_id="b1", protocol_version=1)
        welcome.heartbeat_interval.FromMilliseconds(heartbeat_ms)
        self.send(welcome=welcome)

    def assign(self, *jobs: lease_pb2.JobAssignment) -> None:
        self.send(jobs=list(jobs))

    def end(self) -> None:
        self.engine.end_stream(self.stream)


def assignment(
    n: int, queue: str = "q", payload: Optional[bytes] = b"{}", timeout_ms: int = 0, attempt: int = 1
) -> lease_pb2.JobAssignment:
    a = lease_pb2.JobAssignment(
        job_id=f"job{n}", queue=queue, payload_json=payload or b"", lease_token=f"t{n}", attempt=attempt, max_attempts=3
    )
    if timeout_ms:
        a.timeout.FromMilliseconds(timeout_ms)
    return a


class Harness:
    """An engine with fake clock and executor; ``connect()`` opens a fake stream and welcomes it."""

    def __init__(self, handlers: Mapping[str, Handler], concurrency: int = 3, prefetch: int = 0) -> None:
        self.clock = FakeClock()
        self.executor = FakeExecutor()
        self.engine = LeaseEngine(handlers, concurrency, "w1", self.executor, clock=self.clock, prefetch=prefetch)

    def connect(self, heartbeat_ms: int = 1000) -> FakeStream:
        s = FakeStream(self.engine)
        s.sent()  # the Hello
        s.welcome(heartbeat_ms)
        return s


def results(messages: List[lease_pb2.LeaseRequest]) -> Dict[str, lease_pb2.JobResult]:
    """The results in these messages, by job id."""
    return {r.job_id: r for m in messages for r in m.results}


def credits(messages: List[lease_pb2.LeaseRequest]) -> int:
    return sum(m.credits for m in messages)


def echo(payload: Any, ctx: JobContext) -> Any:
    """A handler that answers with what it got and its attempt."""
    return {"got": payload, "attempt": ctx.attempt}


class FakeRpcError(grpc.RpcError, grpc.Call):  # type: ignore[misc]  # grpcio is untyped
    """A failed call as grpcio raises it."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: Tuple[Tuple[str, Any], ...] = ()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Tuple[Tuple[str, Any], ...]:
        return self._trailers

    def initial_metadata(self) -> Tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> Optional[float]:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False
