/**
 * Promises the README, docs/ and proto/ make that users test first (issue 10, "smaller promises"),
 * each against a real broker over real gRPC, on both ports where the ports differ:
 * limits answer RESOURCE_EXHAUSTED; a caller hanging up is no broker error; the worker SDK announces
 * `completed` only for results the broker took; SDK error messages are the broker's, character for
 * character; every read path hands out the exact JSON text, big integers included.
 */
import http2 from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@connectrpc/connect';
import { create, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import { defaultConfig } from '../server/src/config.ts';
import { startBroker, type RunningBroker } from '../server/src/broker.ts';
import { createLogger } from '../server/src/logger.ts';
import { WatchRequestSchema } from '@baton/worker-sdk/gen/broker';
import { ServerReflectionRequestSchema } from '@baton/worker-sdk/gen/grpc/reflection/v1/reflection';
import { BatonError, Client, Worker, type JobContext } from '@baton/worker-sdk';
import { createTestDatabase, query } from './support/database.ts';
import { grpcClients, refusal } from './support/broker.ts';
import { eventually } from './support/processes.ts';
import { LeaseDriver } from './support/lease-driver.ts';

const MAX_PAYLOAD_BYTES = 4096;

/** What a call that must fail rejected with, as it is (refusal() makes a ConnectError of it). */
async function rejection(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** Every line the broker logged, parsed. */
const logged: { level: string; msg: string; [field: string]: unknown }[] = [];
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
const ports = {} as Record<'main' | 'grpc', { clients: ReturnType<typeof grpcClients>; address: string }>;

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startBroker(
    {
      ...defaultConfig(),
      port: 0,
      grpcPort: 0,
      databaseUrl: db.url,
      // Long enough that no heartbeat falls inside a test: the stale-result test expires a lease by hand.
      leaseTtlMs: 60_000,
      heartbeatIntervalMs: 30_000,
      drainTimeoutMs: 2000,
      fallbackPollMs: 500,
      maxPayloadBytes: MAX_PAYLOAD_BYTES,
      logLevel: 'debug',
    },
    createLogger('debug', (line) => logged.push(JSON.parse(line))),
  );
  ports.main = { clients: grpcClients(broker.url), address: `127.0.0.1:${broker.port}` };
  ports.grpc = { clients: grpcClients(`http://127.0.0.1:${broker.grpcPort}`), address: `127.0.0.1:${broker.grpcPort}` };
});

afterAll(async () => {
  await broker?.stop();
  await db?.drop();
});

describe.each(['main', 'grpc'] as const)('size limits answer RESOURCE_EXHAUSTED (%s port)', (port) => {
  const labels = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, 'v']));
  const over = 'x'.repeat(MAX_PAYLOAD_BYTES);
  const cases = [
    {
      what: 'payload_json above max_payload_bytes',
      job: { payloadJson: bytes(JSON.stringify(over)) },
      mentions: /payload_json is 4098 bytes; the limit is 4096/,
    },
    {
      what: 'a JSON-value payload above max_payload_bytes',
      job: { payload: { kind: { case: 'stringValue' as const, value: over } } },
      mentions: /payload is \d+ bytes as JSON; the limit is 4096/,
    },
    { what: '33 labels', job: { labels: labels(33) }, mentions: /at most 32 labels, got 33/ },
    { what: 'a label key of 65 characters', job: { labels: { ['k'.repeat(65)]: 'v' } }, mentions: /keys must be at most 64/ },
    { what: 'a label value of 257 characters', job: { labels: { k: 'v'.repeat(257) } }, mentions: /values at most 256/ },
  ];

  it.each(cases)('Enqueue: $what', async ({ job, mentions }) => {
    const error = await refusal(ports[port].clients.broker.enqueue({ queue: 'limits', ...job }));
    expect(Code[error.code], error.rawMessage).toBe('ResourceExhausted');
    expect(error.rawMessage).toMatch(mentions);
  });

  it.each(cases)('EnqueueBatch: $what, naming the job', async ({ job, mentions }) => {
    const error = await refusal(ports[port].clients.broker.enqueueBatch({ jobs: [{ queue: 'limits' }, { queue: 'limits', ...job }] }));
    expect(Code[error.code], error.rawMessage).toBe('ResourceExhausted');
    expect(error.rawMessage).toMatch(/^jobs\[1\]\./);
    expect(error.rawMessage).toMatch(mentions);
  });

  it('a malformed label is still bad input, and nothing above was stored', async () => {
    const error = await refusal(ports[port].clients.broker.enqueue({ queue: 'limits', labels: { '': 'v' } }));
    expect(Code[error.code]).toBe('InvalidArgument');
    expect(await query(db.url, `select count(*)::int as n from baton_jobs where queue = 'limits'`)).toEqual([{ n: 0 }]);
  });
});

describe('a caller that hangs up is not a broker error', () => {
  /** One gRPC message, length-prefixed. */
  const frame = <D extends DescMessage>(schema: D, init: MessageInitShape<D>) => {
    const message = toBinary(schema, create(schema, init));
    const out = Buffer.alloc(5 + message.length);
    out.writeUInt32BE(message.length, 1);
    out.set(message, 5);
    return out;
  };

  /**
   * Opens a stream as a client that dies mid-call does: its request never half-closed, then the
   * connection gone. `waitForAnswer` first reads the broker's first answer, as grpcurl's
   * reflection client does before it exits.
   */
  async function hangUp(path: string, request: Buffer, waitForAnswer: boolean): Promise<void> {
    const session = http2.connect(broker.url);
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    stream.on('error', () => {});
    stream.write(request);
    if (waitForAnswer) await new Promise((resolve) => stream.once('data', resolve));
    else {
      // A ping is answered once the frames sent before it are read, so the broker has the call by
      // then; its handler, in this process, starts reading the request within a few turns more.
      await new Promise((resolve) => session.ping(resolve));
      await sleep(20);
    }
    session.destroy();
  }

  const errors = () => logged.filter((line) => line.level === 'error');
  const wentAway = (method: string) => logged.filter((line) => line.msg === 'caller went away' && line.method === method);

  it('a Watch whose caller disconnects mid-request logs nothing at error level', async () => {
    const before = { errors: errors().length, gone: wentAway('Watch').length };
    const { job } = await ports.main.clients.broker.enqueue({ queue: 'hang-up' });
    await hangUp('/baton.v1.Broker/Watch', frame(WatchRequestSchema, { id: job!.id }), false);
    // Wait for the broker to see the caller go, whichever way it logs it.
    await eventually(() => errors().length > before.errors || wentAway('Watch').length > before.gone, 10_000, 'the broker to notice the hang-up');
    expect(errors().slice(before.errors)).toEqual([]);
  });

  it('a reflection stream left open as its client exits logs nothing at error level', async () => {
    const before = { errors: errors().length, gone: wentAway('ServerReflectionInfo').length };
    await hangUp(
      '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
      frame(ServerReflectionRequestSchema, { messageRequest: { case: 'listServices', value: '' } }),
      true,
    );
    await eventually(
      () => errors().length > before.errors || wentAway('ServerReflectionInfo').length > before.gone,
      10_000,
      'the broker to notice the hang-up',
    );
    expect(errors().slice(before.errors)).toEqual([]);
  });

  it.each(['main', 'grpc'] as const)('a Watch the SDK cancels logs nothing at error level (%s port)', async (port) => {
    const before = errors().length;
    const client = new Client({ address: ports[port].address });
    try {
      const { id } = await client.enqueue('hang-up', {});
      const stop = new AbortController();
      const watch = client.watch(id, { signal: stop.signal });
      await watch.next();
      stop.abort();
      await expect(watch.next()).rejects.toThrow();
      // The cancel ends the broker's side of the Watch; a Get on the same connection comes after it.
      await client.get(id);
    } finally {
      client.close();
    }
    expect(errors().slice(before)).toEqual([]);
  });
});

describe('worker SDK events follow what the broker recorded', () => {
  it('a result refused as stale emits refused, not completed; an accepted one emits completed', async () => {
    const events: { worker: string; event: string; attempt: number; detail?: unknown }[] = [];
    const started = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    const startWorker = async (name: string) => {
      const worker = new Worker({
        address: ports.main.address,
        concurrency: 1,
        logger: {},
        handlers: {
          'stale-result': async (_payload, job) => {
            if (job.attempt === 1) {
              started.resolve();
              await release.promise;
            }
            return { attempt: job.attempt };
          },
        },
      });
      worker.on('completed', (job, result) => events.push({ worker: name, event: 'completed', attempt: job.attempt, detail: result }));
      worker.on('failed', (job, error) => events.push({ worker: name, event: 'failed', attempt: job.attempt, detail: error.message }));
      worker.on('refused', (job, reason) => events.push({ worker: name, event: 'refused', attempt: job.attempt, detail: reason }));
      await worker.start();
      return worker;
    };
    const client = new Client({ address: ports.main.address });
    const first = await startWorker('first');
    let second: Worker | undefined;
    try {
      const { id } = await client.enqueue('stale-result', {}, { maxAttempts: 3, retryPolicy: { initialBackoffMs: 0 } });
      await started.promise;
      // The worker's session lapses as if its heartbeats had stopped, and the reaper takes the lease.
      await query(db.url, `update baton_sessions set expires_at = now() - interval '1 second'`);
      await broker.store.sessionReapExpired({});
      expect((await client.get(id)).status).not.toBe('running');
      release.resolve();
      await eventually(() => events.length > 0, 10_000, 'an event for the late result');
      expect(events).toEqual([{ worker: 'first', event: 'refused', attempt: 1, detail: expect.stringMatching(/\w/) }]);
      expect((await client.get(id)).status).not.toBe('completed');

      // The first worker's session is gone; a second worker runs the next attempt.
      await first.close({ timeoutMs: 2000 });
      second = await startWorker('second');
      expect(await client.result(id)).toEqual({ attempt: 2 });
      await eventually(() => events.length > 1, 10_000, 'the completed event');
      expect(events.slice(1)).toEqual([{ worker: 'second', event: 'completed', attempt: 2, detail: { attempt: 2 } }]);
    } finally {
      client.close();
      await first.close({ timeoutMs: 2000 });
      await second?.close({ timeoutMs: 2000 });
    }
  });
});

describe.each(['main', 'grpc'] as const)("SDK error messages are the broker's, character for character (%s port)", (port) => {
  // Reserved characters the main port's encoding leaves escaped after grpc-js decodes, a literal
  // "%" (alone, before hex digits that spell a reserved character, and before "25"), and non-ASCII.
  const queue = 'a;b,c/d?e:f@g&h=i+j$k#l %3B %25 %zz 100% ü';

  it('in a refusal of a unary call', async () => {
    const client = new Client({ address: ports[port].address });
    try {
      const error = await rejection(client.enqueue(queue, {}));
      expect(error).toBeInstanceOf(BatonError);
      expect((error as BatonError).code).toBe('INVALID_ARGUMENT');
      expect((error as BatonError).message).toBe(`INVALID_ARGUMENT: queue "${queue}" is not a valid queue name: use 1-128 of A-Z a-z 0-9 _ . : -`);
    } finally {
      client.close();
    }
  });

  it('in a refusal of a stream', async () => {
    const client = new Client({ address: ports[port].address });
    try {
      const error = await rejection(client.watchQueue(queue).next());
      expect(error).toBeInstanceOf(BatonError);
      expect((error as BatonError).message).toBe(`INVALID_ARGUMENT: queue "${queue}" is not a valid queue name: use 1-128 of A-Z a-z 0-9 _ . : -`);
    } finally {
      client.close();
    }
  });
});

describe('exact JSON on every read path', () => {
  // Beyond 2^64 too: only text keeps it. Written as PostgreSQL's jsonb prints it (keys sorted, a
  // space after each separator), so it comes back byte for byte.
  const payload = '{"m": [900719925474099312345, 1.5], "n": 12345678901234567890}';
  const result = '{"sum": 98765432109876543210}';

  it('Enqueue, Get, List and Watch hand back payload_json and result_json as stored, over gRPC', async () => {
    const { broker: rpc } = ports.main.clients;
    const enqueued = await rpc.enqueue({ queue: 'exact-json', payloadJson: bytes(payload) });
    const id = enqueued.job!.id;
    expect(text(enqueued.job!.payloadJson)).toBe(payload);
    expect(text((await rpc.get({ id })).job!.payloadJson)).toBe(payload);
    expect(text((await rpc.list({ queue: 'exact-json' })).jobs[0].payloadJson)).toBe(payload);

    const worker = new LeaseDriver(rpc);
    worker.hello(['exact-json'], 1, 1);
    const [assigned] = await worker.jobsReceived(1);
    expect(text(assigned.payloadJson)).toBe(payload);
    worker.send({ results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, resultJson: bytes(result) }] });
    await worker.until((messages) => messages.flatMap((m) => m.acks).find((ack) => ack.accepted));
    worker.end();
    await worker.done;

    const read = (await rpc.get({ id })).job!;
    expect(text(read.resultJson)).toBe(result);
    // The JSON-value twin is still there, as a double.
    expect(read.payload?.kind.case).toBe('structValue');
    for await (const { job } of rpc.watch({ id })) {
      expect(text(job!.payloadJson)).toBe(payload);
      expect(text(job!.resultJson)).toBe(result);
      break;
    }
    const [page] = (await rpc.list({ queue: 'exact-json' })).jobs;
    expect(text(page.resultJson)).toBe(result);
  });

  it('Get over Connect JSON (curl) carries the exact text, base64 as proto JSON has bytes', async () => {
    const { job } = await ports.main.clients.broker.enqueue({ queue: 'exact-json-curl', payloadJson: bytes(payload) });
    const response = await fetch(`${broker.url}/baton.v1.Broker/Get`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: job!.id }),
    });
    const body = await response.json();
    expect(Buffer.from(body.job.payloadJson, 'base64').toString()).toBe(payload);
    // What a JSON value can hold: the number rounded to a double.
    expect(body.job.payload.n).toBe(12345678901234567890);
    expect(body.job.resultJson).toBeUndefined();
  });

  it('a worker handler gets the exact text in ctx.payloadJson beside the parsed payload', async () => {
    const seen = Promise.withResolvers<{ payload: unknown; payloadJson: string }>();
    const worker = new Worker({
      address: ports.grpc.address,
      logger: {},
      handlers: { 'exact-json-worker': (received, job) => seen.resolve({ payload: received, payloadJson: job.payloadJson }) },
    });
    await worker.start();
    try {
      await ports.grpc.clients.broker.enqueue({ queue: 'exact-json-worker', payloadJson: bytes(payload) });
      const { payload: parsed, payloadJson } = await seen.promise;
      expect(payloadJson).toBe(payload);
      expect((parsed as { n: number }).n).toBe(12345678901234567890);
    } finally {
      await worker.close({ timeoutMs: 2000 });
    }
  });

  it('the SDK Client hands out the exact text beside the parsed value', async () => {
    const client = new Client({ address: ports.main.address });
    try {
      const { id } = await ports.main.clients.broker.enqueue({ queue: 'exact-json-sdk', payloadJson: bytes(payload) }).then((r) => r.job!);
      const job = await client.get(id);
      expect(job.payloadJson).toBe(payload);
      expect((job.payload as { n: number }).n).toBe(12345678901234567890);
      const exact = JSON.parse(job.payloadJson, (_key, value, context?: { source?: string }) =>
        typeof value === 'number' && !Number.isSafeInteger(value) && context?.source && /^-?\d+$/.test(context.source) ? BigInt(context.source) : value,
      );
      expect(exact.n).toBe(12345678901234567890n);
      expect(job.resultJson).toBeUndefined();
    } finally {
      client.close();
    }
  });
});
