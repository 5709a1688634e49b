package worker

// The sending side: one goroutine per stream writes (grpc-go streams allow one writer), one clock
// goroutine per worker decides what goes out and when.

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// sender is the only goroutine that writes to a stream (grpc-go streams allow one writer).
func (w *Worker) sender(s *session) {
	for range s.outWake {
		w.mu.Lock()
		msgs, closeSend, ended := s.outq, s.outClose, s.ended
		s.outq = nil
		w.mu.Unlock()
		for _, m := range msgs {
			if err := s.stream.Send(m); err != nil {
				break // the stream is over; Recv reports why
			}
		}
		if closeSend {
			_ = s.stream.CloseSend()
		}
		if closeSend || ended {
			return
		}
	}
}

func (s *session) send(m *batonv1.LeaseRequest) {
	s.outq = append(s.outq, m)
	signal(s.outWake)
}

func (s *session) halfClose() {
	s.ending = true
	s.outClose = true
	signal(s.outWake)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// flush sends queued results, progress, a due heartbeat and the credits free slots allow, as one message.
func (w *Worker) flush(now time.Time) {
	s := w.session
	if s == nil || s.ended || s.ending || !s.welcomed {
		return
	}
	msg := &batonv1.LeaseRequest{}
	send := false
	if len(s.results) > 0 {
		msg.Results = s.results
		for _, r := range s.results {
			s.unacked[r.LeaseToken] = true
			if h := w.held[r.LeaseToken]; h != nil {
				h.phase = "sent"
				if h.settled {
					delete(w.held, h.token)
				}
			}
		}
		s.results = nil
		send = true
	}
	if len(s.progress) > 0 {
		for _, p := range s.progress {
			msg.Progress = append(msg.Progress, p)
		}
		s.progress = map[string]*batonv1.JobProgress{}
		send = true
	}
	if !now.Before(s.nextHeartbeat) {
		// Present even with no tokens: it is what renews the session.
		msg.Heartbeat = &batonv1.Heartbeat{LeaseTokens: w.tokens(s)}
		s.nextHeartbeat = now.Add(s.every)
		send = true
	}
	if !s.draining && !w.closing {
		if grant := w.opts.Concurrency - len(w.held) - s.credit; grant > 0 {
			msg.Credits = int32(grant)
			s.credit += grant
			send = true
		}
	}
	if send {
		s.send(msg)
	}
	w.maybeHalfClose(s)
}

// clock is the goroutine that decides what to send and when: flushes, heartbeats, timeouts,
// backstops and the steps of a graceful close.
func (w *Worker) clock(done <-chan struct{}) {
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		w.mu.Lock()
		now := time.Now()
		for _, h := range w.held {
			if h.phase == "running" && !now.Before(h.deadline) {
				w.timeOut(h)
			}
		}
		s := w.session
		if s != nil && s.draining && !s.ended && !now.Before(s.drainBackstop) {
			s.cancel()
		}
		if w.closing {
			w.closeStep(now)
		}
		w.flush(now)
		next := now.Add(time.Second)
		if s := w.session; s != nil {
			next = earliest(next, s.nextHeartbeat, s.drainBackstop)
		}
		for _, h := range w.held {
			if h.phase == "running" {
				next = earliest(next, h.deadline)
			}
		}
		if w.closing {
			next = earliest(next, w.closeUntil)
		}
		w.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(maxDuration(0, time.Until(next)))
		select {
		case <-w.kick:
		case <-timer.C:
		case <-done:
			return
		}
	}
}

// closeStep advances a graceful close; w.mu is held.
func (w *Worker) closeStep(now time.Time) {
	s := w.session
	switch w.closePhase {
	case 1:
		running := false
		for _, h := range w.held {
			running = running || !h.settled
		}
		if running && now.Before(w.closeUntil) {
			return
		}
		for _, h := range w.held {
			if !h.settled {
				w.stopJob(h, "worker closing")
				if h.phase == "running" {
					w.report(h, failureResult(errors.New("worker closed before the job finished")))
				}
			}
		}
		w.flush(now)
		if s != nil && !s.ended && !s.ending {
			s.halfClose()
		}
		w.closePhase, w.closeSent = 2, now
	case 2: // wait for the broker to acknowledge and end the stream, 5 s at most
		if s != nil && !s.ended && now.Sub(w.closeSent) > 5*time.Second {
			s.cancel()
		}
	}
}

func describe(err error) error {
	if st, ok := status.FromError(err); ok {
		return fmt.Errorf("%s: %s", st.Code(), st.Message())
	}
	return err
}

func durationProto(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func earliest(t time.Time, others ...time.Time) time.Time {
	for _, o := range others {
		if o.Before(t) {
			t = o
		}
	}
	return t
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
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
