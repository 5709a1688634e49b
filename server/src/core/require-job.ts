import { notFound } from '../domain/errors.ts';
import type { JobRecord } from '../domain/job.ts';
import type { StoreDriver } from '../store/driver.ts';

/** The job with this id, or NOT_FOUND with a message that says why a job the caller knew may be gone. */
export async function requireJob(store: Pick<StoreDriver, 'jobGet'>, id: string): Promise<JobRecord> {
  const job = await store.jobGet({ id });
  if (!job) throw notFound(`job ${id} does not exist (it may have been pruned after its retention period)`);
  return job;
}
