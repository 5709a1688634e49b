// Command example-worker serves the two seed queues with the Go worker library.
//
//	clients/go/build.sh && BATON_CONCURRENCY=10 clients/go/bin/example-worker
//
// Environment: BATON_ADDRESS (default localhost:7700), BATON_TOKEN (API key, if the broker requires
// one), BATON_CONCURRENCY (default 10).
//
//	fibonacci  {"n": 303}   -> {"n": 303, "value": "<decimal>"}  (a string: JSON has no big integers)
//	sleep      {"ms": 2000} -> {"sleptMs": 2000}                  (reports progress, honours cancel)
package main

import (
	"context"
	"fmt"
	"log"
	"math/big"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"baton/clients/go/worker"
)

type fibPayload struct {
	N *float64 `json:"n"`
}

type fibResult struct {
	N     int    `json:"n"`
	Value string `json:"value"` // a string: JSON has no big integers
}

func fibonacci(ctx context.Context, job *worker.Job, p fibPayload) (fibResult, error) {
	if p.N == nil || *p.N != float64(int(*p.N)) || *p.N < 0 || *p.N > 100000 {
		return fibResult{}, worker.NonRetryable(fmt.Errorf("fibonacci: n must be an integer 0..100000, got %s", job.Payload))
	}
	n := int(*p.N)
	a, b := big.NewInt(0), big.NewInt(1)
	for i := 0; i < n; i++ {
		a.Add(a, b)
		a, b = b, a
		if i%5000 == 4999 && ctx.Err() != nil {
			return fibResult{}, ctx.Err() // cancelled or timed out: the outcome is already reported
		}
	}
	return fibResult{N: n, Value: a.String()}, nil
}

type sleepPayload struct {
	Ms *float64 `json:"ms"`
}

type sleepProgress struct {
	SleptMs int64 `json:"sleptMs"`
	TotalMs int64 `json:"totalMs"`
}

type sleepResult struct {
	SleptMs float64 `json:"sleptMs"`
}

func sleep(ctx context.Context, job *worker.Job, p sleepPayload) (sleepResult, error) {
	if p.Ms == nil || *p.Ms < 0 || *p.Ms > 3600000 {
		return sleepResult{}, worker.NonRetryable(fmt.Errorf("sleep: ms must be a number 0..3600000, got %s", job.Payload))
	}
	total := time.Duration(*p.Ms * float64(time.Millisecond))
	started := time.Now()
	for left := total; left > 0; left = total - time.Since(started) {
		step := left
		if step > 500*time.Millisecond {
			step = 500 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return sleepResult{}, ctx.Err()
		case <-time.After(step):
		}
		slept := time.Since(started)
		if slept > total {
			slept = total
		}
		_ = job.Progress(sleepProgress{SleptMs: slept.Milliseconds(), TotalMs: total.Milliseconds()})
	}
	return sleepResult{SleptMs: *p.Ms}, nil
}

func main() {
	concurrency := 10
	if v := os.Getenv("BATON_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			log.Fatalf("BATON_CONCURRENCY must be a whole number, got %q", v)
		}
		concurrency = n
	}
	w, err := worker.New(worker.Options{
		Handlers:    map[string]worker.Handler{"fibonacci": worker.Typed(fibonacci), "sleep": worker.Typed(sleep)},
		Concurrency: concurrency,
	})
	if err != nil {
		log.Fatal(err)
	}
	// SIGINT/SIGTERM: finish running jobs, report them, then exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("worker %s serving fibonacci, sleep with concurrency %d", w.WorkerID(), concurrency)
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
	log.Print("worker closed")
}
