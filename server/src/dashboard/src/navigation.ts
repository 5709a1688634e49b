/// <reference lib="dom" />
/**
 * What the operator's clicks do: the action RPCs, the filters, paging, opening a job, and the URL's
 * hash that keeps the view.
 */
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { errorText, needsKey } from './api.ts';
import { showBanner } from './banner.ts';
import { rewatch } from './live.ts';
import { fail, ok, refreshAll, refreshDetail, refreshJobs } from './load.ts';
import { renderDetail, renderJobs, renderQueues, renderStatusButtons } from './render.ts';
import { STATUSES, state, statusName } from './state.ts';

/** Runs an action RPC, then re-reads what it changed. */
export function act(call: Promise<unknown>): void {
  call.then(
    () => {
      ok();
      refreshAll();
    },
    (error) => (needsKey(error) ? fail(error) : showBanner('error', errorText(error))),
  );
}

export function setFilter(change: { queue?: string; status?: JobStatus }): void {
  if (change.queue !== undefined) state.queue = change.queue;
  if (change.status !== undefined) state.status = change.status;
  state.pages = [''];
  writeHash();
  renderQueues();
  renderStatusButtons();
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
  if (state.selected) params.set('job', state.selected);
  history.replaceState(null, '', params.size ? `#${params}` : location.pathname);
}

export function readHash(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  state.queue = params.get('queue') ?? '';
  state.status = STATUSES.find(([, name]) => name === params.get('status'))?.[0] ?? JobStatus.UNSPECIFIED;
  state.selected = /^\d+$/.test(params.get('job') ?? '') ? params.get('job')! : '';
}
