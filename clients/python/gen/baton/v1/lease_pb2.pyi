from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CancelNotice(_message.Message):
    __slots__ = ["job_id", "lease_token", "reason"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_token: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., lease_token: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ["deadline"]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    deadline: _duration_pb2.Duration
    def __init__(self, deadline: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ["lease_tokens"]
    LEASE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    lease_tokens: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lease_tokens: _Optional[_Iterable[str]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ["capacity", "protocol_version", "queues", "sdk", "worker_id"]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    SDK_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    capacity: int
    protocol_version: int
    queues: _containers.RepeatedScalarFieldContainer[str]
    sdk: str
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., queues: _Optional[_Iterable[str]] = ..., capacity: _Optional[int] = ..., protocol_version: _Optional[int] = ..., sdk: _Optional[str] = ...) -> None: ...

class JobAssignment(_message.Message):
    __slots__ = ["attempt", "created_at", "job_id", "labels", "lease_token", "max_attempts", "payload_json", "priority", "queue", "timeout", "traceparent"]
    class LabelsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    created_at: _timestamp_pb2.Timestamp
    job_id: str
    labels: _containers.ScalarMap[str, str]
    lease_token: str
    max_attempts: int
    payload_json: bytes
    priority: int
    queue: str
    timeout: _duration_pb2.Duration
    traceparent: str
    def __init__(self, job_id: _Optional[str] = ..., queue: _Optional[str] = ..., payload_json: _Optional[bytes] = ..., lease_token: _Optional[str] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., timeout: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., traceparent: _Optional[str] = ..., priority: _Optional[int] = ...) -> None: ...

class JobFailure(_message.Message):
    __slots__ = ["message", "non_retryable", "retry_after"]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NON_RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    message: str
    non_retryable: bool
    retry_after: _duration_pb2.Duration
    def __init__(self, message: _Optional[str] = ..., non_retryable: bool = ..., retry_after: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ["job_id", "lease_token", "progress_json"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_JSON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease_token: str
    progress_json: bytes
    def __init__(self, job_id: _Optional[str] = ..., lease_token: _Optional[str] = ..., progress_json: _Optional[bytes] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ["failure", "job_id", "lease_token", "result_json", "snooze"]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    SNOOZE_FIELD_NUMBER: _ClassVar[int]
    failure: JobFailure
    job_id: str
    lease_token: str
    result_json: bytes
    snooze: JobSnooze
    def __init__(self, job_id: _Optional[str] = ..., lease_token: _Optional[str] = ..., result_json: _Optional[bytes] = ..., failure: _Optional[_Union[JobFailure, _Mapping]] = ..., snooze: _Optional[_Union[JobSnooze, _Mapping]] = ...) -> None: ...

class JobSnooze(_message.Message):
    __slots__ = ["delay"]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    delay: _duration_pb2.Duration
    def __init__(self, delay: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class LeaseRequest(_message.Message):
    __slots__ = ["credits", "heartbeat", "hello", "progress", "results"]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    credits: int
    heartbeat: Heartbeat
    hello: Hello
    progress: _containers.RepeatedCompositeFieldContainer[JobProgress]
    results: _containers.RepeatedCompositeFieldContainer[JobResult]
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., credits: _Optional[int] = ..., results: _Optional[_Iterable[_Union[JobResult, _Mapping]]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., progress: _Optional[_Iterable[_Union[JobProgress, _Mapping]]] = ...) -> None: ...

class LeaseResponse(_message.Message):
    __slots__ = ["acks", "cancels", "drain", "jobs", "lost", "welcome"]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    CANCELS_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[ResultAck]
    cancels: _containers.RepeatedCompositeFieldContainer[CancelNotice]
    drain: Drain
    jobs: _containers.RepeatedCompositeFieldContainer[JobAssignment]
    lost: _containers.RepeatedScalarFieldContainer[str]
    welcome: Welcome
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., jobs: _Optional[_Iterable[_Union[JobAssignment, _Mapping]]] = ..., acks: _Optional[_Iterable[_Union[ResultAck, _Mapping]]] = ..., cancels: _Optional[_Iterable[_Union[CancelNotice, _Mapping]]] = ..., lost: _Optional[_Iterable[str]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ...) -> None: ...

class ResultAck(_message.Message):
    __slots__ = ["accepted", "error", "job_id", "lease_token"]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    error: str
    job_id: str
    lease_token: str
    def __init__(self, job_id: _Optional[str] = ..., lease_token: _Optional[str] = ..., accepted: bool = ..., error: _Optional[str] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ["broker_id", "heartbeat_interval", "lease_ttl", "protocol_version", "session_id"]
    BROKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    broker_id: str
    heartbeat_interval: _duration_pb2.Duration
    lease_ttl: _duration_pb2.Duration
    protocol_version: int
    session_id: str
    def __init__(self, session_id: _Optional[str] = ..., heartbeat_interval: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., lease_ttl: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., protocol_version: _Optional[int] = ..., broker_id: _Optional[str] = ...) -> None: ...
