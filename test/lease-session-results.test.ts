/**
 * The Lease session (server/src/core/lease-session.ts) on its own: domain messages in, domain
 * events out, a fake store slice and a fake dispatcher whose timing the test controls, a clock
 * that moves only when told. No database, no gRPC, no sleeps. Each test reads one ordered log of
 * what the worker was told and what the store and dispatcher were asked.
 */
import { describe, expect, it } from 'vitest';
import { STALE, encode, failure, harness, hello, job, message, refusal, success } from './support/lease-session-harness.ts';
import { settle } from './support/fake-clock.ts';

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
