"""The Worker: leases jobs of its queues over the Lease protocol (docs/protocol.md) and runs their
handlers on a thread pool, ``concurrency`` at a time. The protocol itself is in _engine.py; this
module adds configuration, the gRPC stream, the clock thread, reconnecting and closing."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple

import grpc

from ._backoff import backoff_delay
from ._channel import ChannelOption, Connection
from ._engine import LeaseEngine
from ._lease_state import LeaseStream, log
from .handler import Handler
from .v1 import broker_pb2_grpc, lease_pb2


class Worker:
    """Leases jobs of the queues named in ``handlers`` and runs them, ``concurrency`` at a time.

    ``prefetch`` jobs more are leased ahead, so that the next ones are already here when a handler
    frees up instead of a round trip to the broker later (RabbitMQ's prefetch, graphile-worker's
    local queue). A prefetched job is leased from its delivery: its attempt has begun, heartbeats
    renew it, and its timeout runs from then, while it waits. Worth it for many short jobs; leave it
    at 0 for long ones with timeouts. On close and on a drain, waiting jobs go back to the queue
    unstarted. Hello.capacity is ``concurrency + prefetch``.

    ``address``, ``token``, ``credentials`` and ``channel_options``: see ``Client``. ``worker_id``
    names this process for operators (default ``host:pid``). Reconnect delays are uniform in
    ``[0, min(reconnect_max, reconnect_initial * 2**failures)]`` seconds. ``close_timeout`` is how
    long a close on SIGINT/SIGTERM lets running handlers finish.

        Worker({"resize": resize}, concurrency=4).run()   # until SIGINT/SIGTERM
    """

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        address: Optional[str] = None,
        concurrency: int = 10,
        prefetch: int = 0,
        worker_id: Optional[str] = None,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        channel_options: Optional[Sequence[ChannelOption]] = None,
        reconnect_initial: float = 0.1,
        reconnect_max: float = 10.0,
        close_timeout: float = 30.0,
    ) -> None:
        if not handlers:
            raise ValueError("handlers must name at least one queue")
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 100_000:
            raise ValueError(f"concurrency must be an integer 1..100000, got {concurrency!r}")
        if not isinstance(prefetch, int) or isinstance(prefetch, bool) or not 0 <= prefetch <= 100_000 - concurrency:
            raise ValueError(f"prefetch must be an integer 0..{100_000 - concurrency}, got {prefetch!r}")
        if not 0 < reconnect_initial <= reconnect_max:
            raise ValueError("reconnect delays must satisfy 0 < reconnect_initial <= reconnect_max")
        self._connection = Connection.of(address, token, credentials, channel_options)
        self._reconnect = (reconnect_initial, reconnect_max)
        self._close_timeout = close_timeout
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="baton-job")
        self._engine = LeaseEngine(
            handlers, concurrency, worker_id or f"{socket.gethostname()}:{os.getpid()}", self._pool, prefetch=prefetch
        )
        #: Set by close(): wakes a reconnect wait.
        self._stopping = threading.Event()

    @property
    def address(self) -> str:
        return self._connection.address

    @property
    def worker_id(self) -> str:
        return self._engine.worker_id

    @property
    def queues(self) -> List[str]:
        return list(self._engine.queues)

    @property
    def concurrency(self) -> int:
        return self._engine.concurrency

    @property
    def prefetch(self) -> int:
        """Jobs leased ahead of a free handler, beyond ``concurrency``."""
        return self._engine.prefetch

    def run(self, install_signal_handlers: bool = True) -> None:
        """Connects and works until ``close()`` (or SIGINT/SIGTERM when ``install_signal_handlers``
        and called on the main thread), then returns once every job is reported."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                # close() takes a lock the interrupted code may hold: call it from another thread.
                signal.signal(sig, lambda *_: threading.Thread(target=self.close, daemon=True).start())
        clock = threading.Thread(target=self._engine.run_clock, name="baton-clock", daemon=True)
        clock.start()
        # One channel for as long as its connection serves: a Lease stream the broker ends is reopened
        # on it. After a drain (that broker is going away) or an error (the connection broke, or never
        # came up), the next attempt, paced by the backoff below, opens a fresh channel instead.
        # grpcio 1.51's channel, left to reconnect by itself, stayed in TRANSIENT_FAILURE with a
        # stale "connection refused" for 10 s and more after a broker restart (pick_first or
        # round_robin, reconnect backoff capped at 1 s), and a Lease reopened on a drained broker's
        # connection stalled as long; a fresh channel connects at once (the conformance kit's restart
        # and drain scenarios: 3 s against 11-22 s). grpcio has no ResetConnectBackoff as grpc-go
        # does. A fresh channel's connections stay out of grpc-core's process-wide pool, so that it
        # does not inherit the old one's backoff either.
        channel: Optional[grpc.Channel] = None
        try:
            failures = 0
            last_error: Optional[str] = None
            while not self._engine.closing:
                if channel is None:
                    channel = self._connection.open(own_subchannels=True)
                    stub = broker_pb2_grpc.BrokerStub(channel)
                welcomed, drained, error = self._serve(stub)
                if error or drained:
                    channel.close()
                    channel = None
                if self._engine.closing:
                    break
                if welcomed:
                    failures = 0
                    last_error = None
                if error:
                    # The same failure again and again (a broker down for a while) is logged once.
                    repeated = not welcomed and error == last_error
                    log.log(
                        logging.DEBUG if repeated else logging.WARNING,
                        "lease stream %s: %s; reconnecting",
                        "lost" if welcomed else "failed",
                        error,
                    )
                    last_error = error
                else:
                    log.info("%s; reconnecting", "drained" if drained else "broker ended the lease stream")
                self._stopping.wait(backoff_delay(failures, *self._reconnect))
                failures += 1
        finally:
            if channel is not None:
                channel.close()
            self._engine.shutdown()
            clock.join(timeout=2)
            self._pool.shutdown(wait=False)

    def close(self, timeout: Optional[float] = None) -> None:
        """Stops gracefully, without blocking: no new jobs; running handlers get ``timeout`` seconds
        (default ``close_timeout``) to finish, then they are told to stop and reported failed; results
        are sent and acknowledged; then ``run()`` returns. Thread-safe and idempotent; a signal handler
        should call it on another thread, as the ones ``run()`` installs do."""
        self._engine.close(self._close_timeout if timeout is None else timeout)
        self._stopping.set()

    def _serve(self, stub: broker_pb2_grpc.BrokerStub) -> Tuple[bool, bool, Optional[str]]:
        """One Lease stream from Hello to its end: (welcomed, drained, error)."""
        s: LeaseStream = self._engine.open_stream()

        def requests() -> Iterator[lease_pb2.LeaseRequest]:
            while True:
                message: Optional[lease_pb2.LeaseRequest] = s.requests.get()
                if message is None:
                    return  # half-close
                yield message

        error: Optional[str] = None
        try:
            call = stub.Lease(requests(), metadata=self._connection.metadata)
            s.cancel = call.cancel
            for response in call:
                self._engine.receive(s, response)
        except grpc.RpcError as e:
            error = f"{e.code().name}: {e.details()}" if isinstance(e, grpc.Call) else str(e)
        except Exception as e:  # a bug of ours must not lose the stream silently
            log.exception("lease stream handling failed")
            error = str(e)
            s.cancel()
        self._engine.end_stream(s)
        return s.welcomed, s.draining, error
