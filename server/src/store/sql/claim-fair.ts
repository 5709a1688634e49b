/**
 * The claim of a queue with fair keys (docs/scheduling.md, "Fair keys"): keys in turn, so that one
 * key's flood cannot starve the others, and at most `key_concurrency` RUNNING jobs per key across
 * brokers. Runs after LOCK_QUEUE (./claim.ts) in the same transaction: claims of the queue are
 * serialised, so the running counts it reads are the truth.
 */
import { statement } from '../sql-pool.ts';
import { claimPicked } from './claim.ts';
import { canStartSql, status } from './state-machine.ts';

/**
 * Up to `cap` jobs (the wanted count, within the queue's free slots): the keys with pending jobs
 * are found by a loose scan of the keyed jobs' partial index; each key offers its best jobs, at
 * most its share of `cap` and what its own limit leaves; the offers are taken round by round (every
 * key's best first, then every key's second, …), by priority and age within a round. Jobs without
 * a key form one more key, looked for among the queue's first 1,000 pending jobs only, so that a
 * keyed backlog is not read through at every claim. A claim that took every key's share may leave
 * jobs of keys with more; the caller claims again in the same transaction.
 * Parameters: queue, concurrency, key concurrency, limit, session id, then session id and worker id.
 */
export const CLAIM_FAIR = statement(
  'baton_claim_fair',
  `
with recursive p as (select ?::text as queue, ?::int as concurrency, ?::int as key_concurrency, ?::int as wanted, ?::bigint as session_id),
cap as (
  select case when not exists (select 1 from baton_sessions s where s.id = p.session_id) then 0
    when p.concurrency = 0 then p.wanted
    else least(p.wanted, greatest(0, p.concurrency - (select count(*) from baton_live_jobs r where r.queue = p.queue and r.status = ${status('running')}))::int) end as n
  from p
),
-- Keys in turn across claims: the walk starts after the key the queue's previous claim ended on
-- (baton_queues.fair_cursor), wraps around to the first key, and stops after \`cap\` keys, so a claim
-- costs O(cap) index probes however many keys have jobs waiting (a walk over every key took 20 ms
-- a claim with 1,000 keys). The queue is a scalar subquery, not a join with p: only then is it an
-- index condition of each step (joined, every step read the table whole).
cursor as (select coalesce((select q.fair_cursor from baton_queues q where q.name = (select queue from p)), '') as k),
after_cursor(k, n) as (
  (select l.concurrency_key, 1 from baton_live_jobs l
   where l.queue = (select queue from p) and l.status = ${status('pending')} and l.concurrency_key > (select k from cursor)
   order by l.concurrency_key limit 1)
  union all
  select (select l.concurrency_key from baton_live_jobs l
    where l.queue = (select queue from p) and l.status = ${status('pending')} and l.concurrency_key > a.k
    order by l.concurrency_key limit 1), a.n + 1
  from after_cursor a where a.k is not null and a.n < (select n from cap)
),
up_to_cursor(k, n) as (
  (select l.concurrency_key, 1 from baton_live_jobs l
   where l.queue = (select queue from p) and l.status = ${status('pending')} and l.concurrency_key is not null
     and l.concurrency_key <= (select k from cursor)
   order by l.concurrency_key limit 1)
  union all
  select (select l.concurrency_key from baton_live_jobs l
    where l.queue = (select queue from p) and l.status = ${status('pending')} and l.concurrency_key > u.k and l.concurrency_key <= (select k from cursor)
    order by l.concurrency_key limit 1), u.n + 1
  from up_to_cursor u where u.k is not null and u.n < (select n from cap)
),
keys(k, pos) as (
  select k, pos from (
    select k, n as pos from after_cursor where k is not null
    union all
    select k, 1000000 + n from up_to_cursor where k is not null
  ) walk order by pos limit (select n from cap)
),
next_cursor as (
  update baton_queues set fair_cursor = (select k from keys order by pos desc limit 1)
  where name = (select queue from p) and exists (select 1 from keys)
),
running as (
  select r.concurrency_key as k, count(*)::int as n from baton_live_jobs r, p
  where p.key_concurrency > 0 and r.queue = p.queue and r.status = ${status('running')} and r.concurrency_key is not null
  group by r.concurrency_key
),
share as (select greatest(1, ceil((select n from cap)::float8 / greatest(1, (select count(*) from keys where k is not null) + 1)))::int as n),
candidates as (
  select c.id, c.priority, c.run_at, c.turn from keys cross join p
  cross join lateral (
    select l.id, l.priority, l.run_at, row_number() over (order by l.priority desc, l.run_at, l.id) as turn from baton_live_jobs l
    where l.queue = p.queue and l.status = ${status('pending')} and l.concurrency_key = keys.k
    order by l.priority desc, l.run_at, l.id
    limit least((select n from share),
      case when p.key_concurrency = 0 then (select n from share)
        else greatest(0, p.key_concurrency - coalesce((select n from running where running.k = keys.k), 0)) end)
  ) c
  where keys.k is not null
  union all
  select h.id, h.priority, h.run_at, row_number() over (order by h.priority desc, h.run_at, h.id) as turn from (
    select l.id, l.priority, l.run_at, l.concurrency_key from baton_live_jobs l
    where l.queue = (select queue from p) and l.status = ${status('pending')}
    order by l.priority desc, l.run_at, l.id limit 1000
  ) h where h.concurrency_key is null
),
best as (select id from candidates order by turn, priority desc, run_at, id limit (select n from cap)),
picked as (
  select l.id from baton_live_jobs l where l.id in (select id from best) and ${canStartSql('claim', 'l.status')}
  for update of l skip locked
),
${claimPicked()}`,
);
