/**
 * Mutations for the fuzz test: protobuf bytes damaged at the byte level, gRPC envelopes with lying
 * length prefixes and flags, and JSON bodies damaged in structure and in text.
 */
import { gzipSync } from 'node:zlib';
import type { Rng } from './fuzz-random.ts';
import { nastyDouble, nastyInt32, nastyString, randomJson } from './fuzz-random.ts';

/** Writes `value` as a protobuf varint (up to 10 bytes). */
function varint(value: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** One byte-level mutation of a protobuf message, by name (for the failure report). */
const BYTE_MUTATIONS: [number, string, (rng: Rng, b: Uint8Array) => Uint8Array][] = [
  [
    4,
    'bit-flip',
    (rng, b) => {
      if (b.length === 0) return b;
      const out = b.slice();
      for (let n = rng.int(1, 4); n > 0; n--) out[rng.int(0, out.length - 1)] ^= 1 << rng.int(0, 7);
      return out;
    },
  ],
  [
    2,
    'byte-set',
    (rng, b) => {
      if (b.length === 0) return b;
      const out = b.slice();
      out[rng.int(0, out.length - 1)] = rng.pick([0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x08]);
      return out;
    },
  ],
  [3, 'truncate', (rng, b) => b.slice(0, rng.int(0, Math.max(0, b.length - 1)))],
  [
    2,
    'delete-range',
    (rng, b) => {
      const from = rng.int(0, b.length);
      return concat(b.slice(0, from), b.slice(Math.min(b.length, from + rng.int(1, 8))));
    },
  ],
  [
    2,
    'duplicate-range',
    (rng, b) => {
      const from = rng.int(0, b.length);
      const to = Math.min(b.length, from + rng.int(1, 16));
      return concat(b.slice(0, to), b.slice(from, to), b.slice(to));
    },
  ],
  [2, 'duplicate-whole', (_rng, b) => concat(b, b)],
  [
    2,
    'insert-random',
    (rng, b) => {
      const at = rng.int(0, b.length);
      return concat(b.slice(0, at), rng.bytes(rng.int(1, 12)), b.slice(at));
    },
  ],
  [
    3,
    'append-field',
    (rng, b) => {
      // A field with a random number and wire type; length-delimited ones claim a huge length.
      const field = BigInt(rng.pick([1, 2, 3, 4, 5, 15, 16, 99, 536_870_911, rng.int(1, 2000)]));
      const wire = rng.int(0, 7);
      const tag = varint((field << 3n) | BigInt(wire));
      const body =
        wire === 2
          ? varint(rng.pick([0n, 1n, 5n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 63n, 2n ** 64n - 1n]))
          : wire === 0
            ? varint(rng.int64())
            : Array.from(rng.bytes(wire === 1 ? 8 : 4));
      return concat(b, tag, body);
    },
  ],
  [
    1,
    'overlong-varint',
    (rng, b) =>
      concat(
        b,
        [0x08],
        Array.from({ length: rng.int(10, 12) }, () => 0xff),
        [0x01],
      ),
  ],
  [1, 'unterminated-group', (_rng, b) => concat(b, [0x0b])],
  [
    1,
    'nested-groups',
    (rng, b) =>
      concat(
        b,
        Array.from({ length: rng.pick([50, 101, 5000]) }, () => 0x0b),
      ),
  ],
  [2, 'random-bytes', (rng) => rng.bytes(rng.int(0, 200))],
];

/** Applies 1-3 byte-level mutations; returns the bytes and the names of what was done. */
export function mutateBytes(rng: Rng, bytes: Uint8Array): { bytes: Uint8Array; how: string[] } {
  let out = bytes;
  const how: string[] = [];
  for (
    let n = rng.weighted([
      [6, 1],
      [3, 2],
      [1, 3],
    ] as const);
    n > 0;
    n--
  ) {
    const [, name, mutate] = rng.weighted(BYTE_MUTATIONS.map((entry) => [entry[0], entry] as const));
    out = mutate(rng, out);
    how.push(name);
  }
  return { bytes: out, how };
}

/** A gRPC / Connect streaming envelope: flags, 4-byte big-endian length, data. */
export function envelope(data: Uint8Array, flags = 0, length = data.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(length >>> 0, 1);
  return Buffer.concat([head, data]);
}

/** What the broker is told in the gRPC framing, and whether the framing itself is damaged. */
export interface Framed {
  body: Buffer;
  headers: Record<string, string>;
  /** A defect in the framing the broker must refuse; empty when the envelopes are well-formed. */
  framing: string;
}

/**
 * Frames `messages` for a gRPC request, sometimes with damage: a length prefix that lies (huge or
 * short), the compressed flag without an encoding, a corrupt gzip body, an unknown encoding,
 * extra or missing envelopes, trailing garbage.
 */
export function frameGrpc(rng: Rng, messages: Uint8Array[]): Framed {
  const plain = (): Framed => ({ body: Buffer.concat(messages.map((m) => envelope(m))), headers: {}, framing: '' });
  return rng.weighted<() => Framed>([
    [20, plain],
    // A huge claimed length makes the broker allocate that much at once (see the report): a few of those suffice.
    [
      2,
      () => ({
        body: Buffer.concat([
          ...messages.map((m) => envelope(m)).slice(0, -1),
          envelope(
            messages.at(-1) ?? new Uint8Array(),
            0,
            rng.chance(0.15) ? rng.pick([0xffffffff, 0x7fffffff, 2 ** 24]) : (messages.at(-1)?.length ?? 0) + rng.int(1, 1000),
          ),
        ]),
        headers: {},
        framing: 'length prefix beyond the body',
      }),
    ],
    [
      1,
      () => {
        const last = messages.at(-1) ?? new Uint8Array();
        return {
          body: Buffer.concat([...messages.slice(0, -1).map((m) => envelope(m)), envelope(last, 0, Math.max(0, last.length - rng.int(1, 5)))]),
          headers: {},
          framing: 'length prefix short of the body',
        };
      },
    ],
    [2, () => ({ body: Buffer.concat(messages.map((m) => envelope(m, 1))), headers: {}, framing: 'compressed flag without grpc-encoding' })],
    [1, () => ({ body: Buffer.concat(messages.map((m) => envelope(m, rng.pick([0x02, 0x80, 0xff])))), headers: {}, framing: 'unknown flag bits' })],
    [1, () => ({ body: Buffer.concat(messages.map((m) => envelope(gzipSync(m), 1))), headers: { 'grpc-encoding': 'gzip' }, framing: '' })],
    [1, () => ({ body: Buffer.concat(messages.map((m) => envelope(m, 1))), headers: { 'grpc-encoding': 'gzip' }, framing: 'corrupt gzip' })],
    [
      1,
      () => ({
        body: Buffer.concat(messages.map((m) => envelope(gzipSync(m).subarray(0, rng.int(0, 12)), 1))),
        headers: { 'grpc-encoding': 'gzip' },
        framing: 'truncated gzip',
      }),
    ],
    [
      1,
      () => ({
        body: Buffer.concat(messages.map((m) => envelope(m, 1))),
        headers: { 'grpc-encoding': rng.pick(['snappy', 'zstd', 'x-nope', '']) },
        framing: 'unknown grpc-encoding',
      }),
    ],
    [1, () => ({ body: Buffer.alloc(0), headers: {}, framing: 'no message' })],
    [
      1,
      () => ({
        body: Buffer.concat([...messages.map((m) => envelope(m)), envelope(messages[0] ?? new Uint8Array())]),
        headers: {},
        framing: 'one message too many',
      }),
    ],
    [
      1,
      () => ({
        body: Buffer.concat([...messages.map((m) => envelope(m)), Buffer.from(rng.bytes(rng.int(1, 4)))]),
        headers: {},
        framing: 'a partial envelope after the messages',
      }),
    ],
  ])();
}

const encoder = new TextEncoder();

/** A hostile JSON value for a field: the wrong type, numbers past every range, enum names that do not exist. */
export function nastyJsonValue(rng: Rng): unknown {
  return rng.weighted<() => unknown>([
    [3, () => rng.pick([2 ** 53, 2 ** 53 + 2, 2 ** 63, -(2 ** 63), 2 ** 64, -1, 0, 1.5, -0.5, 1e308, 2 ** 31, -(2 ** 31) - 1, 4294967296, 1e21])],
    [
      3,
      () =>
        rng.pick(['9223372036854775807', '9223372036854775808', '18446744073709551616', '-1', 'NaN', 'Infinity', '-Infinity', '1e3', '0x10', '', ' 1 ', '1.0']),
    ],
    [2, () => rng.pick(['JOB_STATUS_PENDING', 'JOB_STATUS_BOGUS', 'job_status_pending', 'PENDING', 99, -1, 2 ** 31])],
    [2, () => rng.pick([true, false, null, [], {}, [1, 2], { a: 1 }, { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '1s' }])],
    [2, () => rng.pick(['1s', '-1s', '315576000001s', '1.5s', '1000000000000000000000s', '1e3s', 's', '-0.000000001s', '99999999999.999999999s'])],
    [
      2,
      () =>
        rng.pick([
          '1970-01-01T00:00:00Z',
          '0001-01-01T00:00:00Z',
          '9999-12-31T23:59:59.999999999Z',
          '10000-01-01T00:00:00Z',
          '2024-02-30T00:00:00Z',
          'yesterday',
          '1700000000',
        ]),
    ],
    [2, () => nastyString(rng)],
    [1, () => nastyDouble(rng)],
    [1, () => nastyInt32(rng)],
    [1, () => randomJson(rng, 3)],
  ])();
}

/** JSON nested `depth` levels deep, as text (JSON.stringify would recurse as deep). */
export function deepJson(depth: number, open = '[', close = ']'): string {
  return open.repeat(depth) + '1' + close.repeat(depth);
}

/**
 * A damaged Connect JSON request body for `method`, starting from a valid-ish request as JSON:
 * fields of the wrong type, unknown fields, huge and deeply nested values, then (sometimes)
 * text-level damage: truncation, invalid UTF-8, stray bytes.
 */
export function mutateJsonBody(rng: Rng, json: Record<string, unknown>, fieldNames: string[]): { body: Uint8Array; how: string[] } {
  const how: string[] = [];
  const doc: Record<string, unknown> = { ...json };
  for (let n = rng.int(0, 3); n > 0; n--) {
    rng.weighted<() => void>([
      [
        5,
        () => {
          const field = rng.pick(fieldNames);
          doc[field] = nastyJsonValue(rng);
          how.push(`${field}=hostile`);
        },
      ],
      [
        2,
        () => {
          doc[rng.pick(['colour', 'id_', '__proto__', 'constructor', '@type', 'queue ', 'QUEUE', '', '\u0000'])] = nastyJsonValue(rng);
          how.push('unknown-field');
        },
      ],
      [
        1,
        () => {
          doc.payload = { big: 'x'.repeat(rng.chance(0.05) ? 2 * 1024 * 1024 : rng.pick([8190, 8192, 100_000])) };
          how.push('oversized-payload');
        },
      ],
      [
        1,
        () => {
          doc.labels = Object.fromEntries(Array.from({ length: rng.chance(0.05) ? 5000 : 33 }, (_, i) => [`k${i}`, 'v']));
          how.push('many-labels');
        },
      ],
    ])();
  }
  let text = JSON.stringify(doc, (_key, value) => (typeof value === 'bigint' ? value.toString() : value));
  if (rng.chance(0.12)) {
    // Deep nesting cannot go through JSON.stringify: splice it in as text.
    const depth = rng.chance(0.05) ? 100_000 : rng.pick([33, 100, 1000]);
    const field = rng.pick(['payload', 'jobs', 'labels', 'statuses', 'queues', 'hello', 'results', 'retryPolicy']);
    const nested = rng.chance(0.5) ? deepJson(depth) : deepJson(depth, '{"a":', '}');
    text = `{"${field}":${nested}${text.length > 2 ? ',' + text.slice(1) : '}'}`;
    how.push(`nested-${depth}`);
  }
  let body: Uint8Array = encoder.encode(text);
  if (rng.chance(0.3)) {
    const op = rng.pick(['truncate', 'invalid-utf8', 'random-byte', 'nul', 'bom', 'duplicate-key', 'garbage']);
    how.push(op);
    switch (op) {
      case 'truncate':
        body = body.slice(0, rng.int(0, body.length - 1));
        break;
      case 'invalid-utf8': {
        const at = rng.int(1, Math.max(1, body.length - 1));
        const bad = rng.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]]);
        body = concat(body.slice(0, at), bad, body.slice(at));
        break;
      }
      case 'random-byte': {
        const out = body.slice();
        out[rng.int(0, out.length - 1)] = rng.int(0, 255);
        body = out;
        break;
      }
      case 'nul':
        body = concat(body.slice(0, 1), [0], body.slice(1));
        break;
      case 'bom':
        body = concat([0xef, 0xbb, 0xbf], body);
        break;
      case 'duplicate-key':
        body = encoder.encode(text.replace(/^\{/, `{"${rng.pick(fieldNames)}":1,`));
        break;
      default:
        body = encoder.encode(rng.pick(['', 'null', '[]', '"str"', '42', 'garbage', '{', '{}}', '{"a":1}{"b":2}']));
    }
  }
  return { body, how };
}
