/**
 * Get and List: the one read path for jobs. Ordinary reads, run on the ORM's connections (which
 * inline the parameters, so `?` and `in (?)` rather than prepared `$n`), selecting the columns every
 * job answer is mapped from (./columns.ts, ../job-rows.ts).
 */
import type { JobListParams } from '../driver.ts';
import { JOB_COLUMNS } from './columns.ts';

/** One job by id. Parameter: id. */
export const GET_JOB = `select ${JOB_COLUMNS} from baton_jobs j where j.id = ?`;

/** One List page: only the filters given, so that each shape of query gets a plan of its own. */
export function listJobs(filter: JobListParams): { text: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const filterBy = (condition: string, value: unknown) => {
    where.push(condition);
    params.push(value);
  };
  if (filter.queue) filterBy('j.queue = ?', filter.queue);
  if (filter.statuses?.length) filterBy('j.status in (?)', filter.statuses);
  if (filter.idempotencyKey) filterBy('j.idempotency_key = ?', filter.idempotencyKey);
  // Containment: every label asked for, with its value. No index on labels, so the scan runs newest
  // first until the page is full (the API docs say to narrow by queue or status on large tables).
  if (filter.labels && Object.keys(filter.labels).length > 0) filterBy('j.labels @> ?::jsonb', JSON.stringify(filter.labels));
  if (filter.beforeId) filterBy('j.id < ?', filter.beforeId);
  params.push(filter.limit);
  return {
    text: `select ${JOB_COLUMNS} from baton_jobs j ${where.length ? `where ${where.join(' and ')}` : ''} order by j.id desc limit ?`,
    params,
  };
}
