/**
 * Request messages for the fuzz test: fully random ones built from the descriptors (any field,
 * any value its type allows), and near-valid ones per RPC with a few fields made hostile, which
 * get past the first check and reach the deeper ones (and the database). Also the guard that keeps
 * the fuzzer away from the jobs and queues the test protects.
 */
import { type DescField, type DescMessage, type DescMethod, type MessageShape, ScalarType, create } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { Admin } from '@baton/worker-sdk/gen/admin';
import { Broker } from '@baton/worker-sdk/gen/broker';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import {
  type Rng,
  nastyDouble,
  nastyInt32,
  nastyInt64,
  nastyJsonBytes,
  nastySecondsNanos,
  nastyString,
  nastyUint32,
  randomJson,
  randomText,
} from './fuzz-random.ts';

/** Every method the fuzzer calls, Broker's and Admin's, Lease included. */
export const METHODS: readonly DescMethod[] = [...Broker.methods, ...Admin.methods];

export const methodPath = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;

/** What the fuzzer may name, and what it must never touch. */
export interface FuzzContext {
  /** Queues the fuzzer owns: anything may happen to them and their jobs. */
  queues: string[];
  /** Queues holding jobs for the fuzzing Lease streams to take. */
  leaseQueues: string[];
  /** Jobs the fuzzer owns, in every status: Cancel and Retry may change them. */
  ownedIds: string[];
  /** Queues no fuzzed request may name (the snapshot jobs' and the well-behaved worker's). */
  protectedQueues: ReadonlySet<string>;
  maxPayloadBytes: number;
  maxBatchSize: number;
  maxPageSize: number;
}

/**
 * Job ids below this are real in this run (a run creates a few thousand jobs at most); the fuzzer
 * names real ids only from `ownedIds`, and otherwise ids at or above this, which no job has.
 */
export const FIRST_UNUSED_ID = 1_000_000_000n;
const INT8_MAX = 9223372036854775807n;

type Init = Record<string, unknown>;

/** A job id to put in a request: an owned one, a well-formed id no job has, or garbage. */
export function fuzzId(rng: Rng, ctx: FuzzContext): string {
  return rng.weighted<() => string>([
    [5, () => (ctx.ownedIds.length ? rng.pick(ctx.ownedIds) : '1000000000')],
    [3, () => String(FIRST_UNUSED_ID + (BigInt.asUintN(62, rng.int64()) % (INT8_MAX - FIRST_UNUSED_ID)))],
    [1, () => rng.pick(['9223372036854775807', '9223372036854775808', '1000000000'])],
    [3, () => nastyString(rng)],
  ])();
}

/** A queue name to put in a request: mostly an owned one, sometimes a hostile string. */
export function fuzzQueue(rng: Rng, ctx: FuzzContext): string {
  return rng.weighted<() => string>([
    [6, () => rng.pick(ctx.queues)],
    // A few new names, not one per request: every queue makes ListQueues and GetQueueStats dearer.
    [1, () => `fz.${rng.int(0, 9)}`],
    [3, () => nastyString(rng)],
  ])();
}

// ---------------------------------------------------------------------------------------------
// Random messages from descriptors

function randomScalar(rng: Rng, type: ScalarType): unknown {
  switch (type) {
    case ScalarType.STRING:
      return rng.chance(0.5) ? randomText(rng, rng.int(0, 30)) : nastyString(rng);
    case ScalarType.BYTES:
      return rng.chance(0.5) ? nastyJsonBytes(rng, 8192) : rng.bytes(rng.int(0, 40));
    case ScalarType.BOOL:
      return rng.chance(0.5);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return nastyDouble(rng);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return nastyInt64(rng);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return BigInt.asUintN(64, nastyInt64(rng));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return nastyUint32(rng);
    default:
      return nastyInt32(rng);
  }
}

function randomFieldValue(rng: Rng, field: DescField, depth: number): unknown {
  switch (field.fieldKind) {
    case 'scalar':
      return randomScalar(rng, field.scalar);
    case 'enum':
      return rng.chance(0.7) ? rng.pick(field.enum.values).number : nastyInt32(rng);
    case 'message':
      return randomInit(rng, field.message, depth - 1);
    case 'list': {
      const n = rng.chance(0.05) ? rng.int(20, 60) : rng.int(0, 4);
      return Array.from({ length: n }, () =>
        field.listKind === 'scalar'
          ? randomScalar(rng, field.scalar)
          : field.listKind === 'enum'
            ? rng.chance(0.7)
              ? rng.pick(field.enum.values).number
              : nastyInt32(rng)
            : randomInit(rng, field.message, depth - 1),
      );
    }
    case 'map': {
      const n = rng.chance(0.05) ? rng.int(30, 40) : rng.int(0, 4);
      const entries: [string, unknown][] = [];
      for (let i = 0; i < n; i++) {
        const value =
          field.mapKind === 'scalar' ? randomScalar(rng, field.scalar) : field.mapKind === 'enum' ? nastyInt32(rng) : randomInit(rng, field.message, depth - 1);
        entries.push([String(randomScalar(rng, ScalarType.STRING)), value]);
      }
      return Object.fromEntries(entries);
    }
  }
}

/** A random init object for `desc`: each field set with some probability, to any value of its type. */
export function randomInit(rng: Rng, desc: DescMessage, depth = 3): Init {
  const init: Init = {};
  for (const field of desc.fields) {
    if (field.fieldKind === 'message' && depth <= 0) continue;
    if (!rng.chance(0.45)) continue;
    const value = randomFieldValue(rng, field, depth);
    if (field.oneof) init[field.oneof.localName] = { case: field.localName, value };
    else init[field.localName] = value;
  }
  return init;
}

export function randomMessage<Desc extends DescMessage>(rng: Rng, desc: Desc, depth = 3): MessageShape<Desc> {
  return create(desc, randomInit(rng, desc, depth) as never);
}

// ---------------------------------------------------------------------------------------------
// Near-valid requests per RPC

/** A google.protobuf.Value of lists nested `depth` deep: two protobuf message levels per JSON level. */
function deepValue(depth: number): Init {
  let value: Init = { kind: { case: 'numberValue', value: 1 } };
  for (let i = 0; i < depth; i++) value = { kind: { case: 'listValue', value: { values: [value] } } };
  return value;
}

const seconds = (s: number) => ({ seconds: BigInt(s), nanos: 0 });

function enqueueInit(rng: Rng, ctx: FuzzContext): Init {
  const init: Init = { queue: rng.pick(ctx.queues) };
  if (rng.chance(0.5)) init.payloadJson = new TextEncoder().encode(JSON.stringify(randomJson(rng, 3)));
  else if (rng.chance(0.3)) init.payload = { kind: { case: 'stringValue', value: randomText(rng, 10) } };
  if (rng.chance(0.3)) init.priority = rng.int(-1000, 1000);
  if (rng.chance(0.2)) init.delay = seconds(rng.int(0, 3600));
  else if (rng.chance(0.1)) init.runAt = seconds(Math.floor(Date.now() / 1000) + rng.int(-100, 3600));
  if (rng.chance(0.2)) init.maxAttempts = rng.int(1, 5);
  if (rng.chance(0.2)) init.retryPolicy = { initialBackoff: seconds(1), multiplier: 2, jitter: 0.1 };
  if (rng.chance(0.2)) init.timeout = seconds(rng.int(1, 60));
  if (rng.chance(0.2)) init.idempotencyKey = `fz-${rng.int(0, 50)}`;
  if (rng.chance(0.2)) init.labels = { team: randomText(rng, 5), n: String(rng.int(0, 9)) };
  if (rng.chance(0.1)) init.traceparent = `00-${'a1'.repeat(16)}-${'b2'.repeat(8)}-01`;
  return init;
}

/** Makes one field of an EnqueueRequest init hostile. */
function spoilEnqueue(rng: Rng, init: Init, ctx: FuzzContext): void {
  rng.weighted<() => void>([
    [3, () => (init.queue = nastyString(rng))],
    [4, () => (init.payloadJson = nastyJsonBytes(rng, ctx.maxPayloadBytes))],
    [2, () => (init.payload = randomInit(rng, ValueSchema, 5))],
    [1, () => (init.payload = deepValue(rng.pick([31, 32, 33, 49, 50, 51, 200])))],
    [2, () => (init.priority = nastyInt32(rng))],
    [2, () => (init.runAt = nastySecondsNanos(rng))],
    [2, () => (init.delay = nastySecondsNanos(rng))],
    [2, () => (init.timeout = nastySecondsNanos(rng))],
    [2, () => (init.maxAttempts = nastyInt32(rng))],
    [
      3,
      () =>
        (init.retryPolicy = {
          initialBackoff: nastySecondsNanos(rng),
          maxBackoff: nastySecondsNanos(rng),
          multiplier: nastyDouble(rng),
          jitter: nastyDouble(rng),
        }),
    ],
    [3, () => (init.idempotencyKey = nastyString(rng))],
    [
      3,
      () =>
        (init.labels = Object.fromEntries(
          Array.from({ length: rng.chance(0.2) ? 33 : rng.int(1, 3) }, (_, i) => [rng.chance(0.5) ? `k${i}` : nastyString(rng), nastyString(rng)]),
        )),
    ],
    [2, () => (init.traceparent = rng.chance(0.5) ? nastyString(rng) : `00-${'a1'.repeat(16)}-${'b2'.repeat(8)}-0${rng.pick(['1', 'G', '\u0000'])}`)],
  ])();
}

function spoiledEnqueue(rng: Rng, ctx: FuzzContext, spoilChance: number): Init {
  const init = enqueueInit(rng, ctx);
  if (rng.chance(spoilChance)) for (let i = rng.int(1, 3); i > 0; i--) spoilEnqueue(rng, init, ctx);
  return init;
}

function pageToken(rng: Rng): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  return rng.weighted<() => string>([
    [3, () => b64(`before:${rng.pick(['1', '999999999', '9223372036854775807', '9223372036854775808', '9999999999999999999', '0', '-1', '01'])}`)],
    [2, () => b64(`before:${String(BigInt.asUintN(63, rng.int64()))}`)],
    [2, () => nastyString(rng)],
    [1, () => b64(nastyString(rng))],
  ])();
}

/** Lease request inits: hellos good and bad, credits, results, heartbeats and progress of every kind. */
export function leaseInit(rng: Rng, ctx: FuzzContext, opts: { held?: { jobId: string; leaseToken: string }[]; hello?: boolean } = {}): Init {
  const held = opts.held ?? [];
  const token = () =>
    held.length && rng.chance(0.5)
      ? rng.pick(held).leaseToken
      : rng.pick(['1', '9223372036854775807', '9223372036854775808', '9999999999999999999', '', 'abc', String(rng.uint32())]);
  const jobId = () => (held.length && rng.chance(0.6) ? rng.pick(held).jobId : fuzzId(rng, ctx));
  const init: Init = {};
  if (opts.hello ?? rng.chance(0.15)) {
    init.hello = rng.chance(0.7)
      ? { workerId: `fz-${rng.int(0, 99)}`, queues: [rng.pick(ctx.leaseQueues)], capacity: rng.int(1, 20), protocolVersion: 1 }
      : {
          workerId: rng.chance(0.5) ? nastyString(rng) : 'fz',
          queues: Array.from({ length: rng.chance(0.1) ? 101 : rng.int(0, 3) }, () => fuzzQueue(rng, ctx)),
          capacity: nastyInt32(rng),
          protocolVersion: nastyInt32(rng),
          sdk: nastyString(rng),
        };
  }
  if (rng.chance(0.5)) init.credits = rng.chance(0.6) ? rng.int(0, 10) : nastyInt32(rng);
  if (rng.chance(0.4)) {
    init.results = Array.from({ length: rng.chance(0.1) ? rng.int(20, 200) : rng.int(1, 4) }, () => {
      const heldJob = held.length && rng.chance(0.6) ? rng.pick(held) : null;
      const result: Init = heldJob && rng.chance(0.7) ? { ...heldJob } : { jobId: jobId(), leaseToken: token() };
      if (rng.chance(0.4))
        result.failure = {
          message: rng.chance(0.5) ? randomText(rng, 20) : nastyString(rng),
          nonRetryable: rng.chance(0.3),
          retryAfter: rng.chance(0.5) ? nastySecondsNanos(rng) : undefined,
        };
      else if (rng.chance(0.7)) result.resultJson = nastyJsonBytes(rng, ctx.maxPayloadBytes);
      if (rng.chance(0.15)) result.snooze = { delay: rng.chance(0.8) ? nastySecondsNanos(rng) : undefined };
      return result;
    });
    // Duplicates within one message.
    if (rng.chance(0.2)) (init.results as Init[]).push({ ...(init.results as Init[])[0] });
  }
  if (rng.chance(0.3)) init.heartbeat = { leaseTokens: Array.from({ length: rng.int(0, 5) }, token) };
  if (rng.chance(0.2))
    init.progress = Array.from({ length: rng.int(1, 3) }, () => ({
      jobId: jobId(),
      leaseToken: token(),
      progressJson: nastyJsonBytes(rng, ctx.maxPayloadBytes),
    }));
  return init;
}

/** A near-valid request for `method` (spoiled in a field or a few, mostly), as an init object. */
export function smartInit(rng: Rng, method: DescMethod, ctx: FuzzContext): Init {
  const spoil = 0.75;
  switch (method.name) {
    case 'Enqueue':
      return spoiledEnqueue(rng, ctx, spoil);
    case 'EnqueueBatch': {
      const n = rng.weighted<number>([
        [2, 0],
        [6, rng.int(1, 5)],
        [1, ctx.maxBatchSize],
        [1, ctx.maxBatchSize + 1],
        [1, 200],
      ]);
      const bad = rng.chance(spoil) ? rng.int(0, Math.max(0, n - 1)) : -1;
      return { jobs: Array.from({ length: n }, (_, i) => spoiledEnqueue(rng, ctx, i === bad ? 1 : 0)), idsOnly: rng.chance(0.3) };
    }
    case 'Get':
    case 'Cancel':
    case 'Retry':
      return { id: fuzzId(rng, ctx) };
    case 'Watch':
      return rng.weighted<() => Init>([
        [4, () => ({ id: fuzzId(rng, ctx) })],
        [2, () => ({ queue: fuzzQueue(rng, ctx) })],
        [1, () => ({ id: fuzzId(rng, ctx), queue: fuzzQueue(rng, ctx) })],
        [1, () => ({})],
      ])();
    case 'List': {
      const init: Init = {};
      if (rng.chance(0.5)) init.queue = fuzzQueue(rng, ctx);
      if (rng.chance(0.4)) init.statuses = Array.from({ length: rng.int(1, 4) }, () => (rng.chance(0.7) ? rng.int(0, 6) : nastyInt32(rng)) as JobStatus);
      if (rng.chance(0.5)) init.pageSize = rng.chance(0.5) ? rng.int(0, ctx.maxPageSize) : nastyInt32(rng);
      if (rng.chance(0.4)) init.pageToken = pageToken(rng);
      return init;
    }
    case 'GetQueueStats':
      return {
        queues: Array.from({ length: rng.int(0, 3) }, () => fuzzQueue(rng, ctx)),
        throughputMinutes: rng.chance(0.5) ? rng.int(0, 60) : nastyInt32(rng),
      };
    case 'PauseQueue':
    case 'ResumeQueue':
      return { queue: fuzzQueue(rng, ctx) };
    case 'SetQueueConcurrency':
      return { queue: fuzzQueue(rng, ctx), concurrency: rng.chance(0.5) ? rng.int(0, 5) : nastyInt32(rng) };
    case 'Lease':
      return leaseInit(rng, ctx);
    default:
      return {};
  }
}

/** A request for `method`: near-valid and spoiled, or random from the descriptor. */
export function fuzzMessage(rng: Rng, method: DescMethod, ctx: FuzzContext): MessageShape<DescMessage> {
  const init = rng.chance(0.7) ? smartInit(rng, method, ctx) : randomInit(rng, method.input, 4);
  return create(method.input, init as never);
}

// ---------------------------------------------------------------------------------------------
// The guard

const DIGITS = /^[1-9][0-9]{0,18}$/;

/**
 * Why the broker, were it to accept `message` as a `method` request, could change a job or queue
 * the test protects; null when it cannot. Checked on the message as the broker will decode it
 * (so mutated bytes that happen to decode into such a request are caught too).
 */
export function protectedTarget(method: DescMethod, message: Record<string, any>, ctx: FuzzContext, owned: ReadonlySet<string>): string | null {
  const badQueue = (queue: unknown) => typeof queue === 'string' && ctx.protectedQueues.has(queue);
  switch (method.name) {
    case 'Cancel':
    case 'Retry': {
      const id = String(message.id ?? '');
      if (DIGITS.test(id) && BigInt(id) < FIRST_UNUSED_ID && !owned.has(id)) return `${method.name} of job ${id}, which the fuzzer does not own`;
      return null;
    }
    case 'Enqueue':
      return badQueue(message.queue) ? `Enqueue into protected queue ${message.queue}` : null;
    case 'EnqueueBatch':
      return (message.jobs ?? []).some((job: any) => badQueue(job?.queue)) ? 'EnqueueBatch into a protected queue' : null;
    case 'PauseQueue':
    case 'ResumeQueue':
    case 'SetQueueConcurrency':
    case 'UpdateQueue':
      return badQueue(message.queue) ? `${method.name} of protected queue ${message.queue}` : null;
    case 'UpsertSchedule':
      // Its ticks, and TriggerSchedule, would enqueue into the schedule's queue.
      return badQueue(message.schedule?.queue) ? `UpsertSchedule into protected queue ${message.schedule.queue}` : null;
    case 'BulkAction': {
      // A filter without a queue spans every queue, the protected ones included (CI met a bulk retry
      // of the fixtures' failed and cancelled jobs).
      if (message.dryRun === true) return null;
      const queue = message.filter?.queue;
      return !queue || badQueue(queue) ? `BulkAction over ${queue ? `protected queue ${queue}` : 'every queue'}` : null;
    }
    case 'Lease':
      return (message.hello?.queues ?? []).some(badQueue) ? 'Lease hello naming a protected queue' : null;
    default:
      return null;
  }
}
