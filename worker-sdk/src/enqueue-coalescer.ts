// Concurrent enqueue() calls of one Client, sent together. The first call goes out at once as an
// Enqueue; while it is in flight, later calls wait and then leave together in one EnqueueBatch (one
// RPC, one transaction, one commit). An application that enqueues from many requests at once thus
// pays for a handful of RPCs instead of one each, and a lone call waits for nothing. Google Cloud
// Pub/Sub's publisher batches single publish() calls the same way; here no timer is involved.
//
// Each call keeps the answer it would have had alone: its own job, its own `duplicate`, its own
// error. A batch is all or none, so when the broker refuses one for what a job says (a bad field, a
// size limit, a queue the key may not use), nothing was stored and each job of it is sent again as
// its own Enqueue. Errors that say nothing about the jobs (the broker unreachable, a deadline) go to
// every call of the batch as they are: a batch whose answer was lost may have been stored, and
// sending it again would store it twice.

import type { MessageInitShape } from '@bufbuild/protobuf';
import type { EnqueueRequestSchema, EnqueueResponse } from './gen/baton/v1/broker_pb.ts';
import { BatonError, type StatusName } from './errors.ts';

type EnqueueRequestInit = MessageInitShape<typeof EnqueueRequestSchema>;

/** Stores one job: an Enqueue RPC, or a place in the next batch. */
export type EnqueueCall = (request: EnqueueRequestInit) => Promise<EnqueueResponse>;

export interface EnqueueSender {
  one(request: EnqueueRequestInit): Promise<EnqueueResponse>;
  many(requests: EnqueueRequestInit[]): Promise<EnqueueResponse[]>;
}

export interface CoalesceLimits {
  /** RPCs at once; a call waits only while this many are in flight. */
  maxInFlight: number;
  maxJobs: number;
  /** Payload bytes of one batch, near enough (see `sizeOf`). */
  maxBytes: number;
}

/** Far under the broker's batch limit (10,000 by default) and its message size limit. */
export const COALESCE_LIMITS: CoalesceLimits = { maxInFlight: 2, maxJobs: 1_000, maxBytes: 1 << 20 };

/** Refusals about the jobs themselves: nothing of the batch was stored. */
const ABOUT_THE_JOBS = new Set<StatusName>([
  'INVALID_ARGUMENT',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'PERMISSION_DENIED',
  'NOT_FOUND',
  'OUT_OF_RANGE',
  'ALREADY_EXISTS',
]);

interface Waiting {
  request: EnqueueRequestInit;
  resolve(response: EnqueueResponse): void;
  reject(error: unknown): void;
}

export function createEnqueueCoalescer(send: EnqueueSender, limits: CoalesceLimits = COALESCE_LIMITS): EnqueueCall {
  const waiting: Waiting[] = [];
  let inFlight = 0;

  const takeGroup = (): Waiting[] => {
    const group = [waiting.shift()!];
    let bytes = sizeOf(group[0].request);
    while (waiting.length > 0 && group.length < limits.maxJobs && bytes + sizeOf(waiting[0].request) <= limits.maxBytes) {
      bytes += sizeOf(waiting[0].request);
      group.push(waiting.shift()!);
    }
    return group;
  };

  const alone = (call: Waiting) => send.one(call.request).then(call.resolve, call.reject);

  const together = (group: Waiting[]) =>
    send.many(group.map((call) => call.request)).then(
      (responses) => group.forEach((call, i) => call.resolve(responses[i])),
      (error: unknown) => {
        if (error instanceof BatonError && ABOUT_THE_JOBS.has(error.code)) return Promise.all(group.map(alone));
        for (const call of group) call.reject(error);
      },
    );

  const flush = () => {
    while (waiting.length > 0 && inFlight < limits.maxInFlight) {
      const group = takeGroup();
      inFlight++;
      void (group.length === 1 ? alone(group[0]) : together(group)).finally(() => {
        inFlight--;
        flush();
      });
    }
  };

  return (request) =>
    new Promise<EnqueueResponse>((resolve, reject) => {
      waiting.push({ request, resolve, reject });
      flush();
    });
}

/** What a job adds to a batch's message, near enough: its payload and a margin for the rest. */
function sizeOf(request: EnqueueRequestInit): number {
  return (request.payloadJson?.byteLength ?? 0) + 512;
}
