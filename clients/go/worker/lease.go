package worker

// The receiving side: one Lease stream from Hello to its end, the broker's messages, and the jobs
// they assign, with the state changes those cause. clock.go sends what is owed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/metadata"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// session is one Lease stream and what is owed on it.
type session struct {
	stream   batonv1.Broker_LeaseClient
	cancel   context.CancelFunc
	welcomed bool
	draining bool
	ending   bool // we half-closed and wait for the broker to end the stream
	ended    bool
	credit   int // granted and not yet used by assignments
	results  []*batonv1.JobResult
	progress map[string]*batonv1.JobProgress
	unacked  map[string]bool
	// heartbeats
	every         time.Duration
	nextHeartbeat time.Time
	drainBackstop time.Time
	// the sender goroutine's queue: messages, then possibly a half-close
	outq     []*batonv1.LeaseRequest
	outClose bool
	outWake  chan struct{}
}

// held is a job this process holds: from assignment until its handler returned and its result went
// out (or was dropped).
type held struct {
	token    string
	job      *Job
	session  *session
	cancel   context.CancelFunc
	deadline time.Time
	phase    string // running -> queued -> sent; or dropped
	settled  bool
}

// lease runs one Lease stream from Hello to its end.
func (w *Worker) lease(client batonv1.BrokerClient) (welcomed, drained bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if w.opts.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+w.opts.Token)
	}
	stream, err := client.Lease(ctx)
	if err != nil {
		return false, false, describe(err)
	}
	hello := &batonv1.LeaseRequest{Hello: &batonv1.Hello{
		WorkerId: w.opts.WorkerID, Queues: w.queues, Capacity: int32(w.opts.Concurrency),
		ProtocolVersion: ProtocolVersion, Sdk: SDKName,
	}}
	if err := stream.Send(hello); err != nil && err != io.EOF {
		return false, false, describe(err)
	}
	s := &session{stream: stream, cancel: cancel, progress: map[string]*batonv1.JobProgress{}, unacked: map[string]bool{},
		nextHeartbeat: time.Now().Add(never / 2), drainBackstop: time.Now().Add(never / 2), outWake: make(chan struct{}, 1)}
	w.mu.Lock()
	w.session = s
	w.mu.Unlock()
	go w.sender(s)
	for {
		res, rerr := stream.Recv()
		if rerr != nil {
			if rerr != io.EOF {
				err = describe(rerr)
			}
			break
		}
		w.mu.Lock()
		w.onResponse(s, res)
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.endSession(s)
	welcomed, drained = s.welcomed, s.draining
	w.mu.Unlock()
	return welcomed, drained, err
}

// onResponse handles one broker message; w.mu is held.
func (w *Worker) onResponse(s *session, res *batonv1.LeaseResponse) {
	if s.ended {
		return
	}
	if wl := res.Welcome; wl != nil && !s.welcomed {
		s.welcomed = true
		s.every = defaultHeartbeat
		if d := wl.HeartbeatInterval.AsDuration(); wl.HeartbeatInterval != nil && d > 0 {
			s.every = maxDuration(d, 50*time.Millisecond)
		}
		s.nextHeartbeat = time.Now().Add(s.every)
		if wl.ProtocolVersion != ProtocolVersion {
			w.logger.Printf("broker speaks Lease protocol %d, this library %d", wl.ProtocolVersion, ProtocolVersion)
		}
		w.logger.Printf("connected to broker %s (session %s)", wl.BrokerId, wl.SessionId)
	}
	for _, ack := range res.Acks {
		delete(s.unacked, ack.LeaseToken)
		if !ack.Accepted {
			w.logger.Printf("result of job %s refused: %s", ack.JobId, ack.Error)
		}
	}
	for _, token := range res.Lost {
		h := w.held[token]
		if h == nil || h.session != s || (h.phase != "running" && h.phase != "queued") {
			continue
		}
		if h.phase == "queued" {
			kept := s.results[:0]
			for _, r := range s.results {
				if r.LeaseToken != token {
					kept = append(kept, r)
				}
			}
			s.results = kept
		}
		w.logger.Printf("lease of job %s lost; its result will be dropped", h.job.ID)
		w.drop(h, "lease lost")
	}
	for _, notice := range res.Cancels {
		h := w.held[notice.LeaseToken]
		if h == nil || h.session != s || h.phase != "running" {
			continue
		}
		if notice.Reason == "timeout" {
			w.timeOut(h)
		} else {
			w.stopJob(h, "cancelled")
			w.report(h, failureResult(NonRetryable(errors.New("cancelled"))))
		}
	}
	if n := len(res.Jobs); n > 0 {
		if n > s.credit {
			w.logger.Printf("broker sent %d job(s) with only %d credit(s) outstanding", n, s.credit)
		}
		s.credit = maxInt(0, s.credit-n)
		for _, a := range res.Jobs {
			w.start(s, a)
		}
	}
	if res.Drain != nil && !s.draining {
		s.draining = true
		wait := defaultDrain
		if d := res.Drain.Deadline.AsDuration(); res.Drain.Deadline != nil && d > 0 {
			wait = d
		}
		s.drainBackstop = time.Now().Add(wait + time.Second)
		w.logger.Printf("broker is draining; finishing %d job(s) within %s, then reconnecting", len(w.tokens(s)), wait)
	}
	w.maybeHalfClose(s)
	w.wake()
}

func (w *Worker) start(s *session, a *batonv1.JobAssignment) {
	if _, dup := w.held[a.LeaseToken]; dup {
		w.logger.Printf("job %s assigned twice with the same lease token; ignored", a.JobId)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	job := &Job{ID: a.JobId, Queue: a.Queue, Payload: json.RawMessage(a.PayloadJson), Attempt: a.Attempt,
		MaxAttempts: a.MaxAttempts, Priority: a.Priority, Labels: a.Labels, Traceparent: a.Traceparent,
		WorkerID: w.opts.WorkerID}
	if len(job.Payload) == 0 {
		job.Payload = json.RawMessage("null")
	}
	if a.CreatedAt != nil {
		job.CreatedAt = a.CreatedAt.AsTime()
	}
	if a.Timeout != nil {
		job.Timeout = a.Timeout.AsDuration()
	}
	h := &held{token: a.LeaseToken, job: job, session: s, cancel: cancel, phase: "running", deadline: time.Now().Add(never / 2)}
	job.progress = func(value interface{}) error { return w.recordProgress(h, value) }
	w.held[h.token] = h
	handler := w.opts.Handlers[a.Queue]
	switch {
	case handler == nil: // retryable: another worker may serve the queue
		h.settled = true
		w.report(h, failureResult(fmt.Errorf("no handler for queue %q on worker %s", a.Queue, w.opts.WorkerID)))
	case !json.Valid(job.Payload):
		h.settled = true
		w.report(h, failureResult(NonRetryable(errors.New("payload is not valid JSON"))))
	default:
		if job.Timeout > 0 {
			h.deadline = time.Now().Add(job.Timeout)
		}
		go w.runHandler(ctx, h, handler)
	}
}

func (w *Worker) runHandler(ctx context.Context, h *held, handler Handler) {
	var result *batonv1.JobResult
	func() {
		defer func() {
			if p := recover(); p != nil {
				result = failureResult(fmt.Errorf("handler panicked: %v", p))
			}
		}()
		value, err := handler(ctx, h.job)
		if err != nil {
			result = failureResult(err)
		} else {
			result = successResult(value)
		}
	}()
	w.mu.Lock()
	defer w.mu.Unlock()
	h.settled = true
	h.cancel()
	switch h.phase {
	case "running":
		w.report(h, result)
	case "sent", "dropped":
		delete(w.held, h.token) // its slot is free again: the next flush grants a credit
	}
	w.wake()
}

// The state changes below run with w.mu held.

func (w *Worker) report(h *held, r *batonv1.JobResult) {
	h.phase = "queued"
	h.deadline = time.Now().Add(never / 2)
	r.JobId, r.LeaseToken = h.job.ID, h.token
	delete(h.session.progress, h.token)
	h.session.results = append(h.session.results, r)
	w.wake()
}

func (w *Worker) stopJob(h *held, reason string) {
	if h.job.reason == "" {
		h.job.reason = reason
	}
	h.cancel()
}

func (w *Worker) timeOut(h *held) {
	if h.phase != "running" {
		return
	}
	w.stopJob(h, "timeout")
	w.report(h, failureResult(fmt.Errorf("timed out after %d ms", h.job.Timeout.Milliseconds())))
}

func (w *Worker) drop(h *held, reason string) {
	h.phase = "dropped"
	delete(h.session.progress, h.token)
	if h.settled {
		delete(w.held, h.token)
	} else {
		w.stopJob(h, reason)
	}
	w.wake()
}

func (w *Worker) recordProgress(h *held, value interface{}) error {
	data, err := json.Marshal(value)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if h.phase == "running" {
		h.session.progress[h.token] = &batonv1.JobProgress{JobId: h.job.ID, LeaseToken: h.token, ProgressJson: data}
		w.wake()
	}
	return nil
}

// endSession: the stream is over and the broker released its leases; drop what was not reported.
func (w *Worker) endSession(s *session) {
	if s.ended {
		return
	}
	s.ended = true
	dropped := 0
	for _, h := range w.held {
		if h.session == s && (h.phase == "running" || h.phase == "queued") {
			dropped++
			w.drop(h, "lease lost: the stream to the broker closed")
		}
	}
	if dropped > 0 && !w.closing {
		w.logger.Printf("%d job(s) abandoned with the lease stream; the broker will deliver them again", dropped)
	}
	s.results, s.progress, s.unacked = nil, map[string]*batonv1.JobProgress{}, map[string]bool{}
	signal(s.outWake) // lets the sender goroutine exit
	if w.session == s {
		w.session = nil
	}
}

func (w *Worker) tokens(s *session) []string {
	var tokens []string
	for _, h := range w.held {
		if h.session == s && h.phase == "running" {
			tokens = append(tokens, h.token)
		}
	}
	return tokens
}

// maybeHalfClose: while draining, end the stream once every job of it is reported and acknowledged.
func (w *Worker) maybeHalfClose(s *session) {
	if !s.draining || s.ending || s.ended || len(s.unacked) > 0 || len(s.results) > 0 {
		return
	}
	for _, h := range w.held {
		if h.session == s && h.phase == "running" {
			return
		}
	}
	s.halfClose()
}
