package worker

// The Lease protocol engine (docs/protocol.md): the jobs this process holds, the current stream and
// what is owed on it. It does no I/O and reads no clock of its own, so that tests drive it step by
// step: openStream starts a stream (its outbox holds the Hello), receive handles a broker message,
// endStream says the stream is over, tick (timers.go) fires what is due and sends what is owed,
// close starts a graceful close. Handlers run through spawn (a goroutine in production) and time is
// now(). Worker (worker.go) adds the gRPC stream, the sender goroutine (send.go), the clock goroutine
// and reconnecting.

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// ProtocolVersion is the Lease protocol version this library speaks.
const ProtocolVersion = 1

// SDKName is sent in Hello.
const SDKName = "baton-go/0.2.0"

const (
	// Used when the broker's Welcome names no heartbeat interval / its Drain no deadline.
	defaultHeartbeat = 10 * time.Second
	defaultDrain     = 30 * time.Second
	// The shortest heartbeat interval honoured.
	minHeartbeat = 50 * time.Millisecond
)

// phase is where a held job is, from its assignment to its end in this process.
type phase int

const (
	// phaseRunning: the handler runs and nothing is reported yet.
	phaseRunning phase = iota
	// phaseQueued: the outcome is decided and waits for the next message.
	phaseQueued
	// phaseSent: the result went out on its stream.
	phaseSent
	// phaseDropped: the lease is gone (lost, or its stream ended); nothing will be sent for it.
	phaseDropped
)

func (p phase) String() string {
	return [...]string{"running", "queued", "sent", "dropped"}[p]
}

// held is a job this process holds: from its assignment until its handler returned and its result
// went out (or was dropped). It counts against the capacity all that time, across streams. At most
// concurrency handlers run at once; a job prefetched beyond them waits in engine.waiting, already
// leased: its heartbeats and its timeout run from delivery, as the broker counts them.
type held struct {
	token    string
	job      *Job
	stream   *leaseStream
	ctx      context.Context    // the handler's context
	cancel   context.CancelFunc // cancels the handler's context
	deadline time.Time          // zero: no timeout
	phase    phase
	settled  bool          // the handler returned (or never ran)
	begun    bool          // its handler was started (or found missing), or it left the line unstarted
	inLine   *list.Element // its place in engine.waiting while it waits for a free handler
}

// leaseStream is one Lease stream (a session) and what is owed on it.
type leaseStream struct {
	cancel   func() // cancels the call
	welcomed bool
	draining bool
	ending   bool // we half-closed and wait for the broker to end the stream
	ended    bool
	credit   int // granted and not yet used by assignments
	results  []*batonv1.JobResult
	progress map[string]*batonv1.JobProgress
	unacked  map[string]bool // lease tokens of results sent and not yet acknowledged
	every    time.Duration   // heartbeat interval
	// nextHeartbeat is zero until Welcome; drainBackstop is zero unless draining.
	nextHeartbeat time.Time
	drainBackstop time.Time
	// The outbox the sender goroutine writes (send.go): messages, then possibly a half-close.
	outbox    []*batonv1.LeaseRequest
	closeSend bool
	wake      chan struct{}
}

// engine holds the protocol state, all guarded by mu.
type engine struct {
	handlers    map[string]Handler
	queues      []string
	concurrency int // the most handlers run at once
	capacity    int // the most jobs held (concurrency + prefetch): Hello.capacity, and what credits keep to
	workerID    string
	logger      *log.Logger
	now         func() time.Time
	spawn       func(func())
	kick        chan struct{} // wakes the clock goroutine: something changed

	mu            sync.Mutex
	held          map[string]*held
	waiting       list.List // of *held: prefetched jobs not begun yet, oldest first
	executing     int       // handlers begun and not returned
	stream        *leaseStream
	closePhase    closePhase
	closeDeadline time.Time
	halfClosedAt  time.Time
}

func newEngine(handlers map[string]Handler, concurrency, prefetch int, workerID string, logger *log.Logger, now func() time.Time, spawn func(func())) *engine {
	e := &engine{handlers: handlers, concurrency: concurrency, capacity: concurrency + prefetch, workerID: workerID,
		logger: logger, now: now, spawn: spawn, kick: make(chan struct{}, 1), held: map[string]*held{}}
	for q := range handlers {
		e.queues = append(e.queues, q)
	}
	return e
}

// wake asks the clock goroutine to tick; callers may hold e.mu.
func (e *engine) wake() { signal(e.kick) }

// openStream starts a stream with its Hello queued; from now on the engine sends on it.
func (e *engine) openStream(cancel func()) *leaseStream {
	s := &leaseStream{cancel: cancel, progress: map[string]*batonv1.JobProgress{}, unacked: map[string]bool{},
		wake: make(chan struct{}, 1)}
	s.send(&batonv1.LeaseRequest{Hello: &batonv1.Hello{
		WorkerId: e.workerID, Queues: e.queues, Capacity: int32(e.capacity),
		ProtocolVersion: ProtocolVersion, Sdk: SDKName,
	}})
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stream = s
	return s
}

// receive handles one broker message, in the order section 19 gives.
func (e *engine) receive(s *leaseStream, res *batonv1.LeaseResponse) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.ended {
		return
	}
	if wl := res.Welcome; wl != nil && !s.welcomed {
		s.welcomed = true
		s.every = defaultHeartbeat
		if d := wl.HeartbeatInterval.AsDuration(); wl.HeartbeatInterval != nil && d > 0 {
			s.every = maxDuration(d, minHeartbeat)
		}
		s.nextHeartbeat = e.now().Add(s.every)
		if wl.ProtocolVersion != ProtocolVersion {
			e.logger.Printf("broker speaks Lease protocol %d, this library %d", wl.ProtocolVersion, ProtocolVersion)
		}
		e.logger.Printf("connected to broker %s (session %s)", wl.BrokerId, wl.SessionId)
	}
	for _, ack := range res.Acks {
		delete(s.unacked, ack.LeaseToken)
		if !ack.Accepted {
			e.logger.Printf("result of job %s refused: %s", ack.JobId, ack.Error)
		}
	}
	for _, token := range res.Lost {
		if h := e.held[token]; h != nil && h.stream == s && (h.phase == phaseRunning || h.phase == phaseQueued) {
			e.logger.Printf("lease of job %s lost; its result will be dropped", h.job.ID)
			e.drop(h)
		}
	}
	for _, notice := range res.Cancels {
		h := e.held[notice.LeaseToken]
		if h == nil || h.stream != s || h.phase != phaseRunning {
			continue // not ours, or already reported
		}
		if notice.Reason == "timeout" {
			e.timeOut(h)
		} else {
			e.unqueue(h)
			e.stopJob(h, StopCancelled)
			e.report(h, failureResult(NonRetryable(errors.New("cancelled"))))
		}
	}
	if n := len(res.Jobs); n > 0 {
		if n > s.credit {
			e.logger.Printf("broker sent %d job(s) with only %d credit(s) outstanding", n, s.credit)
		}
		s.credit = maxInt(0, s.credit-n)
		for _, a := range res.Jobs {
			e.start(s, a)
		}
		// Jobs that came on credit granted before a close or a drain are not started ahead of time.
		if e.closePhase != closeOpen || s.draining {
			e.returnWaiting(s)
		}
	}
	if res.Drain != nil && !s.draining {
		s.draining = true
		e.returnWaiting(s)
		wait := defaultDrain
		if d := res.Drain.Deadline.AsDuration(); res.Drain.Deadline != nil && d > 0 {
			wait = d
		}
		s.drainBackstop = e.now().Add(wait + drainGrace)
		e.logger.Printf("broker is draining; finishing %d job(s) within %s, then reconnecting", len(e.tokens(s)), wait)
	}
	e.maybeHalfClose(s)
	e.wake()
}

func (e *engine) start(s *leaseStream, a *batonv1.JobAssignment) {
	if _, dup := e.held[a.LeaseToken]; dup {
		e.logger.Printf("job %s assigned twice with the same lease token; ignored", a.JobId)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	job := &Job{ID: a.JobId, Queue: a.Queue, Payload: json.RawMessage(a.PayloadJson), Attempt: a.Attempt,
		MaxAttempts: a.MaxAttempts, Priority: a.Priority, Labels: a.Labels, Traceparent: a.Traceparent,
		WorkerID: e.workerID}
	if len(job.Payload) == 0 {
		job.Payload = json.RawMessage("null")
	}
	if a.CreatedAt != nil {
		job.CreatedAt = a.CreatedAt.AsTime()
	}
	if a.Timeout != nil {
		job.Timeout = a.Timeout.AsDuration()
	}
	h := &held{token: a.LeaseToken, job: job, stream: s, ctx: ctx, cancel: cancel, phase: phaseRunning}
	job.progress = func(value any) error { return e.recordProgress(h, value) }
	e.held[h.token] = h
	// Armed at delivery, prefetched or not: the broker's deadline for the attempt runs from its claim.
	if job.Timeout > 0 {
		h.deadline = e.now().Add(job.Timeout)
	}
	if e.executing < e.concurrency {
		e.begin(h)
	} else {
		h.inLine = e.waiting.PushBack(h)
	}
}

// begin hands a held job to its handler.
func (e *engine) begin(h *held) {
	h.begun = true
	handler := e.handlers[h.job.Queue]
	switch {
	case handler == nil: // retryable: another worker may serve the queue
		h.settled = true
		e.report(h, failureResult(fmt.Errorf("no handler for queue %q on worker %s", h.job.Queue, e.workerID)))
	case !json.Valid(h.job.Payload):
		h.settled = true
		e.report(h, failureResult(NonRetryable(errors.New("payload is not valid JSON"))))
	default:
		e.executing++
		ctx, job := h.ctx, h.job
		e.spawn(func() { e.finish(h, runHandler(ctx, handler, job)) })
	}
}

// beginWaiting begins waiting jobs, oldest first, while handlers are free.
func (e *engine) beginWaiting() {
	for e.executing < e.concurrency && e.waiting.Len() > 0 {
		h := e.waiting.Remove(e.waiting.Front()).(*held)
		h.inLine = nil
		e.begin(h)
	}
}

// unqueue: a waiting job leaves the line without running (cancelled, timed out, lost, handed back),
// settled as it is.
func (e *engine) unqueue(h *held) {
	if h.begun {
		return
	}
	h.begun = true
	h.settled = true
	e.waiting.Remove(h.inLine)
	h.inLine = nil
	h.cancel() // no handler will see its context
}

// returnWaiting hands the stream's waiting jobs back to the broker unstarted, as a snooze of 1 ms
// (the attempt does not count, docs/protocol.md): a closing or draining worker should not start new
// jobs, and they should not wait for its running ones to finish either.
func (e *engine) returnWaiting(s *leaseStream) {
	for el := e.waiting.Front(); el != nil; {
		h := el.Value.(*held)
		el = el.Next()
		if h.stream == s {
			e.unqueue(h)
			e.report(h, snoozeResult(&snooze{time.Millisecond}))
		}
	}
}

// finish records a handler's outcome, unless it was decided before (cancel, timeout, lost).
func (e *engine) finish(h *held, result *batonv1.JobResult) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h.settled = true
	h.cancel()
	e.executing--
	e.beginWaiting()
	switch h.phase {
	case phaseRunning:
		e.report(h, result)
	case phaseSent, phaseDropped:
		delete(e.held, h.token) // its slot is free again: the next tick grants a credit
	}
	e.wake()
}

// The state changes below run with e.mu held.

func (e *engine) report(h *held, r *batonv1.JobResult) {
	h.phase = phaseQueued
	h.deadline = time.Time{}
	r.JobId, r.LeaseToken = h.job.ID, h.token
	delete(h.stream.progress, h.token)
	h.stream.results = append(h.stream.results, r)
	e.wake()
}

func (e *engine) stopJob(h *held, reason StopReason) {
	if h.job.StopReason() == "" {
		h.job.reason.Store(reason)
	}
	h.cancel()
}

func (e *engine) timeOut(h *held) {
	if h.phase != phaseRunning {
		return
	}
	e.unqueue(h)
	e.stopJob(h, StopTimeout)
	e.report(h, failureResult(fmt.Errorf("timed out after %d ms", h.job.Timeout.Milliseconds())))
}

// drop: the lease is gone. The result (queued or not) never goes out; the slot frees when the
// handler has returned.
func (e *engine) drop(h *held) {
	if h.phase == phaseQueued {
		kept := h.stream.results[:0]
		for _, r := range h.stream.results {
			if r.LeaseToken != h.token {
				kept = append(kept, r)
			}
		}
		h.stream.results = kept
	}
	h.phase = phaseDropped
	h.deadline = time.Time{}
	delete(h.stream.progress, h.token)
	e.unqueue(h)
	if h.settled {
		delete(e.held, h.token)
	} else {
		e.stopJob(h, StopLeaseLost)
	}
	e.wake()
}

func (e *engine) recordProgress(h *held, value any) error {
	data, err := json.Marshal(value)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if h.phase == phaseRunning {
		h.stream.progress[h.token] = &batonv1.JobProgress{JobId: h.job.ID, LeaseToken: h.token, ProgressJson: data}
		e.wake()
	}
	return nil
}

// endStream: the stream is over and the broker released its leases; drops what was not reported.
func (e *engine) endStream(s *leaseStream) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	dropped := 0
	for _, h := range e.held {
		if h.stream == s && (h.phase == phaseRunning || h.phase == phaseQueued) {
			dropped++
			e.drop(h)
		}
	}
	if dropped > 0 && e.closePhase == closeOpen {
		e.logger.Printf("%d job(s) abandoned with the lease stream; the broker will deliver them again", dropped)
	}
	s.results, s.progress, s.unacked = nil, map[string]*batonv1.JobProgress{}, map[string]bool{}
	signal(s.wake) // lets the sender goroutine exit
	if e.stream == s {
		e.stream = nil
	}
	e.wake()
}

func (e *engine) tokens(s *leaseStream) []string {
	var tokens []string
	for _, h := range e.held {
		if h.stream == s && h.phase == phaseRunning {
			tokens = append(tokens, h.token)
		}
	}
	return tokens
}

// maybeHalfClose: while draining, ends the stream once every job of it is reported and acknowledged.
func (e *engine) maybeHalfClose(s *leaseStream) {
	if !s.draining || s.ending || s.ended || len(s.unacked) > 0 || len(s.results) > 0 {
		return
	}
	for _, h := range e.held {
		if h.stream == s && h.phase == phaseRunning {
			return
		}
	}
	s.halfClose()
}

// heldCount is the number of jobs held: handlers not returned or results not sent.
func (e *engine) heldCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.held)
}
