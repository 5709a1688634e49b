/**
 * Bad input on every unary RPC, on Watch and on raw HTTP: answered with the right gRPC code and a
 * message that names what to fix, with nothing stored changed. Lease stream violations are in
 * bad-input-lease.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Code } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { EnqueueRequestSchema } from '@baton/worker-sdk/gen/broker';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { query } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import {
  broker,
  bytes,
  clients,
  db,
  expectMentions,
  expectRefused,
  json,
  MAX_BATCH_SIZE,
  MAX_PAGE_SIZE,
  MAX_PAYLOAD_BYTES,
  refusal,
  stored,
  success,
  useBadInputBroker,
} from './support/bad-input.ts';

type EnqueueInit = MessageInitShape<typeof EnqueueRequestSchema>;

useBadInputBroker();

/** Reads a server stream to its end. */
async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

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
    {
      what: 'payload_json that is not UTF-8',
      request: { queue: 'bad', payloadJson: new Uint8Array([0x22, 0xff, 0xfe, 0x22]) },
      mentions: /payload_json is not valid UTF-8/,
    },
    {
      what: 'payload_json nested 100 deep',
      request: { queue: 'bad', payloadJson: nested(100) },
      mentions: 'payload_json nests 100 levels deep; the limit is 32',
    },
    { what: 'payload_json nested 33 deep', request: { queue: 'bad', payloadJson: nested(33) }, mentions: 'payload_json nests 33 levels deep' },
    { what: 'a payload Value with no kind set', request: { queue: 'bad', payload: {} }, mentions: 'payload' },
    { what: 'payload_json holding \\u0000', request: { queue: 'bad', payloadJson: bytes('"a\\u0000b"') }, mentions: /payload_json contains \\u0000/ },
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
    { what: 'an empty label key', request: { queue: 'bad', labels: { '': 'v' } }, mentions: 'labels' },
    { what: 'a traceparent that is not W3C', request: { queue: 'bad', traceparent: 'trace-me' }, mentions: 'traceparent must be a W3C trace context' },
    {
      what: 'a traceparent with upper-case hex',
      request: { queue: 'bad', traceparent: `00-${'A'.repeat(32)}-${'b'.repeat(16)}-01` },
      mentions: 'traceparent',
    },
    {
      what: 'an idempotency key of 201 characters',
      request: { queue: 'bad', idempotencyKey: 'k'.repeat(201) },
      mentions: 'idempotency_key must be at most 200',
    },
  ];

  it.each(cases)('refuses $what with INVALID_ARGUMENT', async ({ request, mentions }) => {
    await expectRefused(() => clients.broker.enqueue(request), Code.InvalidArgument, mentions);
  });

  // Size limits, as broker.proto promises (test/promises.test.ts has them on both ports and in batches).
  const limitCases: typeof cases = [
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
    { what: '33 labels', request: { queue: 'bad', labels: labels(33) }, mentions: 'labels: at most 32 labels, got 33' },
    { what: 'a label value of 257 characters', request: { queue: 'bad', labels: { k: 'v'.repeat(257) } }, mentions: 'labels' },
  ];

  it.each(limitCases)('refuses $what with RESOURCE_EXHAUSTED', async ({ request, mentions }) => {
    await expectRefused(() => clients.broker.enqueue(request), Code.ResourceExhausted, mentions);
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
