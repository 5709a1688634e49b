import type { Assignment, Enqueued, JobRecord, NewJob } from '../domain/job.ts';
import type { StoreDriver } from '../store/driver.ts';
import type { Consumer, Dispatcher } from './dispatcher.ts';

/**
 * Inserts enqueued jobs, handing those due now straight to streams that wait for their queue with
 * credit and nothing to claim: the insert assigns them (NewJob.handoff), and they are delivered
 * as soon as it commits, without a claim in between. An idle worker thus starts a new job one
 * statement and one commit after its enqueue instead of two. Jobs no stream can take are inserted
 * as usual.
 */
export async function enqueueHandingOff(params: {
  jobs: NewJob[];
  store: Pick<StoreDriver, 'jobEnqueue'>;
  dispatcher: Dispatcher;
}): Promise<Enqueued<JobRecord>[]> {
  const { jobs, store, dispatcher } = params;
  // By session: one stream may be offered jobs of several of its queues.
  const offers = new Map<string, { consumer: Consumer; reserved: number; jobs: Assignment[] }>();
  const dueNow = Map.groupBy(
    jobs.filter((job) => job.runAt === null && (job.delayMs ?? 0) <= 0),
    (job) => job.queue,
  );
  for (const [queue, due] of dueNow) {
    let next = 0;
    for (const { consumer, reserved } of dispatcher.offer(queue, due.length)) {
      const offer = offers.get(consumer.sessionId) ?? { consumer, reserved: 0, jobs: [] };
      offer.reserved += reserved;
      offers.set(consumer.sessionId, offer);
      for (const job of due.slice(next, next + reserved)) job.handoff = { sessionId: consumer.sessionId, workerId: consumer.workerId };
      next += reserved;
    }
  }
  if (offers.size === 0) return store.jobEnqueue({ jobs });
  const stored = store.jobEnqueue({ jobs });
  dispatcher.track(stored);
  try {
    const entries = await stored;
    entries.forEach(({ assignment }, index) => {
      const sessionId = jobs[index].handoff?.sessionId;
      if (assignment && sessionId) offers.get(sessionId)!.jobs.push(assignment);
    });
    return entries;
  } finally {
    for (const { consumer, jobs: handed, reserved } of offers.values()) dispatcher.deliver(consumer, handed, reserved);
  }
}
