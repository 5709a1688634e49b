import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { canStartSql, targetSql } from './state-machine.ts';

/**
 * Records successful results. Only rows still RUNNING under the reported token change: a late
 * result from a worker whose lease was reassigned changes nothing, and a duplicate result finds the
 * job no longer running. A cancel requested meanwhile does not stop it: the work happened.
 * Parameter: JSON array of {id, token, result}.
 */
export const COMPLETE_JOBS = statement(
  'baton_complete_jobs',
  `
with v as (select * from jsonb_to_recordset(?::jsonb) as r(id bigint, token bigint, result jsonb)),
j as (
  update baton_jobs j set status = ${targetSql('complete')}, result = v.result, finished_at = now(), lease_token = null,
    deadline_at = null
  from v where j.id = v.id and j.lease_token = v.token and ${canStartSql('complete')}
  returning j.id, j.queue, j.status
)
select j.id::text as id, (${announce('j')}) as announced from j`,
);
