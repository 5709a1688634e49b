/**
 * The SDK with no OpenTelemetry tracer provider registered (most applications): enqueues and
 * handlers run without spans, jobs carry no traceparent unless the producer sets one, and a
 * producer's own traceparent still reaches the handler. On both ports.
 */
import { describe, expect, it } from 'vitest';
import { Client, Worker } from '@baton/worker-sdk';
import { useTestBroker } from './support/broker.ts';

const used = useTestBroker({ grpcPort: 0 });

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const address = () => `127.0.0.1:${port === 'main' ? used.broker.port : used.broker.grpcPort}`;

  it('runs jobs without spans: no traceparent unless the producer gave one, and that one reaches the handler', async () => {
    const queue = `untraced-${port}`;
    const client = new Client({ address: address() });
    const seen: (string | undefined)[] = [];
    const worker = new Worker({ address: address(), handlers: { [queue]: (_payload, ctx) => (seen.push(ctx.traceparent), null) }, logger: {} });
    try {
      await worker.start();
      const plain = await client.enqueue(queue, { n: 1 });
      await client.result(plain.id);
      const given = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const traced = await client.enqueue(queue, { n: 2 }, { traceparent: given });
      await client.result(traced.id);
      expect((await client.get(plain.id)).traceparent).toBeFalsy();
      expect(seen).toEqual([undefined, given]);
    } finally {
      await worker.close({ timeoutMs: 2000 });
      client.close();
    }
  });
});
