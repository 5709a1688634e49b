/**
 * `npm run bench`: Baton against graphile-worker, pg-boss, BullMQ and a plain-SQL ceiling, on one
 * PostgreSQL (and Redis for BullMQ), scenario by scenario as issue 4 defines them. Progress goes to
 * stderr; the machine, the table and its notes to stdout. Exits non-zero if any step failed — never
 * because of a number. See bench/README.md.
 */
import os from 'node:os';
import { describeMachine } from './machine.ts';
import { parsePlan, type Plan } from './plan.ts';
import { createBatonSystem } from './peers/baton.ts';
import { createBullmqSystem, probeRedis } from './peers/bullmq.ts';
import { createGraphileSystem } from './peers/graphile.ts';
import { createPgBossSystem } from './peers/pgboss.ts';
import { createPlainSqlSystem } from './peers/plain-sql.ts';
import { startPostgres, type BenchPostgres } from './postgres.ts';
import { progress } from './progress.ts';
import { record, renderTable, rows, type Results } from './report.ts';
import { drain, enqueueBatched, enqueueSingle, fillBacklog, idleStreams, latency, repeatAcross, type Context, type Measured } from './scenarios.ts';
import type { System } from './system.ts';

const COLUMNS: Record<string, string> = {
  baton: 'Baton',
  graphile: 'graphile-worker',
  pgboss: 'pg-boss',
  bullmq: 'BullMQ',
  plain: 'plain SQL',
};

let plan: Plan;
try {
  plan = parsePlan(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(2);
}

const results: Results = new Map();
const notes: string[] = [];
let failures = 0;

progress(
  `plan: ${plan.jobs} jobs (batches of ${plan.batch}, ${plan.inFlight} in flight), concurrency ${plan.concurrency} over ${plan.procs} ` +
    `worker process(es), ${plan.latencyJobs} latency jobs, backlog ${plan.backlog}, ${plan.streams} idle streams, ` +
    `${plan.reps} rep(s)${plan.warmup ? ' after a warm-up' : ''}; systems: ${plan.systems.join(', ')}`,
);
const loadAtStart = os.loadavg()[0]!;
const postgres = await startPostgres();
progress(postgres.description);
const redis = plan.systems.includes('bullmq') ? await probeRedis() : undefined;
const redisLine = redis ? `${redis.version} on 127.0.0.1:6379, ${redis.persistence}` : 'not reachable on 127.0.0.1:6379';
const ctx: Context = { plan, postgres };
// Ctrl-C: stop our PostgreSQL (brokers and worker processes go with this process; see broker-process.ts).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping`);
    void postgres.stop().finally(() => process.exit(130));
  });
}

const systems: System[] = [];
try {
  for (const name of plan.systems) {
    const column = COLUMNS[name]!;
    if (name === 'bullmq' && !redis) {
      for (const row of rows(plan)) record(results, row.key, column, 'skipped');
      notes.push('BullMQ: skipped, Redis is not reachable on 127.0.0.1:6379.');
      progress('BullMQ: skipped (Redis not reachable on 127.0.0.1:6379)');
      continue;
    }
    const system = createSystem(name, postgres);
    progress(`${system.name}: setting up`);
    try {
      await system.setup();
      systems.push(system);
    } catch (error) {
      failures++;
      notes.push(`${system.name}: set-up failed: ${(error as Error).message}`);
      progress(`${system.name}: set-up FAILED: ${(error as Error).stack}`);
      for (const row of rows(plan)) record(results, row.key, system.name, 'error');
      await system.close().catch(() => undefined);
    }
  }
  await runScenarios();
} finally {
  for (const system of systems) {
    await system.close().catch((error: unknown) => progress(`${system.name}: close failed: ${(error as Error).message}`));
  }
  await postgres.stop();
}

const columns = ['baton', ...plan.systems.filter((s) => s !== 'baton')].map((s) => COLUMNS[s]!);
const baton = (key: string) => results.get(key)?.get('Baton');
const slowdown = (withBacklog: string, empty: string) => {
  const d = baton(withBacklog);
  const e = baton(empty);
  return typeof d === 'number' && typeof e === 'number' ? `${(e / d).toFixed(2)}×` : '—';
};
const out = [
  `Baton benchmark (${plan.smoke ? 'smoke run: tiny counts, the numbers mean nothing' : `median of ${plan.reps} rep(s)${plan.warmup ? ' after a warm-up' : ''}`}), ${new Date().toISOString()}`,
  ...describeMachine(postgres.description, redis ? redisLine : 'not used or not reachable'),
  `Load average (1 min): ${loadAtStart.toFixed(2)} at start, ${os.loadavg()[0]!.toFixed(2)} at end`,
  '',
  renderTable(plan, results, columns),
  '',
  'Ratio = Baton ÷ peer. Rows marked "higher" (jobs/s): above 1 favours Baton. Rows marked "lower" (latency, memory, CPU): below 1 favours Baton.',
  `Baton slowed by the backlog (empty ÷ with backlog): enqueue single ${slowdown('D1', 'A1')}, batches ${slowdown('D2', 'A2')}, drain ${slowdown('D3', 'B')}.`,
  ...(redis
    ? [
        `BullMQ's Redis: ${redis.persistence}; a job BullMQ acknowledges is ${redis.persistence.startsWith('AOF on, appendfsync always') ? '' : 'not '}on disk when the call returns.`,
      ]
    : []),
  ...notes,
];
process.stdout.write(out.join('\n') + '\n');
progress(failures ? `done, with ${failures} failure(s)` : 'done');
process.exit(failures ? 1 : 0);

function createSystem(name: string, pg: BenchPostgres): System {
  switch (name) {
    case 'baton':
      return createBatonSystem({ postgres: pg, broker: { cpuProfileDir: plan.profileDir, nativeGrpc: plan.batonPort === 'grpc' } });
    case 'graphile':
      return createGraphileSystem(pg);
    case 'pgboss':
      return createPgBossSystem(pg);
    case 'bullmq':
      return createBullmqSystem();
    default:
      return createPlainSqlSystem(pg);
  }
}

/**
 * Every scenario, each with all systems interleaved (scenarios.ts, `repeatAcross`). A system that
 * fails a scenario gets "error" in its rows and goes on with the next scenario.
 */
async function runScenarios(): Promise<void> {
  const { jobs, backlog, latencyJobs } = plan;
  const on = (scenario: string) => plan.scenarios.includes(scenario);
  const measure = async <K extends string>(
    keys: string[],
    title: string,
    among: System[],
    size: number,
    once: (system: System, size: number) => Promise<Measured<K>>,
    pick: (figures: Record<K, number>) => number[],
    warmup = true,
  ) => {
    progress(title);
    for (const [system, figures] of await repeatAcross(ctx, title, among, size, once, warmup)) {
      if (figures instanceof Error) {
        failures++;
        notes.push(`${system.name}: ${title} failed: ${figures.message.split('\n')[0]}`);
        for (const key of keys) record(results, key, system.name, 'error');
      } else {
        pick(figures).forEach((value, i) => record(results, keys[i]!, system.name, value));
      }
    }
  };
  if (on('A')) {
    await measure(
      ['A1'],
      `A. enqueue ${jobs}, single calls`,
      systems,
      jobs,
      (s, n) => enqueueSingle(s, ctx, n),
      (r) => [r.rate],
    );
    await measure(
      ['A2'],
      `A. enqueue ${jobs}, batches`,
      systems,
      jobs,
      (s, n) => enqueueBatched(s, ctx, n),
      (r) => [r.rate],
    );
  }
  if (on('B'))
    await measure(
      ['B'],
      `B. drain ${jobs}`,
      systems,
      jobs,
      (s, n) => drain(s, ctx, n),
      (r) => [r.rate],
    );
  if (on('C'))
    await measure(
      ['C50', 'C99'],
      `C. latency, ${latencyJobs} jobs`,
      systems,
      latencyJobs,
      (s, n) => latency(s, ctx, n),
      (r) => [r.p50, r.p99],
    );
  // E before D: the backlog would otherwise sit in Redis's memory while its RSS is read.
  if (on('E')) {
    const idle = systems.filter((s) => s.idleWorker);
    for (const system of systems) if (!system.idleWorker) for (const key of ['E1', 'E2', 'E3', 'E4']) record(results, key, system.name, 'n/a');
    await measure(
      ['E1', 'E2', 'E3', 'E4'],
      `E. ${plan.streams} idle streams`,
      idle,
      0,
      (s) => idleStreams(s, ctx),
      (r) => [r.rss, r.growth, r.serverCpu, r.pgCpu],
      false,
    );
  }
  if (!on('D')) return;
  progress(`D. backlog of ${backlog}`);
  const backlogged: System[] = [];
  for (const system of systems) {
    try {
      await fillBacklog(system, ctx, backlog);
      backlogged.push(system);
    } catch (error) {
      failures++;
      notes.push(`${system.name}: the backlog failed: ${(error as Error).message.split('\n')[0]}`);
      progress(`  ${system.name}: backlog FAILED: ${(error as Error).stack}`);
      for (const key of ['D1', 'D2', 'D3']) record(results, key, system.name, 'error');
    }
  }
  await measure(
    ['D1'],
    `D. enqueue ${jobs} single, ${backlog} waiting`,
    backlogged,
    jobs,
    (s, n) => enqueueSingle(s, ctx, n, false),
    (r) => [r.rate],
  );
  await measure(
    ['D2'],
    `D. enqueue ${jobs} in batches, ${backlog} waiting`,
    backlogged,
    jobs,
    (s, n) => enqueueBatched(s, ctx, n, false),
    (r) => [r.rate],
  );
  await measure(
    ['D3'],
    `D. drain ${jobs} of ${backlog} waiting`,
    backlogged,
    jobs,
    (s, n) => drain(s, ctx, n, false),
    (r) => [r.rate],
  );
}
