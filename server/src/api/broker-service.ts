import { durationFromMs } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Broker } from '@baton/worker-sdk/gen/broker';
import type { BrokerConfig } from '../config.ts';
import type { Dispatcher } from '../core/dispatcher.ts';
import { PROTOCOL_VERSION } from '../core/lease-events.ts';
import type { JobObserver } from '../core/observer.ts';
import { createWatchHub } from '../core/watch-hub.ts';
import type { Logger } from '../logger.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import type { StoreDriver } from '../store/driver.ts';
import type { NotificationListener } from '../store/notification-listener.ts';
import { createCancelRetryService } from './cancel-retry-service.ts';
import { createEnqueueService } from './enqueue-service.ts';
import { createLeaseService } from './lease-service.ts';
import { createReadService } from './read-service.ts';
import { createWatchService } from './watch-service.ts';

export const VERSION = '0.1.0';

export interface BrokerServiceDeps {
  config: BrokerConfig;
  store: StoreDriver;
  dispatcher: Dispatcher;
  notifications: NotificationListener;
  logger: Logger;
  brokerId: string;
  /** Counters of what this broker's RPCs did (see server/src/metrics). */
  metrics?: Pick<BrokerMetrics, 'enqueued' | 'cancelled' | 'retried'>;
  /** Told as jobs start and finish on this broker's Lease streams. */
  observer?: JobObserver;
}

/** How long, past the drain deadline, shutdown waits for ended streams to release their sessions. */
const RELEASE_GRACE_MS = 2_000;

/**
 * `baton.v1.Broker`, composed of its parts: enqueue, read (Get, List), cancel and retry, Watch and
 * the Lease stream, each a service of its own in this folder. Also the shutdown drain, which ends
 * the open streams of the last two.
 */
export function createBrokerService(deps: BrokerServiceDeps) {
  const { config, store, dispatcher, notifications, logger, brokerId, metrics, observer } = deps;
  const hub = createWatchHub({ store, notifications, logger });
  const lease = createLeaseService({ config, store, dispatcher, logger, brokerId, observer });

  const impl: ServiceImpl<typeof Broker> = {
    ...createEnqueueService({ config, store, dispatcher, logger, metrics }),
    ...createReadService({ config, store }),
    ...createCancelRetryService({ store, logger, metrics }),
    ...createWatchService(hub),
    lease: lease.lease,

    async getServerInfo() {
      return {
        version: VERSION,
        protocolVersion: PROTOCOL_VERSION,
        capabilities: [
          'batch',
          'cancel',
          'drain',
          'progress',
          'heartbeat-fencing',
          'retry-after',
          'snooze',
          'unique-jobs',
          'schedules',
          'bulk-actions',
          'rate-limits',
          'fair-keys',
        ],
        leaseTtl: durationFromMs(config.leaseTtlMs),
        maxPayloadBytes: BigInt(config.maxPayloadBytes),
      };
    },
  };

  /**
   * Tells every worker to drain, waits until they have reported what they hold (or the deadline
   * passes), then ends their streams and every Watch; their sessions release whatever is left.
   */
  async function drain(deadlineMs: number): Promise<void> {
    const releaseBy = performance.now() + deadlineMs + RELEASE_GRACE_MS;
    await lease.drain(deadlineMs);
    hub.endAll();
    await lease.released(releaseBy - performance.now());
  }

  return { impl, drain, sessions: lease.sessions };
}
