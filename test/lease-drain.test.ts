/**
 * The shutdown drain's wait (server/src/core/drain.ts): it ends when the last session reports what
 * it held, told by the sessions themselves, or when the deadline fires; no polling. The deadline is
 * an AbortSignal the test fires, or one armed on a fake clock. No database, no gRPC, no sleeps.
 */
import { describe, expect, it } from 'vitest';
import { type Drainable, drainSessions } from '../server/src/core/drain.ts';
import { LeaseSession } from '../server/src/core/lease-session.ts';
import type { Assignment } from '../server/src/domain/job.ts';
import { settledBefore, timeoutSignal } from '../server/src/lib/abort.ts';
import { createLogger } from '../server/src/logger.ts';
import { createFakeClock, settle } from './support/fake-clock.ts';

/** A session holding `held` jobs, handing them back one call of `report` at a time. */
function fakeSession(name: string, held: number, log: string[]) {
  let count = held;
  let waiters: (() => void)[] = [];
  const session: Drainable & { report(): void } = {
    drain: (deadlineMs) => log.push(`${name}: drain ${deadlineMs}`),
    get heldCount() {
      return count;
    },
    idle: () => (count === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    report() {
      count--;
      log.push(`${name}: reported, ${count} left`);
      if (count > 0) return;
      for (const resolve of waiters) resolve();
      waiters = [];
    },
  };
  return session;
}

function track(work: Promise<unknown>, log: string[], what: string) {
  void work.then(() => log.push(what));
}

describe('drainSessions', () => {
  it('tells every session, then ends on the last report, not before', async () => {
    const log: string[] = [];
    const a = fakeSession('a', 2, log);
    const b = fakeSession('b', 1, log);
    const idle = fakeSession('c', 0, log);
    track(
      drainSessions(() => [a, b, idle], 5000, new AbortController().signal),
      log,
      'drained',
    );
    await settle();
    expect(log).toEqual(['a: drain 5000', 'b: drain 5000', 'c: drain 5000']);
    a.report();
    b.report();
    await settle();
    expect(log).not.toContain('drained');
    a.report();
    await settle();
    expect(log.slice(-2)).toEqual(['a: reported, 0 left', 'drained']);
  });

  it('ends at the deadline with jobs still held', async () => {
    const log: string[] = [];
    const a = fakeSession('a', 1, log);
    const deadline = new AbortController();
    track(
      drainSessions(() => [a], 5000, deadline.signal),
      log,
      'drained',
    );
    await settle();
    expect(log).toEqual(['a: drain 5000']);
    deadline.abort();
    await settle();
    expect(log).toEqual(['a: drain 5000', 'drained']);
    expect(a.heldCount).toBe(1);
  });

  it('stops waiting for a session that left the set (its stream closed) once the others are idle', async () => {
    const log: string[] = [];
    const a = fakeSession('a', 1, log);
    const b = fakeSession('b', 1, log);
    const open = new Set([a, b]);
    track(
      drainSessions(() => open, 5000, new AbortController().signal),
      log,
      'drained',
    );
    await settle();
    // b's stream closes: its session was released and says it holds nothing.
    open.delete(b);
    b.report();
    await settle();
    expect(log).not.toContain('drained');
    a.report();
    await settle();
    expect(log.at(-1)).toBe('drained');
  });

  it('waits on real sessions: drained once each worker has reported and its results are written', async () => {
    const log: string[] = [];
    const write = Promise.withResolvers<void>();
    const session = (name: string) =>
      new LeaseSession({
        store: {
          sessionOpen: async () => name,
          sessionHeartbeat: async () => ({ lost: [], cancelRequested: [] }),
          sessionRelease: async () => 0,
          jobComplete: async ({ results }) => {
            await write.promise;
            return new Set(results.map((r) => r.id));
          },
          jobFail: async () => new Map(),
          jobSnooze: async () => new Map(),
          jobRecordProgress: async () => {},
        },
        dispatcher: { register: () => {}, unregister: () => {}, wake: () => {}, settle: async () => {} },
        logger: createLogger('error'),
        brokerId: 'b',
        leaseTtlMs: 30_000,
        heartbeatIntervalMs: 10_000,
        maxPayloadBytes: 1000,
        maxCredits: 10,
        onEvent: (event) => log.push(`${name}: ${event.type}`),
      });
    const job: Assignment = {
      id: '1',
      leaseToken: '10',
      queue: 'q',
      payloadJson: '{}',
      labelsJson: '{}',
      attempt: 1,
      maxAttempts: 1,
      timeoutMs: 0,
      createdAt: new Date(0),
      runAt: new Date(0),
      traceparent: null,
      priority: 0,
    };
    const [one, two] = [session('one'), session('two')];
    for (const s of [one, two]) {
      await s.receive({ hello: { workerId: 'w', queues: ['q'], capacity: 1, protocolVersion: 1 }, credits: 1, results: [], progress: [] });
      s.deliver([job], s.reserve(1, 'q'));
    }
    track(
      drainSessions(() => [one, two], 5000, new AbortController().signal),
      log,
      'drained',
    );
    const report = { credits: 0, results: [{ jobId: '1', leaseToken: '10', resultJson: new Uint8Array(0) }], progress: [] };
    const reported = [one.receive(report), two.close('stream closed by the worker')];
    await settle();
    expect(log).not.toContain('drained');
    write.resolve();
    await Promise.all(reported);
    await settle();
    expect(log).toEqual(['one: welcome', 'one: jobs', 'two: welcome', 'two: jobs', 'one: drain', 'two: drain', 'one: acks', 'drained']);
  });
});

describe('deadlines as signals', () => {
  it('timeoutSignal aborts when its time comes on the clock, and cancel leaves nothing armed', async () => {
    const clock = createFakeClock();
    const fires = timeoutSignal(5000, clock);
    const cancelled = timeoutSignal(5000, clock);
    cancelled.cancel();
    await clock.advance(4999);
    expect(fires.signal.aborted).toBe(false);
    await clock.advance(1);
    expect(fires.signal.aborted).toBe(true);
    expect(cancelled.signal.aborted).toBe(false);
    expect(clock.pending()).toEqual([]);
  });

  it('settledBefore tells whether the work or the signal came first', async () => {
    const late = new AbortController();
    expect(await settledBefore(Promise.resolve(), late.signal)).toBe(true);
    expect(await settledBefore(Promise.reject(new Error('failed work still settles')), late.signal)).toBe(true);
    const early = new AbortController();
    const waiting = settledBefore(new Promise(() => {}), early.signal);
    early.abort();
    expect(await waiting).toBe(false);
    expect(await settledBefore(Promise.resolve(), early.signal)).toBe(false);
  });
});
