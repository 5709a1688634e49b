// One port for every client: gRPC (HTTP/2 only), Connect and gRPC-Web (HTTP/2 or
// HTTP/1.1), curl, browsers and, later, /metrics.
//
// Node ignores `allowHTTP1` on cleartext HTTP/2 servers, so without TLS there is no
// ALPN to pick the protocol. Instead a plain net.Server reads the first bytes of each
// connection: the HTTP/2 client preface goes to an h2c server, anything else to an
// HTTP/1.1 server, by handing the socket over with `emit('connection')` after putting
// the bytes back. With TLS, ALPN does the split and one secure HTTP/2 server with
// `allowHTTP1` serves both.
//
// close() exists because HTTP/2 clients keep sessions open indefinitely: a plain
// server.close() would wait for them forever (and hang tests). So every socket and
// session is tracked, asked to finish politely, then destroyed after a grace period.

import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';

/** A Node request handler for HTTP/1.1 and HTTP/2 alike, such as `connectNodeAdapter(...)` returns. */
export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

export interface TlsOptions {
  /** PEM certificate chain and private key of the server. */
  cert: string | Buffer;
  key: string | Buffer;
  /** PEM CA bundle that client certificates are verified against (mutual TLS). */
  ca?: string | Buffer;
  /**
   * Ask clients for a certificate. Clients without a valid one still connect; the
   * outcome is `req.socket.authorized`, so auth code can decide per method.
   * @defaultValue false
   */
  requestClientCert?: boolean;
  /** Refuse the TLS handshake without a client certificate signed by `ca`. @defaultValue false */
  requireClientCert?: boolean;
}

export interface MainPortOptions {
  host: string;
  /** 0 picks a free port; the real one is returned. */
  port: number;
  handler: RequestHandler;
  tls?: TlsOptions;
  /**
   * A cleartext connection that has not sent enough bytes to pick a protocol
   * within this time is dropped, so idle sockets cannot pile up.
   * @defaultValue 10_000
   */
  sniffTimeoutMs?: number;
  /** Concurrent HTTP/2 streams allowed per connection. @defaultValue 1000 */
  maxStreamsPerConnection?: number;
}

export interface MainPort {
  port: number;
  /** The bound IP address, e.g. "127.0.0.1". */
  address: string;
  /** Base URL for clients, e.g. "http://127.0.0.1:50051". */
  url: string;
  /**
   * Stops accepting, lets in-flight requests and streams finish for up to `graceMs`,
   * then destroys whatever is left. Long-lived streams (Watch, Lease) must be ended
   * by their owners within the grace period to finish cleanly. Safe to call twice.
   * @param graceMs @defaultValue 5_000
   */
  close(graceMs?: number): Promise<void>;
}

// RFC 9113 §3.4: every HTTP/2 connection starts with exactly these 24 bytes.
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export async function startMainPort(opts: MainPortOptions): Promise<MainPort> {
  const sockets = new Set<net.Socket>(); // every accepted TCP connection
  const sniffing = new Set<net.Socket>(); // not yet handed to a protocol server
  const sessions = new Set<http2.ServerHttp2Session>();
  // HTTP/1.1 connections → responses in flight on them; idle ones can be dropped at once.
  const h1Busy = new Map<net.Socket, number>();
  let closing: Promise<void> | undefined;

  // HTTP/1.1 requests are tracked so close() can tell idle keep-alive sockets
  // (drop now) from busy ones (end after the response).
  const handler: RequestHandler = (req, res) => {
    if (req.httpVersionMajor === 1 && res instanceof http.ServerResponse) {
      const socket = req.socket;
      const busy = h1Busy.get(socket);
      if (busy === undefined) socket.once('close', () => h1Busy.delete(socket));
      h1Busy.set(socket, (busy ?? 0) + 1);
      if (closing) res.shouldKeepAlive = false;
      res.once('close', () => {
        const left = h1Busy.get(socket);
        if (left === undefined) return; // socket already gone
        h1Busy.set(socket, left - 1);
        if (closing && left === 1) socket.end();
      });
    }
    opts.handler(req, res);
  };

  // Streams one connection may hold open at once: each Lease or Watch stream is one, so one client
  // cannot tie up the broker's memory with unbounded streams.
  const settings: http2.Settings = { maxConcurrentStreams: opts.maxStreamsPerConnection ?? 1000 };
  const h2 = opts.tls
    ? http2.createSecureServer(
        {
          allowHTTP1: true,
          cert: opts.tls.cert,
          key: opts.tls.key,
          ca: opts.tls.ca,
          requestCert: Boolean(opts.tls.requestClientCert || opts.tls.requireClientCert),
          rejectUnauthorized: Boolean(opts.tls.requireClientCert),
          settings,
        },
        handler,
      )
    : http2.createServer({ settings }, handler);
  h2.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    if (closing) session.close();
  });

  // With TLS the secure server listens itself; cleartext needs the sniffing front.
  let front: net.Server;
  if (opts.tls) {
    front = h2;
  } else {
    // h1 never listens itself, so Node's headersTimeout/requestTimeout checker (started
    // on 'listening') does not run for it; the sniff timeout and keepAliveTimeout do.
    const h1 = http.createServer(handler);
    front = net.createServer((socket) =>
      sniff(socket, (isH2) => {
        if (isH2) {
          h2.emit('connection', socket);
        } else {
          h1.emit('connection', socket);
          // The HTTP/1.1 parser reads the socket's handle natively and would never
          // see the bytes put back; resuming flushes them through its 'data' path.
          socket.resume();
        }
      }),
    );
  }
  front.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const sniffTimeoutMs = opts.sniffTimeoutMs ?? 10_000;
  function sniff(socket: net.Socket, route: (isH2: boolean) => void): void {
    sniffing.add(socket);
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), sniffTimeoutMs);
    const onError = (): void => {
      socket.destroy();
    };
    const finish = (): void => {
      clearTimeout(timer);
      sniffing.delete(socket);
      socket.off('data', onData).off('error', onError).off('close', finish);
    };
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const isPrefix = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isPrefix && n < PREFACE.length) return; // a split preface: wait for the rest
      finish();
      // Put the bytes back: http2 reads a socket's buffered bytes before its handle
      // (nodejs/node#34532); HTTP/1.1 needs the resume() in route().
      socket.pause();
      socket.unshift(seen);
      route(isPrefix);
    };
    socket.on('data', onData).on('error', onError).on('close', finish);
  }

  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen({ host: opts.host, port: opts.port }, () => {
      front.off('error', reject);
      resolve();
    });
  });
  const bound = front.address() as net.AddressInfo;
  const hostForUrl = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;

  async function shutdown(graceMs: number): Promise<void> {
    const stopped = new Promise<void>((resolve) => front.close(() => resolve()));
    for (const socket of sniffing) socket.destroy();
    for (const session of sessions) session.close(); // GOAWAY: no new streams, open ones finish
    for (const [socket, busy] of h1Busy) if (busy === 0) socket.destroy();
    const drained = Promise.all([...sockets].map((s) => s.destroyed || new Promise((r) => s.once('close', r))));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
    await stopped;
  }

  return {
    port: bound.port,
    address: bound.address,
    url: `${opts.tls ? 'https' : 'http'}://${hostForUrl}:${bound.port}`,
    close(graceMs = 5_000) {
      closing ??= shutdown(graceMs);
      return closing;
    },
  };
}
