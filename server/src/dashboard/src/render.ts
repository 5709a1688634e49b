/// <reference lib="dom" />
/**
 * Rendering the state into the frame: the summary cards, the queue table with its throughput
 * sparklines, the status filter, the job list and the open job's detail.
 *
 * Only the view: a control says what it is for in `data-action` (with the `data-queue`,
 * `data-status` or `data-job-id` it acts on), and navigation.ts, which owns what clicks do, handles
 * them with one listener per container. So rendering imports no module above it.
 */
import { toJson } from '@bufbuild/protobuf';
import { timestampDate, ValueSchema, type Timestamp, type Value } from '@bufbuild/protobuf/wkt';
import type { QueueStats } from '@baton/worker-sdk/gen/admin';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { age, count, fill, h, svg, when } from './dom.ts';
import { detail, jobsBody, newer, older, pageLabel, queueSelect, queuesBody, statusButtons, summary } from './frame.ts';
import { STATUSES, state, statusName } from './state.ts';

const date = (t: Timestamp | undefined) => (t ? timestampDate(t) : undefined);
const jsonText = (v: Value | undefined) => (v ? JSON.stringify(toJson(ValueSchema, v), null, 2) : '');
const badge = (status: JobStatus) => h('span', { class: `badge s-${statusName(status)}` }, statusName(status).toUpperCase());

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
  if (state.queues.length === 0) {
    fill(queuesBody, h('tr', {}, h('td', { colspan: 12, class: 'empty' }, 'No queues yet: they appear with their first job.')));
  } else {
    fill(
      queuesBody,
      ...state.queues.map((q) => {
        const paused = q.settings?.paused ?? false;
        const limit = q.settings?.concurrency ? ` · max ${q.settings.concurrency}` : '';
        const counts = [q.pending, q.scheduled, q.running, q.completed, q.failed, q.cancelled];
        return h(
          'tr',
          { 'data-queue': q.queue, class: q.queue === state.queue ? 'selected' : '' },
          h('td', {}, h('button', { class: 'link', 'data-action': 'filter' }, q.queue)),
          ...counts.map((n, i) => h('td', { class: `num${n > 0n && i >= 4 ? ` s-${STATUSES[i][1]}` : ''}` }, count(n))),
          h('td', { class: 'num' }, count(q.total)),
          h(
            'td',
            {},
            h(
              'div',
              { class: 'throughput' },
              sparkline(q.completedPerMinute, q.failedPerMinute),
              h('span', {}, `${count(q.completedPerMinute.at(-1) ?? 0n)}/min`),
            ),
          ),
          h('td', {}, h('span', { class: paused ? 'state paused' : 'state' }, paused ? 'paused' : 'active'), limit),
          h('td', {}, h('button', { 'data-action': paused ? 'resume' : 'pause' }, paused ? 'Resume' : 'Pause')),
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

export function renderJobs(): void {
  const now = Date.now();
  if (state.jobs.length === 0) {
    fill(jobsBody, h('tr', {}, h('td', { colspan: 6, class: 'empty' }, state.pages.length > 1 ? 'No older jobs.' : 'No jobs match.')));
  } else {
    fill(
      jobsBody,
      ...state.jobs.map((job) =>
        h(
          'tr',
          { 'data-job-id': job.id, class: job.id === state.selected ? 'selected' : '', tabindex: 0 },
          h('td', { class: 'num' }, job.id),
          h('td', {}, job.queue),
          h('td', { class: 'status' }, badge(job.status)),
          h('td', { class: 'num' }, `${job.attempt}/${job.maxAttempts}`),
          h('td', { class: 'num', title: date(job.createdAt)?.toLocaleString() ?? '' }, age(date(job.createdAt), now)),
          h('td', { class: 'error-cell', title: job.errors.at(-1)?.message ?? '' }, job.errors.at(-1)?.message ?? ''),
        ),
      ),
    );
  }
  newer.disabled = state.pages.length <= 1;
  older.disabled = !state.nextToken;
  pageLabel.textContent = `page ${state.pages.length}`;
}

export function renderDetail(): void {
  const job = state.detail;
  detail.hidden = !job;
  if (!job) return;
  const now = Date.now();
  const canCancel = job.status === JobStatus.PENDING || job.status === JobStatus.SCHEDULED || (job.status === JobStatus.RUNNING && !job.cancelRequested);
  const canRetry = job.status === JobStatus.FAILED || job.status === JobStatus.CANCELLED;
  const field = (name: string, value: string | Node) => [h('dt', {}, name), h('dd', {}, value)];
  const labels = Object.entries(job.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  fill(
    detail,
    h(
      'div',
      { class: 'detail-head' },
      h('h2', {}, `Job ${job.id}`),
      badge(job.status),
      h('span', { class: 'spacer' }),
      h('button', { class: 'close', 'aria-label': 'Close', 'data-action': 'close' }, '×'),
    ),
    h(
      'div',
      { class: 'actions' },
      canCancel && h('button', { class: 'danger', 'data-action': 'cancel', 'data-job-id': job.id }, 'Cancel'),
      canRetry && h('button', { 'data-action': 'retry', 'data-job-id': job.id }, 'Retry'),
      job.cancelRequested && job.status === JobStatus.RUNNING && h('span', { class: 'muted' }, 'Cancel requested: waiting for the worker to stop.'),
    ),
    h(
      'dl',
      {},
      ...field('Queue', job.queue),
      ...field('Attempt', `${job.attempt} of ${job.maxAttempts}`),
      ...field('Priority', String(job.priority)),
      ...field('Created', when(date(job.createdAt), now)),
      ...field('Run at', when(date(job.runAt), now)),
      ...field('Started', when(date(job.startedAt), now)),
      ...field('Finished', when(date(job.finishedAt), now)),
      ...field('Worker', job.workerId || '–'),
      ...(job.idempotencyKey ? field('Key', job.idempotencyKey) : []),
      ...(labels ? field('Labels', labels) : []),
      ...(job.traceparent ? field('Trace', job.traceparent) : []),
    ),
    h('h3', {}, 'Payload'),
    h('pre', { class: 'json', id: 'detail-payload' }, jsonText(job.payload)),
    job.result && h('h3', {}, 'Result'),
    job.result && h('pre', { class: 'json', id: 'detail-result' }, jsonText(job.result)),
    job.progress && h('h3', {}, 'Progress'),
    job.progress && h('pre', { class: 'json' }, jsonText(job.progress)),
    h('h3', {}, `Errors (${job.errors.length})`),
    job.errors.length === 0
      ? h('p', { class: 'muted' }, 'No failed attempts.')
      : h(
          'ol',
          { class: 'errors' },
          ...job.errors.map((e) =>
            h(
              'li',
              {},
              h('div', { class: 'muted' }, `attempt ${e.attempt} · ${date(e.at)?.toLocaleString() ?? ''}${e.workerId ? ` · ${e.workerId}` : ''}`),
              h('pre', {}, e.message),
            ),
          ),
        ),
  );
}
