import { statement } from '../sql-pool.ts';

/** Opens a session. Parameters: worker id, broker id, queues (JSON array), capacity, ttl ms. */
export const OPEN_SESSION = statement(
  'baton_open_session',
  `
insert into baton_sessions (worker_id, broker_id, queues, capacity, expires_at)
select ?, ?, array(select jsonb_array_elements_text(?::jsonb)), ?::int, now() + ?::bigint * interval '1 millisecond'
returning id::text as id`,
);
