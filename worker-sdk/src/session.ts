// One Lease stream as the worker sees it: what is owed to the broker on it (results, progress, a
// heartbeat, acks awaited) and how far it is towards its end. worker.ts drives it; the jobs it
// carries are tracked in held-jobs.ts.

import type { JobProgress, JobResult, LeaseRequest, LeaseResponse } from './gen/baton/v1/lease_pb.ts';
import type { JobContext } from './handler.ts';
import type { BidiStream } from './transport.ts';

/** A result sent to the broker: what to announce once the broker says whether it took it. */
export interface Reported {
  readonly job: JobContext;
  readonly outcome: { ok: true; value: unknown } | { ok: false; error: Error };
}

/** How one Lease stream ended. */
export interface SessionEnd {
  welcomed: boolean;
  drained: boolean;
  error?: Error;
}

/** One Lease stream and what is owed on it. */
export interface Session {
  readonly call: BidiStream<LeaseRequest, LeaseResponse>;
  readonly finish: (end: SessionEnd) => void;
  welcomed: boolean;
  draining: boolean;
  /** We half-closed the stream and wait for the broker to end it. */
  ending: boolean;
  ended: boolean;
  /** Credits granted and not yet used by assignments. */
  credit: number;
  results: JobResult[];
  progress: Map<string, JobProgress>;
  heartbeatDue: boolean;
  timers: NodeJS.Timeout[];
  /** Results sent and not yet acknowledged, by lease token. */
  unacked: Map<string, Reported>;
}

/** A stream just opened: nothing granted, owed or acknowledged yet. */
export function openSession(call: BidiStream<LeaseRequest, LeaseResponse>, finish: (end: SessionEnd) => void): Session {
  return {
    call,
    finish,
    welcomed: false,
    draining: false,
    ending: false,
    ended: false,
    credit: 0,
    results: [],
    progress: new Map(),
    heartbeatDue: false,
    timers: [],
    unacked: new Map(),
  };
}
