/// <reference lib="dom" />
/**
 * The page's fixed frame: the elements made once at start that the render functions fill in. What
 * their clicks do is bound by navigation.ts (`bindControls`), so this module imports no module above it.
 */
import { h } from './dom.ts';
import { MINUTES, STATUSES } from './state.ts';

export const banner = h('div', { id: 'banner', role: 'alert', hidden: true });
export const liveBadge = h('span', { id: 'live', class: 'live off' }, 'connecting…');
export const updated = h('span', { id: 'updated', class: 'muted' });
export const summary = h('section', { id: 'summary', class: 'cards' });
export const queuesBody = h('tbody');
export const queueSelect = h('select', { id: 'queue-filter', 'aria-label': 'Queue' });
export const statusButtons = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Status' });
export const jobsBody = h('tbody');
export const newer = h('button', { id: 'newer' }, '← Newer');
export const older = h('button', { id: 'older' }, 'Older →');
export const pageLabel = h('span', { class: 'muted' });
export const detail = h('aside', { id: 'detail', hidden: true, 'aria-label': 'Job detail' });

export function frame(): HTMLElement {
  const th = (text: string, cls = '') => h('th', { class: cls }, text);
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
              th(`Completed / min, last ${MINUTES} min`),
              th('State'),
              th(''),
            ),
          ),
          queuesBody,
        ),
      ),
      h(
        'div',
        { class: 'split' },
        h(
          'section',
          { class: 'panel jobs' },
          h('div', { class: 'toolbar' }, h('h2', {}, 'Jobs'), queueSelect, statusButtons),
          h(
            'table',
            { id: 'jobs' },
            h('thead', {}, h('tr', {}, th('ID', 'num'), th('Queue'), th('Status'), th('Attempts', 'num'), th('Age', 'num'), th('Last error'))),
            jobsBody,
          ),
          h('div', { class: 'pager' }, newer, pageLabel, older),
        ),
        detail,
      ),
    ),
  );
}
