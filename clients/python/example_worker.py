#!/usr/bin/python3
"""A Baton worker for the two seed queues, in Python.

    /usr/bin/python3 clients/python/example_worker.py

Environment: BATON_ADDRESS (default localhost:7700), BATON_TOKEN (API key, if the broker requires
one), BATON_CONCURRENCY (default 10).

    fibonacci  {"n": 303}   -> {"n": 303, "value": "<decimal>"}  (a string: JSON has no big integers)
    sleep      {"ms": 2000} -> {"sleptMs": 2000}                  (reports progress, honours cancel)
"""

import logging
import os
import sys
import time
from typing import Any

from baton import JobContext, NonRetryableError, Worker

if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)  # F(100000) has 20,899 digits


def fibonacci(payload: Any, job: JobContext) -> Any:
    n = payload.get("n") if isinstance(payload, dict) else None
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 100_000:
        raise NonRetryableError(f"fibonacci: n must be an integer 0..100000, got {n!r}")
    a, b = 0, 1
    for i in range(n):
        a, b = b, a + b
        if i % 5_000 == 4_999:
            job.check()  # stops here once the job is cancelled or timed out
    return {"n": n, "value": str(a)}


def sleep(payload: Any, job: JobContext) -> Any:
    ms = payload.get("ms") if isinstance(payload, dict) else None
    if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not 0 <= ms <= 3_600_000:
        raise NonRetryableError(f"sleep: ms must be a number 0..3600000, got {ms!r}")
    started = time.monotonic()
    while (left := ms / 1000 - (time.monotonic() - started)) > 0:
        job.sleep(min(left, 0.5))  # raises JobStopped as soon as the job is cancelled
        job.progress({"sleptMs": min(ms, int((time.monotonic() - started) * 1000)), "totalMs": ms})
    return {"sleptMs": ms}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    worker = Worker(
        {"fibonacci": fibonacci, "sleep": sleep},
        concurrency=int(os.environ.get("BATON_CONCURRENCY", "10")),
    )
    logging.info(
        "worker %s serving %s with concurrency %d at %s",
        worker.worker_id, ", ".join(worker.queues), worker.concurrency, worker.address,
    )
    worker.run()  # until SIGINT/SIGTERM: finishes running jobs, then returns
    logging.info("worker closed")
