/**
 * What the fuzz test saw: requests and status codes per channel and port, the few INTERNALs that the
 * gRPC library itself answers to undecodable requests, and every finding (a status outside the
 * expected set, a hang, a broken connection) with the request that caused it.
 */
import type { WireOutcome } from './fuzz-wire.ts';

export type Channel = 'grpc-raw' | 'connect-json' | 'grpc-typed' | 'lease-stream';

/**
 * The broker's two ports, one contract: the main port (connect-node: gRPC, Connect, gRPC-Web,
 * HTTP/1.1) and the native gRPC port (BATON_GRPC_PORT, grpc-js: gRPC only).
 */
export type Port = 'main' | 'grpc';
export const PORTS: readonly Port[] = ['main', 'grpc'];

/**
 * Codes a broker may answer bad input with, on every channel. OPEN is a stream the fuzzer hung up
 * on while it was still open (a Watch of a queue, a Lease stream): the broker was still serving it.
 * UNIMPLEMENTED is gRPC's code for unknown methods and for the wrong number of request messages.
 */
export const EXPECTED_CODES = new Set([
  'OK',
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'FAILED_PRECONDITION',
  'RESOURCE_EXHAUSTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'OPEN',
]);

/** Why a request cannot be decoded at all, as the test established on its own. */
export type Undecodable = 'protobuf' | 'compressed-flag' | 'gzip';

/**
 * The gRPC library's own INTERNAL for a request it could not decode, raised before any broker code
 * runs (gRPC's doc/statuscodes.md: "Error parsing request proto: INTERNAL"; likewise for an envelope
 * it cannot decompress). Recognised only by the exact message of the library serving `port`
 * (connect-node on the main port, grpc-js on the native gRPC port), and only when the test itself
 * established that the request is undecodable for that reason.
 */
export function isLibraryDecodeError(outcome: WireOutcome, undecodable: ReadonlySet<Undecodable>, port: Port): Undecodable | null {
  if (outcome.code !== 'INTERNAL') return null;
  if (port === 'grpc') {
    // grpc-js (server-interceptors.js); it reads a compressed flag without grpc-encoding as identity.
    if (undecodable.has('protobuf') && /^Error deserializing request(: |$)/.test(outcome.message)) return 'protobuf';
    if (undecodable.has('gzip') && outcome.message === 'Failed to decompress message') return 'gzip';
    return null;
  }
  if (undecodable.has('protobuf') && outcome.message.startsWith('parse binary: ')) return 'protobuf';
  if (undecodable.has('compressed-flag') && outcome.message === 'received compressed envelope, but do not know how to decompress') return 'compressed-flag';
  if (undecodable.has('gzip') && outcome.message === 'decompression failed') return 'gzip';
  return null;
}

export interface Finding {
  channel: Channel;
  port: Port;
  method: string;
  index: number;
  code: string;
  message: string;
  request: string;
}

export interface Sample {
  channel: Channel;
  /** The port the request went to. */
  port: Port;
  method: string;
  index: number;
  outcome: WireOutcome;
  /** Why the request cannot be decoded at all, worked out on demand (only INTERNAL answers ask). */
  undecodable?: () => ReadonlySet<Undecodable>;
  /** The request, for the report (called only for findings). */
  describe: () => string;
  /** How long the answer took. */
  ms?: number;
  /** An HTTP-level refusal the protocol prescribes for this request (e.g. `http 505`: bidi over HTTP/1.1). */
  httpRefusal?: string;
}

/** Counts kept per port, so that the report shows each port's answers apart. */
type PerPort<V> = Record<Port, V>;
const perPort = <V>(make: () => V): PerPort<V> => ({ main: make(), grpc: make() });

export class FuzzReport {
  readonly requests = perPort(() => new Map<Channel, number>());
  readonly histogram = perPort(() => new Map<Channel, Map<string, number>>());
  readonly byMethod = perPort(() => new Map<string, Map<string, number>>());
  /** Per method: answers timed, total and slowest milliseconds. */
  readonly timing = perPort(() => new Map<string, { n: number; totalMs: number; maxMs: number }>());
  readonly libraryDecode = perPort(() => new Map<string, number>());
  readonly findings: Finding[] = [];
  /** Requests not sent: they named a protected job or queue (counted, then regenerated). */
  guarded = 0;
  /** When set, the library's decode INTERNALs are findings too (FUZZ_STRICT_INTERNAL=1). */
  readonly strictInternal: boolean;

  constructor(strictInternal: boolean) {
    this.strictInternal = strictInternal;
  }

  record(sample: Sample): void {
    const { channel, port, outcome } = sample;
    const requests = this.requests[port];
    requests.set(channel, (requests.get(channel) ?? 0) + 1);
    const refused = sample.httpRefusal !== undefined && outcome.via === sample.httpRefusal;
    const key = refused
      ? `refused: ${outcome.via}`
      : outcome.via.startsWith('http ') && outcome.code !== 'OK'
        ? `${outcome.code} (${outcome.via})`
        : outcome.code;
    bump(this.histogram[port], channel, key);
    bump(this.byMethod[port], sample.method, refused ? key : outcome.code);
    if (sample.ms !== undefined) {
      const timing = this.timing[port];
      const t = timing.get(sample.method) ?? { n: 0, totalMs: 0, maxMs: 0 };
      t.n++;
      t.totalMs += sample.ms;
      t.maxMs = Math.max(t.maxMs, sample.ms);
      timing.set(sample.method, t);
    }
    if (EXPECTED_CODES.has(outcome.code)) return;
    if (refused) return;
    const library = sample.undecodable && outcome.code === 'INTERNAL' ? isLibraryDecodeError(outcome, sample.undecodable(), port) : null;
    if (library && !this.strictInternal) {
      const decode = this.libraryDecode[port];
      decode.set(library, (decode.get(library) ?? 0) + 1);
      return;
    }
    this.findings.push({
      channel,
      port,
      method: sample.method,
      index: sample.index,
      code: outcome.code,
      message: outcome.message.slice(0, 300),
      request: sample.describe().slice(0, 700),
    });
  }

  /** Requests and Lease streams recorded on `port`, of `channel` or of every channel. */
  count(port: Port, channel?: Channel): number {
    const requests = this.requests[port];
    return channel ? (requests.get(channel) ?? 0) : [...requests.values()].reduce((a, b) => a + b, 0);
  }

  get total(): number {
    return this.count('main') + this.count('grpc');
  }

  /** The first few findings, one per (method, code, message start), for a failure message. */
  findingsReport(limit = Number(process.env.FUZZ_REPORT_LIMIT ?? 8)): string {
    const seen = new Set<string>();
    const distinct = this.findings.filter((f) => {
      const key = `${f.port}/${f.method}/${f.code}/${f.message.slice(0, 40)}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    return [
      `${this.findings.length} requests answered outside ${[...EXPECTED_CODES].join(', ')}; first distinct ones:`,
      ...distinct
        .slice(0, limit)
        .map((f) => `  [${f.channel} on the ${f.port} port #${f.index}] ${f.method} → ${f.code}: ${f.message}\n      request: ${f.request}`),
    ].join('\n');
  }

  /** Per port: each channel's codes, then each method's, then the library's decode INTERNALs. */
  summary(): string {
    const line = (counts: Map<string, number> | undefined) =>
      [...(counts ?? new Map<string, number>()).entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([code, n]) => `${code} ${n}`)
        .join(' · ');
    const lines: string[] = [];
    for (const port of PORTS) {
      lines.push(`  on the ${port} port (${PORT_SERVER[port]}): ${this.count(port)} requests and Lease streams`);
      for (const [channel, n] of this.requests[port])
        lines.push(`    ${channel.padEnd(13)} ${String(n).padStart(6)}  ${line(this.histogram[port].get(channel))}`);
      lines.push(`    by method:`);
      for (const [method, counts] of [...this.byMethod[port].entries()].sort()) {
        const t = this.timing[port].get(method);
        const ms = t ? ` (mean ${Math.round(t.totalMs / t.n)} ms, max ${Math.round(t.maxMs)} ms)` : '';
        lines.push(`      ${method.padEnd(24)} ${line(counts)}${ms}`);
      }
      const library = [...this.libraryDecode[port].entries()].map(([why, n]) => `${why} ${n}`).join(', ');
      lines.push(`    INTERNAL from the gRPC library for undecodable requests (gRPC doc/statuscodes.md): ${library || 'none'}`);
    }
    lines.push(`  requests the guard kept back (they named a protected job or queue): ${this.guarded}`);
    return lines.join('\n');
  }
}

const PORT_SERVER: Record<Port, string> = { main: 'connect-node', grpc: 'BATON_GRPC_PORT, grpc-js' };

function bump<K>(map: Map<K, Map<string, number>>, key: K, code: string): void {
  let counts = map.get(key);
  if (!counts) map.set(key, (counts = new Map()));
  counts.set(code, (counts.get(code) ?? 0) + 1);
}
