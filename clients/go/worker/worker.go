// Package worker is a small Baton worker library for Go, on grpc-go and the stubs generated into
// clients/go/gen. It implements the worker side of the Lease protocol as docs/protocol.md specifies
// it: hello, credits (never more jobs in hand than Concurrency), heartbeats at the broker's
// interval, results batched into as few messages as possible, cancel notices, per-job timeouts,
// drain, and reconnecting with exponential backoff and full jitter.
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
	"log"
	"math/rand"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// ProtocolVersion is the Lease protocol version this library speaks.
const ProtocolVersion = 1

// SDKName is sent in Hello.
const SDKName = "baton-go/0.1.0"

const (
	defaultAddress   = "localhost:7700"
	defaultHeartbeat = 10 * time.Second
	defaultDrain     = 30 * time.Second
	never            = time.Duration(1<<63 - 1)
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
	// Concurrency is the most jobs held at once (the Hello capacity); default 10.
	Concurrency int
	// WorkerID names this process for operators; default host:pid.
	WorkerID string
	// Reconnect delays are uniform in [0, min(ReconnectMax, ReconnectInitial*2^failures)];
	// defaults 100 ms and 10 s.
	ReconnectInitial, ReconnectMax time.Duration
	// CloseTimeout is how long a graceful close waits for running handlers; default 30 s.
	CloseTimeout time.Duration
	// Logger; default log.New(os.Stderr, "baton: ", log.LstdFlags).
	Logger *log.Logger
	// DialOptions are added to the defaults (cleartext, keepalive, fast reconnect).
	DialOptions []grpc.DialOption
}

// Worker leases jobs of the queues it has handlers for and runs them.
type Worker struct {
	opts   Options
	queues []string
	logger *log.Logger

	mu         sync.Mutex
	held       map[string]*held
	session    *session
	closing    bool
	closeUntil time.Time
	closePhase int // 0 open, 1 waiting for handlers, 2 half-closed at closeSent
	closeSent  time.Time
	kick       chan struct{}
	stop       chan struct{}
	closeOnce  sync.Once
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
	if opts.Address == "" {
		opts.Address = os.Getenv("BATON_ADDRESS")
	}
	if opts.Address == "" {
		opts.Address = defaultAddress
	}
	if opts.Token == "" {
		opts.Token = os.Getenv("BATON_TOKEN")
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
	w := &Worker{opts: opts, logger: opts.Logger, held: map[string]*held{}, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	for q := range opts.Handlers {
		w.queues = append(w.queues, q)
	}
	return w, nil
}

// WorkerID is the id sent in Hello.
func (w *Worker) WorkerID() string { return w.opts.WorkerID }

// Run connects and works until ctx is done, then closes gracefully: no new jobs, running handlers
// get CloseTimeout to finish, results are sent and acknowledged. It returns once the worker is closed.
func (w *Worker) Run(ctx context.Context) error {
	transport := grpc.WithInsecure()
	if w.opts.TLS != nil {
		transport = grpc.WithTransportCredentials(credentials.NewTLS(w.opts.TLS))
	}
	dial := append([]grpc.DialOption{
		transport,
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: 5 * time.Second}),
		// One broker message may carry many jobs (up to the credit granted) of up to
		// max_payload_bytes each: 4 MiB, grpc's default, is too little.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
	}, w.opts.DialOptions...)
	done := make(chan struct{})
	defer close(done)
	go w.clock(done)
	go func() {
		select {
		case <-ctx.Done():
			w.Close()
		case <-done:
		}
	}()
	lastError := ""
	for failures := 0; !w.isClosing(); failures++ {
		// A fresh connection per attempt: the backoff below paces reconnects, and a long-lived
		// connection would add grpc's own reconnect backoff on top of it.
		var welcomed, drained bool
		conn, err := grpc.Dial(w.opts.Address, dial...)
		if err == nil {
			welcomed, drained, err = w.lease(batonv1.NewBrokerClient(conn))
			conn.Close()
		}
		if w.isClosing() {
			break
		}
		if welcomed {
			failures = 0
			lastError = ""
		}
		switch {
		case err != nil && welcomed:
			w.logger.Printf("lease stream lost: %v; reconnecting", err)
		case err != nil && err.Error() == lastError:
			// The same failure again and again (a broker down for a while) is logged once.
		case err != nil:
			w.logger.Printf("lease stream failed: %v; reconnecting", err)
		case drained:
			w.logger.Printf("drained; reconnecting")
		default:
			w.logger.Printf("broker ended the lease stream; reconnecting")
		}
		if err != nil {
			lastError = err.Error()
		}
		limit := w.opts.ReconnectInitial << uint(minInt(failures, 30))
		if limit <= 0 || limit > w.opts.ReconnectMax {
			limit = w.opts.ReconnectMax
		}
		select {
		case <-time.After(time.Duration(rand.Int63n(int64(limit) + 1))):
		case <-w.stop:
		}
	}
	return nil
}

// Close starts a graceful close without waiting for it (Run returns when it is done). Safe to call
// more than once and from any goroutine.
func (w *Worker) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		return
	}
	w.closing = true
	w.closeUntil = time.Now().Add(w.opts.CloseTimeout)
	w.closePhase = 1
	w.closeOnce.Do(func() { close(w.stop) })
	w.wake()
}

func (w *Worker) isClosing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closing
}

// wake asks the clock goroutine to flush; callers may hold w.mu.
func (w *Worker) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}
