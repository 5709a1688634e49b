/** What one run measures, from the command line: `node bench/run.ts [--smoke | --quick] [options]`. */

export interface Plan {
  /** Jobs enqueued (A, D) and drained (B, D). Issue 4: 20,000. */
  jobs: number;
  /** Jobs per batch call. Issue 4: 1,000. */
  batch: number;
  /** Single enqueue calls in flight. Issue 4: 50. */
  inFlight: number;
  /** Batch calls in flight in A's second batched row (the first has one). Issue 12: 4. */
  batchesInFlight: number;
  /** Total worker concurrency, split across `procs` worker processes. Issue 4: 50. */
  concurrency: number;
  procs: number;
  /** Jobs of the latency scenario, enqueued one at a time. Issue 4: 200. */
  latencyJobs: number;
  /** Jobs waiting in the backlog scenario. Issue 4: 1,000,000. */
  backlog: number;
  /** Scaling (S): worker processes of the wide drain, each with the whole `concurrency`; brokers of the spread one. Issue 12: 4 and 3. */
  scaleProcs: number;
  brokers: number;
  /** Finished jobs kept in scenario F, and the read-out calls timed there. Issue 12: 10,000,000. */
  history: number;
  readoutCalls: number;
  /** Scenario G (issue 13): tenant B's jobs enqueued behind tenant A's `jobs`, and the keys of the keyed drain. */
  tenantB: number;
  fairKeys: number;
  /** Idle Lease streams, over `streamProcs` processes, read for `idleSeconds`. Issue 4: 1,000. */
  streams: number;
  streamProcs: number;
  idleSeconds: number;
  /** Measured repetitions per figure (the median is reported), after one smaller warm-up. */
  reps: number;
  warmup: boolean;
  /** Systems to run, by short name. */
  systems: string[];
  /** Scenarios to run, by letter (A–F, and S for scaling). */
  scenarios: string[];
  /** Write a V8 CPU profile of Baton's broker into this folder. */
  profileDir: string | undefined;
  /** Which of Baton's ports its producers and workers use: the native gRPC one (grpc-js) or the main one (connect-node). */
  batonPort: 'grpc' | 'main';
  smoke: boolean;
}

export const ALL_SYSTEMS = ['baton', 'graphile', 'pgboss', 'bullmq', 'plain'];
export const ALL_SCENARIOS = ['A', 'B', 'S', 'C', 'D', 'E', 'F', 'G'];

const USAGE = `usage: npm run bench -- [options]
  --smoke            every scenario with a few hundred jobs (CI); checks the harness, not the speed
  --quick            a tenth of the counts, one repetition, a 100,000-job backlog, 1,000,000 finished jobs in F
  --scale X          multiply job counts (A, B, D) by X
  --reps N           repetitions per figure (default 3; the median is reported)
  --backlog N        jobs waiting in scenario D (default 1,000,000)
  --history N        finished jobs kept in scenario F (default 10,000,000)
  --procs N          worker processes per system (default 1; concurrency is split between them)
                     (scenario S: 4 processes of 50 each, and 3 Baton brokers with a process of 50 each)
  --streams N        idle Lease streams in scenario E (default 1,000)
  --systems a,b      only these systems: ${ALL_SYSTEMS.join(', ')}
  --scenarios A,B    only these scenarios: ${ALL_SCENARIOS.join(', ')} (S: B's drain at scale; F: with history; G: fair keys)
  --profile DIR      write CPU profiles (node --cpu-prof) of Baton's broker and of every system's worker processes into DIR
  --baton-port P     grpc (default): Baton's clients use its native gRPC port (BATON_GRPC_PORT, grpc-js);
                     main: its main port (BATON_PORT, connect-node, every protocol)`;

export function parsePlan(argv: string[]): Plan {
  const plan: Plan = {
    jobs: 20_000,
    batch: 1_000,
    inFlight: 50,
    batchesInFlight: 4,
    concurrency: 50,
    procs: 1,
    latencyJobs: 200,
    backlog: 1_000_000,
    scaleProcs: 4,
    brokers: 3,
    history: 10_000_000,
    readoutCalls: 50,
    tenantB: 20,
    fairKeys: 1_000,
    streams: 1_000,
    streamProcs: 4,
    idleSeconds: 10,
    reps: 3,
    warmup: true,
    systems: ALL_SYSTEMS,
    scenarios: ALL_SCENARIOS,
    profileDir: undefined,
    batonPort: 'grpc',
    smoke: false,
  };
  let scale = 1;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    const count = () => {
      const v = Number(value().replace(/[_,]/g, ''));
      if (!Number.isFinite(v) || v < 0) throw new Error(`${flag} needs a number\n${USAGE}`);
      return v;
    };
    if (flag === '--smoke') {
      Object.assign(plan, {
        jobs: 300,
        batch: 100,
        latencyJobs: 20,
        backlog: 2_000,
        history: 10_000,
        fairKeys: 10,
        // Two of each still takes the paths of several processes and brokers, in fewer seconds.
        scaleProcs: 2,
        brokers: 2,
        streams: 20,
        streamProcs: 2,
        idleSeconds: 2,
        reps: 1,
        warmup: false,
        smoke: true,
      });
    } else if (flag === '--quick') {
      Object.assign(plan, { reps: 1, backlog: 100_000, history: 1_000_000, idleSeconds: 5 });
      scale = 0.1;
    } else if (flag === '--scale') scale = count();
    else if (flag === '--reps') plan.reps = Math.max(1, Math.round(count()));
    else if (flag === '--backlog') plan.backlog = Math.round(count());
    else if (flag === '--history') plan.history = Math.round(count());
    else if (flag === '--procs') plan.procs = Math.max(1, Math.round(count()));
    else if (flag === '--streams') plan.streams = Math.max(1, Math.round(count()));
    else if (flag === '--systems')
      plan.systems = value()
        .split(',')
        .map((s) => s.trim());
    else if (flag === '--scenarios')
      plan.scenarios = value()
        .toUpperCase()
        .split(',')
        .map((s) => s.trim());
    else if (flag === '--profile') plan.profileDir = value();
    else if (flag === '--baton-port') {
      const port = value();
      if (port !== 'grpc' && port !== 'main') throw new Error(`--baton-port must be grpc or main, got ${port}\n${USAGE}`);
      plan.batonPort = port;
    } else if (flag === '--help' || flag === '-h') throw new Error(USAGE);
    else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  if (scale !== 1) plan.jobs = Math.max(plan.batch, Math.round((plan.jobs * scale) / plan.batch) * plan.batch);
  for (const name of plan.systems) if (!ALL_SYSTEMS.includes(name)) throw new Error(`unknown system "${name}"\n${USAGE}`);
  for (const name of plan.scenarios) if (!ALL_SCENARIOS.includes(name)) throw new Error(`unknown scenario "${name}"\n${USAGE}`);
  return plan;
}
