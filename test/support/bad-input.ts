/**
 * What the bad-input test files share: a broker with small limits on a database of its own, and the
 * checks that a refused call answered the right code, named what to fix, and changed nothing stored.
 */
import { beforeAll, expect } from 'vitest';
import { Code, type ConnectError } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { JobAssignment, LeaseRequestSchema } from '@baton/worker-sdk/gen/lease';
import type { RunningBroker } from '../../server/src/broker.ts';
import { type createTestDatabase, query } from './database.ts';
import { grpcClients, refusal, useTestBroker } from './broker.ts';

export { refusal };

export type LeaseInit = MessageInitShape<typeof LeaseRequestSchema>;
export type ResultInit = NonNullable<LeaseInit['results']>[number];

export const MAX_PAYLOAD_BYTES = 4096;
export const MAX_BATCH_SIZE = 10;
export const MAX_PAGE_SIZE = 100;

export const bytes = (text: string) => new TextEncoder().encode(text);
export const json = (value: unknown) => bytes(JSON.stringify(value));

// Exported as live bindings, so the tests name them as plain variables; useBadInputBroker() sets
// them before the file's tests run, and each test file has a module instance of its own.
export let db: Awaited<ReturnType<typeof createTestDatabase>>;
export let broker: RunningBroker;
export let clients: ReturnType<typeof grpcClients>;
/** Clients of each port: the main one (connect-node) and BATON_GRPC_PORT (grpc-js), one contract. */
export const portClients = {} as Record<'main' | 'grpc', ReturnType<typeof grpcClients>>;

/** Starts the file's broker, with the limits above, on both ports, before its tests and stops it after them. */
export function useBadInputBroker(): void {
  const used = useTestBroker({ grpcPort: 0, maxPayloadBytes: MAX_PAYLOAD_BYTES, maxBatchSize: MAX_BATCH_SIZE, maxPageSize: MAX_PAGE_SIZE });
  beforeAll(() => {
    ({ db, broker, clients } = used);
    portClients.main = clients;
    portClients.grpc = grpcClients(`http://127.0.0.1:${broker.grpcPort}`);
  });
}

/** Everything a refused call must leave as it was: the jobs (count and state) and the queues. */
export async function stored(): Promise<{ jobs: number; jobDigest: string; queues: number; queueDigest: string }> {
  const [row] = await query(
    db.url,
    `select
       (select count(*)::int from baton_jobs) as jobs,
       (select md5(coalesce(string_agg(concat_ws('/', id, queue, status, attempt, lease_token, cancel_requested, run_at, finished_at), ',' order by id), ''))
          from baton_jobs) as "jobDigest",
       (select count(*)::int from baton_queues) as queues,
       (select md5(coalesce(string_agg(concat_ws('/', name, paused, concurrency), ',' order by name), '')) from baton_queues) as "queueDigest"`,
  );
  return row;
}

export function expectMentions(text: string, mentions: string | RegExp): void {
  if (typeof mentions === 'string') expect(text).toContain(mentions);
  else expect(text).toMatch(mentions);
}

/** The call fails with `code`, its message mentions `mentions`, and nothing stored changed. */
export async function expectRefused(call: () => Promise<unknown>, code: Code, mentions: string | RegExp): Promise<ConnectError> {
  const before = await stored();
  const error = await refusal(call());
  expect(Code[error.code], error.rawMessage).toBe(Code[code]);
  expectMentions(error.rawMessage, mentions);
  expect(await stored()).toEqual(before);
  return error;
}

export const success = (job: JobAssignment, result: unknown = 'ok'): ResultInit => ({ jobId: job.jobId, leaseToken: job.leaseToken, resultJson: json(result) });
