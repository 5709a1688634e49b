/**
 * What the Lease session's unit tests share (lease-session*.test.ts): a session on a fake driver slice,
 * dispatcher and clock that records every event it emits, and builders for the worker's messages.
 */
import { expect } from 'vitest';
import type { LeaseEvent, ReportedResult, WorkerHello, WorkerMessage } from '../../server/src/core/lease-events.ts';
import { LeaseSession, type LeaseSessionOptions } from '../../server/src/core/lease-session.ts';
import type { FinishedAttempt } from '../../server/src/core/observer.ts';
import { BrokerError, type ErrorKind } from '../../server/src/domain/errors.ts';
import type { Assignment, FailureReport, SuccessReport } from '../../server/src/domain/job.ts';
import { createLogger } from '../../server/src/logger.ts';
import type { HeartbeatOutcome, SnoozeReport } from '../../server/src/store/driver.ts';
import { assignment } from './assignments.ts';
import { settle } from './fake-clock.ts';

export const STALE = 'stale lease: the job is no longer held under this token (it expired, was cancelled or was already reported)';
export const encode = (text: string) => new TextEncoder().encode(text);

export const message = (parts: Partial<WorkerMessage>): WorkerMessage => ({ credits: 0, results: [], progress: [], ...parts });
export const hello = (parts: Partial<WorkerHello> = {}): WorkerHello => ({ workerId: 'w1', queues: ['q'], capacity: 5, protocolVersion: 1, ...parts });

/** Job `id`, handed over under lease token `${id}0`. */
export const job = (id: string): Assignment => assignment(id);

export const success = (held: Assignment, json = '{"ok":true}'): ReportedResult => ({ jobId: held.id, leaseToken: held.leaseToken, resultJson: encode(json) });
export const failure = (held: Assignment, text: string, retryAfterMs: number | null = null): ReportedResult => ({
  jobId: held.id,
  leaseToken: held.leaseToken,
  resultJson: new Uint8Array(0),
  failure: { message: text, nonRetryable: false, retryAfterMs },
});
export const snooze = (held: Assignment, delayMs: number): ReportedResult => ({
  jobId: held.id,
  leaseToken: held.leaseToken,
  resultJson: new Uint8Array(0),
  snooze: { delayMs },
});

function describeEvent(event: LeaseEvent): string {
  switch (event.type) {
    case 'welcome':
      return `welcome ${event.sessionId}`;
    case 'jobs':
      return `jobs ${event.jobs.map((j) => j.id).join(',')}`;
    case 'acks':
      return `acks ${event.acks.map((ack) => `${ack.jobId}:${ack.refusal === null ? 'ok' : 'refused'}`).join(',')}`;
    case 'lost':
      return `lost ${event.leaseTokens.join(',')}`;
    case 'cancel':
      return `cancel ${event.jobId} (${event.reason})`;
    case 'drain':
      return `drain ${event.deadlineMs}`;
  }
}

/** A session with a fake store and dispatcher; `log` is everything that happened, in order. */
export function harness() {
  const log: string[] = [];
  const events: LeaseEvent[] = [];
  const finished: FinishedAttempt[] = [];
  const time = { now: 1000 };
  const control = {
    /** Ids the database no longer has under the reported token (stale results). */
    stale: new Set<string>(),
    heartbeat: { lost: [], cancelRequested: [] } as HeartbeatOutcome | null,
    /** While set, result writes wait for it. */
    writes: null as Promise<void> | null,
    /** While set, claims under way (dispatcher.settle) wait for it. */
    claims: null as Promise<void> | null,
    completed: [] as SuccessReport[],
    failed: [] as FailureReport[],
    snoozed: [] as SnoozeReport[],
    /** Ids whose cancel was requested: a snooze of them ends CANCELLED. */
    cancelRequested: new Set<string>(),
    progress: [] as string[],
  };
  const store: LeaseSessionOptions['store'] = {
    async sessionOpen(params) {
      log.push(`store: open ${params.workerId} [${params.queues}] capacity ${params.capacity}`);
      return '41';
    },
    async sessionHeartbeat(params) {
      log.push(`store: heartbeat [${params.tokens}]`);
      return control.heartbeat;
    },
    async sessionRelease(params) {
      log.push(`store: release (${params.reason})`);
      return 0;
    },
    async jobComplete({ results }) {
      if (results.length > 0) log.push(`store: complete [${results.map((r) => r.id)}]`);
      control.completed.push(...results);
      await control.writes;
      return new Set(results.map((r) => r.id).filter((id) => !control.stale.has(id)));
    },
    async jobFail({ failures }) {
      if (failures.length > 0) log.push(`store: fail [${failures.map((f) => f.id)}]`);
      control.failed.push(...failures);
      await control.writes;
      return new Map(failures.filter((f) => !control.stale.has(f.id)).map((f) => [f.id, f.nonRetryable ? 'failed' : 'scheduled'] as const));
    },
    async jobSnooze({ snoozes }) {
      log.push(`store: snooze [${snoozes.map((s) => s.id)}]`);
      control.snoozed.push(...snoozes);
      await control.writes;
      return new Map(
        snoozes.filter((s) => !control.stale.has(s.id)).map((s) => [s.id, control.cancelRequested.has(s.id) ? 'cancelled' : 'scheduled'] as const),
      );
    },
    async jobRecordProgress({ updates }) {
      control.progress.push(...updates.map((u) => `${u.id}=${u.progressJson}`));
    },
  };
  const dispatcher: LeaseSessionOptions['dispatcher'] = {
    register: () => log.push('dispatcher: register'),
    unregister: () => log.push('dispatcher: unregister'),
    wake: (queue) => log.push(`dispatcher: wake ${queue}`),
    settle: async () => {
      log.push('dispatcher: settle');
      await control.claims;
    },
  };
  const session = new LeaseSession({
    store,
    dispatcher,
    logger: createLogger('error'),
    brokerId: 'broker-1',
    leaseTtlMs: 30_000,
    heartbeatIntervalMs: 10_000,
    maxPayloadBytes: 100,
    maxCredits: 50,
    onEvent: (event) => {
      events.push(event);
      log.push(`worker: ${describeEvent(event)}`);
    },
    observer: {
      started: (jobs) => log.push(`observer: started ${jobs.map((j) => j.id)}`),
      finished: (attempts) => finished.push(...attempts),
      leasesExpired: () => {},
      timedOut: () => {},
    },
    now: () => time.now,
  });

  /** Says hello with `credits`, hands over `jobs`, and clears the log: the state most tests start from. */
  async function open(options: { capacity?: number; credits?: number; jobs?: Assignment[] } = {}) {
    await session.receive(message({ hello: hello({ capacity: options.capacity ?? 5 }), credits: options.credits ?? 5 }));
    const jobs = options.jobs ?? [];
    if (jobs.length > 0) session.deliver(jobs, session.reserve(jobs.length, 'q'));
    log.length = 0;
    events.length = 0;
  }

  return { session, log, events, finished, time, control, open };
}

export async function refusal(work: Promise<unknown>): Promise<{ kind: ErrorKind; message: string }> {
  const error = await work.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof BrokerError)) throw new Error(`expected a BrokerError, got ${String(error)}`);
  return { kind: error.kind, message: error.message };
}
