/**
 * The Python and Go SDKs' Clients against a real broker: enqueue calls made together from threads
 * (Python) or goroutines (Go) leave in fewer RPCs than calls, some of them EnqueueBatches, and every
 * job is stored. Run through each language's `enqueue` command with `--count` and `--concurrency`,
 * on both ports. As in the conformance kit, a missing toolchain skips a language, except in CI.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { go, python, ROOT } from './conformance/implementations.ts';
import { useTestBroker } from './support/broker.ts';
import { query } from './support/database.ts';
import { metricValue } from './support/metrics.ts';

const run = promisify(execFile);
const used = useTestBroker({ grpcPort: 0 });
const JOBS = 200;
const AT_ONCE = 20;

let goBin = '';
beforeAll(async () => {
  if (go().missing) return;
  goBin = await mkdtemp(path.join(tmpdir(), 'baton-go-bin-'));
  // Into a folder of its own: the conformance kit runs the binaries of clients/go/bin meanwhile.
  await run(path.join(ROOT, 'clients/go/build.sh'), [goBin], { cwd: ROOT });
}, 300_000);

afterAll(async () => {
  if (goBin) await rm(goBin, { recursive: true, force: true });
});

/** The Enqueue and EnqueueBatch calls the broker answered OK so far. */
async function enqueueCalls(): Promise<{ single: number; batch: number }> {
  const text = await (await fetch(`${used.broker.url}/metrics`)).text();
  const ok = (method: string) => metricValue(text, 'baton_rpc_requests_total', { service: 'baton.v1.Broker', method, code: 'OK' });
  return { single: ok('Enqueue'), batch: ok('EnqueueBatch') };
}

const languages = [
  {
    impl: python(),
    command: () => ['/usr/bin/python3', path.join(ROOT, 'clients/python/enqueue.py'), '--count', String(JOBS), '--concurrency', String(AT_ONCE)],
  },
  { impl: go(), command: () => [path.join(goBin, 'enqueue'), '-count', String(JOBS), '-concurrency', String(AT_ONCE)] },
];

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  for (const { impl, command } of languages) {
    const required = Boolean(process.env.CI);
    it.skipIf(Boolean(impl.missing) && !required)(`${impl.name}: ${JOBS} enqueues, ${AT_ONCE} at once, go in fewer RPCs and are all stored`, async () => {
      if (impl.missing) throw new Error(`cannot run the ${impl.name} client: ${impl.missing}`);
      const queue = `coalesce-${impl.name}-${port}`;
      const address = `127.0.0.1:${port === 'main' ? used.broker.port : used.broker.grpcPort}`;
      const before = await enqueueCalls();
      const [program, ...args] = command();
      // The payload goes last, after the options, as each command's usage says.
      const { stdout } = await run(program, [...args, queue, '{"n": 1}'], { cwd: ROOT, env: { ...process.env, BATON_ADDRESS: address } });
      expect(stdout).toMatch(new RegExp(`^enqueued ${JOBS} jobs on ${queue} in `));
      const after = await enqueueCalls();
      const rpcs = after.single - before.single + (after.batch - before.batch);
      expect(after.batch - before.batch).toBeGreaterThan(0);
      expect(rpcs).toBeLessThan(JOBS);
      const [{ n }] = await query(used.db.url, `select count(*)::int as n from baton_jobs where queue = $1 and payload = '{"n": 1}'::jsonb`, [queue]);
      expect(n).toBe(JOBS);
    });
  }
});
