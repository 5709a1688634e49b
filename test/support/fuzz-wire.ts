/**
 * The fuzz test's own clients, below any RPC library, so that bytes no library would send reach
 * the broker: gRPC over a raw HTTP/2 stream (node:http2), and the Connect protocol's JSON over
 * HTTP/1.1 (node:http). Both read the answer's status the way the protocol's spec says a client must.
 */
import http from 'node:http';
import http2 from 'node:http2';
import { status } from '@grpc/grpc-js';
import { envelope } from './fuzz-mutate.ts';

/** How a request ended, as a status code name (`INVALID_ARGUMENT`), or one of the fuzzer's own words. */
export interface WireOutcome {
  /**
   * A gRPC status name, or: OPEN, a stream still open when the fuzzer hung up (Watch of a queue, a
   * Lease stream); HANG, no answer in the time allowed; TRANSPORT, the connection itself failed.
   */
  code: string;
  message: string;
  /** Where the code was read: `grpc-status`, `http 404`, `connect` (error JSON), `end-stream`. */
  via: string;
  /** Response messages received before the end. */
  received: number;
}

/** A numeric gRPC status as its name. */
export function codeName(code: number): string {
  return status[code] ?? `CODE_${code}`;
}

/**
 * The status a client reads from an HTTP status when the answer carries none of its own: the
 * same table in the gRPC spec (doc/http-grpc-status-mapping.md) and the Connect protocol spec.
 */
export function codeFromHttp(status: number): string {
  if (status === 400) return 'INTERNAL';
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'UNIMPLEMENTED';
  if ([429, 502, 503, 504].includes(status)) return 'UNAVAILABLE';
  return 'UNKNOWN';
}

/** Splits gRPC/Connect envelopes; returns the complete ones. */
export function splitEnvelopes(bytes: Uint8Array): { flags: number; data: Uint8Array }[] {
  const out: { flags: number; data: Uint8Array }[] = [];
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at + 5 <= view.length) {
    const length = view.readUInt32BE(at + 1);
    if (at + 5 + length > view.length) break;
    out.push({ flags: view[at], data: view.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

function decodeGrpcMessage(raw: unknown): string {
  const text = String(raw ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export interface RawCallOptions {
  /** Extra request headers (grpc-encoding, …). */
  headers?: Record<string, string>;
  contentType?: string;
  /** The request body in pieces, written `gapMs` apart (a Lease stream's messages). */
  chunks: Buffer[];
  gapMs?: number;
  /** Keep the request side open this long after the last piece before ending it. */
  holdMs?: number;
  /** After ending the request side, hang up if the stream is still open after this long (OPEN). */
  openMs?: number;
  /** No answer within this long is a HANG. */
  timeoutMs: number;
}

/** gRPC over raw HTTP/2 streams, on a few shared connections. */
export class RawGrpc {
  readonly #url: string;
  readonly #sessions: (http2.ClientHttp2Session | null)[];
  #next = 0;
  /** Connections that failed or closed under the fuzzer (each one fails the streams on it). */
  sessionFailures: string[] = [];

  constructor(url: string, connections = 4) {
    this.#url = url;
    this.#sessions = new Array(connections).fill(null);
  }

  #session(): http2.ClientHttp2Session {
    const index = this.#next++ % this.#sessions.length;
    let session = this.#sessions[index];
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(this.#url);
      const opened = session;
      opened.on('error', (error) => this.sessionFailures.push(`session error: ${error.message}`));
      opened.on('goaway', (code) => {
        if (code !== 0) this.sessionFailures.push(`GOAWAY ${code}`);
      });
      this.#sessions[index] = opened;
    }
    return session;
  }

  call(path: string, options: RawCallOptions): Promise<WireOutcome> {
    return new Promise((resolve) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.#session().request({
          ':method': 'POST',
          ':path': path,
          'content-type': options.contentType ?? 'application/grpc',
          te: 'trailers',
          ...options.headers,
        });
      } catch (error) {
        resolve({ code: 'TRANSPORT', message: (error as Error).message, via: 'request', received: 0 });
        return;
      }
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const data: Buffer[] = [];
      let hungUp: 'OPEN' | 'HANG' | null = null;
      let streamError = '';
      const timers: NodeJS.Timeout[] = [];
      const later = (ms: number, fn: () => void) => timers.push(setTimeout(fn, ms));
      const hangUp = (as: 'OPEN' | 'HANG') => {
        if (stream.closed) return;
        hungUp = as;
        stream.close(http2.constants.NGHTTP2_CANCEL);
      };
      stream.on('response', (h) => (headers = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (chunk: Buffer) => data.push(chunk));
      stream.on('error', (error) => (streamError = error.message));
      stream.on('close', () => {
        for (const timer of timers) clearTimeout(timer);
        const received = splitEnvelopes(Buffer.concat(data)).length;
        const grpcStatus = trailers['grpc-status'] ?? headers['grpc-status'];
        const message = decodeGrpcMessage(trailers['grpc-message'] ?? headers['grpc-message']);
        const httpStatus = Number(headers[':status'] ?? 0);
        if (grpcStatus !== undefined) resolve({ code: codeName(Number(grpcStatus)), message, via: 'grpc-status', received });
        else if (hungUp) resolve({ code: hungUp, message: '', via: 'fuzzer', received });
        else if (httpStatus && httpStatus !== 200)
          resolve({ code: codeFromHttp(httpStatus), message: Buffer.concat(data).toString('utf8').slice(0, 200), via: `http ${httpStatus}`, received });
        else resolve({ code: 'TRANSPORT', message: streamError || `stream closed without a status (rst ${stream.rstCode})`, via: 'stream', received });
      });
      stream.on('end', () => undefined);
      stream.resume();

      later(options.timeoutMs, () => hangUp('HANG'));
      const finish = () => {
        if (stream.closed) return;
        const end = () => {
          if (!stream.closed) stream.end();
          if (options.openMs !== undefined) later(options.openMs, () => hangUp('OPEN'));
        };
        if (options.holdMs) later(options.holdMs, end);
        else end();
      };
      const gap = options.gapMs ?? 0;
      const chunks = options.chunks;
      if (gap === 0 || chunks.length <= 1) {
        if (chunks.length) stream.write(Buffer.concat(chunks));
        finish();
      } else {
        chunks.forEach((chunk, i) =>
          later(i * gap, () => {
            if (!stream.closed) stream.write(chunk);
            if (i === chunks.length - 1) finish();
          }),
        );
      }
    });
  }

  close(): void {
    for (const session of this.#sessions) session?.destroy();
  }
}

export interface ConnectCallOptions {
  /** Server-streaming or bidi: an enveloped body, application/connect+json. */
  streaming: boolean;
  /** Streams: hang up if still open after this long (OPEN). */
  openMs?: number;
  timeoutMs: number;
}

/**
 * The Connect protocol's JSON over HTTP/1.1, with keep-alive connections (node:http: a few times
 * cheaper per request than fetch, which matters at thousands of requests on two cores).
 */
export class ConnectJson {
  readonly #url: URL;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(baseUrl: string) {
    this.#url = new URL(baseUrl);
  }

  call(path: string, body: Uint8Array, options: ConnectCallOptions): Promise<WireOutcome> {
    return new Promise((resolve) => {
      let hungUp: 'OPEN' | 'HANG' | null = null;
      let answer: WireOutcome | null = null;
      let failure = '';
      const timers: NodeJS.Timeout[] = [];
      const payload = options.streaming ? envelope(body) : Buffer.from(body);
      const request = http.request({
        host: this.#url.hostname,
        port: this.#url.port,
        path,
        method: 'POST',
        agent: this.#agent,
        headers: {
          'content-type': options.streaming ? 'application/connect+json' : 'application/json',
          'connect-protocol-version': '1',
          'content-length': payload.length,
        },
      });
      const hangUp = (as: 'OPEN' | 'HANG') => {
        if (answer) return;
        hungUp = as;
        request.destroy();
      };
      timers.push(setTimeout(() => hangUp('HANG'), options.timeoutMs));
      if (options.streaming && options.openMs !== undefined) timers.push(setTimeout(() => hangUp('OPEN'), options.openMs));
      request.on('error', (error) => (failure ||= error.message));
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => (failure ||= error.message));
        response.on('end', () => {
          try {
            answer = readConnectAnswer(response.statusCode ?? 0, String(response.headers['content-type'] ?? ''), Buffer.concat(chunks), options.streaming);
          } catch (error) {
            answer = { code: 'TRANSPORT', message: `unreadable answer: ${(error as Error).message}`, via: `http ${response.statusCode}`, received: 0 };
          }
        });
      });
      // 'close' comes last whatever happened: answered, hung up on, or failed.
      request.on('close', () => {
        for (const timer of timers) clearTimeout(timer);
        resolve(
          answer ??
            (hungUp
              ? { code: hungUp, message: '', via: 'fuzzer', received: 0 }
              : { code: 'TRANSPORT', message: failure || 'closed without an answer', via: 'http', received: 0 }),
        );
      });
      request.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** Reads a Connect answer: HTTP 200 with a message (or envelopes ending in an end-stream message), or an error JSON. */
function readConnectAnswer(status: number, contentType: string, bytes: Buffer, streaming: boolean): WireOutcome {
  if (streaming && status === 200 && contentType.startsWith('application/connect+')) {
    const envelopes = splitEnvelopes(bytes);
    const end = envelopes.find((e) => (e.flags & 0x02) === 0x02);
    const received = envelopes.length - (end ? 1 : 0);
    if (!end) return { code: 'TRANSPORT', message: 'stream ended without an end-stream message', via: 'end-stream', received };
    const parsed = JSON.parse(Buffer.from(end.data).toString('utf8')) as { error?: { code?: string; message?: string } };
    if (!parsed.error) return { code: 'OK', message: '', via: 'end-stream', received };
    return { code: String(parsed.error.code ?? 'unknown').toUpperCase(), message: parsed.error.message ?? '', via: 'end-stream', received };
  }
  if (status === 200) return { code: 'OK', message: '', via: 'http 200', received: 1 };
  if (contentType.startsWith('application/json')) {
    const error = JSON.parse(bytes.toString('utf8')) as { code?: string; message?: string };
    return { code: String(error.code ?? 'unknown').toUpperCase(), message: error.message ?? '', via: 'connect', received: 0 };
  }
  return { code: codeFromHttp(status), message: bytes.toString('utf8').slice(0, 200), via: `http ${status}`, received: 0 };
}
