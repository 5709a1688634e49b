package worker

// The engine against docs/protocol.md, driven step by step (fakes_test.go): a fake stream, a fake
// clock and handlers that run when the test says.

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	batonv1 "baton/clients/go/gen/baton/v1"
)

type got struct {
	Got     any   `json:"got"`
	Attempt int32 `json:"attempt"`
}

// echo returns the payload (as JSON text: every digit kept) and the attempt.
func echo(ctx context.Context, job *Job) (any, error) {
	return got{job.Payload, job.Attempt}, nil
}

// blocking returns a handler that waits for its context, and the contexts it saw.
func blocking() (Handler, *[]*Job) {
	var jobs []*Job
	return func(ctx context.Context, job *Job) (any, error) {
		jobs = append(jobs, job)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return "done", nil
	}, &jobs
}

func handlers(h Handler) map[string]Handler { return map[string]Handler{"q": h} }

// Hello, welcome, credits (sections 4 and 5)

func TestHelloComesFirstAndNoCreditBeforeWelcome(t *testing.T) {
	h := newHarness(t, map[string]Handler{"q": echo}, 5)
	f := h.open()
	sent := f.sent()
	if len(sent) != 1 || sent[0].Hello == nil {
		t.Fatalf("want one Hello, got %v", sent)
	}
	hello := sent[0].Hello
	if !reflect.DeepEqual(hello.Queues, []string{"q"}) || hello.Capacity != 5 || hello.WorkerId != "w1" ||
		hello.ProtocolVersion != ProtocolVersion || hello.Sdk != SDKName || sent[0].Credits != 0 {
		t.Fatalf("bad hello: %v", sent[0])
	}
	if sent := f.tick(); len(sent) != 0 {
		t.Fatalf("sent before welcome: %v", sent)
	}
}

func TestWelcomeGrantsTheWholeCapacityOnce(t *testing.T) {
	h := newHarness(t, handlers(echo), 4)
	f := h.connect(time.Second)
	if n := credits(f.tick()); n != 4 {
		t.Fatalf("credits %d, want 4", n)
	}
	if sent := f.tick(); len(sent) != 0 {
		t.Fatalf("nothing is owed, sent %v", sent)
	}
}

func TestAFinishedJobGoesOutWithTheCreditItsSlotFrees(t *testing.T) {
	h := newHarness(t, handlers(echo), 2)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, `{"n": 12345678901234567890}`))
	if len(h.pending) != 1 {
		t.Fatalf("handler calls %d, want 1", len(h.pending))
	}
	if sent := f.tick(); len(sent) != 0 {
		t.Fatalf("running: nothing owed (held 1 + credit 1 = capacity), sent %v", sent)
	}
	h.runAll()
	sent := f.tick()
	if len(sent) != 1 || len(sent[0].Results) != 1 || sent[0].Credits != 1 {
		t.Fatalf("want one message with a result and a credit, got %v", sent)
	}
	r := sent[0].Results[0]
	if r.JobId != "job1" || r.LeaseToken != "t1" || string(r.ResultJson) != `{"got":{"n":12345678901234567890},"attempt":1}` {
		t.Fatalf("bad result %v", r)
	}
	if n := h.engine.heldCount(); n != 0 {
		t.Fatalf("held %d after the result went out", n)
	}
}

func TestResultsAreBatchedIntoOneMessage(t *testing.T) {
	h := newHarness(t, handlers(echo), 3)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"), assignment(2, "{}"), assignment(3, "{}"))
	h.runAll()
	sent := f.tick()
	if len(sent) != 1 || !reflect.DeepEqual(keys(results(sent)), []string{"job1", "job2", "job3"}) || sent[0].Credits != 3 {
		t.Fatalf("want one message with three results and three credits, got %v", sent)
	}
}

func TestHeldPlusCreditNeverExceedsCapacity(t *testing.T) {
	h := newHarness(t, handlers(echo), 3)
	f := h.connect(time.Second)
	granted := credits(f.tick())
	for n := 1; n < 30; n++ {
		f.assign(assignment(n, "{}"))
		granted--
		if n%2 == 0 {
			h.runNext()
		}
		granted += credits(f.tick())
		if held := h.engine.heldCount(); held+granted > 3 {
			t.Fatalf("after job %d: held %d + credit %d > capacity 3", n, held, granted)
		}
	}
}

func TestJobsBeyondTheCreditAreStillHandled(t *testing.T) {
	h := newHarness(t, handlers(echo), 1)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"), assignment(2, "{}"))
	h.runAll()
	if got := keys(results(f.tick())); !reflect.DeepEqual(got, []string{"job1", "job2"}) {
		t.Fatalf("results %v", got)
	}
}

func TestALeaseTokenAssignedTwiceIsIgnored(t *testing.T) {
	h := newHarness(t, handlers(echo), 3)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"))
	f.assign(assignment(1, "{}"))
	if len(h.pending) != 1 {
		t.Fatalf("handler calls %d, want 1", len(h.pending))
	}
}

// Jobs and outcomes (sections 6 and 7)

func TestNoHandlerFailsRetryablyAndBadJSONForGood(t *testing.T) {
	h := newHarness(t, handlers(echo), 3)
	f := h.connect(time.Second)
	f.tick()
	other := assignment(1, "{}")
	other.Queue = "nobody"
	f.assign(other, assignment(2, "{not json"))
	if len(h.pending) != 0 {
		t.Fatal("a handler ran")
	}
	sent := results(f.tick())
	if r := sent["job1"].Failure; r.Message != `no handler for queue "nobody" on worker w1` || r.NonRetryable {
		t.Fatalf("job1: %v", r)
	}
	if r := sent["job2"].Failure; r.Message != "payload is not valid JSON" || !r.NonRetryable {
		t.Fatalf("job2: %v", r)
	}
}

func TestAnEmptyPayloadIsNullAndANilResultEmpty(t *testing.T) {
	var payload string
	h := newHarness(t, handlers(func(ctx context.Context, job *Job) (any, error) {
		payload = string(job.Payload)
		return nil, nil
	}), 3)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, ""))
	h.runAll()
	r := results(f.tick())["job1"]
	if payload != "null" || r.Failure != nil || len(r.ResultJson) != 0 {
		t.Fatalf("payload %q, result %v", payload, r)
	}
}

func TestHandlerErrorsBecomeFailures(t *testing.T) {
	h := newHarness(t, handlers(Typed(func(ctx context.Context, job *Job, p struct{ Kind string }) (any, error) {
		switch p.Kind {
		case "plain":
			return nil, errors.New("boom")
		case "final":
			return nil, NonRetryable(errors.New("bad input"))
		case "later":
			return nil, RetryAfter(errors.New("rate limited"), 2500*time.Millisecond)
		case "panic":
			panic("oops")
		}
		return func() {}, nil // not JSON
	})), 6)
	f := h.connect(time.Second)
	f.tick()
	for n, kind := range []string{"plain", "final", "later", "panic", "func"} {
		f.assign(assignment(n+1, `{"Kind": "`+kind+`"}`))
	}
	f.assign(assignment(6, `[1]`)) // does not decode into the typed payload
	h.runAll()
	sent := results(f.tick())
	check := func(id, message string, nonRetryable bool) {
		t.Helper()
		if r := sent[id].Failure; r == nil || r.Message != message || r.NonRetryable != nonRetryable {
			t.Fatalf("%s: %v, want %q non-retryable %v", id, sent[id], message, nonRetryable)
		}
	}
	check("job1", "boom", false)
	check("job2", "bad input", true)
	check("job3", "rate limited", false)
	if d := sent["job3"].Failure.RetryAfter.AsDuration(); d != 2500*time.Millisecond {
		t.Fatalf("retry_after %v", d)
	}
	check("job4", "handler panicked: oops", false)
	check("job5", "the handler's result cannot be encoded as JSON: json: unsupported type: func()", true)
	check("job6", "payload: json: cannot unmarshal array into Go value of type struct { Kind string }", true)
}

func TestAcksAreConsumedAndRefusalsNotResent(t *testing.T) {
	h := newHarness(t, handlers(echo), 3)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"))
	h.runAll()
	if len(results(f.tick())) != 1 {
		t.Fatal("no result")
	}
	f.receive(&batonv1.LeaseResponse{Acks: []*batonv1.ResultAck{{JobId: "job1", LeaseToken: "t1", Error: "stale lease"}}})
	if len(f.s.unacked) != 0 || len(results(f.tick())) != 0 {
		t.Fatal("a refused result is final")
	}
}

// Heartbeats and lost leases (sections 8 and 9)

func TestHeartbeatsAtTheWelcomeIntervalWithTheRunningTokens(t *testing.T) {
	handler, _ := blocking()
	h := newHarness(t, handlers(handler), 3)
	f := h.connect(700 * time.Millisecond)
	f.tick()
	f.assign(assignment(1, "{}"))
	h.advance(699 * time.Millisecond)
	if sent := f.tick(); len(sent) != 0 {
		t.Fatalf("early: %v", sent)
	}
	h.advance(time.Millisecond)
	sent := f.tick()
	if len(sent) != 1 || sent[0].Heartbeat == nil || !reflect.DeepEqual(sent[0].Heartbeat.LeaseTokens, []string{"t1"}) {
		t.Fatalf("want a heartbeat with t1, got %v", sent)
	}
	h.runAll()
	f.tick()
	h.advance(700 * time.Millisecond)
	sent = f.tick()
	if len(sent) != 1 || sent[0].Heartbeat == nil || len(sent[0].Heartbeat.LeaseTokens) != 0 {
		t.Fatalf("want an empty heartbeat (it renews the session), got %v", sent)
	}
}

func TestTheNextTickIsTheEarliestTimer(t *testing.T) {
	handler, _ := blocking()
	h := newHarness(t, handlers(handler), 3)
	f := h.connect(700 * time.Millisecond)
	if next, _ := h.engine.tick(); !next.Equal(h.now.Add(700 * time.Millisecond)) {
		t.Fatalf("next %v", next.Sub(h.now))
	}
	f.assign(withTimeout(assignment(1, "{}"), 300*time.Millisecond))
	if next, _ := h.engine.tick(); !next.Equal(h.now.Add(300 * time.Millisecond)) {
		t.Fatalf("next %v", next.Sub(h.now))
	}
}

func TestALostLeaseStopsTheHandlerAndDropsItsResult(t *testing.T) {
	handler, jobs := blocking()
	h := newHarness(t, handlers(handler), 1)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"))
	f.receive(&batonv1.LeaseResponse{Lost: []string{"t1", "unknown"}})
	if sent := f.tick(); len(sent) != 0 {
		t.Fatalf("the slot stays taken until the handler returns; sent %v", sent)
	}
	h.runAll()
	if (*jobs)[0].StopReason() != StopLeaseLost {
		t.Fatalf("stop reason %q", (*jobs)[0].StopReason())
	}
	sent := f.tick()
	if len(results(sent)) != 0 || credits(sent) != 1 {
		t.Fatalf("want no result and one credit, got %v", sent)
	}
}

func TestALostLeaseRemovesAQueuedResult(t *testing.T) {
	h := newHarness(t, handlers(echo), 1)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"))
	h.runAll() // queued, not sent yet
	f.receive(&batonv1.LeaseResponse{Lost: []string{"t1"}})
	sent := f.tick()
	if len(results(sent)) != 0 || credits(sent) != 1 {
		t.Fatalf("want no result and one credit, got %v", sent)
	}
}

// Progress (section 10)

func TestOnlyTheLatestProgressAndNoneAfterTheResult(t *testing.T) {
	var job *Job
	h := newHarness(t, handlers(func(ctx context.Context, j *Job) (any, error) { job = j; return nil, nil }), 3)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"))
	h.engine.held["t1"].job.Progress(map[string]int{"step": 1})
	h.engine.held["t1"].job.Progress(map[string]int{"step": 2})
	sent := f.tick()
	if len(sent) != 1 || len(sent[0].Progress) != 1 || string(sent[0].Progress[0].ProgressJson) != `{"step":2}` {
		t.Fatalf("want the latest progress only, got %v", sent)
	}
	h.runAll()
	if err := job.Progress(3); err != nil {
		t.Fatal(err)
	}
	sent = f.tick()
	if len(sent) != 1 || len(sent[0].Results) != 1 || len(sent[0].Progress) != 0 {
		t.Fatalf("want the result without progress, got %v", sent)
	}
	if err := job.Progress(func() {}); err == nil {
		t.Fatal("progress that is not JSON must fail")
	}
}

// Cancel and timeout (sections 11 and 12)

func TestACancelReportsAtOnceAndFreesTheSlotWhenTheHandlerReturns(t *testing.T) {
	handler, jobs := blocking()
	h := newHarness(t, handlers(handler), 1)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"))
	f.cancel(1, "cancelled")
	sent := f.tick()
	if r := results(sent)["job1"]; r == nil || r.Failure.Message != "cancelled" || !r.Failure.NonRetryable || credits(sent) != 0 {
		t.Fatalf("want a non-retryable 'cancelled' and no credit, got %v", sent)
	}
	h.runAll()
	if (*jobs)[0].StopReason() != StopCancelled {
		t.Fatalf("stop reason %q", (*jobs)[0].StopReason())
	}
	sent = f.tick()
	if len(results(sent)) != 0 || credits(sent) != 1 {
		t.Fatalf("want the credit and no second result, got %v", sent)
	}
}

func TestACancelForATokenNotHeldIsIgnored(t *testing.T) {
	h := newHarness(t, handlers(echo), 3)
	f := h.connect(time.Second)
	f.tick()
	f.cancel(9, "cancelled")
	if sent := f.tick(); len(sent) != 0 {
		t.Fatalf("sent %v", sent)
	}
}

func TestTheTimeoutFailsRetryablyAndStopsTheHandler(t *testing.T) {
	handler, jobs := blocking()
	h := newHarness(t, handlers(handler), 3)
	f := h.connect(time.Second)
	f.tick()
	f.assign(withTimeout(assignment(1, "{}"), 500*time.Millisecond))
	h.advance(499 * time.Millisecond)
	if len(results(f.tick())) != 0 {
		t.Fatal("too early")
	}
	h.advance(time.Millisecond)
	r := results(f.tick())["job1"]
	if r == nil || r.Failure.Message != "timed out after 500 ms" || r.Failure.NonRetryable {
		t.Fatalf("got %v", r)
	}
	h.runAll() // its late outcome is not sent
	if (*jobs)[0].StopReason() != StopTimeout || len(results(f.tick())) != 0 {
		t.Fatal("the handler must be stopped and its outcome dropped")
	}
}

func TestABrokerTimeoutNoticeReportsTheTimeout(t *testing.T) {
	handler, _ := blocking()
	h := newHarness(t, handlers(handler), 3)
	f := h.connect(time.Second)
	f.tick()
	f.assign(withTimeout(assignment(1, "{}"), 500*time.Millisecond))
	f.cancel(1, "timeout")
	if r := results(f.tick())["job1"]; r == nil || r.Failure.Message != "timed out after 500 ms" {
		t.Fatalf("got %v", r)
	}
}
