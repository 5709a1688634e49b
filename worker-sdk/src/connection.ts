// How the SDK reaches brokers: one grpc-js channel per Client or Worker, built from a few friendly
// options. grpc-js gives us HTTP/2 keepalive, reconnect with backoff and load balancing across
// several addresses; this module only turns our options into its target string, credentials and
// channel arguments.

import { credentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';

/** The broker's default port. */
export const DEFAULT_PORT = 7700;

/** The address used when none is given. */
export const DEFAULT_ADDRESS = `localhost:${DEFAULT_PORT}`;

/** Files for TLS: PEM text or bytes. */
export interface TlsOptions {
  /** CA certificates to trust; the system roots when omitted. */
  ca?: string | Buffer;
  /** Client certificate chain, for mutual TLS. */
  cert?: string | Buffer;
  /** Client private key, for mutual TLS. */
  key?: string | Buffer;
}

/** Options shared by Client and Worker for reaching the broker. */
export interface ConnectionOptions {
  /**
   * Where the brokers are. One `host:port`, a grpc-js target (`dns:brokers.internal:7700`,
   * `ipv4:10.0.0.1:7700,10.0.0.2:7700`, `unix:/run/baton.sock`), or a list of `ip:port` addresses to
   * balance across (`localhost` counts as 127.0.0.1 in a list). A port-less host gets 7700.
   * @defaultValue "localhost:7700"
   */
  address?: string | string[];
  /** Sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** `true` for TLS with the system roots, or the certificates to use. @defaultValue false (cleartext h2c) */
  tls?: boolean | TlsOptions;
  /**
   * How calls spread over several addresses: `round_robin` rotates (each new Lease stream lands on
   * the next broker), `pick_first` sticks to the first that answers and fails over.
   * @defaultValue "round_robin"
   */
  loadBalancing?: 'round_robin' | 'pick_first';
  /** HTTP/2 keepalive ping interval; a dead peer is noticed within this plus 10 s. @defaultValue 30000 */
  keepaliveMs?: number;
  /** Raw grpc-js channel arguments, applied last (they win). */
  channelOptions?: ChannelOptions;
}

const SCHEME = /^(dns|ipv4|ipv6|unix|unix-abstract|vsock):/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const HOST_ONLY = /^[A-Za-z0-9.-]+$/;

/** `host` → `host:7700`; anything with a port is left alone. */
function withPort(address: string): string {
  if (HOST_ONLY.test(address) || /^\[[^\]]+\]$/.test(address)) return `${address}:${DEFAULT_PORT}`;
  return address;
}

/**
 * Turns `address` into one grpc-js target. Several addresses must be IP literals, because grpc-js
 * resolves a list only through its `ipv4:`/`ipv6:` schemes; for host names use one DNS name with
 * several records (`dns:` resolves all of them and round_robin spreads across them).
 */
export function channelTarget(address: string | string[] = DEFAULT_ADDRESS): string {
  if (typeof address === 'string') {
    if (SCHEME.test(address)) return address;
    address = address.split(',');
  }
  const list = address.map((a) => a.trim()).filter((a) => a.length > 0);
  if (list.length === 0) throw new TypeError('address: at least one broker address is required');
  if (list.length === 1) return withPort(list[0]!);
  const hosts = list.map((a) => withPort(a.replace(/^localhost(?=:|$)/, '127.0.0.1')));
  if (hosts.every((h) => IPV4.test(h.slice(0, h.lastIndexOf(':'))))) return `ipv4:${hosts.join(',')}`;
  if (hosts.every((h) => h.startsWith('['))) return `ipv6:${hosts.join(',')}`;
  throw new TypeError(
    `address: a list of brokers must be all IPv4 or all IPv6 literals (got ${list.join(', ')}); ` +
      'for host names give one DNS name that resolves to every broker, e.g. dns:brokers.internal:7700',
  );
}

/** Cleartext unless `tls` says otherwise. */
export function channelCredentials(tls: ConnectionOptions['tls']): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  if (tls === true) return credentials.createSsl();
  const bytes = (v: string | Buffer | undefined): Buffer | null => (v === undefined ? null : Buffer.from(v));
  return credentials.createSsl(bytes(tls.ca), bytes(tls.key), bytes(tls.cert));
}

/**
 * Channel arguments: keepalive so that a broker that vanished without closing its socket is noticed,
 * a reconnect backoff that matches the Worker's own (100 ms → 10 s instead of grpc-js's 1 s → 120 s,
 * so a restarted broker is found again quickly), the load-balancing policy, and room for large
 * batches of jobs in one message.
 */
export function channelOptions(options: ConnectionOptions, userAgent: string): ChannelOptions {
  const policy = options.loadBalancing ?? 'round_robin';
  return {
    'grpc.keepalive_time_ms': options.keepaliveMs ?? 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 0,
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 10_000,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ [policy]: {} }] }),
    'grpc.primary_user_agent': userAgent,
    ...options.channelOptions,
  };
}
