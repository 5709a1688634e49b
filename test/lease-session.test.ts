/**
 * The Lease session (server/src/core/lease-session.ts) on its own: domain messages in, domain
 * events out, a fake store slice and a fake dispatcher whose timing the test controls, a clock
 * that moves only when told. No database, no gRPC, no sleeps. Each test reads one ordered log of
 * what the worker was told and what the store and dispatcher were asked.
 */
import { describe, expect, it } from 'vitest';
import type { LeaseEvent, ReportedResult, WorkerHello, WorkerMessage } from '../server/src/core/lease-events.ts';
import { LeaseSession, type LeaseSessionOptions } from '../server/src/core/lease-session.ts';
import type { FinishedAttempt } from '../server/src/core/observer.ts';
import { BrokerError, type ErrorKind } from '../server/src/domain/errors.ts';
import type { Assignment, FailureReport, SuccessReport } from '../server/src/domain/job.ts';
import { createLogger } from '../server/src/logger.ts';
import type { HeartbeatOutcome } from '../server/src/store/driver.ts';
import { settle } from './support/fake-clock.ts';

const STALE = 'stale lease: the job is no longer held under this token (it expired, was cancelled or was already reported)';
const encode = (text: string) => new TextEncoder().encode(text);

const message = (parts: Partial<WorkerMessage>): WorkerMessage => ({ credits: 0, results: [], progress: [], ...parts });
const hello = (parts: Partial<WorkerHello> = {}): WorkerHello => ({ workerId: 'w1', queues: ['q'], capacity: 5, protocolVersion: 1, ...parts });

/** Job `id`, handed over under lease token `${id}0`. */
function job(id: string): Assignment {
  return {
    id,
    leaseToken: `${id}0`,
    queue: 'q',
    payloadJson: '{}',
    labelsJson: '{}',
    attempt: 1,
    maxAttempts: 3,
    timeoutMs: 0,
    createdAt: new Date(0),
    traceparent: null,
    priority: 0,
  };
}

const success = (held: Assignment, json = '{"ok":true}'): ReportedResult => ({ jobId: held.id, leaseToken: held.leaseToken, resultJson: encode(json) });
const failure = (held: Assignment, text: string, retryAfterMs: number | null = null): ReportedResult => ({
  jobId: held.id,
  leaseToken: held.leaseToken,
  resultJson: new Uint8Array(0),
  failure: { message: text, nonRetryable: false, retryAfterMs },
});

function describeEvent(event: LeaseEvent): string {
  switch (event.type) {
    case 'welcome':
      return `welcome ${event.sessionId}`;
    case 'jobs':
      return `jobs ${event.jobs.map((j) => j.id).join(',')}`;
    case 'acks':
      return `acks ${event.acks.map((ack) => `${ack.jobId}:${ack.refusal === null ? 'ok' : 'refused'}`).join(',')}`;
    case 'lost':
      return `lost ${event.leaseTokens.join(',')}`;
    case 'cancel':
      return `cancel ${event.jobId} (${event.reason})`;
    case 'drain':
      return `drain ${event.deadlineMs}`;
  }
}

/** A session with a fake store and dispatcher; `log` is everything that happened, in order. */
function harness() {
  const log: string[] = [];
  const events: LeaseEvent[] = [];
  const finished: FinishedAttempt[] = [];
  const time = { now: 1000 };
  const control = {
    /** Ids the database no longer has under the reported token (stale results). */
    stale: new Set<string>(),
    heartbeat: { lost: [], cancelRequested: [] } as HeartbeatOutcome | null,
    /** While set, result writes wait for it. */
    writes: null as Promise<void> | null,
    /** While set, claims under way (dispatcher.settle) wait for it. */
    claims: null as Promise<void> | null,
    completed: [] as SuccessReport[],
    failed: [] as FailureReport[],
    progress: [] as string[],
  };
  const store: LeaseSessionOptions['store'] = {
    async sessionOpen(params) {
      log.push(`store: open ${params.workerId} [${params.queues}] capacity ${params.capacity}`);
      return '41';
    },
    async sessionHeartbeat(params) {
      log.push(`store: heartbeat [${params.tokens}]`);
      return control.heartbeat;
    },
    async sessionRelease(params) {
      log.push(`store: release (${params.reason})`);
      return 0;
    },
    async jobComplete({ results }) {
      if (results.length > 0) log.push(`store: complete [${results.map((r) => r.id)}]`);
      control.completed.push(...results);
      await control.writes;
      return new Set(results.map((r) => r.id).filter((id) => !control.stale.has(id)));
    },
    async jobFail({ failures }) {
      if (failures.length > 0) log.push(`store: fail [${failures.map((f) => f.id)}]`);
      control.failed.push(...failures);
      await control.writes;
      return new Map(failures.filter((f) => !control.stale.has(f.id)).map((f) => [f.id, f.nonRetryable ? 'failed' : 'scheduled'] as const));
    },
    async jobRecordProgress({ updates }) {
      control.progress.push(...updates.map((u) => `${u.id}=${u.progressJson}`));
    },
  };
  const dispatcher: LeaseSessionOptions['dispatcher'] = {
    register: () => log.push('dispatcher: register'),
    unregister: () => log.push('dispatcher: unregister'),
    wake: (queue) => log.push(`dispatcher: wake ${queue}`),
    settle: async () => {
      log.push('dispatcher: settle');
      await control.claims;
    },
  };
  const session = new LeaseSession({
    store,
    dispatcher,
    logger: createLogger('error'),
    brokerId: 'broker-1',
    leaseTtlMs: 30_000,
    heartbeatIntervalMs: 10_000,
    maxPayloadBytes: 100,
    maxCredits: 50,
    onEvent: (event) => {
      events.push(event);
      log.push(`worker: ${describeEvent(event)}`);
    },
    observer: {
      started: (jobs) => log.push(`observer: started ${jobs.map((j) => j.id)}`),
      finished: (attempts) => finished.push(...attempts),
      leasesExpired: () => {},
      timedOut: () => {},
    },
    now: () => time.now,
  });

  /** Says hello with `credits`, hands over `jobs`, and clears the log: the state most tests start from. */
  async function open(options: { capacity?: number; credits?: number; jobs?: Assignment[] } = {}) {
    await session.receive(message({ hello: hello({ capacity: options.capacity ?? 5 }), credits: options.credits ?? 5 }));
    const jobs = options.jobs ?? [];
    if (jobs.length > 0) session.deliver(jobs, session.reserve(jobs.length, 'q'));
    log.length = 0;
    events.length = 0;
  }

  return { session, log, events, finished, time, control, open };
}

async function refusal(work: Promise<unknown>): Promise<{ kind: ErrorKind; message: string }> {
  const error = await work.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof BrokerError)) throw new Error(`expected a BrokerError, got ${String(error)}`);
  return { kind: error.kind, message: error.message };
}

describe('hello', () => {
  it.each<{ what: string; first: WorkerMessage; kind: ErrorKind; text: string }>([
    {
      what: 'a first message without hello',
      first: message({ credits: 5 }),
      kind: 'failed-precondition',
      text: 'the first message on a Lease stream must carry hello',
    },
    {
      what: 'no worker id',
      first: message({ hello: hello({ workerId: '' }) }),
      kind: 'invalid-argument',
      text: 'hello.worker_id must be 1-200 characters, without NUL',
    },
    {
      what: 'a NUL in the worker id',
      first: message({ hello: hello({ workerId: 'w\u0000' }) }),
      kind: 'invalid-argument',
      text: 'hello.worker_id must be 1-200 characters, without NUL',
    },
    { what: 'no queues', first: message({ hello: hello({ queues: [] }) }), kind: 'invalid-argument', text: 'hello.queues must name 1-100 queues' },
    {
      what: '101 queues',
      first: message({ hello: hello({ queues: Array.from({ length: 101 }, (_, i) => `q${i}`) }) }),
      kind: 'invalid-argument',
      text: 'hello.queues must name 1-100 queues',
    },
    {
      what: 'a bad queue name',
      first: message({ hello: hello({ queues: ['q', 'not ok'] }) }),
      kind: 'invalid-argument',
      text: 'hello.queues: "not ok" is not a valid queue name',
    },
    { what: 'capacity 0', first: message({ hello: hello({ capacity: 0 }) }), kind: 'invalid-argument', text: 'hello.capacity must be 1-100000, got 0' },
    {
      what: 'capacity 100001',
      first: message({ hello: hello({ capacity: 100_001 }) }),
      kind: 'invalid-argument',
      text: 'hello.capacity must be 1-100000, got 100001',
    },
    {
      what: 'a newer protocol',
      first: message({ hello: hello({ protocolVersion: 2 }) }),
      kind: 'failed-precondition',
      text: "protocol version 2 is newer than this broker's (1)",
    },
  ])('refuses $what before opening anything', async ({ first, kind, text }) => {
    const { session, log } = harness();
    const error = await refusal(session.receive(first));
    expect(error.kind).toBe(kind);
    expect(error.message).toContain(text);
    expect(log).toEqual([]);
    expect(session.heldCount).toBe(0);
  });

  it('opens the session, welcomes the worker, registers, then takes the credits that rode on hello', async () => {
    const { session, log, events } = harness();
    await session.receive(message({ hello: hello({ queues: ['q', 'r', 'q'], protocolVersion: 0 }), credits: 3 }));
    expect(log).toEqual(['store: open w1 [q,r] capacity 5', 'worker: welcome 41', 'dispatcher: register', 'dispatcher: wake q', 'dispatcher: wake r']);
    expect(events[0]).toEqual({ type: 'welcome', sessionId: '41', heartbeatIntervalMs: 10_000, leaseTtlMs: 30_000, protocolVersion: 1, brokerId: 'broker-1' });
    expect(session.queues).toEqual(['q', 'r']);
    expect(session.sessionId).toBe('41');
    expect(session.credit()).toBe(3);
  });

  it('refuses a second hello', async () => {
    const { session, open } = harness();
    await open();
    expect(await refusal(session.receive(message({ hello: hello() })))).toEqual({
      kind: 'failed-precondition',
      message: 'hello was already received on this stream',
    });
  });
});

describe('credits and capacity', () => {
  it('refuses negative credits, and credits beyond the per-stream limit, keeping what was granted', async () => {
    const { session, open, log } = harness();
    await open({ credits: 5 });
    expect(await refusal(session.receive(message({ credits: -1 })))).toEqual({ kind: 'invalid-argument', message: 'credits must not be negative, got -1' });
    expect(await refusal(session.receive(message({ credits: 46 })))).toEqual({
      kind: 'resource-exhausted',
      message: "credits outstanding would be 51, above the broker's limit of 50 per stream; grant at most your capacity",
    });
    expect(session.credit()).toBe(5);
    expect(log).toEqual([]);
  });

  it('offers no more than the credits granted, the free capacity and what claims under way have not reserved', async () => {
    const { session, open, log } = harness();
    await open({ capacity: 5, credits: 8 });
    expect(session.credit()).toBe(5); // capacity bounds the credits
    expect(session.reserve(3, 'q')).toBe(3);
    expect(session.credit()).toBe(2);
    session.deliver([job('1'), job('2')], 3);
    // 6 credits left, 3 places free, nothing reserved.
    expect(session.credit()).toBe(3);
    expect(session.heldCount).toBe(2);
    expect(log).toEqual(['observer: started 1,2', 'worker: jobs 1,2']);
  });

  it('wakes a queue whose claim found the credit reserved by another queue, once that credit comes back unused', async () => {
    const { session, open, log } = harness();
    await open({ capacity: 2, credits: 2 });
    expect(session.reserve(2, 'q')).toBe(2);
    expect(session.reserve(1, 'r')).toBe(0);
    expect(log).toEqual([]);
    session.deliver([], 2); // q's claim found nothing
    expect(log).toEqual(['dispatcher: wake r']);
  });
});

describe('results and acks', () => {
  it('records successes and failures and answers every result in its place, with why it was refused', async () => {
    const { session, open, events, control, finished, time } = harness();
    const [one, two, three, four, five] = ['1', '2', '3', '4', '5'].map(job);
    await open({ capacity: 10, credits: 10, jobs: [one, two, three, four, five] });
    control.stale.add('3');
    time.now += 250;
    await session.receive(
      message({
        results: [
          success(one),
          failure(two, 'boom\u0000!', 5000),
          success(three),
          success(one, '"again"'),
          { jobId: '9', leaseToken: '90', resultJson: encode('1') },
          { jobId: 'x', leaseToken: '77', resultJson: encode('1') },
          success(four, '{oops'),
          failure(five, 'later', -1),
        ],
      }),
    );
    expect(events).toEqual([
      {
        type: 'acks',
        acks: [
          { jobId: '1', leaseToken: '10', refusal: null },
          { jobId: '2', leaseToken: '20', refusal: null },
          { jobId: '3', leaseToken: '30', refusal: STALE },
          { jobId: '1', leaseToken: '10', refusal: 'duplicate result for this lease token in one message' },
          { jobId: '9', leaseToken: '90', refusal: 'this stream does not hold that job under that token' },
          { jobId: 'x', leaseToken: '77', refusal: 'job_id and lease_token must be the values given in the assignment' },
          { jobId: '4', leaseToken: '40', refusal: 'result_json is not valid UTF-8 JSON text; the attempt was recorded as failed' },
          { jobId: '5', leaseToken: '50', refusal: 'failure.retry_after must be between 0 and 10 years' },
        ],
      },
    ]);
    expect(control.completed).toEqual([
      { id: '1', token: '10', resultJson: '{"ok":true}' },
      { id: '3', token: '30', resultJson: '{"ok":true}' },
    ]);
    expect(control.failed).toEqual([
      // NUL cannot be stored in PostgreSQL's text: kept visible as U+FFFD.
      { id: '2', token: '20', message: 'boom\ufffd!', nonRetryable: false, retryAfterMs: 5000 },
      // A result that cannot be stored ends the attempt as failed for good.
      {
        id: '4',
        token: '40',
        message: "the worker's result could not be stored: result_json is not valid UTF-8 JSON text",
        nonRetryable: true,
        retryAfterMs: null,
      },
    ]);
    // Only the job whose result was refused outright is still held; the stale one left the stream's hands.
    expect(session.heldCount).toBe(1);
    expect(finished).toEqual([
      { id: '1', queue: 'q', status: 'completed', runMs: 250, error: undefined },
      { id: '2', queue: 'q', status: 'scheduled', runMs: 250, error: 'boom\u0000!' },
      { id: '4', queue: 'q', status: 'failed', runMs: 250, error: undefined },
    ]);
  });

  it('stores an empty result as JSON null, and a result above the payload limit as a failed attempt', async () => {
    const { session, open, events, control } = harness();
    const [one, two] = ['1', '2'].map(job);
    await open({ jobs: [one, two] });
    await session.receive(message({ results: [{ jobId: '1', leaseToken: '10', resultJson: new Uint8Array(0) }, success(two, `"${'x'.repeat(100)}"`)] }));
    expect(control.completed).toEqual([{ id: '1', token: '10', resultJson: 'null' }]);
    expect(control.failed.map((f) => f.message)).toEqual(["the worker's result could not be stored: result is 102 bytes, above the limit of 100"]);
    expect(events).toEqual([
      {
        type: 'acks',
        acks: [
          { jobId: '1', leaseToken: '10', refusal: null },
          { jobId: '2', leaseToken: '20', refusal: 'result is 102 bytes, above the limit of 100; the attempt was recorded as failed' },
        ],
      },
    ]);
  });

  it('frees the slot at once: the claim for the returned credit starts while the results are being written, the acks come after the write', async () => {
    const { session, open, log, control } = harness();
    const one = job('1');
    await open({ capacity: 1, credits: 1, jobs: [one] });
    const write = Promise.withResolvers<void>();
    control.writes = write.promise;
    const receiving = session.receive(message({ credits: 1, results: [success(one)] }));
    await settle();
    expect(log).toEqual(['store: complete [1]', 'dispatcher: wake q']);
    expect(session.credit()).toBe(1);
    expect(session.heldCount).toBe(1); // still being written: a drain waits for it
    write.resolve();
    await receiving;
    expect(log).toEqual(['store: complete [1]', 'dispatcher: wake q', 'worker: acks 1:ok']);
    expect(session.heldCount).toBe(0);
  });

  it('stores progress of held jobs only, and only JSON text within the payload limit', async () => {
    const { session, open, control } = harness();
    const [one, two] = ['1', '2'].map(job);
    await open({ jobs: [one, two] });
    await session.receive(
      message({
        progress: [
          { jobId: '1', leaseToken: '10', progressJson: encode('{"done":1}') },
          { jobId: '2', leaseToken: '20', progressJson: encode('{nope') },
          { jobId: '2', leaseToken: '20', progressJson: encode(`"${'x'.repeat(100)}"`) },
          { jobId: '3', leaseToken: '30', progressJson: encode('1') },
        ],
      }),
    );
    expect(control.progress).toEqual(['1={"done":1}']);
  });
});

describe('heartbeats and cancels', () => {
  it('passes on the cancels the database remembers, then names the tokens no longer held', async () => {
    const { session, open, log, control } = harness();
    await open({ credits: 2, jobs: [job('1'), job('2')] });
    control.heartbeat = { lost: ['20'], cancelRequested: ['10'] };
    await session.receive(message({ heartbeat: ['10', '20', 'not-a-token'] }));
    expect(log).toEqual(['store: heartbeat [10,20]', 'worker: cancel 1 (cancelled)', 'worker: lost 20,not-a-token']);
    expect(session.heldCount).toBe(1);
    // A cancel reaches the worker once, whichever path brings it again.
    log.length = 0;
    control.heartbeat = { lost: [], cancelRequested: ['10'] };
    await session.receive(message({ heartbeat: ['10'] }));
    expect(session.cancel({ id: '1', token: '10', reason: 'cancelled' })).toBe(true);
    expect(log).toEqual(['store: heartbeat [10]']);
  });

  it('an empty heartbeat still renews the session (and, as every message of a stream with credit left, wakes its queues)', async () => {
    const { session, open, log } = harness();
    await open();
    await session.receive(message({ heartbeat: [] }));
    expect(log).toEqual(['dispatcher: wake q', 'store: heartbeat []']);
  });

  it('ends the stream when its session expired', async () => {
    const { session, open, control } = harness();
    await open({ jobs: [job('1')] });
    control.heartbeat = null;
    expect(await refusal(session.receive(message({ heartbeat: ['10'] })))).toEqual({
      kind: 'unavailable',
      message: 'this session expired (no heartbeat within the lease TTL); reconnect to start a new one',
    });
  });

  it('takes a cancel only for a job it holds under that token', async () => {
    const { session, open, log } = harness();
    await open({ jobs: [job('1')] });
    expect(session.cancel({ id: '2', token: '10', reason: 'cancelled' })).toBe(false);
    expect(session.cancel({ id: '1', token: '99', reason: 'cancelled' })).toBe(false);
    expect(session.cancel({ id: '1', token: '10', reason: 'timed out' })).toBe(true);
    expect(log).toEqual(['worker: cancel 1 (timed out)']);
  });
});

describe('drain and close', () => {
  it('a drain is told once, stops new jobs, and the session is idle once its last result is written', async () => {
    const { session, open, log, control } = harness();
    const [one, two] = ['1', '2'].map(job);
    await open({ jobs: [one, two] });
    session.drain(5000);
    session.drain(5000);
    expect(session.credit()).toBe(0);
    void session.idle().then(() => log.push('idle'));
    await session.receive(message({ credits: 2, results: [success(one)] }));
    await settle();
    const write = Promise.withResolvers<void>();
    control.writes = write.promise;
    const last = session.receive(message({ results: [success(two)] }));
    await settle();
    expect(log).toEqual(['worker: drain 5000', 'store: complete [1]', 'worker: acks 1:ok', 'store: complete [2]']);
    write.resolve();
    await last;
    await settle();
    expect(log.slice(-2)).toEqual(['worker: acks 2:ok', 'idle']);
  });

  it('close waits for claims under way and results being written, then releases what is still held, once', async () => {
    const { session, open, log, control } = harness();
    const [one, two] = ['1', '2'].map(job);
    await open({ credits: 2, jobs: [one, two] });
    const write = Promise.withResolvers<void>();
    const claims = Promise.withResolvers<void>();
    control.writes = write.promise;
    control.claims = claims.promise;
    const receiving = session.receive(message({ results: [success(one)] }));
    void session.idle().then(() => log.push('idle'));
    const closing = session.close('stream lost');
    void session.close('stream lost again');
    await settle();
    expect(log).toEqual(['store: complete [1]', 'dispatcher: unregister', 'dispatcher: settle']);
    claims.resolve();
    await settle();
    expect(log).not.toContain('store: release (stream lost)');
    write.resolve();
    await Promise.all([receiving, closing]);
    await settle();
    expect(log).toEqual(['store: complete [1]', 'dispatcher: unregister', 'dispatcher: settle', 'worker: acks 1:ok', 'store: release (stream lost)', 'idle']);
    expect(session.heldCount).toBe(0);
    // A claim that answers after the close hands nothing to the worker: the release took it back.
    session.deliver([job('3')], 0);
    await session.receive(message({ credits: 1 }));
    expect(log.at(-1)).toBe('idle');
  });

  it('a stream closed before its hello has nothing to release', async () => {
    const { session, log } = harness();
    await session.close('stream closed by the worker');
    expect(log).toEqual([]);
  });
});
