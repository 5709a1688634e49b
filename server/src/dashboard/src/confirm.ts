/// <reference lib="dom" />
/**
 * The confirmation asked before an action that cannot be taken back (cancelling a job, pausing a
 * queue): a modal `<dialog>` that says what will happen, answered by its two buttons, Escape or a
 * click outside (both mean no).
 */
import { fill, h } from './dom.ts';
import { dialog } from './frame.ts';

export function confirmAction(options: { title: string; message: string; confirm: string; keep: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const form = h(
      'form',
      { method: 'dialog', class: 'confirm' },
      h('h2', {}, options.title),
      h('p', {}, options.message),
      h(
        'div',
        { class: 'dialog-buttons' },
        h('button', { value: 'keep', autofocus: true }, options.keep),
        h('button', { value: 'confirm', class: 'danger' }, options.confirm),
      ),
    );
    fill(dialog, form);
    dialog.dataset.kind = 'confirm';
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
    dialog.showModal();
  });
}

/** A click on the backdrop (the dialog element itself, outside its content) closes it. */
dialog.addEventListener('click', (event) => {
  if (event.target === dialog) dialog.close();
});
