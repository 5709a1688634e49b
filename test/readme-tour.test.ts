/**
 * The README's five-minute tour, run as written: the shell commands are read from README.md itself,
 * the broker is started with `npm start` (embedded PostgreSQL in a fresh data folder) and the worker
 * with `npm run example:worker`. Only the port differs (a free one instead of 7700), and grpcurl
 * lines run through `buf curl` when grpcurl is not installed, with the same request.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../server/src/store/embedded-postgres.ts';
import { eventually, readyLine } from './support/processes.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const hasGrpcurl = (() => {
  try {
    execFileSync('grpcurl', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let port: number;
const background: ChildProcess[] = [];

function start(command: string, env: Record<string, string>): { child: ChildProcess; output: () => string } {
  // Its own process group, so that npm and the node it runs are stopped together.
  const child = spawn('sh', ['-c', command], { cwd: ROOT, env: { ...process.env, ...env }, detached: true });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  background.push(child);
  return { child, output: () => output };
}

function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid!, signal);
  } catch {
    return Promise.resolve();
  }
  return exited;
}

/**
 * The command as a user without grpcurl would type it: same request, through buf curl. grpcurl may
 * sit anywhere in the line (inside `$(...)`, before a pipe), with its request in single or double
 * quotes.
 */
function runnable(command: string): string {
  const local = command.replaceAll('localhost:7700', `localhost:${port}`);
  if (!local.includes('grpcurl') || hasGrpcurl) return local;
  const translated = local
    .replace(/^grpcurl -plaintext (\S+) list$/, 'npx buf curl --protocol grpc --http2-prior-knowledge --list-services http://$1')
    .replace(
      /grpcurl -plaintext -d ('[^']*'|"(?:[^"\\]|\\.)*") (\S+) ([\w.]+\/\w+)/g,
      'npx buf curl --protocol grpc --http2-prior-knowledge -d $1 http://$2/$3',
    );
  if (translated.includes('grpcurl')) throw new Error(`cannot translate ${command}`);
  return translated;
}

function run(command: string): string {
  return execFileSync('sh', ['-c', runnable(command)], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, BATON_ADDRESS: `localhost:${port}` },
  });
}

async function tourCommands(): Promise<string[]> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const tour = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## The API'));
  return [...tour.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((block) => block[1].split('\n').filter(Boolean));
}

beforeAll(async () => {
  port = await freePort();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'baton-tour-'));
  await chmod(dataDir, 0o755);
  const broker = start('npm start', { BATON_PORT: String(port), BATON_DATA_DIR: path.join(dataDir, 'pgdata'), BATON_LOG_LEVEL: 'warn' });
  await eventually(() => readyLine(broker.output()), 60_000, `npm start to be ready: ${broker.output()}`);
  const worker = start('npm run example:worker', { BATON_ADDRESS: `localhost:${port}` });
  await eventually(() => worker.output().includes('serving'), 30_000, 'the example worker to connect');
});

afterAll(async () => {
  for (const child of background.reverse()) await stop(child);
});

it('every command of the tour works as written', async () => {
  const commands = await tourCommands();
  expect(commands.slice(0, 3)).toEqual(['npm install', 'npm start', 'npm test']);
  const tour = commands.filter((c) => !['npm install', 'npm start', 'npm test', 'npm run example:worker'].includes(c));

  const enqueues = tour.filter((c) => c.includes('Broker/Enqueue') && c.includes('fibonacci'));
  expect(enqueues.length).toBeGreaterThanOrEqual(3);
  // RUNNING when the tour's worker is already waiting: the job is handed to it by the insert.
  for (const command of enqueues) expect(['JOB_STATUS_PENDING', 'JOB_STATUS_RUNNING']).toContain(JSON.parse(run(command)).job.status);
  expect(run(tour.find((c) => c.endsWith(' list') || c.includes('--list-services'))!)).toContain('baton.v1.Broker');

  expect(run(tour.find((c) => c.startsWith('npm run example:enqueue'))!)).toContain(
    '{"n":303,"value":"941390895042587567453271223806288165311401367715034229502159202"}',
  );
  const listed = JSON.parse(run(tour.find((c) => c.includes('Broker/List'))!));
  expect(listed.jobs.length).toBeGreaterThanOrEqual(3);
  const got = JSON.parse(run(tour.find((c) => c.includes('Broker/Get'))!));
  expect(got.job.id).toBe('1');
  await eventually(() => JSON.parse(run(tour.find((c) => c.includes('Broker/Get'))!)).job.status === 'JOB_STATUS_COMPLETED', 20_000, 'job 1 to complete');
  expect(JSON.parse(run(tour.find((c) => c.includes('GetQueueStats'))!)).queues[0].queue).toBe('fibonacci');

  // Watch a long sleep job, then cancel it: the watch ends with the job CANCELLED. The lines share
  // the `$id` the first one sets, as they do in the reader's shell; the test backgrounds the watch
  // itself, to wait for its output before the cancel.
  const capture = tour.find((c) => c.includes('"queue": "sleep"'))!;
  expect(capture).toMatch(/^id=\$\(.*Broker\/Enqueue.*\)$/);
  const sleeper = run(`${capture}; echo "$id"`).trim();
  expect(sleeper).toMatch(/^[1-9][0-9]*$/);
  const watchCommand = tour.find((c) => c.startsWith('grpcurl') && c.includes('Broker/Watch'))!;
  expect(watchCommand.endsWith(' &')).toBe(true);
  const watch = start(`id=${sleeper}; ${runnable(watchCommand.slice(0, -2))}`, {});
  await eventually(() => watch.output().includes('JOB_STATUS_RUNNING'), 20_000, `the watch to see the job running: ${watch.output()}`);
  expect(watch.output()).toContain(`"id": "${sleeper}"`);
  run(`id=${sleeper}; ${tour.find((c) => c.includes('Broker/Cancel'))!}`);
  await new Promise((resolve) => watch.child.once('exit', resolve));
  expect(watch.output()).toContain('JOB_STATUS_CANCELLED');
}, 180_000);
