/**
 * `npm run bench`: Baton against graphile-worker, pg-boss, BullMQ and a plain-SQL ceiling, on one
 * PostgreSQL (and Redis for BullMQ), scenario by scenario as issues 4 and 12 define them. Progress goes to
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
import type { Party } from './measure.ts';
import { progress } from './progress.ts';
import { cpuKey, DRAIN_PARTIES, ENQUEUE_PARTIES, record, renderTable, rows, type Results } from './report.ts';
import {
  drain,
  enqueueBatched,
  fairness,
  keyedDrain,
  enqueueSingle,
  fillBacklog,
  fillHistory,
  idleStreams,
  latency,
  readoutLatency,
  repeatAcross,
  type Context,
  type Measured,
} from './scenarios.ts';
import type { ServerGroup, System } from './system.ts';

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
// Worker processes are spawned deep in the scenarios; the folder reaches them through the environment.
if (plan.profileDir) process.env.BENCH_PROFILE_DIR = plan.profileDir;

const results: Results = new Map();
const notes: string[] = [];
let failures = 0;

progress(
  `plan: ${plan.jobs} jobs (single calls ${plan.inFlight} in flight, batches of ${plan.batch} 1 and ${plan.batchesInFlight} in flight), ` +
    `concurrency ${plan.concurrency} over ${plan.procs} worker process(es), ${plan.latencyJobs} latency jobs, backlog ${plan.backlog}, ` +
    `${plan.streams} idle streams, history ${plan.history}; scenarios ${plan.scenarios.join(', ')}; ` +
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
  ...(plan.scenarios.includes('D')
    ? [
        `Baton slowed by the backlog (empty ÷ with backlog): enqueue single ${slowdown('D1', 'A1')}, batches ${slowdown('D2', 'A2')}, drain ${slowdown('D3', 'B')}.`,
      ]
    : []),
  ...(plan.scenarios.includes('G') && plan.scenarios.includes('B')
    ? [`Baton's drain with fair keys against the plain drain (plain ÷ keyed): ${slowdown('G3', 'B')}.`]
    : []),
  ...(plan.scenarios.includes('F')
    ? [`Baton slowed by the history (empty ÷ with history): enqueue single ${slowdown('F1', 'A1')}, drain ${slowdown('F2', 'B')}.`]
    : []),
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

/** How one measured step files its figures: row keys in the order of the figures `pick` returns, and the CPU rows it fills. */
interface Filing<K extends string> {
  keys: string[];
  pick: (figures: Record<K, number>) => number[];
  /** The parties whose CPU per job goes into rows (report.ts `cpuKey` of the first key). */
  cpu?: Party[];
  warmup?: boolean;
}

/** Measures one step across `among` and files each system's medians (or "error") into the results. */
async function measure<K extends string>(
  title: string,
  among: System[],
  size: number,
  once: (system: System, size: number) => Promise<Measured<K>>,
  filing: Filing<K>,
): Promise<void> {
  progress(title);
  const cpuKeys = (filing.cpu ?? []).map((party) => [party, cpuKey(filing.keys[0]!, party)] as const);
  for (const [system, outcome] of await repeatAcross(ctx, title, among, size, once, filing.warmup ?? true)) {
    if (outcome instanceof Error) {
      failures++;
      notes.push(`${system.name}: ${title} failed: ${outcome.message.split('\n')[0]}`);
      for (const key of [...filing.keys, ...cpuKeys.map(([, k]) => k)]) record(results, key, system.name, 'error');
      continue;
    }
    filing.pick(outcome.figures).forEach((value, i) => record(results, filing.keys[i]!, system.name, value));
    for (const [party, key] of cpuKeys) record(results, key, system.name, outcome.cpuPerJobUs[party] ?? 'n/a');
  }
}

/**
 * Every scenario, each with all systems interleaved (scenarios.ts, `repeatAcross`). A system that
 * fails a scenario gets "error" in its rows and goes on with the next scenario.
 */
async function runScenarios(): Promise<void> {
  const { jobs, backlog, latencyJobs, history } = plan;
  const on = (scenario: string) => plan.scenarios.includes(scenario);
  const notApplicable = (system: System, keys: string[]) => {
    for (const key of keys) record(results, key, system.name, 'n/a');
  };
  const rate = (r: Record<'rate', number>) => [r.rate];
  if (on('A')) {
    await measure(`A. enqueue ${jobs}, single calls`, systems, jobs, (s, n) => enqueueSingle(s, ctx, n), { keys: ['A1'], pick: rate, cpu: ENQUEUE_PARTIES });
    for (const system of systems) if (!system.enqueueEachAlone) notApplicable(system, ['A1r']);
    await measure(
      `A. enqueue ${jobs}, single calls, one RPC each`,
      systems.filter((s) => s.enqueueEachAlone),
      jobs,
      (s, n) => enqueueSingle(s, ctx, n, 'all', true),
      { keys: ['A1r'], pick: rate },
    );
    await measure(`A. enqueue ${jobs}, batches, 1 in flight`, systems, jobs, (s, n) => enqueueBatched(s, ctx, n, 1), {
      keys: ['A2'],
      pick: rate,
      cpu: ENQUEUE_PARTIES,
    });
    await measure(`A. enqueue ${jobs}, batches, ${plan.batchesInFlight} in flight`, systems, jobs, (s, n) => enqueueBatched(s, ctx, n, plan.batchesInFlight), {
      keys: ['A3'],
      pick: rate,
    });
  }
  if (on('B')) await measure(`B. drain ${jobs}`, systems, jobs, (s, n) => drain(s, ctx, n), { keys: ['B'], pick: rate, cpu: DRAIN_PARTIES });
  if (on('S')) await runScaling();
  if (on('C'))
    await measure(`C. latency, ${latencyJobs} jobs`, systems, latencyJobs, (s, n) => latency(s, ctx, n), {
      keys: ['C50', 'C99'],
      pick: (r) => [r.p50, r.p99],
    });
  // E before D: the backlog would otherwise sit in Redis's memory while its RSS is read.
  if (on('E')) {
    const keys = ['E1', 'E2', 'E3', 'E4'];
    for (const system of systems) if (!system.idleWorker) notApplicable(system, keys);
    await measure(
      `E. ${plan.streams} idle streams`,
      systems.filter((s) => s.idleWorker),
      0,
      (s) => idleStreams(s, ctx),
      { keys, pick: (r) => [r.rss, r.growth, r.serverCpu, r.pgCpu], warmup: false },
    );
  }
  if (on('D')) {
    progress(`D. backlog of ${backlog}`);
    const backlogged = await fillEach(systems, ['D1', 'D2', 'D3'], 'the backlog', (s) => fillBacklog(s, ctx, backlog));
    await measure(`D. enqueue ${jobs} single, ${backlog} waiting`, backlogged, jobs, (s, n) => enqueueSingle(s, ctx, n, 'none'), { keys: ['D1'], pick: rate });
    await measure(`D. enqueue ${jobs} in batches, ${backlog} waiting`, backlogged, jobs, (s, n) => enqueueBatched(s, ctx, n, 1, 'none'), {
      keys: ['D2'],
      pick: rate,
    });
    await measure(`D. drain ${jobs} of ${backlog} waiting`, backlogged, jobs, (s, n) => drain(s, ctx, n, 'none'), { keys: ['D3'], pick: rate });
  }
  if (on('G')) {
    const keys = ['G1', 'G2', 'G3'];
    const fair = systems.filter((s) => s.setFairKeys && s.enqueueKeyedBatch);
    for (const system of systems) if (!fair.includes(system)) notApplicable(system, keys);
    await measure(`G. tenant B's ${plan.tenantB} jobs behind tenant A's ${jobs}`, fair, jobs, (s, n) => fairness(s, ctx, n, plan.tenantB), {
      keys: ['G1', 'G2'],
      pick: (r) => [r.p50, r.p99],
    });
    await measure(`G. drain ${jobs} over ${plan.fairKeys} fair keys`, fair, jobs, (s, n) => keyedDrain(s, ctx, n, plan.fairKeys), { keys: ['G3'], pick: rate });
  }
  // F last: the history stays in each system's database until the end of the run.
  if (on('F')) {
    progress(`F. history of ${history} finished jobs`);
    const keys = ['F1', 'F2', 'F3', 'F4', 'F5', 'F6'];
    for (const system of systems) if (!system.insertHistory) notApplicable(system, keys);
    const kept = await fillEach(
      systems.filter((s) => s.insertHistory),
      keys,
      'the history',
      (s) => fillHistory(s, ctx, history),
    );
    await measure(`F. enqueue ${jobs} single, ${history} finished kept`, kept, jobs, (s, n) => enqueueSingle(s, ctx, n, 'live'), { keys: ['F1'], pick: rate });
    await measure(`F. drain ${jobs}, ${history} finished kept`, kept, jobs, (s, n) => drain(s, ctx, n, 'live'), { keys: ['F2'], pick: rate });
    const readout = async (title: string, keys: string[], call: (s: System) => (() => Promise<void>) | undefined) => {
      for (const system of kept) if (!call(system)) notApplicable(system, keys);
      await measure(
        title,
        kept.filter((s) => call(s)),
        plan.readoutCalls,
        (s, calls) => readoutLatency(call(s)!, calls),
        { keys, pick: (r) => [r.p50, r.p99] },
      );
    };
    await readout(`F. queue stats, ${plan.readoutCalls} calls`, ['F3', 'F4'], (s) => s.queueStats?.bind(s));
    await readout(`F. /metrics scrapes, ${plan.readoutCalls} calls`, ['F5', 'F6'], (s) => s.scrapeMetrics?.bind(s));
  }
}

/**
 * S: B's drain at scale. Every system with `plan.scaleProcs` worker processes of `plan.concurrency`
 * each; and systems with servers of their own (Baton) with `plan.brokers` of them on one database,
 * a worker process on each, to see whether brokers add throughput or only share it.
 */
async function runScaling(): Promise<void> {
  const { jobs, scaleProcs, brokers, concurrency } = plan;
  const wide = { procs: scaleProcs, concurrency: scaleProcs * concurrency };
  await measure(`B. drain ${jobs}, ${scaleProcs} processes × ${concurrency}`, systems, jobs, (s, n) => drain(s, ctx, n, 'all', wide), {
    keys: ['S1'],
    pick: (r) => [r.rate],
  });
  const groups = new Map<System, ServerGroup>();
  for (const system of systems) {
    if (!system.addServers) {
      record(results, 'S2', system.name, 'n/a');
      continue;
    }
    try {
      progress(`  ${system.name}: starting ${brokers - 1} more broker(s)`);
      groups.set(system, await system.addServers(brokers - 1));
    } catch (error) {
      failures++;
      notes.push(`${system.name}: ${brokers} brokers failed to start: ${(error as Error).message.split('\n')[0]}`);
      record(results, 'S2', system.name, 'error');
    }
  }
  try {
    await measure(
      `B. drain ${jobs}, ${brokers} brokers`,
      [...groups.keys()],
      jobs,
      (s, n) => {
        const group = groups.get(s)!;
        return drain(s, ctx, n, 'all', { procs: brokers, concurrency: brokers * concurrency, workers: group.workers, servers: group.pids });
      },
      { keys: ['S2'], pick: (r) => [r.rate] },
    );
  } finally {
    for (const group of groups.values()) await group.close();
  }
}

/** Fills each system (the backlog of D, the history of F); a system whose fill fails gets "error" in `keys` and is left out. */
async function fillEach(among: System[], keys: string[], what: string, fill: (system: System) => Promise<void>): Promise<System[]> {
  const filled: System[] = [];
  for (const system of among) {
    try {
      await fill(system);
      filled.push(system);
    } catch (error) {
      failures++;
      notes.push(`${system.name}: ${what} failed: ${(error as Error).message.split('\n')[0]}`);
      progress(`  ${system.name}: ${what} FAILED: ${(error as Error).stack}`);
      for (const key of keys) record(results, key, system.name, 'error');
    }
  }
  return filled;
}
