/**
 * The dispatcher on its own: the order in which a claim's answer and a cancel's notification reach
 * it is not fixed (they come over two connections), and the cancel must reach the holder either way.
 * The store and the notifications are stand-ins whose timing the test controls; the SQL itself is tested
 * against PostgreSQL elsewhere (store-driver/, rescue.test.ts, chaos).
 */
import { EventEmitter } from 'node:events';
import { expect, it } from 'vitest';
import type { Consumer, DispatcherStore } from '../server/src/core/dispatcher.ts';
import { Dispatcher } from '../server/src/core/dispatcher.ts';
import { createLogger } from '../server/src/logger.ts';
import type { Assignment } from '../server/src/domain/job.ts';
import type { QueueSettings } from '../server/src/domain/queue.ts';
import { assignment } from './support/assignments.ts';
import type { CancelEvent, NotificationListener } from '../server/src/store/notification-listener.ts';

const QUEUE: QueueSettings = { name: 'q', concurrency: 0, paused: false, defaultMaxAttempts: 3, defaultTimeoutMs: 0 };

/** A claim whose answer the test releases when it chooses. */
function pendingClaims() {
  const started: ((jobs: Assignment[]) => void)[] = [];
  let announce: () => void = () => {};
  const store: DispatcherStore = {
    queueGet: async () => QUEUE,
    jobClaim: () =>
      new Promise<Assignment[]>((resolve) => {
        started.push(resolve);
        announce();
      }),
  };
  const claimStarted = () => new Promise<void>((resolve) => (announce = resolve));
  return { store, started, claimStarted };
}

function recordingConsumer(events: string[]): Consumer {
  const held = new Map<string, string>();
  let credits = 1;
  return {
    sessionId: '1',
    workerId: 'w',
    queues: ['q'],
    credit: () => credits,
    reserve: (wanted) => {
      const granted = Math.min(wanted, credits);
      credits -= granted;
      return granted;
    },
    deliver: (jobs) => {
      for (const job of jobs) {
        held.set(job.leaseToken, job.id);
        events.push(`deliver ${job.id}`);
      }
    },
    cancel: (event: CancelEvent) => {
      if (held.get(event.token) !== event.id) return false;
      events.push(`cancel ${event.id}`);
      return true;
    },
  };
}

/** A started dispatcher with one recording consumer, its claims held until the test answers them. */
function startDispatcher() {
  const { store, started, claimStarted } = pendingClaims();
  const notifications = new EventEmitter() as unknown as NotificationListener;
  const dispatcher = new Dispatcher({ store, notifications, logger: createLogger('error'), fallbackPollMs: 3_600_000 });
  dispatcher.start();
  const events: string[] = [];
  dispatcher.register(recordingConsumer(events));
  return { dispatcher, notifications, events, started, claimStarted };
}

it('passes on a cancel announced while the claim that hands over its job is still on its way', async () => {
  const { dispatcher, notifications, events, started, claimStarted } = startDispatcher();
  const claiming = claimStarted();
  dispatcher.wake('q');
  await claiming;
  notifications.emit('cancel', { id: '7', token: '70', reason: 'cancelled' });
  events.push('cancel announced');
  started[0]([assignment('7')]);
  await dispatcher.settle();
  expect(events).toEqual(['cancel announced', 'deliver 7', 'cancel 7']);
  await dispatcher.stop();
});

it('passes on a cancel announced after the claim answered, once, and forgets cancels of jobs it never got', async () => {
  const { dispatcher, notifications, events, started, claimStarted } = startDispatcher();
  // Another broker's job: nobody here holds it.
  notifications.emit('cancel', { id: '8', token: '80', reason: 'cancelled' });
  const claiming = claimStarted();
  dispatcher.wake('q');
  await claiming;
  started[0]([assignment('7')]);
  await dispatcher.settle();
  notifications.emit('cancel', { id: '7', token: '70', reason: 'cancelled' });
  expect(events).toEqual(['deliver 7', 'cancel 7']);
  await dispatcher.stop();
});
