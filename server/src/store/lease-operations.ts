/**
 * The Lease stream's operations on PostgreSQL, the hot path: sessions, claims, results, progress and
 * heartbeats. Each is one set-based prepared statement on the hot path's pool for a whole batch
 * (passed as one JSON parameter), except a limited queue's claim, which takes the queue's row lock
 * first in a transaction of its own.
 */
import type { JobStatus } from '../domain/job-status.ts';
import { isPlainQueue } from '../domain/queue.ts';
import { createGroupCommit } from '../lib/group-commit.ts';
import type { HeartbeatOutcome, StoreDriver } from './driver.ts';
import { toAssignment } from './job-rows.ts';
import type { Row, SqlPool } from './sql-pool.ts';
import { CLAIM_FAIR } from './sql/claim-fair.ts';
import { CLAIM_KEY_RATED, CLAIM_LIMITED, CLAIM_RATED, CLAIM_UNLIMITED, LOCK_QUEUE, RATE_HELD_BACK } from './sql/claim.ts';
import { COMPLETE_JOBS } from './sql/complete.ts';
import { FAIL_JOBS } from './sql/fail.ts';
import { HEARTBEAT } from './sql/heartbeat.ts';
import { OPEN_SESSION } from './sql/open-session.ts';
import { RECORD_PROGRESS } from './sql/progress.ts';
import { RELEASE_SESSION } from './sql/release.ts';

type LeaseOperations = Pick<StoreDriver, 'sessionOpen' | 'sessionHeartbeat' | 'sessionRelease' | 'jobClaim' | 'jobComplete' | 'jobFail' | 'jobRecordProgress'>;

/** How long a heartbeat waits for others to share its statement: nothing next to a TTL of seconds. */
const HEARTBEAT_LINGER_MS = 20;

export function createLeaseOperations(options: { sql: SqlPool }): LeaseOperations {
  const { sql } = options;

  // Heartbeats of all streams that fall within a few milliseconds of each other share one statement.
  const heartbeats = createGroupCommit(
    async (beats: { sessionId: string; ttlMs: number; tokens: string[] }[]): Promise<(HeartbeatOutcome | null)[]> => {
      // One TTL per statement: every session of a broker has the same.
      const input = JSON.stringify(beats.map((beat) => ({ session_id: beat.sessionId, tokens: beat.tokens })));
      const rows = await sql.run(HEARTBEAT, [input, beats[0].ttlMs]);
      return rows.map((row) => (row.alive ? { lost: JSON.parse(row.lost) as string[], cancelRequested: JSON.parse(row.cancel_requested) as string[] } : null));
    },
    { maxInFlight: 1, maxItems: 500, lingerMs: HEARTBEAT_LINGER_MS },
  );

  return {
    async sessionOpen(params) {
      const rows = await sql.run(OPEN_SESSION, [params.workerId, params.brokerId, JSON.stringify(params.queues), params.capacity, params.ttlMs]);
      return rows[0].id as string;
    },

    async sessionHeartbeat(params) {
      const [outcome] = await heartbeats([params]);
      return outcome;
    },

    async sessionRelease({ sessionId, reason }) {
      return (await sql.run(RELEASE_SESSION, [reason, sessionId, sessionId])).length;
    },

    // A limited queue's claim locks the queue's row first, so the limit holds however many brokers claim at once.
    async jobClaim({ queue, limit, sessionId, workerId, onHeldBack }) {
      if (isPlainQueue(queue)) {
        const rows = await sql.run(CLAIM_UNLIMITED, [queue.name, queue.name, sessionId, limit, sessionId, workerId]);
        return rows.map(toAssignment);
      }
      return sql.transaction(async (run) => {
        const [s] = await run(LOCK_QUEUE, [queue.name]);
        // Settings that became plain: nothing now, and the dispatcher reloads them (it is told of the change).
        const fair = s?.fair_keys || s?.key_concurrency > 0;
        if (!s || s.paused || (s.concurrency === 0 && s.rate_limit === 0 && s.key_rate_limit === 0 && !fair)) return [];
        if (fair && s.rate_limit === 0 && s.key_rate_limit === 0) {
          // A round takes each key's share; keys with more than their share are served by further
          // rounds in the same transaction while they still find jobs.
          const jobs: Row[] = [];
          for (let round = 0; round < 4 && jobs.length < limit; round++) {
            const rows = await run(CLAIM_FAIR, [queue.name, s.concurrency, s.key_concurrency, limit - jobs.length, sessionId, sessionId, workerId]);
            if (rows.length === 0) break;
            jobs.push(...rows);
          }
          return jobs.map(toAssignment);
        }
        if (s.rate_limit === 0 && s.key_rate_limit === 0) {
          const rows = await run(CLAIM_LIMITED, [s.concurrency, queue.name, queue.name, sessionId, limit, sessionId, workerId]);
          return rows.map(toAssignment);
        }
        const rated = s.key_rate_limit > 0 ? CLAIM_KEY_RATED : CLAIM_RATED;
        const params = [queue.name, s.concurrency, s.rate_limit, s.rate_interval_ms, s.key_rate_limit, s.key_rate_interval_ms, limit, sessionId];
        const rows = await run(rated, [...params, sessionId, workerId]);
        if (rows.length < limit && onHeldBack) {
          const [held] = await run(RATE_HELD_BACK, [queue.name, s.rate_limit, s.rate_interval_ms, s.key_rate_limit, s.key_rate_interval_ms]);
          if (held?.until_ms !== null && held?.until_ms !== undefined) onHeldBack(Number(held.until_ms));
        }
        return rows.map(toAssignment);
      });
    },

    async jobComplete({ results }) {
      if (results.length === 0) return new Set();
      // Built as text: each result is JSON text already, embedded as it is rather than parsed and re-serialised.
      const input = results.map((r) => `{"id":${r.id},"token":${r.token},"result":${r.resultJson}}`);
      const rows = await sql.run(COMPLETE_JOBS, [`[${input.join(',')}]`]);
      return new Set(rows.map((row) => row.id as string));
    },

    async jobFail({ failures }) {
      if (failures.length === 0) return new Map();
      const input = failures.map((f) => ({ id: f.id, token: f.token, message: f.message, non_retryable: f.nonRetryable, retry_after_ms: f.retryAfterMs }));
      const rows = await sql.run(FAIL_JOBS, [JSON.stringify(input)]);
      return new Map(rows.map((row) => [row.id as string, row.status as JobStatus]));
    },

    async jobRecordProgress({ updates }) {
      if (updates.length === 0) return;
      const input = updates.map((u) => `{"id":${u.id},"token":${u.token},"progress":${u.progressJson}}`);
      await sql.run(RECORD_PROGRESS, [`[${input.join(',')}]`]);
    },
  };
}
