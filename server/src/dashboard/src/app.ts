/// <reference lib="dom" />
/**
 * The Baton dashboard: queue health (oldest pending job, who serves each queue, a warning for those
 * nobody does), the connected workers, the last hour's throughput and failure rate, a job list with
 * filters, search and keyset paging, a job's detail with live progress, and the actions an operator
 * needs (cancel, retry, pause, resume, queue settings), kept live by Watch streams on the queues
 * shown. Built by `npm run build:dashboard` into ../bundle/app.js, which the broker serves.
 *
 * Made to stay fast on a table of millions of jobs: the list reads one page of 50 by id (keyset
 * paging, never OFFSET and never a total count), counts come from GetQueueStats at most every few
 * seconds however busy the queues are, and a burst of changes costs one refresh, not one per job.
 *
 * This file starts the page; the frame, the reads, the Watch streams, each view, navigation, the
 * dialogs and the banner are modules of their own.
 */
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { age } from './dom.ts';
import { frame, updated } from './frame.ts';
import { renderJobs } from './jobs-view.ts';
import { startLive } from './live.ts';
import { refreshAll, refreshDetail, refreshJobs } from './load.ts';
import { bindControls, readHash, select, setFilter } from './navigation.ts';
import { renderQueues, renderStatusButtons } from './render.ts';
import { POLL_MS, PROGRESS_MS, state } from './state.ts';

// Imports run one way, from here down: navigation (what clicks do) → confirm and queue-settings
// (the dialog) and live (Watch streams) → load (reads) → banner and the views (render, jobs-view,
// workers, charts) → frame → dom, state and api. The few calls that go back up
// are wired below: bindControls() gives the drawn controls their meaning, startLive() subscribes the
// streams to fresh stats.

document.body.replaceChildren(frame());
bindControls();
readHash();
renderStatusButtons();
renderQueues();
renderJobs();
startLive();
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
// Progress is not announced on Watch streams: while RUNNING jobs are shown, they are re-read.
setInterval(() => {
  if (state.detail?.status === JobStatus.RUNNING) refreshDetail();
  if (state.jobs.some((job) => job.status === JobStatus.RUNNING)) refreshJobs();
}, PROGRESS_MS);
setInterval(() => {
  updated.textContent = state.updatedAt ? `updated ${age(new Date(state.updatedAt))} ago` : '';
}, 1000);
