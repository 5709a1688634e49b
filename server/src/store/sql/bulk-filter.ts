/**
 * The batch every bulk statement starts from (docs/scheduling.md, "Bulk actions"): the ids of up to
 * `limit` jobs that match the filter, lowest id first past a cursor, locked `for update skip locked`
 * so that two bulk runs, or a bulk run and a claim or a completion, never wait for each other (a job
 * locked by another statement at that moment is left out of the batch). The dry run and the real
 * run of an action share this text, so a dry run counts exactly the batch the real run would take.
 *
 * Only the filters given are written into the statement, so that each shape of filter is a prepared
 * statement with a plan of its own (an `or ? is null` form would get one generic plan that can use
 * no index). Each shape is named after its filters and statuses, and prepared once per connection.
 */
import type { BulkAction } from '../../domain/bulk-actions.ts';
import { JOB_STATUSES, type JobStatus } from '../../domain/job-status.ts';
import type { JobBulkFilter } from '../driver.ts';
import { type Statement, statement } from '../sql-pool.ts';
import { statusIn } from './state-machine.ts';

export interface BulkTarget {
  /** The `target` CTE's body; it selects every column of the matched rows. */
  sql: string;
  /** Its parameters, in order; the limit is the last. */
  params: unknown[];
  /** A short name of the filter's shape, for the statement's name. */
  shape: string;
}

/**
 * The batch over `table` (aliased `j`) of jobs in `statuses` (the action's, narrowed by the
 * filter's, in JOB_STATUSES order), which `statusCondition` (SQL) states, with whatever else the
 * action asks of a status; by default, only the status.
 */
export function bulkTarget(
  table: string,
  statuses: readonly JobStatus[],
  filter: JobBulkFilter,
  batch: { afterId?: string; limit: number },
  statusCondition = statusIn(statuses),
): BulkTarget {
  const where = ['j.id > ?::bigint'];
  const params: unknown[] = [batch.afterId ?? '0'];
  let shape = '';
  const filterBy = (letter: string, condition: string, value: unknown) => {
    shape += letter;
    where.push(condition);
    params.push(value);
  };
  if (filter.queue) filterBy('q', 'j.queue = ?', filter.queue);
  if (filter.idempotencyKey) filterBy('k', 'j.idempotency_key = ?', filter.idempotencyKey);
  if (filter.labels && Object.keys(filter.labels).length > 0) filterBy('l', 'j.labels @> ?::jsonb', JSON.stringify(filter.labels));
  if (filter.createdBefore) filterBy('b', 'j.created_at < ?::timestamptz', filter.createdBefore);
  if (filter.createdAfter) filterBy('a', 'j.created_at >= ?::timestamptz', filter.createdAfter);
  // Statuses are literals: the partitions and partial indexes they select are known at planning.
  where.push(statusCondition);
  params.push(batch.limit);
  return {
    sql: `select j.* from ${table} j where ${where.join(' and ')} order by j.id limit ? for update of j skip locked`,
    params,
    shape: `${shape || 'x'}_${statuses.map((s) => JOB_STATUSES.indexOf(s)).join('')}`,
  };
}

const prepared = new Map<string, Statement>();

/** The statement named after its action, run kind and shape, made once and then reused (its text is a function of its name). */
export function bulkStatement(action: BulkAction, dryRun: boolean, target: BulkTarget, text: (target: string) => string): Statement {
  const name = `baton_bulk_${action}_${dryRun ? 'count' : 'apply'}_${target.shape}`;
  let made = prepared.get(name);
  if (!made) {
    made = statement(name, text(target.sql));
    prepared.set(name, made);
  }
  return made;
}
