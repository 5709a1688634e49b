import type { QueueSettings } from '@baton/worker-sdk';
import { type Command, UsageError } from './command.ts';
import { json, table } from './format.ts';
import { duration } from './enqueue.ts';
import { CONNECTION_HELP, EXIT_OK, helpShown, intOption, parse, withClient } from './remote.ts';

const USAGE = `baton queues [list] [--json]
       baton queues pause QUEUE
       baton queues resume QUEUE
       baton queues set-concurrency QUEUE N
       baton queues set-rate-limit QUEUE N [--interval DURATION] [--key-limit N] [--key-interval DURATION]
       baton queues set-fair-keys QUEUE on|off [--key-concurrency N]

pause: the queue's jobs stop starting (running ones finish; enqueue still works).
resume: they start again.
set-concurrency: at most N of the queue's jobs RUNNING at once across all brokers; 0 = no limit.
set-rate-limit: at most N of the queue's jobs start per interval (default 1s) across all brokers,
  and at most --key-limit per interval (--key-interval, default 1s) for each rate-limit key;
  0 = no limit. Replaces the queue's rate limits; jobs held back wait, PENDING, without spending
  an attempt. Durations: 250ms, 30s, 5m, 2h, 1d (bare number: seconds).
set-fair-keys: claims take the jobs' concurrency keys in turn (on) or not (off); with
  --key-concurrency N, at most N jobs of each key RUNNING at once across all brokers.
  A queue has either rate limits or fair keys.
Each change prints the queue's settings (--json: as JSON).

${CONNECTION_HELP}`;

/** `baton queues`: list queues, pause, resume, set their concurrency limit. */
export const queuesCommand: Command = {
  summary: 'List queues; pause, resume, or set-concurrency of one',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parse(
      args,
      {
        json: { type: 'boolean' },
        interval: { type: 'string' },
        'key-limit': { type: 'string' },
        'key-interval': { type: 'string' },
        'key-concurrency': { type: 'string' },
      },
      3,
    );
    if (helpShown(values, queuesCommand, io)) return EXIT_OK;
    const [action = 'list', queue, limit] = positionals;
    const show = (settings: QueueSettings, what: string) => {
      io.stdout(values.json ? json(settings) : `${what}: ${describe(settings)}\n`);
      return EXIT_OK;
    };
    const needQueue = () => {
      if (!queue) throw new UsageError(`say which queue: baton queues ${action} QUEUE`);
      if (positionals.length > (action.startsWith('set-') ? 3 : 2)) throw new UsageError(`unexpected argument "${positionals.at(-1)}"`);
      return queue;
    };
    switch (action) {
      case 'list':
        if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
        return withClient('queues', values, io, async (client) => {
          const queues = await client.queues();
          if (values.json) io.stdout(json(queues));
          else if (queues.length === 0) io.stdout('no queues yet: they appear with their first job\n');
          else io.stdout(table(['QUEUE', 'STATE', 'CONCURRENCY', 'MAX ATTEMPTS', 'TIMEOUT'], queues.map(row), { right: [2, 3] }));
          return EXIT_OK;
        });
      case 'pause': {
        const name = needQueue();
        return withClient('queues', values, io, async (client) =>
          show(await client.pauseQueue(name), `paused ${name} (running jobs finish; no new ones start)`),
        );
      }
      case 'resume': {
        const name = needQueue();
        return withClient('queues', values, io, async (client) => show(await client.resumeQueue(name), `resumed ${name}`));
      }
      case 'set-concurrency': {
        const name = needQueue();
        if (limit === undefined) throw new UsageError('give the limit: baton queues set-concurrency QUEUE N (0 = no limit)');
        const n = intOption(limit, 'the concurrency limit', 0, 1_000_000)!;
        return withClient('queues', values, io, async (client) => show(await client.setConcurrency(name, n), `set ${name}`));
      }
      case 'set-rate-limit': {
        const name = needQueue();
        if (limit === undefined) throw new UsageError('give the limit: baton queues set-rate-limit QUEUE N (0 = no limit for the queue)');
        const rate = {
          limit: intOption(limit, 'the rate limit', 0, 1_000_000)!,
          intervalMs: values.interval === undefined ? 1000 : duration(values.interval, '--interval'),
          keyLimit: intOption(values['key-limit'], '--key-limit', 0, 1_000_000) ?? 0,
          keyIntervalMs: values['key-interval'] === undefined ? 1000 : duration(values['key-interval'], '--key-interval'),
        };
        return withClient('queues', values, io, async (client) => show(await client.setRateLimit(name, rate), `set ${name}`));
      }
      case 'set-fair-keys': {
        const name = needQueue();
        if (limit !== 'on' && limit !== 'off') throw new UsageError('say on or off: baton queues set-fair-keys QUEUE on|off [--key-concurrency N]');
        const keyConcurrency = intOption(values['key-concurrency'], '--key-concurrency', 0, 1_000_000) ?? 0;
        if (limit === 'off' && keyConcurrency > 0) throw new UsageError('--key-concurrency needs fair keys on');
        return withClient('queues', values, io, async (client) =>
          show(await client.setFairKeys(name, limit === 'on' ? { keyConcurrency } : null), `set ${name}`),
        );
      }
      default:
        throw new UsageError(`unknown action "${action}" (list, pause, resume, set-concurrency, set-rate-limit, set-fair-keys)`);
    }
  },
};

function row(q: QueueSettings): string[] {
  return [
    q.name,
    q.paused ? 'paused' : 'active',
    q.concurrency ? String(q.concurrency) : 'no limit',
    String(q.defaultMaxAttempts),
    q.defaultTimeoutMs ? `${q.defaultTimeoutMs} ms` : 'none',
  ];
}

function describe(q: QueueSettings): string {
  const rate = q.rateLimit;
  const limits = [
    rate?.limit ? `at most ${rate.limit} starts per ${rate.intervalMs} ms` : '',
    rate?.keyLimit ? `at most ${rate.keyLimit} starts per ${rate.keyIntervalMs} ms per key` : '',
    q.fairKeys ? `fair keys${q.fairKeys.keyConcurrency ? ` (at most ${q.fairKeys.keyConcurrency} running per key)` : ''}` : '',
  ].filter(Boolean);
  return `${q.paused ? 'paused' : 'active'}, ${q.concurrency ? `at most ${q.concurrency} running` : 'no concurrency limit'}${limits.map((l) => `, ${l}`).join('')}`;
}
