/**
 * A test file's broker for running the `baton` command against: a database of its own, a broker on
 * it, an SDK client beside it, and `baton(args)`, the real entry point in a child process pointed at
 * the broker (BATON_ADDRESS), as a user runs it.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Client } from '@baton/worker-sdk';
import type { RunningBroker } from '../../server/src/broker.ts';
import { startTestBroker } from './broker.ts';
import { createTestDatabase } from './database.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'server/src/cli/index.ts');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliBroker {
  db: Awaited<ReturnType<typeof createTestDatabase>>;
  broker: RunningBroker;
  client: Client;
  /** host:port of the broker's main port, as BATON_ADDRESS takes it. */
  address: string;
  baton(args: string[]): Promise<CliRun>;
}

/** Registers the file's hooks; the returned object is filled in by the time its tests run. */
export function useCliBroker(): CliBroker {
  const used = {
    baton: (args: string[]) =>
      new Promise<CliRun>((resolve) => {
        const env = { ...process.env, BATON_ADDRESS: used.address };
        execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env, timeout: 30_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      }),
  } as CliBroker;
  beforeAll(async () => {
    used.db = await createTestDatabase();
    used.broker = await startTestBroker(used.db.url);
    used.address = `127.0.0.1:${used.broker.port}`;
    used.client = new Client({ address: used.address });
  });
  afterAll(async () => {
    used.client?.close();
    await used.broker?.stop();
    await used.db?.drop();
  });
  return used;
}
