import { chmod, mkdtemp, rm } from 'node:fs/promises';
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

  async destroy(): Promise<void> {
    await this.stop();
    if (this.#dataRoot) await rm(this.#dataRoot, { recursive: true, force: true });
  }
}
