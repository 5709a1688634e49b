/// <reference lib="dom" />
/**
 * The Baton dashboard: queue health, a job list with filters and keyset paging, a job's detail and
 * the actions an operator needs (cancel, retry, pause, resume), kept live by Watch streams on the
 * queues shown. Built by `npm run build:dashboard` into ../bundle/app.js, which the broker serves.
 *
 * Made to stay fast on a table of millions of jobs: the list reads one page of 50 by id (keyset
 * paging, never OFFSET and never a total count), counts come from GetQueueStats at most every few
 * seconds however busy the queues are, and a burst of changes costs one refresh, not one per job.
 */
import { toJson } from '@bufbuild/protobuf';
import { timestampDate, ValueSchema, type Timestamp, type Value } from '@bufbuild/protobuf/wkt';
import type { QueueStats } from '../../gen/baton/v1/admin_pb.ts';
import { type Job, JobStatus } from '../../gen/baton/v1/job_pb.ts';
import { admin, broker, errorText, getToken, needsKey, setToken, wasAborted } from './api.ts';
import { age, count, fill, h, svg, when } from './dom.ts';

const PAGE_SIZE = 50;
/** Minutes of throughput shown per queue. */
const MINUTES = 10;
/** With "all queues" selected, at most this many queues are watched live (browsers allow ~6 connections per host over HTTP/1.1). */
const MAX_WATCHED = 3;
/** Everything is re-read at least this often, for queues not watched and for the ages shown. */
const POLL_MS = 10_000;

const STATUSES: [JobStatus, string][] = [
  [JobStatus.PENDING, 'pending'],
  [JobStatus.SCHEDULED, 'scheduled'],
  [JobStatus.RUNNING, 'running'],
  [JobStatus.COMPLETED, 'completed'],
  [JobStatus.FAILED, 'failed'],
  [JobStatus.CANCELLED, 'cancelled'],
];
const statusName = (status: JobStatus) => STATUSES.find(([s]) => s === status)?.[1] ?? 'unknown';

const state = {
  queue: '',
  status: JobStatus.UNSPECIFIED as JobStatus,
  /** Page tokens from the first page ('') to the current one: "Newer" pops, "Older" pushes. */
  pages: [''],
  nextToken: '',
  selected: '',
  queues: [] as QueueStats[],
  jobs: [] as Job[],
  detail: null as Job | null,
  live: 0,
  updatedAt: 0,
};

// ---- The page's fixed frame -------------------------------------------------------------------

const banner = h('div', { id: 'banner', role: 'alert', hidden: true });
const liveBadge = h('span', { id: 'live', class: 'live off' }, 'connecting…');
const updated = h('span', { id: 'updated', class: 'muted' });
const summary = h('section', { id: 'summary', class: 'cards' });
const queuesBody = h('tbody');
const queueSelect = h('select', { id: 'queue-filter', 'aria-label': 'Queue', onchange: () => setFilter({ queue: queueSelect.value }) });
const statusButtons = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Status' });
const jobsBody = h('tbody');
const newer = h('button', { id: 'newer', onclick: () => page(-1) }, '← Newer');
const older = h('button', { id: 'older', onclick: () => page(1) }, 'Older →');
const pageLabel = h('span', { class: 'muted' });
const detail = h('aside', { id: 'detail', hidden: true, 'aria-label': 'Job detail' });

function frame(): HTMLElement {
  const th = (text: string, cls = '') => h('th', { class: cls }, text);
  return h(
    'div',
    { class: 'layout' },
    h('header', {}, h('h1', {}, 'Baton'), h('span', { class: 'muted' }, location.host), h('span', { class: 'spacer' }), updated, liveBadge),
    banner,
    h(
      'main',
      {},
      summary,
      h(
        'section',
        { class: 'panel' },
        h('h2', {}, 'Queues'),
        h(
          'table',
          { id: 'queues' },
          h(
            'thead',
            {},
            h('tr', {}, th('Queue'), ...STATUSES.map(([, name]) => th(name[0].toUpperCase() + name.slice(1), 'num')), th('Total', 'num'), th(`Completed / min, last ${MINUTES} min`), th('State'), th('')),
          ),
          queuesBody,
        ),
      ),
      h(
        'div',
        { class: 'split' },
        h(
          'section',
          { class: 'panel jobs' },
          h('div', { class: 'toolbar' }, h('h2', {}, 'Jobs'), queueSelect, statusButtons),
          h('table', { id: 'jobs' }, h('thead', {}, h('tr', {}, th('ID', 'num'), th('Queue'), th('Status'), th('Attempts', 'num'), th('Age', 'num'), th('Last error'))), jobsBody),
          h('div', { class: 'pager' }, newer, pageLabel, older),
        ),
        detail,
      ),
    ),
  );
}

// ---- Loading ----------------------------------------------------------------------------------

/** Runs `task` at most once per `gapMs`; calls in between fold into one run after it. */
function throttle(task: () => Promise<void>, gapMs: number): () => void {
  let running = false;
  let again = false;
  let last = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    const wait = last + gapMs - Date.now();
    if (wait > 0) {
      timer ??= setTimeout(() => {
        timer = undefined;
        run();
      }, wait);
      return;
    }
    running = true;
    last = Date.now();
    task()
      .then(ok, fail)
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          run();
        }
      });
  };
  return run;
}

const refreshStats = throttle(async () => {
  const res = await admin.getQueueStats({ throughputMinutes: MINUTES });
  state.queues = res.queues;
  renderQueues();
  rewatch();
}, 2000);

const refreshJobs = throttle(async () => {
  const res = await broker.list({
    queue: state.queue,
    statuses: state.status === JobStatus.UNSPECIFIED ? [] : [state.status],
    pageSize: PAGE_SIZE,
    pageToken: state.pages.at(-1),
  });
  state.jobs = res.jobs;
  state.nextToken = res.nextPageToken;
  renderJobs();
}, 500);

const refreshDetail = throttle(async () => {
  if (!state.selected) return;
  const id = state.selected;
  const res = await broker.get({ id });
  if (state.selected === id) {
    state.detail = res.job ?? null;
    renderDetail();
  }
}, 300);

function refreshAll(): void {
  refreshStats();
  refreshJobs();
  refreshDetail();
}

function ok(): void {
  state.updatedAt = Date.now();
  if (!banner.dataset.kind || banner.dataset.kind === 'error') hideBanner();
}

function fail(error: unknown): void {
  if (wasAborted(error)) return;
  if (needsKey(error)) showKeyPrompt(errorText(error));
  else showBanner('error', errorText(error));
}

// ---- Live updates -----------------------------------------------------------------------------

let watching = '';
let watchController: AbortController | null = null;

/** Watches the selected queue, or the first few queues when all are shown; restarts only on change. */
function rewatch(): void {
  const queues = state.queue ? [state.queue] : state.queues.slice(0, MAX_WATCHED).map((q) => q.queue);
  const key = queues.join('\n');
  if (key === watching) return;
  watching = key;
  watchController?.abort();
  watchController = new AbortController();
  for (const queue of queues) void watchQueue(queue, watchController.signal);
}

async function watchQueue(queue: string, signal: AbortSignal): Promise<void> {
  for (let failures = 0; !signal.aborted; failures++) {
    let counted = false;
    try {
      const stream = broker.watch({ queue }, { signal });
      state.live++;
      counted = true;
      renderLive();
      for await (const change of stream) {
        failures = 0;
        refreshJobs();
        refreshStats();
        if (change.job?.id === state.selected) refreshDetail();
      }
    } catch (error) {
      if (signal.aborted) return;
      if (needsKey(error)) fail(error);
    } finally {
      if (counted) state.live--;
      renderLive();
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** failures)));
  }
}

function renderLive(): void {
  liveBadge.className = state.live > 0 ? 'live on' : 'live off';
  liveBadge.textContent = state.live > 0 ? '● live' : '○ polling';
  liveBadge.title = state.live > 0 ? `watching ${watching.split('\n').join(', ')}` : `re-reading every ${POLL_MS / 1000} s`;
}

// ---- Rendering --------------------------------------------------------------------------------

const date = (t: Timestamp | undefined) => (t ? timestampDate(t) : undefined);
const jsonText = (v: Value | undefined) => (v ? JSON.stringify(toJson(ValueSchema, v), null, 2) : '');
const badge = (status: JobStatus) => h('span', { class: `badge s-${statusName(status)}` }, statusName(status).toUpperCase());

function renderSummary(): void {
  const sum = (pick: (q: QueueStats) => bigint | number) => state.queues.reduce((total, q) => total + Number(pick(q)), 0);
  const card = (label: string, value: number, cls = '') => h('div', { class: `card ${cls}` }, h('div', { class: 'value' }, count(value)), h('div', { class: 'label' }, label));
  fill(
    summary,
    card('Total', sum((q) => q.total)),
    card('Pending', sum((q) => q.pending), 's-pending'),
    card('Scheduled', sum((q) => q.scheduled), 's-scheduled'),
    card('Running', sum((q) => q.running), 's-running'),
    card('Completed', sum((q) => q.completed), 's-completed'),
    card('Failed', sum((q) => q.failed), 's-failed'),
    card('Cancelled', sum((q) => q.cancelled), 's-cancelled'),
    card('Completed last min', sum((q) => q.completedPerMinute.at(-1) ?? 0n)),
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

function renderQueues(): void {
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
          h('td', {}, h('button', { class: 'link', onclick: () => setFilter({ queue: q.queue === state.queue ? '' : q.queue }) }, q.queue)),
          ...counts.map((n, i) => h('td', { class: `num${n > 0n && i >= 4 ? ` s-${STATUSES[i][1]}` : ''}` }, count(n))),
          h('td', { class: 'num' }, count(q.total)),
          h('td', {}, h('div', { class: 'throughput' }, sparkline(q.completedPerMinute, q.failedPerMinute), h('span', {}, `${count(q.completedPerMinute.at(-1) ?? 0n)}/min`))),
          h('td', {}, h('span', { class: paused ? 'state paused' : 'state' }, paused ? 'paused' : 'active'), limit),
          h('td', {}, h('button', { onclick: () => act(paused ? admin.resumeQueue({ queue: q.queue }) : admin.pauseQueue({ queue: q.queue })) }, paused ? 'Resume' : 'Pause')),
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

function renderStatusButtons(): void {
  const all: [JobStatus, string][] = [[JobStatus.UNSPECIFIED, 'all'], ...STATUSES];
  fill(
    statusButtons,
    ...all.map(([status, name]) =>
      h('button', { 'aria-pressed': String(state.status === status), 'data-status': name, onclick: () => setFilter({ status }) }, name[0].toUpperCase() + name.slice(1)),
    ),
  );
}

function renderJobs(): void {
  const now = Date.now();
  if (state.jobs.length === 0) {
    fill(jobsBody, h('tr', {}, h('td', { colspan: 6, class: 'empty' }, state.pages.length > 1 ? 'No older jobs.' : 'No jobs match.')));
  } else {
    fill(
      jobsBody,
      ...state.jobs.map((job) =>
        h(
          'tr',
          { 'data-job-id': job.id, class: job.id === state.selected ? 'selected' : '', tabindex: 0, onclick: () => select(job.id), onkeydown: (e: Event) => (e as KeyboardEvent).key === 'Enter' && select(job.id) },
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

function renderDetail(): void {
  const job = state.detail;
  detail.hidden = !job;
  if (!job) return;
  const now = Date.now();
  const canCancel = job.status === JobStatus.PENDING || job.status === JobStatus.SCHEDULED || (job.status === JobStatus.RUNNING && !job.cancelRequested);
  const canRetry = job.status === JobStatus.FAILED || job.status === JobStatus.CANCELLED;
  const field = (name: string, value: string | Node) => [h('dt', {}, name), h('dd', {}, value)];
  const labels = Object.entries(job.labels).map(([k, v]) => `${k}=${v}`).join(', ');
  fill(
    detail,
    h('div', { class: 'detail-head' }, h('h2', {}, `Job ${job.id}`), badge(job.status), h('span', { class: 'spacer' }), h('button', { class: 'close', 'aria-label': 'Close', onclick: () => select('') }, '×')),
    h(
      'div',
      { class: 'actions' },
      canCancel && h('button', { class: 'danger', onclick: () => act(broker.cancel({ id: job.id })) }, 'Cancel'),
      canRetry && h('button', { onclick: () => act(broker.retry({ id: job.id })) }, 'Retry'),
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
            h('li', {}, h('div', { class: 'muted' }, `attempt ${e.attempt} · ${date(e.at)?.toLocaleString() ?? ''}${e.workerId ? ` · ${e.workerId}` : ''}`), h('pre', {}, e.message)),
          ),
        ),
  );
}

// ---- Actions and navigation -------------------------------------------------------------------

/** Runs an action RPC, then re-reads what it changed. */
function act(call: Promise<unknown>): void {
  call.then(
    () => {
      ok();
      refreshAll();
    },
    (error) => (needsKey(error) ? fail(error) : showBanner('error', errorText(error))),
  );
}

function setFilter(change: { queue?: string; status?: JobStatus }): void {
  if (change.queue !== undefined) state.queue = change.queue;
  if (change.status !== undefined) state.status = change.status;
  state.pages = [''];
  writeHash();
  renderQueues();
  renderStatusButtons();
  rewatch();
  refreshJobs();
}

function page(step: 1 | -1): void {
  if (step === 1 && state.nextToken) state.pages.push(state.nextToken);
  if (step === -1 && state.pages.length > 1) state.pages.pop();
  refreshJobs();
}

function select(id: string): void {
  state.selected = id;
  state.detail = null;
  writeHash();
  renderJobs();
  renderDetail();
  refreshDetail();
}

/** The filters and the open job live in the URL's hash, so a view can be bookmarked and shared. */
function writeHash(): void {
  const params = new URLSearchParams();
  if (state.queue) params.set('queue', state.queue);
  if (state.status !== JobStatus.UNSPECIFIED) params.set('status', statusName(state.status));
  if (state.selected) params.set('job', state.selected);
  history.replaceState(null, '', params.size ? `#${params}` : location.pathname);
}

function readHash(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  state.queue = params.get('queue') ?? '';
  state.status = STATUSES.find(([, name]) => name === params.get('status'))?.[0] ?? JobStatus.UNSPECIFIED;
  state.selected = /^\d+$/.test(params.get('job') ?? '') ? params.get('job')! : '';
}

// ---- Banner: errors and the API key -----------------------------------------------------------

function showBanner(kind: 'error' | 'key', ...content: (Node | string)[]): void {
  banner.dataset.kind = kind;
  banner.className = kind;
  fill(banner, ...content);
  banner.hidden = false;
}

function hideBanner(): void {
  banner.hidden = true;
  delete banner.dataset.kind;
}

function showKeyPrompt(message: string): void {
  if (banner.dataset.kind === 'key') return;
  const input = h('input', { type: 'password', placeholder: 'API key', autocomplete: 'off', 'aria-label': 'API key' });
  const form = h(
    'form',
    {
      onsubmit: (event: Event) => {
        event.preventDefault();
        setToken(input.value.trim());
        hideBanner();
        watching = '';
        refreshAll();
        rewatch();
      },
    },
    input,
    h('button', { type: 'submit' }, 'Use key'),
  );
  showBanner('key', h('p', {}, `${message}. `, getToken() ? 'The key given was refused; ' : '', 'This broker needs an API key with the admin scope (create one with "baton keys create --scope admin"). It is kept in this tab only.'), form);
}

// ---- Start ------------------------------------------------------------------------------------

document.body.replaceChildren(frame());
readHash();
renderStatusButtons();
renderQueues();
renderJobs();
renderLive();
refreshAll();
window.addEventListener('hashchange', () => {
  readHash();
  setFilter({});
  select(state.selected);
});
setInterval(() => {
  refreshAll();
  updated.textContent = state.updatedAt ? `updated ${age(new Date(state.updatedAt))} ago` : '';
}, POLL_MS);
setInterval(() => {
  updated.textContent = state.updatedAt ? `updated ${age(new Date(state.updatedAt))} ago` : '';
}, 1000);
