/// <reference lib="dom" />
/**
 * The job list and the open job's detail. The list shows what an operator sorts jobs out by
 * (priority, when each may run, how long it ran, on which worker, how far it got); the detail is a
 * side panel fixed to the window, so it is in view wherever the list was scrolled to.
 *
 * Only the view, as render.ts: controls carry `data-action` and navigation.ts handles them.
 */
import { toJson } from '@bufbuild/protobuf';
import { timestampDate, ValueSchema, type Timestamp, type Value } from '@bufbuild/protobuf/wkt';
import { type Job, JobStatus } from '@baton/worker-sdk/gen/job';
import { age, fill, h, meter, when } from './dom.ts';
import { detail, jobsBody, newer, older, pageLabel } from './frame.ts';
import { state, statusName } from './state.ts';

const date = (t: Timestamp | undefined) => (t ? timestampDate(t) : undefined);
const jsonValue = (v: Value | undefined) => (v ? toJson(ValueSchema, v) : undefined);
const jsonText = (v: Value | undefined) => (v ? JSON.stringify(jsonValue(v), null, 2) : '');
const badge = (status: JobStatus) => h('span', { class: `badge s-${statusName(status)}` }, statusName(status).toUpperCase());

/** "850ms", "12s", "4m 05s", "2h 10m". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** How long the current (or last) attempt ran: from its start to its finish, or to now while RUNNING. */
function runTime(job: Job, now: number): string {
  const started = date(job.startedAt);
  if (!started) return '–';
  const end = job.status === JobStatus.RUNNING ? now : date(job.finishedAt)?.getTime();
  return end === undefined ? '–' : duration(end - started.getTime());
}

/**
 * A fraction done, when the progress a worker reported says one: a number (0-1, or a percentage up
 * to 100), or an object with `percent`, or `done` (or `current`) and `total`. Anything else is shown
 * as its JSON text.
 */
export function progressFraction(progress: unknown): number | undefined {
  const clamp = (x: number) => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : undefined);
  if (typeof progress === 'number') return clamp(progress <= 1 ? progress : progress / 100);
  if (progress && typeof progress === 'object' && !Array.isArray(progress)) {
    const p = progress as Record<string, unknown>;
    if (typeof p.percent === 'number') return clamp(p.percent / 100);
    const done = typeof p.done === 'number' ? p.done : p.current;
    if (typeof done === 'number' && typeof p.total === 'number' && p.total > 0) return clamp(done / p.total);
  }
  return undefined;
}

function progressView(job: Job): Node | string {
  const value = jsonValue(job.progress);
  if (value === undefined || value === null) return '';
  const fraction = progressFraction(value);
  const textual = JSON.stringify(value);
  if (fraction === undefined) return h('span', { class: 'progress-text', title: textual }, textual);
  return h('span', { class: 'progress', title: textual }, meter(fraction), `${Math.round(fraction * 100)}%`);
}

export function renderJobs(): void {
  const now = Date.now();
  if (state.jobs.length === 0) {
    const message = state.pages.length > 1 ? 'No older jobs.' : 'No jobs match.';
    fill(jobsBody, h('tr', {}, h('td', { colspan: 11, class: 'empty' }, message)));
  } else {
    fill(
      jobsBody,
      ...state.jobs.map((job) => {
        const runAt = date(job.runAt);
        const lastError = job.errors.at(-1)?.message ?? '';
        return h(
          'tr',
          { 'data-job-id': job.id, class: job.id === state.selected ? 'selected' : '', tabindex: 0 },
          h('td', { class: 'num' }, job.id),
          h('td', {}, job.queue),
          h('td', { class: 'status' }, badge(job.status)),
          h('td', { class: 'num' }, job.priority),
          h('td', { class: 'num' }, `${job.attempt}/${job.maxAttempts}`),
          h('td', { class: 'num run-at', title: runAt?.toLocaleString() ?? '' }, runAtText(runAt, now)),
          h('td', { class: 'num duration' }, runTime(job, now)),
          h('td', { class: 'worker', title: job.workerId }, job.workerId || '–'),
          h('td', { class: 'progress-cell' }, progressView(job)),
          h('td', { class: 'num', title: date(job.createdAt)?.toLocaleString() ?? '' }, age(date(job.createdAt), now)),
          h('td', { class: 'error-cell', title: lastError }, lastError),
        );
      }),
    );
  }
  newer.disabled = state.pages.length <= 1;
  older.disabled = !state.nextToken;
  pageLabel.textContent = `page ${state.pages.length}`;
}

/** "in 5m" for a time to come, "3s ago" for one past. */
function runAtText(runAt: Date | undefined, now: number): string {
  if (!runAt) return '–';
  return runAt.getTime() > now ? `in ${age(new Date(now), runAt.getTime())}` : `${age(runAt, now)} ago`;
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
    job.progress && h('div', { class: 'detail-progress', id: 'detail-progress' }, progressView(job)),
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
      ...field('Duration', runTime(job, now)),
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
    job.progress && h('pre', { class: 'json', id: 'detail-progress-json' }, jsonText(job.progress)),
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
