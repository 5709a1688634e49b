"""A small Baton worker library for Python, on grpcio and the stubs generated into ./gen.

It implements the worker side of the Lease protocol as docs/protocol.md specifies it: hello, credits
(never more jobs in hand than ``concurrency``), heartbeats at the broker's interval, results batched
into as few messages as possible, cancel notices, per-job timeouts, drain, and reconnecting with
exponential backoff and full jitter.

Handlers are plain functions ``handler(payload, job)`` run on a thread pool. Python cannot stop a
thread from outside, so cancellation is cooperative: ``job.cancelled`` is a ``threading.Event`` that is
set when the job is cancelled, times out, loses its lease or the worker closes; long handlers wait on
it (``job.sleep(seconds)``) or poll it (``job.check()``). The job's outcome is reported as soon as the
event is set; the handler's slot stays taken until it actually returns.

    from baton_worker import Worker

    def fibonacci(payload, job):
        ...
        return {"n": n, "value": str(value)}

    Worker({"fibonacci": fibonacci}, address="localhost:7700").run()  # until SIGINT/SIGTERM

The library is three modules, kept side by side (with ./gen): this one, the public API;
baton_job.py, what a handler sees; baton_lease.py, the protocol engine Worker runs on.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
from typing import Dict, List, Optional

import grpc

# baton_job first: importing it puts ./gen on sys.path, where baton.v1 is. Names not used here are
# imported so that baton_worker still offers everything it did as a single module.
from baton_job import Handler, Job, JobStopped, NonRetryableError, RetryAfterError, failure, success  # noqa: F401
from baton.v1 import broker_pb2_grpc
from baton_lease import DEFAULT_DRAIN_S, DEFAULT_HEARTBEAT_S, PROTOCOL_VERSION, SDK_NAME, LeaseEngine, log  # noqa: F401

__all__ = ["Worker", "Job", "Handler", "NonRetryableError", "RetryAfterError", "JobStopped", "PROTOCOL_VERSION"]

DEFAULT_ADDRESS = "localhost:7700"


class Worker(LeaseEngine):
    """Leases jobs of the queues named in ``handlers`` and runs them, ``concurrency`` at a time.

    ``address`` is any gRPC target (``host:port``, ``dns:name:port``, ``ipv4:10.0.0.1:7700,10.0.0.2:7700``);
    default ``$BATON_ADDRESS`` or localhost:7700. ``token`` (default ``$BATON_TOKEN``) is sent as
    ``authorization: Bearer <token>`` to brokers that require API keys; ``credentials`` (e.g.
    ``grpc.ssl_channel_credentials(ca_pem)``) switches to TLS. Reconnect delays are uniform in
    ``[0, min(reconnect_max, reconnect_initial * 2**failures)]`` seconds.
    """

    def __init__(
        self,
        handlers: Dict[str, Handler],
        address: Optional[str] = None,
        concurrency: int = 10,
        worker_id: Optional[str] = None,
        reconnect_initial: float = 0.1,
        reconnect_max: float = 10.0,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        channel_options: Optional[List[tuple]] = None,
    ):
        if not handlers:
            raise ValueError("handlers must name at least one queue")
        if not isinstance(concurrency, int) or not 1 <= concurrency <= 100_000:
            raise ValueError(f"concurrency must be an integer 1..100000, got {concurrency!r}")
        token = token or os.environ.get("BATON_TOKEN")
        super().__init__(
            handlers,
            concurrency,
            worker_id or f"{socket.gethostname()}:{os.getpid()}",
            [("authorization", f"Bearer {token}")] if token else None,
        )
        self.address = address or os.environ.get("BATON_ADDRESS") or DEFAULT_ADDRESS
        self._reconnect = (reconnect_initial, reconnect_max)
        self._credentials = credentials
        options = [
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # Each Lease attempt gets a channel of its own (see run()): sharing grpc-core's global
            # subchannel pool would bring back the old channel's reconnect backoff.
            ("grpc.use_local_subchannel_pool", 1),
            # One broker message may carry many jobs (up to the credit granted) of up to
            # max_payload_bytes each: 4 MiB, grpc's default, is too little.
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ]
        if "," in self.address:
            options.append(("grpc.lb_policy_name", "round_robin"))
        self._channel_options = options + list(channel_options or [])

    # ----------------------------------------------------------------------------------------------
    # Public API

    def run(self, install_signal_handlers: bool = True) -> None:
        """Connects and works until ``close()`` (or SIGINT/SIGTERM) and every job is reported."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                # close() takes a lock the interrupted code may hold: call it from another thread.
                signal.signal(sig, lambda *_: threading.Thread(target=self.close, daemon=True).start())
        clock = threading.Thread(target=self._clock, name="baton-clock", daemon=True)
        clock.start()
        try:
            failures = 0
            last_error = None
            while not self._closing:
                # A fresh channel per attempt: our backoff below paces reconnects. A long-lived channel
                # would add grpc-core's own reconnect backoff on top, which after a broker restart was
                # seen to keep a worker away for 10 s or more.
                if self._credentials is not None:
                    channel = grpc.secure_channel(self.address, self._credentials, options=self._channel_options)
                else:
                    channel = grpc.insecure_channel(self.address, options=self._channel_options)
                try:
                    welcomed, drained, error = self._lease(broker_pb2_grpc.BrokerStub(channel))
                finally:
                    channel.close()
                if self._closing:
                    break
                if welcomed:
                    failures = 0
                    last_error = None
                if error:
                    # The same failure again and again (a broker down for a while) is logged once.
                    repeated = not welcomed and error == last_error
                    level = logging.DEBUG if repeated else logging.WARNING
                    log.log(level, "lease stream %s: %s; reconnecting", "lost" if welcomed else "failed", error)
                    last_error = error
                else:
                    log.info("%s; reconnecting", "drained" if drained else "broker ended the lease stream")
                cap = min(self._reconnect[1], self._reconnect[0] * 2 ** min(failures, 30))
                self._stopped.wait(random.uniform(0, cap))
                failures += 1
        finally:
            with self._cond:
                self._stopped.set()
                self._cond.notify_all()
            clock.join(timeout=2)
            self._pool.shutdown(wait=False)

    def close(self, timeout: float = 30.0) -> None:
        """Stops gracefully, without blocking: no new jobs; running handlers get ``timeout`` seconds to
        finish (then they are told to stop and reported failed); results are sent and acknowledged;
        then ``run()`` returns. Thread-safe, and safe to call more than once; a signal handler should call
        it on another thread, as the ones ``run()`` installs do."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._close_deadline = time.monotonic() + timeout
            self._close_phase = "waiting"
            self._stopped.set()  # wakes a reconnect wait
            self._cond.notify_all()
