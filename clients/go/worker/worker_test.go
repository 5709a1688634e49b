package worker

// Worker.Run against an in-process gRPC broker (bufconn): the connection, the stream glue, the
// sender goroutine and reconnecting. Waits are on channels, each with a deadline; no sleeps.

import (
	"context"
	"io"
	"log"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"

	batonv1 "baton/clients/go/gen/baton/v1"
)

// fakeBroker serves Lease with a function of the test's.
type fakeBroker struct {
	batonv1.UnimplementedBrokerServer
	lease func(batonv1.Broker_LeaseServer) error
}

func (b *fakeBroker) Lease(stream batonv1.Broker_LeaseServer) error { return b.lease(stream) }

// startBroker serves b over an in-memory listener and returns dial options that reach it, and
// the number of connections the client made.
func startBroker(t *testing.T, b *fakeBroker) ([]grpc.DialOption, *int32) {
	listener := bufconn.Listen(1 << 20)
	server := grpc.NewServer()
	batonv1.RegisterBrokerServer(server, b)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	var dials int32
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		atomic.AddInt32(&dials, 1)
		return listener.Dial()
	}
	return []grpc.DialOption{grpc.WithContextDialer(dialer)}, &dials
}

// within fails the test unless ch yields before the deadline.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func welcome() *batonv1.LeaseResponse {
	// An hour between heartbeats: none gets in the way of the exchange.
	return &batonv1.LeaseResponse{Welcome: &batonv1.Welcome{SessionId: "s", BrokerId: "b", ProtocolVersion: 1,
		HeartbeatInterval: durationpb.New(time.Hour)}}
}

func newTestWorker(t *testing.T, dialOptions []grpc.DialOption) *Worker {
	w, err := New(Options{Address: "bufnet", Token: "k", Handlers: map[string]Handler{"q": echo}, Concurrency: 2,
		WorkerID: "w1", ReconnectInitial: time.Millisecond, ReconnectMax: 5 * time.Millisecond,
		Logger: log.New(io.Discard, "", 0), DialOptions: dialOptions})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestRunLeasesRunsAndReportsAJob(t *testing.T) {
	results := make(chan *batonv1.JobResult, 1)
	tokens := make(chan []string, 1)
	dialOptions, _ := startBroker(t, &fakeBroker{lease: func(stream batonv1.Broker_LeaseServer) error {
		md, _ := metadata.FromIncomingContext(stream.Context())
		select {
		case tokens <- md.Get("authorization"):
		default:
		}
		hello, err := stream.Recv()
		if err != nil || hello.Hello == nil || hello.Hello.Capacity != 2 {
			return err
		}
		_ = stream.Send(welcome())
		credits, err := stream.Recv()
		if err != nil || credits.Credits != 2 {
			return err
		}
		_ = stream.Send(&batonv1.LeaseResponse{Jobs: []*batonv1.JobAssignment{assignment(1, `{"x": 1}`)}})
		for {
			m, err := stream.Recv()
			if err != nil {
				return err
			}
			for _, r := range m.Results {
				_ = stream.Send(&batonv1.LeaseResponse{Acks: []*batonv1.ResultAck{{JobId: r.JobId, LeaseToken: r.LeaseToken, Accepted: true}}})
				results <- r
			}
		}
	}})
	w := newTestWorker(t, dialOptions)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	r := within(t, results, "the result")
	if r.JobId != "job1" || r.LeaseToken != "t1" || string(r.ResultJson) != `{"got":{"x":1},"attempt":1}` {
		t.Fatalf("result %v", r)
	}
	if got := within(t, tokens, "the metadata"); len(got) != 1 || got[0] != "Bearer k" {
		t.Fatalf("authorization %v", got)
	}
	cancel() // a graceful close: half-close, the broker ends the stream
	if err := within(t, ran, "Run to return"); err != nil {
		t.Fatal(err)
	}
}

func TestRunReconnectsOverOneConnection(t *testing.T) {
	opened := make(chan struct{}, 100)
	dialOptions, dials := startBroker(t, &fakeBroker{lease: func(stream batonv1.Broker_LeaseServer) error {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		_ = stream.Send(welcome())
		opened <- struct{}{}
		return nil // the broker ends the stream (as after a drain): the worker opens the next one
	}})
	w := newTestWorker(t, dialOptions)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	for i := 0; i < 5; i++ {
		within(t, opened, "the next stream")
	}
	cancel()
	if err := within(t, ran, "Run to return"); err != nil {
		t.Fatal(err)
	}
	if n := atomic.LoadInt32(dials); n != 1 {
		t.Fatalf("%d connections for 5 streams, want 1", n)
	}
}
