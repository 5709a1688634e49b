/**
 * The connected worker sessions, for operators (Admin.ListWorkers, the dashboard's workers view).
 * Not on the hot path: read when an operator looks, so plain set-based SQL with no index of its own.
 */
import type { SessionInfo, StoreDriver } from '../driver.ts';
import { type SqlPool, statement } from '../sql-pool.ts';
import { statusIn } from './state-machine.ts';

/**
 * Every session with the count of RUNNING jobs it holds. The count is one pass over the running
 * jobs (the `baton_jobs_running` partial index), not one probe per session, and a session holding
 * nothing still appears. Sessions past `expires_at` stay listed until the leader reaps them: the
 * caller sees that their lease ran out. No parameters.
 */
export const LIST_SESSIONS = statement(
  'baton_list_sessions',
  `
select s.id::text as id, s.worker_id, s.broker_id, s.queues, s.capacity, s.connected_at, s.expires_at,
  coalesce(h.held, 0)::int as held
from baton_sessions s
left join (
  select j.session_id, count(*) as held from baton_live_jobs j where ${statusIn(['running'])} group by j.session_id
) h on h.session_id = s.id
order by s.broker_id, s.connected_at, s.id`,
);

export function createSessionReadOperations(options: { sql: SqlPool }): Pick<StoreDriver, 'sessionList'> {
  const { sql } = options;
  return {
    async sessionList() {
      const rows = await sql.run(LIST_SESSIONS, []);
      return rows.map(
        (row): SessionInfo => ({
          id: row.id,
          workerId: row.worker_id,
          brokerId: row.broker_id,
          queues: row.queues,
          capacity: row.capacity,
          jobsHeld: row.held,
          connectedAt: row.connected_at,
          expiresAt: row.expires_at,
        }),
      );
    },
  };
}
