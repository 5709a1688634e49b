import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { BatonError, type Client, type EnqueueItem, type EnqueueOptions, type JobStatusName, type UniqueOptions } from '@baton/worker-sdk';
import { type CliIo, type Command, UsageError } from './command.ts';
import { count, json } from './format.ts';
import { CONNECTION_HELP, EXIT_OK, EXIT_USAGE, clientOptions, describeError, helpShown, intOption, parse, withClient } from './remote.ts';

const USAGE = `baton enqueue --queue QUEUE [--payload JSON] [options]
       baton enqueue --file JOBS.ndjson [--queue DEFAULT_QUEUE] [options]

One job: prints its id on stdout (the whole job with --json). The payload is any JSON value,
default {}; quote it for the shell: --payload '{"n": 303}'.

Options (for --file, the defaults of every line):
  --priority N          -1000..1000, higher runs first (default 0)
  --delay DURATION      start no sooner than this from now: 250ms, 30s, 5m, 2h, 1d (bare number: seconds)
  --at TIME             start no sooner than this ISO 8601 time, e.g. 2030-01-01T09:00:00Z
  --max-attempts N      attempts in all, 1..1000 (default: the queue's)
  --key KEY             idempotency key: a second enqueue with it returns the first job
  --unique KEY          unique key: while a job of the queue holds KEY, enqueues with it store
                        nothing and print the holder as a duplicate (docs/scheduling.md, "Unique
                        jobs"); not with --key
  --unique-window DUR   the holder keeps the key at most this long after its enqueue (default: no limit)
  --unique-states LIST  statuses in which the holder keeps the key, comma-separated
                        (default pending,scheduled,running: free again once the job finished)
  --rate-limit-key K    the key the queue's per-key rate limit counts the job under, e.g. a customer
  --concurrency-key K   the key (e.g. a tenant) a queue with fair keys takes in turn and limits per key
  --label KEY=VALUE     a label (repeatable)
  --json                print the stored job (or, with --file, a summary) as JSON

Bulk: --file reads one job per line (newline-delimited JSON; "-" reads stdin), each an object
  {"queue": "q", "payload": {...}, "priority": 5, "delay": "30s", "at": "...", "maxAttempts": 3,
   "key": "...", "labels": {"k": "v"}, "unique": "KEY" or {"key": "...", "window": "10m", "states": [...]},
   "rateLimitKey": "...", "concurrencyKey": "..."}
where only "payload" is required when --queue is given. Jobs go in transactions of --batch-size
(default 1000, at most the broker's limit); a progress bar is drawn on stderr. If a batch fails,
the jobs before it are stored and the message says how to resume.

${CONNECTION_HELP}`;

const OPTIONS = {
  queue: { type: 'string' },
  payload: { type: 'string' },
  file: { type: 'string' },
  priority: { type: 'string' },
  delay: { type: 'string' },
  at: { type: 'string' },
  'max-attempts': { type: 'string' },
  key: { type: 'string' },
  unique: { type: 'string' },
  'unique-window': { type: 'string' },
  'unique-states': { type: 'string' },
  'rate-limit-key': { type: 'string' },
  'concurrency-key': { type: 'string' },
  label: { type: 'string', multiple: true },
  'batch-size': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** `baton enqueue`: one job from flags, or many from a newline-delimited JSON file. */
export const enqueueCommand: Command = {
  summary: 'Enqueue a job (--queue, --payload), or many from a file (--file jobs.ndjson)',
  usage: USAGE,
  async run(args, io) {
    const { values } = parse(args, OPTIONS);
    if (helpShown(values, enqueueCommand, io)) return EXIT_OK;
    if (values.file !== undefined && values.payload !== undefined) throw new UsageError('give --payload (one job) or --file (many), not both');
    if (values.delay !== undefined && values.at !== undefined) throw new UsageError('give --delay or --at, not both');
    if (values.unique !== undefined && values.key !== undefined) throw new UsageError('give --key (idempotency) or --unique, not both');
    if (values.unique === undefined && (values['unique-window'] !== undefined || values['unique-states'] !== undefined)) {
      throw new UsageError('--unique-window and --unique-states go with --unique KEY');
    }
    const defaults: EnqueueOptions = {
      priority: intOption(values.priority, '--priority', -1000, 1000),
      delay: values.delay === undefined ? undefined : duration(values.delay, '--delay'),
      runAt: values.at === undefined ? undefined : time(values.at, '--at'),
      maxAttempts: intOption(values['max-attempts'], '--max-attempts', 1, 1000),
      idempotencyKey: values.key,
      labels: values.label ? labels(values.label) : undefined,
      unique: values.unique === undefined ? undefined : unique(values.unique, values['unique-window'], values['unique-states']),
      rateLimitKey: values['rate-limit-key'],
      concurrencyKey: values['concurrency-key'],
    };
    if (values.file !== undefined) {
      if (values.key !== undefined) throw new UsageError('--key names one job; with --file give each line its own "key"');
      if (values.unique !== undefined) throw new UsageError('--unique names one job; with --file give each line its own "unique"');
      const batchSize = intOption(values['batch-size'], '--batch-size', 1, 10_000) ?? 1000;
      const where = clientOptions(values, io.env).address;
      return withClient('enqueue', values, io, (client) =>
        enqueueFile(client, { file: values.file!, defaultQueue: values.queue, defaults, batchSize, asJson: values.json ?? false, address: where }, io),
      );
    }
    if (values.queue === undefined) throw new UsageError('--queue is required, e.g. baton enqueue --queue emails --payload \'{"to": "a@b.c"}\'');
    const payload = values.payload === undefined ? {} : parseJson(values.payload, '--payload');
    return withClient('enqueue', values, io, async (client) => {
      const job = await client.enqueue(values.queue!, payload, defaults);
      if (values.json) io.stdout(json(job));
      else io.stdout(`${job.id}\n`);
      if (job.duplicate) {
        const held = values.unique === undefined ? `idempotency key "${values.key}"` : `unique key "${values.unique}"`;
        io.stderr(`baton enqueue: duplicate: job ${job.id} (${job.status}) holds the ${held}; nothing new was stored\n`);
      }
      return EXIT_OK;
    });
  },
};

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} is not valid JSON (${(error as Error).message}); quote it for the shell, e.g. --payload '{"n": 303}'`);
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "250ms", "30s", "5m", "2h", "1d", or a bare number of seconds, in milliseconds. */
export function duration(text: string | number, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(text).trim());
  if (!match) throw new UsageError(`${what} must be a duration such as 250ms, 30s, 5m, 2h or 1d, got "${text}"`);
  return Math.round(Number(match[1]) * UNITS[match[2] ?? 's']);
}

function time(text: string, what: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new UsageError(`${what} must be an ISO 8601 time such as 2030-01-01T09:00:00Z, got "${text}"`);
  return date;
}

const STATUSES: readonly JobStatusName[] = ['pending', 'scheduled', 'running', 'completed', 'failed', 'cancelled'];

function unique(key: string, window: string | undefined, states: string | undefined): UniqueOptions {
  if (key === '') throw new UsageError('--unique needs a key, e.g. --unique user:42');
  const list = states
    ?.split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  const unknown = list?.find((s) => !STATUSES.includes(s as JobStatusName));
  if (unknown !== undefined) throw new UsageError(`--unique-states: unknown status "${unknown}" (statuses: ${STATUSES.join(', ')})`);
  return { key, window: window === undefined ? undefined : duration(window, '--unique-window'), states: list as JobStatusName[] | undefined };
}

function labels(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--label must be KEY=VALUE, got "${pair}"`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

/** One line of a jobs file as an EnqueueItem; throws an Error naming what is wrong with it. */
function lineToItem(line: string, defaultQueue: string | undefined, defaults: EnqueueOptions): EnqueueItem {
  let spec: unknown;
  try {
    spec = JSON.parse(line);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`);
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new Error('expected an object such as {"queue": "q", "payload": {...}}');
  }
  const s = spec as Record<string, unknown>;
  const known = new Set([
    'queue',
    'payload',
    'priority',
    'delay',
    'at',
    'runAt',
    'maxAttempts',
    'key',
    'idempotencyKey',
    'labels',
    'unique',
    'rateLimitKey',
    'concurrencyKey',
  ]);
  const unknown = Object.keys(s).filter((key) => !known.has(key));
  if (unknown.length > 0) {
    throw new Error(
      `unknown field "${unknown[0]}" (fields: queue, payload, priority, delay, at, maxAttempts, key, labels, unique, rateLimitKey, concurrencyKey)`,
    );
  }
  const queue = s.queue ?? defaultQueue;
  if (typeof queue !== 'string') throw new Error('no queue: give "queue" on the line or --queue');
  if (!('payload' in s)) throw new Error('no "payload" field');
  const at = s.at ?? s.runAt;
  const int = (field: string) => {
    if (s[field] !== undefined && !Number.isInteger(s[field])) throw new Error(`"${field}" must be a whole number`);
    return s[field] as number | undefined;
  };
  const key = s.key ?? s.idempotencyKey;
  if (key !== undefined && typeof key !== 'string') throw new Error('"key" must be a string');
  if (s.labels !== undefined && (typeof s.labels !== 'object' || s.labels === null || Object.values(s.labels).some((v) => typeof v !== 'string'))) {
    throw new Error('"labels" must be an object of strings, e.g. {"tenant": "acme"}');
  }
  const text = (field: string) => {
    if (s[field] !== undefined && typeof s[field] !== 'string') throw new Error(`"${field}" must be a string`);
    return s[field] as string | undefined;
  };
  return {
    queue,
    payload: s.payload,
    priority: int('priority') ?? defaults.priority,
    delay: s.delay === undefined ? (at === undefined ? defaults.delay : undefined) : duration(s.delay as string | number, '"delay"'),
    runAt: at === undefined ? (s.delay === undefined ? defaults.runAt : undefined) : time(String(at), '"at"'),
    maxAttempts: int('maxAttempts') ?? defaults.maxAttempts,
    idempotencyKey: key,
    labels: (s.labels as Record<string, string> | undefined) ?? defaults.labels,
    unique: lineUnique(s.unique),
    rateLimitKey: text('rateLimitKey') ?? defaults.rateLimitKey,
    concurrencyKey: text('concurrencyKey') ?? defaults.concurrencyKey,
  };
}

/** A line's "unique": a key, or {"key": "...", "window": "10m", "states": ["pending", ...]}. */
function lineUnique(value: unknown): UniqueOptions | undefined {
  if (value === undefined || typeof value === 'string') return value === undefined ? undefined : unique(value, undefined, undefined);
  if (typeof value !== 'object' || value === null || typeof (value as { key?: unknown }).key !== 'string') {
    throw new Error('"unique" must be a key or {"key": "...", "window": "10m", "states": ["pending", "scheduled", "running"]}');
  }
  const { key, window, states } = value as { key: string; window?: string | number; states?: unknown };
  if (states !== undefined && (!Array.isArray(states) || states.some((s) => typeof s !== 'string')))
    throw new Error('"unique.states" must be a list of statuses');
  return unique(key, window === undefined ? undefined : String(window), (states as string[] | undefined)?.join(','));
}

/**
 * Streams the file in batches of `batchSize`, each one EnqueueBatch (one transaction). Reports
 * progress by bytes read, so no second pass over the file is needed to know the total.
 */
async function enqueueFile(
  client: Client,
  o: { file: string; defaultQueue: string | undefined; defaults: EnqueueOptions; batchSize: number; asJson: boolean; address: string },
  io: CliIo,
): Promise<number> {
  const { file, defaultQueue, defaults, batchSize, asJson } = o;
  const fromStdin = file === '-';
  let totalBytes = 0;
  if (!fromStdin) {
    try {
      totalBytes = statSync(file).size;
    } catch (error) {
      throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
  }
  const input = fromStdin ? process.stdin : createReadStream(file);
  const progress = new Progress(io, totalBytes);
  let stored = 0;
  let duplicates = 0;
  let firstId: string | undefined;
  let lastId: string | undefined;
  let bytes = 0;
  let lineNo = 0;
  let batch: EnqueueItem[] = [];
  let batchFirstLine = 1;
  /** Line numbers of the batch's items, for error messages. */
  let batchLines: number[] = [];

  const resumeHint = () =>
    stored === 0
      ? 'nothing was stored'
      : `the ${count(stored)} jobs before it were stored; to resume after them: tail -n +${batchFirstLine} ${fromStdin ? 'FILE' : file} | baton enqueue --file -`;

  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const jobs = await client.enqueueBatch(batch, { idsOnly: true });
    for (const job of jobs) {
      if (job.duplicate) duplicates++;
      else stored++;
      firstId ??= job.id;
      lastId = job.id;
    }
    batch = [];
    batchLines = [];
    batchFirstLine = lineNo + 1;
    progress.update(bytes, stored + duplicates);
  };

  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      lineNo++;
      bytes += Buffer.byteLength(line) + 1;
      if (line.trim() === '') continue;
      let item: EnqueueItem;
      try {
        item = lineToItem(line, defaultQueue, defaults);
      } catch (error) {
        progress.done();
        io.stderr(`baton enqueue: ${file === '-' ? 'stdin' : file} line ${lineNo}: ${(error as Error).message}; ${resumeHint()}\n`);
        return EXIT_USAGE;
      }
      batch.push(item);
      batchLines.push(lineNo);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
  } catch (error) {
    progress.done();
    if (!(error instanceof BatonError)) throw error;
    // "jobs[3].priority …" names a position in the batch: say which line that is.
    const described = describeError(error, o.address);
    const message = error.message.replace(/^[A-Z_]+: /, '').replace(/jobs\[(\d+)\]\.?/, (_, i: string) => `line ${batchLines[Number(i)] ?? '?'}: `);
    const unreachable = described.code === 3;
    const span = batchLines.length ? `the batch of lines ${batchLines[0]}-${batchLines.at(-1)}` : 'the batch';
    const what = unreachable ? `${span} was not stored: ${described.message.replace(/\.$/, '')}` : `${span} was refused: ${message}`;
    io.stderr(`baton enqueue: ${what}; ${resumeHint()}\n`);
    return described.code;
  } finally {
    lines.close();
  }
  progress.done();
  if (asJson) io.stdout(json({ enqueued: stored, duplicates, firstId: firstId ?? null, lastId: lastId ?? null }));
  else io.stdout(`enqueued ${count(stored)} jobs${duplicates ? ` (${count(duplicates)} duplicates of existing keys skipped)` : ''}\n`);
  return EXIT_OK;
}

/**
 * Progress on stderr: a bar redrawn in place on a terminal; elsewhere (CI logs, pipes) one plain
 * line per 10 % (or per 10 batches when the size is unknown), so logs stay readable.
 */
class Progress {
  readonly #io: CliIo;
  readonly #total: number;
  readonly #tty = Boolean(process.stderr.isTTY);
  readonly #started = performance.now();
  #lastDraw = 0;
  #lastStep = -1;
  #updates = 0;
  #drawn = false;

  constructor(io: CliIo, totalBytes: number) {
    this.#io = io;
    this.#total = totalBytes;
  }

  update(bytes: number, jobs: number): void {
    this.#updates++;
    const fraction = this.#total > 0 ? Math.min(1, bytes / this.#total) : undefined;
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? `${count(Math.round(jobs / seconds))}/s` : '';
    if (this.#tty) {
      if (performance.now() - this.#lastDraw < 100 && fraction !== 1) return;
      this.#lastDraw = performance.now();
      const width = 30;
      const bar =
        fraction === undefined ? '' : `[${'#'.repeat(Math.round(fraction * width)).padEnd(width, '.')}] ${String(Math.floor(fraction * 100)).padStart(3)}%  `;
      this.#io.stderr(`\r${bar}${count(jobs)} jobs  ${rate}\x1b[K`);
      this.#drawn = true;
      return;
    }
    const step = fraction === undefined ? Math.floor(this.#updates / 10) : Math.floor(fraction * 10);
    if (step === this.#lastStep) return;
    this.#lastStep = step;
    const percent = fraction === undefined ? '' : ` (${Math.floor(fraction * 100)}%)`;
    this.#io.stderr(`enqueued ${count(jobs)} jobs${percent}, ${rate}\n`);
  }

  done(): void {
    if (this.#drawn) this.#io.stderr('\n');
    this.#drawn = false;
  }
}
