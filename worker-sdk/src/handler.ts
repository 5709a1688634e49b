// What a handler is given and may return. Handlers are plain async functions, as in BullMQ:
// `async (payload, ctx) => result`.

/** Everything about the running attempt that is not the payload. */
export interface JobContext {
  /** The job id. */
  readonly id: string;
  /** The queue the job came from. */
  readonly queue: string;
  /** This attempt's number, from 1. */
  readonly attempt: number;
  /** Attempts allowed in all; `attempt === maxAttempts` is the last try. */
  readonly maxAttempts: number;
  /** The job's priority. */
  readonly priority: number;
  /** When the job was enqueued. */
  readonly createdAt?: Date;
  /** Labels given at enqueue. */
  readonly labels: Readonly<Record<string, string>>;
  /**
   * W3C trace context from the producer: the one given to Enqueue, or the SDK's enqueue span. The
   * handler already runs inside a CONSUMER span that continues it (when an OpenTelemetry SDK is
   * registered), so spans the handler starts are part of the producer's trace.
   */
  readonly traceparent?: string;
  /** This worker's id. */
  readonly workerId: string;
  /**
   * The payload as the exact JSON text the broker sent. The `payload` argument is that text through
   * JSON.parse, whose numbers are doubles: read this when an integer above 2^53 must keep its digits
   * (e.g. `JSON.parse(ctx.payloadJson, (k, v, { source }) => …)` with a reviver, or a big-number JSON
   * library).
   */
  readonly payloadJson: string;
  /**
   * Aborted when the work is no longer wanted; pass it to fetch() and friends. `signal.reason` is a
   * DOMException: `TimeoutError` ("timed out after N ms") when the job's timeout passed, `AbortError`
   * with message "cancelled" when a user cancelled the job, "lease lost" when the broker gave the job
   * up (stream closed, lease expired), "worker closing" when close() ran out of time.
   */
  readonly signal: AbortSignal;
  /**
   * Reports progress (any JSON value, e.g. a percentage or `{ done, total }`). Cheap: only the latest
   * value per job goes out, batched with other messages of the same tick. Throws a TypeError if the
   * value cannot be JSON-encoded (a BigInt, a cycle); ignored once the job has been reported.
   */
  progress(value: unknown): void;
}

/**
 * Runs one job: gets the parsed payload and the context, returns a JSON-encodable result (or a
 * promise of one). Throw to fail the attempt; throw NonRetryableError to fail the job for good,
 * RetryAfterError(ms) to choose the wait before the next attempt, or `snooze(ms)` to run the job
 * again after `ms` without spending an attempt.
 */
// `any` by default so that `async (payload: { n: number }) => …` fits a handler map without casts.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler<P = any, R = unknown> = (payload: P, ctx: JobContext) => R | Promise<R>;
