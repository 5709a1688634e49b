/// <reference lib="dom" />
/**
 * The banner above the page: a failed call's message, or the prompt for an API key when the broker
 * refuses the page without one. A key given here is stored and the banner hidden; what follows (the
 * reads and the Watch streams start again with it) is up to navigation.ts, which listens for the
 * form's `submit` as it bubbles to the banner. So the banner imports no module above it.
 */
import { getToken, setToken } from './api.ts';
import { fill, h } from './dom.ts';
import { banner } from './frame.ts';

export function showBanner(kind: 'error' | 'key', ...content: (Node | string)[]): void {
  banner.dataset.kind = kind;
  banner.className = kind;
  fill(banner, ...content);
  banner.hidden = false;
}

export function hideBanner(): void {
  banner.hidden = true;
  delete banner.dataset.kind;
}

export function showKeyPrompt(message: string): void {
  if (banner.dataset.kind === 'key') return;
  const input = h('input', { type: 'password', placeholder: 'API key', autocomplete: 'off', 'aria-label': 'API key' });
  const form = h(
    'form',
    {
      onsubmit: (event: Event) => {
        event.preventDefault();
        setToken(input.value.trim());
        hideBanner();
      },
    },
    input,
    h('button', { type: 'submit' }, 'Use key'),
  );
  showBanner(
    'key',
    h(
      'p',
      {},
      `${message}. `,
      getToken() ? 'The key given was refused; ' : '',
      'This broker needs an API key with the admin scope (create one with "baton keys create --scope admin"). It is kept in this tab only.',
    ),
    form,
  );
}
