/**
 * Snoozes on the Lease session (server/src/core/lease-session.ts) on its own: a fake store slice, no
 * database, no gRPC. A snooze is an outcome like a result: it takes the job out of the stream's
 * hands, is written with the other results of its message, and is answered in its ack.
 */
import { describe, expect, it } from 'vitest';
import { STALE, failure, harness, job, message, snooze, success } from './support/lease-session-harness.ts';

describe('snoozes', () => {
  it('records snoozes beside successes and failures of the same message, and acks each in its place', async () => {
    const { session, open, events, control, finished, log } = harness();
    const [one, two, three, four] = ['1', '2', '3', '4'].map(job);
    await open({ capacity: 10, credits: 10, jobs: [one, two, three, four] });
    control.stale.add('4');
    await session.receive(message({ results: [success(one), snooze(two, 1500), failure(three, 'boom'), snooze(four, 10)] }));
    expect(control.snoozed).toEqual([
      { id: '2', token: '20', delayMs: 1500 },
      { id: '4', token: '40', delayMs: 10 },
    ]);
    expect(control.completed.map((r) => r.id)).toEqual(['1']);
    expect(control.failed.map((f) => f.id)).toEqual(['3']);
    expect(log.filter((line) => line.startsWith('store:'))).toEqual(['store: complete [1]', 'store: fail [3]', 'store: snooze [2,4]']);
    expect(events).toEqual([
      {
        type: 'acks',
        acks: [
          { jobId: '1', leaseToken: '10', refusal: null },
          { jobId: '2', leaseToken: '20', refusal: null },
          { jobId: '3', leaseToken: '30', refusal: null },
          { jobId: '4', leaseToken: '40', refusal: STALE },
        ],
      },
    ]);
    expect(session.heldCount).toBe(0);
    // A snooze ends no attempt: the attempts' metrics hear of the success and the failure only.
    expect(finished.map((f) => [f.id, f.status])).toEqual([
      ['1', 'completed'],
      ['3', 'scheduled'],
    ]);
  });

  it('a snooze wins over a failure or a result sent with it', async () => {
    const { session, open, control } = harness();
    const [one] = ['1'].map(job);
    await open({ jobs: [one] });
    await session.receive(message({ results: [{ ...failure(one, 'ignored'), snooze: { delayMs: 100 } }] }));
    expect(control.failed).toEqual([]);
    expect(control.snoozed).toEqual([{ id: '1', token: '10', delayMs: 100 }]);
  });

  it('refuses a delay of 0 or above 365 days in the ack, recording nothing', async () => {
    const { session, open, events, control, log } = harness();
    const [one, two] = ['1', '2'].map(job);
    await open({ jobs: [one, two] });
    await session.receive(message({ results: [snooze(one, 0), snooze(two, 365 * 24 * 3600_000 + 1)] }));
    const refusal = 'snooze.delay must be more than 0 and at most 365 days';
    expect(events).toEqual([
      {
        type: 'acks',
        acks: [
          { jobId: '1', leaseToken: '10', refusal },
          { jobId: '2', leaseToken: '20', refusal },
        ],
      },
    ]);
    expect(control.snoozed).toEqual([]);
    expect(log).not.toContain('store: snooze []');
    expect(session.heldCount).toBe(2);
    await session.receive(message({ results: [snooze(one, 365 * 24 * 3600_000)] }));
    expect(control.snoozed).toEqual([{ id: '1', token: '10', delayMs: 365 * 24 * 3600_000 }]);
  });

  it('a snooze after a cancel request ends the attempt CANCELLED, and the metrics hear of it', async () => {
    const { session, open, control, finished } = harness();
    const [one] = ['1'].map(job);
    await open({ jobs: [one] });
    control.cancelRequested.add('1');
    await session.receive(message({ results: [snooze(one, 1000)] }));
    expect(finished.map((f) => [f.id, f.status])).toEqual([['1', 'cancelled']]);
  });
});
