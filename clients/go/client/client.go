// Package client is the producer's side of Baton in Go: enqueue jobs, read and steer them, wait for
// their results. One Client holds one gRPC connection, which reconnects by itself.
//
//	c, err := client.New(client.Options{Address: "localhost:7700"})
//	job, err := c.Enqueue(ctx, "fibonacci", map[string]int{"n": 303}, nil)
//	result, err := c.Result(ctx, job.ID)
//
// Failed calls return gRPC status errors: status.Code(err) is codes.NotFound for an unknown job,
// codes.InvalidArgument for bad input, and so on (proto/baton/v1/broker.proto).
package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	batonv1 "baton/clients/go/gen/baton/v1"
	"baton/clients/go/internal/dial"
)

// Options say where the brokers are and how to reach them.
type Options struct {
	// Address is a gRPC target: host:port, dns:///name:port, ...; default $BATON_ADDRESS or localhost:7700.
	Address string
	// Token is sent as "authorization: Bearer <token>" to brokers that require API keys; default $BATON_TOKEN.
	Token string
	// TLS, when set, connects with TLS; default cleartext.
	TLS *tls.Config
	// DialOptions are added to the defaults.
	DialOptions []grpc.DialOption
	// NoCoalesceEnqueues sends one Enqueue RPC per Enqueue call. By default, calls made while two
	// are in flight leave together as one EnqueueBatch, each keeping its own job and error
	// (coalesce.go; README.md, "Calls made together").
	NoCoalesceEnqueues bool
}

// Client talks to the brokers as a producer. It is safe for concurrent use; Close it when done.
type Client struct {
	conn   *grpc.ClientConn
	broker batonv1.BrokerClient
	pause  func(failures int) time.Duration // the wait between watches in Result; nil: retryDelay's
	// coalescer sends Enqueue calls; nil: one Enqueue RPC per call (Options.NoCoalesceEnqueues).
	coalescer *enqueueCoalescer
}

// New returns a Client. It does not wait for the network: the connection is made on the first call.
func New(opts Options) (*Client, error) {
	conn, err := dial.Dial(dial.Options{Address: opts.Address, Token: opts.Token, TLS: opts.TLS, Extra: opts.DialOptions})
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, broker: batonv1.NewBrokerClient(conn)}
	if !opts.NoCoalesceEnqueues {
		c.coalescer = newEnqueueCoalescer(c.broker, defaultCoalesceLimits)
	}
	return c, nil
}

// Close closes the connection; calls in flight fail.
func (c *Client) Close() error { return c.conn.Close() }

// EnqueueOptions are the options of one job; zero fields take the queue's or the broker's default.
type EnqueueOptions struct {
	Priority       int32             // higher runs first, -1000..1000
	RunAt          time.Time         // do not start before; exclusive with Delay
	Delay          time.Duration     // do not start before now + Delay; exclusive with RunAt
	MaxAttempts    int32             // attempts allowed in all, 1..1000
	RetryPolicy    *RetryPolicy      // backoff between attempts
	Timeout        time.Duration     // longest one attempt may run
	IdempotencyKey string            // at most one job with this key exists; a repeat returns the first
	Labels         map[string]string // free-form labels, at most 32
	Traceparent    string            // W3C trace context handed to the worker
	Unique         *UniqueOptions    // a unique key; exclusive with IdempotencyKey
	RateLimitKey   string            // the key its queue's per-key rate limit counts the job under
	ConcurrencyKey string            // the key (e.g. a tenant) a queue with fair keys takes in turn
}

// UniqueOptions make a job unique in its queue by Key (docs/scheduling.md, "Unique jobs"): while
// the job holding Key is in one of States and, when Window > 0, within Window of its enqueue, an
// Enqueue with the same Key returns that job with Duplicate set.
type UniqueOptions struct {
	Key    string
	Window time.Duration // zero: no time limit, the states alone decide
	States []Status      // empty: pending, scheduled and running (free again once the job finished)
}

// EnqueueItem is one job of EnqueueBatch. Payload is any value encoding/json marshals (a
// json.RawMessage goes as is).
type EnqueueItem struct {
	Queue   string
	Payload any
	EnqueueOptions
}

// Enqueue stores one job (durably) and returns it. payload is any value encoding/json marshals (a
// json.RawMessage goes as is); opts may be nil. Calls made while two are in flight are sent together
// (Options.NoCoalesceEnqueues). When ctx ends after the job was sent, Enqueue returns at once, and
// the job may be stored all the same.
func (c *Client) Enqueue(ctx context.Context, queue string, payload any, opts *EnqueueOptions) (*EnqueuedJob, error) {
	item := EnqueueItem{Queue: queue, Payload: payload}
	if opts != nil {
		item.EnqueueOptions = *opts
	}
	req, err := enqueueRequest(item)
	if err != nil {
		return nil, err
	}
	var res *batonv1.EnqueueResponse
	if c.coalescer != nil {
		res, err = c.coalescer.enqueue(ctx, req)
	} else {
		res, err = c.broker.Enqueue(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	return &EnqueuedJob{Job: *jobFromWire(res.Job), Duplicate: res.Duplicate}, nil
}

// EnqueueBatch stores many jobs in one transaction: all of them, or none and an error naming the
// bad one. With idsOnly the broker returns only ids and statuses (far less to send back).
func (c *Client) EnqueueBatch(ctx context.Context, items []EnqueueItem, idsOnly bool) ([]*EnqueuedJob, error) {
	req := &batonv1.EnqueueBatchRequest{IdsOnly: idsOnly}
	for i, item := range items {
		r, err := enqueueRequest(item)
		if err != nil {
			return nil, fmt.Errorf("job %d: %w", i, err)
		}
		req.Jobs = append(req.Jobs, r)
	}
	res, err := c.broker.EnqueueBatch(ctx, req)
	if err != nil {
		return nil, err
	}
	jobs := make([]*EnqueuedJob, 0, len(res.Jobs))
	for _, r := range res.Jobs {
		jobs = append(jobs, &EnqueuedJob{Job: *jobFromWire(r.Job), Duplicate: r.Duplicate})
	}
	return jobs, nil
}

// Get returns one job with its result and every attempt's error (codes.NotFound if unknown).
func (c *Client) Get(ctx context.Context, id string) (*Job, error) {
	res, err := c.broker.Get(ctx, &batonv1.GetRequest{Id: id})
	if err != nil {
		return nil, err
	}
	return jobFromWire(res.Job), nil
}

// ListOptions filter and page List; zero fields mean every queue, every status, 50 jobs.
type ListOptions struct {
	Queue     string
	Statuses  []Status
	PageSize  int32
	PageToken string
}

// List returns jobs newest first, one page at a time.
func (c *Client) List(ctx context.Context, opts ListOptions) (*JobPage, error) {
	req := &batonv1.ListRequest{Queue: opts.Queue, PageSize: opts.PageSize, PageToken: opts.PageToken}
	for _, s := range opts.Statuses {
		wire, err := statusToWire(s)
		if err != nil {
			return nil, err
		}
		req.Statuses = append(req.Statuses, wire)
	}
	res, err := c.broker.List(ctx, req)
	if err != nil {
		return nil, err
	}
	page := &JobPage{NextPageToken: res.NextPageToken}
	for _, j := range res.Jobs {
		page.Jobs = append(page.Jobs, jobFromWire(j))
	}
	return page, nil
}

// Cancel cancels a job: a pending or scheduled one at once; a running one comes back with
// CancelRequested and becomes cancelled when its handler stops.
func (c *Client) Cancel(ctx context.Context, id string) (*Job, error) {
	res, err := c.broker.Cancel(ctx, &batonv1.CancelRequest{Id: id})
	if err != nil {
		return nil, err
	}
	return jobFromWire(res.Job), nil
}

// Retry puts a failed or cancelled job back to pending with a fresh set of attempts.
func (c *Client) Retry(ctx context.Context, id string) (*Job, error) {
	res, err := c.broker.Retry(ctx, &batonv1.RetryRequest{Id: id})
	if err != nil {
		return nil, err
	}
	return jobFromWire(res.Job), nil
}

// ErrStop, returned by a Watch or WatchQueue callback, ends the watch without an error.
var ErrStop = errors.New("client: stop watching")

// Watch calls each with the job's current state, then with each change, and returns nil after the
// terminal one (or once each returns ErrStop); it returns other errors of each or of the stream.
func (c *Client) Watch(ctx context.Context, id string, each func(*Job) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.broker.Watch(ctx, &batonv1.WatchRequest{Id: id})
	if err != nil {
		return err
	}
	for {
		res, err := stream.Recv()
		if err == io.EOF {
			return status.Errorf(codes.Unavailable, "the watch of job %s ended before the job did", id)
		}
		if err != nil {
			return err
		}
		if res.Job == nil {
			continue
		}
		job := jobFromWire(res.Job)
		if err := each(job); err != nil {
			return ignoreStop(err)
		}
		if job.Status.Terminal() {
			return nil
		}
	}
}

// WatchQueue calls each with the changes of a queue's jobs as they happen, until ctx is done
// (ctx.Err()), each returns an error (ErrStop: nil) or the stream breaks.
func (c *Client) WatchQueue(ctx context.Context, queue string, each func(JobChange) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.broker.Watch(ctx, &batonv1.WatchRequest{Queue: queue})
	if err != nil {
		return err
	}
	for {
		res, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if res.Job != nil {
			if err := each(JobChange{ID: res.Job.Id, Queue: res.Job.Queue, Status: statusFromWire(res.Job.Status)}); err != nil {
				return ignoreStop(err)
			}
		}
	}
}

// JobFailedError is what Result returns for a job that ended failed; Job has its errors.
type JobFailedError struct{ Job *Job }

func (e *JobFailedError) Error() string {
	if n := len(e.Job.Errors); n > 0 {
		return fmt.Sprintf("job %s failed: %s", e.Job.ID, e.Job.Errors[n-1].Message)
	}
	return fmt.Sprintf("job %s failed", e.Job.ID)
}

// JobCancelledError is what Result returns for a job that ended cancelled.
type JobCancelledError struct{ Job *Job }

func (e *JobCancelledError) Error() string { return fmt.Sprintf("job %s was cancelled", e.Job.ID) }

// Result waits for the job to finish and returns its result (JSON text; nil for null). It returns a
// *JobFailedError or *JobCancelledError when the job ended otherwise, and ctx.Err() when ctx is done.
// It survives broker restarts: a watch broken by codes.Unavailable is opened again with backoff.
func (c *Client) Result(ctx context.Context, id string) (json.RawMessage, error) {
	for failures := 0; ; failures++ {
		var final *Job
		err := c.Watch(ctx, id, func(job *Job) error {
			failures = 0
			if job.Status.Terminal() {
				final = job
			}
			return nil
		})
		switch {
		case final != nil && final.Status == StatusCompleted:
			return final.Result, nil
		case final != nil && final.Status == StatusFailed:
			return nil, &JobFailedError{final}
		case final != nil:
			return nil, &JobCancelledError{final}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case status.Code(err) != codes.Unavailable:
			return nil, err
		}
		select {
		case <-time.After(c.retryDelay(failures)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// retryDelay is the wait before Result watches again: full jitter, 100 ms doubling to 5 s.
func (c *Client) retryDelay(failures int) time.Duration {
	if c.pause != nil {
		return c.pause(failures)
	}
	limit := 100 * time.Millisecond << uint(minInt(failures, 6))
	if limit > 5*time.Second {
		limit = 5 * time.Second
	}
	return time.Duration(rand.Int63n(int64(limit) + 1))
}

// ServerInfo says what the broker speaks: its version, protocol version and capabilities.
func (c *Client) ServerInfo(ctx context.Context) (*ServerInfo, error) {
	res, err := c.broker.GetServerInfo(ctx, &batonv1.GetServerInfoRequest{})
	if err != nil {
		return nil, err
	}
	return &ServerInfo{Version: res.Version, ProtocolVersion: res.ProtocolVersion, Capabilities: res.Capabilities,
		LeaseTTL: durationOf(res.LeaseTtl), MaxPayloadBytes: res.MaxPayloadBytes}, nil
}

// enqueueRequest builds the wire request; the payload travels as JSON text (docs/encoding.md).
func enqueueRequest(item EnqueueItem) (*batonv1.EnqueueRequest, error) {
	o := item.EnqueueOptions
	if !o.RunAt.IsZero() && o.Delay != 0 {
		return nil, errors.New("client: give RunAt or Delay, not both")
	}
	payload, err := json.Marshal(item.Payload)
	if err != nil {
		return nil, fmt.Errorf("client: the payload cannot be encoded as JSON: %w", err)
	}
	req := &batonv1.EnqueueRequest{Queue: item.Queue, PayloadJson: payload, Priority: o.Priority,
		MaxAttempts: o.MaxAttempts, IdempotencyKey: o.IdempotencyKey, Labels: o.Labels, Traceparent: o.Traceparent,
		RateLimitKey: o.RateLimitKey, ConcurrencyKey: o.ConcurrencyKey}
	if !o.RunAt.IsZero() {
		req.RunAt = timestamppb.New(o.RunAt)
	}
	if o.Delay != 0 {
		req.Delay = durationpb.New(o.Delay)
	}
	if o.Timeout != 0 {
		req.Timeout = durationpb.New(o.Timeout)
	}
	if u := o.Unique; u != nil {
		if o.IdempotencyKey != "" {
			return nil, errors.New("client: give Unique or IdempotencyKey, not both")
		}
		req.Unique = &batonv1.UniqueOptions{Key: u.Key}
		if u.Window != 0 {
			req.Unique.Window = durationpb.New(u.Window)
		}
		for _, s := range u.States {
			wire, err := statusToWire(s)
			if err != nil {
				return nil, err
			}
			req.Unique.States = append(req.Unique.States, wire)
		}
	}
	if p := o.RetryPolicy; p != nil {
		// Every field is sent, defaults filled in: proto3 cannot tell "unset" from 0.
		filled := RetryPolicy{InitialBackoff: time.Second, MaxBackoff: 10 * time.Minute, Multiplier: 2, Jitter: 0.2}
		if p.InitialBackoff > 0 {
			filled.InitialBackoff = p.InitialBackoff
		}
		if p.MaxBackoff > 0 {
			filled.MaxBackoff = p.MaxBackoff
		}
		if p.Multiplier > 0 {
			filled.Multiplier = p.Multiplier
		}
		if p.Jitter > 0 {
			filled.Jitter = p.Jitter
		}
		req.RetryPolicy = &batonv1.RetryPolicy{InitialBackoff: durationpb.New(filled.InitialBackoff),
			MaxBackoff: durationpb.New(filled.MaxBackoff), Multiplier: &filled.Multiplier, Jitter: &filled.Jitter}
	}
	return req, nil
}

func ignoreStop(err error) error {
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}
