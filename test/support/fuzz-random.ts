/**
 * The fuzz test's randomness: a small seeded PRNG (sfc32) and pools of hostile values. Every
 * request is generated from its own generator, seeded from (run seed, channel, index), so the
 * requests of a run depend on the seed alone, not on the order in which answers arrive.
 */

/** 32-bit mixing (splitmix32's finaliser): turns a few numbers into a well-spread seed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** sfc32: fast, small state, passes PractRand far beyond what a fuzz run draws. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** [0, 1) */
  float(): number {
    return this.uint32() / 4294967296;
  }

  /** An integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }

  /** Picks by weight: `[[weight, value], ...]`. */
  weighted<T>(entries: readonly (readonly [number, T])[]): T {
    const total = entries.reduce((sum, [w]) => sum + w, 0);
    let at = this.float() * total;
    for (const [w, value] of entries) if ((at -= w) < 0) return value;
    return entries[entries.length - 1][1];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uint32() & 0xff;
    return out;
  }

  /** A uniformly random 64-bit pattern as a signed bigint. */
  int64(): bigint {
    return BigInt.asIntN(64, (BigInt(this.uint32()) << 32n) | BigInt(this.uint32()));
  }

  /** A fresh generator whose sequence depends only on this one's next draw. */
  fork(): Rng {
    return new Rng(this.uint32());
  }
}

/** The run's seed: FUZZ_SEED when given (decimal or 0x hex), else a random one to be printed. */
export function runSeed(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FUZZ_SEED;
  if (raw) {
    const seed = Number(raw);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`FUZZ_SEED must be an integer 0..2^32-1, got "${raw}"`);
    return seed;
  }
  return Math.floor(Math.random() * 0x100000000) >>> 0;
}

const ASTRAL = ['𝄞', '😀', '🏳️‍🌈', '𐍈', '\u{10FFFF}'];
const CONTROLS = ['\u0000', '\u0001', '\u0007', '\b', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u2028', '\u2029', '\u200b', '\ufeff', '\u202e'];
// Not representable in UTF-8: the client's encoder turns them into U+FFFD on the wire, JSON carries them escaped.
const SURROGATES = ['\ud800', '\udfff', '\udc00x', 'a\ud83d'];

/** A hostile string: empty, huge, control characters, astral and lone surrogate code points, injection-looking text, numbers. */
export function nastyString(rng: Rng): string {
  return rng.weighted<() => string>([
    [3, () => ''],
    [2, () => 'x'.repeat(rng.pick([1, 64, 65, 128, 129, 200, 201, 256, 257, 4000, 70_000]))],
    [4, () => Array.from({ length: rng.int(1, 12) }, () => rng.pick(CONTROLS)).join('')],
    [3, () => `q${rng.pick(CONTROLS)}${rng.int(0, 9)}`],
    [2, () => Array.from({ length: rng.int(1, 5) }, () => rng.pick(ASTRAL)).join('')],
    [2, () => rng.pick(SURROGATES)],
    [2, () => rng.pick(["'; drop table baton_jobs; --", '%s%n%x', '${jndi:ldap://x}', '../../etc/passwd', '<script>', '\\', '"', '{}', 'null', 'NaN'])],
    [
      4,
      () =>
        rng.pick([
          '0',
          '-1',
          '1',
          '007',
          '1.5',
          '1e3',
          ' 1',
          '0x10',
          '١٢٣',
          '9223372036854775807',
          '9223372036854775808',
          '9999999999999999999',
          '18446744073709551616',
          '99999999999999999999999',
        ]),
    ],
    [3, () => randomText(rng, rng.int(1, 40))],
    [2, () => String.fromCharCode(...Array.from({ length: rng.int(1, 20) }, () => rng.int(0, 0xffff)))],
  ])();
}

/** Printable-ish random text drawn from a mix of ASCII, Latin-1, CJK and astral characters. */
export function randomText(rng: Rng, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out += rng.weighted<() => string>([
      [8, () => String.fromCharCode(rng.int(0x20, 0x7e))],
      [1, () => String.fromCharCode(rng.int(0xa0, 0xff))],
      [1, () => String.fromCharCode(rng.int(0x4e00, 0x9fff))],
      [1, () => rng.pick(ASTRAL)],
    ])();
  }
  return out;
}

export const INT32_EDGES = [
  0,
  1,
  -1,
  2,
  10,
  50,
  51,
  100,
  101,
  1000,
  1001,
  -1000,
  -1001,
  10_000,
  100_000,
  100_001,
  1_000_000,
  1_000_001,
  2 ** 31 - 1,
  -(2 ** 31),
];

export function nastyInt32(rng: Rng): number {
  return rng.chance(0.7) ? rng.pick(INT32_EDGES) : rng.uint32() | 0;
}

export function nastyUint32(rng: Rng): number {
  return rng.chance(0.7) ? rng.pick([0, 1, 2, 100, 2 ** 31, 2 ** 32 - 1]) : rng.uint32();
}

const INT64_EDGES = [
  0n,
  1n,
  -1n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 62n,
  2n ** 63n - 1n,
  -(2n ** 63n),
  315_576_000_000n,
  315_576_000_001n,
  -315_576_000_001n,
  253_402_300_799n,
  253_402_300_800n,
  -62_135_596_800n,
  -62_135_596_801n,
];

export function nastyInt64(rng: Rng): bigint {
  return rng.chance(0.7) ? rng.pick(INT64_EDGES) : rng.int64();
}

export function nastyDouble(rng: Rng): number {
  return rng.chance(0.8)
    ? rng.pick([Number.NaN, Infinity, -Infinity, -0, 0, 0.5, 1, 1.0000001, 2, 99.9, 100, 100.5, 1e308, 5e-324, -1, 2 ** 53, 2 ** 63])
    : (rng.float() - 0.5) * 10 ** rng.int(-5, 20);
}

/** A google.protobuf.Duration or Timestamp shape with hostile seconds and nanos (negative, huge, out of range). */
export function nastySecondsNanos(rng: Rng): { seconds: bigint; nanos: number } {
  const seconds = rng.weighted<() => bigint>([
    [3, () => nastyInt64(rng)],
    [2, () => BigInt(rng.int(-100_000, 100_000))],
    [2, () => BigInt(Math.floor(Date.now() / 1000) + rng.int(-1e9, 1e9))],
  ])();
  const nanos = rng.weighted<() => number>([
    [4, () => 0],
    [2, () => rng.int(0, 999_999_999)],
    [2, () => rng.pick([-1, 1_000_000_000, 2 ** 31 - 1, -(2 ** 31), -999_999_999])],
  ])();
  return { seconds, nanos };
}

const encoder = new TextEncoder();

/**
 * Bytes for a `*_json` field: valid JSON of every kind, JSON PostgreSQL's jsonb refuses (\u0000,
 * lone surrogate escapes, exponents past its numeric range), invalid UTF-8, deep nesting, sizes
 * either side of the broker's limit, and plain random bytes.
 */
export function nastyJsonBytes(rng: Rng, maxPayloadBytes: number): Uint8Array {
  const text = (s: string) => encoder.encode(s);
  return rng.weighted<() => Uint8Array>([
    [4, () => text(JSON.stringify(randomJson(rng, rng.int(0, 4))))],
    [
      2,
      () =>
        text(
          rng.pick([
            'null',
            'true',
            '0',
            '-0',
            '""',
            '{}',
            '[]',
            '1e308',
            '-1e-308',
            '12345678901234567890123',
            '1e400',
            '1e1001',
            '1e-1001',
            '1E99999',
            '-1e99999',
            '1' + '0'.repeat(3000),
            '0.' + '0'.repeat(2000) + '1',
          ]),
        ),
    ],
    [
      3,
      () =>
        text(rng.pick(['"\\u0000"', '{"a":"\\u0000"}', '"\\ud800"', '"\\udc00\\ud800"', '{"\\ud83d":1}', '"\\ud83d\\ude00"', '"\\\\u0000"', '"a\\u0000b"'])),
    ],
    [2, () => new Uint8Array([0x22, ...rng.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xfe, 0xff]]), 0x22])],
    [1, () => text('\ufeff{"bom":true}')],
    [2, () => text('['.repeat(rng.pick([31, 32, 33, 100, 1000, 100_000])) + ']'.repeat(rng.pick([0, 31, 32, 33, 100, 1000])))],
    [1, () => text('{"a":'.repeat(rng.pick([32, 33, 500])) + '1' + '}'.repeat(500))],
    [2, () => text(JSON.stringify('x'.repeat(Math.max(0, maxPayloadBytes - 2 + rng.pick([-1, 0, 1, 100])))))],
    [2, () => text(rng.pick(['{', '}', '{"a":}', "{'a':1}", 'NaN', 'Infinity', 'undefined', '[1,]', '01', '"unterminated', '{"a":1}{"b":2}', '  ', '']))],
    [2, () => rng.bytes(rng.int(1, 64))],
  ])();
}

/** A random JSON value of bounded depth, with the awkward corners of JSON in it. */
export function randomJson(rng: Rng, depth: number): unknown {
  const kind = depth <= 0 ? rng.int(0, 3) : rng.int(0, 5);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 2 ** 53, -(2 ** 53) - 2, 1e308, 5e-324, rng.int(-1000, 1000)]);
    case 3:
      return rng.chance(0.5) ? randomText(rng, rng.int(0, 20)) : nastyString(rng).slice(0, 300);
    case 4:
      return Array.from({ length: rng.int(0, 4) }, () => randomJson(rng, depth - 1));
    default:
      return Object.fromEntries(
        Array.from({ length: rng.int(0, 4) }, () => [
          rng.chance(0.8) ? randomText(rng, rng.int(0, 8)) : nastyString(rng).slice(0, 50),
          randomJson(rng, depth - 1),
        ]),
      );
  }
}
