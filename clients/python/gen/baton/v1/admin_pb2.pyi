from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
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
MISSED_TICK_POLICY_BACKFILL: MissedTickPolicy
MISSED_TICK_POLICY_RUN_ONCE: MissedTickPolicy
MISSED_TICK_POLICY_SKIP: MissedTickPolicy
MISSED_TICK_POLICY_UNSPECIFIED: MissedTickPolicy
OVERLAP_POLICY_ALLOW: OverlapPolicy
OVERLAP_POLICY_SKIP: OverlapPolicy
OVERLAP_POLICY_UNSPECIFIED: OverlapPolicy

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

class DeleteScheduleRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteScheduleResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

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

class ListSchedulesRequest(_message.Message):
    __slots__ = ["name", "next_runs"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUNS_FIELD_NUMBER: _ClassVar[int]
    name: str
    next_runs: int
    def __init__(self, name: _Optional[str] = ..., next_runs: _Optional[int] = ...) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ["schedules"]
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[ScheduleInfo]
    def __init__(self, schedules: _Optional[_Iterable[_Union[ScheduleInfo, _Mapping]]] = ...) -> None: ...

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

class PauseScheduleRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PauseScheduleResponse(_message.Message):
    __slots__ = ["schedule"]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: ScheduleInfo
    def __init__(self, schedule: _Optional[_Union[ScheduleInfo, _Mapping]] = ...) -> None: ...

class Queue(_message.Message):
    __slots__ = ["concurrency", "default_max_attempts", "default_timeout", "fair_keys", "key_concurrency", "name", "paused", "rate_limit"]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    FAIR_KEYS_FIELD_NUMBER: _ClassVar[int]
    KEY_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    concurrency: int
    default_max_attempts: int
    default_timeout: _duration_pb2.Duration
    fair_keys: bool
    key_concurrency: int
    name: str
    paused: bool
    rate_limit: RateLimit
    def __init__(self, name: _Optional[str] = ..., concurrency: _Optional[int] = ..., paused: bool = ..., default_max_attempts: _Optional[int] = ..., default_timeout: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., rate_limit: _Optional[_Union[RateLimit, _Mapping]] = ..., fair_keys: bool = ..., key_concurrency: _Optional[int] = ...) -> None: ...

class QueueStats(_message.Message):
    __slots__ = ["cancelled", "completed", "completed_per_minute", "failed", "failed_per_minute", "mean_wait_ms_per_minute", "oldest_pending_run_at", "pending", "queue", "running", "scheduled", "settings", "started_per_minute", "total"]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILED_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    MEAN_WAIT_MS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    OLDEST_PENDING_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    STARTED_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    cancelled: int
    completed: int
    completed_per_minute: _containers.RepeatedScalarFieldContainer[int]
    failed: int
    failed_per_minute: _containers.RepeatedScalarFieldContainer[int]
    mean_wait_ms_per_minute: _containers.RepeatedScalarFieldContainer[float]
    oldest_pending_run_at: _timestamp_pb2.Timestamp
    pending: int
    queue: str
    running: int
    scheduled: int
    settings: Queue
    started_per_minute: _containers.RepeatedScalarFieldContainer[int]
    total: int
    def __init__(self, queue: _Optional[str] = ..., total: _Optional[int] = ..., pending: _Optional[int] = ..., scheduled: _Optional[int] = ..., running: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., settings: _Optional[_Union[Queue, _Mapping]] = ..., completed_per_minute: _Optional[_Iterable[int]] = ..., failed_per_minute: _Optional[_Iterable[int]] = ..., oldest_pending_run_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., started_per_minute: _Optional[_Iterable[int]] = ..., mean_wait_ms_per_minute: _Optional[_Iterable[float]] = ...) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ["interval", "key_interval", "key_limit", "limit"]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    KEY_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    KEY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    interval: _duration_pb2.Duration
    key_interval: _duration_pb2.Duration
    key_limit: int
    limit: int
    def __init__(self, limit: _Optional[int] = ..., interval: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., key_limit: _Optional[int] = ..., key_interval: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

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

class ResumeScheduleRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResumeScheduleResponse(_message.Message):
    __slots__ = ["schedule"]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: ScheduleInfo
    def __init__(self, schedule: _Optional[_Union[ScheduleInfo, _Mapping]] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ["backfill_limit", "cron", "labels", "max_attempts", "missed", "name", "overlap", "paused", "payload", "payload_json", "priority", "queue", "time_zone", "timeout"]
    class LabelsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BACKFILL_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    backfill_limit: int
    cron: str
    labels: _containers.ScalarMap[str, str]
    max_attempts: int
    missed: MissedTickPolicy
    name: str
    overlap: OverlapPolicy
    paused: bool
    payload: _struct_pb2.Value
    payload_json: bytes
    priority: int
    queue: str
    time_zone: str
    timeout: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., queue: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., payload_json: _Optional[bytes] = ..., cron: _Optional[str] = ..., time_zone: _Optional[str] = ..., priority: _Optional[int] = ..., max_attempts: _Optional[int] = ..., timeout: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., missed: _Optional[_Union[MissedTickPolicy, str]] = ..., backfill_limit: _Optional[int] = ..., overlap: _Optional[_Union[OverlapPolicy, str]] = ..., paused: bool = ...) -> None: ...

class ScheduleInfo(_message.Message):
    __slots__ = ["created_at", "last_job_id", "last_job_status", "last_tick_at", "next_runs", "schedule", "updated_at"]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_JOB_STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_TICK_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUNS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    created_at: _timestamp_pb2.Timestamp
    last_job_id: str
    last_job_status: _job_pb2.JobStatus
    last_tick_at: _timestamp_pb2.Timestamp
    next_runs: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    schedule: Schedule
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ..., next_runs: _Optional[_Iterable[_Union[_timestamp_pb2.Timestamp, _Mapping]]] = ..., last_tick_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_job_id: _Optional[str] = ..., last_job_status: _Optional[_Union[_job_pb2.JobStatus, str]] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

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

class TriggerScheduleRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TriggerScheduleResponse(_message.Message):
    __slots__ = ["job_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class UpdateQueueRequest(_message.Message):
    __slots__ = ["concurrency", "default_max_attempts", "default_timeout", "fair_keys", "key_concurrency", "queue", "rate_limit"]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    FAIR_KEYS_FIELD_NUMBER: _ClassVar[int]
    KEY_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    concurrency: int
    default_max_attempts: int
    default_timeout: _duration_pb2.Duration
    fair_keys: bool
    key_concurrency: int
    queue: str
    rate_limit: RateLimit
    def __init__(self, queue: _Optional[str] = ..., concurrency: _Optional[int] = ..., default_max_attempts: _Optional[int] = ..., default_timeout: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., rate_limit: _Optional[_Union[RateLimit, _Mapping]] = ..., fair_keys: bool = ..., key_concurrency: _Optional[int] = ...) -> None: ...

class UpdateQueueResponse(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ...) -> None: ...

class UpsertScheduleRequest(_message.Message):
    __slots__ = ["schedule"]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: Schedule
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ...) -> None: ...

class UpsertScheduleResponse(_message.Message):
    __slots__ = ["created", "schedule"]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    created: bool
    schedule: ScheduleInfo
    def __init__(self, schedule: _Optional[_Union[ScheduleInfo, _Mapping]] = ..., created: bool = ...) -> None: ...

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

class MissedTickPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class OverlapPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
