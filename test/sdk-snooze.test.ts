/**
 * The TypeScript SDK's snooze against a real broker, on both ports: a handler that throws
 * `snooze(ms)` sees its job again after the delay with the same attempt number, the Worker emits
 * `snoozed` once the broker took it, and the producer's `result()` gets the later run's value.
 */
import { describe, expect, it } from 'vitest';
import { type JobContext, snooze } from '@baton/worker-sdk';
import { useTestBroker } from './support/broker.ts';
import { useSdk } from './support/sdk.ts';

const used = useTestBroker({ grpcPort: 0 });

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const queue = `snooze-sdk-${port}`;
  const address = () => `127.0.0.1:${port === 'main' ? used.broker.port : used.broker.grpcPort}`;
  const sdk = useSdk(address);

  it('a snoozed job comes back after the delay on the same attempt, and the worker says so', async () => {
    const { client } = sdk;
    const runs: { attempt: number; snoozes: string | undefined; at: number }[] = [];
    const snoozed: [string, number][] = [];
    const failed: string[] = [];
    const worker = sdk.worker({
      handlers: {
        [queue]: (_payload: unknown, ctx: JobContext) => {
          runs.push({ attempt: ctx.attempt, snoozes: ctx.labels['baton.snoozes'], at: Date.now() });
          if (runs.length < 3) throw snooze(150);
          return { runs: runs.length };
        },
      },
    });
    worker.on('snoozed', (job, delayMs) => snoozed.push([job.id, delayMs]));
    worker.on('failed', (job) => failed.push(job.id));
    await worker.start();

    const { id } = await client.enqueue(queue, {}, { maxAttempts: 1 });
    expect(await client.result(id, { signal: AbortSignal.timeout(10_000) })).toEqual({ runs: 3 });
    expect(runs.map((r) => [r.attempt, r.snoozes])).toEqual([
      [1, undefined],
      [1, '1'],
      [1, '2'],
    ]);
    expect(runs[1].at - runs[0].at).toBeGreaterThanOrEqual(140);
    expect(snoozed).toEqual([
      [id, 150],
      [id, 150],
    ]);
    expect(failed).toEqual([]);
    const job = await client.get(id);
    expect(job).toMatchObject({ status: 'completed', attempt: 1, errors: [] });
  });
});
