/**
 * Cron across a failover (issue 13): three brokers as real processes share one schedule that ticks
 * every second; the leader is SIGKILLed twice, each time in the middle of a second, so that ticks
 * come due while no broker leads. The schedule backfills missed ticks (up to 100), so every second
 * from the first tick to the last must have exactly one job: none missing, none doubled. The checks
 * read the tick table and the jobs, never the wall clock.
 */
import { afterAll, expect, it } from 'vitest';
import { createTestDatabase, query } from '../support/database.ts';
import { eventually } from '../support/processes.ts';
import { type BrokerProcess, Cluster } from './harness.ts';

const SCHEDULE = 'chaos-cron';
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let cluster: Cluster;

afterAll(async () => {
  await cluster?.stop();
  await db?.drop();
});

async function ticks(): Promise<number> {
  const [{ n }] = await query<{ n: number }>(db.url, 'select count(*)::int as n from baton_schedule_ticks where schedule_name = $1', [SCHEDULE]);
  return n;
}

it('every tick yields exactly one job across two leader kills', async () => {
  db = await createTestDatabase();
  cluster = new Cluster(db.url);
  const schedules = JSON.stringify([{ name: SCHEDULE, queue: SCHEDULE, cron: '*/1 * * * * *', missed: 'backfill', backfill_limit: 100 }]);
  for (let i = 0; i < 3; i++) await cluster.startBroker({ BATON_SCHEDULES: schedules });
  const killed = new Set<BrokerProcess>();
  const leader = () =>
    eventually(() => cluster.brokers.find((b) => !killed.has(b) && b.child.output().includes('elected to run background duties')), 30_000, 'a leader');

  await eventually(async () => (await ticks()) >= 3, 30_000, 'the first ticks');
  for (let kill = 0; kill < 2; kill++) {
    const current = await leader();
    // Mid-second, so a tick comes due while the lock is still being handed over.
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 500));
    await current.child.kill('SIGKILL');
    killed.add(current);
    await leader();
    const before = await ticks();
    await eventually(async () => (await ticks()) >= before + 3, 30_000, 'ticks after the failover');
  }

  const rows = await query<{ tick_at: Date; job_id: string | null; outcome: string }>(
    db.url,
    'select tick_at, job_id::text, outcome from baton_schedule_ticks where schedule_name = $1 order by tick_at',
    [SCHEDULE],
  );
  const seconds = rows.map((row) => row.tick_at.getTime() / 1000);
  // None missing: one row per second from the first tick to the last.
  expect(seconds).toEqual(seconds.map((_, i) => seconds[0] + i));
  expect(rows.every((row) => row.outcome === 'enqueued' && row.job_id !== null)).toBe(true);
  // None doubled: one job per tick, each due at its tick, and no job that no tick accounts for.
  const jobs = await query<{ id: string; run_at: Date; tick: string }>(
    db.url,
    `select id::text, run_at, labels->>'baton.tick' as tick from baton_jobs where labels->>'baton.schedule' = $1 order by run_at`,
    [SCHEDULE],
  );
  expect(jobs.map((job) => job.id).sort()).toEqual(rows.map((row) => row.job_id).sort());
  expect(jobs.map((job) => job.run_at.getTime() / 1000)).toEqual(seconds);
  expect(new Set(jobs.map((job) => job.tick)).size).toBe(jobs.length);
  expect(killed.size).toBe(2);
}, 180_000);
