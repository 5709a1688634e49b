/**
 * The PostgreSQL implementation of the store driver (./driver.ts), put together from its operation
 * groups. It owns the hot path's pool (prepared statements, ./sql-pool.ts) and the leader's lock
 * connection; the ORM it is given (opened, and migrated, by the caller) serves ordinary reads and
 * writes: job reads, queue settings, API keys.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { QUEUE_DEFAULTS, type QueueDefaults } from '../domain/queue.ts';
import type { Logger } from '../logger.ts';
import { createApiKeyOperations } from './api-key-operations.ts';
import { createBulkOperations } from './bulk-operations.ts';
import type { StoreDriver } from './driver.ts';
import { createJobOperations } from './job-operations.ts';
import { createLeaseOperations } from './lease-operations.ts';
import { createMaintenanceOperations } from './maintenance-operations.ts';
import { createQueueOperations } from './queue-operations.ts';
import { createScheduleOperations } from './schedule-operations.ts';
import { createSnoozeOperations } from './snooze-operations.ts';
import { SqlPool } from './sql-pool.ts';
import { createSessionReadOperations } from './sql/sessions.ts';

export interface PostgresDriverOptions {
  orm: MikroORM;
  /** The database the ORM is connected to, for the driver's own connections. */
  url: string;
  logger: Logger;
  /** Connections of the hot path's pool (opened as needed). @defaultValue 10 */
  poolSize?: number;
  /** Settings of queues created by their first enqueue. @defaultValue QUEUE_DEFAULTS */
  queueDefaults?: QueueDefaults;
}

/** The driver, and the figures of its hot path's pool for the pool gauges (this implementation's own, not a driver operation). */
export type PostgresDriver = StoreDriver & { sqlPoolStats: SqlPool['stats'] };

export function createPostgresDriver(options: PostgresDriverOptions): PostgresDriver {
  const { orm, url, logger } = options;
  const queueDefaults = { ...(options.queueDefaults ?? QUEUE_DEFAULTS) };
  const sql = new SqlPool({ url, size: options.poolSize ?? 10, logger });
  const maintenance = createMaintenanceOperations({ sql, url });
  let closing: Promise<void> | null = null;
  return {
    ...createJobOperations({ orm, sql, queueDefaults }),
    ...createLeaseOperations({ sql }),
    ...createSnoozeOperations({ sql }),
    ...createSessionReadOperations({ sql }),
    ...maintenance,
    ...createQueueOperations({ orm, sql, queueDefaults }),
    ...createApiKeyOperations({ orm }),
    ...createScheduleOperations({ sql, queueDefaults }),
    ...createBulkOperations({ sql }),
    sqlPoolStats: () => sql.stats(),
    close: () =>
      (closing ??= (async () => {
        await maintenance.leaderResign();
        await sql.end();
      })()),
  };
}
