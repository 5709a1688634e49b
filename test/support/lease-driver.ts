import { create } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import type { Broker } from '@baton/worker-sdk/gen/broker';
import { type LeaseRequest, LeaseRequestSchema, type LeaseResponse, type JobAssignment } from '@baton/worker-sdk/gen/lease';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { AsyncQueue } from '../../server/src/core/async-queue.ts';

/**
 * Drives a Lease stream by hand, message by message, as a worker in another language would: the
 * protocol under test without our SDK in between.
 */
export class LeaseDriver {
  readonly #requests = new AsyncQueue<LeaseRequest>();
  readonly #received: LeaseResponse[] = [];
  #waiters: (() => void)[] = [];
  #error: unknown = null;
  #ended = false;
  readonly done: Promise<void>;

  constructor(broker: Client<typeof Broker>, signal?: AbortSignal) {
    this.done = (async () => {
      try {
        for await (const message of broker.lease(this.#requests, { signal })) {
          this.#received.push(message);
          this.#wake();
        }
      } catch (error) {
        this.#error = error;
      } finally {
        this.#ended = true;
        this.#wake();
      }
    })();
  }

  send(message: MessageInitShape<typeof LeaseRequestSchema>): void {
    this.#requests.push(create(LeaseRequestSchema, message));
  }

  hello(queues: string[], capacity = 10, credits = capacity, workerId = 'driver'): void {
    this.send({ hello: { workerId, queues, capacity, protocolVersion: 1 }, credits });
  }

  /** Half-closes the request side: the worker is leaving. */
  end(): void {
    this.#requests.end();
  }

  get error(): unknown {
    return this.#error;
  }

  get ended(): boolean {
    return this.#ended;
  }

  get messages(): LeaseResponse[] {
    return this.#received;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Waits until `predicate` holds over everything received so far, or the stream ends. */
  async until<T>(predicate: (messages: LeaseResponse[]) => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = predicate(this.#received);
      if (value) return value;
      if (this.#ended) throw new Error(`stream ended before the condition held: ${String(this.#error)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting on the Lease stream');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Every job received so far. */
  get jobs(): JobAssignment[] {
    return this.#received.flatMap((message) => message.jobs);
  }

  /** Waits for at least `count` jobs in all. */
  async jobsReceived(count: number, timeoutMs?: number): Promise<JobAssignment[]> {
    return this.until(() => (this.jobs.length >= count ? this.jobs : undefined), timeoutMs);
  }
}
