import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { CLOCK, NOW } from './clock.ts';
import { loseLeases, NEXT_AFTER_LEASE_LOST } from './release.ts';
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
cur as (
  select j.id, ${NEXT_AFTER_LEASE_LOST} as next, 'lease expired: no heartbeat within the lease TTL' as message
  from baton_live_jobs j
  where ${canStartSql('loseLease')} and (j.session_id in (select id from expired)
    or not exists (select 1 from baton_sessions s where s.id = j.session_id))
  for update of j
),
${loseLeases(NOW)}
select c.id::text as id, (${announce('changed')}) as announced from changed c`,
);
