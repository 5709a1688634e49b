/// <reference lib="dom" />
/**
 * The last hour of the selected queue (or of all queues together): jobs finished per minute, the
 * share of them that failed, and how long the jobs that started waited. From GetQueueStats'
 * per-minute series, which the broker keeps (a rollup in the database), so the charts need nothing
 * kept in the page and survive a reload.
 */
import { count, fill, h, svg } from './dom.ts';
import { charts, chartsScope } from './frame.ts';
import { MINUTES, state } from './state.ts';

const WIDTH = 360;
const HEIGHT = 90;
const AXIS = 32;

/** The selected queue's series, or every queue's added up. */
function series(): { completed: number[]; failed: number[]; started: number[]; meanWaitMs: number[] } {
  const shown = state.queue ? state.queues.filter((q) => q.queue === state.queue) : state.queues;
  const completed = new Array<number>(MINUTES).fill(0);
  const failed = new Array<number>(MINUTES).fill(0);
  const started = new Array<number>(MINUTES).fill(0);
  const waitedMs = new Array<number>(MINUTES).fill(0);
  for (const q of shown) {
    // Aligned on the newest minute, in case a series is shorter than asked for.
    q.completedPerMinute.forEach((n, i) => (completed[MINUTES - q.completedPerMinute.length + i] += Number(n)));
    q.failedPerMinute.forEach((n, i) => (failed[MINUTES - q.failedPerMinute.length + i] += Number(n)));
    q.startedPerMinute.forEach((n, i) => {
      const minute = MINUTES - q.startedPerMinute.length + i;
      started[minute] += Number(n);
      // Queues' means weighted by how many started in each, so that all queues add up to one mean.
      waitedMs[minute] += Number(n) * (q.meanWaitMsPerMinute[i] ?? 0);
    });
  }
  return { completed, failed, started, meanWaitMs: waitedMs.map((ms, i) => (started[i] > 0 ? ms / started[i] : 0)) };
}

/** Milliseconds as a person reads them. */
function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

function text(x: number, y: number, content: string, anchor = 'start'): SVGElement {
  const element = svg('text', { x, y, 'text-anchor': anchor, class: 'axis' });
  element.textContent = content;
  return element;
}

/** Bars per minute, oldest on the left, with the top value and the time axis written on it. */
function chart(id: string, label: string, bars: { value: number; cls: string; title: string }[][], top: number, topLabel: string): HTMLElement {
  const plot = WIDTH - AXIS;
  const step = plot / MINUTES;
  const rects = bars.flatMap((stack, i) => {
    let y = HEIGHT;
    return stack.map(({ value, cls, title }) => {
      const height = top > 0 ? (value / top) * (HEIGHT - 4) : 0;
      y -= height;
      const rect = svg('rect', { x: AXIS + i * step + 0.5, y, width: Math.max(1, step - 1), height, class: cls });
      const tip = svg('title', {});
      tip.textContent = title;
      rect.append(tip);
      return rect;
    });
  });
  return h(
    'figure',
    { class: 'chart', id },
    h('figcaption', {}, label),
    svg(
      'svg',
      { width: WIDTH, height: HEIGHT + 16, viewBox: `0 0 ${WIDTH} ${HEIGHT + 16}`, role: 'img', 'aria-label': label },
      svg('line', { x1: AXIS, y1: HEIGHT + 0.5, x2: WIDTH, y2: HEIGHT + 0.5, class: 'baseline' }),
      text(AXIS - 4, 10, topLabel, 'end'),
      text(AXIS - 4, HEIGHT, '0', 'end'),
      text(AXIS, HEIGHT + 13, `${MINUTES} min ago`),
      text(WIDTH, HEIGHT + 13, 'now', 'end'),
      ...rects,
    ) as unknown as Node,
  );
}

export function renderCharts(): void {
  const { completed, failed, started, meanWaitMs } = series();
  chartsScope.textContent = state.queue ? state.queue : 'all queues';
  const ago = (i: number) => `${MINUTES - i} min ago`;
  const totals = completed.map((c, i) => c + failed[i]);
  const done = completed.reduce((a, b) => a + b, 0);
  const bad = failed.reduce((a, b) => a + b, 0);
  const busiest = Math.max(0, ...totals);
  const throughput = chart(
    'chart-throughput',
    `Finished per minute: ${count(done)} completed, ${count(bad)} failed`,
    completed.map((c, i) => [
      { value: c, cls: 'bar-ok', title: `${ago(i)}: ${c} completed` },
      { value: failed[i], cls: 'bar-failed', title: `${ago(i)}: ${failed[i]} failed` },
    ]),
    busiest,
    count(busiest),
  );
  const rates = totals.map((t, i) => (t > 0 ? failed[i] / t : 0));
  const overall = done + bad > 0 ? Math.round((100 * bad) / (done + bad)) : 0;
  const failureRate = chart(
    'chart-failure-rate',
    `Failure rate per minute: ${done + bad > 0 ? `${overall}% over the hour` : 'nothing finished'}`,
    rates.map((r, i) => [{ value: r, cls: 'bar-failed', title: `${ago(i)}: ${Math.round(r * 100)}% of ${totals[i]} failed` }]),
    1,
    '100%',
  );
  const longest = Math.max(0, ...meanWaitMs);
  const startedTotal = started.reduce((a, b) => a + b, 0);
  const overallWait = startedTotal > 0 ? meanWaitMs.reduce((sum, ms, i) => sum + ms * started[i], 0) / startedTotal : 0;
  const wait = chart(
    'chart-wait',
    `Wait before start per minute: ${startedTotal > 0 ? `${duration(overallWait)} on average over ${count(startedTotal)} starts` : 'nothing started'}`,
    meanWaitMs.map((ms, i) => [{ value: ms, cls: 'bar-wait', title: `${ago(i)}: ${started[i]} started, ${duration(ms)} waited on average` }]),
    longest,
    // The axis has room for a few characters only.
    duration(longest).replace(' ', ''),
  );
  fill(charts, throughput, failureRate, wait);
}
