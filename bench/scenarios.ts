/**
 * The scenarios of issues 4 and 12, each written once against the System seam (system.ts) so that
 * every queue is measured the same way. Each returns raw figures for one repetition; `repeatAcross`
 * adds the warm-up, interleaves the systems and takes the medians.
 */
import type { Plan } from './plan.ts';
import type { BenchPostgres } from './postgres.ts';
import {
  childPids,
  cpuByPid,
  cpuMs,
  CpuMeter,
  type CpuUse,
  describeCpu,
  median,
  now,
  type Party,
  PARTIES,
  percentile,
  rssMb,
  sleep,
  treeCpuSince,
} from './measure.ts';
import { progress } from './progress.ts';
import type { BenchPayload, System, WorkerSetup } from './system.ts';
import { WorkerProcs } from './worker-procs.ts';

export interface Context {
  plan: Plan;
  postgres: BenchPostgres;
}

/** One repetition's figures, and what the parties' CPU was doing meanwhile. */
export interface Measured<K extends string> {
  figures: Record<K, number>;
  cpu?: CpuUse;
}

/** A system's medians over the repetitions: the figures, and each party's CPU per job where read. */
export interface Outcome<K extends string> {
  figures: Record<K, number>;
  cpuPerJobUs: Partial<Record<Party, number>>;
}

/**
 * What a timed step empties first: everything (`all`), the live jobs only, keeping the history of
 * scenario F (`live`), or nothing, building on the backlog of scenario D (`none`).
 */
export type Reset = 'all' | 'live' | 'none';

const payloads = (n: number, from = 0): BenchPayload[] => Array.from({ length: n }, (_, k) => ({ i: from + k }));

/** Before a timed step: an empty queue (unless the step builds on what is there) and a fresh checkpoint. */
async function prepare(system: System, ctx: Context, reset: Reset): Promise<void> {
  if (reset !== 'none') await system.reset({ keepHistory: reset === 'live' });
  if (system.storage === 'postgres') await ctx.postgres.checkpoint();
}

/**
 * Runs `once` for every system in turn: a warm-up round at a quarter of the size (figures thrown
 * away), then `reps` rounds at full size. Interleaving the systems round by round, rather than
 * running one system's repetitions and then the next's, exposes them all to the same conditions
 * of a shared machine. Returns each system's medians, or the error that stopped it.
 */
export async function repeatAcross<K extends string>(
  ctx: Context,
  label: string,
  systems: System[],
  size: number,
  once: (system: System, size: number) => Promise<Measured<K>>,
  warmup = true,
): Promise<Map<System, Outcome<K> | Error>> {
  const runs = new Map<System, Measured<K>[]>(systems.map((s) => [s, []]));
  const failed = new Map<System, Error>();
  const attempt = async (system: System, n: number, rep?: number) => {
    if (failed.has(system)) return;
    try {
      const measured = await once(system, n);
      if (rep === undefined) return;
      runs.get(system)!.push(measured);
      progress(`  ${system.name}: rep ${rep}/${ctx.plan.reps}: ${describe(measured.figures)}${measured.cpu ? ` (${describeCpu(measured.cpu)})` : ''}`);
    } catch (error) {
      failed.set(system, error as Error);
      progress(`  ${system.name}: ${label} FAILED: ${(error as Error).stack}`);
    }
  };
  if (ctx.plan.warmup && warmup) {
    for (const system of systems) await attempt(system, Math.min(size, Math.max(100, Math.round(size / 4))));
    progress(`  warm-up done`);
  }
  for (let r = 1; r <= ctx.plan.reps; r++) for (const system of systems) await attempt(system, size, r);
  const result = new Map<System, Outcome<K> | Error>();
  for (const system of systems) {
    const error = failed.get(system);
    if (error) {
      result.set(system, error);
      continue;
    }
    const mine = runs.get(system)!;
    const figures = {} as Record<K, number>;
    for (const key of Object.keys(mine[0]!.figures) as K[]) figures[key] = median(mine.map((r) => r.figures[key]));
    const cpuPerJobUs: Partial<Record<Party, number>> = {};
    for (const party of PARTIES) {
      const readings = mine.flatMap((r) => (r.cpu?.perJobUs[party] === undefined ? [] : [r.cpu.perJobUs[party]]));
      if (readings.length > 0) cpuPerJobUs[party] = median(readings);
    }
    result.set(system, { figures, cpuPerJobUs });
  }
  return result;
}

/** Starts reading the CPU of the system's server(s), its workers, PostgreSQL and this process. */
async function meter(system: System, ctx: Context, workers?: WorkerProcs, servers?: number[]): Promise<CpuMeter> {
  const own = await system.serverPid();
  return new CpuMeter({
    servers: servers ?? (own ? [own] : []),
    workers: workers?.pids,
    postgres: system.storage === 'postgres' ? ctx.postgres.pid : undefined,
  });
}

const describe = (figures: Record<string, number>) =>
  Object.entries(figures)
    .map(([k, v]) => `${k}=${v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(2)}`)
    .join(' ');

/**
 * A: `n` single enqueue calls, `inFlight` at a time, from one client. Jobs/s. With `eachAlone`, one
 * RPC per call even where the client would send calls made together in one.
 */
export async function enqueueSingle(system: System, ctx: Context, n: number, reset: Reset = 'all', eachAlone = false): Promise<Measured<'rate'>> {
  await prepare(system, ctx, reset);
  const enqueue = eachAlone ? system.enqueueEachAlone!.bind(system) : system.enqueue.bind(system);
  let next = 0;
  const cpu = await meter(system, ctx);
  const t0 = now();
  await Promise.all(
    Array.from({ length: Math.min(ctx.plan.inFlight, n) }, async () => {
      while (next < n) await enqueue({ i: next++ });
    }),
  );
  return { figures: { rate: (n / (now() - t0)) * 1000 }, cpu: cpu.read(n) };
}

/**
 * A: `n` jobs in batch calls of `plan.batch`, `inFlight` calls at a time (each waits for its
 * answer before sending the next), from one client. Jobs/s.
 */
export async function enqueueBatched(system: System, ctx: Context, n: number, inFlight: number, reset: Reset = 'all'): Promise<Measured<'rate'>> {
  await prepare(system, ctx, reset);
  const batches = Math.ceil(n / ctx.plan.batch);
  const bodies = Array.from({ length: batches }, (_, b) => payloads(Math.min(ctx.plan.batch, n - b * ctx.plan.batch), b * ctx.plan.batch));
  let next = 0;
  const cpu = await meter(system, ctx);
  const t0 = now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, batches) }, async () => {
      while (next < batches) await system.enqueueBatch(bodies[next++]!);
    }),
  );
  return { figures: { rate: (n / (now() - t0)) * 1000 }, cpu: cpu.read(n) };
}

/** How a drain's workers are laid out: the plan's by default; more processes, or several servers, when scaling. */
export interface DrainLayout {
  /** Worker processes, and the concurrency they share. */
  procs: number;
  concurrency: number;
  /** One worker setup per process (several brokers), instead of the system's own for all. */
  workers?: WorkerSetup[];
  /** The server processes to read the CPU of, instead of the system's own. */
  servers?: number[];
}

/** The plan's layout: `plan.concurrency` split over `plan.procs` processes. */
const planLayout = (plan: Plan): DrainLayout => ({ procs: plan.procs, concurrency: plan.concurrency });

/**
 * B: `n` jobs waiting, then the workers (separate processes) run no-op handlers. Jobs/s from the
 * first handler start to the moment the n-th completion is committed (each system's own check of
 * its storage), so that no system's start-up is counted. With `reset` 'none' the jobs are already
 * there (the backlog scenario) and none are enqueued.
 */
export async function drain(system: System, ctx: Context, n: number, reset: Reset = 'all', layout = planLayout(ctx.plan)): Promise<Measured<'rate'>> {
  await prepare(system, ctx, reset);
  if (reset !== 'none') for (let done = 0; done < n; done += ctx.plan.batch) await system.enqueueBatch(payloads(Math.min(ctx.plan.batch, n - done), done));
  const procs = await WorkerProcs.spawn(layout.workers ?? system.worker, layout.procs, layout.concurrency);
  try {
    const mark = await system.mark();
    const cpu = await meter(system, ctx, procs, layout.servers);
    procs.go(layout.procs === 1 ? n : undefined);
    await procs.waitHandled(n, Math.max(20_000, n * 5));
    let end: number;
    for (;;) {
      end = now();
      if (await system.drained(mark, n, procs.progress)) break;
      if (now() - end < 2) await sleep(2);
    }
    return { figures: { rate: (n / (end - procs.progress.firstStart)) * 1000 }, cpu: cpu.read(n) };
  } finally {
    await procs.stop();
  }
}

/**
 * C: an idle, connected worker; `m` jobs enqueued one at a time, each after the previous one's
 * handler started and a 10 ms pause. The time from the enqueue call to the handler's start, in ms.
 */
export async function latency(system: System, ctx: Context, m: number): Promise<Measured<'p50' | 'p99'>> {
  await prepare(system, ctx, 'all');
  const procs = await WorkerProcs.spawn(system.worker, ctx.plan.procs, ctx.plan.concurrency);
  try {
    procs.go();
    await procs.waitStarted();
    await sleep(1_000); // let every library settle into its idle state
    const samples: number[] = [];
    for (let seq = 0; seq < m; seq++) {
      const started = procs.latencyStart(seq);
      const t0 = now();
      await system.enqueue({ i: seq, seq });
      samples.push((await started) - t0);
      await sleep(10);
    }
    return { figures: { p50: percentile(samples, 50), p99: percentile(samples, 99) } };
  } finally {
    await procs.stop();
  }
}

/** Sequence numbers of G's tenant-B jobs, apart from C's. */
const TENANT_B_SEQ = 1_000_000;

/**
 * G, fairness: the queue claims by fair keys; tenant A's `n` jobs are enqueued and the workers
 * start on them; then tenant B enqueues `m` jobs in one call. How long each of B's jobs waits from
 * that call to its handler's start (ms): with fair claiming, one claim round, not A's backlog.
 */
export async function fairness(system: System, ctx: Context, n: number, m: number): Promise<Measured<'p50' | 'p99'>> {
  await prepare(system, ctx, 'all');
  await system.setFairKeys!(true);
  try {
    for (let done = 0; done < n; done += ctx.plan.batch) {
      await system.enqueueKeyedBatch!(payloads(Math.min(ctx.plan.batch, n - done), done).map((payload) => ({ payload, key: 'tenant-a' })));
    }
    const procs = await WorkerProcs.spawn(system.worker, ctx.plan.procs, ctx.plan.concurrency);
    try {
      procs.go();
      await procs.waitStarted();
      // A's drain under way: its backlog is what B's jobs would wait behind without fair claiming.
      await procs.waitHandled(Math.min(n, ctx.plan.concurrency * 4), 60_000);
      const starts = Array.from({ length: m }, (_, i) => procs.latencyStart(TENANT_B_SEQ + i, 60_000));
      const t0 = now();
      await system.enqueueKeyedBatch!(Array.from({ length: m }, (_, i) => ({ payload: { i: n + i, seq: TENANT_B_SEQ + i }, key: 'tenant-b' })));
      const waits = (await Promise.all(starts)).map((at) => at - t0);
      return { figures: { p50: percentile(waits, 50), p99: percentile(waits, 99) } };
    } finally {
      await procs.stop();
    }
  } finally {
    await system.setFairKeys!(false);
  }
}

/** G: B's drain, with the queue claiming by fair keys and the jobs spread over `keys` keys. */
export async function keyedDrain(system: System, ctx: Context, n: number, keys: number): Promise<Measured<'rate'>> {
  await prepare(system, ctx, 'all');
  await system.setFairKeys!(true);
  try {
    for (let done = 0; done < n; done += ctx.plan.batch) {
      const batch = payloads(Math.min(ctx.plan.batch, n - done), done);
      await system.enqueueKeyedBatch!(batch.map((payload) => ({ payload, key: `tenant-${payload.i % keys}` })));
    }
    return await drain(system, ctx, n, 'none');
  } finally {
    await system.setFairKeys!(false);
  }
}

/** D: fills the queue with `n` waiting jobs, fast (SQL or bulk), then checkpoints. */
export async function fillBacklog(system: System, ctx: Context, n: number): Promise<void> {
  await system.reset();
  const t0 = now();
  await system.insertBacklog(n);
  if (system.storage === 'postgres') await ctx.postgres.checkpoint();
  progress(`  ${system.name}: backlog of ${n.toLocaleString('en-US')} jobs inserted in ${((now() - t0) / 1000).toFixed(1)} s`);
}

/**
 * E: `plan.streams` idle workers connected over `plan.streamProcs` processes. The server's resident
 * memory at the end (and how much of it the streams added) and its CPU (and PostgreSQL's, summed over its processes) over `plan.idleSeconds`,
 * after the connections settled; the server is restarted first, so that earlier scenarios leave no
 * garbage in its heap.
 */
export async function idleStreams(system: System, ctx: Context): Promise<Measured<'rss' | 'growth' | 'serverCpu' | 'pgCpu'>> {
  const { plan } = ctx;
  await system.reset();
  await system.restartServer?.();
  const pid = (await system.serverPid())!;
  await sleep(1_000);
  const rssBefore = rssMb(pid);
  const perProc = Math.ceil(plan.streams / plan.streamProcs);
  const procs = await WorkerProcs.spawn(system.idleWorker!(perProc), plan.streamProcs, plan.streamProcs);
  try {
    procs.go();
    await procs.waitStarted(120_000);
    await sleep(2_000);
    const pg = ctx.postgres.pid;
    const pg0 = cpuByPid(pg ? [pg, ...childPids(pg)] : []);
    const cpu0 = cpuMs(pid);
    const t0 = now();
    await sleep(plan.idleSeconds * 1000);
    const elapsed = now() - t0;
    return {
      figures: {
        rss: rssMb(pid),
        growth: rssMb(pid) - rssBefore,
        serverCpu: ((cpuMs(pid) - cpu0) / elapsed) * 100,
        pgCpu: pg && system.storage === 'postgres' ? (treeCpuSince(pg, pg0) / elapsed) * 100 : Number.NaN,
      },
    };
  } finally {
    await procs.stop();
  }
}

/**
 * F: fills the system's history with `n` completed jobs (SQL, in chunks, with a progress line per
 * chunk), then checkpoints. The live queue is empty afterwards.
 */
export async function fillHistory(system: System, ctx: Context, n: number): Promise<void> {
  await system.reset();
  const t0 = now();
  const seconds = () => ((now() - t0) / 1000).toFixed(1);
  await system.insertHistory!(n, (done) =>
    progress(`  ${system.name}: ${done.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} finished jobs in ${seconds()} s`),
  );
  if (system.storage === 'postgres') await ctx.postgres.checkpoint();
  progress(`  ${system.name}: history of ${n.toLocaleString('en-US')} finished jobs in place after ${seconds()} s`);
}

/**
 * F: `calls` calls of a read-out (GetQueueStats, a `/metrics` scrape), one after another, each
 * timed from the call to its full answer; p50 and p99 in ms. The read-outs of an operator's
 * dashboard or a Prometheus server come one at a time, so concurrency is not what is measured.
 */
export async function readoutLatency(call: () => Promise<void>, calls: number): Promise<Measured<'p50' | 'p99'>> {
  const samples: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = now();
    await call();
    samples.push(now() - t0);
  }
  return { figures: { p50: percentile(samples, 50), p99: percentile(samples, 99) } };
}
