/**
 * The Lease stream in the broker's own terms (docs/protocol.md): what a worker says, and what the
 * broker tells it. The session (./lease-session.ts) takes and emits these; the api layer
 * (server/src/api/lease-messages.ts) converts them from and to the protobuf messages, so that
 * the protocol's rules can be read and tested without a wire format.
 */
import type { Assignment } from '../domain/job.ts';

/** The newest protocol this broker speaks; a worker's hello may name this one or an older one. */
export const PROTOCOL_VERSION = 1;

/** The first thing a worker says: who it is, what it serves, how many jobs it can hold. */
export interface WorkerHello {
  workerId: string;
  queues: string[];
  capacity: number;
  /** 0 when the worker named none. */
  protocolVersion: number;
}

/** A failed attempt as the worker reported it. */
export interface ReportedFailure {
  message: string;
  nonRetryable: boolean;
  /** The worker's "not before" for the retry; null when it named none (unchecked: may be negative). */
  retryAfterMs: number | null;
}

/** A snooze as the worker reported it: run again after `delayMs`, the attempt given back. */
export interface ReportedSnooze {
  /** 0 when the worker named no delay (unchecked: may be out of range). */
  delayMs: number;
}

/** An attempt's outcome as the worker reported it, unchecked: the session decides whether to record it. */
export interface ReportedResult {
  jobId: string;
  leaseToken: string;
  /** A success's result, as the JSON text's bytes; empty for none. */
  resultJson: Uint8Array;
  /** Set when the attempt failed (`resultJson` is then ignored). */
  failure?: ReportedFailure;
  /** Set when the handler snoozed the job (`resultJson` and `failure` are then ignored). */
  snooze?: ReportedSnooze;
}

/** Progress of a held job, as the JSON text's bytes, unchecked. */
export interface ReportedProgress {
  jobId: string;
  leaseToken: string;
  progressJson: Uint8Array;
}

/** One message from the worker; the parts it carries are handled in this order: results, credits, progress, heartbeat. */
export interface WorkerMessage {
  /** Only on the first message. */
  hello?: WorkerHello;
  /** More jobs the worker can take (added to what it granted before). */
  credits: number;
  results: ReportedResult[];
  progress: ReportedProgress[];
  /** The lease tokens the worker holds, when the message is a heartbeat (an empty list still renews the session). */
  heartbeat?: string[];
}

/** The broker's answer to one result: recorded, or refused and why. */
export interface ResultAck {
  jobId: string;
  leaseToken: string;
  /** Null when the result was recorded; otherwise what the worker should know (the job leaves its hands either way). */
  refusal: string | null;
}

/** What the broker tells a worker, in the order it tells it. */
export type LeaseEvent =
  | {
      type: 'welcome';
      sessionId: string;
      heartbeatIntervalMs: number;
      leaseTtlMs: number;
      protocolVersion: number;
      brokerId: string;
    }
  /** Jobs handed over, counted against the credits granted; may be sent as several messages. */
  | { type: 'jobs'; jobs: Assignment[] }
  /** One answer per result of a worker message, in the order of its results. */
  | { type: 'acks'; acks: ResultAck[] }
  /** Tokens the worker reported in a heartbeat that it no longer holds (expired, cancelled, unknown): drop those jobs. */
  | { type: 'lost'; leaseTokens: string[] }
  /** Stop this job (a cancel or a timeout); its outcome is still to be reported. */
  | { type: 'cancel'; jobId: string; leaseToken: string; reason: string }
  /** The broker is shutting down: report what you hold within the deadline and reconnect elsewhere. */
  | { type: 'drain'; deadlineMs: number };
