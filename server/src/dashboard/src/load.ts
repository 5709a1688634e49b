/**
 * Reading from the broker: the queue stats with the connected workers, the job list's page (or the
 * search's results) and the open job, each throttled so
 * that a burst of changes costs one read, and the banner kept in step with whether reads succeed.
 * Modules above this one that care about fresh stats (live.ts picks the queues it watches from them)
 * subscribe with `afterStats`, so reading imports no module above it.
 */
import { durationMs } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { admin, broker, errorText, needsKey, wasAborted } from './api.ts';
import { hideBanner, showBanner, showKeyPrompt } from './banner.ts';
import { renderCharts } from './charts.ts';
import { banner, searchNote } from './frame.ts';
import { renderDetail, renderJobs } from './jobs-view.ts';
import { renderQueues } from './render.ts';
import { describeSearch, parseSearch } from './search.ts';
import { MINUTES, state } from './state.ts';
import { renderWorkers } from './workers.ts';

const PAGE_SIZE = 50;

const statsListeners: (() => void)[] = [];

/** Calls `listener` after every successful read of the queue stats, once they are rendered. */
export function afterStats(listener: () => void): void {
  statsListeners.push(listener);
}

/**
 * Runs `task` at most once per `gapMs`; calls in between fold into one run after it. A call `now`
 * (after the operator's own action, whose outcome they wait to see) runs at once, or right after
 * the run under way.
 */
function throttle(task: () => Promise<void>, gapMs: number): (now?: boolean) => void {
  let running = false;
  /** A call came during the run under way: 'now' when one of them was the operator's. */
  let again: false | 'later' | 'now' = false;
  let last = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = (now = false): void => {
    if (running) {
      again = now || again === 'now' ? 'now' : 'later';
      return;
    }
    const wait = now ? 0 : last + gapMs - Date.now();
    if (wait > 0) {
      timer ??= setTimeout(() => {
        timer = undefined;
        run();
      }, wait);
      return;
    }
    clearTimeout(timer);
    timer = undefined;
    running = true;
    last = Date.now();
    task()
      .then(ok, fail)
      .finally(() => {
        running = false;
        if (again) {
          const urgent = again === 'now';
          again = false;
          run(urgent);
        }
      });
  };
  return run;
}

// Stats and workers are read together: the warning for a queue nobody serves compares the two.
export const refreshStats = throttle(async () => {
  const [stats, workers] = await Promise.all([admin.getQueueStats({ throughputMinutes: MINUTES }), admin.listWorkers({})]);
  if (!state.leaseTtlMs) {
    const info = await broker.getServerInfo({});
    state.leaseTtlMs = info.leaseTtl ? durationMs(info.leaseTtl) : 0;
  }
  state.queues = stats.queues;
  state.workers = workers.sessions;
  renderQueues();
  renderWorkers();
  renderCharts();
  for (const listener of statsListeners) listener();
}, 2000);

export const refreshJobs = throttle(async () => {
  const search = parseSearch(state.search);
  searchNote.textContent = search.kind === 'none' ? '' : `showing ${describeSearch(search)}`;
  if (search.kind === 'id') {
    // An id names one job, whatever the queue and status filters say.
    const job = await broker.get({ id: search.id }).then(
      (res) => res.job,
      (error) => {
        if (ConnectError.from(error).code === Code.NotFound) return undefined;
        throw error;
      },
    );
    state.jobs = job ? [job] : [];
    state.nextToken = '';
    renderJobs();
    return;
  }
  const res = await broker.list({
    queue: state.queue,
    statuses: state.status === JobStatus.UNSPECIFIED ? [] : [state.status],
    pageSize: PAGE_SIZE,
    pageToken: state.pages.at(-1),
    idempotencyKey: search.kind === 'key' ? search.key : '',
    labels: search.kind === 'labels' ? search.labels : {},
  });
  state.jobs = res.jobs;
  state.nextToken = res.nextPageToken;
  renderJobs();
}, 500);

export const refreshDetail = throttle(async () => {
  if (!state.selected) return;
  const id = state.selected;
  const res = await broker.get({ id });
  if (state.selected === id) {
    state.detail = res.job ?? null;
    renderDetail();
  }
}, 300);

/** Reads everything again; `now` after the operator's own action (see `throttle`). */
export function refreshAll(now = false): void {
  refreshStats(now);
  refreshJobs(now);
  refreshDetail(now);
}

export function ok(): void {
  state.updatedAt = Date.now();
  if (!banner.dataset.kind || banner.dataset.kind === 'error') hideBanner();
}

export function fail(error: unknown): void {
  if (wasAborted(error)) return;
  if (needsKey(error)) showKeyPrompt(errorText(error));
  else showBanner('error', errorText(error));
}
