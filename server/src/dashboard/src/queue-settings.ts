/// <reference lib="dom" />
/**
 * A queue's settings, edited in the page's dialog: the concurrency limit across all brokers, the
 * attempts and timeout that jobs enqueued without their own take, and the queue's rate limit or fair
 * keys (docs/scheduling.md). Saved with Admin.UpdateQueue, which changes only the fields sent, so a
 * setting changed elsewhere meanwhile (a pause from the CLI) is kept. Values are checked by the
 * broker; its refusal (e.g. FAILED_PRECONDITION for a rate limit and fair keys at once) is shown in
 * the form rather than second-guessed here, so the rule lives in one place.
 */
import { type Duration, durationFromMs, durationMs } from '@bufbuild/protobuf/wkt';
import type { Queue } from '@baton/worker-sdk/gen/admin';
import { admin, errorText } from './api.ts';
import { fill, h } from './dom.ts';
import { dialog } from './frame.ts';

/** Opens the form for `queue`; `saved` is called after the broker accepted the change. */
export function editQueueSettings(queue: Queue, saved: () => void): void {
  const number = (name: string, label: string, value: number, min: number, max: number, hint: string, step: number | 'any' = 1) =>
    h('label', {}, h('span', {}, label), h('input', { type: 'number', name, value, min, max, step, required: true }), h('small', { class: 'muted' }, hint));
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
    number('rateLimit', 'Rate limit (starts)', queue.rateLimit?.limit ?? 0, 0, 1_000_000, 'most job starts per interval on all brokers; 0 = no limit'),
    number(
      'rateSeconds',
      'Per (seconds)',
      queue.rateLimit?.interval ? durationMs(queue.rateLimit.interval) / 1000 : 1,
      0.001,
      86_400,
      'the interval the rate limit counts in',
      'any',
    ),
    h(
      'label',
      {},
      h('span', {}, 'Fair keys'),
      h('input', { type: 'checkbox', name: 'fairKeys', checked: queue.fairKeys }),
      h('small', { class: 'muted' }, "claims take the jobs' keys in turn, so one tenant cannot starve the others; not with a rate limit"),
    ),
    number('keyConcurrency', 'Running per key', queue.keyConcurrency, 0, 1_000_000, 'most jobs of one key running at once; 0 = no limit'),
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
        // RateLimit replaces all four fields: the per-key limit, set from the CLI, is sent back as it is.
        rateLimit: {
          limit: read('rateLimit'),
          interval: durationFromMs(Math.round(read('rateSeconds') * 1000)),
          keyLimit: queue.rateLimit?.keyLimit ?? 0,
          keyInterval: queue.rateLimit?.keyInterval,
        },
        fairKeys: data.get('fairKeys') !== null,
        keyConcurrency: read('keyConcurrency'),
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

/** A rate in the fewest words: "10/s", "600/min", "5 per 2.5 s". */
function rate(limit: number, interval: Duration | undefined): string {
  const ms = interval ? durationMs(interval) : 1000;
  const unit = { 1000: 's', 60_000: 'min', 3_600_000: 'h', 86_400_000: 'day' }[ms];
  return unit ? `${limit}/${unit}` : `${limit} per ${ms / 1000} s`;
}

/** The queue's limits for its row: " · max 3", " · 10/s", " · 5/s per key", " · fair, 2 per key". */
export function queueLimits(queue: Queue | undefined): string {
  if (!queue) return '';
  const parts: string[] = [];
  if (queue.concurrency) parts.push(`max ${queue.concurrency}`);
  const r = queue.rateLimit;
  if (r?.limit) parts.push(rate(r.limit, r.interval));
  if (r?.keyLimit) parts.push(`${rate(r.keyLimit, r.keyInterval)} per key`);
  if (queue.fairKeys) parts.push(queue.keyConcurrency ? `fair, ${queue.keyConcurrency} per key` : 'fair');
  return parts.map((part) => ` · ${part}`).join('');
}
