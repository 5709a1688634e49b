#!/usr/bin/python3
"""The Python implementation of the conformance handler (test/conformance/README.md has the contract).

Environment: BATON_ADDRESS, BATON_QUEUE (default "conformance"), CAPACITY (default 4),
WORKER_ID, CONFORMANCE_LOG (NDJSON file of handler starts and ends; optional).

    /usr/bin/python3 clients/python/conformance_worker.py
"""

import json
import logging
import os
import threading
import time
from typing import Any

from baton import JobContext, NonRetryableError, RetryAfterError, Snooze, Worker

LOG = os.environ.get("CONFORMANCE_LOG")
_log_lock = threading.Lock()


def record(**entry: Any) -> None:
    if not LOG:
        return
    line = json.dumps({"t": int(time.time() * 1000), **entry}) + "\n"
    with _log_lock, open(LOG, "a") as f:
        f.write(line)
        f.flush()


def conformance(payload: Any, job: JobContext) -> Any:
    record(event="start", id=job.id, attempt=job.attempt)
    stopped = False
    try:
        action = payload.get("action") if isinstance(payload, dict) else None
        if action == "succeed":
            return {"value": payload.get("value")}
        if action == "fail":
            if job.attempt <= payload.get("times", 1):
                message = payload.get("message", "planned failure")
                if payload.get("retry_after_ms"):
                    raise RetryAfterError(message, payload["retry_after_ms"] / 1000)
                raise RuntimeError(message)
            return {"value": payload.get("value")}
        if action == "fail_permanently":
            raise NonRetryableError(payload.get("message", "permanent failure"))
        if action == "snooze":
            # The broker counts the snoozes in this label; the attempt number stays the same.
            if int(job.labels.get("baton.snoozes", "0")) < payload.get("times", 1):
                raise Snooze(payload.get("ms", 0) / 1000)
            return {"value": payload.get("value")}
        if action == "sleep":
            stopped = job.cancelled.wait(payload.get("ms", 0) / 1000)
            job.check()
            return {"value": payload.get("value")}
        raise NonRetryableError(f"unknown action {action!r}")
    finally:
        record(event="end", id=job.id, attempt=job.attempt, stopped=stopped)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    Worker(
        {os.environ.get("BATON_QUEUE", "conformance"): conformance},
        concurrency=int(os.environ.get("CAPACITY", "4")),
        worker_id=os.environ.get("WORKER_ID") or None,
        reconnect_max=1.0,
    ).run()
