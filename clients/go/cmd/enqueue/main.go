// Command enqueue stores a job with the producer client and optionally waits for it to finish.
//
//	clients/go/bin/enqueue [-wait] fibonacci '{"n": 303}'
//
// It prints the job's id and status; with -wait, the finished job as JSON (exit status 1 unless it
// completed). Environment: BATON_ADDRESS (default localhost:7700), BATON_TOKEN (API key, if the
// broker requires one).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"baton/clients/go/client"
)

func main() {
	wait := flag.Bool("wait", false, "wait for the job to finish and print it")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: enqueue [-wait] <queue> <payload JSON>")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 || !json.Valid([]byte(flag.Arg(1))) {
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
	enqueued, err := c.Enqueue(ctx, flag.Arg(0), json.RawMessage(flag.Arg(1)), nil)
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
