import { statement } from '../sql-pool.ts';
import { RELAXED_COMMIT } from './relaxed-commit.ts';
import { status } from './state-machine.ts';

/**
 * Renews sessions and reports, for each, which of the tokens its worker believes it holds are no
 * longer its own, and the tokens of its jobs whose cancel was requested (`cancel_requested`: a
 * cancel announced while the claim that handed the job to this session was still on its way is
 * delivered here at the latest); `alive` is false for a session that is gone (expired and reaped).
 * One statement for the heartbeats of many streams, committed asynchronously (./relaxed-commit.ts).
 * Parameters: JSON array of {session_id, tokens: [string]}, ttl ms.
 */
export const HEARTBEAT = statement(
  'baton_heartbeat',
  `
with v as (
  select * from rows from (jsonb_to_recordset(?::jsonb) as (session_id bigint, tokens jsonb)) with ordinality as r(session_id, tokens, ord)
),
s as (
  update baton_sessions set expires_at = now() + ?::bigint * interval '1 millisecond'
  where id in (select session_id from v) returning id
)
select v.session_id::text as session_id, s.id is not null as alive,
  coalesce((select json_agg(t.token) from jsonb_array_elements_text(v.tokens) as t(token)
    where not exists (select 1 from baton_live_jobs j where j.lease_token = t.token::bigint and j.status = ${status('running')} and j.session_id = v.session_id)), '[]')::text as lost,
  coalesce((select json_agg(j.lease_token::text) from baton_live_jobs j
    where j.session_id = v.session_id and j.status = ${status('running')} and j.cancel_requested), '[]')::text as cancel_requested,
  ${RELAXED_COMMIT}
from v left join s on s.id = v.session_id
order by v.ord`,
);
