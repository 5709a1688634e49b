"""Where the brokers are and how to reach them: the one place that knows the gRPC channel options,
TLS and the API key, shared by Worker and Client."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import grpc

DEFAULT_ADDRESS = "localhost:7700"
#: One broker message may carry many jobs of up to max_payload_bytes each: grpc's default of 4 MiB
#: is too little (docs/protocol.md, section 1).
MAX_RECEIVE_BYTES = 64 * 1024 * 1024

ChannelOption = Tuple[str, Any]
Metadata = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class Connection:
    """How to open channels to the brokers.

    ``address`` is any gRPC target (``host:port``, ``dns:name:port``,
    ``ipv4:10.0.0.1:7700,10.0.0.2:7700``; several addresses are used round robin); default
    ``$BATON_ADDRESS``, else localhost:7700. ``token`` (default ``$BATON_TOKEN``) goes out as
    ``authorization: Bearer <token>``. ``credentials`` (e.g. ``grpc.ssl_channel_credentials(ca_pem)``)
    switches to TLS; default cleartext. ``options`` are added to the channel options.
    """

    address: str
    token: Optional[str]
    credentials: Optional[grpc.ChannelCredentials]
    options: Tuple[ChannelOption, ...]

    @classmethod
    def of(
        cls,
        address: Optional[str] = None,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        options: Optional[Sequence[ChannelOption]] = None,
    ) -> "Connection":
        return cls(
            address=address or os.environ.get("BATON_ADDRESS") or DEFAULT_ADDRESS,
            token=token or os.environ.get("BATON_TOKEN") or None,
            credentials=credentials,
            options=tuple(options or ()),
        )

    @property
    def metadata(self) -> Optional[Metadata]:
        """The call metadata: the API key, when there is one."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else None

    def open(self, own_subchannels: bool = False) -> grpc.Channel:
        """A new channel. ``own_subchannels`` keeps its connections out of grpc-core's process-wide
        pool, so that a new channel does not inherit the reconnect backoff of an old one."""
        options: List[ChannelOption] = [
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
        ]
        if own_subchannels:
            options.append(("grpc.use_local_subchannel_pool", 1))
        if "," in self.address:
            options.append(("grpc.lb_policy_name", "round_robin"))
        options += list(self.options)
        if self.credentials is not None:
            return grpc.secure_channel(self.address, self.credentials, options=options)
        return grpc.insecure_channel(self.address, options=options)
