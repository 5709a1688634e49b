"""The producer's side: enqueue jobs, read and steer them, wait for their results."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

import grpc

from ._backoff import backoff_delay
from ._channel import ChannelOption, Connection
from ._enqueue_coalescer import EnqueueCoalescer
from .errors import BatonError, JobCancelledError, JobFailedError
from .jobs import (
    EnqueuedJob,
    EnqueueItem,
    Job,
    JobChange,
    JobPage,
    JobStatus,
    RetryPolicy,
    ServerInfo,
    UniqueOptions,
    enqueue_request,
    enqueued_from_proto,
    job_from_proto,
)
from .v1 import broker_pb2, broker_pb2_grpc

class Client:
    """Talks to the brokers as a producer. Opens one channel on the first call and keeps it (gRPC
    reconnects it by itself); ``close()`` it when done, or use it as a context manager.

    ``address`` is any gRPC target (``host:port``, ``dns:name:port``,
    ``ipv4:10.0.0.1:7700,10.0.0.2:7700``); default ``$BATON_ADDRESS``, else localhost:7700. ``token``
    (default ``$BATON_TOKEN``) is sent as ``authorization: Bearer <token>`` to brokers that require
    API keys. ``credentials`` (e.g. ``grpc.ssl_channel_credentials(ca_pem)``) switches to TLS.
    ``timeout`` bounds each unary call, in seconds (None: no deadline).
    Failed calls raise BatonError with the gRPC status. ``enqueue()`` calls made from several threads
    while two are in flight leave together as one EnqueueBatch, each keeping its own job and error
    (``baton/_enqueue_coalescer.py``); ``coalesce_enqueues=False`` sends one Enqueue per call.

        with Client() as client:
            job = client.enqueue("fibonacci", {"n": 303})
            print(client.result(job.id))
    """

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        channel_options: Optional[Sequence[ChannelOption]] = None,
        timeout: Optional[float] = 30.0,
        coalesce_enqueues: bool = True,
    ) -> None:
        self._connection = Connection.of(address, token, credentials, channel_options)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._channel: Optional[grpc.Channel] = None
        self._stub: Optional[broker_pb2_grpc.BrokerStub] = None
        self._coalescer = EnqueueCoalescer(self._send_enqueue, self._send_enqueue_batch) if coalesce_enqueues else None

    @property
    def address(self) -> str:
        return self._connection.address

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel; calls in flight fail with CANCELLED. The client may be used again."""
        with self._lock:
            channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()

    # ----------------------------------------------------------------------------------------------
    # Producer calls

    def enqueue(
        self,
        queue: str,
        payload: Any = None,
        *,
        priority: int = 0,
        run_at: Optional[datetime] = None,
        delay: Optional[float] = None,
        max_attempts: Optional[int] = None,
        retry_policy: Optional[RetryPolicy] = None,
        timeout: Optional[float] = None,
        idempotency_key: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        traceparent: Optional[str] = None,
        unique: Optional[UniqueOptions] = None,
        rate_limit_key: Optional[str] = None,
        concurrency_key: Optional[str] = None,
    ) -> EnqueuedJob:
        """Stores one job (durably) and returns it; the options are those of EnqueueItem."""
        item = EnqueueItem(
            queue,
            payload,
            priority=priority,
            run_at=run_at,
            delay=delay,
            max_attempts=max_attempts,
            retry_policy=retry_policy,
            timeout=timeout,
            idempotency_key=idempotency_key,
            labels=dict(labels or {}),
            traceparent=traceparent,
            unique=unique,
            rate_limit_key=rate_limit_key,
            concurrency_key=concurrency_key,
        )
        request = enqueue_request(item)
        if self._coalescer is None:
            return enqueued_from_proto(self._send_enqueue(request))
        return enqueued_from_proto(self._coalescer.enqueue(request))

    def enqueue_batch(self, items: Iterable[EnqueueItem], *, ids_only: bool = False) -> List[EnqueuedJob]:
        """Stores many jobs in one transaction: all of them, or none and a BatonError naming the bad
        one. With ``ids_only`` the broker returns only ids and statuses (far less to send back)."""
        request = broker_pb2.EnqueueBatchRequest(jobs=[enqueue_request(i) for i in items], ids_only=ids_only)
        response = self._call(lambda b, kw: b.EnqueueBatch(request, **kw))
        return [enqueued_from_proto(r) for r in response.jobs]

    def get(self, id: str) -> Job:
        """One job with its result and every attempt's error; BatonError NOT_FOUND if unknown."""
        return job_from_proto(self._call(lambda b, kw: b.Get(broker_pb2.GetRequest(id=id), **kw)).job)

    def list(
        self,
        *,
        queue: Optional[str] = None,
        statuses: Iterable[JobStatus] = (),
        page_size: int = 0,
        page_token: Optional[str] = None,
    ) -> JobPage:
        """Jobs newest first, filtered by queue and status, one page (``page_size``, default 50) at a time."""
        request = broker_pb2.ListRequest(
            queue=queue or "",
            statuses=[s.to_proto() for s in statuses],
            page_size=page_size,
            page_token=page_token or "",
        )
        response = self._call(lambda b, kw: b.List(request, **kw))
        return JobPage([job_from_proto(j) for j in response.jobs], response.next_page_token or None)

    def cancel(self, id: str) -> Job:
        """Cancels a job: a pending or scheduled one at once; a running one comes back with
        ``cancel_requested`` and becomes CANCELLED when its handler stops."""
        return job_from_proto(self._call(lambda b, kw: b.Cancel(broker_pb2.CancelRequest(id=id), **kw)).job)

    def retry(self, id: str) -> Job:
        """Puts a FAILED or CANCELLED job back to PENDING with a fresh set of attempts."""
        return job_from_proto(self._call(lambda b, kw: b.Retry(broker_pb2.RetryRequest(id=id), **kw)).job)

    def watch(self, id: str, *, timeout: Optional[float] = None) -> Iterator[Job]:
        """The job's current state, then each change, ending after the terminal one. ``timeout``
        bounds the whole watch (DEADLINE_EXCEEDED); closing the iterator early cancels the call."""
        call = self._stub_().Watch(broker_pb2.WatchRequest(id=id), timeout=timeout, metadata=self._connection.metadata)
        try:
            for change in call:
                if not change.HasField("job"):
                    continue
                job = job_from_proto(change.job)
                yield job
                if job.status.terminal:
                    return
        except grpc.RpcError as e:
            raise BatonError.from_rpc_error(e) from None
        finally:
            call.cancel()

    def watch_queue(self, queue: str) -> Iterator[JobChange]:
        """Changes of a queue's jobs as they happen, until the caller closes the iterator (it never
        ends by itself) or the stream breaks."""
        call = self._stub_().Watch(broker_pb2.WatchRequest(queue=queue), metadata=self._connection.metadata)
        try:
            for change in call:
                if change.HasField("job"):
                    yield JobChange(change.job.id, change.job.queue, JobStatus.from_proto(change.job.status))
        except grpc.RpcError as e:
            raise BatonError.from_rpc_error(e) from None
        finally:
            call.cancel()

    def result(self, id: str, *, timeout: Optional[float] = None) -> Any:
        """Waits for the job to finish and returns its result (parsed JSON). Raises JobFailedError or
        JobCancelledError when it ended otherwise, BatonError DEADLINE_EXCEEDED after ``timeout``
        seconds. Survives broker restarts: a watch broken by UNAVAILABLE is opened again with backoff."""
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                for job in self.watch(id, timeout=left):
                    failures = 0
                    if job.status is JobStatus.COMPLETED:
                        return job.result
                    if job.status is JobStatus.FAILED:
                        raise JobFailedError(job)
                    if job.status is JobStatus.CANCELLED:
                        raise JobCancelledError(job)
            except BatonError as e:
                if e.code is not grpc.StatusCode.UNAVAILABLE:
                    raise
            pause = backoff_delay(failures, 0.1, 5.0)
            if deadline is not None and time.monotonic() + pause >= deadline:
                raise BatonError(grpc.StatusCode.DEADLINE_EXCEEDED, f"job {id} did not finish within {timeout} s")
            time.sleep(pause)
            failures += 1

    def server_info(self) -> ServerInfo:
        """What the broker speaks: its version, protocol version and capabilities."""
        r = self._call(lambda b, kw: b.GetServerInfo(broker_pb2.GetServerInfoRequest(), **kw))
        return ServerInfo(
            version=r.version,
            protocol_version=r.protocol_version,
            capabilities=list(r.capabilities),
            lease_ttl=r.lease_ttl.ToNanoseconds() / 1e9 if r.HasField("lease_ttl") else None,
            max_payload_bytes=r.max_payload_bytes,
        )

    # ----------------------------------------------------------------------------------------------

    def _stub_(self) -> broker_pb2_grpc.BrokerStub:
        """The Broker stub, opening the channel on first use (the constructor touches no network)."""
        with self._lock:
            if self._stub is None:
                self._channel = self._connection.open()
                self._stub = broker_pb2_grpc.BrokerStub(self._channel)
            return self._stub

    def _send_enqueue(self, request: broker_pb2.EnqueueRequest) -> broker_pb2.EnqueueResponse:
        response: broker_pb2.EnqueueResponse = self._call(lambda b, kw: b.Enqueue(request, **kw))
        return response

    def _send_enqueue_batch(self, requests: Sequence[broker_pb2.EnqueueRequest]) -> Sequence[broker_pb2.EnqueueResponse]:
        batch = broker_pb2.EnqueueBatchRequest(jobs=requests, ids_only=False)
        return list(self._call(lambda b, kw: b.EnqueueBatch(batch, **kw)).jobs)

    def _call(self, rpc: Callable[[broker_pb2_grpc.BrokerStub, Dict[str, Any]], Any]) -> Any:
        """Runs a unary call with the deadline and the API key; failures become BatonError."""
        try:
            return rpc(self._stub_(), {"timeout": self._timeout, "metadata": self._connection.metadata})
        except grpc.RpcError as e:
            raise BatonError.from_rpc_error(e) from None
