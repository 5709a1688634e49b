/**
 * The TypeScript implementation of the conformance handler (contract: test/conformance/README.md),
 * on the worker SDK. Environment: BATON_ADDRESS, BATON_QUEUE (default "conformance"), CAPACITY
 * (default 4), WORKER_ID, CONFORMANCE_LOG.
 */
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { NonRetryableError, RetryAfterError, Worker, snooze, type JobContext } from '@baton/worker-sdk';

interface Payload {
  action?: string;
  value?: unknown;
  message?: string;
  times?: number;
  retry_after_ms?: number;
  ms?: number;
}

const logFile = process.env.CONFORMANCE_LOG;
const record = (entry: object) => {
  if (logFile) appendFileSync(logFile, JSON.stringify({ t: Date.now(), ...entry }) + '\n');
};

async function conformance(payload: Payload | null, job: JobContext): Promise<unknown> {
  record({ event: 'start', id: job.id, attempt: job.attempt });
  let stopped = false;
  try {
    switch (payload?.action) {
      case 'succeed':
        return { value: payload.value };
      case 'fail':
        if (job.attempt <= (payload.times ?? 1)) {
          const message = payload.message ?? 'planned failure';
          if (payload.retry_after_ms) throw new RetryAfterError(payload.retry_after_ms, message);
          throw new Error(message);
        }
        return { value: payload.value };
      case 'fail_permanently':
        throw new NonRetryableError(payload.message ?? 'permanent failure');
      case 'snooze':
        // The broker counts the snoozes in this label; the attempt number stays the same.
        if (Number(job.labels['baton.snoozes'] ?? 0) < (payload.times ?? 1)) throw snooze(payload.ms ?? 0);
        return { value: payload.value };
      case 'sleep':
        try {
          await sleep(payload.ms ?? 0, undefined, { signal: job.signal });
        } catch (error) {
          stopped = job.signal.aborted;
          throw error;
        }
        return { value: payload.value };
      default:
        throw new NonRetryableError(`unknown action ${JSON.stringify(payload?.action)}`);
    }
  } finally {
    record({ event: 'end', id: job.id, attempt: job.attempt, stopped });
  }
}

const worker = new Worker({
  address: process.env.BATON_ADDRESS,
  concurrency: Number(process.env.CAPACITY ?? 4),
  workerId: process.env.WORKER_ID || undefined,
  reconnect: { initialMs: 100, maxMs: 1000 },
  handlers: { [process.env.BATON_QUEUE ?? 'conformance']: conformance },
  logger: { info: console.log, warn: console.warn, error: console.error },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void worker.close({ timeoutMs: 5000 }).then(() => process.exit(0)));
}
await worker.start();
