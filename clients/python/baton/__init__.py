"""Baton for Python: the ``Worker`` that runs jobs over the Lease protocol, and the producer
``Client`` that enqueues them and reads them back.

    from baton import Client, Worker

    def fibonacci(payload, ctx):
        ...
        return {"n": n, "value": str(value)}

    Worker({"fibonacci": fibonacci}, address="localhost:7700").run()   # until SIGINT/SIGTERM

    with Client("localhost:7700") as client:
        job = client.enqueue("fibonacci", {"n": 303})
        print(client.result(job.id))

The generated gRPC stubs are ``baton.v1`` (``from baton.v1 import broker_pb2, broker_pb2_grpc``).
Everything not named below is internal.
"""

from ._version import SDK_NAME, __version__
from .client import Client
from .errors import BatonError, JobCancelledError, JobFailedError, JobStopped, NonRetryableError, RetryAfterError, Snooze
from .handler import Handler, JobContext, StopReason
from .jobs import (
    AttemptError,
    EnqueuedJob,
    EnqueueItem,
    Job,
    JobChange,
    JobPage,
    JobStatus,
    RetryPolicy,
    ServerInfo,
    UniqueOptions,
)
from .worker import Worker

__all__ = [
    "AttemptError",
    "BatonError",
    "Client",
    "EnqueueItem",
    "EnqueuedJob",
    "Handler",
    "Job",
    "JobCancelledError",
    "JobChange",
    "JobContext",
    "JobFailedError",
    "JobPage",
    "JobStatus",
    "JobStopped",
    "NonRetryableError",
    "RetryAfterError",
    "RetryPolicy",
    "SDK_NAME",
    "ServerInfo",
    "Snooze",
    "StopReason",
    "UniqueOptions",
    "Worker",
    "__version__",
]
