#!/usr/bin/python3
"""Enqueue a job with the producer Client, and optionally wait for it to finish.

    /usr/bin/python3 clients/python/enqueue.py fibonacci '{"n": 303}' --wait
    /usr/bin/python3 clients/python/enqueue.py fibonacci '{"n": 30}' --count 1000 --concurrency 50

Prints the job's id and status; with --wait, the finished job as JSON (exit status 1 unless it
COMPLETED). With --count, that many jobs with the payload, from --concurrency threads at once (the
Client sends the calls made together in few RPCs), and one line for them all. Environment: BATON_ADDRESS (default localhost:7700), BATON_TOKEN (API key, if the
broker requires one).
"""

import argparse
import dataclasses
import enum
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from baton import Client, Job, JobStatus


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("queue")
    parser.add_argument("payload", help="the payload as JSON text")
    parser.add_argument("--wait", action="store_true", help="wait for the job to finish and print it")
    parser.add_argument("--count", type=int, default=1, help="how many jobs to enqueue with the payload")
    parser.add_argument("--concurrency", type=int, default=1, help="threads enqueueing at once (with --count)")
    args = parser.parse_args()
    if args.count < 1 or args.concurrency < 1:
        parser.error("--count and --concurrency must be at least 1")
    if args.wait and args.count > 1:
        parser.error("--wait waits for one job: leave out --count")
    try:
        payload = json.loads(args.payload)  # fail here, not at the broker, on bad JSON
    except ValueError as e:
        parser.error(f"payload: {e}")

    with Client() as client:
        if args.count > 1:
            start = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                # list() so that the first error, if any, is raised here
                list(pool.map(lambda _: client.enqueue(args.queue, payload), range(args.count)))
            elapsed = time.monotonic() - start
            print(f"enqueued {args.count} jobs on {args.queue} in {elapsed:.2f} s ({args.count / elapsed:.0f} jobs/s)")
            return 0
        enqueued = client.enqueue(args.queue, payload)
        print(f"enqueued job {enqueued.id} on {enqueued.queue}: {enqueued.status.name}")
        if not args.wait:
            return 0
        job: Job = enqueued
        for job in client.watch(enqueued.id):  # the current state, then each change until terminal
            pass
        print(json.dumps(_plain(job), indent=2))
        return 0 if job.status is JobStatus.COMPLETED else 1


def _plain(value: Any) -> Any:
    """A Job as JSON-friendly values: enums by name, datetimes in ISO 8601, no empty fields."""
    if dataclasses.is_dataclass(value):
        fields = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {k: v for k, v in fields.items() if not (v is None or v is False or v == [] or v == {})}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    sys.exit(main())
