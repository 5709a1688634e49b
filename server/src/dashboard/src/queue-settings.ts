/// <reference lib="dom" />
/**
 * A queue's settings, edited in the page's dialog: the concurrency limit across all brokers, and
 * the attempts and timeout that jobs enqueued without their own take. Saved with Admin.UpdateQueue,
 * which changes only the fields sent, so a setting changed elsewhere meanwhile (a pause from the
 * CLI) is kept. Values are checked by the broker; its refusal is shown in the form.
 */
import { durationFromMs, durationMs } from '@bufbuild/protobuf/wkt';
import type { Queue } from '@baton/worker-sdk/gen/admin';
import { admin, errorText } from './api.ts';
import { fill, h } from './dom.ts';
import { dialog } from './frame.ts';

/** Opens the form for `queue`; `saved` is called after the broker accepted the change. */
export function editQueueSettings(queue: Queue, saved: () => void): void {
  const number = (name: string, label: string, value: number, min: number, max: number, hint: string) =>
    h('label', {}, h('span', {}, label), h('input', { type: 'number', name, value, min, max, step: 1, required: true }), h('small', { class: 'muted' }, hint));
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const form = h(
    'form',
    { class: 'settings', 'data-queue': queue.name },
    h('h2', {}, `Settings of ${queue.name}`),
    number('concurrency', 'Concurrency', queue.concurrency, 0, 1_000_000, 'most jobs running at once on all brokers; 0 = no limit'),
    number('maxAttempts', 'Max attempts', queue.defaultMaxAttempts, 1, 1000, 'for jobs enqueued without their own'),
    number(
      'timeoutSeconds',
      'Timeout (seconds)',
      queue.defaultTimeout ? durationMs(queue.defaultTimeout) / 1000 : 0,
      0,
      315_360_000,
      'per attempt, for jobs enqueued without their own; 0 = none',
    ),
    error,
    h(
      'div',
      { class: 'dialog-buttons' },
      h('button', { type: 'button', 'data-action': 'close-dialog' }, 'Close'),
      h('button', { type: 'submit', class: 'primary' }, 'Save'),
    ),
  );
  form.addEventListener('click', (event) => {
    if (event.target instanceof HTMLElement && event.target.dataset.action === 'close-dialog') dialog.close();
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const read = (name: string) => Number(data.get(name));
    admin
      .updateQueue({
        queue: queue.name,
        concurrency: read('concurrency'),
        defaultMaxAttempts: read('maxAttempts'),
        defaultTimeout: durationFromMs(Math.round(read('timeoutSeconds') * 1000)),
      })
      .then(
        () => {
          dialog.close();
          saved();
        },
        (failure) => {
          error.textContent = errorText(failure);
          error.hidden = false;
        },
      );
  });
  fill(dialog, form);
  dialog.dataset.kind = 'settings';
  dialog.showModal();
}
