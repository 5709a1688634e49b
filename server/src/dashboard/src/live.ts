/// <reference lib="dom" />
/**
 * Live updates: Watch streams on the queues shown, each change folding into the throttled reads,
 * and the badge that says whether the page is live or only re-reading every few seconds.
 */
import { broker, needsKey } from './api.ts';
import { liveBadge } from './frame.ts';
import { afterStats, fail, refreshDetail, refreshJobs, refreshStats } from './load.ts';
import { POLL_MS, state } from './state.ts';

/** With "all queues" selected, at most this many queues are watched live (browsers allow ~6 connections per host over HTTP/1.1). */
const MAX_WATCHED = 3;

let watching = '';
let watchController: AbortController | null = null;

/** Shows the badge, and from now on re-picks the queues to watch whenever fresh stats are read. */
export function startLive(): void {
  afterStats(rewatch);
  renderLive();
}

/** Watches the selected queue, or the first few queues when all are shown; restarts only on change. */
export function rewatch(): void {
  const queues = state.queue ? [state.queue] : state.queues.slice(0, MAX_WATCHED).map((q) => q.queue);
  const key = queues.join('\n');
  if (key === watching) return;
  watching = key;
  watchController?.abort();
  watchController = new AbortController();
  for (const queue of queues) void watchQueue(queue, watchController.signal);
}

/** Reopens the streams even on the same queues, so a new API key takes effect now, not after their retry backoff. */
export function restartWatches(): void {
  watching = '';
  rewatch();
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

export function renderLive(): void {
  liveBadge.className = state.live > 0 ? 'live on' : 'live off';
  liveBadge.textContent = state.live > 0 ? '● live' : '○ polling';
  liveBadge.title = state.live > 0 ? `watching ${watching.split('\n').join(', ')}` : `re-reading every ${POLL_MS / 1000} s`;
}
