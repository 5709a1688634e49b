/**
 * The TypeScript SDK's Client sends enqueue() calls made while another is in flight together, as
 * one EnqueueBatch, and every call still gets the answer it would have had alone: its own job, its
 * own `duplicate`, its own error. Counted by the broker's own `baton_rpc_requests_total`. On both
 * ports.
 */
import { describe, expect, it } from 'vitest';
import { BatonError, Client } from '@baton/worker-sdk';
import { useTestBroker } from './support/broker.ts';
import { metricValue } from './support/metrics.ts';
import { useSdk } from './support/sdk.ts';

const used = useTestBroker({ grpcPort: 0 });

/** The Enqueue and EnqueueBatch calls this broker has answered, by status. */
async function enqueueCalls(): Promise<{ single: number; batch: number; singleRefused: number; batchRefused: number }> {
  const text = await (await fetch(`${used.broker.url}/metrics`)).text();
  const count = (method: string, code: string) => metricValue(text, 'baton_rpc_requests_total', { service: 'baton.v1.Broker', method, code });
  return {
    single: count('Enqueue', 'OK'),
    batch: count('EnqueueBatch', 'OK'),
    singleRefused: count('Enqueue', 'INVALID_ARGUMENT'),
    batchRefused: count('EnqueueBatch', 'INVALID_ARGUMENT'),
  };
}

function since(before: Awaited<ReturnType<typeof enqueueCalls>>, after: Awaited<ReturnType<typeof enqueueCalls>>) {
  return {
    single: after.single - before.single,
    batch: after.batch - before.batch,
    singleRefused: after.singleRefused - before.singleRefused,
    batchRefused: after.batchRefused - before.batchRefused,
  };
}

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const q = (name: string) => `${name}-${port}`;
  const address = () => `127.0.0.1:${port === 'main' ? used.broker.port : used.broker.grpcPort}`;
  const sdk = useSdk(address);

  it('a lone call is one Enqueue, sent at once', async () => {
    const before = await enqueueCalls();
    const job = await sdk.client.enqueue(q('coalesce-lone'), { n: 1 });
    expect(job).toMatchObject({ queue: q('coalesce-lone'), payload: { n: 1 }, status: 'pending', duplicate: false });
    expect(since(before, await enqueueCalls())).toEqual({ single: 1, batch: 0, singleRefused: 0, batchRefused: 0 });
  });

  it('calls made together go in fewer RPCs, each answered with its own job', async () => {
    const queue = q('coalesce-many');
    const before = await enqueueCalls();
    const jobs = await Promise.all(Array.from({ length: 50 }, (_, n) => sdk.client.enqueue(queue, { n }, { priority: n % 3, labels: { n: String(n) } })));
    const calls = since(before, await enqueueCalls());
    expect(calls.batch).toBeGreaterThan(0);
    expect(calls.single + calls.batch).toBeLessThan(50);
    expect(new Set(jobs.map((job) => job.id)).size).toBe(50);
    for (const [n, job] of jobs.entries()) {
      expect(job).toMatchObject({ queue, payload: { n }, priority: n % 3, labels: { n: String(n) }, duplicate: false });
      expect(await sdk.client.get(job.id)).toMatchObject({ id: job.id, payload: { n } });
    }
  });

  it('a refused job fails its own call only; the others of its batch are stored', async () => {
    const queue = q('coalesce-refused');
    const before = await enqueueCalls();
    // A queue name with a space is bad input: INVALID_ARGUMENT for that call alone.
    const answers = await Promise.allSettled(Array.from({ length: 20 }, (_, n) => sdk.client.enqueue(n === 7 ? 'not a queue' : queue, { n })));
    const calls = since(before, await enqueueCalls());
    // It went in a batch the broker refused, and was then sent again alone, and refused alone.
    expect(calls.batchRefused).toBeGreaterThan(0);
    expect(calls.singleRefused).toBe(1);
    answers.forEach((answer, n) => {
      if (n === 7) {
        expect(answer.status).toBe('rejected');
        const error = (answer as PromiseRejectedResult).reason as BatonError;
        expect(error).toBeInstanceOf(BatonError);
        expect(error.code).toBe('INVALID_ARGUMENT');
      } else {
        expect(answer.status).toBe('fulfilled');
        expect((answer as PromiseFulfilledResult<{ payload: unknown }>).value.payload).toEqual({ n });
      }
    });
    expect((await sdk.client.queueStats([queue]))[0]?.pending).toBe(19);
  });

  it('the same idempotency key in calls made together stores one job, the others told duplicate', async () => {
    const queue = q('coalesce-idempotent');
    const jobs = await Promise.all([
      sdk.client.enqueue(queue, { n: 0 }),
      ...Array.from({ length: 5 }, (_, n) => sdk.client.enqueue(queue, { n: n + 1 }, { idempotencyKey: q('order-7') })),
    ]);
    const keyed = jobs.slice(1);
    expect(new Set(keyed.map((job) => job.id)).size).toBe(1);
    expect(keyed.filter((job) => !job.duplicate)).toHaveLength(1);
    expect(keyed.every((job) => job.payload !== undefined)).toBe(true);
  });

  it('coalesceEnqueues: false sends one Enqueue per call', async () => {
    const client = new Client({ address: address(), coalesceEnqueues: false });
    try {
      const before = await enqueueCalls();
      await Promise.all(Array.from({ length: 10 }, (_, n) => client.enqueue(q('coalesce-off'), { n })));
      expect(since(before, await enqueueCalls())).toEqual({ single: 10, batch: 0, singleRefused: 0, batchRefused: 0 });
    } finally {
      client.close();
    }
  });
});
