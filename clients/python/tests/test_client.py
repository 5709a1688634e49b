"""The producer Client's translation to and from the wire, against a fake Broker stub."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Tuple

import grpc
import pytest

from fakes import FakeRpcError

from baton import (
    BatonError,
    Client,
    EnqueueItem,
    JobCancelledError,
    JobFailedError,
    JobStatus,
    RetryAfterError,
    RetryPolicy,
    UniqueOptions,
)
from baton._backoff import backoff_delay
from baton.v1 import broker_pb2, job_pb2


class FakeWatch:
    """A Watch call: yields the given jobs, then raises ``error`` if any."""

    def __init__(self, jobs: List[job_pb2.Job], error: Optional[grpc.RpcError] = None) -> None:
        self.jobs, self.error, self.cancelled = jobs, error, False

    def __iter__(self) -> Iterator[broker_pb2.WatchResponse]:
        for job in self.jobs:
            yield broker_pb2.WatchResponse(job=job)
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        self.cancelled = True


class FakeBroker:
    """The Broker stub: records requests and answers from ``answers`` (an exception is raised)."""

    def __init__(self) -> None:
        self.requests: List[Tuple[str, Any, Dict[str, Any]]] = []
        self.answers: Dict[str, Any] = {}
        self.watches: List[FakeWatch] = []

    def _answer(self, name: str, request: Any, kw: Dict[str, Any]) -> Any:
        self.requests.append((name, request, kw))
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def __getattr__(self, name: str) -> Any:
        if name == "Watch":
            def watch(request: Any, **kw: Any) -> FakeWatch:
                self.requests.append((name, request, kw))
                return self.watches.pop(0)
            return watch
        return lambda request, **kw: self._answer(name, request, kw)


def job(status: Any = job_pb2.JOB_STATUS_PENDING, **fields: Any) -> job_pb2.Job:
    return job_pb2.Job(id="42", queue="q", status=status, payload_json=b'{"n": 1}', **fields)


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def client(broker: FakeBroker) -> Client:
    c = Client("broker:7700", token="key", timeout=5)
    c._stub = broker  # type: ignore[assignment]  # no channel, no network
    return c


def test_enqueue_sends_json_text_and_every_option(client: Client, broker: FakeBroker) -> None:
    broker.answers["Enqueue"] = broker_pb2.EnqueueResponse(job=job(), duplicate=True)
    run_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    got = client.enqueue(
        "q",
        {"n": 2**64},
        priority=5,
        run_at=run_at,
        max_attempts=3,
        retry_policy=RetryPolicy(initial_backoff=0.5),
        timeout=1.25,
        idempotency_key="k",
        labels={"a": "b"},
        traceparent="00-x-y-01",
    )
    [(name, request, kw)] = broker.requests
    assert name == "Enqueue"
    assert request.payload_json == b'{"n":18446744073709551616}'
    assert (request.priority, request.max_attempts, request.idempotency_key) == (5, 3, "k")
    assert request.run_at.ToDatetime(tzinfo=timezone.utc) == run_at
    assert not request.HasField("delay")
    assert request.timeout.ToMilliseconds() == 1250
    assert request.retry_policy.initial_backoff.ToMilliseconds() == 500
    assert request.retry_policy.max_backoff.ToSeconds() == 600 and request.retry_policy.multiplier == 2
    assert dict(request.labels) == {"a": "b"} and request.traceparent == "00-x-y-01"
    assert kw == {"timeout": 5, "metadata": (("authorization", "Bearer key"),)}
    assert got.duplicate and got.status is JobStatus.PENDING and got.payload == {"n": 1}


def test_enqueue_sends_the_scheduling_options(client: Client, broker: FakeBroker) -> None:
    broker.answers["Enqueue"] = broker_pb2.EnqueueResponse(job=job())
    client.enqueue(
        "q",
        1,
        unique=UniqueOptions("user:42", window=90, states=[JobStatus.PENDING, JobStatus.RUNNING]),
        rate_limit_key="customer-7",
        concurrency_key="tenant-a",
    )
    [(_, request, _)] = broker.requests
    assert request.unique.key == "user:42" and request.unique.window.ToSeconds() == 90
    assert list(request.unique.states) == [job_pb2.JOB_STATUS_PENDING, job_pb2.JOB_STATUS_RUNNING]
    assert (request.rate_limit_key, request.concurrency_key, request.idempotency_key) == ("customer-7", "tenant-a", "")
    with pytest.raises(ValueError, match="unique or idempotency_key"):
        client.enqueue("q", 1, unique=UniqueOptions("k"), idempotency_key="k")


def test_enqueue_refuses_run_at_with_delay(client: Client) -> None:
    with pytest.raises(ValueError, match="run_at or delay"):
        client.enqueue("q", 1, run_at=datetime.now(timezone.utc), delay=1)


def test_enqueue_batch_keeps_the_order(client: Client, broker: FakeBroker) -> None:
    broker.answers["EnqueueBatch"] = broker_pb2.EnqueueBatchResponse(
        jobs=[broker_pb2.EnqueueResponse(job=job_pb2.Job(id=str(n), queue="q", status=job_pb2.JOB_STATUS_PENDING)) for n in (1, 2)]
    )
    got = client.enqueue_batch([EnqueueItem("q", 1), EnqueueItem("q", None, delay=2)], ids_only=True)
    [(_, request, _)] = broker.requests
    assert request.ids_only and [r.payload_json for r in request.jobs] == [b"1", b"null"]
    assert request.jobs[1].delay.ToSeconds() == 2
    assert [j.id for j in got] == ["1", "2"]
    assert got[0].payload is None and got[0].payload_json == "null"  # ids_only: no payload back


def test_get_reads_every_field(client: Client, broker: FakeBroker) -> None:
    m = job(
        job_pb2.JOB_STATUS_FAILED,
        attempt=2,
        max_attempts=2,
        result_json=b"",
        worker_id="w1",
        errors=[job_pb2.AttemptError(attempt=1, message="boom", worker_id="w1")],
        progress_json=b'{"p": 12345678901234567890}',
    )
    m.timeout.FromMilliseconds(1500)
    m.created_at.FromSeconds(1_700_000_000)
    broker.answers["Get"] = broker_pb2.GetResponse(job=m)
    got = client.get("42")
    assert got.status is JobStatus.FAILED and got.status.terminal
    assert got.payload_json == '{"n": 1}'
    assert got.result is None and got.result_json is None
    assert got.progress == {"p": 12345678901234567890}  # every digit: parsed from the text
    assert got.timeout == 1.5 and got.created_at == datetime.fromtimestamp(1_700_000_000, timezone.utc)
    assert got.errors[0].message == "boom" and got.errors[0].at is None
    assert got.idempotency_key is None and got.traceparent is None and got.run_at is None


def test_errors_carry_the_status_and_the_exact_message(client: Client, broker: FakeBroker) -> None:
    broker.answers["Get"] = FakeRpcError(
        grpc.StatusCode.NOT_FOUND, "job 9 not found %3B", (("baton-message-bin", "job 9 not found ;".encode()),)
    )
    with pytest.raises(BatonError) as raised:
        client.get("9")
    assert raised.value.code is grpc.StatusCode.NOT_FOUND
    assert raised.value.message == "job 9 not found ;"
    assert str(raised.value) == "NOT_FOUND: job 9 not found ;"


def test_list_filters_by_status(client: Client, broker: FakeBroker) -> None:
    broker.answers["List"] = broker_pb2.ListResponse(jobs=[job()], next_page_token="")
    page = client.list(queue="q", statuses=[JobStatus.FAILED, JobStatus.CANCELLED], page_size=10)
    [(_, request, _)] = broker.requests
    assert list(request.statuses) == [job_pb2.JOB_STATUS_FAILED, job_pb2.JOB_STATUS_CANCELLED]
    assert (request.queue, request.page_size, request.page_token) == ("q", 10, "")
    assert len(page.jobs) == 1 and page.next_page_token is None
    with pytest.raises(ValueError):
        JobStatus.UNKNOWN.to_proto()


def test_cancel_and_retry(client: Client, broker: FakeBroker) -> None:
    broker.answers["Cancel"] = broker_pb2.CancelResponse(job=job(job_pb2.JOB_STATUS_RUNNING, cancel_requested=True))
    broker.answers["Retry"] = broker_pb2.RetryResponse(job=job())
    assert client.cancel("42").cancel_requested
    assert client.retry("42").status is JobStatus.PENDING
    assert [r[0] for r in broker.requests] == ["Cancel", "Retry"]


def test_watch_ends_after_the_terminal_state(client: Client, broker: FakeBroker) -> None:
    call = FakeWatch([job(job_pb2.JOB_STATUS_RUNNING), job(job_pb2.JOB_STATUS_COMPLETED), job(99)])
    broker.watches.append(call)
    assert [j.status for j in client.watch("42")] == [JobStatus.RUNNING, JobStatus.COMPLETED]
    assert call.cancelled


def test_result_returns_the_value_and_survives_unavailable(
    client: Client, broker: FakeBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("baton.client.time.sleep", lambda seconds: None)  # the backoff
    broker.watches.append(FakeWatch([job(job_pb2.JOB_STATUS_RUNNING)], FakeRpcError(grpc.StatusCode.UNAVAILABLE, "restart")))
    broker.watches.append(FakeWatch([job(job_pb2.JOB_STATUS_COMPLETED, result_json=b'{"value": 7}')]))
    assert client.result("42") == {"value": 7}


def test_result_raises_for_failed_and_cancelled_jobs(client: Client, broker: FakeBroker) -> None:
    failed = job(job_pb2.JOB_STATUS_FAILED, errors=[job_pb2.AttemptError(attempt=1, message="boom")])
    broker.watches += [FakeWatch([failed]), FakeWatch([job(job_pb2.JOB_STATUS_CANCELLED)])]
    with pytest.raises(JobFailedError, match="job 42 failed: boom"):
        client.result("42")
    with pytest.raises(JobCancelledError):
        client.result("42")


def test_result_gives_up_on_other_errors(client: Client, broker: FakeBroker) -> None:
    broker.watches.append(FakeWatch([], FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "no")))
    with pytest.raises(BatonError) as raised:
        client.result("42")
    assert raised.value.code is grpc.StatusCode.PERMISSION_DENIED


def test_server_info(client: Client, broker: FakeBroker) -> None:
    info = broker_pb2.GetServerInfoResponse(version="1.2.3", protocol_version=1, capabilities=["batch"], max_payload_bytes=9)
    info.lease_ttl.FromSeconds(30)
    broker.answers["GetServerInfo"] = info
    got = client.server_info()
    assert (got.version, got.protocol_version, got.capabilities, got.lease_ttl, got.max_payload_bytes) == (
        "1.2.3", 1, ["batch"], 30.0, 9,
    )


def test_backoff_is_full_jitter_capped() -> None:
    top = lambda low, high: high  # noqa: E731  (the largest delay the draw allows)
    assert [backoff_delay(n, 0.1, 1.0, top) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff_delay(10_000, 0.1, 10.0, top) == 10.0
    assert backoff_delay(3, 0.1, 10.0, lambda low, high: low) == 0.0


def test_retry_after_refuses_negative_waits() -> None:
    with pytest.raises(ValueError):
        RetryAfterError("no", -1)
    assert RetryAfterError("later", 2).seconds == 2.0
