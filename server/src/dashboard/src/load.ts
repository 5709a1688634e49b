/**
 * Reading from the broker: the queue stats, the job list's page and the open job, each throttled so
 * that a burst of changes costs one read, and the banner kept in step with whether reads succeed.
 * Modules above this one that care about fresh stats (live.ts picks the queues it watches from them)
 * subscribe with `afterStats`, so reading imports no module above it.
 */
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { admin, broker, errorText, needsKey, wasAborted } from './api.ts';
import { hideBanner, showBanner, showKeyPrompt } from './banner.ts';
import { banner } from './frame.ts';
import { renderDetail, renderJobs, renderQueues } from './render.ts';
import { MINUTES, state } from './state.ts';

const PAGE_SIZE = 50;

const statsListeners: (() => void)[] = [];

/** Calls `listener` after every successful read of the queue stats, once they are rendered. */
export function afterStats(listener: () => void): void {
  statsListeners.push(listener);
}

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

export const refreshStats = throttle(async () => {
  const res = await admin.getQueueStats({ throughputMinutes: MINUTES });
  state.queues = res.queues;
  renderQueues();
  for (const listener of statsListeners) listener();
}, 2000);

export const refreshJobs = throttle(async () => {
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

export const refreshDetail = throttle(async () => {
  if (!state.selected) return;
  const id = state.selected;
  const res = await broker.get({ id });
  if (state.selected === id) {
    state.detail = res.job ?? null;
    renderDetail();
  }
}, 300);

export function refreshAll(): void {
  refreshStats();
  refreshJobs();
  refreshDetail();
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
