/** What `baton jobs` and its bulk actions share: reading `--status`. */
import type { JobStatusName } from '@baton/worker-sdk';
import { JOB_STATUSES, type JobStatus } from '../domain/job-status.ts';
import { UsageError } from './command.ts';

/** `--status a,b` as status names, each one of `allowed` (by default any status). */
export function statuses(text: string, allowed: readonly JobStatus[] = JOB_STATUSES): JobStatusName[] {
  return text.split(',').map((raw) => {
    const name = raw
      .trim()
      .toLowerCase()
      .replace(/^job_status_/, '') as JobStatus;
    if (!JOB_STATUSES.includes(name)) throw new UsageError(`--status: unknown status "${raw}" (${allowed.join(', ')})`);
    if (!allowed.includes(name)) throw new UsageError(`--status: "${raw}" is not one of ${allowed.join(', ')}`);
    return name;
  });
}
