package client

// Jobs as the Client hands them out: plain Go values (a Status, times, durations, JSON text)
// instead of protobuf messages, and their translation to and from the wire.

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// Status is where a job is in its lifecycle (docs/state-machine.md).
type Status string

const (
	// StatusPending: runnable now, waiting for a worker with credit and a free concurrency slot.
	StatusPending Status = "pending"
	// StatusScheduled: not runnable yet (run_at in the future, as requested or while a retry backs off).
	StatusScheduled Status = "scheduled"
	// StatusRunning: held by a worker.
	StatusRunning Status = "running"
	// StatusCompleted: terminal; the handler succeeded.
	StatusCompleted Status = "completed"
	// StatusFailed: terminal; attempts exhausted or a non-retryable failure. Retry revives it.
	StatusFailed Status = "failed"
	// StatusCancelled: terminal; cancelled. Retry revives it.
	StatusCancelled Status = "cancelled"
	// StatusUnknown: a status a newer broker added that this library does not know.
	StatusUnknown Status = "unknown"
)

// Terminal reports whether a job never leaves this status by itself.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

var wireStatus = map[Status]batonv1.JobStatus{
	StatusPending:   batonv1.JobStatus_JOB_STATUS_PENDING,
	StatusScheduled: batonv1.JobStatus_JOB_STATUS_SCHEDULED,
	StatusRunning:   batonv1.JobStatus_JOB_STATUS_RUNNING,
	StatusCompleted: batonv1.JobStatus_JOB_STATUS_COMPLETED,
	StatusFailed:    batonv1.JobStatus_JOB_STATUS_FAILED,
	StatusCancelled: batonv1.JobStatus_JOB_STATUS_CANCELLED,
}

func statusFromWire(s batonv1.JobStatus) Status {
	for status, wire := range wireStatus {
		if wire == s {
			return status
		}
	}
	return StatusUnknown
}

func statusToWire(s Status) (batonv1.JobStatus, error) {
	wire, ok := wireStatus[s]
	if !ok {
		return 0, fmt.Errorf("client: no job status %q", s)
	}
	return wire, nil
}

// RetryPolicy is the backoff between attempts: the delay before attempt n+1 is
// min(MaxBackoff, InitialBackoff*Multiplier^(n-1)), less a random fraction up to Jitter.
// Zero fields take the broker's defaults (1 s, 10 min, 2, 0.2).
type RetryPolicy struct {
	InitialBackoff time.Duration `json:"initialBackoff,omitempty"`
	MaxBackoff     time.Duration `json:"maxBackoff,omitempty"`
	Multiplier     float64       `json:"multiplier,omitempty"`
	Jitter         float64       `json:"jitter,omitempty"`
}

// AttemptError is the error of one failed attempt.
type AttemptError struct {
	Attempt  int32      `json:"attempt"`
	Message  string     `json:"message"`
	At       *time.Time `json:"at,omitempty"`
	WorkerID string     `json:"workerId,omitempty"` // empty when the broker failed the attempt itself
}

// Job is a job as the broker stores it. Payload, Result and Progress are the exact JSON text the
// broker stores (PostgreSQL's formatting), empty when absent; json.Unmarshal them into your types.
type Job struct {
	ID              string            `json:"id"`
	Queue           string            `json:"queue"`
	Status          Status            `json:"status"`
	Payload         json.RawMessage   `json:"payload,omitempty"`
	Priority        int32             `json:"priority"`
	RunAt           *time.Time        `json:"runAt,omitempty"`
	Attempt         int32             `json:"attempt"`
	MaxAttempts     int32             `json:"maxAttempts"`
	RetryPolicy     *RetryPolicy      `json:"retryPolicy,omitempty"`
	Timeout         time.Duration     `json:"timeout,omitempty"` // zero: no limit
	IdempotencyKey  string            `json:"idempotencyKey,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	Result          json.RawMessage   `json:"result,omitempty"`
	Errors          []AttemptError    `json:"errors,omitempty"`
	CreatedAt       *time.Time        `json:"createdAt,omitempty"`
	StartedAt       *time.Time        `json:"startedAt,omitempty"`
	FinishedAt      *time.Time        `json:"finishedAt,omitempty"`
	WorkerID        string            `json:"workerId,omitempty"`
	CancelRequested bool              `json:"cancelRequested,omitempty"`
	Progress        json.RawMessage   `json:"progress,omitempty"`
	Traceparent     string            `json:"traceparent,omitempty"`
}

// EnqueuedJob is a job just enqueued.
type EnqueuedJob struct {
	Job
	// Duplicate is true when the idempotency key matched an earlier job, which is the one returned.
	Duplicate bool `json:"duplicate,omitempty"`
}

// JobChange is one change WatchQueue reports: the job's id, queue and new status (Get the rest).
type JobChange struct {
	ID     string
	Queue  string
	Status Status
}

// JobPage is one page of List, newest first.
type JobPage struct {
	Jobs []*Job
	// NextPageToken goes in ListOptions.PageToken for the next page; empty on the last page.
	NextPageToken string
}

// ServerInfo is what a broker speaks.
type ServerInfo struct {
	Version         string
	ProtocolVersion int32
	Capabilities    []string
	LeaseTTL        time.Duration // zero when the broker did not say
	MaxPayloadBytes int64
}

func timeOf(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	at := t.AsTime()
	return &at
}

func durationOf(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

func jsonOf(data []byte) json.RawMessage {
	if len(data) == 0 {
		return nil
	}
	return json.RawMessage(data)
}

// jobFromWire reads a Job message.
func jobFromWire(m *batonv1.Job) *Job {
	if m == nil {
		return &Job{Status: StatusUnknown}
	}
	j := &Job{
		ID: m.Id, Queue: m.Queue, Status: statusFromWire(m.Status), Payload: jsonOf(m.PayloadJson),
		Priority: m.Priority, RunAt: timeOf(m.RunAt), Attempt: m.Attempt, MaxAttempts: m.MaxAttempts,
		Timeout: durationOf(m.Timeout), IdempotencyKey: m.IdempotencyKey, Labels: m.Labels,
		Result: jsonOf(m.ResultJson), CreatedAt: timeOf(m.CreatedAt), StartedAt: timeOf(m.StartedAt),
		FinishedAt: timeOf(m.FinishedAt), WorkerID: m.WorkerId, CancelRequested: m.CancelRequested,
		Progress: jsonOf(m.ProgressJson), Traceparent: m.Traceparent,
	}
	if p := m.RetryPolicy; p != nil {
		j.RetryPolicy = &RetryPolicy{InitialBackoff: durationOf(p.InitialBackoff), MaxBackoff: durationOf(p.MaxBackoff),
			Multiplier: p.GetMultiplier(), Jitter: p.GetJitter()}
	}
	for _, e := range m.Errors {
		j.Errors = append(j.Errors, AttemptError{Attempt: e.Attempt, Message: e.Message, At: timeOf(e.At), WorkerID: e.WorkerId})
	}
	return j
}
