/// <reference lib="dom" />
/**
 * "Select all matching" on the job list, and the bulk actions on the selection: every job the list's
 * filters match (queue, status, and a search by idempotency key or labels), not only the page shown.
 * An action first counts what it would change (a dry run, walked over the broker's cursor), shows
 * that count in the confirmation, and only then runs, batch after batch, with its progress in the
 * bar (docs/scheduling.md, "Bulk actions").
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { BulkActionKind, type BulkJobFilterSchema } from '@baton/worker-sdk/gen/admin';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { admin, errorText, needsKey } from './api.ts';
import { showBanner } from './banner.ts';
import { confirmAction } from './confirm.ts';
import { count, fill, h } from './dom.ts';
import { bulkBar } from './frame.ts';
import { fail, ok, refreshAll } from './load.ts';
import { describeSearch, parseSearch } from './search.ts';
import { state, statusName } from './state.ts';

type Filter = MessageInitShape<typeof BulkJobFilterSchema>;

const ACTIONS = {
  cancel: {
    kind: BulkActionKind.CANCEL,
    statuses: [JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.RUNNING],
    label: 'Cancel all',
    done: 'cancelled',
    message: 'PENDING and SCHEDULED jobs are cancelled at once; the workers of RUNNING ones are told to stop. They can be retried afterwards.',
  },
  retry: {
    kind: BulkActionKind.RETRY,
    statuses: [JobStatus.FAILED, JobStatus.CANCELLED],
    label: 'Retry all',
    done: 'retried',
    message: 'FAILED and CANCELLED jobs go back to PENDING with a fresh set of attempts.',
  },
  delete: {
    kind: BulkActionKind.DELETE,
    statuses: [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED],
    label: 'Delete all',
    done: 'deleted',
    message: 'COMPLETED, FAILED and CANCELLED jobs are deleted for good. Live jobs are never deleted: cancel them first.',
  },
} as const;

type ActionName = keyof typeof ACTIONS;

/** Set by "Select all matching"; cleared by any change of filter (render reads it again). */
let selected = false;
/** While an action runs: its progress line. */
let running = '';
/** What the last action did, shown beside "Select all matching" until the next one. */
let notice = '';

/** The list's filters as a bulk filter; null when the search is a job id (no bulk filter for one job). */
function currentFilter(): { filter: Filter; description: string } | null {
  const search = parseSearch(state.search);
  if (search.kind === 'id') return null;
  const filter: Filter = {
    queue: state.queue,
    statuses: state.status === JobStatus.UNSPECIFIED ? [] : [state.status],
    idempotencyKey: search.kind === 'key' ? search.key : '',
    labels: search.kind === 'labels' ? search.labels : {},
  };
  const parts = [
    state.queue ? `queue ${state.queue}` : 'every queue',
    state.status === JobStatus.UNSPECIFIED ? '' : statusName(state.status).toUpperCase(),
    describeSearch(search),
  ].filter(Boolean);
  // No filter at all means every job, which the API asks to be said out loud.
  filter.all = !state.queue && state.status === JobStatus.UNSPECIFIED && search.kind === 'none';
  return { filter, description: parts.join(', ') };
}

/** The bar under the job list's toolbar: the "select all" link, or the selection with its actions. */
export function renderBulk(): void {
  const current = currentFilter();
  if (!current) selected = false;
  if (running) {
    fill(bulkBar, h('span', { class: 'bulk-progress' }, running));
  } else if (!selected) {
    fill(
      bulkBar,
      current ? h('button', { class: 'link', 'data-bulk': 'select' }, 'Select all matching') : '',
      notice ? h('span', { class: 'muted bulk-notice' }, notice) : '',
    );
  } else {
    const applies = (name: ActionName) => state.status === JobStatus.UNSPECIFIED || (ACTIONS[name].statuses as readonly JobStatus[]).includes(state.status);
    fill(
      bulkBar,
      h('span', {}, `All jobs matching ${current!.description} selected.`),
      ...(Object.keys(ACTIONS) as ActionName[])
        .filter(applies)
        .map((name) => h('button', { class: name === 'retry' ? '' : 'danger', 'data-bulk': name }, ACTIONS[name].label)),
      h('button', { class: 'link', 'data-bulk': 'clear' }, 'Clear selection'),
    );
  }
  bulkBar.hidden = bulkBar.childNodes.length === 0;
}

/** Walks every batch of `action` over `filter`; `onBatch` sees the running total. */
async function walk(kind: BulkActionKind, filter: Filter, dryRun: boolean, onBatch: (total: bigint) => void) {
  let cursor = '';
  let changed = 0n;
  let cancelRequested = 0n;
  do {
    const batch = await admin.bulkAction({ action: kind, filter, dryRun, cursor });
    changed += batch.changed;
    cancelRequested += batch.cancelRequested;
    cursor = batch.cursor;
    onBatch(changed);
  } while (cursor);
  return { changed, cancelRequested };
}

async function run(name: ActionName): Promise<void> {
  const current = currentFilter();
  if (!current) return;
  const action = ACTIONS[name];
  const progress = (text: string) => {
    running = text;
    renderBulk();
  };
  try {
    const dry = await walk(action.kind, current.filter, true, (n) => progress(`Counting… ${count(n)}`));
    progress('');
    if (dry.changed === 0n) {
      await confirmAction({
        title: `Nothing to ${name}`,
        message: `No job matching ${current.description} can be ${action.done}.`,
        confirm: 'OK',
        keep: 'Close',
      });
      return;
    }
    const ofThem = dry.cancelRequested > 0n ? ` ${count(dry.cancelRequested)} of them are RUNNING.` : '';
    const yes = await confirmAction({
      title: `${name[0].toUpperCase()}${name.slice(1)} ${count(dry.changed)} job${dry.changed === 1n ? '' : 's'}?`,
      message: `${count(dry.changed)} jobs matching ${current.description} would be ${action.done}.${ofThem} ${action.message}`,
      confirm: `${action.label.replace(' all', '')} ${count(dry.changed)} jobs`,
      keep: 'Keep them',
    });
    if (!yes) return;
    const done = await walk(action.kind, current.filter, false, (n) => progress(`${action.done[0].toUpperCase()}${action.done.slice(1)} ${count(n)}…`));
    selected = false;
    progress('');
    notice = `${count(done.changed)} jobs ${action.done}.`;
    renderBulk();
    ok();
    refreshAll(true);
  } catch (error) {
    progress('');
    if (needsKey(error)) fail(error);
    else showBanner('error', errorText(error));
  }
}

/** Gives the bar's buttons their meaning, once at start. */
export function bindBulk(): void {
  bulkBar.addEventListener('click', (event) => {
    const what = event.target instanceof Element ? event.target.closest<HTMLElement>('[data-bulk]')?.dataset.bulk : undefined;
    if (what === 'select') selected = true;
    else if (what === 'clear') selected = false;
    else if (what === 'cancel' || what === 'retry' || what === 'delete') void run(what);
    if (what) notice = '';
    renderBulk();
  });
  renderBulk();
}

/** A change of filter ends the selection: it was of the jobs the old filter matched. */
export function clearBulkSelection(): void {
  selected = false;
  notice = '';
  renderBulk();
}
