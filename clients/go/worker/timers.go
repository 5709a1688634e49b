package worker

// Time: tick fires what is due (job timeouts, the drain backstop, the steps of a graceful close)
// and flushes; the clock goroutine runs it when something changed or a timer is due.

import (
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// A draining stream the broker has not ended this long after its deadline is cut.
	drainGrace = time.Second
	// How long a closing worker waits for the broker to end the stream after half-closing it.
	closeGrace = 5 * time.Second
	// The clock goroutine looks around at least this often.
	idleTick = time.Second
)

// closePhase is a step of a graceful close (docs/protocol.md, section 18).
type closePhase int

const (
	// closeOpen: not closing.
	closeOpen closePhase = iota
	// closeWaiting: no new credits; running handlers have until closeDeadline.
	closeWaiting
	// closeHalfClosed: outcomes sent and the stream half-closed; waiting closeGrace at most for the
	// broker to end it.
	closeHalfClosed
	// closeDone: nothing left to do.
	closeDone
)

func (p closePhase) String() string {
	return [...]string{"open", "waiting", "half-closed", "done"}[p]
}

// close starts a graceful close: no new credits; prefetched jobs not begun go back unstarted;
// running handlers get timeout, then they are told to stop and reported failed; then the stream is
// half-closed. Safe to call twice.
func (e *engine) close(timeout time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closePhase != closeOpen {
		return
	}
	e.closePhase = closeWaiting
	e.closeDeadline = e.now().Add(timeout)
	if e.stream != nil {
		e.returnWaiting(e.stream)
	}
	e.wake()
}

// closing reports whether close was called.
func (e *engine) closing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closePhase != closeOpen
}

// tick fires what is due and sends what is owed; it returns when to tick again (sooner if something
// changes), and done once a close has finished.
func (e *engine) tick() (next time.Time, done bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for _, h := range e.held {
		if h.phase == phaseRunning && !h.deadline.IsZero() && !now.Before(h.deadline) {
			e.timeOut(h)
		}
	}
	s := e.stream
	if s != nil && s.draining && !s.ended && !now.Before(s.drainBackstop) {
		s.cancel()
	}
	if e.closePhase != closeOpen && e.closeStep(now) {
		return time.Time{}, true
	}
	e.flush()
	next = now.Add(idleTick)
	if s := e.stream; s != nil {
		next = earliest(next, s.nextHeartbeat, s.drainBackstop)
	}
	for _, h := range e.held {
		if h.phase == phaseRunning {
			next = earliest(next, h.deadline)
		}
	}
	switch e.closePhase {
	case closeWaiting:
		next = earliest(next, e.closeDeadline)
	case closeHalfClosed:
		next = earliest(next, e.halfClosedAt.Add(closeGrace))
	}
	return next, false
}

// closeStep advances a graceful close; true once there is nothing left to do. e.mu is held.
func (e *engine) closeStep(now time.Time) bool {
	s := e.stream
	if e.closePhase == closeWaiting {
		running := false
		for _, h := range e.held {
			running = running || !h.settled
		}
		if running && now.Before(e.closeDeadline) {
			return false
		}
		for _, h := range e.held {
			if !h.settled {
				e.stopJob(h, StopWorkerClosing)
				if h.phase == phaseRunning {
					e.report(h, failureResult(errors.New("worker closed before the job finished")))
				}
			}
		}
		e.flush()
		if s != nil && !s.ended && !s.ending {
			s.halfClose()
		}
		e.closePhase, e.halfClosedAt = closeHalfClosed, now
	}
	if e.closePhase == closeHalfClosed {
		// Wait for the broker to acknowledge and end the stream, closeGrace at most.
		if s == nil || s.ended {
			e.closePhase = closeDone
			return true
		}
		if now.Sub(e.halfClosedAt) >= closeGrace {
			s.cancel()
		}
		return false
	}
	return e.closePhase == closeDone
}

// runClock is the clock goroutine: it ticks whenever something changed (kick) or a timer is due,
// until the close is done or stop is closed.
func (e *engine) runClock(stop <-chan struct{}) {
	timer := time.NewTimer(idleTick)
	defer timer.Stop()
	for {
		next, done := e.tick()
		if done {
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(maxDuration(0, next.Sub(e.now())))
		select {
		case <-e.kick:
		case <-timer.C:
		case <-stop:
			return
		}
	}
}

// earliest is the earliest of the non-zero times.
func earliest(t time.Time, others ...time.Time) time.Time {
	for _, o := range others {
		if !o.IsZero() && (t.IsZero() || o.Before(t)) {
			t = o
		}
	}
	return t
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

func durationProto(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
