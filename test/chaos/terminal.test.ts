/**
 * `npm start` as a person runs it in a terminal, with the embedded PostgreSQL: a command leading a
 * process group of its own, stopped with Ctrl-C (SIGINT to the whole group, as a terminal sends
 * it), and started a second time on the same data folder. Real processes, really signalled. The
 * Ctrl-C scenario reports the chaos figures (test-results/chaos.ndjson).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, Worker } from '@baton/worker-sdk';
import { freePort } from '../../server/src/store/embedded-postgres.ts';
import { query } from '../support/database.ts';
import { eventually, readyLine } from '../support/processes.ts';
import { Cluster } from './harness.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** A command as a terminal runs it in the foreground: leading its own process group. */
interface Foreground {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let cleanup: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => undefined);
  cleanup = [];
});

function foreground(command: string[], env: Record<string, string>): Foreground {
  const child = spawn(command[0], command.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  cleanup.push(() => signalGroup(child, 'SIGKILL'));
  return { child, output: () => output, exited };
}

/** What a terminal's Ctrl-C does: SIGINT to every process of the foreground group. */
function ctrlC(command: Foreground): void {
  signalGroup(command.child, 'SIGINT');
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is gone already.
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A data folder of the test's own; whatever PostgreSQL is still running on it is stopped at the end. */
async function dataFolder(): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'baton-terminal-'));
  await chmod(root, 0o755);
  const dataDir = path.join(root, 'pgdata');
  cleanup.push(async () => {
    const pid = postmasterPid(dataDir);
    if (pid && isAlive(pid)) {
      process.kill(pid, 'SIGQUIT');
      await eventually(() => !isAlive(pid), 10_000, 'the leftover PostgreSQL to stop');
    }
    await rm(root, { recursive: true, force: true });
  });
  return dataDir;
}

function postmasterPid(dataDir: string): number | null {
  const file = path.join(dataDir, 'postmaster.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : null;
}

/** The broker process (node), from the id its log lines carry (host:pid:random): under npm it is a grandchild. */
function brokerPid(command: Foreground): number {
  const id = /"broker":"[^"]*:(\d+):[0-9a-f]+"/.exec(command.output());
  if (!id) throw new Error(`no broker id in the output: ${command.output()}`);
  return Number(id[1]);
}

async function ready(command: Foreground): Promise<void> {
  await eventually(() => readyLine(command.output()), 60_000, `the broker to be ready: ${command.output()}`);
}

/** Positions of `events` in `output`, which must all be there, in that order. */
function expectInOrder(output: string, events: string[]): void {
  let from = 0;
  for (const event of events) {
    const at = output.indexOf(event, from);
    expect(at, `"${event}" after "${output.slice(0, from).split('\n').at(-1)}" in:\n${output}`).toBeGreaterThanOrEqual(0);
    from = at + event.length;
  }
}

// The worker and the producer on one port or the other: a drain must reach workers on both.
describe.each(['main', 'grpc'] as const)('with workers on the %s port', (via) => {
  it('Ctrl-C on npm start, twice, with jobs running: the broker drains, results are kept, the database stops after it', async () => {
    const dataDir = await dataFolder();
    const [port, grpcPort, pgPort] = [await freePort(), await freePort(), await freePort()];
    const address = `127.0.0.1:${via === 'grpc' ? grpcPort : port}`;
    const env = {
      DATABASE_URL: '',
      BATON_DATA_DIR: dataDir,
      BATON_PORT: String(port),
      BATON_GRPC_PORT: String(grpcPort),
      // Known in advance, so that the test can read the database while the broker is up.
      BATON_EMBEDDED_PG_PORT: String(pgPort),
      // Short enough that a lease lost at Ctrl-C would expire (and spend an attempt) within the test.
      BATON_LEASE_TTL_MS: '4000',
      BATON_DRAIN_MS: '20000',
      BATON_LOG_LEVEL: 'info',
    };
    const first = foreground(['npm', 'start'], env);
    await ready(first);
    const broker = brokerPid(first);
    const postgres = postmasterPid(dataDir)!;
    expect(isAlive(postgres)).toBe(true);

    const c = new Cluster(`postgres://baton:baton@127.0.0.1:${pgPort}/postgres`, via);
    cleanup.push(() => c.stop());
    await c.auditCompletions();
    const jobs = 24;
    const producer = new Client({ address });
    await producer.enqueueBatch(
      Array.from({ length: jobs }, () => ({ queue: 'terminal', payload: { ms: 1500 }, maxAttempts: 5 })),
      { idsOnly: true },
    );
    producer.close();
    c.startWorker('terminal', 'w', 4, address);

    // Ctrl-C while the worker holds four jobs; npm forwards the SIGINT it gets too, so the broker may
    // see it twice, and a person may press again: sent twice here.
    const inFlight = await eventually(
      () => {
        const executions = c.executions();
        const ended = new Set(executions.filter((e) => e.event === 'end').map((e) => e.id));
        const running = executions.filter((e) => e.event === 'start' && !ended.has(e.id)).map((e) => e.id!);
        return ended.size >= 4 && running.length === 4 ? running : null;
      },
      30_000,
      'four jobs running after some completed',
    );
    const fault = Date.now();
    ctrlC(first);
    await eventually(() => first.output().includes('shutting down: draining workers'), 10_000, 'the drain to begin');
    process.kill(broker, 'SIGINT');
    await eventually(() => !isAlive(broker), 30_000, `the broker to exit: ${first.output()}`);
    const stoppedAt = Date.now();

    // It drained, then stopped its database itself, and said so; nothing is left running.
    expect(first.output(), 'the database went away under the draining broker').not.toContain('terminating connection due to administrator command');
    expectInOrder(first.output(), ['shutting down: draining workers', 'SIGINT again: still shutting down', '"msg":"stopped"', 'Baton broker stopped']);
    expect(first.output()).not.toContain('shutdown failed');
    expect(isAlive(postgres), 'the embedded PostgreSQL outlived the broker').toBe(false);
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
    expect(existsSync(`${dataDir}.lock`)).toBe(false);

    // Started again (node itself leading the group this time, so its exit code is the test's to see).
    const restart = Date.now();
    const second = foreground([process.execPath, 'server/src/main.ts'], env);
    await ready(second);
    const recovered = await c.firstCompletionAfter('terminal', restart);
    await c.waitAllTerminal('terminal', 60_000);
    const figures = await c.figures({
      scenario: 'Ctrl-C on npm start (twice), embedded PostgreSQL, restart',
      queue: 'terminal',
      jobs,
      faults: 1,
      recoveryMs: recovered - restart,
    });
    console.log(`terminal Ctrl-C: ${JSON.stringify(figures)}`);
    expect(figures.lost, 'jobs lost').toBe(0);
    expect(figures.doubleCompletions, 'completions recorded twice').toBe(0);
    expect(figures.reExecuted, 'jobs run twice').toBe(0);

    // The jobs held at Ctrl-C were recorded by the draining broker, on their first attempt, before it stopped.
    const held = await query<{ id: string; status: string; attempt: number; errors: unknown[]; finished: number }>(
      c.databaseUrl,
      `select id::text, status, attempt, errors, extract(epoch from finished_at) * 1000 as finished from baton_jobs where id::text in (${inFlight.map((_, i) => `$${i + 1}`).join(',')})`,
      inFlight,
    );
    expect(held).toHaveLength(4);
    for (const job of held) {
      expect(job, `job ${job.id}`).toMatchObject({ status: 'completed', attempt: 1, errors: [] });
      expect(Number(job.finished)).toBeGreaterThan(fault);
      expect(Number(job.finished)).toBeLessThan(stoppedAt);
    }
    const [{ spent }] = await query<{ spent: number }>(c.databaseUrl, `select count(*)::int as spent from baton_jobs where attempt > 1 or errors <> '[]'`);
    expect(spent, 'attempts lost').toBe(0);

    const secondPostgres = postmasterPid(dataDir)!;
    await c.stop();
    ctrlC(second);
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(isAlive(secondPostgres)).toBe(false);
  }, 180_000);
});

it('a second npm start on the same data folder refuses in one line and leaves the first serving', async () => {
  const dataDir = await dataFolder();
  const port = await freePort();
  const env = { DATABASE_URL: '', BATON_DATA_DIR: dataDir, BATON_PORT: String(port), BATON_LOG_LEVEL: 'info' };
  const first = foreground(['npm', 'start'], env);
  await ready(first);
  const broker = brokerPid(first);
  const postgres = postmasterPid(dataDir)!;
  const refusal = `baton: the data folder ${dataDir} is in use by the broker at http://127.0.0.1:${port} (pid ${broker}): stop that one first, or set BATON_DATA_DIR to another folder`;

  // The same command again, same port.
  const again = foreground(['npm', 'start'], env);
  const { code } = await again.exited;
  expect(code).not.toBe(0);
  const ours = again
    .output()
    .split('\n')
    .filter((line) => line.startsWith('baton') || line.startsWith('{'));
  expect(ours).toEqual([refusal]);
  expect(again.output()).not.toMatch(/^\s+at /m);

  // Another port, run directly: that one line is all it prints.
  const other = foreground([process.execPath, 'server/src/main.ts'], { ...env, BATON_PORT: String(await freePort()) });
  expect(await other.exited).toEqual({ code: 1, signal: null });
  expect(other.output()).toBe(`${refusal}\n`);

  // The first broker's database was never touched, and it still runs jobs.
  expect(postmasterPid(dataDir)).toBe(postgres);
  expect(isAlive(postgres)).toBe(true);
  expect(first.output()).not.toContain('left running by an earlier broker');
  const client = new Client({ address: `127.0.0.1:${port}` });
  const worker = new Worker({
    address: `127.0.0.1:${port}`,
    concurrency: 1,
    handlers: { after: async (payload: { n: number }) => ({ doubled: payload.n * 2 }) },
  });
  cleanup.push(async () => {
    client.close();
    await worker.close({ timeoutMs: 2000 });
  });
  await worker.start();
  const job = await client.enqueue('after', { n: 21 });
  expect(await client.result(job.id, { signal: AbortSignal.timeout(20_000) })).toEqual({ doubled: 42 });
  await worker.close({ timeoutMs: 2000 });

  ctrlC(first);
  await eventually(() => !isAlive(broker), 30_000, 'the first broker to exit');
  expect(first.output()).toContain('Baton broker stopped');
  expect(isAlive(postgres)).toBe(false);
}, 120_000);

it('a broker SIGKILLed leaves its PostgreSQL running; the next start stops that one and starts afresh, data kept', async () => {
  const dataDir = await dataFolder();
  const port = await freePort();
  const env = { DATABASE_URL: '', BATON_DATA_DIR: dataDir, BATON_PORT: String(port), BATON_LOG_LEVEL: 'info' };
  const first = foreground([process.execPath, 'server/src/main.ts'], env);
  await ready(first);
  const orphan = postmasterPid(dataDir)!;
  const producer = new Client({ address: `127.0.0.1:${port}` });
  const job = await producer.enqueue('kept', { n: 1 });
  producer.close();

  process.kill(first.child.pid!, 'SIGKILL');
  await first.exited;
  // In its own process group, the database does not die with the broker: nothing can stop it then.
  expect(isAlive(orphan)).toBe(true);

  const second = foreground([process.execPath, 'server/src/main.ts'], env);
  await ready(second);
  expectInOrder(second.output(), ['stopping a PostgreSQL left running by an earlier broker', 'embedded PostgreSQL started', '"msg":"broker ready"']);
  expect(isAlive(orphan)).toBe(false);
  const client = new Client({ address: `127.0.0.1:${port}` });
  cleanup.push(() => client.close());
  expect((await client.get(job.id)).status).toBe('pending');
  const postgres = postmasterPid(dataDir)!;
  ctrlC(second);
  expect(await second.exited).toEqual({ code: 0, signal: null });
  expect(isAlive(postgres)).toBe(false);
}, 120_000);

it('a broker that crashes (an uncaught error) stops its PostgreSQL on the way out', async () => {
  const dataDir = await dataFolder();
  const port = await freePort();
  // A real fault in the broker's own process: an error thrown from a signal handler, which nothing catches.
  const crashOnSignal = 'data:text/javascript,process.on("SIGUSR2", () => { throw new Error("a crash, on purpose") })';
  const broker = foreground([process.execPath, '--import', crashOnSignal, 'server/src/main.ts'], {
    DATABASE_URL: '',
    BATON_DATA_DIR: dataDir,
    BATON_PORT: String(port),
    BATON_LOG_LEVEL: 'info',
  });
  await ready(broker);
  const postgres = postmasterPid(dataDir)!;
  process.kill(broker.child.pid!, 'SIGUSR2');
  expect(await broker.exited).toEqual({ code: 1, signal: null });
  expect(broker.output()).toContain('a crash, on purpose');
  // Told to stop as the process exited; it finishes its fast shutdown on its own.
  await eventually(() => !isAlive(postgres), 10_000, "the crashed broker's PostgreSQL to stop");
  expect(existsSync(`${dataDir}.lock`)).toBe(false);
}, 60_000);
