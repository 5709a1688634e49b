package worker

// The engine at the end of things, driven step by step (fakes_test.go): drain, the end of a
// stream, a graceful close; and what handlers see.

import (
	"context"
	"reflect"
	"testing"
	"time"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// Drain and the end of a stream (sections 13 and 14)

func TestDrainStopsCreditsAndHalfClosesOnceAcknowledged(t *testing.T) {
	h := newHarness(t, handlers(echo), 2)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"))
	f.receive(&batonv1.LeaseResponse{Drain: &batonv1.Drain{Deadline: durpb(5 * time.Second)}})
	h.runAll()
	sent := f.tick()
	if len(results(sent)) != 1 || credits(sent) != 0 || f.halfClosed {
		t.Fatalf("want the result, no credit, no half-close yet; got %v", sent)
	}
	f.receive(&batonv1.LeaseResponse{Acks: []*batonv1.ResultAck{{JobId: "job1", LeaseToken: "t1", Accepted: true}}})
	f.sent()
	if !f.halfClosed {
		t.Fatal("not half-closed once everything was acknowledged")
	}
}

func TestADrainTheBrokerNeverEndsIsCutAfterItsDeadline(t *testing.T) {
	handler, _ := blocking()
	h := newHarness(t, handlers(handler), 2)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"))
	f.receive(&batonv1.LeaseResponse{Drain: &batonv1.Drain{Deadline: durpb(2 * time.Second)}})
	h.advance(2999 * time.Millisecond)
	f.tick()
	if f.cancelled {
		t.Fatal("cut too early")
	}
	h.advance(time.Millisecond)
	f.tick()
	if !f.cancelled {
		t.Fatal("not cut after deadline + 1 s")
	}
}

func TestAStreamEndDropsItsJobsAndTheNextStreamCountsThemAsHeld(t *testing.T) {
	handler, jobs := blocking()
	h := newHarness(t, handlers(handler), 3)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"), assignment(2, "{}"))
	f.end()
	g := h.connect(time.Second)
	if n := credits(g.tick()); n != 1 {
		t.Fatalf("credits %d, want 1: two handlers of the old stream still run", n)
	}
	h.runAll()
	if (*jobs)[0].StopReason() != StopLeaseLost {
		t.Fatalf("stop reason %q", (*jobs)[0].StopReason())
	}
	sent := g.tick()
	if len(results(sent)) != 0 || credits(sent) != 2 {
		t.Fatalf("want no result on the new stream and two credits, got %v", sent)
	}
}

func TestMessagesOfAnEndedStreamAreIgnored(t *testing.T) {
	h := newHarness(t, handlers(echo), 3)
	f := h.connect(time.Second)
	f.tick()
	f.end()
	f.assign(assignment(1, "{}"))
	if len(h.pending) != 0 {
		t.Fatal("a job of an ended stream ran")
	}
}

// Closing (section 18)

func TestCloseWaitsForRunningHandlersThenHalfCloses(t *testing.T) {
	h := newHarness(t, handlers(echo), 3)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"))
	h.engine.close(30 * time.Second)
	if sent := f.tick(); len(sent) != 0 {
		t.Fatalf("closing: no credits, the handler still has time; sent %v", sent)
	}
	h.runAll()
	sent := f.tick()
	if len(results(sent)) != 1 || credits(sent) != 0 || !f.halfClosed {
		t.Fatalf("want the result, no credit, a half-close; got %v", sent)
	}
	if _, done := h.engine.tick(); done {
		t.Fatal("done before the broker ended the stream")
	}
	f.end()
	if _, done := h.engine.tick(); !done {
		t.Fatal("not done after the stream ended")
	}
}

func TestCloseStopsHandlersThatOutliveTheTimeout(t *testing.T) {
	handler, jobs := blocking()
	h := newHarness(t, handlers(handler), 3)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, "{}"))
	h.engine.close(2 * time.Second)
	h.advance(2 * time.Second)
	sent := f.tick()
	if r := results(sent)["job1"]; r == nil || r.Failure.Message != "worker closed before the job finished" || !f.halfClosed {
		t.Fatalf("got %v, half-closed %v", sent, f.halfClosed)
	}
	h.runAll()
	if (*jobs)[0].StopReason() != StopWorkerClosing {
		t.Fatalf("stop reason %q", (*jobs)[0].StopReason())
	}
}

func TestCloseCutsAStreamTheBrokerDoesNotEnd(t *testing.T) {
	h := newHarness(t, handlers(echo), 3)
	f := h.connect(time.Second)
	f.tick()
	h.engine.close(time.Second)
	f.tick()
	if !f.halfClosed || f.cancelled {
		t.Fatal("want a half-close first")
	}
	h.advance(closeGrace)
	f.tick()
	if !f.cancelled || h.engine.closePhase != closeHalfClosed {
		t.Fatalf("want the call cancelled after %v (phase %v)", closeGrace, h.engine.closePhase)
	}
	f.end()
	if _, done := h.engine.tick(); !done {
		t.Fatal("not done")
	}
}

func TestCloseWithoutAStreamFinishesAtOnce(t *testing.T) {
	h := newHarness(t, handlers(echo), 3)
	h.engine.close(time.Second)
	h.engine.close(time.Second) // twice is fine
	if _, done := h.engine.tick(); !done {
		t.Fatal("not done")
	}
}

// What handlers see

func TestTheJobCarriesTheAssignment(t *testing.T) {
	var job *Job
	h := newHarness(t, handlers(func(ctx context.Context, j *Job) (any, error) { job = j; return nil, nil }), 3)
	f := h.connect(time.Second)
	f.tick()
	a := withTimeout(assignment(7, `{"a": 1}`), 1500*time.Millisecond)
	a.Attempt, a.Labels, a.Traceparent, a.Priority = 2, map[string]string{"team": "ops"}, "00-abc-def-01", 5
	f.assign(a)
	h.runAll()
	if job.ID != "job7" || job.Queue != "q" || job.Attempt != 2 || job.MaxAttempts != 3 || job.Priority != 5 ||
		job.Labels["team"] != "ops" || job.Traceparent != "00-abc-def-01" || job.Timeout != 1500*time.Millisecond ||
		job.WorkerID != "w1" || string(job.Payload) != `{"a": 1}` || job.StopReason() != "" {
		t.Fatalf("job %+v", job)
	}
	if v := decode(t, job.Payload); !reflect.DeepEqual(v, map[string]any{"a": 1.0}) {
		t.Fatalf("payload %v", v)
	}
}

func TestBackoffIsFullJitterCapped(t *testing.T) {
	top := func(n int64) int64 { return n - 1 } // the largest delay the draw allows
	var got []time.Duration
	for failures := 0; failures < 6; failures++ {
		got = append(got, backoffDelay(failures, 100*time.Millisecond, time.Second, top))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if d := backoffDelay(10000, 100*time.Millisecond, 10*time.Second, top); d != 10*time.Second {
		t.Fatalf("a huge failure count: %v", d)
	}
	if d := backoffDelay(3, 100*time.Millisecond, 10*time.Second, func(int64) int64 { return 0 }); d != 0 {
		t.Fatalf("the smallest draw: %v", d)
	}
}
