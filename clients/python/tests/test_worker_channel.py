"""The Worker keeps its gRPC channel while the connection serves: a Lease stream the broker ends is
reopened on the same channel, so on the same connection. A broker in this process on a loopback
port (grpcio's server) ends every stream right after its Welcome; the streams' peer addresses (the
worker's side of the TCP connection) must all be one (they were three, a channel per stream, before)."""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Iterator, List

import grpc

from baton import Worker
from baton.v1 import broker_pb2_grpc, lease_pb2

STREAMS = 3


class EndingBroker(broker_pb2_grpc.BrokerServicer):
    """Welcomes each Lease stream, then ends it; notes who opened it."""

    def __init__(self) -> None:
        self.peers: List[str] = []
        self.enough = threading.Event()
        self._lock = threading.Lock()

    def Lease(
        self, request_iterator: Iterator[lease_pb2.LeaseRequest], context: grpc.ServicerContext
    ) -> Iterator[lease_pb2.LeaseResponse]:
        hello = next(request_iterator)
        assert hello.HasField("hello")
        with self._lock:
            self.peers.append(context.peer())
            if len(self.peers) >= STREAMS:
                self.enough.set()
        yield lease_pb2.LeaseResponse(welcome=lease_pb2.Welcome(session_id=f"s{len(self.peers)}", protocol_version=1))


def test_a_lease_stream_that_ends_is_reopened_on_the_same_channel() -> None:
    broker = EndingBroker()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    broker_pb2_grpc.add_BrokerServicer_to_server(broker, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    worker = Worker({"q": lambda payload, ctx: None}, address=f"127.0.0.1:{port}", reconnect_initial=0.01, reconnect_max=0.05)
    running = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False})
    running.start()
    try:
        assert broker.enough.wait(timeout=10), f"only {len(broker.peers)} streams"
    finally:
        worker.close(timeout=1)
        running.join(timeout=10)
        server.stop(grace=None)
    assert not running.is_alive()
    assert len(broker.peers) >= STREAMS
    assert len(set(broker.peers)) == 1, broker.peers
