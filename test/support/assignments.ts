import type { Assignment } from '../../server/src/domain/job.ts';

/** Job `id` as a claim hands it to a worker: under lease token `${id}0`, first of three attempts. */
export function assignment(id: string, overrides: Partial<Assignment> = {}): Assignment {
  return {
    id,
    leaseToken: `${id}0`,
    queue: 'q',
    payloadJson: '{}',
    labelsJson: '{}',
    attempt: 1,
    maxAttempts: 3,
    timeoutMs: 0,
    createdAt: new Date(0),
    runAt: new Date(0),
    traceparent: null,
    priority: 0,
    ...overrides,
  };
}
