/**
 * `baton enqueue` with issue 13's options (docs/scheduling.md): a unique key with its window and
 * statuses, a rate-limit key and a concurrency key, through the real CLI in a child process against
 * a real broker, checked in the database; a repeat of a held unique key prints the holder as a
 * duplicate and stores nothing.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CliBroker, useCliBroker } from './support/cli-broker.ts';
import { query } from './support/database.ts';

let db: CliBroker['db'];
const cli = useCliBroker();
const { baton } = cli;
// After the broker's own set-up (hooks run in the order they were registered).
beforeAll(() => {
  ({ db } = cli);
});

describe('baton enqueue: unique, rate-limit and concurrency keys', () => {
  it('stores a unique key; a second enqueue with it prints the holder as a duplicate', async () => {
    const first = await baton(['enqueue', '--queue', 'cli-unique', '--payload', '{"user": 42}', '--unique', 'user:42', '--unique-window', '10m']);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    const id = first.stdout.trim();
    expect(id).toMatch(/^\d+$/);

    const second = await baton(['enqueue', '--queue', 'cli-unique', '--payload', '{"user": 43}', '--unique', 'user:42']);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(`${id}\n`);
    expect(second.stderr).toBe(`baton enqueue: duplicate: job ${id} (pending) holds the unique key "user:42"; nothing new was stored\n`);

    const jobs = await query(db.url, `select id::text, payload from baton_jobs where queue = 'cli-unique'`);
    expect(jobs).toEqual([{ id, payload: { user: 42 } }]);
    const [key] = await query(
      db.url,
      `select job_id::text, states, expires_at - now() < interval '10 minutes 1 second' as windowed from baton_unique_keys where queue = 'cli-unique'`,
    );
    expect(key).toMatchObject({ job_id: id, windowed: true });
  });

  it('passes --unique-states, --rate-limit-key and --concurrency-key through', async () => {
    const id = (
      await baton([
        'enqueue',
        '--queue',
        'cli-keys',
        '--unique',
        'daily',
        '--unique-states',
        'pending,completed',
        '--rate-limit-key',
        'acme',
        '--concurrency-key',
        'tenant-7',
      ])
    ).stdout.trim();
    const [job] = await query(db.url, `select rate_limit_key, concurrency_key from baton_jobs where id = $1`, [id]);
    expect(job).toEqual({ rate_limit_key: 'acme', concurrency_key: 'tenant-7' });
    const [key] = await query(db.url, `select states from baton_unique_keys where queue = 'cli-keys' and unique_key = 'daily'`);
    expect([...key.states].sort()).toEqual(['completed', 'pending']);
  });

  it('reads "unique", "rateLimitKey" and "concurrencyKey" from the lines of a jobs file', async () => {
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'baton-cli-')), 'jobs.ndjson');
    const line = (n: number) => JSON.stringify({ payload: { n }, unique: { key: 'nightly', window: '1h' }, rateLimitKey: 'acme', concurrencyKey: 't1' });
    await writeFile(file, `${line(1)}\n${line(2)}\n`);
    const run = await baton(['enqueue', '--file', file, '--queue', 'cli-unique-file']);
    expect(run).toMatchObject({ code: 0, stdout: 'enqueued 1 jobs (1 duplicates of existing keys skipped)\n' });
    const jobs = await query(db.url, `select payload, rate_limit_key, concurrency_key from baton_jobs where queue = 'cli-unique-file'`);
    expect(jobs).toEqual([{ payload: { n: 1 }, rate_limit_key: 'acme', concurrency_key: 't1' }]);
  });

  it('refuses unusable combinations with a usage error', async () => {
    const both = await baton(['enqueue', '--queue', 'q', '--key', 'a', '--unique', 'b']);
    expect(both).toMatchObject({ code: 2 });
    expect(both.stderr).toContain('give --key (idempotency) or --unique, not both');
    const lone = await baton(['enqueue', '--queue', 'q', '--unique-window', '10m']);
    expect(lone).toMatchObject({ code: 2 });
    expect(lone.stderr).toContain('--unique-window and --unique-states go with --unique KEY');
    const status = await baton(['enqueue', '--queue', 'q', '--unique', 'k', '--unique-states', 'pending,done']);
    expect(status).toMatchObject({ code: 2 });
    expect(status.stderr).toContain('--unique-states: unknown status "done"');
  });
});
