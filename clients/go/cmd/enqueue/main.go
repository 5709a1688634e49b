// Command enqueue stores a job with the generated Go client and optionally waits for its result.
//
//	clients/go/bin/enqueue [-wait] fibonacci '{"n": 303}'
//
// Environment: BATON_ADDRESS (default localhost:7700), BATON_TOKEN (API key, if the broker requires one).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	batonv1 "baton/clients/go/gen/baton/v1"
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
	address := os.Getenv("BATON_ADDRESS")
	if address == "" {
		address = "localhost:7700"
	}
	conn, err := grpc.Dial(address, grpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	broker := batonv1.NewBrokerClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if token := os.Getenv("BATON_TOKEN"); token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	// payload_json: JSON text as bytes, stored as is (see docs/encoding.md).
	res, err := broker.Enqueue(ctx, &batonv1.EnqueueRequest{Queue: flag.Arg(0), PayloadJson: []byte(flag.Arg(1))})
	if err != nil {
		log.Fatal(err)
	}
	job := res.Job
	fmt.Printf("enqueued job %s on %s: %s\n", job.Id, job.Queue, job.Status)
	if !*wait {
		return
	}
	// Watch streams the job's state until it is terminal.
	stream, err := broker.Watch(ctx, &batonv1.WatchRequest{Id: job.Id})
	if err != nil {
		log.Fatal(err)
	}
	for {
		change, err := stream.Recv()
		if err != nil {
			log.Fatal(err)
		}
		job = change.Job
		if job.Status == batonv1.JobStatus_JOB_STATUS_COMPLETED || job.Status == batonv1.JobStatus_JOB_STATUS_FAILED ||
			job.Status == batonv1.JobStatus_JOB_STATUS_CANCELLED {
			break
		}
	}
	fmt.Println(protojson.Format(job))
	if job.Status != batonv1.JobStatus_JOB_STATUS_COMPLETED {
		os.Exit(1)
	}
}
