from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from baton.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

BULK_ACTION_KIND_CANCEL: BulkActionKind
BULK_ACTION_KIND_DELETE: BulkActionKind
BULK_ACTION_KIND_RETRY: BulkActionKind
BULK_ACTION_KIND_UNSPECIFIED: BulkActionKind
DESCRIPTOR: _descriptor.FileDescriptor

class BulkActionRequest(_message.Message):
    __slots__ = ["action", "cursor", "dry_run", "filter", "limit"]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    action: BulkActionKind
    cursor: str
    dry_run: bool
    filter: BulkJobFilter
    limit: int
    def __init__(self, action: _Optional[_Union[BulkActionKind, str]] = ..., filter: _Optional[_Union[BulkJobFilter, _Mapping]] = ..., dry_run: bool = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class BulkActionResponse(_message.Message):
    __slots__ = ["cancel_requested", "changed", "cursor"]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    cancel_requested: int
    changed: int
    cursor: str
    def __init__(self, changed: _Optional[int] = ..., cancel_requested: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class BulkJobFilter(_message.Message):
    __slots__ = ["all", "created_after", "created_before", "idempotency_key", "labels", "queue", "statuses"]
    class LabelsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ALL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    all: bool
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    idempotency_key: str
    labels: _containers.ScalarMap[str, str]
    queue: str
    statuses: _containers.RepeatedScalarFieldContainer[_job_pb2.JobStatus]
    def __init__(self, queue: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_job_pb2.JobStatus, str]]] = ..., idempotency_key: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., created_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., created_after: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., all: bool = ...) -> None: ...

class GetQueueStatsRequest(_message.Message):
    __slots__ = ["queues", "throughput_minutes"]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_MINUTES_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedScalarFieldContainer[str]
    throughput_minutes: int
    def __init__(self, queues: _Optional[_Iterable[str]] = ..., throughput_minutes: _Optional[int] = ...) -> None: ...

class GetQueueStatsResponse(_message.Message):
    __slots__ = ["queues"]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueStats]
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueStats, _Mapping]]] = ...) -> None: ...

class ListQueuesRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListQueuesResponse(_message.Message):
    __slots__ = ["queues"]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[Queue]
    def __init__(self, queues: _Optional[_Iterable[_Union[Queue, _Mapping]]] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ["sessions"]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[WorkerSession]
    def __init__(self, sessions: _Optional[_Iterable[_Union[WorkerSession, _Mapping]]] = ...) -> None: ...

class PauseQueueRequest(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class PauseQueueResponse(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ...) -> None: ...

class Queue(_message.Message):
    __slots__ = ["concurrency", "default_max_attempts", "default_timeout", "name", "paused"]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    concurrency: int
    default_max_attempts: int
    default_timeout: _duration_pb2.Duration
    name: str
    paused: bool
    def __init__(self, name: _Optional[str] = ..., concurrency: _Optional[int] = ..., paused: bool = ..., default_max_attempts: _Optional[int] = ..., default_timeout: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class QueueStats(_message.Message):
    __slots__ = ["cancelled", "completed", "completed_per_minute", "failed", "failed_per_minute", "oldest_pending_run_at", "pending", "queue", "running", "scheduled", "settings", "total"]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILED_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    OLDEST_PENDING_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    cancelled: int
    completed: int
    completed_per_minute: _containers.RepeatedScalarFieldContainer[int]
    failed: int
    failed_per_minute: _containers.RepeatedScalarFieldContainer[int]
    oldest_pending_run_at: _timestamp_pb2.Timestamp
    pending: int
    queue: str
    running: int
    scheduled: int
    settings: Queue
    total: int
    def __init__(self, queue: _Optional[str] = ..., total: _Optional[int] = ..., pending: _Optional[int] = ..., scheduled: _Optional[int] = ..., running: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., settings: _Optional[_Union[Queue, _Mapping]] = ..., completed_per_minute: _Optional[_Iterable[int]] = ..., failed_per_minute: _Optional[_Iterable[int]] = ..., oldest_pending_run_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResumeQueueRequest(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class ResumeQueueResponse(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ...) -> None: ...

class SetQueueConcurrencyRequest(_message.Message):
    __slots__ = ["concurrency", "queue"]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    concurrency: int
    queue: str
    def __init__(self, queue: _Optional[str] = ..., concurrency: _Optional[int] = ...) -> None: ...

class SetQueueConcurrencyResponse(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ...) -> None: ...

class UpdateQueueRequest(_message.Message):
    __slots__ = ["concurrency", "default_max_attempts", "default_timeout", "queue"]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    concurrency: int
    default_max_attempts: int
    default_timeout: _duration_pb2.Duration
    queue: str
    def __init__(self, queue: _Optional[str] = ..., concurrency: _Optional[int] = ..., default_max_attempts: _Optional[int] = ..., default_timeout: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class UpdateQueueResponse(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ...) -> None: ...

class WorkerSession(_message.Message):
    __slots__ = ["broker_id", "capacity", "connected_at", "jobs_held", "lease_expires_at", "queues", "session_id", "worker_id"]
    BROKER_ID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    JOBS_HELD_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    broker_id: str
    capacity: int
    connected_at: _timestamp_pb2.Timestamp
    jobs_held: int
    lease_expires_at: _timestamp_pb2.Timestamp
    queues: _containers.RepeatedScalarFieldContainer[str]
    session_id: str
    worker_id: str
    def __init__(self, session_id: _Optional[str] = ..., worker_id: _Optional[str] = ..., broker_id: _Optional[str] = ..., queues: _Optional[_Iterable[str]] = ..., capacity: _Optional[int] = ..., jobs_held: _Optional[int] = ..., connected_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., lease_expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BulkActionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
