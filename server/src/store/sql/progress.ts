import { statement } from '../sql-pool.ts';
import { status } from './state-machine.ts';

/**
 * Stores progress of running jobs, fenced like results (progress changes no status). Announces
 * nothing: a Watch shows progress when the job's next change brings it.
 * Parameter: JSON array of {id, token, progress}.
 */
export const RECORD_PROGRESS = statement(
  'baton_record_progress',
  `
update baton_live_jobs j set progress = v.progress
from jsonb_to_recordset(?::jsonb) as v(id bigint, token bigint, progress jsonb)
where j.id = v.id and j.lease_token = v.token and j.status = ${status('running')}`,
);
