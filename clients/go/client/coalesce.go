package client

// Concurrent Enqueue calls of one Client, sent together. While fewer than two Enqueue RPCs are in
// flight a call goes out at once as its own Enqueue; calls made while two are in flight wait, and
// when one returns they leave together in one EnqueueBatch (one RPC, one transaction, one commit).
// A program that enqueues from many goroutines at once (a server, one job per request) thus pays
// for a handful of RPCs instead of one each, and a lone call waits for nothing. There is no timer.
// The TypeScript SDK does the same (worker-sdk/src/enqueue-coalescer.ts).
//
// Each call keeps the answer it would have had alone: its own job, its own Duplicate, its own
// error. A batch is all or none, so when the broker refuses one for what a job says (a bad field, a
// size limit, a queue the key may not use), nothing was stored and each job of it is sent again as
// its own Enqueue. Errors that say nothing about the jobs (the broker unreachable, a deadline) go to
// every call of the batch as they are: a batch whose answer was lost may have been stored, and
// sending it again would store it twice.

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	batonv1 "baton/clients/go/gen/baton/v1"
)

type coalesceLimits struct {
	maxInFlight int // RPCs at once; a call waits only while this many are in flight
	maxJobs     int
	maxBytes    int // payload bytes of one batch, near enough (see sizeOf)
}

// defaultCoalesceLimits are far under the broker's batch limit (10,000 jobs by default) and its
// message size limit.
var defaultCoalesceLimits = coalesceLimits{maxInFlight: 2, maxJobs: 1000, maxBytes: 1 << 20}

// aboutTheJobs are the refusals that concern the jobs themselves: nothing of the batch was stored.
var aboutTheJobs = map[codes.Code]bool{
	codes.InvalidArgument:    true,
	codes.ResourceExhausted:  true,
	codes.FailedPrecondition: true,
	codes.PermissionDenied:   true,
	codes.NotFound:           true,
	codes.OutOfRange:         true,
	codes.AlreadyExists:      true,
}

type enqueueCoalescer struct {
	broker batonv1.BrokerClient // only Enqueue and EnqueueBatch are used
	limits coalesceLimits

	mu       sync.Mutex
	waiting  []*waitingEnqueue // in the order the calls were made
	inFlight int               // RPCs sent and not yet answered; a refused batch's resends count as one
}

type waitingEnqueue struct {
	ctx     context.Context
	request *batonv1.EnqueueRequest
	answer  chan enqueueAnswer // buffered: whoever answers never waits for the caller
}

type enqueueAnswer struct {
	response *batonv1.EnqueueResponse
	err      error
}

func newEnqueueCoalescer(broker batonv1.BrokerClient, limits coalesceLimits) *enqueueCoalescer {
	return &enqueueCoalescer{broker: broker, limits: limits}
}

// enqueue stores one job, alone or with the calls made beside it. A call that waits and whose ctx
// ends before its group is sent is dropped: nothing is sent for it. A call whose ctx ends while its
// group's RPC is in flight returns ctx.Err() at once, but the RPC goes on for the others, so its
// job may be stored all the same, as with an Enqueue cancelled in flight.
func (c *enqueueCoalescer) enqueue(ctx context.Context, request *batonv1.EnqueueRequest) (*batonv1.EnqueueResponse, error) {
	c.mu.Lock()
	if len(c.waiting) == 0 && c.inFlight < c.limits.maxInFlight {
		// Sent from the caller's goroutine with the caller's ctx: exactly an Enqueue without coalescing.
		c.inFlight++
		c.mu.Unlock()
		defer c.finished()
		return c.broker.Enqueue(ctx, request)
	}
	call := &waitingEnqueue{ctx: ctx, request: request, answer: make(chan enqueueAnswer, 1)}
	c.waiting = append(c.waiting, call)
	c.flushLocked()
	c.mu.Unlock()

	select {
	case a := <-call.answer:
		return a.response, a.err
	case <-ctx.Done():
		c.mu.Lock()
		c.removeLocked(call)
		c.mu.Unlock()
		select {
		case a := <-call.answer: // answered as ctx ended: the answer is worth more than ctx.Err()
			return a.response, a.err
		default:
			return nil, ctx.Err()
		}
	}
}

// flushLocked sends what waits, group by group, while fewer than maxInFlight RPCs are in flight.
func (c *enqueueCoalescer) flushLocked() {
	for len(c.waiting) > 0 && c.inFlight < c.limits.maxInFlight {
		group := c.takeGroupLocked()
		if len(group) == 0 {
			continue // every call taken had given up
		}
		c.inFlight++
		go func() {
			defer c.finished()
			if len(group) == 1 {
				c.alone(group[0])
			} else {
				c.together(group)
			}
		}()
	}
}

func (c *enqueueCoalescer) finished() {
	c.mu.Lock()
	c.inFlight--
	c.flushLocked()
	c.mu.Unlock()
}

// takeGroupLocked takes the oldest waiting calls, up to maxJobs and about maxBytes, leaving out
// those whose ctx has ended (their callers return ctx.Err() without anything sent).
func (c *enqueueCoalescer) takeGroupLocked() []*waitingEnqueue {
	var group []*waitingEnqueue
	bytes := 0
	for len(c.waiting) > 0 && len(group) < c.limits.maxJobs {
		call := c.waiting[0]
		size := sizeOf(call.request)
		if call.ctx.Err() == nil && len(group) > 0 && bytes+size > c.limits.maxBytes {
			break
		}
		c.waiting[0] = nil
		c.waiting = c.waiting[1:]
		if call.ctx.Err() == nil {
			group = append(group, call)
			bytes += size
		}
	}
	return group
}

func (c *enqueueCoalescer) removeLocked(call *waitingEnqueue) {
	for i, w := range c.waiting {
		if w == call {
			c.waiting = append(c.waiting[:i], c.waiting[i+1:]...)
			return
		}
	}
}

// alone sends one call as its own Enqueue with its own ctx: nobody else waits on this RPC, so the
// caller giving up may cancel it, as it would an Enqueue without coalescing.
func (c *enqueueCoalescer) alone(call *waitingEnqueue) {
	if err := call.ctx.Err(); err != nil {
		call.answer <- enqueueAnswer{err: err}
		return
	}
	response, err := c.broker.Enqueue(call.ctx, call.request)
	call.answer <- enqueueAnswer{response, err}
}

func (c *enqueueCoalescer) together(group []*waitingEnqueue) {
	ctx, cancel := groupContext(group)
	defer cancel()
	request := &batonv1.EnqueueBatchRequest{Jobs: make([]*batonv1.EnqueueRequest, len(group)), IdsOnly: false}
	for i, call := range group {
		request.Jobs[i] = call.request
	}
	response, err := c.broker.EnqueueBatch(ctx, request)
	if err == nil && len(response.Jobs) != len(group) {
		err = status.Errorf(codes.Internal, "client: the broker answered %d jobs for a batch of %d", len(response.Jobs), len(group))
	}
	switch {
	case err == nil:
		for i, call := range group {
			call.answer <- enqueueAnswer{response: response.Jobs[i]}
		}
	case aboutTheJobs[status.Code(err)]:
		var resent sync.WaitGroup
		for _, call := range group {
			resent.Add(1)
			go func(call *waitingEnqueue) {
				defer resent.Done()
				c.alone(call)
			}(call)
		}
		resent.Wait()
	default:
		for _, call := range group {
			call.answer <- enqueueAnswer{err: err}
		}
	}
}

// groupContext is the ctx of a group's RPC. No caller giving up may cancel it, since the others
// still wait on it; it keeps the values of the first caller's ctx (outgoing gRPC metadata, trace
// spans) and the earliest deadline of the group, so the RPC never runs past what a caller allowed.
func groupContext(group []*waitingEnqueue) (context.Context, context.CancelFunc) {
	ctx := context.Context(withoutCancel{group[0].ctx})
	var earliest time.Time
	for _, call := range group {
		if deadline, ok := call.ctx.Deadline(); ok && (earliest.IsZero() || deadline.Before(earliest)) {
			earliest = deadline
		}
	}
	if earliest.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, earliest)
}

// withoutCancel is Go 1.21's context.WithoutCancel, which this module (Go 1.19) cannot use yet: the
// parent's values without its cancellation or deadline.
type withoutCancel struct{ parent context.Context }

func (withoutCancel) Deadline() (time.Time, bool) { return time.Time{}, false }
func (withoutCancel) Done() <-chan struct{}       { return nil }
func (withoutCancel) Err() error                  { return nil }
func (w withoutCancel) Value(key any) any         { return w.parent.Value(key) }

// sizeOf is what a job adds to a batch's message, near enough: its payload and a margin for the rest.
func sizeOf(request *batonv1.EnqueueRequest) int {
	return len(request.PayloadJson) + 512
}
