/// <reference lib="dom" />
/**
 * The cron schedules view (docs/scheduling.md, "Cron schedules"): every schedule with its
 * expression and time zone, its next runs, the latest tick and the latest job with its status, and
 * whether it is paused; and the operator's actions on it: pause and resume, run now (Admin.
 * TriggerSchedule), delete. Pausing (ticks that fall while paused never run) and deleting are asked
 * for first in the page's dialog.
 *
 * A module of its own, drawn into the frame's `schedulesPanel` and bound by `bindSchedules` (called
 * once by navigation.ts). It reads ListSchedules after each read of the queue stats, so it is as
 * fresh as the queue table without a timer of its own; a broker without schedules (UNIMPLEMENTED)
 * leaves the panel hidden.
 */
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { MissedTickPolicy, OverlapPolicy, type ScheduleInfo } from '@baton/worker-sdk/gen/admin';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { admin, errorText, needsKey } from './api.ts';
import { showBanner } from './banner.ts';
import { confirmAction } from './confirm.ts';
import { fill, h, when } from './dom.ts';
import { schedulesPanel } from './frame.ts';
import { afterStats, fail, ok } from './load.ts';
import { statusName } from './state.ts';

/** Next run times shown per schedule: the first in the table, the rest in its tooltip. */
const NEXT_RUNS = 3;

let schedules: ScheduleInfo[] = [];
let reading = false;
/** A read asked for while one was under way: it may have started before the change it should show. */
let again = false;
let unsupported = false;
const note = h('span', { class: 'muted' });
const body = h('tbody');

/** Draws the panel's frame once and gives its buttons their meaning. */
export function bindSchedules(): void {
  const th = (text: string, cls = '') => h('th', { class: cls }, text);
  fill(
    schedulesPanel,
    h('div', { class: 'toolbar' }, h('h2', {}, 'Schedules'), note),
    h(
      'table',
      { id: 'schedules-table' },
      h(
        'thead',
        {},
        h('tr', {}, th('Schedule'), th('Queue'), th('Cron'), th('Next run'), th('Latest tick'), th('Latest job'), th('Policies'), th('State'), th('')),
      ),
      body,
    ),
  );
  body.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest<HTMLElement>('button[data-action]') : null;
    const name = button?.closest<HTMLElement>('[data-schedule]')?.dataset.schedule;
    if (!button || name === undefined) return;
    const action = button.dataset.action;
    if (action === 'resume') act(admin.resumeSchedule({ name }));
    else if (action === 'trigger') act(admin.triggerSchedule({ name }));
    else if (action === 'pause') {
      const message = 'Ticks that fall while it is paused never run, whatever its missed-tick policy; it ticks again from the moment it is resumed.';
      void confirmAction({ title: `Pause schedule ${name}?`, message, confirm: 'Pause schedule', keep: 'Keep ticking' }).then(
        (yes) => yes && act(admin.pauseSchedule({ name })),
      );
    } else if (action === 'delete') {
      const message =
        'Its definition and its record of ticks are deleted; the jobs it made stay. A schedule declared in BATON_SCHEDULES comes back at the next broker start.';
      void confirmAction({ title: `Delete schedule ${name}?`, message, confirm: 'Delete schedule', keep: 'Keep schedule' }).then(
        (yes) => yes && act(admin.deleteSchedule({ name })),
      );
    }
  });
  afterStats(refreshSchedules);
}

/** Reads the schedules and redraws them; asked for during a read, it reads once more after it. */
export function refreshSchedules(): void {
  if (unsupported) return;
  if (reading) {
    again = true;
    return;
  }
  reading = true;
  admin
    .listSchedules({ nextRuns: NEXT_RUNS })
    .then(
      (res) => {
        schedules = res.schedules;
        renderSchedules();
      },
      (error) => {
        if (ConnectError.from(error).code === Code.Unimplemented) unsupported = true;
        else fail(error);
      },
    )
    .finally(() => {
      reading = false;
      if (again) {
        again = false;
        refreshSchedules();
      }
    });
}

/** Runs an action on a schedule, then re-reads the schedules: after a refusal too (NOT_FOUND: deleted elsewhere). */
function act(call: Promise<unknown>): void {
  call.then(
    () => {
      ok();
      refreshSchedules();
    },
    (error) => {
      if (needsKey(error)) fail(error);
      else showBanner('error', errorText(error));
      refreshSchedules();
    },
  );
}

function renderSchedules(): void {
  schedulesPanel.hidden = false;
  const paused = schedules.filter((info) => info.schedule?.paused).length;
  note.textContent = schedules.length ? `${schedules.length} schedule${schedules.length === 1 ? '' : 's'}${paused ? ` · ${paused} paused` : ''}` : '';
  if (schedules.length === 0) {
    fill(
      body,
      h(
        'tr',
        {},
        h(
          'td',
          { colspan: 9, class: 'empty' },
          'No schedules. Create one with "baton schedules set NAME --queue QUEUE --cron …", the SDK, or BATON_SCHEDULES.',
        ),
      ),
    );
    return;
  }
  const now = Date.now();
  fill(body, ...schedules.map((info) => row(info, now)));
}

function row(info: ScheduleInfo, now: number): HTMLTableRowElement {
  const s = info.schedule!;
  const next = info.nextRuns.map(timestampDate);
  const lastTick = info.lastTickAt ? timestampDate(info.lastTickAt) : undefined;
  const status = info.lastJobStatus === JobStatus.UNSPECIFIED ? '' : statusName(info.lastJobStatus);
  return h(
    'tr',
    { 'data-schedule': s.name },
    h('td', {}, s.name),
    h('td', {}, h('span', { class: 'chip' }, s.queue)),
    h('td', {}, h('code', {}, s.cron), h('span', { class: 'muted' }, ` ${s.timeZone || 'UTC'}`)),
    h(
      'td',
      { class: 'next-run', title: next.map((at) => at.toLocaleString()).join('\n') },
      s.paused ? h('span', { class: 'muted' }, 'paused: none') : next[0] ? when(next[0], now) : '–',
    ),
    h('td', { class: 'last-tick' }, when(lastTick, now)),
    h(
      'td',
      { class: 'last-job' },
      // The hash opens the job in the detail panel, as a bookmark of it would.
      ...(info.lastJobId
        ? [h('a', { href: `#job=${info.lastJobId}` }, `#${info.lastJobId}`), ' ', status && h('span', { class: `badge s-${status}` }, status.toUpperCase())]
        : ['–']),
    ),
    h('td', { class: 'muted' }, policies(s.missed, s.backfillLimit, s.overlap)),
    h('td', {}, h('span', { class: s.paused ? 'state paused' : 'state' }, s.paused ? 'paused' : 'active')),
    h(
      'td',
      { class: 'row-actions' },
      h('button', { 'data-action': s.paused ? 'resume' : 'pause' }, s.paused ? 'Resume' : 'Pause'),
      h('button', { 'data-action': 'trigger', title: 'Enqueue one job of this schedule now, tied to no tick' }, 'Run now'),
      h('button', { 'data-action': 'delete', class: 'danger' }, 'Delete'),
    ),
  );
}

function policies(missed: MissedTickPolicy, backfillLimit: number, overlap: OverlapPolicy): string {
  const m =
    missed === MissedTickPolicy.RUN_ONCE ? 'missed: run once' : missed === MissedTickPolicy.BACKFILL ? `missed: backfill ${backfillLimit}` : 'missed: skip';
  return `${m} · overlap: ${overlap === OverlapPolicy.SKIP ? 'skip' : 'allow'}`;
}
