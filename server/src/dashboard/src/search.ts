/**
 * The job search: what the operator types, read as the one filter it can be. A number is a job id
 * (read with Get), `key=value` pairs are labels that every job listed carries, and anything else is
 * an idempotency key. List's filters do the rest on the broker, with the queue and status filters
 * still applied.
 */

export type Search = { kind: 'none' } | { kind: 'id'; id: string } | { kind: 'labels'; labels: Record<string, string> } | { kind: 'key'; key: string };

export function parseSearch(text: string): Search {
  const query = text.trim();
  if (!query) return { kind: 'none' };
  if (/^\d+$/.test(query)) return { kind: 'id', id: query };
  const pairs = query.split(/[\s,]+/).filter(Boolean);
  if (pairs.every((pair) => /^[^=]+=/.test(pair))) {
    return { kind: 'labels', labels: Object.fromEntries(pairs.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)])) };
  }
  return { kind: 'key', key: query };
}

/** How the search reads back to the operator, under the box. */
export function describeSearch(search: Search): string {
  switch (search.kind) {
    case 'none':
      return '';
    case 'id':
      return `job ${search.id}`;
    case 'labels':
      return `labels ${Object.entries(search.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`;
    case 'key':
      return `idempotency key "${search.key}"`;
  }
}
