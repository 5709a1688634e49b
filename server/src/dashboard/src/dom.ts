/// <reference lib="dom" />
/**
 * A few DOM helpers instead of a framework. Every piece of job data is set as text (never as
 * HTML), so a payload or an error message cannot inject markup.
 */

type Child = Node | string | number | null | undefined | false;
type Props = Record<string, string | number | boolean | EventListener | undefined>;

/** `h('td', { class: 'num' }, 42)`: an element with attributes, listeners (`onclick`) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes. */
export function svg(tag: string, attributes: Record<string, string | number>, ...children: Node[]): SVGElement {
  const element = document.createElementNS(SVG, tag) as SVGElement;
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

/** Replaces an element's children. */
export function fill(parent: Element, ...children: Child[]): void {
  parent.replaceChildren(
    ...children.filter((c): c is Node | string | number => c !== null && c !== undefined && c !== false).map((c) => (c instanceof Node ? c : String(c))),
  );
}

/** "5s", "3m", "2h", "4d". */
export function age(since: Date | undefined, now = Date.now()): string {
  if (!since) return '–';
  const s = Math.max(0, Math.floor((now - since.getTime()) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

export function count(n: number | bigint): string {
  return Number(n).toLocaleString('en-US');
}

/** A timestamp as local date and time, with how long ago (or from now). */
export function when(date: Date | undefined, now = Date.now()): string {
  if (!date) return '–';
  const future = date.getTime() > now;
  const relative = future ? `in ${age(new Date(now), date.getTime())}` : `${age(date, now)} ago`;
  return `${date.toLocaleString()} (${relative})`;
}

/**
 * A bar filled to `fraction` (0-1). Its width is set through the CSSOM: the page's Content Security
 * Policy (style-src 'self') refuses inline `style` attributes, not styles set from script.
 */
export function meter(fraction: number): HTMLElement {
  const fill = h('span');
  fill.style.width = `${(Math.min(1, Math.max(0, fraction)) * 100).toFixed(1)}%`;
  return h('span', { class: 'meter' }, fill);
}
