/**
 * The SDK at one of a test broker's ports: a Client for the enclosing describe block, and Workers
 * closed after each test (the rest of what a test opens stays the test's to close).
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Client, Worker } from '@baton/worker-sdk';

export function useSdk(address: () => string): { readonly client: Client; worker(options: Omit<ConstructorParameters<typeof Worker>[0], 'address'>): Worker } {
  let client: Client | undefined;
  const workers: Worker[] = [];
  beforeAll(() => {
    client = new Client({ address: address() });
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.close({ timeoutMs: 2000 });
  });
  afterAll(() => client?.close());
  return {
    get client() {
      if (!client) throw new Error('useSdk: the client exists from beforeAll on');
      return client;
    },
    worker(options) {
      // Quiet: a test asserts on what it cares about, not on the worker's log.
      const w = new Worker({ address: address(), logger: {}, ...options });
      workers.push(w);
      return w;
    },
  };
}
