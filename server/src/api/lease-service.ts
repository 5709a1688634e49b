import type { HandlerContext } from '@connectrpc/connect';
import type { LeaseRequest, LeaseResponse } from '@baton/worker-sdk/gen/lease';
import type { BrokerConfig } from '../config.ts';
import { AsyncQueue } from '../core/async-queue.ts';
import type { Dispatcher } from '../core/dispatcher.ts';
import { drainSessions } from '../core/drain.ts';
import { LeaseSession } from '../core/lease-session.ts';
import type { JobObserver } from '../core/observer.ts';
import { unavailable } from '../domain/errors.ts';
import { settledBefore, timeoutSignal } from '../lib/abort.ts';
import type { Logger } from '../logger.ts';
import type { StoreDriver } from '../store/driver.ts';
import { fromLeaseRequest, toLeaseResponses } from './lease-messages.ts';

export interface LeaseServiceDeps {
  config: Pick<BrokerConfig, 'leaseTtlMs' | 'heartbeatIntervalMs' | 'maxPayloadBytes' | 'maxCreditsPerStream'>;
  store: StoreDriver;
  dispatcher: Dispatcher;
  logger: Logger;
  brokerId: string;
  /** Told as jobs start and finish on this broker's Lease streams. */
  observer?: JobObserver;
}

interface OpenStream {
  session: LeaseSession;
  out: AsyncQueue<LeaseResponse>;
  /** Settles once the stream's session is released (see `released`). */
  released: Promise<void>;
}

/**
 * The `Lease` RPC: one LeaseSession per stream, fed the worker's messages as domain inputs, its
 * events sent back as protobuf messages. Owns the set of open streams, so that shutdown can drain
 * them.
 */
export function createLeaseService(deps: LeaseServiceDeps) {
  const { config, store, dispatcher, logger, brokerId, observer } = deps;
  const streams = new Set<OpenStream>();
  let accepting = true;

  async function* lease(requests: AsyncIterable<LeaseRequest>, context: HandlerContext): AsyncIterable<LeaseResponse> {
    if (!accepting) throw unavailable('this broker is shutting down; connect to another broker');
    const out = new AsyncQueue<LeaseResponse>();
    const session = new LeaseSession({
      store,
      dispatcher,
      logger,
      brokerId,
      leaseTtlMs: config.leaseTtlMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      maxPayloadBytes: config.maxPayloadBytes,
      maxCredits: config.maxCreditsPerStream,
      onEvent: (event) => {
        for (const message of toLeaseResponses(event)) out.push(message);
      },
      observer,
    });
    const { promise: released, resolve: markReleased } = Promise.withResolvers<void>();
    const stream = { session, out, released };
    streams.add(stream);
    let reason = 'stream closed by the worker';
    const onAbort = () => {
      reason = 'stream lost';
      out.end();
    };
    context.signal.addEventListener('abort', onAbort);
    void (async () => {
      try {
        for await (const message of requests) await session.receive(fromLeaseRequest(message));
        out.end();
      } catch (error) {
        reason = `stream failed: ${error instanceof Error ? error.message : String(error)}`;
        out.end(error);
      }
    })();
    try {
      yield* out;
    } finally {
      context.signal.removeEventListener('abort', onAbort);
      // Streams ended by a drain were ended by the broker, not by the worker; what the drain left
      // unreported is released with an error that says so.
      const closed = accepting
        ? session.close(reason)
        : session.close('drained at broker shutdown', 'released at broker shutdown: not reported within the drain deadline');
      await closed.catch((error) => logger.warn('could not release a closed session', { error }));
      // Only now: shutdown waits for every stream to be released before it closes the database pool.
      streams.delete(stream);
      markReleased();
    }
  }

  /**
   * Refuses new streams, tells every worker to drain, waits until they have reported what they
   * hold (or the deadline passes), then ends their streams; their sessions release whatever is
   * left (await `released`).
   */
  async function drain(deadlineMs: number): Promise<void> {
    accepting = false;
    const deadline = timeoutSignal(deadlineMs);
    try {
      await drainSessions(sessions, deadlineMs, deadline.signal);
    } finally {
      deadline.cancel();
    }
    for (const { out } of streams) out.end();
  }

  /** Waits, at most `graceMs`, until every stream's session is released. */
  async function released(graceMs: number): Promise<void> {
    const grace = timeoutSignal(graceMs);
    try {
      await settledBefore(Promise.all([...streams].map((stream) => stream.released)), grace.signal);
    } finally {
      grace.cancel();
    }
  }

  /** The sessions of the open streams, hello received or not. */
  function* sessions(): Iterable<LeaseSession> {
    for (const stream of streams) yield stream.session;
  }

  return { lease, drain, released, sessions };
}
