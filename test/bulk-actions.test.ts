/**
 * Admin.BulkAction on both ports: each action through the API (a RUNNING job's worker told to stop
 * over its Lease stream), batches resumed by the cursor with a dry run that counts exactly what the
 * real run then changes, and the status bad input gets.
 */
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, type Client } from '@connectrpc/connect';
import { type Admin, BulkActionKind } from '@baton/worker-sdk/gen/admin';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { BulkActionRequestSchema } from '@baton/worker-sdk/gen/admin';
import { describe, expect, it } from 'vitest';
import { code, usePortBroker } from './support/broker.ts';
import { LeaseDriver } from './support/lease-driver.ts';

type BulkInit = MessageInitShape<typeof BulkActionRequestSchema>;

/** Every batch until the cursor comes back empty, as the CLI loops: totals and the number of calls. */
async function runAll(admin: Client<typeof Admin>, request: BulkInit) {
  let cursor = '';
  let changed = 0n;
  let cancelRequested = 0n;
  let calls = 0;
  do {
    const answer = await admin.bulkAction({ ...request, cursor });
    calls++;
    changed += answer.changed;
    cancelRequested += answer.cancelRequested;
    cursor = answer.cursor;
  } while (cursor);
  return { changed, cancelRequested, calls };
}

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const baton = usePortBroker(port);

  const statusesOf = async (queue: string) => (await baton.clients.broker.list({ queue, pageSize: 100 })).jobs.map((job) => job.status).sort();

  it('cancels a queue in batches: pending jobs at once, a running one through its worker', async () => {
    await baton.clients.broker.enqueue({ queue: 'bulk-cancel' });
    const worker = new LeaseDriver(baton.clients.broker);
    worker.hello(['bulk-cancel'], 1, 1, 'bulk-worker');
    const [held] = await worker.jobsReceived(1);
    await baton.clients.broker.enqueueBatch({ jobs: Array.from({ length: 4 }, () => ({ queue: 'bulk-cancel', labels: { team: 'x' } })) });

    const request: BulkInit = { action: BulkActionKind.CANCEL, filter: { queue: 'bulk-cancel' }, limit: 2 };
    const dry = await runAll(baton.clients.admin, { ...request, dryRun: true });
    expect(dry).toEqual({ changed: 5n, cancelRequested: 1n, calls: 3 });
    expect(await statusesOf('bulk-cancel')).toEqual([JobStatus.PENDING, JobStatus.PENDING, JobStatus.PENDING, JobStatus.PENDING, JobStatus.RUNNING]);
    expect(await runAll(baton.clients.admin, request)).toEqual(dry);
    const notice = await worker.until((messages) => messages.flatMap((m) => m.cancels).find((c) => c.jobId === held.jobId));
    expect(notice).toMatchObject({ leaseToken: held.leaseToken, reason: 'cancelled' });
    expect(await statusesOf('bulk-cancel')).toEqual([...new Array(4).fill(JobStatus.CANCELLED), JobStatus.RUNNING].sort());
    worker.end();
    await worker.done;
  });

  it('retries and deletes by label and creation time; a dry run counts exactly what the run then changes', async () => {
    const { jobs } = await baton.clients.broker.enqueueBatch({
      jobs: Array.from({ length: 6 }, (_, i) => ({ queue: 'bulk-retry', labels: { tenant: i % 2 ? 'odd' : 'even' } })),
    });
    const all = jobs.map((entry) => entry.job!.id);
    expect((await runAll(baton.clients.admin, { action: BulkActionKind.CANCEL, filter: { queue: 'bulk-retry' } })).changed).toBe(6n);
    const filter = { labels: { tenant: 'odd' }, createdAfter: timestampFromDate(new Date(Date.now() - 60_000)) };
    const dry = await runAll(baton.clients.admin, { action: BulkActionKind.RETRY, filter, dryRun: true, limit: 1 });
    expect(dry).toMatchObject({ changed: 3n, calls: 4 });
    expect((await runAll(baton.clients.admin, { action: BulkActionKind.RETRY, filter, limit: 1 })).changed).toBe(dry.changed);
    expect(await statusesOf('bulk-retry')).toEqual([1, 1, 1, 6, 6, 6].map((s) => s as JobStatus));

    const deleting: BulkInit = { action: BulkActionKind.DELETE, filter: { queue: 'bulk-retry', statuses: [JobStatus.CANCELLED] } };
    expect((await baton.clients.admin.bulkAction({ ...deleting, dryRun: true })).changed).toBe(3n);
    expect(await baton.clients.admin.bulkAction(deleting)).toMatchObject({ changed: 3n, cursor: '' });
    expect((await baton.clients.broker.list({ queue: 'bulk-retry' })).jobs).toHaveLength(3);
    expect(await code(baton.clients.broker.get({ id: all[0] }))).toBe(Code.NotFound);
  });

  it('answers bad input with INVALID_ARGUMENT, and an empty filter only with `all`', async () => {
    const bad: BulkInit[] = [
      { filter: { queue: 'q' } },
      { action: BulkActionKind.RETRY },
      { action: BulkActionKind.RETRY, filter: {} },
      { action: BulkActionKind.RETRY, filter: { queue: 'not a queue!' } },
      { action: BulkActionKind.RETRY, filter: { statuses: [JobStatus.RUNNING] } },
      { action: BulkActionKind.DELETE, filter: { statuses: [JobStatus.PENDING] } },
      { action: BulkActionKind.CANCEL, filter: { statuses: [99 as JobStatus] } },
      { action: BulkActionKind.CANCEL, filter: { queue: 'q' }, limit: 10_001 },
      { action: BulkActionKind.CANCEL, filter: { queue: 'q' }, limit: -1 },
      { action: BulkActionKind.CANCEL, filter: { queue: 'q' }, cursor: 'nonsense' },
      { action: BulkActionKind.CANCEL, filter: { labels: { '': 'x' } } },
      {
        action: BulkActionKind.CANCEL,
        filter: { createdAfter: timestampFromDate(new Date(2030, 0, 1)), createdBefore: timestampFromDate(new Date(2020, 0, 1)) },
      },
    ];
    for (const request of bad)
      expect(
        await code(baton.clients.admin.bulkAction(request)),
        JSON.stringify(request, (_, v) => (typeof v === 'bigint' ? String(v) : v)),
      ).toBe(Code.InvalidArgument);
    const everything = await baton.clients.admin.bulkAction({ action: BulkActionKind.RETRY, filter: { all: true }, dryRun: true });
    expect(everything.changed).toBeGreaterThanOrEqual(0n);
  });
});
