package worker

// Snooze (docs/protocol.md, section 7): a handler's Snooze(d) goes out as JobResult.snooze, with the
// retryable failure a broker older than snooze would record instead.

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestASnoozeGoesOutWithItsDelayAndAFallbackFailure(t *testing.T) {
	h := newHarness(t, handlers(Typed(func(ctx context.Context, job *Job, p struct{ Ms float64 }) (any, error) {
		// Wrapped, as a handler may: the snooze is found all the same.
		return nil, fmt.Errorf("not yet: %w", Snooze(time.Duration(p.Ms*float64(time.Millisecond))))
	})), 2)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, `{"Ms": 200}`))
	f.assign(assignment(2, `{"Ms": 0.1}`))
	h.runAll()
	sent := results(f.tick())
	if d := sent["job1"].GetSnooze().GetDelay().AsDuration(); d != 200*time.Millisecond {
		t.Fatalf("snooze delay %v", d)
	}
	failure := sent["job1"].GetFailure()
	if failure.GetMessage() != "snoozed for 200 ms" || failure.GetNonRetryable() || failure.GetRetryAfter().AsDuration() != 200*time.Millisecond {
		t.Fatalf("fallback failure %v", failure)
	}
	// Rounded up: a delay the broker would refuse as 0 is never sent.
	if d := sent["job2"].GetSnooze().GetDelay().AsDuration(); d != time.Millisecond {
		t.Fatalf("rounded delay %v", d)
	}
}

func TestASnoozeTheBrokerWouldRefuseFailsTheAttempt(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second, 365*24*time.Hour + 1} {
		if _, ok := Snooze(d).(*snooze); ok {
			t.Fatalf("Snooze(%v) was accepted", d)
		}
	}
	h := newHarness(t, handlers(func(ctx context.Context, job *Job) (any, error) { return nil, Snooze(0) }), 1)
	f := h.connect(time.Second)
	f.tick()
	f.assign(assignment(1, `{}`))
	h.runAll()
	sent := results(f.tick())["job1"]
	if sent.GetSnooze() != nil || sent.GetFailure().GetNonRetryable() || sent.GetFailure().GetMessage() == "" {
		t.Fatalf("sent %v", sent)
	}
}
