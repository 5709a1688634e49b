/// <reference lib="dom" />
/**
 * Rendering the state into the frame: the summary cards, the queue table with its throughput
 * sparklines, oldest pending job and who serves it, the warning for a queue nobody serves, and the
 * status filter. The job list and the open job are drawn by jobs-view.ts, workers by workers.ts.
 *
 * Only the view: a control says what it is for in `data-action` (with the `data-queue`,
 * `data-status` or `data-job-id` it acts on), and navigation.ts, which owns what clicks do, handles
 * them with one listener per container. So rendering imports no module above it.
 */
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { QueueStats } from '@baton/worker-sdk/gen/admin';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { age, count, fill, h, svg } from './dom.ts';
import { queueNotice, queueSelect, queuesBody, statusButtons, summary } from './frame.ts';
import { queueLimits } from './queue-settings.ts';
import { SPARK_MINUTES, STATUSES, state } from './state.ts';
import { servingSessions, unserved } from './workers.ts';

/** When the queue's oldest pending job became due, if it has one. */
const oldestPending = (q: QueueStats) => (q.oldestPendingRunAt ? timestampDate(q.oldestPendingRunAt) : undefined);

function renderSummary(): void {
  const sum = (pick: (q: QueueStats) => bigint | number) => state.queues.reduce((total, q) => total + Number(pick(q)), 0);
  const card = (label: string, value: number, cls = '') =>
    h('div', { class: `card ${cls}` }, h('div', { class: 'value' }, count(value)), h('div', { class: 'label' }, label));
  fill(
    summary,
    card(
      'Total',
      sum((q) => q.total),
    ),
    card(
      'Pending',
      sum((q) => q.pending),
      's-pending',
    ),
    card(
      'Scheduled',
      sum((q) => q.scheduled),
      's-scheduled',
    ),
    card(
      'Running',
      sum((q) => q.running),
      's-running',
    ),
    card(
      'Completed',
      sum((q) => q.completed),
      's-completed',
    ),
    card(
      'Failed',
      sum((q) => q.failed),
      's-failed',
    ),
    card(
      'Cancelled',
      sum((q) => q.cancelled),
      's-cancelled',
    ),
    card(
      'Completed last min',
      sum((q) => q.completedPerMinute.at(-1) ?? 0n),
    ),
  );
}

/** Bars of completed (and, stacked, failed) jobs per minute, oldest on the left. */
function sparkline(completed: bigint[], failed: bigint[]): SVGElement {
  const width = 120;
  const height = 24;
  const n = Math.max(completed.length, 1);
  const totals = completed.map((c, i) => Number(c) + Number(failed[i] ?? 0n));
  const top = Math.max(1, ...totals);
  const bar = width / n;
  const bars = completed.flatMap((c, i) => {
    const done = (Number(c) / top) * height;
    const bad = (Number(failed[i] ?? 0n) / top) * height;
    return [
      svg('rect', { x: i * bar + 1, y: height - done, width: bar - 2, height: done, class: 'bar-ok' }),
      svg('rect', { x: i * bar + 1, y: height - done - bad, width: bar - 2, height: bad, class: 'bar-failed' }),
    ];
  });
  const title = svg('title', {});
  title.textContent = totals.map((t, i) => `${n - i} min ago: ${t}`).join('\n');
  return svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'spark', role: 'img' }, title, ...bars);
}

export function renderQueues(): void {
  renderSummary();
  renderQueueNotice();
  const now = Date.now();
  if (state.queues.length === 0) {
    fill(queuesBody, h('tr', {}, h('td', { colspan: 14, class: 'empty' }, 'No queues yet: they appear with their first job.')));
  } else {
    fill(
      queuesBody,
      ...state.queues.map((q) => {
        const paused = q.settings?.paused ?? false;
        const limit = queueLimits(q.settings);
        const counts = [q.pending, q.scheduled, q.running, q.completed, q.failed, q.cancelled];
        return h(
          'tr',
          { 'data-queue': q.queue, class: `${q.queue === state.queue ? 'selected' : ''}${unserved(q) ? ' unserved' : ''}` },
          h('td', {}, h('button', { class: 'link', 'data-action': 'filter' }, q.queue)),
          ...counts.map((n, i) => h('td', { class: `num${n > 0n && i >= 4 ? ` s-${STATUSES[i][1]}` : ''}` }, count(n))),
          h('td', { class: 'num' }, count(q.total)),
          h('td', { class: 'num oldest', title: oldestPending(q)?.toLocaleString() ?? 'nothing pending' }, oldestPending(q) ? age(oldestPending(q), now) : '–'),
          h('td', { class: 'serving' }, servingCell(q)),
          h(
            'td',
            {},
            h(
              'div',
              { class: 'throughput' },
              sparkline(q.completedPerMinute.slice(-SPARK_MINUTES), q.failedPerMinute.slice(-SPARK_MINUTES)),
              h('span', {}, `${count(q.completedPerMinute.at(-1) ?? 0n)}/min`),
            ),
          ),
          h('td', {}, h('span', { class: paused ? 'state paused' : 'state' }, paused ? 'paused' : 'active'), limit),
          h(
            'td',
            { class: 'row-actions' },
            h('button', { 'data-action': paused ? 'resume' : 'pause' }, paused ? 'Resume' : 'Pause'),
            h('button', { 'data-action': 'settings' }, 'Settings'),
          ),
        );
      }),
    );
  }
  const options = ['', ...state.queues.map((q) => q.queue)];
  if (state.queue && !options.includes(state.queue)) options.push(state.queue);
  if (queueSelect.options.length !== options.length || Array.from(queueSelect.options).some((o, i) => o.value !== options[i])) {
    fill(queueSelect, ...options.map((name) => h('option', { value: name }, name || 'All queues')));
  }
  queueSelect.value = state.queue;
}

export function renderStatusButtons(): void {
  const all: [JobStatus, string][] = [[JobStatus.UNSPECIFIED, 'all'], ...STATUSES];
  fill(
    statusButtons,
    ...all.map(([status, name]) =>
      h('button', { 'aria-pressed': String(state.status === status), 'data-status': name }, name[0].toUpperCase() + name.slice(1)),
    ),
  );
}

/** How many sessions serve the queue, or a warning when jobs wait and none does. */
function servingCell(q: QueueStats): Node | string {
  const n = servingSessions(q.queue);
  if (unserved(q)) return h('span', { class: 'warning', title: `${q.pending} pending jobs and no connected worker serves "${q.queue}"` }, '⚠ no worker');
  return n === 0 ? h('span', { class: 'muted' }, 'none') : `${n} session${n === 1 ? '' : 's'}`;
}

/**
 * Above the job list: for the selected queue, a warning when its jobs wait with nobody to run them
 * and how long the oldest has waited; with all queues shown, the queues nobody serves.
 */
function renderQueueNotice(): void {
  const now = Date.now();
  const selected = state.queues.find((q) => q.queue === state.queue);
  const stranded = selected ? (unserved(selected) ? [selected] : []) : state.queues.filter(unserved);
  queueNotice.hidden = stranded.length === 0;
  if (stranded.length === 0) return;
  const line = (q: QueueStats) =>
    h(
      'li',
      {},
      h('strong', {}, q.queue),
      `: ${count(q.pending)} job${q.pending === 1n ? '' : 's'} waiting`,
      oldestPending(q) ? `, the oldest for ${age(oldestPending(q), now)}` : '',
      q.settings?.paused ? ' (the queue is paused too)' : '',
    );
  fill(
    queueNotice,
    h(
      'p',
      {},
      '⚠ No connected worker serves ',
      stranded.length === 1 ? 'this queue' : 'these queues',
      ': start a worker that lists it, or check why yours left.',
    ),
    h('ul', {}, ...stranded.map(line)),
  );
}
