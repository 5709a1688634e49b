import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { READY_MESSAGE } from '../../server/src/main.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** A child process of the test, killed for real; its output is kept for failure messages. */
export interface Child {
  process: ChildProcess;
  /** A label for logs, where the test gives one. */
  name?: string;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
  exited: Promise<number | null>;
}

/** Runs a TypeScript file of this repository with the Node running the tests (24, type stripping). */
export function spawnTs(file: string, env: Record<string, string>): Child {
  return spawnCommand([process.execPath, path.join(ROOT, file)], env);
}

/**
 * Children started through this module and not yet exited, with their command lines, so that a
 * test file that leaves one running is told which (test/support/leak-check.ts).
 */
const running = new Map<number, string>();

/** The command lines of children started here that are still running, by pid. */
export function runningChildren(): ReadonlyMap<number, string> {
  return running;
}

/** Runs a command line from the repository root; its output is kept for failure messages. */
export function spawnCommand(command: string[], env: Record<string, string>): Child {
  const child = spawn(command[0], command.slice(1), {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid !== undefined) {
    running.set(pid, command.map((part) => path.relative(ROOT, part) || part).join(' '));
    child.once('exit', () => running.delete(pid));
  }
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    process: child,
    output: () => output,
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** The broker's ready line (server/src/main.ts), a JSON log line like the others. */
export interface ReadyLine {
  msg: typeof READY_MESSAGE;
  url: string;
  /** The native gRPC port's URL (BATON_GRPC_PORT), or null. */
  grpcUrl: string | null;
  auth: 'off' | 'keys';
  tls: boolean;
  brokerId: string;
}

/** The ready line in a broker's output, parsed, once it is there (a line cut short is not one yet). */
export function readyLine(output: string): ReadyLine | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as { msg?: unknown };
      if (parsed.msg === READY_MESSAGE) return parsed as ReadyLine;
    } catch {
      // Not JSON, or not yet a whole line.
    }
  }
  return undefined;
}

/** Waits until `check` returns a truthy value; the poll is how a test observes another process. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 20_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface Execution {
  worker: string;
  pid: number;
  t: number;
  event: 'start' | 'end' | 'ready' | 'connected' | 'killed';
  id?: string;
  attempt?: number;
}

export function readLog(file: string): Execution[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Execution);
}

/**
 * The most executions that overlapped in time, from start/end records. An execution whose worker
 * was killed before it ended ends at the kill.
 */
export function maxOverlap(executions: Execution[]): number {
  // A worker restarted under its name is killed more than once: a start ends at the first kill after it.
  const kills = executions.filter((e) => e.event === 'killed');
  const killedAfter = (start: Execution) => kills.find((k) => k.worker === start.worker && k.t >= start.t)?.t ?? Infinity;
  const open = new Map<string, Execution>();
  const intervals: [number, number][] = [];
  for (const e of executions) {
    const key = `${e.worker}/${e.id}/${e.attempt}`;
    if (e.event === 'start') open.set(key, e);
    if (e.event === 'end' && open.has(key)) {
      intervals.push([open.get(key)!.t, e.t]);
      open.delete(key);
    }
  }
  for (const start of open.values()) intervals.push([start.t, killedAfter(start)]);
  const edges = intervals
    .flatMap(([from, to]) => [
      { t: from, delta: 1 },
      { t: to, delta: -1 },
    ])
    // At equal times, ends before starts: a slot freed and reused in the same millisecond is no overlap.
    .sort((a, b) => a.t - b.t || a.delta - b.delta);
  let running = 0;
  let most = 0;
  for (const edge of edges) most = Math.max(most, (running += edge.delta));
  return most;
}
