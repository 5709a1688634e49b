/**
 * Snoozes reported on Lease streams (docs/scheduling.md#snooze): one set-based statement per batch,
 * apart from the results' statements so that the hot path is unchanged for workers that never snooze.
 */
import type { JobStatus } from '../domain/job-status.ts';
import type { StoreDriver } from './driver.ts';
import type { SqlPool } from './sql-pool.ts';
import { SNOOZE_JOBS } from './sql/snooze.ts';

export function createSnoozeOperations(options: { sql: SqlPool }): Pick<StoreDriver, 'jobSnooze'> {
  const { sql } = options;
  return {
    async jobSnooze({ snoozes }) {
      if (snoozes.length === 0) return new Map();
      const input = snoozes.map((s) => ({ id: s.id, token: s.token, delay_ms: s.delayMs }));
      const rows = await sql.run(SNOOZE_JOBS, [JSON.stringify(input)]);
      return new Map(rows.map((row) => [row.id as string, row.status as JobStatus]));
    },
  };
}
