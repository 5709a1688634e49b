#!/usr/bin/python3
"""Enqueue a job from Python with the generated stubs, and optionally wait for its result.

    /usr/bin/python3 clients/python/enqueue.py fibonacci '{"n": 303}' --wait

Environment: BATON_ADDRESS (default localhost:7700), BATON_TOKEN (API key, if the broker requires one).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

from baton.v1 import broker_pb2, broker_pb2_grpc, job_pb2  # noqa: E402

TERMINAL = {job_pb2.JOB_STATUS_COMPLETED, job_pb2.JOB_STATUS_FAILED, job_pb2.JOB_STATUS_CANCELLED}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("queue")
    parser.add_argument("payload", help="the payload as JSON text")
    parser.add_argument("--wait", action="store_true", help="wait for the job to finish and print it")
    args = parser.parse_args()
    json.loads(args.payload)  # fail here, not at the broker, on bad JSON

    channel = grpc.insecure_channel(os.environ.get("BATON_ADDRESS", "localhost:7700"))
    broker = broker_pb2_grpc.BrokerStub(channel)
    token = os.environ.get("BATON_TOKEN")
    metadata = [("authorization", f"Bearer {token}")] if token else None
    # payload_json: JSON text as bytes, stored as is (see docs/encoding.md).
    request = broker_pb2.EnqueueRequest(queue=args.queue, payload_json=args.payload.encode())
    job = broker.Enqueue(request, metadata=metadata).job
    print(f"enqueued job {job.id} on {job.queue}: {job_pb2.JobStatus.Name(job.status)}")
    if args.wait:
        # Watch streams the job's state until it is terminal.
        for change in broker.Watch(broker_pb2.WatchRequest(id=job.id), metadata=metadata):
            job = change.job
            if job.status in TERMINAL:
                break
        print(json.dumps(_whole_numbers(json_format.MessageToDict(job)), indent=2))
        return 0 if job.status == job_pb2.JOB_STATUS_COMPLETED else 1
    return 0


def _whole_numbers(value):
    """google.protobuf.Value holds every number as a double; show 303.0 as 303."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
