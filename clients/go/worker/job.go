package worker

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// Handler runs one attempt of a job. It returns the result (any value encoding/json can marshal, a
// json.RawMessage, or nil for JSON null) or an error: a plain error is a retryable failure, one
// wrapped by NonRetryable fails the job for good, one wrapped by RetryAfter asks for a later retry.
//
// ctx is cancelled when the job is cancelled, times out, loses its lease or the worker closes;
// Job.StopReason says which. The outcome is reported as soon as that happens, but the handler's
// slot stays taken until it returns, so a handler should return promptly once ctx is done.
type Handler func(ctx context.Context, job *Job) (interface{}, error)

// Job is one attempt of a job, as a handler sees it.
type Job struct {
	ID          string
	Queue       string
	Payload     json.RawMessage // the payload as JSON text
	Attempt     int32           // this attempt's number, from 1
	MaxAttempts int32
	Priority    int32
	Labels      map[string]string
	Traceparent string
	CreatedAt   time.Time
	Timeout     time.Duration // zero: no limit; the worker enforces it
	WorkerID    string

	reason   string
	progress func(value interface{}) error
}

// Decode unmarshals the payload into v.
func (j *Job) Decode(v interface{}) error { return json.Unmarshal(j.Payload, v) }

// Progress reports progress (any JSON value); the latest value goes out with the next message.
func (j *Job) Progress(value interface{}) error { return j.progress(value) }

// StopReason is "cancelled", "timeout", "lease lost" or "worker closing" once the handler's context
// was cancelled by the worker, and empty before.
func (j *Job) StopReason() string { return j.reason }

type nonRetryable struct{ err error }

func (e *nonRetryable) Error() string { return e.err.Error() }
func (e *nonRetryable) Unwrap() error { return e.err }

// NonRetryable marks err as a failure that retrying cannot fix: the job becomes FAILED at once.
func NonRetryable(err error) error { return &nonRetryable{err} }

type retryAfter struct {
	err   error
	after time.Duration
}

func (e *retryAfter) Error() string { return e.err.Error() }
func (e *retryAfter) Unwrap() error { return e.err }

// RetryAfter fails this attempt and asks the broker to wait at least d before the next one.
func RetryAfter(err error, d time.Duration) error { return &retryAfter{err, d} }

func successResult(value interface{}) *batonv1.JobResult {
	if value == nil {
		return &batonv1.JobResult{}
	}
	if raw, ok := value.(json.RawMessage); ok && !json.Valid(raw) {
		return failureResult(NonRetryable(errors.New("the handler's result is not valid JSON")))
	}
	data, err := json.Marshal(value)
	if err != nil {
		return failureResult(NonRetryable(errors.New("the handler's result cannot be encoded as JSON: " + err.Error())))
	}
	return &batonv1.JobResult{ResultJson: data}
}

func failureResult(err error) *batonv1.JobResult {
	message := err.Error()
	if len(message) > 4000 {
		message = message[:4000]
	}
	if message == "" {
		message = "failed (no message given)"
	}
	failure := &batonv1.JobFailure{Message: message}
	var nr *nonRetryable
	failure.NonRetryable = errors.As(err, &nr)
	var ra *retryAfter
	if errors.As(err, &ra) && ra.after > 0 {
		failure.RetryAfter = durationProto(ra.after)
	}
	return &batonv1.JobResult{Failure: failure}
}
