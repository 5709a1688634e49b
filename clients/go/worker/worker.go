// Package worker is the Baton worker library for Go: it leases jobs over the Lease protocol
// (docs/protocol.md) and runs their handlers, Concurrency at a time: hello, credits (never more
// jobs in hand than Concurrency + Prefetch), heartbeats at the broker's interval, results batched
// into as few messages as possible, cancel notices, per-job timeouts, drain, and reconnecting with
// exponential backoff and full jitter over one gRPC connection.
//
//	w, err := worker.New(worker.Options{Handlers: map[string]worker.Handler{"fibonacci": fib}})
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	err = w.Run(ctx) // until ctx is done; then finishes running jobs and returns
package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	batonv1 "baton/clients/go/gen/baton/v1"
	"baton/clients/go/internal/dial"
)

// Options configure a Worker.
type Options struct {
	// Address is a gRPC target: host:port, dns:///name:port, ...; default $BATON_ADDRESS or localhost:7700.
	Address string
	// Token is sent as "authorization: Bearer <token>" to brokers that require API keys; default $BATON_TOKEN.
	Token string
	// TLS, when set, connects with TLS (its RootCAs, and Certificates for mutual TLS); default cleartext.
	TLS *tls.Config
	// Handlers by queue: the queues served.
	Handlers map[string]Handler
	// Concurrency is the most handlers run at once, 1..100000; default 10.
	Concurrency int
	// Prefetch is how many jobs are leased ahead, beyond Concurrency, so that the next ones are
	// already here when a handler frees up instead of a round trip to the broker later. A
	// prefetched job is leased from its delivery: its attempt has begun, heartbeats renew it, and
	// its timeout runs from then, while it waits. Worth it for many short jobs; leave it at 0 for
	// long ones with timeouts. On close and on a drain, waiting jobs go back to the queue unstarted.
	// Hello.capacity is Concurrency + Prefetch, at most 100000; default 0.
	Prefetch int
	// WorkerID names this process for operators; default host:pid.
	WorkerID string
	// Reconnect delays are uniform in [0, min(ReconnectMax, ReconnectInitial*2^failures)];
	// defaults 100 ms and 10 s.
	ReconnectInitial, ReconnectMax time.Duration
	// CloseTimeout is how long a graceful close waits for running handlers; default 30 s.
	CloseTimeout time.Duration
	// Logger; default log.New(os.Stderr, "baton: ", log.LstdFlags).
	Logger *log.Logger
	// DialOptions are added to the defaults (cleartext or TLS, keepalive, receive limit).
	DialOptions []grpc.DialOption
}

// Worker leases jobs of the queues it has handlers for and runs them.
type Worker struct {
	opts   Options
	engine *engine
	stop   chan struct{} // closed by Close: wakes a reconnect wait
}

// New checks the options and returns a Worker; Run connects.
func New(opts Options) (*Worker, error) {
	if len(opts.Handlers) == 0 {
		return nil, errors.New("worker: Handlers must name at least one queue")
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 10
	}
	if opts.Concurrency < 1 || opts.Concurrency > 100000 {
		return nil, fmt.Errorf("worker: Concurrency must be 1..100000, got %d", opts.Concurrency)
	}
	if opts.Prefetch < 0 || opts.Prefetch > 100000-opts.Concurrency {
		return nil, fmt.Errorf("worker: Prefetch must be 0..%d, got %d", 100000-opts.Concurrency, opts.Prefetch)
	}
	if opts.WorkerID == "" {
		host, _ := os.Hostname()
		opts.WorkerID = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if opts.ReconnectInitial <= 0 {
		opts.ReconnectInitial = 100 * time.Millisecond
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = 10 * time.Second
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = log.New(os.Stderr, "baton: ", log.LstdFlags)
	}
	spawn := func(f func()) { go f() }
	return &Worker{
		opts:   opts,
		engine: newEngine(opts.Handlers, opts.Concurrency, opts.Prefetch, opts.WorkerID, opts.Logger, time.Now, spawn),
		stop:   make(chan struct{}),
	}, nil
}

// WorkerID is the id sent in Hello.
func (w *Worker) WorkerID() string { return w.opts.WorkerID }

// Run connects and works until ctx is done or Close is called, then closes gracefully: no new jobs,
// running handlers get CloseTimeout to finish, results are sent and acknowledged. It returns once
// the worker is closed (nil), or at once with the error if the connection cannot be set up.
//
// One connection serves every Lease stream of the worker; after a stream ends the worker waits a
// jittered delay, resets the connection's own reconnect backoff, and opens the next stream on it.
func (w *Worker) Run(ctx context.Context) error {
	conn, err := dial.Dial(dial.Options{Address: w.opts.Address, Token: w.opts.Token, TLS: w.opts.TLS,
		MaxReconnectDelay: w.opts.ReconnectMax, Extra: w.opts.DialOptions})
	if err != nil {
		return err
	}
	defer conn.Close()
	broker := batonv1.NewBrokerClient(conn)
	done := make(chan struct{})
	defer close(done)
	go w.engine.runClock(done)
	go func() {
		select {
		case <-ctx.Done():
			w.Close()
		case <-done:
		}
	}()
	lastError := ""
	for failures := 0; !w.engine.closing(); failures++ {
		// The delay below paces reconnects, not grpc-go's own backoff on top of it.
		conn.ResetConnectBackoff()
		welcomed, drained, err := w.serve(broker)
		if w.engine.closing() {
			break
		}
		if welcomed {
			failures = 0
			lastError = ""
		}
		switch {
		case err != nil && welcomed:
			w.opts.Logger.Printf("lease stream lost: %v; reconnecting", err)
		case err != nil && err.Error() == lastError:
			// The same failure again and again (a broker down for a while) is logged once.
		case err != nil:
			w.opts.Logger.Printf("lease stream failed: %v; reconnecting", err)
		case drained:
			w.opts.Logger.Printf("drained; reconnecting")
		default:
			w.opts.Logger.Printf("broker ended the lease stream; reconnecting")
		}
		if err != nil {
			lastError = err.Error()
		}
		select {
		case <-time.After(backoffDelay(failures, w.opts.ReconnectInitial, w.opts.ReconnectMax, rand.Int63n)):
		case <-w.stop:
		}
	}
	return nil
}

// Close starts a graceful close without waiting for it (Run returns when it is done). Safe to call
// more than once and from any goroutine.
func (w *Worker) Close() {
	w.engine.close(w.opts.CloseTimeout)
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
}

// serve runs one Lease stream from Hello to its end.
func (w *Worker) serve(broker batonv1.BrokerClient) (welcomed, drained bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := broker.Lease(ctx)
	if err != nil {
		return false, false, describe(err)
	}
	s := w.engine.openStream(cancel)
	go w.engine.sender(s, stream)
	for {
		res, rerr := stream.Recv()
		if rerr != nil {
			if rerr != io.EOF {
				err = describe(rerr)
			}
			break
		}
		w.engine.receive(s, res)
	}
	w.engine.endStream(s)
	w.engine.mu.Lock()
	defer w.engine.mu.Unlock()
	return s.welcomed, s.draining, err
}

// backoffDelay is the full-jitter reconnect delay: uniform in [0, min(max, initial*2^failures)].
// random(n) returns a number in [0, n).
func backoffDelay(failures int, initial, max time.Duration, random func(int64) int64) time.Duration {
	limit := initial << uint(minInt(failures, 30))
	if limit <= 0 || limit > max {
		limit = max
	}
	return time.Duration(random(int64(limit) + 1))
}

func describe(err error) error {
	if st, ok := status.FromError(err); ok {
		return fmt.Errorf("%s: %s", st.Code(), st.Message())
	}
	return err
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}
