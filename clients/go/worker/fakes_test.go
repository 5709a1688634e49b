package worker

// Fakes for driving the engine step by step: a clock the test moves, handler calls that run when
// the test says, and a stream whose requests the test reads and whose responses it writes. No
// goroutines of the engine's own, no sleeps, no broker.

import (
	"encoding/json"
	"io"
	"log"
	"sort"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	batonv1 "baton/clients/go/gen/baton/v1"
)

type harness struct {
	t       *testing.T
	now     time.Time
	pending []func() // handler calls not run yet
	engine  *engine
}

func newHarness(t *testing.T, handlers map[string]Handler, capacity int) *harness {
	return newPrefetchHarness(t, handlers, capacity, 0)
}

// newPrefetchHarness runs at most concurrency handlers and holds up to prefetch more jobs.
func newPrefetchHarness(t *testing.T, handlers map[string]Handler, concurrency, prefetch int) *harness {
	h := &harness{t: t, now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.engine = newEngine(handlers, concurrency, prefetch, "w1", log.New(io.Discard, "", 0),
		func() time.Time { return h.now }, func(f func()) { h.pending = append(h.pending, f) })
	return h
}

func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

// runNext runs the oldest handler call not run yet.
func (h *harness) runNext() {
	h.t.Helper()
	if len(h.pending) == 0 {
		h.t.Fatal("no handler call is pending")
	}
	f := h.pending[0]
	h.pending = h.pending[1:]
	f()
}

func (h *harness) runAll() {
	for len(h.pending) > 0 {
		h.runNext()
	}
}

// connect opens a stream, takes its Hello and welcomes it.
func (h *harness) connect(heartbeat time.Duration) *fakeStream {
	f := h.open()
	f.sent()
	f.receive(&batonv1.LeaseResponse{Welcome: &batonv1.Welcome{SessionId: "s1", BrokerId: "b1", ProtocolVersion: 1,
		HeartbeatInterval: durationpb.New(heartbeat)}})
	return f
}

func (h *harness) open() *fakeStream {
	f := &fakeStream{h: h}
	f.s = h.engine.openStream(func() { f.cancelled = true })
	return f
}

// fakeStream is a Lease stream as the broker sees it.
type fakeStream struct {
	h          *harness
	s          *leaseStream
	cancelled  bool
	halfClosed bool
}

// sent returns what the worker sent since the last call; a half-close sets halfClosed.
func (f *fakeStream) sent() []*batonv1.LeaseRequest {
	messages, closeSend, _ := f.h.engine.takeOutbox(f.s)
	f.halfClosed = f.halfClosed || closeSend
	return messages
}

// tick runs the engine's clock once and returns what it sent.
func (f *fakeStream) tick() []*batonv1.LeaseRequest {
	if _, done := f.h.engine.tick(); done {
		f.h.t.Fatal("the engine says the close is done")
	}
	return f.sent()
}

func (f *fakeStream) receive(res *batonv1.LeaseResponse) { f.h.engine.receive(f.s, res) }

func (f *fakeStream) assign(jobs ...*batonv1.JobAssignment) {
	f.receive(&batonv1.LeaseResponse{Jobs: jobs})
}

func (f *fakeStream) cancel(n int, reason string) {
	f.receive(&batonv1.LeaseResponse{Cancels: []*batonv1.CancelNotice{{JobId: jobID(n), LeaseToken: token(n), Reason: reason}}})
}

func (f *fakeStream) end() { f.h.engine.endStream(f.s) }

func jobID(n int) string { return "job" + strconv.Itoa(n) }
func token(n int) string { return "t" + strconv.Itoa(n) }

func assignment(n int, payload string) *batonv1.JobAssignment {
	return &batonv1.JobAssignment{JobId: jobID(n), Queue: "q", PayloadJson: []byte(payload), LeaseToken: token(n),
		Attempt: 1, MaxAttempts: 3}
}

func withTimeout(a *batonv1.JobAssignment, d time.Duration) *batonv1.JobAssignment {
	a.Timeout = durationpb.New(d)
	return a
}

// results are the results in these messages, by job id.
func results(messages []*batonv1.LeaseRequest) map[string]*batonv1.JobResult {
	out := map[string]*batonv1.JobResult{}
	for _, m := range messages {
		for _, r := range m.Results {
			out[r.JobId] = r
		}
	}
	return out
}

func credits(messages []*batonv1.LeaseRequest) int {
	n := 0
	for _, m := range messages {
		n += int(m.Credits)
	}
	return n
}

func keys(m map[string]*batonv1.JobResult) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func decode(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("not JSON: %q: %v", data, err)
	}
	return v
}

func durpb(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
