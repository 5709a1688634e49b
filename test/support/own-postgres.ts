import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../server/src/logger.ts';
import { type EmbeddedDatabase, freePort, startEmbeddedPostgres } from '../../server/src/store/embedded-postgres.ts';

/**
 * A PostgreSQL server of the test's own, which the test may stop and start again (the shared one
 * of the run must stay up for every other file).
 */
export class OwnPostgres {
  #running: EmbeddedDatabase | null = null;
  #dataRoot = '';
  port = 0;
  url = '';

  async start(): Promise<void> {
    if (!this.#dataRoot) {
      this.#dataRoot = await mkdtemp(path.join(os.tmpdir(), 'baton-own-pg-'));
      await chmod(this.#dataRoot, 0o755);
      this.port = await freePort();
    }
    this.#running = await startEmbeddedPostgres({ dataDir: path.join(this.#dataRoot, 'data'), port: this.port, logger: createLogger('error') });
    this.url = this.#running.url;
  }

  async stop(): Promise<void> {
    await this.#running?.stop();
    this.#running = null;
  }

  /**
   * Crashes the server as a power cut or the OOM killer would: SIGKILL to the postmaster and every
   * backend at once, no shutdown checkpoint. `start` afterwards recovers from the WAL.
   */
  async crash(): Promise<void> {
    const dataDir = path.join(this.#dataRoot, 'data');
    const postmaster = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const killed = [...(await childrenOf(postmaster)), postmaster];
    for (const pid of killed) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    // Until every one has exited: a server started while a killed backend is still attached to the
    // old shared memory refuses to start ("pre-existing shared memory block is still in use").
    const deadline = Date.now() + 10_000;
    while ((await Promise.all(killed.map(isRunning))).some(Boolean)) {
      if (Date.now() > deadline) throw new Error(`PostgreSQL processes ${killed.join(', ')} did not exit after SIGKILL`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    this.#running = null;
  }

  async destroy(): Promise<void> {
    await this.stop();
    if (this.#dataRoot) await rm(this.#dataRoot, { recursive: true, force: true });
  }
}

/** Whether `pid` still runs: it exists and is not a zombie (which holds no memory any more). */
async function isRunning(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/** Processes whose parent is `pid`, from /proc (no procps needed). */
async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // The command may hold spaces and parentheses: the fields after its closing ')' are fixed.
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parent === pid) children.push(Number(entry));
  }
  return children;
}
