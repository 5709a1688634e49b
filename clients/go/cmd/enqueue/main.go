// Command enqueue stores a job with the producer client and optionally waits for it to finish.
//
//	clients/go/bin/enqueue [-wait] fibonacci '{"n": 303}'
//	clients/go/bin/enqueue -count 1000 -concurrency 50 fibonacci '{"n": 30}'
//
// It prints the job's id and status; with -wait, the finished job as JSON (exit status 1 unless it
// completed). With -count, that many jobs with the payload, from -concurrency goroutines at once
// (the client sends the calls made together in few RPCs), and one line for them all. Environment: BATON_ADDRESS (default localhost:7700), BATON_TOKEN (API key, if the
// broker requires one).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"baton/clients/go/client"
)

func main() {
	wait := flag.Bool("wait", false, "wait for the job to finish and print it")
	count := flag.Int("count", 1, "how many jobs to enqueue with the payload")
	concurrency := flag.Int("concurrency", 1, "goroutines enqueueing at once (with -count)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: enqueue [-wait | -count N [-concurrency C]] <queue> <payload JSON>")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 || !json.Valid([]byte(flag.Arg(1))) || *count < 1 || *concurrency < 1 || (*wait && *count > 1) {
		flag.Usage()
		os.Exit(2)
	}
	c, err := client.New(client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The payload goes as the JSON text given, digit for digit (docs/encoding.md).
	payload := json.RawMessage(flag.Arg(1))
	if *count > 1 {
		enqueueMany(ctx, c, flag.Arg(0), payload, *count, *concurrency)
		return
	}
	enqueued, err := c.Enqueue(ctx, flag.Arg(0), payload, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("enqueued job %s on %s: %s\n", enqueued.ID, enqueued.Queue, enqueued.Status)
	if !*wait {
		return
	}
	job := &enqueued.Job
	// Watch reports the job's state, then each change until it is terminal.
	if err := c.Watch(ctx, enqueued.ID, func(j *client.Job) error { job = j; return nil }); err != nil {
		log.Fatal(err)
	}
	out, err := json.MarshalIndent(job, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out))
	if job.Status != client.StatusCompleted {
		os.Exit(1)
	}
}

// enqueueMany stores count jobs from concurrency goroutines, each calling Enqueue in turn, and
// prints how many were stored and how long it took; the first error ends the command.
func enqueueMany(ctx context.Context, c *client.Client, queue string, payload json.RawMessage, count, concurrency int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	start := time.Now()
	for g := 0; g < concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(count) {
				if _, err := c.Enqueue(ctx, queue, payload, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		log.Fatal(err)
	}
	elapsed := time.Since(start)
	fmt.Printf("enqueued %d jobs on %s in %.2f s (%.0f jobs/s)\n", count, queue, elapsed.Seconds(), float64(count)/elapsed.Seconds())
}
