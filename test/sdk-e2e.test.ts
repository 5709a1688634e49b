/**
 * The TypeScript SDK against a real broker: a producer awaiting a worker's result, cancel reaching
 * the handler's AbortSignal, per-job timeouts, progress, graceful close, and a broker that drains
 * its workers on SIGTERM so they finish their jobs and move to another broker. On both ports: the
 * Client and the Workers talk to the main port, then to the native gRPC port (BATON_GRPC_PORT).
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, JobCancelledError, JobFailedError, NonRetryableError, Worker } from '@baton/worker-sdk';
import { freePort } from '../server/src/store/embedded-postgres.ts';
import { useTestBroker } from './support/broker.ts';
import { useSdk } from './support/sdk.ts';
import { query } from './support/database.ts';
import { type Child, eventually, readLog, spawnTs } from './support/processes.ts';

const used = useTestBroker({ grpcPort: 0 });
const closers: (() => Promise<unknown> | void)[] = [];

afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

// Both ports are one contract: every case on the main port, then on BATON_GRPC_PORT.
describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  /** Queue names of this port's cases, apart from the other port's (one database). */
  const q = (name: string) => `${name}-${port}`;
  const address = () => `127.0.0.1:${port === 'main' ? used.broker.port : used.broker.grpcPort}`;
  const sdk = useSdk(address);
  const { worker } = sdk;

  describe('Client and Worker', () => {
    it('close() ends the calls a client still has open, so the process can exit', async () => {
      const own = new Client({ address: address() });
      const watching = (async () => {
        for await (const _ of own.watchQueue(q('closing'))) {
          // Nothing is enqueued there: the stream only waits.
        }
      })();
      // The stream is open once the broker answers another call on the same connection after it.
      await own.queueStats([q('closing')]);
      own.close();
      await expect(watching).rejects.toMatchObject({ code: 'CANCELLED' });
    });

    it('a producer awaits the result of a job a worker computed', async () => {
      await worker({
        handlers: {
          [q('sdk-fib')]: (payload: { n: number }) => {
            let [a, b] = [0n, 1n];
            for (let i = 0; i < payload.n; i++) [a, b] = [b, a + b];
            return { n: payload.n, value: a.toString() };
          },
        },
      }).start();
      const job = await sdk.client.enqueue(q('sdk-fib'), { n: 303 });
      const result = await sdk.client.result<{ value: string }>(job.id);
      expect(result.value).toBe('941390895042587567453271223806288165311401367715034229502159202');
    });

    it('a failed job rejects the awaited result with every attempt recorded', async () => {
      await worker({
        handlers: {
          [q('sdk-fail')]: () => {
            throw new NonRetryableError('no such customer');
          },
        },
      }).start();
      const job = await sdk.client.enqueue(q('sdk-fail'), {}, { maxAttempts: 3 });
      await expect(sdk.client.result(job.id)).rejects.toBeInstanceOf(JobFailedError);
      const stored = await sdk.client.get(job.id);
      expect(stored.status).toBe('failed');
      expect(stored.errors.map((e) => e.message)).toEqual(['no such customer']);
    });

    it('cancelling a running job aborts the handler through its AbortSignal', async () => {
      let aborted: unknown = null;
      const started = Promise.withResolvers<void>();
      await worker({
        handlers: {
          [q('sdk-cancel')]: async (_payload, job) => {
            started.resolve();
            await new Promise<void>((resolve) => job.signal.addEventListener('abort', () => resolve(), { once: true }));
            aborted = job.signal.reason;
            throw job.signal.reason;
          },
        },
      }).start();
      const job = await sdk.client.enqueue(q('sdk-cancel'), {});
      await started.promise;
      await sdk.client.cancel(job.id);
      await expect(sdk.client.result(job.id)).rejects.toBeInstanceOf(JobCancelledError);
      expect(String((aborted as Error)?.message)).toMatch(/cancel/);
      expect((await sdk.client.get(job.id)).status).toBe('cancelled');
    });

    it('a job past its timeout is aborted, retried, and fails with the timeout recorded', async () => {
      const attempts: number[] = [];
      await worker({
        handlers: {
          [q('sdk-timeout')]: async (_payload, job) => {
            attempts.push(job.attempt);
            await sleep(60_000, undefined, { signal: job.signal });
          },
        },
      }).start();
      const job = await sdk.client.enqueue(q('sdk-timeout'), {}, { timeout: 200, maxAttempts: 2, retryPolicy: { initialBackoffMs: 50 } });
      await expect(sdk.client.result(job.id)).rejects.toBeInstanceOf(JobFailedError);
      const stored = await sdk.client.get(job.id);
      expect(attempts).toEqual([1, 2]);
      expect(stored.errors.map((e) => e.message)).toEqual(['timed out after 200 ms', 'timed out after 200 ms']);
    });

    it('progress reported by the handler is stored on the job', async () => {
      const release = Promise.withResolvers<void>();
      await worker({
        handlers: {
          [q('sdk-progress')]: async (_payload, job) => {
            job.progress({ done: 3, total: 10 });
            await release.promise;
            return 'ok';
          },
        },
      }).start();
      const job = await sdk.client.enqueue(q('sdk-progress'), {});
      await eventually(async () => JSON.stringify((await sdk.client.get(job.id)).progress) === '{"done":3,"total":10}', 10_000, 'progress');
      release.resolve();
      expect(await sdk.client.result(job.id)).toBe('ok');
    });

    it('close() lets running handlers finish and reports their results before it resolves', async () => {
      const started = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      const w = worker({
        handlers: {
          [q('sdk-close')]: async () => {
            started.resolve();
            await release.promise;
            return 'finished';
          },
        },
      });
      await w.start();
      const job = await sdk.client.enqueue(q('sdk-close'), {});
      await started.promise;
      // The handler is still running when close() begins, and finishes only after.
      let closed = false;
      const closing = w.close({ timeoutMs: 30_000 }).then(() => (closed = true));
      await new Promise((resolve) => setImmediate(resolve));
      expect(closed).toBe(false);
      release.resolve();
      await closing;
      const stored = await sdk.client.get(job.id);
      expect(stored.status).toBe('completed');
      expect(stored.result).toBe('finished');
    });
  });

  describe('broker shutdown', () => {
    let children: Child[] = [];
    afterEach(async () => {
      await Promise.all(children.map((child) => child.kill()));
      children = [];
    });

    it('on SIGTERM the broker drains: running jobs finish, workers move to another broker, nothing is lost', async () => {
      // Each broker's two ports; the producer and the worker use this run's.
      const [a, b] = [
        { main: await freePort(), grpc: await freePort() },
        { main: await freePort(), grpc: await freePort() },
      ];
      const startBroker = (ports: typeof a) => {
        const env = {
          DATABASE_URL: used.db.url,
          BATON_PORT: String(ports.main),
          BATON_GRPC_PORT: String(ports.grpc),
          BATON_LOG_LEVEL: 'warn',
          BATON_DRAIN_MS: '10000',
        };
        const child = spawnTs('server/src/main.ts', env);
        children.push(child);
        return child;
      };
      const brokerA = startBroker(a);
      const brokerB = startBroker(b);
      const [portA, portB] = [a[port], b[port]];
      const producer = new Client({ address: `127.0.0.1:${portA}` });
      closers.push(() => producer.close());
      await eventually(
        () =>
          producer.serverInfo().then(
            () => true,
            () => false,
          ),
        30_000,
        'broker A',
      );
      const log = path.join(await mkdtemp(path.join(os.tmpdir(), 'baton-drain-')), 'executions.ndjson');
      const payload = { ms: 400 };
      await producer.enqueueBatch(Array.from({ length: 40 }, () => ({ queue: q('drain'), payload })));
      // pick_first: the worker starts on broker A and falls over to B when A drains.
      children.push(
        spawnTs('test/fixtures/recording-worker.ts', {
          BATON_ADDRESS: `127.0.0.1:${portA},127.0.0.1:${portB}`,
          QUEUE: q('drain'),
          CONCURRENCY: '4',
          LOG: log,
          WORKER_NAME: 'drainee',
        }),
      );
      await eventually(() => readLog(log).filter((e) => e.event === 'end').length >= 4, 30_000, 'some jobs done');
      brokerA.process.kill('SIGTERM');
      expect(await brokerA.exited).toBe(0);
      await eventually(
        async () => (await query(used.db.url, `select count(*)::int as n from baton_jobs where queue = $1 and status = 'completed'`, [q('drain')]))[0].n === 40,
        60_000,
        'every job to complete on broker B',
      );
      const executions = readLog(log);
      const starts = executions.filter((e) => e.event === 'start');
      // Draining finished the running jobs instead of abandoning them: no job ran twice.
      expect(starts).toHaveLength(40);
      const rows = await query(used.db.url, `select count(*)::int as n from baton_jobs where queue = $1 and attempt > 1`, [q('drain')]);
      expect(rows[0].n).toBe(0);
      expect(brokerB.process.exitCode).toBeNull();
    }, 90_000);
  });
});
