/**
 * The TypeScript SDK's prefetch against a real broker: a Worker leases `concurrency + prefetch`
 * jobs, runs at most `concurrency` handlers, starts the waiting ones in arrival order as handlers
 * free up, passes a cancel to a waiting job without running it, and on close hands waiting jobs
 * back unstarted (a 1 ms snooze: the attempt does not count). On both ports.
 */
import { describe, expect, it } from 'vitest';
import { JobCancelledError, Worker } from '@baton/worker-sdk';
import { useTestBroker } from './support/broker.ts';
import { useSdk } from './support/sdk.ts';
import { eventually } from './support/processes.ts';

const used = useTestBroker({ grpcPort: 0 });
/** Handlers that run until the test lets them go, and the order they began in. */
function gate() {
  const began: number[] = [];
  const release = new Map<number, () => void>();
  const handler = (payload: { n: number }) => {
    began.push(payload.n);
    return new Promise<number>((resolve) => release.set(payload.n, () => resolve(payload.n)));
  };
  const finish = (n: number) => {
    const go = release.get(n);
    if (!go) throw new Error(`job ${n} has not begun`);
    go();
  };
  return { began, handler, finish };
}

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const q = (name: string) => `${name}-${port}`;
  const address = () => `127.0.0.1:${port === 'main' ? used.broker.port : used.broker.grpcPort}`;
  const sdk = useSdk(address);
  const { worker } = sdk;

  it('leases concurrency + prefetch jobs, runs concurrency of them, and starts the rest in order as handlers free up', async () => {
    const queue = q('prefetch-order');
    const { began, handler, finish } = gate();
    const ids = [];
    for (let n = 1; n <= 4; n++) ids.push((await sdk.client.enqueue(queue, { n }, { priority: 0 })).id);
    const w = worker({ handlers: { [queue]: handler }, concurrency: 1, prefetch: 2 });
    await w.start();
    // Three leased (RUNNING in the broker), one handler running, two waiting; the fourth job waits in the queue.
    await eventually(async () => (await sdk.client.queueStats([queue]))[0]?.running === 3, 20_000, 'three jobs leased');
    expect(began).toEqual([1]);
    expect(w.running).toBe(1);
    expect((await sdk.client.get(ids[3])).status).toBe('pending');

    finish(1);
    await eventually(() => began.length === 2, 20_000, 'the second handler');
    expect(began).toEqual([1, 2]);
    expect(w.running).toBe(1);
    finish(2);
    await eventually(() => began.length === 3, 20_000, 'the third handler');
    finish(3);
    await eventually(() => began.length === 4, 20_000, 'the fourth handler');
    finish(4);
    for (const [i, id] of ids.entries()) expect(await sdk.client.result(id)).toBe(i + 1);
    expect(began).toEqual([1, 2, 3, 4]);
  });

  it('a cancel reaches a waiting job without running it', async () => {
    const queue = q('prefetch-cancel');
    const { began, handler, finish } = gate();
    const first = await sdk.client.enqueue(queue, { n: 1 });
    const second = await sdk.client.enqueue(queue, { n: 2 });
    const w = worker({ handlers: { [queue]: handler }, concurrency: 1, prefetch: 1 });
    await w.start();
    await eventually(async () => (await sdk.client.queueStats([queue]))[0]?.running === 2, 20_000, 'both jobs leased');
    await sdk.client.cancel(second.id);
    await expect(sdk.client.result(second.id)).rejects.toBeInstanceOf(JobCancelledError);
    finish(1);
    expect(await sdk.client.result(first.id)).toBe(1);
    expect(began).toEqual([1]);
  });

  it('close hands waiting jobs back unstarted, their attempt given back, and another worker runs them', async () => {
    const queue = q('prefetch-close');
    const { began, handler, finish } = gate();
    const jobs = [];
    for (let n = 1; n <= 3; n++) jobs.push(await sdk.client.enqueue(queue, { n }));
    const first = worker({ handlers: { [queue]: handler }, concurrency: 1, prefetch: 2 });
    await first.start();
    await eventually(async () => (await sdk.client.queueStats([queue]))[0]?.running === 3, 20_000, 'three jobs leased');
    const closing = first.close({ timeoutMs: 20_000 });
    // The two waiting jobs leave at once, before the running handler finishes.
    await eventually(async () => (await sdk.client.queueStats([queue]))[0]?.running === 1, 20_000, 'the waiting jobs handed back');
    finish(1);
    await closing;
    expect(began).toEqual([1]);
    for (const job of jobs.slice(1)) expect((await sdk.client.get(job.id)).attempt).toBe(0);

    const ran: number[] = [];
    const second = worker({ handlers: { [queue]: (payload: { n: number }) => (ran.push(payload.n), payload.n) }, concurrency: 1 });
    await second.start();
    expect(await sdk.client.result(jobs[1].id)).toBe(2);
    expect(await sdk.client.result(jobs[2].id)).toBe(3);
    expect(ran.sort()).toEqual([2, 3]);
    // Their first attempt is the one the second worker ran.
    for (const job of jobs.slice(1)) expect((await sdk.client.get(job.id)).attempt).toBe(1);
  });

  it('refuses a prefetch that is not a whole number of jobs, or would hold more than 100,000', () => {
    expect(() => new Worker({ address: address(), handlers: { x: () => {} }, prefetch: -1 })).toThrow(RangeError);
    expect(() => new Worker({ address: address(), handlers: { x: () => {} }, prefetch: 1.5 })).toThrow(RangeError);
    expect(() => new Worker({ address: address(), handlers: { x: () => {} }, concurrency: 10, prefetch: 99_991 })).toThrow(
      /prefetch must be an integer 0\.\.99990/,
    );
  });
});
