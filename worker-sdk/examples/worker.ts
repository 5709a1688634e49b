// A worker for the two seed queues. Run: `npm run example:worker` (or
// `node worker-sdk/examples/worker.ts` on Node 24). Environment: BATON_ADDRESS (default
// localhost:7700), BATON_TOKEN, BATON_CONCURRENCY (default 10).
//
//   fibonacci  {"n": 303}   → {"n": 303, "value": "<decimal>"}  (a string: JSON has no big integers)
//   sleep      {"ms": 2000} → {"sleptMs": 2000}                  (reports progress, honours cancel)

import { setImmediate as yieldToEventLoop, setTimeout as delay } from 'node:timers/promises';
import { NonRetryableError, Worker, type JobContext } from '@baton/worker-sdk';

/** F(n) with BigInt, yielding now and then so heartbeats and cancels get through on big n. */
async function fibonacci(payload: { n?: unknown }, ctx: JobContext): Promise<{ n: number; value: string }> {
  const n = payload?.n;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 100_000) {
    throw new NonRetryableError(`fibonacci: n must be an integer 0..100000, got ${JSON.stringify(n)}`);
  }
  let a = 0n;
  let b = 1n;
  for (let i = 0; i < n; i++) {
    [a, b] = [b, a + b];
    if (i % 5_000 === 4_999) {
      await yieldToEventLoop();
      ctx.signal.throwIfAborted();
    }
  }
  return { n, value: a.toString() };
}

/** Sleeps `ms` in steps, reporting progress, and stops as soon as the job is cancelled or times out. */
async function sleep(payload: { ms?: unknown }, ctx: JobContext): Promise<{ sleptMs: number }> {
  const ms = payload?.ms;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > 3_600_000) {
    throw new NonRetryableError(`sleep: ms must be a number 0..3600000, got ${JSON.stringify(ms)}`);
  }
  const started = Date.now();
  for (let left = ms; left > 0; left = ms - (Date.now() - started)) {
    await delay(Math.min(left, 500), undefined, { signal: ctx.signal });
    ctx.progress({ sleptMs: Math.min(ms, Date.now() - started), totalMs: ms });
  }
  return { sleptMs: ms };
}

const worker = new Worker({
  address: process.env.BATON_ADDRESS ?? 'localhost:7700',
  token: process.env.BATON_TOKEN || undefined,
  concurrency: Number(process.env.BATON_CONCURRENCY ?? 10),
  handlers: { fibonacci, sleep },
  logger: { info: console.log, warn: console.warn, error: console.error },
});

const started = new WeakMap<JobContext, number>();
const took = (job: JobContext): string => `${Date.now() - (started.get(job) ?? Date.now())} ms`;
const line = (job: JobContext, what: string): void =>
  console.log(`${new Date().toISOString()} ${job.queue} job ${job.id} attempt ${job.attempt}/${job.maxAttempts} ${what}`);
worker.on('active', (job) => started.set(job, Date.now()));
worker.on('completed', (job) => line(job, `completed in ${took(job)}`));
worker.on('failed', (job, error) => line(job, `failed in ${took(job)}: ${error.message}`));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`${signal}: finishing running jobs, then exiting (send it again to force)`);
    worker.close().then(
      () => console.log('worker closed'),
      (err: unknown) => console.error('close failed', err),
    );
  });
}

await worker.start();
console.log(`worker ${worker.workerId} serving ${worker.queues.join(', ')} with concurrency ${worker.concurrency}`);
