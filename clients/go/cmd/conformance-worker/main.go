// Command conformance-worker is the Go implementation of the conformance handler
// (test/conformance/README.md has the contract).
//
// Environment: BATON_ADDRESS, BATON_QUEUE (default "conformance"), CAPACITY (default 4), WORKER_ID,
// CONFORMANCE_LOG (NDJSON file of handler starts and ends; optional).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"baton/clients/go/worker"
)

type payload struct {
	Action       string          `json:"action"`
	Value        json.RawMessage `json:"value"`
	Message      string          `json:"message"`
	Times        *int32          `json:"times"`
	RetryAfterMs int64           `json:"retry_after_ms"`
	Ms           int64           `json:"ms"`
}

// result is what every action that succeeds returns: {"value": V}.
type result struct {
	Value json.RawMessage `json:"value"`
}

var logMu sync.Mutex

// record appends one line to the handler log, written whole and at once.
func record(entry map[string]any) {
	path := os.Getenv("CONFORMANCE_LOG")
	if path == "" {
		return
	}
	entry["t"] = time.Now().UnixMilli()
	line, _ := json.Marshal(entry)
	logMu.Lock()
	defer logMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		log.Printf("conformance log: %v", err)
		return
	}
	defer f.Close()
	_, _ = f.Write(append(line, '\n'))
}

func conformance(ctx context.Context, job *worker.Job, p payload) (res result, err error) {
	record(map[string]any{"event": "start", "id": job.ID, "attempt": job.Attempt})
	stopped := false
	defer func() {
		record(map[string]any{"event": "end", "id": job.ID, "attempt": job.Attempt, "stopped": stopped})
	}()
	switch p.Action {
	case "succeed":
		return result{p.Value}, nil
	case "fail":
		times := int32(1)
		if p.Times != nil {
			times = *p.Times
		}
		if job.Attempt <= times {
			message := p.Message
			if message == "" {
				message = "planned failure"
			}
			if p.RetryAfterMs > 0 {
				return res, worker.RetryAfter(errors.New(message), time.Duration(p.RetryAfterMs)*time.Millisecond)
			}
			return res, errors.New(message)
		}
		return result{p.Value}, nil
	case "fail_permanently":
		message := p.Message
		if message == "" {
			message = "permanent failure"
		}
		return res, worker.NonRetryable(errors.New(message))
	case "snooze":
		// The broker counts the snoozes in this label; the attempt number stays the same.
		times := int32(1)
		if p.Times != nil {
			times = *p.Times
		}
		if snoozes, _ := strconv.Atoi(job.Labels["baton.snoozes"]); int32(snoozes) < times {
			return res, worker.Snooze(time.Duration(p.Ms) * time.Millisecond)
		}
		return result{p.Value}, nil
	case "sleep":
		select {
		case <-ctx.Done():
			stopped = true
			return res, fmt.Errorf("stopped: %s", job.StopReason())
		case <-time.After(time.Duration(p.Ms) * time.Millisecond):
			return result{p.Value}, nil
		}
	default:
		return res, worker.NonRetryable(fmt.Errorf("unknown action %q", p.Action))
	}
}

func main() {
	capacity := 4
	if v := os.Getenv("CAPACITY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			log.Fatalf("CAPACITY must be a whole number, got %q", v)
		}
		capacity = n
	}
	queue := os.Getenv("BATON_QUEUE")
	if queue == "" {
		queue = "conformance"
	}
	w, err := worker.New(worker.Options{
		Handlers:     map[string]worker.Handler{queue: worker.Typed(conformance)},
		Concurrency:  capacity,
		WorkerID:     os.Getenv("WORKER_ID"),
		ReconnectMax: time.Second,
		CloseTimeout: 5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
