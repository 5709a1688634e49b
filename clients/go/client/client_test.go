package client

// The Client's translation to and from the wire, against a fake BrokerClient.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// fakeBroker answers the unary calls from its fields and Watch from a list of streams; it records
// the requests. Methods it does not override panic (the embedded interface is nil).
type fakeBroker struct {
	batonv1.BrokerClient
	requests []any
	enqueue  *batonv1.EnqueueResponse
	batch    *batonv1.EnqueueBatchResponse
	get      *batonv1.GetResponse
	list     *batonv1.ListResponse
	err      error
	watches  []*fakeWatch
}

func (b *fakeBroker) Enqueue(ctx context.Context, r *batonv1.EnqueueRequest, _ ...grpc.CallOption) (*batonv1.EnqueueResponse, error) {
	b.requests = append(b.requests, r)
	return b.enqueue, b.err
}

func (b *fakeBroker) EnqueueBatch(ctx context.Context, r *batonv1.EnqueueBatchRequest, _ ...grpc.CallOption) (*batonv1.EnqueueBatchResponse, error) {
	b.requests = append(b.requests, r)
	return b.batch, b.err
}

func (b *fakeBroker) Get(ctx context.Context, r *batonv1.GetRequest, _ ...grpc.CallOption) (*batonv1.GetResponse, error) {
	b.requests = append(b.requests, r)
	return b.get, b.err
}

func (b *fakeBroker) List(ctx context.Context, r *batonv1.ListRequest, _ ...grpc.CallOption) (*batonv1.ListResponse, error) {
	b.requests = append(b.requests, r)
	return b.list, b.err
}

func (b *fakeBroker) Watch(ctx context.Context, r *batonv1.WatchRequest, _ ...grpc.CallOption) (batonv1.Broker_WatchClient, error) {
	b.requests = append(b.requests, r)
	w := b.watches[0]
	b.watches = b.watches[1:]
	return w, nil
}

// fakeWatch yields its jobs, then err (io.EOF when nil).
type fakeWatch struct {
	grpc.ClientStream
	jobs []*batonv1.Job
	err  error
}

func (w *fakeWatch) Recv() (*batonv1.WatchResponse, error) {
	if len(w.jobs) == 0 {
		if w.err != nil {
			return nil, w.err
		}
		return nil, io.EOF
	}
	j := w.jobs[0]
	w.jobs = w.jobs[1:]
	return &batonv1.WatchResponse{Job: j}, nil
}

func job(s batonv1.JobStatus) *batonv1.Job {
	return &batonv1.Job{Id: "42", Queue: "q", Status: s, PayloadJson: []byte(`{"n": 1}`)}
}

// newClient talks to b and does not wait between the watches of Result.
func newClient(b *fakeBroker) *Client {
	return &Client{broker: b, pause: func(int) time.Duration { return 0 }}
}

func TestEnqueueSendsJSONTextAndEveryOption(t *testing.T) {
	b := &fakeBroker{enqueue: &batonv1.EnqueueResponse{Job: job(batonv1.JobStatus_JOB_STATUS_PENDING), Duplicate: true}}
	runAt := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	got, err := newClient(b).Enqueue(context.Background(), "q", json.RawMessage(`{"n": 18446744073709551616}`), &EnqueueOptions{
		Priority: 5, RunAt: runAt, MaxAttempts: 3, RetryPolicy: &RetryPolicy{InitialBackoff: 500 * time.Millisecond},
		Timeout: 1250 * time.Millisecond, IdempotencyKey: "k", Labels: map[string]string{"a": "b"}, Traceparent: "00-x-y-01",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := b.requests[0].(*batonv1.EnqueueRequest)
	if string(r.PayloadJson) != `{"n":18446744073709551616}` || r.Priority != 5 || r.MaxAttempts != 3 || r.IdempotencyKey != "k" ||
		!r.RunAt.AsTime().Equal(runAt) || r.Delay != nil || r.Timeout.AsDuration() != 1250*time.Millisecond ||
		r.Labels["a"] != "b" || r.Traceparent != "00-x-y-01" {
		t.Fatalf("request %v", r)
	}
	p := r.RetryPolicy
	if p.InitialBackoff.AsDuration() != 500*time.Millisecond || p.MaxBackoff.AsDuration() != 10*time.Minute ||
		p.GetMultiplier() != 2 || p.GetJitter() != 0.2 {
		t.Fatalf("retry policy %v: the defaults must be filled in", p)
	}
	if !got.Duplicate || got.Status != StatusPending || string(got.Payload) != `{"n": 1}` {
		t.Fatalf("job %+v", got)
	}
}

func TestEnqueueSendsTheSchedulingOptions(t *testing.T) {
	b := &fakeBroker{enqueue: &batonv1.EnqueueResponse{Job: job(batonv1.JobStatus_JOB_STATUS_PENDING)}}
	c := newClient(b)
	_, err := c.Enqueue(context.Background(), "q", 1, &EnqueueOptions{
		Unique:       &UniqueOptions{Key: "user:42", Window: 90 * time.Second, States: []Status{StatusPending, StatusRunning}},
		RateLimitKey: "customer-7", ConcurrencyKey: "tenant-a",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := b.requests[0].(*batonv1.EnqueueRequest)
	want := []batonv1.JobStatus{batonv1.JobStatus_JOB_STATUS_PENDING, batonv1.JobStatus_JOB_STATUS_RUNNING}
	if r.Unique.GetKey() != "user:42" || r.Unique.GetWindow().AsDuration() != 90*time.Second || !reflect.DeepEqual(r.Unique.GetStates(), want) ||
		r.RateLimitKey != "customer-7" || r.ConcurrencyKey != "tenant-a" || r.IdempotencyKey != "" {
		t.Fatalf("request %v", r)
	}
	if _, err := c.Enqueue(context.Background(), "q", 1, &EnqueueOptions{Unique: &UniqueOptions{Key: "k"}, IdempotencyKey: "k"}); err == nil {
		t.Fatal("Unique with IdempotencyKey must fail")
	}
}

func TestEnqueueRefusesRunAtWithDelayAndUnencodablePayloads(t *testing.T) {
	c := newClient(&fakeBroker{})
	if _, err := c.Enqueue(context.Background(), "q", 1, &EnqueueOptions{RunAt: time.Now(), Delay: time.Second}); err == nil {
		t.Fatal("RunAt with Delay must fail")
	}
	if _, err := c.Enqueue(context.Background(), "q", func() {}, nil); err == nil {
		t.Fatal("a payload JSON cannot encode must fail")
	}
}

func TestEnqueueBatchKeepsTheOrder(t *testing.T) {
	b := &fakeBroker{batch: &batonv1.EnqueueBatchResponse{Jobs: []*batonv1.EnqueueResponse{
		{Job: &batonv1.Job{Id: "1", Status: batonv1.JobStatus_JOB_STATUS_PENDING}},
		{Job: &batonv1.Job{Id: "2", Status: batonv1.JobStatus_JOB_STATUS_SCHEDULED}},
	}}}
	got, err := newClient(b).EnqueueBatch(context.Background(), []EnqueueItem{
		{Queue: "q", Payload: 1}, {Queue: "q", Payload: nil, EnqueueOptions: EnqueueOptions{Delay: 2 * time.Second}},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	r := b.requests[0].(*batonv1.EnqueueBatchRequest)
	if !r.IdsOnly || string(r.Jobs[0].PayloadJson) != "1" || string(r.Jobs[1].PayloadJson) != "null" ||
		r.Jobs[1].Delay.AsDuration() != 2*time.Second {
		t.Fatalf("request %v", r)
	}
	if got[0].ID != "1" || got[1].Status != StatusScheduled || got[0].Payload != nil {
		t.Fatalf("jobs %+v %+v", got[0], got[1])
	}
}

func TestGetReadsEveryField(t *testing.T) {
	m := job(batonv1.JobStatus_JOB_STATUS_FAILED)
	m.Attempt, m.MaxAttempts, m.WorkerId = 2, 2, "w1"
	m.Timeout = durationpb.New(1500 * time.Millisecond)
	m.CreatedAt = timestamppb.New(time.Unix(1_700_000_000, 0))
	m.Errors = []*batonv1.AttemptError{{Attempt: 1, Message: "boom", WorkerId: "w1"}}
	m.ProgressJson = []byte(`{"p": 12345678901234567890}`)
	got, err := newClient(&fakeBroker{get: &batonv1.GetResponse{Job: m}}).Get(context.Background(), "42")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusFailed || !got.Status.Terminal() || got.Result != nil || got.Timeout != 1500*time.Millisecond ||
		!got.CreatedAt.Equal(time.Unix(1_700_000_000, 0)) || got.StartedAt != nil || got.RunAt != nil ||
		string(got.Progress) != `{"p": 12345678901234567890}` || got.Errors[0].Message != "boom" || got.Errors[0].At != nil {
		t.Fatalf("job %+v", got)
	}
}

func TestErrorsAreGRPCStatuses(t *testing.T) {
	_, err := newClient(&fakeBroker{err: status.Error(codes.NotFound, "job 9 not found")}).Get(context.Background(), "9")
	if status.Code(err) != codes.NotFound {
		t.Fatalf("err %v", err)
	}
}

func TestListFiltersByStatus(t *testing.T) {
	b := &fakeBroker{list: &batonv1.ListResponse{Jobs: []*batonv1.Job{job(batonv1.JobStatus_JOB_STATUS_COMPLETED)}}}
	page, err := newClient(b).List(context.Background(), ListOptions{Queue: "q", Statuses: []Status{StatusFailed, StatusCancelled}, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	r := b.requests[0].(*batonv1.ListRequest)
	want := []batonv1.JobStatus{batonv1.JobStatus_JOB_STATUS_FAILED, batonv1.JobStatus_JOB_STATUS_CANCELLED}
	if !reflect.DeepEqual(r.Statuses, want) || r.Queue != "q" || r.PageSize != 10 || len(page.Jobs) != 1 || page.NextPageToken != "" {
		t.Fatalf("request %v, page %+v", r, page)
	}
	if _, err := newClient(b).List(context.Background(), ListOptions{Statuses: []Status{StatusUnknown}}); err == nil {
		t.Fatal("an unknown status must fail")
	}
}

func TestWatchEndsAfterTheTerminalState(t *testing.T) {
	b := &fakeBroker{watches: []*fakeWatch{{jobs: []*batonv1.Job{
		job(batonv1.JobStatus_JOB_STATUS_RUNNING), job(batonv1.JobStatus_JOB_STATUS_COMPLETED), job(batonv1.JobStatus_JOB_STATUS_PENDING),
	}}}}
	var seen []Status
	err := newClient(b).Watch(context.Background(), "42", func(j *Job) error { seen = append(seen, j.Status); return nil })
	if err != nil || !reflect.DeepEqual(seen, []Status{StatusRunning, StatusCompleted}) {
		t.Fatalf("err %v, seen %v", err, seen)
	}
}

func TestWatchStopsOnErrStopAndPassesOtherErrors(t *testing.T) {
	running := func() *fakeWatch { return &fakeWatch{jobs: []*batonv1.Job{job(batonv1.JobStatus_JOB_STATUS_RUNNING)}} }
	b := &fakeBroker{watches: []*fakeWatch{running(), running()}}
	c := newClient(b)
	if err := c.Watch(context.Background(), "42", func(*Job) error { return ErrStop }); err != nil {
		t.Fatalf("ErrStop: %v", err)
	}
	mine := errors.New("mine")
	if err := c.Watch(context.Background(), "42", func(*Job) error { return mine }); err != mine {
		t.Fatalf("want the callback's error, got %v", err)
	}
}

func TestResultSurvivesUnavailable(t *testing.T) {
	done := job(batonv1.JobStatus_JOB_STATUS_COMPLETED)
	done.ResultJson = []byte(`{"value": 7}`)
	b := &fakeBroker{watches: []*fakeWatch{
		{jobs: []*batonv1.Job{job(batonv1.JobStatus_JOB_STATUS_RUNNING)}, err: status.Error(codes.Unavailable, "restart")},
		{jobs: []*batonv1.Job{done}},
	}}
	got, err := newClient(b).Result(context.Background(), "42")
	if err != nil || string(got) != `{"value": 7}` {
		t.Fatalf("result %s, err %v", got, err)
	}
}

func TestResultReportsFailedAndCancelledJobs(t *testing.T) {
	failed := job(batonv1.JobStatus_JOB_STATUS_FAILED)
	failed.Errors = []*batonv1.AttemptError{{Attempt: 1, Message: "boom"}}
	b := &fakeBroker{watches: []*fakeWatch{
		{jobs: []*batonv1.Job{failed}},
		{jobs: []*batonv1.Job{job(batonv1.JobStatus_JOB_STATUS_CANCELLED)}},
		{err: status.Error(codes.PermissionDenied, "no")},
	}}
	c := newClient(b)
	var f *JobFailedError
	if _, err := c.Result(context.Background(), "42"); !errors.As(err, &f) || err.Error() != "job 42 failed: boom" {
		t.Fatalf("err %v", err)
	}
	var cancelled *JobCancelledError
	if _, err := c.Result(context.Background(), "42"); !errors.As(err, &cancelled) {
		t.Fatalf("err %v", err)
	}
	if _, err := c.Result(context.Background(), "42"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("err %v", err)
	}
}
