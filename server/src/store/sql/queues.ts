/** Statements on queues beside the ORM's reads and writes of their settings. */
import { statement } from '../sql-pool.ts';

/**
 * Marks a queue as watched for the next minute (a Watch renews it while open), so that claims
 * announce its jobs (see `announceWatched` in ./announce.ts). Returns no row when the queue does
 * not exist (yet). Parameter: queue.
 */
export const WATCH_QUEUE = statement(
  'baton_watch_queue',
  `
update baton_queues set watched_until = greatest(watched_until, now() + interval '60 seconds') where name = ? returning name`,
);

/** Tells every broker that a queue's settings changed, so each reloads them. Parameter: queue. */
export const ANNOUNCE_QUEUE_CHANGE = statement('baton_announce_queue_change', `select pg_notify('baton_queue', ?)`);
