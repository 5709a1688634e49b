package worker

// What a handler sees and returns, and how its outcome becomes a JobResult (docs/protocol.md,
// section 7).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// Handler runs one attempt of a job. It returns the result (any value encoding/json can marshal, a
// json.RawMessage, or nil for JSON null) or an error: a plain error is a retryable failure, one
// wrapped by NonRetryable fails the job for good, one wrapped by RetryAfter asks for a later retry,
// and Snooze(d) runs the job again after d without spending an attempt.
// Typed builds a Handler from a function of typed payload and result.
//
// ctx is cancelled when the job is cancelled, times out, loses its lease or the worker closes;
// Job.StopReason says which. The outcome is reported as soon as that happens, but the handler's
// slot stays taken until it returns, so a handler should return promptly once ctx is done.
type Handler func(ctx context.Context, job *Job) (any, error)

// Typed adapts a function of a typed payload P and result R: the payload is decoded into P with
// encoding/json (a payload that does not decode fails the job for good), and R is encoded back.
//
//	worker.Typed(func(ctx context.Context, job *worker.Job, p Resize) (Resized, error) { ... })
func Typed[P, R any](fn func(ctx context.Context, job *Job, payload P) (R, error)) Handler {
	return func(ctx context.Context, job *Job) (any, error) {
		var payload P
		if err := job.Decode(&payload); err != nil {
			return nil, NonRetryable(fmt.Errorf("payload: %w", err))
		}
		return fn(ctx, job, payload)
	}
}

// StopReason says why the worker told a handler to stop.
type StopReason string

const (
	// StopCancelled: a producer called Cancel.
	StopCancelled StopReason = "cancelled"
	// StopTimeout: the job's timeout passed.
	StopTimeout StopReason = "timeout"
	// StopLeaseLost: the broker gave the job up (the stream ended, the session expired); it runs
	// again elsewhere.
	StopLeaseLost StopReason = "lease lost"
	// StopWorkerClosing: the worker is closing and the handler did not finish within CloseTimeout.
	StopWorkerClosing StopReason = "worker closing"
)

// Job is one attempt of a job, as a handler sees it.
type Job struct {
	ID          string
	Queue       string
	Payload     json.RawMessage // the payload as the exact JSON text the broker sent ("null" when empty)
	Attempt     int32           // this attempt's number, from 1
	MaxAttempts int32
	Priority    int32
	Labels      map[string]string
	Traceparent string
	CreatedAt   time.Time
	Timeout     time.Duration // zero: no limit; the worker enforces it
	WorkerID    string

	reason   atomic.Value // StopReason, set before ctx is cancelled
	progress func(value any) error
}

// Decode unmarshals the payload into v.
func (j *Job) Decode(v any) error { return json.Unmarshal(j.Payload, v) }

// Progress reports progress (any JSON value); only the latest value goes out, with the next message.
// It is ignored once the job has been reported.
func (j *Job) Progress(value any) error { return j.progress(value) }

// StopReason says why the handler's context was cancelled by the worker; empty before.
func (j *Job) StopReason() StopReason {
	reason, _ := j.reason.Load().(StopReason)
	return reason
}

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

// maxSnooze is the longest snooze the broker takes (JobSnooze.delay).
const maxSnooze = 365 * 24 * time.Hour

type snooze struct{ after time.Duration }

func (e *snooze) Error() string { return fmt.Sprintf("snoozed for %d ms", e.after.Milliseconds()) }

// Snooze, returned as a handler's error, runs the job again after d without spending an attempt
// (River's JobSnooze): the job goes back to SCHEDULED, job.Attempt stays the same and no error is
// recorded; the broker counts the snoozes in the job's label "baton.snoozes". d is rounded up to a
// whole millisecond and must be more than 0 and at most 365 days; otherwise the attempt fails
// (retryably), as for any other error of the handler.
func Snooze(d time.Duration) error {
	if d <= 0 || d > maxSnooze {
		return fmt.Errorf("worker.Snooze: the delay must be more than 0 and at most 365 days, got %v", d)
	}
	return &snooze{(d + time.Millisecond - 1).Truncate(time.Millisecond)}
}

// snoozeResult sends a snooze with a retryable failure beside it, which only a broker older than
// snooze records (a retry after the same delay, rather than the success it would make of a result
// it cannot read).
func snoozeResult(s *snooze) *batonv1.JobResult {
	return &batonv1.JobResult{
		Failure: &batonv1.JobFailure{Message: s.Error(), RetryAfter: durationProto(s.after)},
		Snooze:  &batonv1.JobSnooze{Delay: durationProto(s.after)},
	}
}

// maxMessage is what the broker keeps of a failure message.
const maxMessage = 4000

func successResult(value any) *batonv1.JobResult {
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
	if len(message) > maxMessage {
		message = message[:maxMessage]
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

// runHandler calls a handler and returns its outcome; a panic is a retryable failure.
func runHandler(ctx context.Context, handler Handler, job *Job) (result *batonv1.JobResult) {
	defer func() {
		if p := recover(); p != nil {
			result = failureResult(fmt.Errorf("handler panicked: %v", p))
		}
	}()
	value, err := handler(ctx, job)
	var s *snooze
	if errors.As(err, &s) {
		return snoozeResult(s)
	}
	if err != nil {
		return failureResult(err)
	}
	return successResult(value)
}
