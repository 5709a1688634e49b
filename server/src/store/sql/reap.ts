import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { CLOCK, NOW } from './clock.ts';
import { leaseLostSet } from './release.ts';
import { canStartSql } from './state-machine.ts';

/**
 * Expires sessions not heard from within their TTL (their worker or their broker died) and hands
 * their jobs back, as a stream close would; also jobs running under a session that no longer
 * exists. Run by the elected leader. Parameter: now (null for the database's).
 */
export const REAP_EXPIRED_SESSIONS = statement(
  'baton_reap_expired_sessions',
  `
with ${CLOCK},
expired as (delete from baton_sessions where expires_at < ${NOW} returning id),
j as (
  update baton_jobs j set ${leaseLostSet(`'lease expired: no heartbeat within the lease TTL'`, NOW)}
  where ${canStartSql('loseLease')} and (j.session_id in (select id from expired)
    or not exists (select 1 from baton_sessions s where s.id = j.session_id))
  returning j.id, j.queue, j.status
)
select j.id::text as id, (${announce('j')}) as announced from j`,
);
