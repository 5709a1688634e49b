/**
 * The `baton` CLI as a user runs it: the real entry point (`node server/src/cli/index.ts …`) in a
 * child process against a real broker, checking what it prints, its exit codes (0 ok, 1 failed or
 * not found, 2 usage, 3 unreachable) and that its errors say what to do.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Worker } from '@baton/worker-sdk';
import type { RunningBroker } from '../server/src/broker.ts';
import { startTestBroker } from './support/broker.ts';
import { createTestDatabase } from './support/database.ts';
import { eventually } from './support/processes.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'server/src/cli/index.ts');

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
let client: Client;
let address: string;
const workers: Worker[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startTestBroker(db.url);
  address = `127.0.0.1:${broker.port}`;
  client = new Client({ address });
});

afterAll(async () => {
  for (const worker of workers) await worker.close({ timeoutMs: 2000 });
  client?.close();
  await broker?.stop();
  await db?.drop();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `baton ARGS` with BATON_ADDRESS pointing at the test broker. */
function baton(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: ROOT, env: { ...process.env, BATON_ADDRESS: address, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

async function ok(args: string[]): Promise<string> {
  const run = await baton(args);
  expect(run, `baton ${args.join(' ')}`).toMatchObject({ code: 0 });
  return run.stdout;
}

async function worker(queue: string, handler: (payload: any, ctx: any) => unknown): Promise<void> {
  const w = new Worker({ address, handlers: { [queue]: handler }, logger: {} });
  workers.push(w);
  await w.start();
}

describe('baton enqueue', () => {
  it('stores one job and prints its id, or the whole job with --json', async () => {
    const id = (await ok(['enqueue', '--queue', 'cli-one', '--payload', '{"n": 303}', '--priority', '7', '--label', 'team=ops'])).trim();
    expect(id).toMatch(/^\d+$/);
    const job = await client.get(id);
    expect(job).toMatchObject({ queue: 'cli-one', payload: { n: 303 }, priority: 7, labels: { team: 'ops' }, status: 'pending' });

    const later = JSON.parse(await ok(['enqueue', '--queue', 'cli-one', '--delay', '5m', '--max-attempts', '5', '--json']));
    expect(later).toMatchObject({ status: 'scheduled', maxAttempts: 5, payload: {} });
    expect(Date.parse(later.runAt) - Date.parse(later.createdAt)).toBeGreaterThanOrEqual(299_000);
  });

  it('returns the first job for a repeated --key and says so', async () => {
    const first = await baton(['enqueue', '--queue', 'cli-one', '--key', 'invoice-7']);
    const second = await baton(['enqueue', '--queue', 'cli-one', '--key', 'invoice-7']);
    expect(second.stdout).toBe(first.stdout);
    expect(second.stderr).toBe(
      `baton enqueue: duplicate: job ${first.stdout.trim()} (pending) holds the idempotency key "invoice-7"; nothing new was stored\n`,
    );
  });

  it('enqueues a file in batches, with progress on stderr', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'baton-cli-'));
    const file = path.join(dir, 'jobs.ndjson');
    const lines = Array.from({ length: 2500 }, (_, i) => JSON.stringify(i % 2 ? { payload: { i } } : { queue: 'cli-bulk-even', payload: { i }, priority: 1 }));
    await writeFile(file, lines.join('\n') + '\n');
    const run = await baton(['enqueue', '--file', file, '--queue', 'cli-bulk-odd']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('enqueued 2,500 jobs\n');
    // Not a terminal: plain progress lines, not a redrawn bar.
    expect(run.stderr).toMatch(/^enqueued 1,000 jobs \(\d+%\)/m);
    expect(run.stderr).not.toContain('\r');
    const stats = await client.queueStats(['cli-bulk-odd', 'cli-bulk-even']);
    expect(stats.map((s) => [s.queue, s.total])).toEqual([
      ['cli-bulk-even', 1250],
      ['cli-bulk-odd', 1250],
    ]);
  });

  it('stops at a bad line or a refused batch, and says what was stored and how to resume', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'baton-cli-'));
    const file = path.join(dir, 'jobs.ndjson');
    const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify({ payload: { i }, ...(i === 24 ? { priority: 5000 } : {}) }));
    await writeFile(file, lines.join('\n'));
    const refused = await baton(['enqueue', '--file', file, '--queue', 'cli-resume', '--batch-size', '10']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('line 25');
    expect(refused.stderr).toContain('priority');
    expect(refused.stderr).toContain(`the 20 jobs before it were stored; to resume after them: tail -n +21 ${file} | baton enqueue --file -`);
    expect((await client.queueStats(['cli-resume']))[0].total).toBe(20);

    await writeFile(file, '{"payload": 1}\n{"payload": 2\n');
    const bad = await baton(['enqueue', '--file', file, '--queue', 'cli-resume']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/line 2: not valid JSON/);
  });
});

describe('baton jobs, get, cancel, retry', () => {
  it('lists jobs as a table, filtered, limited, or as JSON', async () => {
    const ids = (await client.enqueueBatch([1, 2, 3].map((n) => ({ queue: 'cli-list', payload: { n } })))).map((j) => j.id);
    await client.cancel(ids[0]);
    const table = await ok(['jobs', '--queue', 'cli-list']);
    const [header, ...rows] = table.trimEnd().split('\n');
    expect(header.split(/\s{2,}/)).toEqual(['ID', 'QUEUE', 'STATUS', 'ATTEMPTS', 'AGE', 'LAST ERROR']);
    expect(rows.map((r) => r.split(/\s+/).slice(0, 4))).toEqual([
      [ids[2], 'cli-list', 'PENDING', '0/3'],
      [ids[1], 'cli-list', 'PENDING', '0/3'],
      [ids[0], 'cli-list', 'CANCELLED', '0/3'],
    ]);
    const cancelled = JSON.parse(await ok(['jobs', '--queue', 'cli-list', '--status', 'cancelled', '--json']));
    expect(cancelled.map((j: { id: string }) => j.id)).toEqual([ids[0]]);
    const limited = await baton(['jobs', '--queue', 'cli-list', '--limit', '1']);
    expect(limited.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(limited.stderr).toContain('more with --limit');
    expect(await ok(['jobs', '--queue', 'cli-nothing-here'])).toBe('no jobs in queue "cli-nothing-here"\n');
  });

  it("shows a job's payload, result and every attempt's error", async () => {
    let attempt = 0;
    await worker('cli-flaky', () => {
      attempt++;
      if (attempt < 3) throw new Error(`upstream timeout #${attempt}`);
      return { answer: 42 };
    });
    const job = await client.enqueue('cli-flaky', { order: 'A-1' }, { maxAttempts: 3, retryPolicy: { initialBackoffMs: 10, jitter: 0 } });
    await client.result(job.id);
    const text = await ok(['get', job.id]);
    expect(text).toContain(`Job ${job.id}`);
    expect(text).toMatch(/Status:\s+COMPLETED/);
    expect(text).toMatch(/Attempt:\s+3 of 3/);
    expect(text).toContain('"order": "A-1"');
    expect(text).toContain('"answer": 42');
    expect(text).toMatch(/attempt 1 .*\n\s+upstream timeout #1/);
    expect(text).toMatch(/attempt 2 .*\n\s+upstream timeout #2/);
    const json = JSON.parse(await ok(['get', job.id, '--json']));
    expect(json.errors.map((e: { message: string }) => e.message)).toEqual(['upstream timeout #1', 'upstream timeout #2']);
  });

  it('cancels and retries, refusing what the job status forbids', async () => {
    const job = await client.enqueue('cli-cancel', {});
    expect(await ok(['cancel', job.id])).toBe(`job ${job.id} cancelled\n`);
    expect((await client.get(job.id)).status).toBe('cancelled');
    const again = await baton(['cancel', job.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is CANCELLED: only PENDING, SCHEDULED or RUNNING jobs can be cancelled');
    expect(await ok(['retry', job.id])).toContain('PENDING again');
    expect((await client.get(job.id)).status).toBe('pending');
    expect((await baton(['retry', job.id])).code).toBe(1);
  });

  it('follows a queue with --watch until interrupted', async () => {
    // With an hour between safety refreshes, only the queue's Watch stream can show the new job.
    const child = spawn(process.execPath, [CLI, 'jobs', '--watch', '--interval', '3600', '--queue', 'cli-watch'], {
      cwd: ROOT,
      env: { ...process.env, BATON_ADDRESS: address },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await eventually(() => out.includes('no jobs in queue "cli-watch"'), 20_000, `the first listing: ${out}`);
      const job = await client.enqueue('cli-watch', {});
      await eventually(() => out.includes(`${job.id}  cli-watch  PENDING`), 20_000, `job ${job.id} to appear: ${out}`);
      await client.cancel(job.id);
      await eventually(() => out.includes(`${job.id}  cli-watch  CANCELLED`), 10_000, `job ${job.id} to show CANCELLED: ${out}`);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});

describe('baton stats and queues', () => {
  it('shows counts by status and the completions of the current minute', async () => {
    await worker('cli-stats', () => 'done');
    // Completions count in the clock minute they happened in: when this test crosses into the next
    // minute, its four land in the entry before the last one, and DONE/MIN (the last) shows 0.
    const minuteOf = (ms: number) => Math.floor(ms / 60_000);
    const began = minuteOf(Date.now());
    const jobs = await client.enqueueBatch([1, 2, 3, 4].map((n) => ({ queue: 'cli-stats', payload: { n } })));
    for (const job of jobs) await client.result(job.id);
    await client.enqueue('cli-stats', {}, { delay: 60_000 });
    const text = await ok(['stats', '--queue', 'cli-stats']);
    const [json] = JSON.parse(await ok(['stats', '--queue', 'cli-stats', '--json']));
    const oneMinute = minuteOf(Date.now()) === began;
    const [header, row] = text.trimEnd().split('\n');
    expect(header.split(/\s{2,}/)).toEqual([
      'QUEUE',
      'TOTAL',
      'PENDING',
      'SCHEDULED',
      'RUNNING',
      'COMPLETED',
      'FAILED',
      'CANCELLED',
      'DONE/MIN',
      'FAILED/MIN',
      'STATE',
    ]);
    const cells = row.split(/\s{2,}/);
    expect(cells).toEqual(['cli-stats', '5', '0', '1', '0', '4', '0', '0', cells[8], '0', 'active']);
    expect(json).toMatchObject({ queue: 'cli-stats', total: 5, completed: 4 });
    if (oneMinute) {
      expect(cells[8]).toBe('4');
      expect(json.completedPerMinute).toEqual([0, 0, 0, 0, 4]);
    } else {
      expect(json.completedPerMinute.slice(0, 3)).toEqual([0, 0, 0]);
      expect(json.completedPerMinute[3] + json.completedPerMinute[4]).toBe(4);
    }
  });

  it('pauses, resumes and limits a queue', async () => {
    await client.enqueue('cli-admin', {});
    expect(await ok(['queues', 'pause', 'cli-admin'])).toContain('paused cli-admin');
    expect((await ok(['queues'])).split('\n').find((line) => line.startsWith('cli-admin'))).toMatch(/^cli-admin\s+paused\s+no limit/);
    expect(JSON.parse(await ok(['queues', 'set-concurrency', 'cli-admin', '3', '--json']))).toMatchObject({ name: 'cli-admin', concurrency: 3, paused: true });
    expect(await ok(['queues', 'resume', 'cli-admin'])).toContain('active, at most 3 running');
    expect(await ok(['queues', 'set-rate-limit', 'cli-admin', '5', '--interval', '2s', '--key-limit', '1'])).toContain(
      'at most 5 starts per 2000 ms, at most 1 starts per 1000 ms per key',
    );
    expect(JSON.parse(await ok(['queues', 'set-rate-limit', 'cli-admin', '0', '--json'])).rateLimit).toBeUndefined();
    expect(await ok(['queues', 'set-fair-keys', 'cli-admin', 'on', '--key-concurrency', '2'])).toContain('fair keys (at most 2 running per key)');
    expect(JSON.parse(await ok(['queues', 'set-fair-keys', 'cli-admin', 'off', '--json'])).fairKeys).toBeUndefined();
    const missing = await baton(['queues', 'resume', 'cli-no-such-queue']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('does not exist');
  });
});

describe('exit codes and messages', () => {
  it('2 for usage errors, with the usage shown', async () => {
    const unknown = await baton(['jobs', '--colour']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--colour'");
    expect(unknown.stderr).toContain('Usage: baton jobs');
    expect((await baton(['get'])).stderr).toContain('give the job id');
    expect((await baton(['get', 'abc'])).code).toBe(2);
    expect((await baton(['enqueue', '--payload', '{}'])).stderr).toContain('--queue is required');
    const badJson = await baton(['enqueue', '--queue', 'q', '--payload', '{n: 1}']);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain('is not valid JSON');
    expect((await baton(['jobs', '--status', 'done'])).stderr).toContain('unknown status "done"');
    expect((await baton(['enqueue', '--queue', 'bad queue name'])).code).toBe(2);
  });

  it('1 for a job that does not exist', async () => {
    const run = await baton(['get', '987654321']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('job 987654321 does not exist');
  });

  it('3 when no broker answers, naming the address and what to do', async () => {
    const run = await baton(['stats'], { BATON_ADDRESS: '127.0.0.1:1' });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('no broker answered at 127.0.0.1:1');
    expect(run.stderr).toContain('baton serve');
    expect((await baton(['jobs', '--address', '127.0.0.1:1'])).code).toBe(3);
  });

  it('--help prints the usage and exits 0', async () => {
    const run = await baton(['enqueue', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('baton enqueue --file JOBS.ndjson');
  });
});
