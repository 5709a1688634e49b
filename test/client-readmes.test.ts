// clients/python/README.md and clients/go/README.md, run as a new user would: their install and build
// commands as written (apt-get left out: CI installs the Debian packages), then their examples
// against a real broker. The only changes: the virtual environment and the Go modules of the
// examples go to a temporary folder instead of the checkout and its parent, and `localhost:7700`
// becomes the test broker's address. A TypeScript worker in this process serves `fibonacci`, the
// queue the producer examples use; the README workers serve `resize`.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, JobFailedError, Worker } from '@baton/worker-sdk';
import type { RunningBroker } from '../server/src/broker.ts';
import { startTestBroker } from './support/broker.ts';
import { createTestDatabase } from './support/database.ts';
import { type Child, eventually, spawnCommand } from './support/processes.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
const python = '/usr/bin/python3';
const hasPython =
  existsSync(python) &&
  (await run(python, ['-c', 'import grpc, venv']).then(
    () => true,
    () => false,
  ));
const hasGo = await run('go', ['version']).then(
  () => true,
  () => false,
);

/** The fenced blocks of `language` in a README, in order. */
async function blocks(file: string, language: string): Promise<string[]> {
  const text = await readFile(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!);
}

async function block(file: string, language: string, marker: string): Promise<string> {
  const found = (await blocks(file, language)).find((b) => b.includes(marker));
  if (found === undefined) throw new Error(`${file} has no ${language} block with ${marker}`);
  return found;
}

/** Runs a README's shell block with bash, line by line as typed (set -e), minus `sudo apt-get`. */
async function shell(script: string, cwd: string, env: Record<string, string> = {}): Promise<string> {
  const lines = script.split('\n').filter((line) => !/^sudo apt-get/.test(line) && !/^\s+\S.*-dev$|^\s+golang-/.test(line));
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', lines.join('\n')], {
    cwd,
    env: { ...process.env, ...env },
    maxBuffer: 16 << 20,
    timeout: 240_000,
  });
  return stdout;
}

let temp: string;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
let address: string;
let fibonacci: Worker;
let client: Client;
const children: Child[] = [];

beforeAll(async () => {
  temp = await mkdtemp(path.join(tmpdir(), 'baton-readmes-'));
  db = await createTestDatabase();
  broker = await startTestBroker(db.url);
  address = `127.0.0.1:${broker.port}`;
  fibonacci = new Worker({
    address,
    handlers: {
      fibonacci: async ({ n }: { n: number }) => {
        let [a, b] = [0n, 1n];
        for (let i = 0; i < n; i++) [a, b] = [b, a + b];
        return { n, value: a.toString() };
      },
    },
  });
  await fibonacci.start();
  client = new Client({ address });
});

afterAll(async () => {
  await Promise.all(children.map((child) => child.kill('SIGKILL')));
  client?.close();
  await fibonacci?.close();
  await broker?.stop();
  await db?.drop();
  if (temp) await rm(temp, { recursive: true, force: true });
});

/** A README worker serving `resize`: a job with a url completes with {ok: true}, one without fails for good. */
async function checkResizeWorker(worker: Child): Promise<void> {
  children.push(worker);
  const done = await client.enqueue('resize', { url: 'https://example.com/cat.png' });
  expect(await client.result(done.id, { signal: AbortSignal.timeout(30_000) })).toEqual({ ok: true });
  const bad = await client.enqueue('resize', {}, { maxAttempts: 3 });
  const failure = await client.result(bad.id, { signal: AbortSignal.timeout(30_000) }).catch((error: unknown) => error);
  expect(failure).toBeInstanceOf(JobFailedError);
  expect((failure as JobFailedError).job.attempt).toBe(1);
  // SIGTERM: the worker closes gracefully and its process ends on its own, with status 0.
  worker.process.kill('SIGTERM');
  expect(await worker.exited).toBe(0);
}

describe.skipIf(!hasPython)('clients/python/README.md', () => {
  const venv = () => path.join(temp, 'python/.venv');

  it('installs into a virtual environment as written', { timeout: 240_000 }, async () => {
    const install = (await block('clients/python/README.md', 'sh', 'pip install')).replaceAll('clients/python/.venv', venv());
    const out = await shell(install, ROOT);
    // The last command prints the installed package's version.
    expect(out.trim().split('\n').at(-1)).toMatch(/^\d+\.\d+/);
  });

  it('runs the producer example', { timeout: 60_000 }, async () => {
    const code = (await block('clients/python/README.md', 'python', 'with Client(')).replace('"localhost:7700"', `"${address}"`);
    const file = path.join(temp, 'python/produce.py');
    await writeFile(file, code);
    // From a folder of its own: the installed package, not the checkout, is imported.
    const { stdout } = await run(path.join(venv(), 'bin/python'), [file], { cwd: path.dirname(file), timeout: 60_000 });
    const [result, listed] = stdout.trim().split('\n');
    expect(result).toBe("{'n': 303, 'value': '941390895042587567453271223806288165311401367715034229502159202'}");
    expect(listed).toMatch(/^\[\('\d+', 'COMPLETED'\)/);
  });

  it('runs the worker example, which stops gracefully on SIGTERM', { timeout: 60_000 }, async () => {
    const code = (await block('clients/python/README.md', 'python', 'def resize')).replace('address="localhost:7700"', `address="${address}"`);
    const file = path.join(temp, 'python/resize_worker.py');
    await writeFile(file, code);
    await checkResizeWorker(spawnCommand([path.join(venv(), 'bin/python'), file], {}));
  });

  it('runs the generated stubs example', async () => {
    const code = (await block('clients/python/README.md', 'python', 'AdminStub')).replace('"localhost:7700"', `"${address}"`);
    const { stdout } = await run(path.join(venv(), 'bin/python'), ['-c', code], { cwd: temp });
    expect(stdout).toContain('name: "fibonacci"');
  });
});

describe.skipIf(!hasGo)('clients/go/README.md', () => {
  it('builds, and its enqueue command prints the finished job as JSON', { timeout: 240_000 }, async () => {
    await shell(await block('clients/go/README.md', 'sh', 'clients/go/build.sh'), ROOT);
    const line = await block('clients/go/README.md', 'sh', 'bin/enqueue -wait');
    const out = await shell(line, ROOT, { BATON_ADDRESS: address });
    const [first, ...rest] = out.split('\n');
    expect(first).toMatch(/^enqueued job \d+ on fibonacci: (pending|running)$/);
    const job = JSON.parse(rest.join('\n')) as Record<string, unknown>;
    expect(job).toMatchObject({ queue: 'fibonacci', status: 'completed', result: { n: 303 } });
    // encoding/json's stable form: indented by two spaces, one space after a colon, never two.
    expect(out).not.toMatch(/: {2}|, {2}/);
  });

  /** The README's recipe for a module of your own, in `dir` instead of ../NAME, with `main.go` from the README. */
  async function module(name: string, marker: string): Promise<string> {
    const recipe = await block('clients/go/README.md', 'sh', 'go work init');
    const dir = path.join(temp, 'go', name);
    await mkdir(path.dirname(dir), { recursive: true });
    await shell(recipe.replaceAll('../resize', dir).replaceAll('example.com/resize', `example.com/${name}`), ROOT);
    const code = (await block('clients/go/README.md', 'go', marker)).replace('"localhost:7700"', `"${address}"`);
    await writeFile(path.join(dir, 'main.go'), code);
    return dir;
  }

  it('builds and runs the worker example in a module of its own, which stops gracefully on SIGTERM', { timeout: 240_000 }, async () => {
    const dir = await module('resize', 'worker.Typed(');
    const build = await block('clients/go/README.md', 'sh', 'go build -o resize-worker');
    expect(build.trim()).toBe('GOPROXY=off go build -o resize-worker . && ./resize-worker');
    await shell('GOPROXY=off go build -o resize-worker .', dir);
    const worker = spawnCommand([path.join(dir, 'resize-worker')], {});
    await eventually(() => worker.output().length > 0 || worker.process.pid, 5_000, 'the worker to start');
    await checkResizeWorker(worker);
  });

  it('runs the producer example in a module of its own', { timeout: 240_000 }, async () => {
    const dir = await module('produce', 'client.New(');
    const out = await shell('GOPROXY=off go run .', dir);
    const [result, ...listed] = out.trim().split('\n');
    expect(result).toBe('{"n": 303, "value": "941390895042587567453271223806288165311401367715034229502159202"}');
    expect(listed[0]).toMatch(/^\d+ completed$/);
  });
});
