/**
 * Announcements: the statements that change jobs say so on a channel in the same statement, so
 * that an announcement is delivered exactly when its change commits (../notifications.ts listens).
 * Each is a scalar subquery over the statement's changed rows.
 */
import { status } from './state-machine.ts';

/**
 * Announces changed jobs on `baton_job`, grouped by queue and status, at most 300 ids per
 * notification so that each payload stays under PostgreSQL's 8000-byte limit. `changed` must
 * expose id, queue and status.
 */
export function announce(changed: string): string {
  return `select count(pg_notify('baton_job', json_build_object('q', queue, 's', status, 'ids', ids)::text)) as announced
    from (select queue, status, array_agg(id::text) as ids from ${changed} group by queue, status, id / 300) as groups`;
}

/**
 * The queues of `changed` whose row meets `condition`: looked up once per queue, not once per
 * changed job (a claim or a completion of 50 jobs of one queue read its row 50 times).
 */
function queuesWhere(changed: string, condition: string): string {
  return `select q.name from baton_queues q where q.name in (select queue from ${changed}) and (${condition})`;
}

/**
 * Announces the jobs of `changed` only for queues with a Watch open (`watched_until`, see
 * ./watch-queue.ts): claims announce this way, since nobody else waits for RUNNING (dispatchers
 * ignore it). A claim that took its snapshot before a Watch marked the queue goes unannounced; the
 * Watch then sees that job's next change, which is never lost: results, failures and releases
 * announce always (a Watch waiting for a job to finish must not miss it).
 */
export function announceWatched(changed: string): string {
  return announce(`(select c.id, c.queue, c.status from ${changed} c
    where c.queue in (${queuesWhere(changed, 'q.watched_until > now()')})) as watched`);
}

/**
 * Announces the jobs of `changed` only for queues someone listens to about them: a Watch (see
 * `announceWatched`), or a dispatcher of a limited queue (or one with a limit per fair key), for
 * which a job leaving RUNNING frees a slot that streams on other brokers may wait for. Completions announce this way: a commit that
 * notified takes a database-wide lock until it is durable, which serialises completing brokers, and
 * nobody else waits for COMPLETED. A Watch whose mark a completion's snapshot did not see yet reads
 * the job again shortly after marking (server/src/core/watch-hub.ts).
 */
export function announceListened(changed: string): string {
  return announce(`(select c.id, c.queue, c.status from ${changed} c
    where c.queue in (${queuesWhere(changed, 'q.watched_until > now() or q.concurrency > 0 or q.key_concurrency > 0')})) as listened`);
}

/** Tells the leader when the earliest newly SCHEDULED job of `changed` falls due, so it can sleep until then. */
export function announceSchedule(changed: string): string {
  return `select count(pg_notify('baton_schedule', (extract(epoch from due) * 1000)::bigint::text))
    from (select min(run_at) as due from ${changed} where status = ${status('scheduled')}) as s where due is not null`;
}
