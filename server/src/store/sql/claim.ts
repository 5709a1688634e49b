/**
 * Claims: runnable jobs of one queue to one session, best first (priority, then run time, then
 * age), through the claim index (`status = 'pending'`, ordered as the claim reads it) and
 * `for update skip locked`, so that brokers claim side by side without waiting for each other.
 */
import { statement } from '../sql-pool.ts';
import { announceWatched } from './announce.ts';
import { ASSIGNMENT_COLUMNS } from './columns.ts';
import { countChanges, movedFrom, WAITED_MS } from './history.ts';
import { RELAXED_COMMIT } from './relaxed-commit.ts';
import { canStartSql, status, targetSql } from './state-machine.ts';

const CLAIM_SET = `status = ${targetSql('claim')}, attempt = j.attempt + 1, lease_token = nextval('baton_lease_token_seq'),
  session_id = ?::bigint, worker_id = ?, started_at = now(),
  deadline_at = case when j.timeout_ms > 0 then now() + j.timeout_ms * interval '1 millisecond' end`;

/** What both claims do with the rows they `picked`: start them for the session and answer with them. */
const CLAIM_PICKED = `j as (
  update baton_live_jobs j set ${CLAIM_SET}
  from picked where j.id = picked.id
  returning j.*
),
counted as (${countChanges(movedFrom('j', 'pending', WAITED_MS))})
select ${ASSIGNMENT_COLUMNS}, (${announceWatched('j')}) as announced, ${RELAXED_COMMIT} from j order by j.priority desc, j.id`;

/**
 * Claims up to `limit` runnable jobs of a queue that has no concurrency limit, for one session. The
 * queue check makes a claim that raced a pause or a new limit take nothing (the dispatcher then
 * reloads the queue's settings), and so does a claim for a session the leader has expired
 * meanwhile (its jobs would only be lost again).
 * Parameters: queue, queue, session id, limit, session id, worker id.
 */
export const CLAIM_UNLIMITED = statement(
  'baton_claim_unlimited',
  `
with picked as (
  select id from baton_live_jobs
  where queue = ? and ${canStartSql('claim', 'status')}
    and exists (select 1 from baton_queues q where q.name = ? and not q.paused and q.concurrency = 0)
    and exists (select 1 from baton_sessions s where s.id = ?::bigint)
  order by priority desc, run_at, id
  limit ?
  for update skip locked
),
${CLAIM_PICKED}`,
);

/**
 * Locks a limited queue's row for the rest of the transaction: claims of one limited queue are
 * serialised across every broker, so that the count of running jobs the next statement reads is
 * the truth and the limit holds across replicas. Parameter: queue.
 */
export const LOCK_QUEUE = statement('baton_lock_queue', `select concurrency, paused from baton_queues where name = ? for update`);

/**
 * Claims up to `limit` jobs of a limited queue, never more than its free slots (the limit less its
 * RUNNING jobs). Runs after LOCK_QUEUE in the same transaction (a new statement, so a new snapshot
 * that sees every claim committed before the lock was granted).
 * Parameters: concurrency, queue, queue, session id, limit, session id, worker id.
 */
export const CLAIM_LIMITED = statement(
  'baton_claim_limited',
  `
with free as (
  select greatest(0, ?::int - count(*)) as slots from baton_live_jobs where queue = ? and status = ${status('running')}
),
picked as (
  select id from baton_live_jobs
  where queue = ? and ${canStartSql('claim', 'status')}
    and exists (select 1 from baton_sessions s where s.id = ?::bigint)
  order by priority desc, run_at, id
  limit least(?::int, (select slots from free))
  for update skip locked
),
${CLAIM_PICKED}`,
);
