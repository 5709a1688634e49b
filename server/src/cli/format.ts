/** Output helpers of the remote commands: tables, ages, and JSON for `--json`. */
import type { Job } from '@baton/worker-sdk';

/**
 * Left-aligned columns separated by two spaces; numeric columns (named in `right`) right-aligned.
 * The last column is cut to fit `width` when given (a terminal), so rows never wrap.
 */
export function table(header: string[], rows: string[][], options: { right?: number[]; width?: number } = {}): string {
  const right = new Set(options.right ?? []);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const last = header.length - 1;
  if (options.width) {
    const before = widths.slice(0, last).reduce((sum, w) => sum + w + 2, 0);
    widths[last] = Math.max(header[last].length, Math.min(widths[last], options.width - before));
  }
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const text = i === last && cell.length > widths[i] ? `${cell.slice(0, Math.max(0, widths[i] - 1))}…` : cell;
        return right.has(i) ? text.padStart(widths[i]) : i === last ? text : text.padEnd(widths[i]);
      })
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** "5s", "3m", "2h", "4d": how long ago, in its largest whole unit. */
export function age(since: Date | undefined, now = Date.now()): string {
  if (!since) return '-';
  const s = Math.max(0, Math.floor((now - since.getTime()) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** One line, control characters made visible, so an error message cannot break a table. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ⏎ ').replace(/[\u0000-\u001f\u007f]/g, ' ');
}

/** A job's row in `baton jobs`: ID, Queue, Status, Attempts, Age, Last error. */
export function jobRow(job: Job, now = Date.now()): string[] {
  const lastError = job.errors.at(-1)?.message ?? '';
  return [job.id, job.queue, job.status.toUpperCase(), `${job.attempt}/${job.maxAttempts}`, age(job.createdAt, now), oneLine(lastError)];
}

export const JOB_HEADER = ['ID', 'QUEUE', 'STATUS', 'ATTEMPTS', 'AGE', 'LAST ERROR'];

/** JSON for `--json`: dates as ISO strings, absent fields left out, one document per call. */
export function json(value: unknown, pretty = true): string {
  return JSON.stringify(value, null, pretty ? 2 : undefined) + '\n';
}

/** Large counts with thousands separators, as people read them. */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}
