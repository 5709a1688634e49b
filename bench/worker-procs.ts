/**
 * Starts and steers the worker processes of one measurement (worker-host.ts) and adds up what they
 * report: handlers finished, first start and last end, latency samples.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import type { DrainProgress, WorkerSetup } from './system.ts';
import { sleep } from './measure.ts';

export interface WorkerHostConfig extends WorkerSetup {
  /** Jobs each process may run at once. */
  concurrency: number;
}

export type ParentMessage = { type: 'go'; target?: number } | { type: 'stop' };
export type HostMessage =
  | { type: 'ready' }
  | { type: 'started' }
  | { type: 'stopped' }
  | { type: 'error'; message: string }
  | { type: 'latency'; seq: number; at: number }
  | { type: 'progress'; handled: number; maxId: number; firstStart: number; lastEnd: number };

interface HostState {
  child: ChildProcess;
  ready: boolean;
  started: boolean;
  exited: boolean;
  progress: { handled: number; maxId: number; firstStart: number; lastEnd: number };
}

const HOST = path.join(import.meta.dirname, 'worker-host.ts');

let profiled = 0;
/** With `--profile DIR`, every worker process writes a CPU profile there too, named after its system. */
function profileArgs(peer: string): string[] {
  const dir = process.env.BENCH_PROFILE_DIR;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=worker-${peer}-${++profiled}.cpuprofile`] : [];
}

export class WorkerProcs {
  readonly #hosts: HostState[] = [];
  readonly #latencyWaiters = new Map<number, (at: number) => void>();
  #failure: Error | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;

  /**
   * Spawns `procs` worker processes splitting `concurrency` between them, and waits until each has
   * loaded. Given a list of setups (one per broker), process i takes setup i (round robin).
   */
  static async spawn(setups: WorkerSetup | WorkerSetup[], procs: number, concurrency: number): Promise<WorkerProcs> {
    const group = new WorkerProcs();
    const list = Array.isArray(setups) ? setups : [setups];
    for (let i = 0; i < procs; i++) {
      const setup = list[i % list.length]!;
      const share = Math.floor(concurrency / procs) + (i < concurrency % procs ? 1 : 0);
      const config: WorkerHostConfig = { peer: setup.peer, config: setup.config, concurrency: share };
      const child = spawn(process.execPath, [...profileArgs(setup.peer), HOST], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, ...setup.env, BENCH_WORKER: JSON.stringify(config) },
      });
      group.#attach(child);
    }
    await group.#until(() => group.#hosts.every((h) => h.ready), 60_000, 'worker processes to load');
    return group;
  }

  #attach(child: ChildProcess): void {
    const host: HostState = {
      child,
      ready: false,
      started: false,
      exited: false,
      progress: { handled: 0, maxId: Number.NaN, firstStart: Number.NaN, lastEnd: Number.NaN },
    };
    this.#hosts.push(host);
    child.on('message', (message: HostMessage) => {
      if (message.type === 'ready') host.ready = true;
      else if (message.type === 'started') host.started = true;
      else if (message.type === 'progress') host.progress = withNaN(message);
      else if (message.type === 'latency') this.#latencyWaiters.get(message.seq)?.(message.at);
      else if (message.type === 'error') this.#failure ??= new Error(`worker process failed: ${message.message}`);
      this.#wake?.();
    });
    child.on('exit', (code, signal) => {
      host.exited = true;
      if (code !== 0 && !this.#stopping) this.#failure ??= new Error(`worker process exited with ${code ?? signal}`);
      this.#wake?.();
    });
  }

  /** Process ids of the worker processes (for CPU readings). */
  get pids(): number[] {
    return this.#hosts.map((h) => h.child.pid!).filter(Boolean);
  }

  /** Starts every process consuming; `target` makes each report at once when its count reaches it. */
  go(target?: number): void {
    for (const h of this.#hosts) h.child.send({ type: 'go', target } satisfies ParentMessage);
  }

  /** Resolves once every process says its consumer is connected and taking jobs. */
  waitStarted(timeoutMs = 60_000): Promise<void> {
    return this.#until(() => this.#hosts.every((h) => h.started), timeoutMs, 'workers to start');
  }

  /** The sum over processes; times and ids over those that handled a job (NaN while none has). */
  get progress(): DrainProgress & { firstStart: number; lastEnd: number } {
    const known = (pick: (p: HostState['progress']) => number) => this.#hosts.map((h) => pick(h.progress)).filter((v) => !Number.isNaN(v));
    const extreme = (values: number[], f: (...v: number[]) => number) => (values.length ? f(...values) : Number.NaN);
    return {
      handled: this.#hosts.reduce((sum, h) => sum + h.progress.handled, 0),
      maxId: extreme(
        known((p) => p.maxId),
        Math.max,
      ),
      firstStart: extreme(
        known((p) => p.firstStart),
        Math.min,
      ),
      lastEnd: extreme(
        known((p) => p.lastEnd),
        Math.max,
      ),
    };
  }

  /** Waits until the processes together report `n` handlers finished. */
  waitHandled(n: number, timeoutMs: number): Promise<void> {
    return this.#until(() => this.progress.handled >= n, timeoutMs, `${n} jobs to be handled (${this.progress.handled} so far)`);
  }

  /** A promise of the time the handler of latency job `seq` started. */
  latencyStart(seq: number, timeoutMs = 10_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#latencyWaiters.delete(seq);
        reject(this.#failure ?? new Error(`latency job ${seq} did not start within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#latencyWaiters.set(seq, (at) => {
        clearTimeout(timer);
        this.#latencyWaiters.delete(seq);
        resolve(at);
      });
    });
  }

  /** Stops every process gracefully (killing any that take longer than `timeoutMs`). */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.#stopping = true;
    for (const h of this.#hosts) if (!h.exited && h.child.connected) h.child.send({ type: 'stop' } satisfies ParentMessage);
    try {
      await this.#until(() => this.#hosts.every((h) => h.exited), timeoutMs, 'worker processes to exit', false);
    } catch {
      for (const h of this.#hosts) if (!h.exited) h.child.kill('SIGKILL');
      await this.#until(() => this.#hosts.every((h) => h.exited), 5_000, 'killed worker processes to exit', false);
    }
  }

  async #until(check: () => boolean, timeoutMs: number, what: string, failFast = true): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (failFast && this.#failure) throw this.#failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await Promise.race([new Promise<void>((resolve) => (this.#wake = resolve)), sleep(Math.min(left, 50))]);
    }
  }
}

/** IPC messages travel as JSON, which turns NaN (no job yet) into null: back to NaN, so that no null passes for a time of 0. */
function withNaN(p: { handled: number; maxId: number; firstStart: number; lastEnd: number }): HostState['progress'] {
  const n = (v: number | null) => (typeof v === 'number' ? v : Number.NaN);
  return { handled: p.handled, maxId: n(p.maxId), firstStart: n(p.firstStart), lastEnd: n(p.lastEnd) };
}
