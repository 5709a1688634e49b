/**
 * The fuzz test's three ways in. Each function builds request number `index` of its channel from
 * a generator seeded by (run seed, channel, index, port), sends it to the port of `deps`, and
 * returns what came back:
 *  1. grpc-raw: protobuf bytes mutated at the byte level, in gRPC envelopes that may lie, over a
 *     raw HTTP/2 stream, so that invalid protobuf reaches the broker (either port);
 *  2. connect-json: the Connect protocol's JSON over HTTP/1.1, damaged in structure and in text
 *     (the main port only: the native gRPC port speaks gRPC alone);
 *  3. grpc-typed: messages with random field values sent by connect-node's gRPC client (either port).
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import { type DescMethod, type DescMessage, fromBinary, fromJsonString, toBinary, toJson } from '@bufbuild/protobuf';
import { type Client, ConnectError } from '@connectrpc/connect';
import type { Admin } from '@baton/worker-sdk/gen/admin';
import type { Broker } from '@baton/worker-sdk/gen/broker';
import { type FuzzContext, METHODS, fuzzMessage, methodPath, protectedTarget } from './fuzz-messages.ts';
import { frameGrpc, mutateBytes, mutateJsonBody } from './fuzz-mutate.ts';
import { Rng, mixSeed } from './fuzz-random.ts';
import type { Port, Sample, Undecodable } from './fuzz-report.ts';
import { type ConnectJson, type RawGrpc, codeName, splitEnvelopes } from './fuzz-wire.ts';

export interface ChannelDeps {
  seed: number;
  /** The port the requests go to; `raw` and `clients` are connected to it. */
  port: Port;
  ctx: FuzzContext;
  /** Ids the fuzzer owns, as a set (the guard's view of `ctx.ownedIds`). */
  owned: ReadonlySet<string>;
  raw: RawGrpc;
  json: ConnectJson;
  clients: { broker: Client<typeof Broker>; admin: Client<typeof Admin> };
  /** Counts requests the guard kept back. */
  onGuarded: () => void;
  timeoutMs: number;
  /** How long a stream that is still open is left open before the fuzzer hangs up. */
  openMs: number;
}

/**
 * RPC-shaped paths (`/<service>/<method>`) that no service serves, or that name a method of the
 * wrong service. (`/` is the dashboard's page, which answers a POST with HTTP 405: not an RPC.)
 */
const UNKNOWN_PATHS = [
  '/baton.v1.Broker/Nope',
  '/baton.v1.Admin/Enqueue',
  '/baton.v1.Nope/Get',
  '/baton.v1.Broker/',
  '/baton.v1.broker/get',
  '/baton.v1.Broker/Get/extra',
  '/grpc.health.v1.Health/Nope',
];

const streaming = (method: DescMethod) => method.methodKind !== 'unary';
const tryDecode = (desc: DescMessage, bytes: Uint8Array) => {
  try {
    return fromBinary(desc, bytes);
  } catch {
    return null;
  }
};
/** Request `index` of `channel` on the port of `deps`: the main port's draws are those of a run on one port. */
const channelRng = (deps: ChannelDeps, channel: number, index: number) =>
  new Rng(deps.port === 'main' ? mixSeed(deps.seed, channel, index) : mixSeed(deps.seed, channel, index, 0x67727063));
const hex = (bytes: Uint8Array, max = 160) => Buffer.from(bytes.subarray(0, max)).toString('hex') + (bytes.length > max ? `…(${bytes.length} bytes)` : '');

/** Draws fresh requests until one passes the guard (the guard's refusals are counted). */
function guarded<T>(deps: ChannelDeps, draw: () => { value: T; targets: (string | null)[] }): T {
  for (let attempt = 0; ; attempt++) {
    const { value, targets } = draw();
    if (targets.every((t) => t === null) || attempt >= 20) return value;
    deps.onGuarded();
  }
}

// -------------------------------------------------------------------------------------------------
// 1. gRPC, raw HTTP/2, mutated protobuf

export async function grpcRawRequest(deps: ChannelDeps, index: number): Promise<Sample> {
  const rng = channelRng(deps, 1, index);
  const unknownPath = rng.chance(0.04) ? rng.pick(UNKNOWN_PATHS) : null;
  const method = rng.pick(METHODS);
  const json = !unknownPath && rng.chance(0.05);
  const request = guarded(deps, () => {
    const count = method.methodKind === 'bidi_streaming' ? rng.int(1, 6) : 1;
    const how: string[] = [];
    const messages = Array.from({ length: count }, () => {
      const valid = toBinary(method.input, fuzzMessage(rng, method, deps.ctx));
      if (json || rng.chance(0.25)) return valid;
      const mutated = mutateBytes(rng, valid);
      how.push(mutated.how.join('+'));
      return mutated.bytes;
    });
    const framed = json ? { body: Buffer.concat(messages.map((m) => envelopeJson(method, m))), headers: {}, framing: '' } : frameGrpc(rng, messages);
    const targets =
      unknownPath || !canChangeJobs(method)
        ? []
        : asBrokerSees(method, framed, json, deps.port).decoded.map((m) => protectedTarget(method, m, deps.ctx, deps.owned));
    return { value: { framed, how }, targets };
  });
  const { framed, how } = request;
  // Decoded again only to explain an INTERNAL, which is rare: decoding every request costs CPU the run needs.
  const undecodable = () => asBrokerSees(method, framed, json, deps.port).undecodable;
  const path = unknownPath ?? methodPath(method);
  const chunks = method.methodKind === 'bidi_streaming' && !framed.framing ? splitFrames(framed.body) : [framed.body];
  const outcome = await deps.raw.call(path, {
    chunks,
    gapMs: chunks.length > 1 ? rng.int(0, 5) : 0,
    headers: framed.headers,
    contentType: json ? 'application/grpc+json' : rng.pick(['application/grpc', 'application/grpc', 'application/grpc+proto']),
    holdMs: method.methodKind === 'bidi_streaming' ? rng.int(0, 150) : 0,
    openMs: streaming(method) ? deps.openMs : undefined,
    timeoutMs: deps.timeoutMs,
  });
  return {
    channel: 'grpc-raw',
    port: deps.port,
    method: unknownPath ? `(unknown) ${unknownPath}` : method.name,
    index,
    outcome,
    undecodable,
    describe: () =>
      `${path} ${json ? 'grpc+json' : 'grpc'} framing=${framed.framing || 'ok'} mutations=${how.join(',') || 'none'} headers=${JSON.stringify(framed.headers)} body=${hex(framed.body)}`,
  };
}

/** Methods whose requests can change a job or queue; only theirs go through the guard. */
const CHANGING = new Set([
  'Enqueue',
  'EnqueueBatch',
  'Cancel',
  'Retry',
  'PauseQueue',
  'ResumeQueue',
  'SetQueueConcurrency',
  'UpdateQueue',
  'UpsertSchedule',
  'BulkAction',
  'Lease',
]);
const canChangeJobs = (method: DescMethod) => CHANGING.has(method.name);

/**
 * The request messages as the broker will see them: its complete envelopes, decompressed as the
 * library serving `port` would, decoded by the same decoder; and why the others cannot be decoded
 * at all. The libraries differ: connect-node refuses a compressed flag without grpc-encoding and
 * decodes application/grpc+json as JSON; grpc-js reads such a flag as identity (the bytes as they
 * are), also inflates deflate, and decodes every content type as binary protobuf.
 */
function asBrokerSees(method: DescMethod, framed: { body: Buffer; headers: Record<string, string> }, json: boolean, port: Port) {
  const undecodable = new Set<Undecodable>();
  const decoded: Record<string, unknown>[] = [];
  const encoding = framed.headers['grpc-encoding'] ?? (port === 'grpc' ? 'identity' : undefined);
  const decompress: Record<string, ((data: Uint8Array) => Uint8Array) | undefined> =
    port === 'grpc' ? { identity: (data) => data, gzip: gunzipSync, deflate: inflateSync } : { gzip: gunzipSync };
  for (const { flags, data } of splitEnvelopes(framed.body)) {
    let bytes: Uint8Array = data;
    if (flags & 1) {
      const inflate = encoding === undefined ? undefined : decompress[encoding];
      if (!inflate) {
        // grpc-js answers an encoding it does not know with UNIMPLEMENTED, before decoding anything.
        if (port === 'main') undecodable.add('compressed-flag');
        continue;
      }
      try {
        bytes = inflate(data);
      } catch {
        undecodable.add('gzip');
        continue;
      }
    }
    const message = json && port === 'main' ? tryDecodeJson(method.input, bytes) : tryDecode(method.input, bytes);
    if (message) decoded.push(message as Record<string, unknown>);
    else undecodable.add('protobuf');
  }
  return { decoded, undecodable };
}

function envelopeJson(method: DescMethod, binary: Uint8Array): Buffer {
  const message = tryDecode(method.input, binary);
  const text = message ? safeJsonText(method.input, message) : '{"garbage":';
  const data = Buffer.from(text);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

function tryDecodeJson(desc: DescMessage, bytes: Uint8Array) {
  try {
    return fromJsonString(desc, new TextDecoder().decode(bytes), { ignoreUnknownFields: false });
  } catch {
    return null;
  }
}

function safeJsonText(desc: DescMessage, message: unknown): string {
  try {
    return JSON.stringify(toJson(desc, message as never));
  } catch {
    return '{}';
  }
}

/** The body's complete envelopes, one chunk each (so a stream's messages arrive apart). */
function splitFrames(body: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let at = 0;
  while (at + 5 <= body.length) {
    const end = at + 5 + body.readUInt32BE(at + 1);
    frames.push(body.subarray(at, Math.min(end, body.length)));
    at = end;
  }
  if (at < body.length) frames.push(body.subarray(at));
  return frames.length ? frames : [body];
}

// -------------------------------------------------------------------------------------------------
// 2. Connect protocol, JSON over HTTP/1.1

export async function connectJsonRequest(deps: ChannelDeps, index: number): Promise<Sample> {
  if (deps.port !== 'main') throw new Error('the Connect protocol is served on the main port only');
  const rng = channelRng(deps, 2, index);
  const unknownPath = rng.chance(0.04) ? rng.pick(UNKNOWN_PATHS) : null;
  const method = rng.pick(METHODS);
  const { body, how } = guarded(deps, () => {
    const message = fuzzMessage(rng, method, deps.ctx);
    const protoNames = rng.chance(0.3);
    let json: Record<string, unknown> = {};
    try {
      json = toJson(method.input, message, { useProtoFieldName: protoNames }) as Record<string, unknown>;
    } catch {
      // NaN and friends have no JSON form; the mutations below still apply.
    }
    const fieldNames = method.input.fields.map((f) => (protoNames ? f.name : f.jsonName));
    const mutated = rng.chance(0.75)
      ? mutateJsonBody(rng, json, fieldNames.length ? fieldNames : ['x'])
      : { body: new TextEncoder().encode(JSON.stringify(json)), how: [] };
    // The broker decodes with a non-fatal TextDecoder: invalid UTF-8 becomes U+FFFD.
    const decoded = unknownPath || !canChangeJobs(method) ? null : tryDecodeJson(method.input, mutated.body);
    return { value: mutated, targets: decoded ? [protectedTarget(method, decoded as Record<string, unknown>, deps.ctx, deps.owned)] : [] };
  });
  const path = unknownPath ?? methodPath(method);
  const outcome = await deps.json.call(path, body, { streaming: streaming(method) && !unknownPath, openMs: deps.openMs, timeoutMs: deps.timeoutMs });
  return {
    channel: 'connect-json',
    port: deps.port,
    method: unknownPath ? `(unknown) ${unknownPath}` : method.name,
    index,
    outcome,
    // The Connect protocol runs bidi streams over HTTP/2 only; connect-node refuses them on HTTP/1.1.
    httpRefusal: method.methodKind === 'bidi_streaming' && !unknownPath ? 'http 505' : undefined,
    describe: () =>
      `${path} mutations=${how.join(',') || 'none'} body=${JSON.stringify(Buffer.from(body.subarray(0, 300)).toString('latin1'))}${body.length > 300 ? `…(${body.length} bytes)` : ''}`,
  };
}

// -------------------------------------------------------------------------------------------------
// 3. gRPC, connect-node's client, structured random messages

const TYPED_METHODS = METHODS.filter((m) => m.methodKind !== 'bidi_streaming');

export async function grpcTypedRequest(deps: ChannelDeps, index: number): Promise<Sample> {
  const rng = channelRng(deps, 3, index);
  const method = rng.pick(TYPED_METHODS);
  const message = guarded(deps, () => {
    const m = fuzzMessage(rng, method, deps.ctx);
    return { value: m, targets: [protectedTarget(method, m as Record<string, unknown>, deps.ctx, deps.owned)] };
  });
  // What the broker will decode: the client writes strings as UTF-8 (lone surrogates become U+FFFD).
  const undecodable = () => new Set<Undecodable>(tryDecode(method.input, toBinary(method.input, message)) ? [] : ['protobuf']);
  const client = (method.parent.name === 'Admin' ? deps.clients.admin : deps.clients.broker) as unknown as Record<string, (...args: unknown[]) => unknown>;
  const abort = new AbortController();
  let hungUp: 'OPEN' | 'HANG' | null = null;
  const timers = [setTimeout(() => ((hungUp ??= 'HANG'), abort.abort()), deps.timeoutMs)];
  let outcome;
  try {
    if (streaming(method)) {
      timers.push(setTimeout(() => ((hungUp ??= 'OPEN'), abort.abort()), deps.openMs));
      let received = 0;
      for await (const _ of client[method.localName](message, { signal: abort.signal }) as AsyncIterable<unknown>) received++;
      outcome = { code: 'OK', message: '', via: 'grpc-status', received };
    } else {
      await client[method.localName](message, { signal: abort.signal });
      outcome = { code: 'OK', message: '', via: 'grpc-status', received: 1 };
    }
  } catch (error) {
    const connectError = ConnectError.from(error);
    outcome = hungUp
      ? { code: hungUp, message: '', via: 'fuzzer', received: 0 }
      : { code: codeName(connectError.code), message: connectError.rawMessage, via: 'grpc-status', received: 0 };
  } finally {
    for (const timer of timers) clearTimeout(timer);
  }
  return {
    channel: 'grpc-typed',
    port: deps.port,
    method: method.name,
    index,
    outcome,
    undecodable,
    describe: () =>
      `${method.name} ${JSON.stringify(message, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `0x${hex(v, 80)}` : v)).slice(0, 600)}`,
  };
}
