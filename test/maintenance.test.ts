/**
 * The leader's duties (server/src/core/maintenance.ts) on a fake clock and a fake store: no
 * database, no sleeps. Each test moves time and reads what the store was asked, and when.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Maintenance, type MaintenanceOptions } from '../server/src/core/maintenance.ts';
import { createLogger } from '../server/src/logger.ts';
import { PROMOTE_BATCH } from '../server/src/store/driver.ts';
import type { NotificationEvents } from '../server/src/store/notification-listener.ts';
import { createFakeClock, type FakeClock, settle } from './support/fake-clock.ts';

const LEASE_TTL_MS = 20_000;
/** With the jitter's draw fixed at 0.5, every period is exact: the reap runs every 5 s. */
const REAP_MS = 5000;

type Duty = 'elect' | 'reap' | 'timeOut' | 'promote' | 'prune' | 'upkeep' | 'resign';

/** The slice of the store the duties use, answering from a list of scheduled due times. */
function fakeStore(clock: FakeClock) {
  const calls: { duty: Duty; at: number }[] = [];
  const state = {
    /** Due times (ms) of the SCHEDULED jobs. */
    scheduled: [] as number[],
    winsElection: true,
    onLost: null as ((reason: string) => void) | null,
    /** Set to make the next reap wait until the test resolves it. */
    holdReap: null as Promise<void> | null,
    failPromotions: 0,
  };
  const record = (duty: Duty) => calls.push({ duty, at: clock.now() });
  const store: MaintenanceOptions['store'] = {
    async leaderAttemptElect({ onLost }) {
      record('elect');
      state.onLost = onLost;
      return state.winsElection;
    },
    async leaderResign() {
      record('resign');
    },
    async sessionReapExpired({ now }) {
      expect(now?.getTime()).toBe(clock.now());
      record('reap');
      await state.holdReap;
      return 0;
    },
    async jobTimeOut({ now }) {
      expect(now?.getTime()).toBe(clock.now());
      record('timeOut');
      return 0;
    },
    async historyUpkeep({ now }) {
      expect(now?.getTime()).toBe(clock.now());
      record('upkeep');
      return { folded: 0, partitionsCreated: 0 };
    },
    async jobPromoteScheduled({ now }) {
      record('promote');
      if (state.failPromotions > 0) {
        state.failPromotions--;
        throw new Error('database away');
      }
      const due = state.scheduled.filter((at) => at <= now!.getTime()).slice(0, PROMOTE_BATCH);
      for (const at of due) state.scheduled.splice(state.scheduled.indexOf(at), 1);
      return { promoted: due.length, nextDueMs: state.scheduled.length > 0 ? Math.min(...state.scheduled) : null };
    },
    async jobPrune({ now }) {
      expect(now?.getTime()).toBe(clock.now());
      record('prune');
      return 0;
    },
  };
  const times = (duty: Duty) => calls.filter((call) => call.duty === duty).map((call) => call.at - START);
  return { store, state, calls, times };
}

const START = Date.UTC(2027, 0, 1);

function setUp(options: Partial<MaintenanceOptions> = {}) {
  const clock = createFakeClock(START);
  const fake = fakeStore(clock);
  const notifications = new EventEmitter<NotificationEvents>();
  const maintenance = new Maintenance({
    store: fake.store,
    notifications,
    logger: createLogger('error', () => {}),
    leaseTtlMs: LEASE_TTL_MS,
    retentionMs: 0,
    clock,
    random: () => 0.5,
    ...options,
  });
  /** Timers still armed, as offsets from the start. */
  const pending = () => clock.pending().map((at) => at - START);
  return { clock, notifications, maintenance, pending, ...fake };
}

describe('as the leader', () => {
  it('runs every duty once on election, then promotes exactly when the next scheduled job falls due', async () => {
    const { clock, maintenance, state, times, pending } = setUp();
    state.scheduled = [START + 30_000, START + 45_000];
    maintenance.start();
    await settle();
    expect(maintenance.isLeader).toBe(true);
    expect(times('reap')).toEqual([0]);
    expect(times('timeOut')).toEqual([0]);
    expect(times('promote')).toEqual([0]);
    expect(pending()).toContain(30_000);

    await clock.advance(29_999);
    expect(times('promote')).toEqual([0]);
    await clock.advance(1);
    expect(times('promote')).toEqual([0, 30_000]);
    expect(state.scheduled).toEqual([START + 45_000]);
    // Re-armed for the one left, and nothing after it.
    await clock.advance(60_000);
    expect(times('promote')).toEqual([0, 30_000, 45_000]);
    expect(state.scheduled).toEqual([]);
    await maintenance.stop();
  });

  it('is woken earlier by a schedule notification; a later one leaves the earlier wake-up armed', async () => {
    const { clock, notifications, maintenance, state, times, pending } = setUp();
    state.scheduled = [START + 50_000];
    maintenance.start();
    await settle();
    expect(pending()).toContain(50_000);

    // A job enqueued for 10 s from now: its notification re-arms the timer at once.
    state.scheduled.push(START + 10_000);
    notifications.emit('schedule', START + 10_000);
    expect(pending()).toContain(10_000);
    expect(pending()).not.toContain(50_000);
    notifications.emit('schedule', START + 40_000);
    expect(pending()).not.toContain(40_000);

    await clock.advance(10_000);
    expect(times('promote')).toEqual([0, 10_000]);
    // The promotion found the 50 s job next and armed for it.
    expect(pending()).toContain(50_000);
    await clock.advance(40_000);
    expect(times('promote')).toEqual([0, 10_000, 50_000]);
    await maintenance.stop();
  });

  it('sleeps at most a minute at a time, so a drifting clock heals', async () => {
    const { clock, maintenance, state, times } = setUp();
    state.scheduled = [START + 10 * 60_000];
    maintenance.start();
    await settle();
    await clock.advance(3 * 60_000);
    expect(times('promote')).toEqual([0, 60_000, 120_000, 180_000]);
    await maintenance.stop();
  });

  it('promotes again at once while batches come back full', async () => {
    const { maintenance, state, times } = setUp();
    state.scheduled = Array.from({ length: 2 * PROMOTE_BATCH + 1 }, () => START - 1);
    maintenance.start();
    await settle();
    expect(times('promote')).toEqual([0, 0, 0]);
    expect(state.scheduled).toEqual([]);
    await maintenance.stop();
  });

  it('retries a failed promotion a second later', async () => {
    const { clock, maintenance, state, times } = setUp();
    state.failPromotions = 1;
    state.scheduled = [START + 30_000];
    maintenance.start();
    await settle();
    await clock.advance(1000);
    expect(times('promote')).toEqual([0, 1000]);
    await clock.advance(29_000);
    expect(times('promote')).toEqual([0, 1000, 30_000]);
    await maintenance.stop();
  });

  it('reaps silent sessions and late attempts every quarter TTL (at most 5 s), jittered ±25 %', async () => {
    const exact = setUp();
    exact.maintenance.start();
    await exact.clock.advance(3 * REAP_MS);
    expect(exact.times('reap')).toEqual([0, 5000, 10_000, 15_000]);
    expect(exact.times('timeOut')).toEqual([0, 5000, 10_000, 15_000]);
    await exact.maintenance.stop();

    const early = setUp({ random: () => 0, leaseTtlMs: 3000 });
    early.maintenance.start();
    await early.clock.advance(2000);
    expect(early.times('reap')).toEqual([0, 562, 1124, 1686]);
    await early.maintenance.stop();

    const late = setUp({ random: () => 1 });
    late.maintenance.start();
    await late.clock.advance(7000);
    expect(late.times('reap')).toEqual([0, 6250]);
    await late.maintenance.stop();
  });

  it('prunes every ten minutes (jittered) when a retention is set, and never without one', async () => {
    const pruning = setUp({ retentionMs: 86_400_000 });
    pruning.maintenance.start();
    await pruning.clock.advance(20 * 60_000);
    expect(pruning.times('prune')).toEqual([600_000, 1_200_000]);
    await pruning.maintenance.stop();

    const keeping = setUp({ retentionMs: 0 });
    keeping.maintenance.start();
    await keeping.clock.advance(20 * 60_000);
    expect(keeping.times('prune')).toEqual([]);
    await keeping.maintenance.stop();
  });
});

describe('leadership', () => {
  it('a broker that loses the election does no duty and tries again every sixth of the TTL', async () => {
    const { clock, maintenance, state, times } = setUp();
    state.winsElection = false;
    maintenance.start();
    await clock.advance(LEASE_TTL_MS / 2);
    expect(maintenance.isLeader).toBe(false);
    expect(times('elect')).toEqual([0, 3333, 6666, 9999]);
    expect(times('reap')).toEqual([]);
    expect(times('promote')).toEqual([]);

    state.winsElection = true;
    await clock.advance(LEASE_TTL_MS / 6);
    expect(maintenance.isLeader).toBe(true);
    expect(times('reap')).toEqual([13_332]);
    await maintenance.stop();
  });

  it('lost with its connection: every duty stops, the broker stands again a second later, and one reap loop resumes', async () => {
    const { clock, maintenance, state, times, pending } = setUp();
    state.scheduled = [START + 30_000];
    maintenance.start();
    await clock.advance(REAP_MS);
    expect(times('reap')).toEqual([0, 5000]);

    state.winsElection = false;
    state.onLost!('the leader connection ended');
    expect(maintenance.isLeader).toBe(false);
    // Only the election's timer is left: no reap, prune or promotion while not the leader.
    expect(pending()).toEqual([6000]);
    await clock.advance(1000);
    expect(times('elect')).toEqual([0, 6000]);
    expect(maintenance.isLeader).toBe(false);

    state.winsElection = true;
    await clock.advance(LEASE_TTL_MS / 6);
    expect(maintenance.isLeader).toBe(true);
    const electedAt = times('elect').at(-1)!;
    expect(times('reap').at(-1)).toBe(electedAt);
    await clock.advance(2 * REAP_MS);
    expect(times('reap').filter((at) => at > electedAt)).toEqual([electedAt + REAP_MS, electedAt + 2 * REAP_MS]);
    // The promotion armed before the loss was cancelled with it; the new leader arms its own.
    await clock.advance(30_000);
    expect(times('promote')).toEqual([0, electedAt, 30_000]);
    expect(state.scheduled).toEqual([]);
    await maintenance.stop();
  });
});

describe('stop()', () => {
  it('resigns, leaves no timer and no listener, and is safe to call twice', async () => {
    const { clock, notifications, maintenance, state, times, pending } = setUp({ retentionMs: 60_000 });
    state.scheduled = [START + 30_000];
    maintenance.start();
    await settle();
    expect(pending().length).toBeGreaterThan(0);
    await maintenance.stop();
    await maintenance.stop();
    expect(pending()).toEqual([]);
    expect(notifications.listenerCount('schedule')).toBe(0);
    expect(maintenance.isLeader).toBe(false);
    expect(times('resign')).toEqual([0, 0]);
    const before = times('reap').length + times('promote').length;
    await clock.advance(3_600_000);
    expect(times('reap').length + times('promote').length).toBe(before);
  });

  it('waits for a reap under way, which then arms nothing', async () => {
    const { clock, maintenance, state, times, pending } = setUp();
    maintenance.start();
    await settle();
    const release = Promise.withResolvers<void>();
    state.holdReap = release.promise;
    await clock.advance(REAP_MS);
    expect(times('reap')).toEqual([0, REAP_MS]);
    let stopped = false;
    const stopping = maintenance.stop().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    release.resolve();
    await stopping;
    expect(pending()).toEqual([]);
  });

  it('while not yet elected: the election under way arms nothing afterwards', async () => {
    const { maintenance, pending, times } = setUp();
    maintenance.start();
    await maintenance.stop();
    await settle();
    expect(maintenance.isLeader).toBe(false);
    expect(pending()).toEqual([]);
    expect(times('reap')).toEqual([]);
  });
});
