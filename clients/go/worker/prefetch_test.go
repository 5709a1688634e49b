package worker

// Prefetch (docs/protocol.md, section 5), driven step by step (fakes_test.go): capacity is
// Concurrency + Prefetch, at most Concurrency handlers run, the rest wait leased in arrival order;
// a cancel, a timeout or a lost lease reaches a waiting job without running it; close and drain
// hand waiting jobs back unstarted.

import (
	"context"
	"io"
	"log"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// recording returns a handler that succeeds with the job's id, and the ids in the order their
// handlers began.
func recording() (Handler, *[]string) {
	var began []string
	return func(ctx context.Context, job *Job) (any, error) {
		began = append(began, job.ID)
		return job.ID, nil
	}, &began
}

// prefetching is a connected worker of concurrency 1 and prefetch 2 holding jobs 1 (running), 2 and
// 3 (waiting).
func prefetching(t *testing.T, handler Handler) (*harness, *fakeStream) {
	h := newPrefetchHarness(t, handlers(handler), 1, 2)
	f := h.connect(time.Second)
	if n := credits(f.tick()); n != 3 {
		t.Fatalf("credits %d, want concurrency + prefetch = 3", n)
	}
	f.assign(assignment(1, "{}"), assignment(2, "{}"), assignment(3, "{}"))
	if len(h.pending) != 1 {
		t.Fatalf("%d handlers began, want 1", len(h.pending))
	}
	return h, f
}

// isReturned says whether r hands its job back unstarted: a 1 ms snooze.
func isReturned(r *batonv1.JobResult) bool {
	return r != nil && r.GetSnooze().GetDelay().AsDuration() == time.Millisecond && len(r.ResultJson) == 0
}

func TestHelloDeclaresConcurrencyPlusPrefetch(t *testing.T) {
	h := newPrefetchHarness(t, handlers(echo), 2, 3)
	sent := h.open().sent()
	if len(sent) != 1 || sent[0].Hello.GetCapacity() != 5 {
		t.Fatalf("want a Hello of capacity 5, got %v", sent)
	}
}

func TestWaitingJobsStartInArrivalOrderAsHandlersFreeUp(t *testing.T) {
	handler, began := recording()
	h, f := prefetching(t, handler)
	if sent := f.tick(); len(sent) != 0 {
		t.Fatalf("held 3 + credit 0 = capacity: nothing owed, sent %v", sent)
	}
	h.runNext()
	if len(h.pending) != 1 {
		t.Fatalf("%d handlers began after the first returned, want 1", len(h.pending))
	}
	sent := f.tick()
	if got := keys(results(sent)); !reflect.DeepEqual(got, []string{"job1"}) || credits(sent) != 1 {
		t.Fatalf("want job1's result with one credit, got %v", sent)
	}
	f.assign(assignment(4, "{}"))
	h.runAll()
	if want := []string{"job1", "job2", "job3", "job4"}; !reflect.DeepEqual(*began, want) {
		t.Fatalf("began %v, want %v", *began, want)
	}
	if sent := f.tick(); len(results(sent)) != 3 || credits(sent) != 3 {
		t.Fatalf("want three results and three credits, got %v", sent)
	}
}

func TestTheHeartbeatNamesWaitingJobs(t *testing.T) {
	handler, _ := recording()
	h, f := prefetching(t, handler)
	h.advance(time.Second)
	sent := f.tick()
	if len(sent) != 1 || sent[0].Heartbeat == nil {
		t.Fatalf("want a heartbeat, got %v", sent)
	}
	tokens := append([]string(nil), sent[0].Heartbeat.LeaseTokens...)
	sort.Strings(tokens)
	if strings.Join(tokens, ",") != "t1,t2,t3" {
		t.Fatalf("heartbeat names %v, want t1, t2 and t3", tokens)
	}
}

func TestACancelReachesAWaitingJobWithoutRunningIt(t *testing.T) {
	handler, began := recording()
	h, f := prefetching(t, handler)
	f.cancel(2, "cancelled")
	sent := f.tick()
	r := results(sent)["job2"]
	if r == nil || r.Failure.GetMessage() != "cancelled" || !r.Failure.GetNonRetryable() || credits(sent) != 1 {
		t.Fatalf("want job2 reported cancelled (non-retryable) and its slot back as a credit, got %v", sent)
	}
	h.runAll()
	if want := []string{"job1", "job3"}; !reflect.DeepEqual(*began, want) {
		t.Fatalf("began %v, want %v", *began, want)
	}
	if got := keys(results(f.tick())); !reflect.DeepEqual(got, []string{"job1", "job3"}) {
		t.Fatalf("results %v", got)
	}
}

func TestAWaitingJobsTimeoutRunsFromDelivery(t *testing.T) {
	handler, began := recording()
	h := newPrefetchHarness(t, handlers(handler), 1, 1)
	f := h.connect(time.Hour)
	f.tick()
	f.assign(assignment(1, "{}"), withTimeout(assignment(2, "{}"), time.Second))
	h.advance(999 * time.Millisecond)
	if sent := f.tick(); len(sent) != 0 {
		t.Fatalf("timed out early: %v", sent)
	}
	h.advance(time.Millisecond)
	r := results(f.tick())["job2"]
	if r == nil || r.Failure.GetMessage() != "timed out after 1000 ms" || r.Failure.GetNonRetryable() {
		t.Fatalf("want job2's retryable timeout, got %v", r)
	}
	h.runAll()
	if want := []string{"job1"}; !reflect.DeepEqual(*began, want) {
		t.Fatalf("began %v, want %v", *began, want)
	}
}

func TestATimeoutNoticeReachesAWaitingJobWithoutRunningIt(t *testing.T) {
	handler, began := recording()
	h, f := prefetching(t, handler)
	f.cancel(3, "timeout")
	if r := results(f.tick())["job3"]; r == nil || !strings.HasPrefix(r.Failure.GetMessage(), "timed out") {
		t.Fatalf("want job3 timed out, got %v", r)
	}
	h.runAll()
	if want := []string{"job1", "job2"}; !reflect.DeepEqual(*began, want) {
		t.Fatalf("began %v, want %v", *began, want)
	}
}

func TestALostWaitingJobIsDroppedAndItsSlotFreed(t *testing.T) {
	handler, began := recording()
	h, f := prefetching(t, handler)
	f.receive(&batonv1.LeaseResponse{Lost: []string{"t2"}})
	sent := f.tick()
	if len(results(sent)) != 0 || credits(sent) != 1 {
		t.Fatalf("want no result and one credit, got %v", sent)
	}
	h.runAll()
	if want := []string{"job1", "job3"}; !reflect.DeepEqual(*began, want) {
		t.Fatalf("began %v, want %v", *began, want)
	}
	if got := keys(results(f.tick())); !reflect.DeepEqual(got, []string{"job1", "job3"}) {
		t.Fatalf("results %v", got)
	}
}

func TestCloseHandsWaitingJobsBackUnstarted(t *testing.T) {
	handler, began := recording()
	h, f := prefetching(t, handler)
	h.engine.close(30 * time.Second)
	// Handed back at once, not after the running handler.
	sent := results(f.tick())
	if !isReturned(sent["job2"]) || !isReturned(sent["job3"]) || len(sent) != 2 || f.halfClosed {
		t.Fatalf("want job2 and job3 snoozed 1 ms, no half-close yet; got %v", sent)
	}
	// A job the broker still pushes on credit granted before the close is not started either
	// once the handler is busy.
	f.assign(assignment(4, "{}"))
	if sent := results(f.tick()); !isReturned(sent["job4"]) {
		t.Fatalf("want job4 handed back, got %v", sent)
	}
	h.runAll()
	if want := []string{"job1"}; !reflect.DeepEqual(*began, want) {
		t.Fatalf("began %v, want %v", *began, want)
	}
	sent = results(f.tick())
	if r := sent["job1"]; r == nil || r.Failure != nil || !f.halfClosed {
		t.Fatalf("want job1's result and a half-close, got %v (half-closed %v)", sent, f.halfClosed)
	}
}

func TestADrainHandsWaitingJobsBackUnstarted(t *testing.T) {
	handler, began := recording()
	h, f := prefetching(t, handler)
	f.receive(&batonv1.LeaseResponse{Drain: &batonv1.Drain{Deadline: durpb(5 * time.Second)}})
	sent := f.tick()
	r := results(sent)
	if !isReturned(r["job2"]) || !isReturned(r["job3"]) || len(r) != 2 || credits(sent) != 0 {
		t.Fatalf("want job2 and job3 snoozed 1 ms and no credit, got %v", sent)
	}
	f.receive(&batonv1.LeaseResponse{Acks: []*batonv1.ResultAck{{JobId: "job2", LeaseToken: "t2", Accepted: true},
		{JobId: "job3", LeaseToken: "t3", Accepted: true}}})
	f.sent()
	if f.halfClosed {
		t.Fatal("half-closed while job1 runs")
	}
	h.runAll()
	if want := []string{"job1"}; !reflect.DeepEqual(*began, want) {
		t.Fatalf("began %v, want %v", *began, want)
	}
	if got := keys(results(f.tick())); !reflect.DeepEqual(got, []string{"job1"}) {
		t.Fatalf("results %v", got)
	}
	f.receive(&batonv1.LeaseResponse{Acks: []*batonv1.ResultAck{{JobId: "job1", LeaseToken: "t1", Accepted: true}}})
	f.sent()
	if !f.halfClosed {
		t.Fatal("not half-closed once everything was acknowledged")
	}
}

func TestJobsArrivingWithADrainAreHandedBack(t *testing.T) {
	handler, began := recording()
	h := newPrefetchHarness(t, handlers(handler), 1, 2)
	f := h.connect(time.Second)
	f.tick()
	f.receive(&batonv1.LeaseResponse{Jobs: []*batonv1.JobAssignment{assignment(1, "{}"), assignment(2, "{}")},
		Drain: &batonv1.Drain{}})
	if r := results(f.tick()); !isReturned(r["job2"]) || len(r) != 1 {
		t.Fatalf("want job2 handed back, got %v", r)
	}
	h.runAll()
	if want := []string{"job1"}; !reflect.DeepEqual(*began, want) {
		t.Fatalf("began %v, want %v", *began, want)
	}
}

func TestAStreamEndDropsWaitingJobsAndFreesTheirSlots(t *testing.T) {
	handler, began := recording()
	h, f := prefetching(t, handler)
	f.end()
	g := h.connect(time.Second)
	if n := credits(g.tick()); n != 2 {
		t.Fatalf("credits %d, want 2: only the old stream's running handler holds a slot", n)
	}
	h.runAll()
	if want := []string{"job1"}; !reflect.DeepEqual(*began, want) {
		t.Fatalf("began %v, want %v", *began, want)
	}
	if sent := g.tick(); len(results(sent)) != 0 || credits(sent) != 1 {
		t.Fatalf("want no result and one credit, got %v", sent)
	}
}

func TestNewChecksPrefetch(t *testing.T) {
	base := Options{Handlers: handlers(echo), Logger: log.New(io.Discard, "", 0)}
	for _, c := range []struct {
		concurrency, prefetch int
		ok                    bool
	}{{0, 0, true}, {10, 99990, true}, {10, 99991, false}, {1, -1, false}, {100000, 1, false}} {
		opts := base
		opts.Concurrency, opts.Prefetch = c.concurrency, c.prefetch
		w, err := New(opts)
		if (err == nil) != c.ok {
			t.Fatalf("concurrency %d, prefetch %d: error %v", c.concurrency, c.prefetch, err)
		}
		if err != nil && !strings.Contains(err.Error(), "Prefetch must be 0..") {
			t.Fatalf("error %q", err)
		}
		if c.ok && w.engine.capacity != maxInt(c.concurrency, 10)+c.prefetch {
			t.Fatalf("capacity %d", w.engine.capacity)
		}
	}
}
