package worker

// The sending side: flush decides what goes out (results, progress, a due heartbeat, credits) as
// one message; the stream's outbox holds it until the sender goroutine, the only writer of the
// stream (grpc-go streams allow one), writes it.

import (
	batonv1 "baton/clients/go/gen/baton/v1"
)

// send queues a message for the sender goroutine; e.mu is held (or the stream is not shared yet).
func (s *leaseStream) send(m *batonv1.LeaseRequest) {
	s.outbox = append(s.outbox, m)
	signal(s.wake)
}

// halfClose queues the end of our side of the stream; e.mu is held.
func (s *leaseStream) halfClose() {
	s.ending = true
	s.closeSend = true
	signal(s.wake)
}

// takeOutbox hands what is queued to the writer: the messages, whether to half-close after them,
// and whether the stream has ended (the writer then stops).
func (e *engine) takeOutbox(s *leaseStream) (messages []*batonv1.LeaseRequest, closeSend, ended bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	messages, s.outbox = s.outbox, nil
	return messages, s.closeSend, s.ended
}

// sender is the goroutine that writes a stream's outbox to it, until it half-closes or the stream
// ends.
func (e *engine) sender(s *leaseStream, stream batonv1.Broker_LeaseClient) {
	for range s.wake {
		messages, closeSend, ended := e.takeOutbox(s)
		for _, m := range messages {
			if err := stream.Send(m); err != nil {
				break // the stream is over; Recv reports why
			}
		}
		if closeSend {
			_ = stream.CloseSend()
		}
		if closeSend || ended {
			return
		}
	}
}

// flush sends queued results, progress, a due heartbeat and the credits free slots allow, as one
// message; e.mu is held.
func (e *engine) flush() {
	s := e.stream
	if s == nil || s.ended || s.ending || !s.welcomed {
		return
	}
	now := e.now()
	msg := &batonv1.LeaseRequest{}
	send := false
	if len(s.results) > 0 {
		msg.Results = s.results
		for _, r := range s.results {
			s.unacked[r.LeaseToken] = true
			if h := e.held[r.LeaseToken]; h != nil {
				h.phase = phaseSent
				if h.settled {
					delete(e.held, h.token)
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
		msg.Heartbeat = &batonv1.Heartbeat{LeaseTokens: e.tokens(s)}
		s.nextHeartbeat = now.Add(s.every)
		send = true
	}
	if !s.draining && e.closePhase == closeOpen {
		// The invariant of section 5: held + outstanding credit <= capacity.
		if grant := e.capacity - len(e.held) - s.credit; grant > 0 {
			msg.Credits = int32(grant)
			s.credit += grant
			send = true
		}
	}
	if send {
		s.send(msg)
	}
	e.maybeHalfClose(s)
}

// signal wakes whoever waits on ch, without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
