/// <reference lib="dom" />
/**
 * What the operator's clicks do: the action RPCs (those that cannot be undone asked for first), the
 * queue settings form, the filters and the search, paging, opening a job, and the URL's hash that
 * keeps the view. The modules below draw the controls; `bindControls` gives them their meaning, so
 * imports run one way: app → navigation → bulk, schedules, confirm, queue-settings, live → load →
 * banner and the views (render, jobs-view, workers, charts) → frame → dom, state, api.
 */
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { admin, broker, errorText, needsKey } from './api.ts';
import { showBanner } from './banner.ts';
import { bindBulk, clearBulkSelection } from './bulk.ts';
import { renderCharts } from './charts.ts';
import { confirmAction } from './confirm.ts';
import { banner, detail, jobsBody, newer, older, queueSelect, queuesBody, searchForm, statusButtons } from './frame.ts';
import { renderDetail, renderJobs } from './jobs-view.ts';
import { restartWatches, rewatch } from './live.ts';
import { fail, ok, refreshAll, refreshDetail, refreshJobs, refreshStats } from './load.ts';
import { editQueueSettings } from './queue-settings.ts';
import { renderQueues, renderStatusButtons } from './render.ts';
import { bindSchedules } from './schedules.ts';
import { STATUSES, state, statusName } from './state.ts';

/**
 * Binds the page's controls, once at start: the queue filter and the pager of the frame and, with
 * one listener per container, what render.ts draws and marks with `data-action`, `data-status`,
 * `data-queue` or `data-job-id`. A key given in the banner re-reads and reopens the streams.
 */
export function bindControls(): void {
  bindBulk();
  bindSchedules();
  queueSelect.addEventListener('change', () => setFilter({ queue: queueSelect.value }));
  newer.addEventListener('click', () => page(-1));
  older.addEventListener('click', () => page(1));
  statusButtons.addEventListener('click', (event) => {
    const name = closest(event, '[data-status]')?.dataset.status;
    if (name !== undefined) setFilter({ status: STATUSES.find(([, n]) => n === name)?.[0] ?? JobStatus.UNSPECIFIED });
  });
  queuesBody.addEventListener('click', (event) => {
    const button = closest(event, '[data-action]');
    const queue = button?.closest<HTMLElement>('[data-queue]')?.dataset.queue;
    if (!button || queue === undefined) return;
    const action = button.dataset.action;
    if (action === 'filter') setFilter({ queue: queue === state.queue ? '' : queue });
    else if (action === 'resume') act(admin.resumeQueue({ queue }));
    else if (action === 'pause') {
      const message = `Its workers get no new jobs until it is resumed; running jobs finish, and Enqueue still stores new ones.`;
      void confirmAction({ title: `Pause ${queue}?`, message, confirm: 'Pause queue', keep: 'Keep running' }).then(
        (yes) => yes && act(admin.pauseQueue({ queue })),
      );
    } else if (action === 'settings') {
      const settings = state.queues.find((q) => q.queue === queue)?.settings;
      if (settings) editQueueSettings(settings, () => refreshStats(true));
    }
  });
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    setFilter({ search: String(new FormData(searchForm).get('q') ?? '') });
  });
  const openRow = (event: Event) => {
    const id = closest(event, '[data-job-id]')?.dataset.jobId;
    if (id) select(id);
  };
  jobsBody.addEventListener('click', openRow);
  jobsBody.addEventListener('keydown', (event) => event.key === 'Enter' && openRow(event));
  detail.addEventListener('click', (event) => {
    const button = closest(event, '[data-action]');
    const id = button?.dataset.jobId ?? '';
    if (button?.dataset.action === 'close') select('');
    else if (button?.dataset.action === 'cancel') {
      const running = state.detail?.status === JobStatus.RUNNING;
      const message = running
        ? 'The worker running it is told to stop; the job becomes CANCELLED when its handler returns. It can be retried afterwards.'
        : 'It will not run. It can be retried afterwards, with a fresh set of attempts.';
      void confirmAction({ title: `Cancel job ${id}?`, message, confirm: 'Cancel job', keep: 'Keep job' }).then((yes) => yes && act(broker.cancel({ id })));
    } else if (button?.dataset.action === 'retry') act(broker.retry({ id }));
  });
  // banner.ts has stored the key and hidden itself by the time the form's submit bubbles up here.
  banner.addEventListener('submit', () => {
    refreshAll();
    restartWatches();
  });
}

/** The element matching `selector` that the event happened in, if any. */
function closest(event: Event, selector: string): HTMLElement | null {
  return event.target instanceof Element ? event.target.closest<HTMLElement>(selector) : null;
}

/** Runs an action RPC, then re-reads what it changed. */
export function act(call: Promise<unknown>): void {
  call.then(
    () => {
      ok();
      refreshAll(true);
    },
    (error) => (needsKey(error) ? fail(error) : showBanner('error', errorText(error))),
  );
}

export function setFilter(change: { queue?: string; status?: JobStatus; search?: string }): void {
  if (change.queue !== undefined) state.queue = change.queue;
  if (change.status !== undefined) state.status = change.status;
  if (change.search !== undefined) state.search = change.search.trim();
  state.pages = [''];
  clearBulkSelection();
  writeHash();
  renderQueues();
  renderCharts();
  renderStatusButtons();
  searchInput().value = state.search;
  rewatch();
  refreshJobs();
}

export function page(step: 1 | -1): void {
  if (step === 1 && state.nextToken) state.pages.push(state.nextToken);
  if (step === -1 && state.pages.length > 1) state.pages.pop();
  refreshJobs();
}

export function select(id: string): void {
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
  if (state.search) params.set('q', state.search);
  if (state.selected) params.set('job', state.selected);
  history.replaceState(null, '', params.size ? `#${params}` : location.pathname);
}

export function readHash(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  state.queue = params.get('queue') ?? '';
  state.status = STATUSES.find(([, name]) => name === params.get('status'))?.[0] ?? JobStatus.UNSPECIFIED;
  state.selected = /^\d+$/.test(params.get('job') ?? '') ? params.get('job')! : '';
  state.search = params.get('q') ?? '';
  searchInput().value = state.search;
}

function searchInput(): HTMLInputElement {
  return searchForm.elements.namedItem('q') as HTMLInputElement;
}
