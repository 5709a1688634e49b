/// <reference lib="dom" />
/**
 * The workers view: every Lease stream open on any broker sharing the database (Admin.ListWorkers),
 * grouped by broker, with its queues, how many of its capacity's jobs it holds, and its lease. And
 * the question the queue table asks of it: does anyone serve this queue?
 *
 * The sessions table keeps no heartbeat time, only when the lease runs out; each heartbeat sets that
 * to its own time plus the lease TTL, so the last heartbeat is shown as the expiry minus the TTL of
 * the broker that served the page (brokers sharing a database normally share their settings).
 */
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { QueueStats } from '@baton/worker-sdk/gen/admin';
import { age, count, fill, h, meter } from './dom.ts';
import { workersBody, workersCount } from './frame.ts';
import { state } from './state.ts';

/** Sessions that list `queue` among the queues they serve. */
export function servingSessions(queue: string): number {
  return state.workers.filter((session) => session.queues.includes(queue)).length;
}

/** True for a queue with due jobs waiting and no connected worker that serves it. */
export function unserved(q: QueueStats): boolean {
  return q.pending > 0n && servingSessions(q.queue) === 0;
}

export function renderWorkers(): void {
  const now = Date.now();
  const held = state.workers.reduce((sum, session) => sum + session.jobsHeld, 0);
  const brokers = new Set(state.workers.map((session) => session.brokerId)).size;
  workersCount.textContent = state.workers.length
    ? `${count(state.workers.length)} session${state.workers.length === 1 ? '' : 's'} on ${brokers} broker${brokers === 1 ? '' : 's'} · ${count(held)} jobs held`
    : '';
  if (state.workers.length === 0) {
    fill(workersBody, h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No worker is connected: jobs wait until one opens a Lease stream.')));
    return;
  }
  let previousBroker = '';
  fill(
    workersBody,
    ...state.workers.map((session) => {
      const expires = session.leaseExpiresAt ? timestampDate(session.leaseExpiresAt) : undefined;
      const left = expires ? expires.getTime() - now : 0;
      const beat = expires && state.leaseTtlMs ? new Date(expires.getTime() - state.leaseTtlMs) : undefined;
      const firstOfBroker = session.brokerId !== previousBroker;
      previousBroker = session.brokerId;
      const full = session.capacity > 0 && session.jobsHeld >= session.capacity;
      return h(
        'tr',
        { 'data-session-id': session.sessionId, class: firstOfBroker ? 'group-start' : '' },
        h('td', { class: 'muted', title: session.brokerId }, firstOfBroker ? session.brokerId : ''),
        h('td', { title: `session ${session.sessionId}` }, session.workerId),
        h('td', {}, ...session.queues.map((queue) => h('span', { class: 'chip' }, queue))),
        h(
          'td',
          { class: 'num' },
          h('span', { class: full ? 'held full' : 'held' }, `${count(session.jobsHeld)} / ${count(session.capacity)}`),
          meter(session.jobsHeld / Math.max(1, session.capacity)),
        ),
        h('td', { class: 'num', title: session.connectedAt ? timestampDate(session.connectedAt).toLocaleString() : '' }, age(date(session.connectedAt), now)),
        h('td', { class: 'num', title: 'the lease expiry minus the lease TTL' }, beat ? `${age(beat, now)} ago` : '–'),
        h(
          'td',
          { class: left > 0 ? 'num' : 'num s-failed', title: expires?.toLocaleString() ?? '' },
          left > 0 ? `expires in ${age(new Date(now), now + left)}` : 'expired: no heartbeat',
        ),
      );
    }),
  );
}

const date = (t: Parameters<typeof timestampDate>[0] | undefined) => (t ? timestampDate(t) : undefined);
