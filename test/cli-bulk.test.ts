/**
 * `baton jobs cancel|retry|delete` as a user runs it (the real entry point in a child process,
 * against a real broker): without --yes it only counts, --dry-run counts what --yes then changes,
 * progress per batch on stderr, and the filter's usage errors.
 */
import { beforeAll, expect, it } from 'vitest';
import { type CliBroker, useCliBroker } from './support/cli-broker.ts';

let client: CliBroker['client'];
const cli = useCliBroker();
const { baton } = cli;
// After the broker's own set-up (hooks run in the order they were registered).
beforeAll(() => {
  ({ client } = cli);
});

it('counts without --yes, changes with it, in batches with progress on stderr', async () => {
  await client.enqueueBatch(Array.from({ length: 5 }, () => ({ queue: 'cli-bulk', payload: {}, labels: { team: 'a' } })));
  await client.enqueue('cli-bulk', {}, { labels: { team: 'b' } });

  const asked = await baton(['jobs', 'cancel', '--queue', 'cli-bulk', '--label', 'team=a']);
  expect(asked).toMatchObject({ code: 1, stdout: 'would cancel 5 jobs; run again with --yes to cancel them\n' });
  const dry = await baton(['jobs', 'cancel', '--queue', 'cli-bulk', '--label', 'team=a', '--dry-run', '--limit', '2']);
  expect(dry).toMatchObject({ code: 0, stdout: 'would cancel 5 jobs\n' });
  expect(dry.stderr.trim().split('\n')).toEqual(['counted 2 so far (batch 1)', 'counted 4 so far (batch 2)', 'counted 5 so far (batch 3)']);
  const done = await baton(['jobs', 'cancel', '--queue', 'cli-bulk', '--label', 'team=a', '--yes', '--limit', '2']);
  expect(done).toMatchObject({ code: 0, stdout: 'cancelled 5 jobs\n' });
  expect((await client.list({ queue: 'cli-bulk', statuses: ['pending'] })).jobs).toHaveLength(1);

  const retried = await baton(['jobs', 'retry', '--queue', 'cli-bulk', '--created-after', '1h', '--yes', '--json']);
  expect(JSON.parse(retried.stdout)).toEqual({ action: 'retry', dryRun: false, changed: 5, cancelRequested: 0 });
  await baton(['jobs', 'cancel', '--queue', 'cli-bulk', '--yes']);
  expect(await baton(['jobs', 'delete', '--status', 'cancelled', '--created-before', '2999-01-01', '--yes'])).toMatchObject({
    code: 0,
    stdout: 'deleted 6 jobs\n',
  });
});

it('refuses a missing filter, a status the action does not apply to, and a bad time', async () => {
  const none = await baton(['jobs', 'delete', '--yes']);
  expect(none.code).toBe(2);
  expect(none.stderr).toContain('--all');
  expect((await baton(['jobs', 'delete', '--status', 'running', '--yes'])).stderr).toContain('not one of completed, failed, cancelled');
  expect((await baton(['jobs', 'retry', '--queue', 'q', '--created-before', 'yesterday'])).stderr).toContain('ISO date');
  expect((await baton(['jobs', 'retry', '--all', '--dry-run', '--yes'])).code).toBe(2);
  expect(await baton(['jobs', 'retry', '--all', '--dry-run'])).toMatchObject({ code: 0, stdout: 'would retry 0 jobs\n' });
});
