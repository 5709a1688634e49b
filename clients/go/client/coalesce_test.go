package client

// Enqueue calls sent together, against a broker whose RPCs the test answers by hand.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// heldBroker holds each Enqueue and EnqueueBatch until the test answers it. A job on queue "bad"
// is refused with InvalidArgument when sent alone; a batch is refused with batchErr unless it is OK.
type heldBroker struct {
	batonv1.BrokerClient
	batchErr codes.Code
	rpcs     chan *heldRPC
}

type heldRPC struct {
	ctx     context.Context
	batch   bool
	queues  []string
	release chan struct{}
}

func (r *heldRPC) answer() { close(r.release) }

func newHeldBroker(batchErr codes.Code) *heldBroker {
	return &heldBroker{batchErr: batchErr, rpcs: make(chan *heldRPC, 100)}
}

func (b *heldBroker) hold(ctx context.Context, batch bool, queues []string) error {
	rpc := &heldRPC{ctx: ctx, batch: batch, queues: queues, release: make(chan struct{})}
	b.rpcs <- rpc
	select {
	case <-rpc.release:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func enqueued(queue string) *batonv1.EnqueueResponse {
	return &batonv1.EnqueueResponse{Job: &batonv1.Job{Id: "id-" + queue, Queue: queue, Status: batonv1.JobStatus_JOB_STATUS_PENDING}}
}

func (b *heldBroker) Enqueue(ctx context.Context, r *batonv1.EnqueueRequest, _ ...grpc.CallOption) (*batonv1.EnqueueResponse, error) {
	if err := b.hold(ctx, false, []string{r.Queue}); err != nil {
		return nil, err
	}
	if r.Queue == "bad" {
		return nil, status.Error(codes.InvalidArgument, "bad queue")
	}
	return enqueued(r.Queue), nil
}

func (b *heldBroker) EnqueueBatch(ctx context.Context, r *batonv1.EnqueueBatchRequest, _ ...grpc.CallOption) (*batonv1.EnqueueBatchResponse, error) {
	var queues []string
	for _, job := range r.Jobs {
		queues = append(queues, job.Queue)
	}
	if r.IdsOnly {
		panic("a coalesced batch must ask for whole jobs")
	}
	if err := b.hold(ctx, true, queues); err != nil {
		return nil, err
	}
	if b.batchErr != codes.OK {
		return nil, status.Error(b.batchErr, "refused")
	}
	res := &batonv1.EnqueueBatchResponse{}
	for _, q := range queues {
		res.Jobs = append(res.Jobs, enqueued(q))
	}
	return res, nil
}

// next is the next RPC the broker received.
func (b *heldBroker) next(t *testing.T) *heldRPC {
	t.Helper()
	select {
	case rpc := <-b.rpcs:
		return rpc
	case <-time.After(5 * time.Second):
		t.Fatal("no RPC came")
		return nil
	}
}

func (b *heldBroker) expectNoMore(t *testing.T) {
	t.Helper()
	select {
	case rpc := <-b.rpcs:
		t.Fatalf("unexpected RPC: batch %v, queues %v", rpc.batch, rpc.queues)
	case <-time.After(50 * time.Millisecond):
	}
}

type enqueueResult struct {
	job *EnqueuedJob
	err error
}

func coalescingClient(b *heldBroker, limits coalesceLimits) *Client {
	return &Client{broker: b, coalescer: newEnqueueCoalescer(b, limits)}
}

// start makes one Enqueue call in its own goroutine.
func start(ctx context.Context, c *Client, queue string, payload any) <-chan enqueueResult {
	done := make(chan enqueueResult, 1)
	go func() {
		job, err := c.Enqueue(ctx, queue, payload, nil)
		done <- enqueueResult{job, err}
	}()
	return done
}

// startWaiting makes one Enqueue call and returns once it waits behind the RPCs in flight, so that
// calls started one after the other wait in that order.
func startWaiting(t *testing.T, ctx context.Context, c *Client, queue string, payload any) <-chan enqueueResult {
	t.Helper()
	c.coalescer.mu.Lock()
	n := len(c.coalescer.waiting)
	c.coalescer.mu.Unlock()
	done := start(ctx, c, queue, payload)
	waitForWaiting(t, c.coalescer, n+1)
	return done
}

func waitForWaiting(t *testing.T, co *enqueueCoalescer, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		co.mu.Lock()
		got := len(co.waiting)
		co.mu.Unlock()
		if got == n {
			return
		}
	}
	t.Fatalf("%d calls never came to wait", n)
}

func result(t *testing.T, done <-chan enqueueResult) enqueueResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the call never returned")
		return enqueueResult{}
	}
}

func expectJob(t *testing.T, done <-chan enqueueResult, queue string) {
	t.Helper()
	r := result(t, done)
	if r.err != nil || r.job.ID != "id-"+queue || r.job.Queue != queue {
		t.Fatalf("call on %s: job %+v, err %v", queue, r.job, r.err)
	}
}

func expectRPC(t *testing.T, rpc *heldRPC, batch bool, queues ...string) {
	t.Helper()
	if rpc.batch != batch || !reflect.DeepEqual(rpc.queues, queues) {
		t.Fatalf("RPC batch %v with %v, want batch %v with %v", rpc.batch, rpc.queues, batch, queues)
	}
}

// twoInFlight starts calls on a and b and returns once the broker holds both.
func twoInFlight(t *testing.T, c *Client, b *heldBroker) (a, bb <-chan enqueueResult, rpcA, rpcB *heldRPC) {
	t.Helper()
	a = start(context.Background(), c, "a", nil)
	rpcA = b.next(t)
	bb = start(context.Background(), c, "b", nil)
	rpcB = b.next(t)
	expectRPC(t, rpcA, false, "a")
	expectRPC(t, rpcB, false, "b")
	return a, bb, rpcA, rpcB
}

func TestALoneCallIsOneEnqueue(t *testing.T) {
	b := newHeldBroker(codes.OK)
	c := coalescingClient(b, defaultCoalesceLimits)
	for _, queue := range []string{"a", "b"} {
		done := start(context.Background(), c, queue, nil)
		rpc := b.next(t)
		expectRPC(t, rpc, false, queue)
		rpc.answer()
		expectJob(t, done, queue)
	}
	b.expectNoMore(t)
}

func TestCallsMadeWhileTwoAreInFlightLeaveTogetherInOrder(t *testing.T) {
	b := newHeldBroker(codes.OK)
	c := coalescingClient(b, defaultCoalesceLimits)
	a, bb, rpcA, rpcB := twoInFlight(t, c, b)
	var waiting []<-chan enqueueResult
	for _, queue := range []string{"c", "d", "e"} {
		waiting = append(waiting, startWaiting(t, context.Background(), c, queue, nil))
	}
	b.expectNoMore(t)
	rpcA.answer()
	expectJob(t, a, "a")
	batch := b.next(t)
	expectRPC(t, batch, true, "c", "d", "e")
	rpcB.answer()
	batch.answer()
	expectJob(t, bb, "b")
	for i, queue := range []string{"c", "d", "e"} {
		expectJob(t, waiting[i], queue)
	}
	b.expectNoMore(t)
}

func TestABatchRefusedForItsContentIsSentAgainJobByJob(t *testing.T) {
	b := newHeldBroker(codes.InvalidArgument)
	c := coalescingClient(b, defaultCoalesceLimits)
	a, bb, rpcA, rpcB := twoInFlight(t, c, b)
	waiting := map[string]<-chan enqueueResult{}
	for _, queue := range []string{"c", "bad", "e"} {
		waiting[queue] = startWaiting(t, context.Background(), c, queue, nil)
	}
	rpcA.answer()
	rpcB.answer()
	batch := b.next(t)
	expectRPC(t, batch, true, "c", "bad", "e")
	batch.answer()
	var resent []string
	for i := 0; i < 3; i++ {
		rpc := b.next(t)
		if rpc.batch || len(rpc.queues) != 1 {
			t.Fatalf("a resend must be one Enqueue, got batch %v with %v", rpc.batch, rpc.queues)
		}
		resent = append(resent, rpc.queues[0])
		rpc.answer()
	}
	sort.Strings(resent)
	if !reflect.DeepEqual(resent, []string{"bad", "c", "e"}) {
		t.Fatalf("resent %v", resent)
	}
	expectJob(t, a, "a")
	expectJob(t, bb, "b")
	expectJob(t, waiting["c"], "c")
	expectJob(t, waiting["e"], "e")
	if r := result(t, waiting["bad"]); status.Code(r.err) != codes.InvalidArgument {
		t.Fatalf("the bad call: job %+v, err %v", r.job, r.err)
	}
	b.expectNoMore(t)
}

func TestAnErrorThatSaysNothingAboutTheJobsReachesEveryCallAndNothingIsResent(t *testing.T) {
	b := newHeldBroker(codes.Unavailable)
	c := coalescingClient(b, defaultCoalesceLimits)
	a, bb, rpcA, rpcB := twoInFlight(t, c, b)
	cc := startWaiting(t, context.Background(), c, "c", nil)
	d := startWaiting(t, context.Background(), c, "d", nil)
	rpcA.answer()
	batch := b.next(t)
	expectRPC(t, batch, true, "c", "d")
	batch.answer()
	for _, done := range []<-chan enqueueResult{cc, d} {
		if r := result(t, done); status.Code(r.err) != codes.Unavailable {
			t.Fatalf("job %+v, err %v", r.job, r.err)
		}
	}
	b.expectNoMore(t)
	rpcB.answer()
	expectJob(t, a, "a")
	expectJob(t, bb, "b")
}

func TestTheSizeLimitsSplitGroups(t *testing.T) {
	b := newHeldBroker(codes.OK)
	c := coalescingClient(b, coalesceLimits{maxInFlight: 1, maxJobs: 3, maxBytes: 2500})
	first := start(context.Background(), c, "first", nil)
	rpc := b.next(t)
	// 1,200 bytes of JSON text each: 1,712 with the margin, so two of them do not fit in 2,500.
	big := `"` + strings.Repeat("x", 1198) + `"`
	var waiting []<-chan enqueueResult
	for _, queue := range []string{"a", "b", "c", "d"} {
		waiting = append(waiting, startWaiting(t, context.Background(), c, queue, nil))
	}
	for _, queue := range []string{"big1", "big2"} {
		waiting = append(waiting, startWaiting(t, context.Background(), c, queue, json.RawMessage(big)))
	}
	var groups [][]string
	for i := 0; i < 4; i++ {
		groups = append(groups, rpc.queues)
		rpc.answer()
		if i < 3 {
			rpc = b.next(t)
		}
	}
	expectJob(t, first, "first")
	want := [][]string{{"first"}, {"a", "b", "c"}, {"d", "big1"}, {"big2"}}
	if !reflect.DeepEqual(groups, want) {
		t.Fatalf("groups %v, want %v", groups, want)
	}
	for i, queue := range []string{"a", "b", "c", "d", "big1", "big2"} {
		expectJob(t, waiting[i], queue)
	}
}

func TestAWaitingCallWhoseContextEndsIsNotSent(t *testing.T) {
	b := newHeldBroker(codes.OK)
	c := coalescingClient(b, defaultCoalesceLimits)
	a, bb, rpcA, rpcB := twoInFlight(t, c, b)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := startWaiting(t, ctx, c, "gave-up", nil)
	d := startWaiting(t, context.Background(), c, "d", nil)
	cancel()
	if r := result(t, gaveUp); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("job %+v, err %v", r.job, r.err)
	}
	waitForWaiting(t, c.coalescer, 1)
	rpcA.answer()
	rpcD := b.next(t)
	expectRPC(t, rpcD, false, "d") // a lone waiting call goes as its own Enqueue
	b.expectNoMore(t)
	rpcD.answer()
	expectJob(t, d, "d")
	expectJob(t, a, "a")
	rpcB.answer()
	expectJob(t, bb, "b")
}

type contextKey struct{}

func TestOneCallerGivingUpDoesNotCancelItsGroup(t *testing.T) {
	b := newHeldBroker(codes.OK)
	c := coalescingClient(b, defaultCoalesceLimits)
	a, bb, rpcA, rpcB := twoInFlight(t, c, b)
	first, cancelFirst := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "tenant", "t1"))
	soonest := time.Now().Add(30 * time.Minute)
	second, cancelSecond := context.WithDeadline(context.WithValue(context.Background(), contextKey{}, "second's"), soonest)
	defer cancelSecond()
	cc := startWaiting(t, first, c, "c", nil)
	d := startWaiting(t, second, c, "d", nil)
	rpcA.answer()
	batch := b.next(t)
	expectRPC(t, batch, true, "c", "d")
	if md, _ := metadata.FromOutgoingContext(batch.ctx); !reflect.DeepEqual(md.Get("tenant"), []string{"t1"}) {
		t.Fatalf("the batch must carry the first call's metadata, got %v", md)
	}
	if batch.ctx.Value(contextKey{}) != nil {
		t.Fatal("the batch must carry the first call's values only")
	}
	if deadline, ok := batch.ctx.Deadline(); !ok || !deadline.Equal(soonest) {
		t.Fatalf("the batch's deadline is %v, want the earliest, %v", deadline, soonest)
	}
	cancelFirst()
	if r := result(t, cc); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("job %+v, err %v", r.job, r.err)
	}
	if batch.ctx.Err() != nil {
		t.Fatal("one caller giving up cancelled the batch")
	}
	batch.answer()
	expectJob(t, d, "d")
	rpcB.answer()
	expectJob(t, a, "a")
	expectJob(t, bb, "b")
}

func TestCoalescingIsOnUnlessTurnedOff(t *testing.T) {
	for _, off := range []bool{false, true} {
		c, err := New(Options{Address: "localhost:1", NoCoalesceEnqueues: off})
		if err != nil {
			t.Fatal(err)
		}
		if (c.coalescer == nil) != off {
			t.Fatalf("NoCoalesceEnqueues %v: coalescer %v", off, c.coalescer)
		}
		c.Close()
	}
}

func TestManyConcurrentCallsEachGetTheirOwnJob(t *testing.T) {
	b := newHeldBroker(codes.OK)
	c := coalescingClient(b, coalesceLimits{maxInFlight: 2, maxJobs: 7, maxBytes: 1 << 20})
	stop := make(chan struct{})
	defer close(stop)
	batches := make(chan int, 1000)
	go func() {
		for {
			select {
			case rpc := <-b.rpcs:
				if rpc.batch {
					batches <- len(rpc.queues)
				}
				rpc.answer()
			case <-stop:
				return
			}
		}
	}()
	var calls []<-chan enqueueResult
	for i := 0; i < 300; i++ {
		calls = append(calls, start(context.Background(), c, fmt.Sprintf("q%d", i), i))
	}
	for i, done := range calls {
		expectJob(t, done, fmt.Sprintf("q%d", i))
	}
	close(batches)
	for n := range batches {
		if n > 7 {
			t.Fatalf("a batch of %d jobs, over maxJobs", n)
		}
	}
}
