/**
 * The scenarios of issue 4, each written once against the System seam (system.ts) so that every
 * queue is measured the same way. Each returns raw figures for one repetition; `repeatAcross` adds
 * the warm-up, interleaves the systems and takes the medians.
 */
import type { Plan } from './plan.ts';
import type { BenchPostgres } from './postgres.ts';
import { childPids, cpuByPid, cpuMs, CpuMeter, median, now, percentile, rssMb, sleep, treeCpuSince } from './measure.ts';
import { progress } from './progress.ts';
import type { BenchPayload, System } from './system.ts';
import { WorkerProcs } from './worker-procs.ts';

export interface Context {
  plan: Plan;
  postgres: BenchPostgres;
}

/** One repetition's figures, and what the parties' CPU was doing meanwhile (for the progress line). */
export type Measured<K extends string> = Record<K, number> & { cpu?: string };

const payloads = (n: number, from = 0): BenchPayload[] => Array.from({ length: n }, (_, k) => ({ i: from + k }));

/** Before a timed step: an empty queue (unless the step builds on the backlog) and a fresh checkpoint. */
async function prepare(system: System, ctx: Context, reset: boolean): Promise<void> {
  if (reset) await system.reset();
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
): Promise<Map<System, Record<K, number> | Error>> {
  const runs = new Map<System, Record<K, number>[]>(systems.map((s) => [s, []]));
  const failed = new Map<System, Error>();
  const attempt = async (system: System, n: number, rep?: number) => {
    if (failed.has(system)) return;
    try {
      const { cpu, ...figures } = await once(system, n);
      if (rep === undefined) return;
      runs.get(system)!.push(figures as unknown as Record<K, number>);
      progress(`  ${system.name}: rep ${rep}/${ctx.plan.reps}: ${describe(figures)}${cpu ? ` (${cpu})` : ''}`);
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
  const result = new Map<System, Record<K, number> | Error>();
  for (const system of systems) {
    const error = failed.get(system);
    if (error) {
      result.set(system, error);
      continue;
    }
    const mine = runs.get(system)!;
    const medians = {} as Record<K, number>;
    for (const key of Object.keys(mine[0]!) as K[]) medians[key] = median(mine.map((r) => r[key]));
    result.set(system, medians);
  }
  return result;
}

/** Starts reading the CPU of the system's server, its workers, PostgreSQL and this process. */
async function meter(system: System, ctx: Context, workers?: WorkerProcs): Promise<CpuMeter> {
  return new CpuMeter({
    server: await system.serverPid(),
    workers: workers?.pids,
    postgres: system.storage === 'postgres' ? ctx.postgres.pid : undefined,
  });
}

const describe = (figures: Record<string, number>) =>
  Object.entries(figures)
    .map(([k, v]) => `${k}=${v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(2)}`)
    .join(' ');

/** A: `n` single enqueue calls, `inFlight` at a time, from one client. Jobs/s. */
export async function enqueueSingle(system: System, ctx: Context, n: number, reset = true): Promise<Measured<'rate'>> {
  await prepare(system, ctx, reset);
  let next = 0;
  const cpu = await meter(system, ctx);
  const t0 = now();
  await Promise.all(
    Array.from({ length: Math.min(ctx.plan.inFlight, n) }, async () => {
      while (next < n) await system.enqueue({ i: next++ });
    }),
  );
  return { rate: (n / (now() - t0)) * 1000, cpu: cpu.report() };
}

/** A: `n` jobs in batch calls of `plan.batch`, one call at a time. Jobs/s. */
export async function enqueueBatched(system: System, ctx: Context, n: number, reset = true): Promise<Measured<'rate'>> {
  await prepare(system, ctx, reset);
  const batches = Math.ceil(n / ctx.plan.batch);
  const bodies = Array.from({ length: batches }, (_, b) => payloads(Math.min(ctx.plan.batch, n - b * ctx.plan.batch), b * ctx.plan.batch));
  const cpu = await meter(system, ctx);
  const t0 = now();
  for (const body of bodies) await system.enqueueBatch(body);
  return { rate: (n / (now() - t0)) * 1000, cpu: cpu.report() };
}

/**
 * B: `n` jobs waiting, then the workers (separate processes, total concurrency `plan.concurrency`)
 * run no-op handlers. Jobs/s from the first handler start to the moment the n-th completion is
 * committed (each system's own check of its storage), so that no system's start-up is counted.
 * With `enqueue` false the jobs are already there (the backlog scenario).
 */
export async function drain(system: System, ctx: Context, n: number, enqueue = true): Promise<Measured<'rate'>> {
  await prepare(system, ctx, enqueue);
  if (enqueue) for (let done = 0; done < n; done += ctx.plan.batch) await system.enqueueBatch(payloads(Math.min(ctx.plan.batch, n - done), done));
  const procs = await WorkerProcs.spawn(system.worker, ctx.plan.procs, ctx.plan.concurrency);
  try {
    const mark = await system.mark();
    const cpu = await meter(system, ctx, procs);
    procs.go(ctx.plan.procs === 1 ? n : undefined);
    await procs.waitHandled(n, Math.max(20_000, n * 5));
    let end: number;
    for (;;) {
      end = now();
      if (await system.drained(mark, n, procs.progress)) break;
      if (now() - end < 2) await sleep(2);
    }
    return { rate: (n / (end - procs.progress.firstStart)) * 1000, cpu: cpu.report() };
  } finally {
    await procs.stop();
  }
}

/**
 * C: an idle, connected worker; `m` jobs enqueued one at a time, each after the previous one's
 * handler started and a 10 ms pause. The time from the enqueue call to the handler's start, in ms.
 */
export async function latency(system: System, ctx: Context, m: number): Promise<Measured<'p50' | 'p99'>> {
  await prepare(system, ctx, true);
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
    return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
  } finally {
    await procs.stop();
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
      rss: rssMb(pid),
      growth: rssMb(pid) - rssBefore,
      serverCpu: ((cpuMs(pid) - cpu0) / elapsed) * 100,
      pgCpu: pg && system.storage === 'postgres' ? (treeCpuSince(pg, pg0) / elapsed) * 100 : Number.NaN,
    };
  } finally {
    await procs.stop();
  }
}
