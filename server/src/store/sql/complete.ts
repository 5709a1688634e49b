import { statement } from '../sql-pool.ts';
import { announceListened } from './announce.ts';
import { copyJobs, countChanges, finishedSet, movedFrom } from './history.ts';
import { canStartSql, targetSql } from './state-machine.ts';

/**
 * Records successful results: the jobs leave the live table and are written, finished, into
 * history, in one statement. Only rows still RUNNING under the reported token change: a late
 * result from a worker whose lease was reassigned changes nothing, and a duplicate result finds the
 * job no longer live. A cancel requested meanwhile does not stop it: the work happened. Announced
 * only where someone listens (`announceListened`).
 * Parameter: JSON array of {id, token, result}.
 */
export const COMPLETE_JOBS = statement(
  'baton_complete_jobs',
  `
with v as (select * from jsonb_to_recordset(?::jsonb) as r(id bigint, token bigint, result jsonb)),
done as (
  delete from baton_live_jobs j using v where j.id = v.id and j.lease_token = v.token and ${canStartSql('complete')}
  returning j.*, v.result as reported
),
j as (${copyJobs('baton_job_history', 'done', { ...finishedSet(targetSql('complete'), 'now()'), result: 'reported' })}),
counted as (${countChanges(movedFrom('j', 'running'))})
select j.id::text as id, (${announceListened('j')}) as announced from j`,
);
