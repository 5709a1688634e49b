/**
 * What the fuzz test saw: requests and status codes per channel, the few INTERNALs that the gRPC
 * library itself answers to undecodable requests, and every finding (a status outside the expected
 * set, a hang, a broken connection) with the request that caused it.
 */
import type { WireOutcome } from './fuzz-wire.ts';

export type Channel = 'grpc-raw' | 'connect-json' | 'grpc-typed' | 'lease-stream';

/**
 * Codes a broker may answer bad input with, on every channel. OPEN is a stream the fuzzer hung up
 * on while it was still open (a Watch of a queue, a Lease stream): the broker was still serving it.
 * UNIMPLEMENTED is gRPC's code for unknown methods and for the wrong number of request messages.
 */
export const EXPECTED_CODES = new Set(['OK', 'INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION', 'RESOURCE_EXHAUSTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'OPEN']);

/** Why a request cannot be decoded at all, as the test established on its own. */
export type Undecodable = 'protobuf' | 'compressed-flag' | 'gzip';

/**
 * The gRPC library's own INTERNAL for a request it could not decode, raised before any broker code
 * runs (gRPC's doc/statuscodes.md: "Error parsing request proto: INTERNAL"; likewise for an envelope
 * it cannot decompress). Recognised only by the library's exact message, and only when the test
 * itself established that the request is undecodable for that reason.
 */
export function isLibraryDecodeError(outcome: WireOutcome, undecodable: ReadonlySet<Undecodable>): Undecodable | null {
  if (outcome.code !== 'INTERNAL') return null;
  if (undecodable.has('protobuf') && outcome.message.startsWith('parse binary: ')) return 'protobuf';
  if (undecodable.has('compressed-flag') && outcome.message === 'received compressed envelope, but do not know how to decompress') return 'compressed-flag';
  if (undecodable.has('gzip') && outcome.message === 'decompression failed') return 'gzip';
  return null;
}

export interface Finding {
  channel: Channel;
  method: string;
  index: number;
  code: string;
  message: string;
  request: string;
}

export interface Sample {
  channel: Channel;
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

export class FuzzReport {
  readonly requests = new Map<Channel, number>();
  readonly histogram = new Map<Channel, Map<string, number>>();
  readonly byMethod = new Map<string, Map<string, number>>();
  /** Per method: answers timed, total and slowest milliseconds. */
  readonly timing = new Map<string, { n: number; totalMs: number; maxMs: number }>();
  readonly libraryDecode = new Map<string, number>();
  readonly findings: Finding[] = [];
  /** Requests not sent: they named a protected job or queue (counted, then regenerated). */
  guarded = 0;
  /** When set, the library's decode INTERNALs are findings too (FUZZ_STRICT_INTERNAL=1). */
  readonly strictInternal: boolean;

  constructor(strictInternal: boolean) {
    this.strictInternal = strictInternal;
  }

  record(sample: Sample): void {
    const { channel, outcome } = sample;
    this.requests.set(channel, (this.requests.get(channel) ?? 0) + 1);
    const refused = sample.httpRefusal !== undefined && outcome.via === sample.httpRefusal;
    const key = refused ? `refused: ${outcome.via}` : outcome.via.startsWith('http ') && outcome.code !== 'OK' ? `${outcome.code} (${outcome.via})` : outcome.code;
    bump(this.histogram, channel, key);
    bump(this.byMethod, sample.method, refused ? key : outcome.code);
    if (sample.ms !== undefined) {
      const t = this.timing.get(sample.method) ?? { n: 0, totalMs: 0, maxMs: 0 };
      t.n++;
      t.totalMs += sample.ms;
      t.maxMs = Math.max(t.maxMs, sample.ms);
      this.timing.set(sample.method, t);
    }
    if (EXPECTED_CODES.has(outcome.code)) return;
    if (refused) return;
    const library = sample.undecodable && outcome.code === 'INTERNAL' ? isLibraryDecodeError(outcome, sample.undecodable()) : null;
    if (library && !this.strictInternal) {
      this.libraryDecode.set(library, (this.libraryDecode.get(library) ?? 0) + 1);
      return;
    }
    this.findings.push({ channel, method: sample.method, index: sample.index, code: outcome.code, message: outcome.message.slice(0, 300), request: sample.describe().slice(0, 700) });
  }

  get total(): number {
    return [...this.requests.values()].reduce((a, b) => a + b, 0);
  }

  /** The first few findings, one per (method, code, message start), for a failure message. */
  findingsReport(limit = Number(process.env.FUZZ_REPORT_LIMIT ?? 8)): string {
    const seen = new Set<string>();
    const distinct = this.findings.filter((f) => {
      const key = `${f.method}/${f.code}/${f.message.slice(0, 40)}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    return [
      `${this.findings.length} requests answered outside ${[...EXPECTED_CODES].join(', ')}; first distinct ones:`,
      ...distinct.slice(0, limit).map((f) => `  [${f.channel} #${f.index}] ${f.method} → ${f.code}: ${f.message}\n      request: ${f.request}`),
    ].join('\n');
  }

  summary(): string {
    const line = (counts: Map<string, number> | undefined) =>
      [...(counts ?? new Map<string, number>()).entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([code, n]) => `${code} ${n}`)
        .join(' · ');
    const lines = [...this.requests.entries()].map(([channel, n]) => `  ${channel.padEnd(13)} ${String(n).padStart(6)}  ${line(this.histogram.get(channel))}`);
    const methods = [...this.byMethod.entries()].sort().map(([method, counts]) => {
      const t = this.timing.get(method);
      const ms = t ? ` (mean ${Math.round(t.totalMs / t.n)} ms, max ${Math.round(t.maxMs)} ms)` : '';
      return `    ${method.padEnd(24)} ${line(counts)}${ms}`;
    });
    const library = [...this.libraryDecode.entries()].map(([why, n]) => `${why} ${n}`).join(', ');
    return [
      ...lines,
      `  by method:`,
      ...methods,
      `  INTERNAL from the gRPC library for undecodable requests (gRPC doc/statuscodes.md): ${library || 'none'}`,
      `  requests the guard kept back (they named a protected job or queue): ${this.guarded}`,
    ].join('\n');
  }
}

function bump<K>(map: Map<K, Map<string, number>>, key: K, code: string): void {
  let counts = map.get(key);
  if (!counts) map.set(key, (counts = new Map()));
  counts.set(code, (counts.get(code) ?? 0) + 1);
}
