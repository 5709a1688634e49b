/**
 * Bad input on every RPC: answered with the right gRPC code and a message that names what to fix,
 * with nothing stored changed, and no harm done to anyone else using the broker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, ConnectError } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { EnqueueRequestSchema } from '../server/src/gen/baton/v1/broker_pb.ts';
import { JobStatus } from '../server/src/gen/baton/v1/job_pb.ts';
import type { JobAssignment, LeaseRequestSchema } from '../server/src/gen/baton/v1/lease_pb.ts';
import type { RunningBroker } from '../server/src/broker.ts';
import { createTestDatabase, query } from './support/database.ts';
import { grpcClients, startTestBroker } from './support/broker.ts';
import { LeaseDriver } from './support/lease-driver.ts';

type EnqueueInit = MessageInitShape<typeof EnqueueRequestSchema>;
type LeaseInit = MessageInitShape<typeof LeaseRequestSchema>;
type ResultInit = NonNullable<LeaseInit['results']>[number];

const MAX_PAYLOAD_BYTES = 4096;
const MAX_BATCH_SIZE = 10;
const MAX_PAGE_SIZE = 100;

const bytes = (text: string) => new TextEncoder().encode(text);
const json = (value: unknown) => bytes(JSON.stringify(value));

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
let clients: ReturnType<typeof grpcClients>;

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startTestBroker(db.url, { maxPayloadBytes: MAX_PAYLOAD_BYTES, maxBatchSize: MAX_BATCH_SIZE, maxPageSize: MAX_PAGE_SIZE });
  clients = grpcClients(broker.url);
});

afterAll(async () => {
  await broker?.stop();
  await db?.drop();
});

/** Everything a refused call must leave as it was: the jobs (count and state) and the queues. */
async function stored(): Promise<{ jobs: number; jobDigest: string; queues: number; queueDigest: string }> {
  const [row] = await query(
    db.url,
    `select
       (select count(*)::int from baton_jobs) as jobs,
       (select md5(coalesce(string_agg(concat_ws('/', id, queue, status, attempt, lease_token, cancel_requested, run_at, finished_at), ',' order by id), ''))
          from baton_jobs) as "jobDigest",
       (select count(*)::int from baton_queues) as queues,
       (select md5(coalesce(string_agg(concat_ws('/', name, paused, concurrency), ',' order by name), '')) from baton_queues) as "queueDigest"`,
  );
  return row;
}

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error('expected the call to be refused, but it succeeded');
}

function expectMentions(text: string, mentions: string | RegExp): void {
  if (typeof mentions === 'string') expect(text).toContain(mentions);
  else expect(text).toMatch(mentions);
}

/** The call fails with `code`, its message mentions `mentions`, and nothing stored changed. */
async function expectRefused(call: () => Promise<unknown>, code: Code, mentions: string | RegExp): Promise<ConnectError> {
  const before = await stored();
  const error = await refusal(call());
  expect(Code[error.code], error.rawMessage).toBe(Code[code]);
  expectMentions(error.rawMessage, mentions);
  expect(await stored()).toEqual(before);
  return error;
}

/** Reads a server stream to its end. */
async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

/** Opens a stream, sends `messages` one after the other, and returns the error the stream ended with. */
async function leaseRefusal(...messages: LeaseInit[]): Promise<ConnectError> {
  const driver = new LeaseDriver(clients.broker);
  for (const message of messages) driver.send(message);
  await driver.done;
  driver.end();
  if (!driver.error) throw new Error('expected the Lease stream to be refused, but it ended cleanly');
  return ConnectError.from(driver.error);
}

const hello = (queues: string[], capacity = 1, credits = 0): LeaseInit => ({
  hello: { workerId: 'bad-input', queues, capacity, protocolVersion: 1 },
  credits,
});

const success = (job: JobAssignment, result: unknown = 'ok'): ResultInit => ({ jobId: job.jobId, leaseToken: job.leaseToken, resultJson: json(result) });

/** Completes one job through a Lease stream of its own. */
async function completedJob(queue: string): Promise<string> {
  const { job } = await clients.broker.enqueue({ queue });
  const worker = new LeaseDriver(clients.broker);
  worker.hello([queue], 1, 1);
  const [assigned] = await worker.jobsReceived(1);
  worker.send({ results: [success(assigned)] });
  await worker.until((m) => m.flatMap((x) => x.acks).find((ack) => ack.accepted));
  worker.end();
  await worker.done;
  return job!.id;
}

describe('Enqueue', () => {
  const nested = (depth: number) => bytes('['.repeat(depth) + ']'.repeat(depth));
  const labels = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, 'v']));

  const cases: { what: string; request: EnqueueInit; mentions: string | RegExp }[] = [
    { what: 'an empty queue name', request: { queue: '' }, mentions: 'queue' },
    { what: 'a queue name of 129 characters', request: { queue: 'q'.repeat(129) }, mentions: 'queue' },
    { what: 'a queue name with a space', request: { queue: 'my queue' }, mentions: 'queue "my queue"' },
    { what: 'a queue name with a slash', request: { queue: 'emails/high' }, mentions: 'queue "emails/high"' },
    { what: 'a queue name with a newline', request: { queue: 'q\n' }, mentions: 'queue' },
    { what: 'payload_json that is not JSON', request: { queue: 'bad', payloadJson: bytes('{not json') }, mentions: /payload_json is not valid JSON/ },
    { what: 'payload_json that is not UTF-8', request: { queue: 'bad', payloadJson: new Uint8Array([0x22, 0xff, 0xfe, 0x22]) }, mentions: /payload_json is not valid UTF-8/ },
    { what: 'payload_json nested 100 deep', request: { queue: 'bad', payloadJson: nested(100) }, mentions: 'payload_json nests 100 levels deep; the limit is 32' },
    { what: 'payload_json nested 33 deep', request: { queue: 'bad', payloadJson: nested(33) }, mentions: 'payload_json nests 33 levels deep' },
    { what: 'a payload Value with no kind set', request: { queue: 'bad', payload: {} }, mentions: 'payload' },
    { what: 'payload_json holding \\u0000', request: { queue: 'bad', payloadJson: bytes('"a\\u0000b"') }, mentions: /payload_json contains \\u0000/ },
    {
      what: 'payload_json above the size limit',
      request: { queue: 'bad', payloadJson: json('x'.repeat(MAX_PAYLOAD_BYTES)) },
      mentions: `payload_json is ${MAX_PAYLOAD_BYTES + 2} bytes; the limit is ${MAX_PAYLOAD_BYTES}`,
    },
    {
      what: 'a JSON-value payload above the size limit',
      request: { queue: 'bad', payload: { kind: { case: 'stringValue', value: 'x'.repeat(MAX_PAYLOAD_BYTES) } } },
      mentions: /^payload is \d+ bytes as JSON; the limit is 4096/,
    },
    { what: 'priority 1001', request: { queue: 'bad', priority: 1001 }, mentions: 'priority must be -1000..1000' },
    { what: 'priority -1001', request: { queue: 'bad', priority: -1001 }, mentions: 'priority must be -1000..1000' },
    {
      what: 'run_at together with delay',
      request: { queue: 'bad', runAt: timestampFromDate(new Date(Date.now() + 60_000)), delay: durationFromMs(1000) },
      mentions: 'run_at and delay are exclusive',
    },
    { what: 'a negative delay', request: { queue: 'bad', delay: durationFromMs(-1000) }, mentions: 'delay must be between 0 and 10 years' },
    { what: 'a delay of 20 years', request: { queue: 'bad', delay: durationFromMs(20 * 365 * 24 * 3600_000) }, mentions: 'delay' },
    { what: 'a negative timeout', request: { queue: 'bad', timeout: durationFromMs(-5) }, mentions: 'timeout must be between 0 and 10 years' },
    { what: 'run_at before 1970', request: { queue: 'bad', runAt: { seconds: -100n, nanos: 0 } }, mentions: 'run_at must be a time' },
    { what: 'max_attempts -1', request: { queue: 'bad', maxAttempts: -1 }, mentions: 'max_attempts must be 1-1000' },
    { what: 'max_attempts 1001', request: { queue: 'bad', maxAttempts: 1001 }, mentions: 'max_attempts must be 1-1000' },
    { what: 'a retry multiplier below 1', request: { queue: 'bad', retryPolicy: { multiplier: 0.5 } }, mentions: 'retry_policy.multiplier must be 1-100' },
    { what: 'a NaN retry multiplier', request: { queue: 'bad', retryPolicy: { multiplier: Number.NaN } }, mentions: 'retry_policy.multiplier' },
    { what: 'a retry jitter above 1', request: { queue: 'bad', retryPolicy: { jitter: 1.5 } }, mentions: 'retry_policy.jitter must be 0-1' },
    { what: 'a negative retry jitter', request: { queue: 'bad', retryPolicy: { jitter: -0.1 } }, mentions: 'retry_policy.jitter' },
    {
      what: 'a negative initial backoff',
      request: { queue: 'bad', retryPolicy: { initialBackoff: durationFromMs(-1) } },
      mentions: 'retry_policy.initial_backoff',
    },
    { what: '33 labels', request: { queue: 'bad', labels: labels(33) }, mentions: 'labels: at most 32 labels, got 33' },
    { what: 'an empty label key', request: { queue: 'bad', labels: { '': 'v' } }, mentions: 'labels' },
    { what: 'a label value of 257 characters', request: { queue: 'bad', labels: { k: 'v'.repeat(257) } }, mentions: 'labels' },
    { what: 'a traceparent that is not W3C', request: { queue: 'bad', traceparent: 'trace-me' }, mentions: 'traceparent must be a W3C trace context' },
    {
      what: 'a traceparent with upper-case hex',
      request: { queue: 'bad', traceparent: `00-${'A'.repeat(32)}-${'b'.repeat(16)}-01` },
      mentions: 'traceparent',
    },
    { what: 'an idempotency key of 201 characters', request: { queue: 'bad', idempotencyKey: 'k'.repeat(201) }, mentions: 'idempotency_key must be at most 200' },
  ];

  it.each(cases)('refuses $what with INVALID_ARGUMENT', async ({ request, mentions }) => {
    await expectRefused(() => clients.broker.enqueue(request), Code.InvalidArgument, mentions);
  });

  it('accepts the limits themselves (so the cases above fail for the reason given)', async () => {
    const { job } = await clients.broker.enqueue({
      queue: 'q'.repeat(128),
      payloadJson: json('x'.repeat(MAX_PAYLOAD_BYTES - 2)),
      priority: -1000,
      maxAttempts: 1000,
      retryPolicy: { multiplier: 1, jitter: 1 },
      labels: labels(32),
      idempotencyKey: 'k'.repeat(200),
      traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
    });
    expect(job?.status).toBe(JobStatus.PENDING);
  });

  it('accepts a payload at the nesting limit, and it can be read back by Get and List', async () => {
    // Job.payload is a google.protobuf.Value: deep JSON is deeper still as protobuf, and a job that
    // decoders could not read would break every List page holding it.
    const { job } = await clients.broker.enqueue({ queue: 'ok-nested', payloadJson: nested(32) });
    expect(job?.status).toBe(JobStatus.PENDING);
    expect((await clients.broker.get({ id: job!.id })).job?.id).toBe(job!.id);
    expect((await clients.broker.list({ queue: 'ok-nested' })).jobs.map((j) => j.id)).toEqual([job!.id]);
  });
});

describe('EnqueueBatch', () => {
  it('refuses an empty batch with INVALID_ARGUMENT', async () => {
    await expectRefused(() => clients.broker.enqueueBatch({ jobs: [] }), Code.InvalidArgument, 'jobs must hold at least one job');
  });

  it('refuses a batch above the limit with RESOURCE_EXHAUSTED', async () => {
    const jobs = Array.from({ length: MAX_BATCH_SIZE + 1 }, () => ({ queue: 'batch-big' }));
    await expectRefused(
      () => clients.broker.enqueueBatch({ jobs }),
      Code.ResourceExhausted,
      `a batch holds at most ${MAX_BATCH_SIZE} jobs, got ${MAX_BATCH_SIZE + 1}`,
    );
  });

  it.each([
    { what: 'a bad queue', bad: { queue: 'no spaces' }, mentions: 'jobs[2].queue' },
    { what: 'bad payload_json', bad: { queue: 'batch-one-bad', payloadJson: bytes('nope') }, mentions: 'jobs[2].payload_json' },
    { what: 'a bad priority', bad: { queue: 'batch-one-bad', priority: 5000 }, mentions: 'jobs[2].priority' },
  ])('refuses one job with $what among good ones, naming jobs[i], and stores none', async ({ bad, mentions }) => {
    const good = { queue: 'batch-one-bad', payloadJson: json({ ok: true }) };
    await expectRefused(() => clients.broker.enqueueBatch({ jobs: [good, good, bad, good] }), Code.InvalidArgument, mentions);
    expect(await query(db.url, `select id from baton_jobs where queue = 'batch-one-bad'`)).toEqual([]);
  });
});

describe('Get, Cancel and Retry', () => {
  const badIds = [
    { what: 'an empty id', id: '' },
    { what: 'a non-numeric id', id: 'job-42' },
    { what: 'a negative id', id: '-5' },
    { what: 'a fractional id', id: '1.5' },
    { what: 'an id with leading zeros', id: '007' },
    { what: 'id 0', id: '0' },
    { what: 'an id of 2^63', id: '9223372036854775808' },
    { what: 'an id above 2^64', id: '99999999999999999999999' },
  ];
  const rpcs = [
    { rpc: 'Get', call: (id: string) => clients.broker.get({ id }) },
    { rpc: 'Cancel', call: (id: string) => clients.broker.cancel({ id }) },
    { rpc: 'Retry', call: (id: string) => clients.broker.retry({ id }) },
  ];

  it.each(rpcs.flatMap(({ rpc, call }) => badIds.map(({ what, id }) => ({ rpc, call, what, id }))))(
    '$rpc refuses $what with INVALID_ARGUMENT',
    async ({ call, id }) => {
      await expectRefused(() => call(id), Code.InvalidArgument, `id "${id.slice(0, 40)}" is not a job id`);
    },
  );

  it.each(rpcs)('$rpc answers NOT_FOUND for an id that names no job', async ({ call }) => {
    await expectRefused(() => call('9223372036854775807'), Code.NotFound, 'job 9223372036854775807 does not exist');
  });

  it('Cancel of a COMPLETED job is FAILED_PRECONDITION, naming its status', async () => {
    const id = await completedJob('terminal-completed');
    await expectRefused(() => clients.broker.cancel({ id }), Code.FailedPrecondition, `job ${id} is COMPLETED`);
  });

  it('Cancel of a CANCELLED job is FAILED_PRECONDITION', async () => {
    const { job } = await clients.broker.enqueue({ queue: 'terminal-cancelled' });
    await clients.broker.cancel({ id: job!.id });
    await expectRefused(() => clients.broker.cancel({ id: job!.id }), Code.FailedPrecondition, `job ${job!.id} is CANCELLED`);
  });

  it('Retry of a PENDING job is FAILED_PRECONDITION, naming its status', async () => {
    const { job } = await clients.broker.enqueue({ queue: 'retry-pending' });
    await expectRefused(() => clients.broker.retry({ id: job!.id }), Code.FailedPrecondition, `job ${job!.id} is PENDING`);
  });

  it('Retry of a SCHEDULED job is FAILED_PRECONDITION', async () => {
    const { job } = await clients.broker.enqueue({ queue: 'retry-scheduled', delay: durationFromMs(3_600_000) });
    await expectRefused(() => clients.broker.retry({ id: job!.id }), Code.FailedPrecondition, `job ${job!.id} is SCHEDULED`);
  });

  it('Retry of a COMPLETED job is FAILED_PRECONDITION', async () => {
    const id = await completedJob('retry-completed');
    await expectRefused(() => clients.broker.retry({ id }), Code.FailedPrecondition, `job ${id} is COMPLETED`);
  });
});

describe('List', () => {
  it.each([-1, MAX_PAGE_SIZE + 1, 2_147_483_647])('refuses page_size %i with INVALID_ARGUMENT', async (pageSize) => {
    await expectRefused(() => clients.broker.list({ pageSize }), Code.InvalidArgument, `page_size must be 1-${MAX_PAGE_SIZE}`);
  });

  it.each([
    { what: 'garbage', pageToken: 'garbage!!' },
    { what: 'base64 of something else', pageToken: Buffer.from('after:12').toString('base64url') },
    { what: 'a token with a non-numeric id', pageToken: Buffer.from('before:abc').toString('base64url') },
    { what: 'a bare job id', pageToken: '12' },
  ])('refuses a page_token that is $what with INVALID_ARGUMENT', async ({ pageToken }) => {
    await expectRefused(() => clients.broker.list({ pageToken }), Code.InvalidArgument, 'page_token is not one this broker issued');
  });

  it('refuses an unknown status enum value with INVALID_ARGUMENT', async () => {
    await expectRefused(() => clients.broker.list({ statuses: [JobStatus.PENDING, 99 as JobStatus] }), Code.InvalidArgument, 'statuses: unknown status 99');
  });

  it('refuses a bad queue filter with INVALID_ARGUMENT', async () => {
    await expectRefused(() => clients.broker.list({ queue: 'a b' }), Code.InvalidArgument, 'queue "a b"');
  });
});

describe('Watch', () => {
  it.each([
    { what: 'neither id nor queue', request: {} },
    { what: 'both id and queue', request: { id: '1', queue: 'watched' } },
  ])('refuses $what with INVALID_ARGUMENT', async ({ request }) => {
    await expectRefused(() => drain(clients.broker.watch(request)), Code.InvalidArgument, 'give exactly one of id or queue');
  });

  it('refuses a malformed id with INVALID_ARGUMENT', async () => {
    await expectRefused(() => drain(clients.broker.watch({ id: 'abc' })), Code.InvalidArgument, 'id "abc" is not a job id');
  });

  it('refuses a bad queue name with INVALID_ARGUMENT', async () => {
    await expectRefused(() => drain(clients.broker.watch({ queue: 'no/slashes' })), Code.InvalidArgument, 'queue "no/slashes"');
  });

  it('answers NOT_FOUND for an id that names no job', async () => {
    await expectRefused(() => drain(clients.broker.watch({ id: '9223372036854775807' })), Code.NotFound, 'job 9223372036854775807 does not exist');
  });

  it('leaves nothing registered behind a refused Watch', async () => {
    // A leaked listener per refused call would pass Node's limit of 10 per event and warn.
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < 15; i++) {
        expect((await refusal(drain(clients.broker.watch({ id: `${9_000_000_000 + i}` })))).code).toBe(Code.NotFound);
      }
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
  });
});

describe('Admin', () => {
  it.each([
    { rpc: 'GetQueueStats', call: () => clients.admin.getQueueStats({ queues: ['ok', 'not ok'] }), mentions: 'queues[1] "not ok"' },
    { rpc: 'PauseQueue', call: () => clients.admin.pauseQueue({ queue: '' }), mentions: 'queue ""' },
    { rpc: 'ResumeQueue', call: () => clients.admin.resumeQueue({ queue: 'a/b' }), mentions: 'queue "a/b"' },
    { rpc: 'SetQueueConcurrency', call: () => clients.admin.setQueueConcurrency({ queue: 'x y', concurrency: 1 }), mentions: 'queue "x y"' },
  ])('$rpc refuses a bad queue name with INVALID_ARGUMENT', async ({ call, mentions }) => {
    await expectRefused(call, Code.InvalidArgument, mentions);
  });

  it.each([
    { rpc: 'PauseQueue', call: () => clients.admin.pauseQueue({ queue: 'never-used' }) },
    { rpc: 'ResumeQueue', call: () => clients.admin.resumeQueue({ queue: 'never-used' }) },
  ])('$rpc of an unknown queue is NOT_FOUND and creates nothing', async ({ call }) => {
    await expectRefused(call, Code.NotFound, 'queue "never-used" does not exist');
  });

  it.each([-1, 1_000_001])('SetQueueConcurrency refuses concurrency %i with INVALID_ARGUMENT', async (concurrency) => {
    await expectRefused(
      () => clients.admin.setQueueConcurrency({ queue: 'concurrency-q', concurrency }),
      Code.InvalidArgument,
      `concurrency must be 0 (no limit) to 1000000, got ${concurrency}`,
    );
  });
});

describe('the Lease stream refuses protocol violations', () => {
  it.each<{ what: string; messages: LeaseInit[]; code: Code; mentions: string | RegExp }>([
    { what: 'a first message without hello', messages: [{ credits: 5 }], code: Code.FailedPrecondition, mentions: 'must carry hello' },
    { what: 'hello with no queues', messages: [hello([])], code: Code.InvalidArgument, mentions: 'hello.queues must name 1-100 queues' },
    {
      what: 'hello with 101 queues',
      messages: [hello(Array.from({ length: 101 }, (_, i) => `q${i}`))],
      code: Code.InvalidArgument,
      mentions: 'hello.queues must name 1-100 queues',
    },
    { what: 'hello with a bad queue name', messages: [hello(['ok', 'not ok'])], code: Code.InvalidArgument, mentions: 'hello.queues: "not ok"' },
    { what: 'hello with capacity 0', messages: [hello(['lease-bad'], 0)], code: Code.InvalidArgument, mentions: 'hello.capacity must be 1-100000, got 0' },
    {
      what: 'hello with capacity 10^9',
      messages: [hello(['lease-bad'], 1_000_000_000)],
      code: Code.InvalidArgument,
      mentions: 'hello.capacity must be 1-100000, got 1000000000',
    },
    {
      what: 'hello with no worker id',
      messages: [{ hello: { workerId: '', queues: ['lease-bad'], capacity: 1 } }],
      code: Code.InvalidArgument,
      mentions: 'hello.worker_id',
    },
    {
      what: 'hello with a protocol version from the future',
      messages: [{ hello: { workerId: 'w', queues: ['lease-bad'], capacity: 1, protocolVersion: 99 } }],
      code: Code.FailedPrecondition,
      mentions: 'protocol version 99',
    },
    { what: 'a second hello', messages: [hello(['lease-bad']), hello(['lease-bad'])], code: Code.FailedPrecondition, mentions: 'hello was already received' },
    { what: 'negative credits', messages: [hello(['lease-bad']), { credits: -1 }], code: Code.InvalidArgument, mentions: 'credits must not be negative, got -1' },
    {
      what: 'absurd credits (2^31-1)',
      messages: [hello(['lease-bad']), { credits: 2_147_483_647 }],
      code: Code.ResourceExhausted,
      mentions: /credits outstanding would be 2147483647, above the broker's limit/,
    },
    {
      what: 'absurd credits on hello itself',
      messages: [hello(['lease-bad'], 1, 2_147_483_647)],
      code: Code.ResourceExhausted,
      mentions: 'credits outstanding',
    },
  ])('ends the stream on $what', async ({ messages, code, mentions }) => {
    const before = await stored();
    const error = await leaseRefusal(...messages);
    expect(Code[error.code], error.rawMessage).toBe(Code[code]);
    expectMentions(error.rawMessage, mentions);
    expect(await stored()).toEqual(before);
  });
});

describe('the Lease stream refuses bad results one by one', () => {
  let queueCounter = 0;

  /** A stream holding two jobs of a queue of its own, plus a third job it does not hold. */
  async function holding() {
    const queue = `lease-results-${++queueCounter}`;
    const { jobs } = await clients.broker.enqueueBatch({ jobs: [{ queue }, { queue }] });
    const driver = new LeaseDriver(clients.broker);
    driver.hello([queue], 2, 2);
    const [good, held] = await driver.jobsReceived(2);
    expect(new Set([good.jobId, held.jobId])).toEqual(new Set(jobs.map((j) => j.job!.id)));
    const other = (await clients.broker.enqueue({ queue: `${queue}-other` })).job!;
    return { driver, good, held, other };
  }

  const status = async (id: string) => (await clients.broker.get({ id })).job!.status;

  const cases: {
    what: string;
    bad: (ctx: { good: JobAssignment; held: JobAssignment; other: { id: string } }) => ResultInit[];
    mentions: string | RegExp;
    /** The result cannot be stored: the attempt is recorded as failed instead of the job staying RUNNING. */
    unstorable?: boolean;
  }[] = [
    { what: 'a job the stream does not hold', bad: ({ other }) => [{ jobId: other.id, leaseToken: '123456789' }], mentions: 'this stream does not hold that job' },
    { what: 'a held token under another job id', bad: ({ held, other }) => [{ jobId: other.id, leaseToken: held.leaseToken }], mentions: 'does not hold that job' },
    { what: 'a garbage job_id', bad: ({ held }) => [{ jobId: 'job-1', leaseToken: held.leaseToken }], mentions: 'job_id and lease_token must be' },
    { what: 'a garbage lease_token', bad: ({ held }) => [{ jobId: held.jobId, leaseToken: 'abc' }], mentions: 'job_id and lease_token must be' },
    { what: 'empty job_id and lease_token', bad: () => [{}], mentions: 'job_id and lease_token must be' },
    { what: 'result_json that is not JSON', bad: ({ held }) => [{ jobId: held.jobId, leaseToken: held.leaseToken, resultJson: bytes('{oops') }], mentions: 'result_json is not valid', unstorable: true },
    {
      what: 'result_json that is not UTF-8',
      bad: ({ held }) => [{ jobId: held.jobId, leaseToken: held.leaseToken, resultJson: new Uint8Array([0x22, 0xc3, 0x28, 0x22]) }],
      mentions: 'result_json is not valid UTF-8',
      unstorable: true,
    },
    {
      what: 'result_json above the size limit',
      bad: ({ held }) => [{ jobId: held.jobId, leaseToken: held.leaseToken, resultJson: json('x'.repeat(MAX_PAYLOAD_BYTES)) }],
      mentions: `above the limit of ${MAX_PAYLOAD_BYTES}`,
      unstorable: true,
    },
    { what: 'a duplicate of the good result', bad: ({ good }) => [success(good, 'again')], mentions: 'duplicate result' },
  ];

  it.each(cases)('refuses $what in acks; the good result beside it is recorded and the stream stays open', async ({ bad, mentions, unstorable }) => {
    const { driver, good, held, other } = await holding();
    const badResults = bad({ good, held, other });
    driver.send({ results: [success(good), ...badResults] });
    const acks = await driver.until((m) => m.find((x) => x.acks.length > 0)?.acks);

    expect(acks).toHaveLength(1 + badResults.length);
    expect(acks[0]).toMatchObject({ jobId: good.jobId, leaseToken: good.leaseToken, accepted: true, error: '' });
    for (const ack of acks.slice(1)) {
      expect(ack.accepted).toBe(false);
      expectMentions(ack.error, mentions);
    }
    expect(await status(good.jobId)).toBe(JobStatus.COMPLETED);
    expect(await status(other.id)).toBe(JobStatus.PENDING);
    if (unstorable) {
      // The attempt ended; its result could not be kept, so it counts as failed for good.
      const failed = (await clients.broker.get({ id: held.jobId })).job!;
      expect(failed.status).toBe(JobStatus.FAILED);
      expect(failed.errors.at(-1)?.message).toContain('could not be stored');
      driver.end();
      await driver.done;
      expect(driver.error).toBeNull();
      return;
    }
    expect(await status(held.jobId)).toBe(JobStatus.RUNNING);

    // Still open, and still holding the other job: its proper result is recorded.
    driver.send({ results: [success(held)] });
    const next = await driver.until((m) => m.filter((x) => x.acks.length > 0)[1]?.acks);
    expect(next).toEqual([expect.objectContaining({ jobId: held.jobId, accepted: true })]);
    expect(await status(held.jobId)).toBe(JobStatus.COMPLETED);
    driver.end();
    await driver.done;
    expect(driver.error).toBeNull();
  });

  it('answers heartbeats with unknown or malformed tokens in `lost`, and keeps the held one', async () => {
    const { driver, held, good } = await holding();
    driver.send({ heartbeat: { leaseTokens: [held.leaseToken, '987654321', 'not-a-token', ''] } });
    const lost = await driver.until((m) => m.find((x) => x.lost.length > 0)?.lost);
    expect([...lost].sort()).toEqual(['', '987654321', 'not-a-token']);
    driver.send({ results: [success(held), success(good)] });
    const acks = await driver.until((m) => m.find((x) => x.acks.length > 0)?.acks);
    expect(acks.map((ack) => ack.accepted)).toEqual([true, true]);
    driver.end();
    await driver.done;
    expect(driver.error).toBeNull();
  });
});

describe('a misbehaving stream harms nobody else', () => {
  it('a good worker on the same queue receives and completes every job while bad streams are refused', async () => {
    const queue = 'shared-with-bad';
    const total = 20;
    const good = new LeaseDriver(clients.broker);
    good.hello([queue], 5, 5);
    await good.until((m) => m.some((x) => x.welcome));

    const badStreams = (async () => {
      const codes: Code[] = [];
      for (let round = 0; round < 5; round++) {
        const errors = await Promise.all([
          leaseRefusal({ credits: 3 }),
          leaseRefusal(hello([queue], 0)),
          leaseRefusal(hello([queue]), { credits: -7 }),
          leaseRefusal(hello([queue]), { credits: 2_147_483_647 }),
          leaseRefusal(hello([queue]), hello([queue])),
        ]);
        codes.push(...errors.map((error) => error.code));
      }
      return codes;
    })();

    const batch = () => clients.broker.enqueueBatch({ jobs: Array.from({ length: total / 2 }, (_, i) => ({ queue, payloadJson: json({ i }) })) });
    const jobs = (await Promise.all([batch(), batch()])).flatMap((response) => response.jobs);
    let answered = 0;
    while (answered < total) {
      const received = await good.jobsReceived(answered + 1, 20_000);
      const fresh = received.slice(answered);
      good.send({ credits: fresh.length, results: fresh.map((job) => success(job)) });
      answered = received.length;
    }
    const acks = await good.until((m) => {
      const all = m.flatMap((x) => x.acks);
      return all.length >= total ? all : undefined;
    }, 20_000);
    expect(acks.filter((ack) => ack.accepted)).toHaveLength(total);

    const codes = await badStreams;
    expect(codes).toHaveLength(25);
    expect(new Set(codes)).toEqual(new Set([Code.FailedPrecondition, Code.InvalidArgument, Code.ResourceExhausted]));
    const stored = await query(db.url, `select status, count(*)::int as n from baton_jobs where queue = $1 group by status`, [queue]);
    expect(stored).toEqual([{ status: 'completed', n: total }]);
    expect(new Set(good.jobs.map((job) => job.jobId))).toEqual(new Set(jobs.map((j) => j.job!.id)));
    good.end();
    await good.done;
    expect(good.error).toBeNull();
  });

  it('producers racing to create the same new queue do not fail each other', async () => {
    for (let round = 0; round < 5; round++) {
      const queue = `raced-${round}`;
      const calls = [
        clients.broker.enqueueBatch({ jobs: [{ queue }, { queue }] }),
        clients.broker.enqueueBatch({ jobs: [{ queue }, { queue }] }),
        clients.broker.enqueue({ queue }),
        clients.broker.enqueue({ queue }),
      ];
      const outcomes = await Promise.allSettled(calls);
      expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : ConnectError.from(o.reason).rawMessage))).toEqual(['ok', 'ok', 'ok', 'ok']);
      const [{ n }] = await query(db.url, `select count(*)::int as n from baton_jobs where queue = $1`, [queue]);
      expect(n).toBe(6);
    }
  });

});

describe('raw garbage over HTTP (Connect protocol, JSON)', () => {
  const post = (body: string, contentType = 'application/json') =>
    fetch(`${broker.url}/baton.v1.Broker/Enqueue`, { method: 'POST', headers: { 'content-type': contentType }, body });

  it.each([
    { what: 'a body that is not JSON', body: '{"queue": "http-bad",', mentions: /JSON|parse/i },
    { what: 'an unknown field', body: '{"queue": "http-bad", "colour": "blue"}', mentions: 'colour' },
    { what: 'a field of the wrong type', body: '{"queue": "http-bad", "priority": "high"}', mentions: 'priority' },
    { what: 'a JSON array instead of an object', body: '[1, 2, 3]', mentions: 'baton.v1.EnqueueRequest' },
    { what: 'a payload_json that is not base64', body: '{"queue": "http-bad", "payloadJson": "%%%"}', mentions: /payload_?json/i },
  ])('answers $what with HTTP 400 and a Connect invalid_argument error', async ({ body, mentions }) => {
    const before = await stored();
    const response = await post(body);
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toContain('application/json');
    const error = (await response.json()) as { code: string; message: string };
    expect(error.code).toBe('invalid_argument');
    expectMentions(error.message, mentions);
    expect(await stored()).toEqual(before);
  });

  it('answers a well-formed request with an invalid field the same way as gRPC does', async () => {
    const response = await post('{"queue": "has space"}');
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'invalid_argument', message: expect.stringContaining('queue "has space"') });
  });

  it('still answers afterwards, over HTTP and gRPC', async () => {
    await post('garbage');
    await post('{"unknown": 1}');
    const response = await post('{"queue": "http-after", "payload": {"n": 1}}');
    expect(response.status).toBe(200);
    const { job } = (await response.json()) as { job: { id: string; status: string } };
    expect(job.status).toBe('JOB_STATUS_PENDING');
    expect((await clients.broker.get({ id: job.id })).job?.queue).toBe('http-after');
  });
});
