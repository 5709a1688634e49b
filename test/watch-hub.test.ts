/**
 * The Watch hub (server/src/core/watch-hub.ts) on its own: the notifications's job events fanned out to
 * open watches, with a fake store slice, an EventEmitter for the notifications and a fake clock for the
 * renewals of queue marks. No database, no gRPC, no sleeps.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createWatchHub } from '../server/src/core/watch-hub.ts';
import { BrokerError } from '../server/src/domain/errors.ts';
import type { JobRecord } from '../server/src/domain/job.ts';
import type { JobStatus } from '../server/src/domain/job-status.ts';
import { createLogger } from '../server/src/logger.ts';
import type { NotificationEvents } from '../server/src/store/notification-listener.ts';
import { createFakeClock, settle } from './support/fake-clock.ts';

function record(id: string, status: JobStatus, changes: Partial<JobRecord> = {}): JobRecord {
  return {
    id,
    queue: 'q',
    status,
    payloadJson: '{}',
    priority: 0,
    runAt: new Date(0),
    attempt: 0,
    maxAttempts: 3,
    backoff: { initialMs: 1000, maxMs: 60_000, multiplier: 2, jitter: 0 },
    timeoutMs: 0,
    idempotencyKey: null,
    labels: {},
    traceparent: null,
    resultJson: null,
    errors: [],
    progressJson: null,
    createdAt: new Date(0),
    startedAt: null,
    finishedAt: null,
    workerId: null,
    cancelRequested: false,
    ...changes,
  };
}

function harness() {
  const log: string[] = [];
  const jobs = new Map<string, JobRecord>();
  const missingQueues = new Set<string>();
  /** Reads of these jobs fail as with the database away. */
  const failingReads = new Map<string, Error>();
  const notifications = new EventEmitter<NotificationEvents>();
  const clock = createFakeClock();
  const hub = createWatchHub({
    store: {
      async jobGet({ id }) {
        log.push(`read ${id}`);
        const failure = failingReads.get(id);
        if (failure) throw failure;
        return jobs.get(id) ?? null;
      },
      async queueWatch({ queue }) {
        log.push(`mark ${queue}`);
        return !missingQueues.has(queue);
      },
    },
    notifications,
    logger: createLogger('error'),
    clock,
  });
  const listeners = () => ({ job: notifications.listenerCount('job'), reconnected: notifications.listenerCount('reconnected') });
  return { hub, log, jobs, missingQueues, failingReads, notifications, clock, listeners };
}

/** Reads `updates` into `into` as they come; resolves with how the watch ended. */
function collect<T>(updates: AsyncIterable<T>, into: T[]): Promise<unknown> {
  return (async () => {
    try {
      for await (const update of updates) into.push(update);
      return 'ended';
    } catch (error) {
      return error;
    }
  })();
}

describe('watching a queue', () => {
  it('marks the queue first, then passes on each job of that queue the notifications announces, until its caller goes', async () => {
    const { hub, log, notifications, listeners, clock } = harness();
    const caller = new AbortController();
    const changes: unknown[] = [];
    const ended = collect(hub.followQueue('q', caller.signal), changes);
    await settle();
    expect(log).toEqual(['mark q']);
    notifications.emit('job', { queue: 'other', status: 'pending', ids: ['9'] });
    notifications.emit('job', { queue: 'q', status: 'running', ids: ['1', '2'] });
    await settle();
    expect(changes).toEqual([
      { id: '1', queue: 'q', status: 'running' },
      { id: '2', queue: 'q', status: 'running' },
    ]);
    caller.abort();
    expect(await ended).toBe('ended');
    // Nothing left behind: no listener, no renewal armed.
    expect(listeners()).toEqual({ job: 0, reconnected: 0 });
    expect(clock.pending()).toEqual([]);
  });

  it('renews the mark every 20 s while open, every second while the queue does not exist yet, and never after the watch ends', async () => {
    const { hub, log, missingQueues, clock } = harness();
    missingQueues.add('q');
    const caller = new AbortController();
    const ended = collect(hub.followQueue('q', caller.signal), []);
    await settle();
    await clock.advance(1000);
    expect(log).toEqual(['mark q', 'mark q']);
    missingQueues.delete('q');
    await clock.advance(1000);
    expect(log).toHaveLength(3);
    await clock.advance(19_999);
    expect(log).toHaveLength(3);
    await clock.advance(1);
    expect(log).toHaveLength(4);
    caller.abort();
    await ended;
    expect(clock.pending()).toEqual([]);
  });
});

describe('watching a job', () => {
  it('refuses a job that does not exist with NOT_FOUND, leaving nothing registered', async () => {
    const { hub, listeners, clock } = harness();
    const outcome = await collect(hub.followJob('9', new AbortController().signal), []);
    expect(outcome).toBeInstanceOf(BrokerError);
    expect(outcome).toMatchObject({ kind: 'not-found', message: 'job 9 does not exist (it may have been pruned after its retention period)' });
    expect(listeners()).toEqual({ job: 0, reconnected: 0 });
    expect(clock.pending()).toEqual([]);
  });

  it('sends the job as it is, then each change of status, attempt or cancel request, and ends once the job is finished', async () => {
    const { hub, log, jobs, notifications, listeners } = harness();
    jobs.set('1', record('1', 'pending'));
    const seen: JobRecord[] = [];
    const ended = collect(hub.followJob('1', new AbortController().signal), seen);
    await settle();
    // Read, mark the job's queue, then read again after the mark (a change in between is announced).
    expect(log).toEqual(['read 1', 'mark q', 'read 1']);
    expect(seen.map((job) => job.status)).toEqual(['pending']);

    notifications.emit('job', { queue: 'q', status: 'pending', ids: ['2', '3'] }); // other jobs: not read
    jobs.set('1', record('1', 'pending', { progressJson: '{"p":1}' }));
    notifications.emit('job', { queue: 'q', status: 'pending', ids: ['1', '1'] }); // read once; nothing a watcher cares about changed
    await settle();
    expect(log.slice(3)).toEqual(['read 1']);
    expect(seen).toHaveLength(1);

    jobs.set('1', record('1', 'running', { attempt: 1 }));
    notifications.emit('job', { queue: 'q', status: 'running', ids: ['1'] });
    await settle();
    jobs.set('1', record('1', 'running', { attempt: 1, cancelRequested: true }));
    notifications.emit('reconnected'); // notifications may have been missed: read again
    await settle();
    jobs.set('1', record('1', 'cancelled', { attempt: 1, cancelRequested: true }));
    notifications.emit('job', { queue: 'q', status: 'cancelled', ids: ['1'] });
    expect(await ended).toBe('ended');
    expect(seen.map((job) => `${job.status}/${job.attempt}/${job.cancelRequested}`)).toEqual([
      'pending/0/false',
      'running/1/false',
      'running/1/true',
      'cancelled/1/true',
    ]);
    expect(listeners()).toEqual({ job: 0, reconnected: 0 });
  });

  it('reads the job again 1 s and 5 s after marking, then every 30 s: a completion that did not see the mark is shown all the same', async () => {
    const { hub, log, jobs, clock } = harness();
    jobs.set('1', record('1', 'running', { attempt: 1 }));
    const seen: JobRecord[] = [];
    const ended = collect(hub.followJob('1', new AbortController().signal), seen);
    await settle();
    expect(log).toEqual(['read 1', 'mark q', 'read 1']);
    // Completed by a statement that began before the mark: no announcement comes.
    jobs.set('1', record('1', 'completed', { attempt: 1 }));
    await clock.advance(999);
    expect(log).toHaveLength(3);
    await clock.advance(1);
    expect(log.slice(3)).toEqual(['read 1']);
    expect(await ended).toBe('ended');
    expect(seen.map((job) => job.status)).toEqual(['running', 'completed']);
    expect(clock.pending()).toEqual([]);
  });

  it('keeps re-reading every 30 s after the settling re-reads, while the watch is open', async () => {
    const { hub, log, jobs, clock } = harness();
    jobs.set('1', record('1', 'running', { attempt: 1 }));
    const caller = new AbortController();
    const ended = collect(hub.followJob('1', caller.signal), []);
    await settle();
    await clock.advance(1_000);
    await clock.advance(5_000);
    expect(log.filter((entry) => entry === 'read 1')).toHaveLength(4);
    await clock.advance(30_000);
    await clock.advance(30_000);
    expect(log.filter((entry) => entry === 'read 1')).toHaveLength(6);
    caller.abort();
    expect(await ended).toBe('ended');
    expect(clock.pending()).toEqual([]);
  });

  it('ends when the job is gone, and passes on a failed read as the watch error', async () => {
    const { hub, jobs, failingReads, notifications } = harness();
    jobs.set('1', record('1', 'running'));
    jobs.set('2', record('2', 'running'));
    const first = collect(hub.followJob('1', new AbortController().signal), []);
    const second = collect(hub.followJob('2', new AbortController().signal), []);
    await settle();
    jobs.delete('1');
    notifications.emit('job', { queue: 'q', status: 'completed', ids: ['1'] });
    expect(await first).toBe('ended');
    const failure = new Error('database away');
    failingReads.set('2', failure);
    notifications.emit('job', { queue: 'q', status: 'completed', ids: ['2'] });
    expect(await second).toBe(failure);
  });
});

describe('the hub', () => {
  it('holds one subscription to the notifications while any watch is open, and drops it with the last', async () => {
    const { hub, jobs, listeners } = harness();
    jobs.set('1', record('1', 'running'));
    const callers = [new AbortController(), new AbortController(), new AbortController()];
    const ended = [
      collect(hub.followQueue('q', callers[0].signal), []),
      collect(hub.followQueue('r', callers[1].signal), []),
      collect(hub.followJob('1', callers[2].signal), []),
    ];
    await settle();
    expect(listeners()).toEqual({ job: 1, reconnected: 1 });
    callers[0].abort();
    callers[2].abort();
    await Promise.all([ended[0], ended[2]]);
    expect(listeners()).toEqual({ job: 1, reconnected: 1 });
    callers[1].abort();
    await ended[1];
    expect(listeners()).toEqual({ job: 0, reconnected: 0 });
  });

  it('endAll (shutdown) ends every open watch cleanly, one still being set up included', async () => {
    const { hub, jobs, clock, listeners } = harness();
    jobs.set('1', record('1', 'running'));
    const signal = new AbortController().signal;
    const open = [collect(hub.followQueue('q', signal), []), collect(hub.followJob('1', signal), [])];
    await settle();
    // Registered at once: ended before its mark is even answered.
    const settingUp = collect(hub.followQueue('r', signal), []);
    hub.endAll();
    expect(await Promise.all([...open, settingUp])).toEqual(['ended', 'ended', 'ended']);
    expect(listeners()).toEqual({ job: 0, reconnected: 0 });
    expect(clock.pending()).toEqual([]);
  });
});
