/// <reference lib="dom" />
/**
 * The page's fixed frame: the elements made once at start that the render functions fill in. What
 * their clicks do is bound by navigation.ts (`bindControls`), so this module imports no module above it.
 */
import { h } from './dom.ts';
import { STATUSES, SPARK_MINUTES } from './state.ts';

export const banner = h('div', { id: 'banner', role: 'alert', hidden: true });
export const liveBadge = h('span', { id: 'live', class: 'live off' }, 'connecting…');
export const updated = h('span', { id: 'updated', class: 'muted' });
export const summary = h('section', { id: 'summary', class: 'cards' });
export const queuesBody = h('tbody');
export const workersBody = h('tbody');
export const workersCount = h('span', { class: 'muted' });
export const charts = h('div', { id: 'charts', class: 'charts' });
export const chartsScope = h('span', { class: 'muted' });
export const queueNotice = h('div', { id: 'queue-notice', hidden: true });
export const queueSelect = h('select', { id: 'queue-filter', 'aria-label': 'Queue' });
export const statusButtons = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Status' });
export const searchForm = h(
  'form',
  { id: 'search', role: 'search' },
  h('input', { type: 'search', name: 'q', placeholder: 'Job id, idempotency key, or label=value', 'aria-label': 'Search jobs', size: 34 }),
  h('button', { type: 'submit' }, 'Search'),
);
export const searchNote = h('span', { id: 'search-note', class: 'muted' });
/** The bulk actions' bar under the job list's toolbar (bulk.ts). */
export const bulkBar = h('div', { id: 'bulk', class: 'bulk', hidden: true });
/** The cron schedules' panel, drawn and bound by schedules.ts; hidden until the broker answers ListSchedules. */
export const schedulesPanel = h('section', { class: 'panel', id: 'schedules', hidden: true });
export const jobsBody = h('tbody');
export const newer = h('button', { id: 'newer' }, '← Newer');
export const older = h('button', { id: 'older' }, 'Older →');
export const pageLabel = h('span', { class: 'muted' });
export const detail = h('aside', { id: 'detail', hidden: true, 'aria-label': 'Job detail' });
/** The one modal of the page: confirmations and the queue settings form are drawn into it. */
export const dialog = h('dialog', { id: 'dialog' });

const th = (text: string, cls = '') => h('th', { class: cls }, text);

export function frame(): HTMLElement {
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
            h(
              'tr',
              {},
              th('Queue'),
              ...STATUSES.map(([, name]) => th(name[0].toUpperCase() + name.slice(1), 'num')),
              th('Total', 'num'),
              th('Oldest pending', 'num'),
              th('Workers'),
              th(`Completed / min, last ${SPARK_MINUTES} min`),
              th('State'),
              th(''),
            ),
          ),
          queuesBody,
        ),
      ),
      schedulesPanel,
      h(
        'div',
        { class: 'pair' },
        h('section', { class: 'panel', id: 'workers' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Workers'), workersCount), workersTable()),
        h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Last hour'), chartsScope), charts),
      ),
      h(
        'section',
        { class: 'panel jobs' },
        h('div', { class: 'toolbar' }, h('h2', {}, 'Jobs'), queueSelect, statusButtons, searchForm, searchNote),
        bulkBar,
        queueNotice,
        h(
          'table',
          { id: 'jobs' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              th('ID', 'num'),
              th('Queue'),
              th('Status'),
              th('Priority', 'num'),
              th('Attempts', 'num'),
              th('Run at', 'num'),
              th('Duration', 'num'),
              th('Worker'),
              th('Progress'),
              th('Age', 'num'),
              th('Last error'),
            ),
          ),
          jobsBody,
        ),
        h('div', { class: 'pager' }, newer, pageLabel, older),
      ),
    ),
    detail,
    dialog,
  );
}

function workersTable(): HTMLTableElement {
  return h(
    'table',
    { id: 'workers-table' },
    h(
      'thead',
      {},
      h('tr', {}, th('Broker'), th('Worker'), th('Queues'), th('Jobs held', 'num'), th('Connected', 'num'), th('Last heartbeat', 'num'), th('Lease', 'num')),
    ),
    workersBody,
  );
}
