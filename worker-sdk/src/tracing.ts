// OpenTelemetry spans of the SDK, on @opentelemetry/api only: with no SDK registered by the
// application every call here is a no-op, and with one (NodeSDK, a BasicTracerProvider, …) the
// spans go wherever the application sends its own. Names and attributes follow the OpenTelemetry
// messaging conventions, with messaging.system = "baton".
//
// The job's `traceparent` is the link between the two sides: Enqueue stores the producer span's
// context there (unless the caller gave one), and the worker starts the handler's span with it as
// the parent, so one trace runs from the enqueue through the handler.

import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { SnoozeError } from './errors.ts';
import type { Handler } from './handler.ts';
import { SDK_VERSION } from './version.ts';

const TRACER_NAME = '@baton/worker-sdk';

function tracer() {
  // Looked up per span, not once: an application may register its provider after importing the SDK.
  return trace.getTracer(TRACER_NAME, SDK_VERSION);
}

/**
 * Whether the application registered a tracer provider. Without one every span is a no-op, and
 * handlers and enqueues run without one: starting and ending it cost 6 % of a worker's CPU in the
 * drain benchmark for nothing. Asked per call, like `tracer()`.
 */
function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer(TRACER_NAME, SDK_VERSION) !== undefined;
}

/** `version-traceid-spanid-flags`, W3C Trace Context level 1; other versions are read the same way. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The span context a `traceparent` carries; undefined when it is malformed or all zeros. */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  const m = value ? TRACEPARENT.exec(value.trim()) : null;
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5])) return undefined;
  const spanContext = { traceId: m[2], spanId: m[3], traceFlags: Number.parseInt(m[4], 16) & 1, isRemote: true };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** The `traceparent` of a span; undefined when the span has no valid context (no SDK, no parent). */
export function formatTraceparent(span: Span): string | undefined {
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1).toString(16).padStart(2, '0')}`;
}

function recordFailure(span: Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

/**
 * Runs an Enqueue or EnqueueBatch RPC inside a PRODUCER span (`send <queue>`, a child of the
 * caller's active span). `send` is given the `traceparent` to store with jobs that carry none of
 * their own: the producer span's, or the caller's when no SDK is registered but a context is
 * active, or undefined.
 */
export async function traceEnqueue<T>(
  queues: readonly string[],
  send: (traceparent: string | undefined) => Promise<T>,
  ids: (result: T) => string[],
): Promise<T> {
  if (!tracing()) {
    // No span to start: the jobs carry the caller's active trace context, if any, as they would as
    // the no-op span's parent.
    const active = trace.getSpan(context.active());
    return send(active ? formatTraceparent(active) : undefined);
  }
  const distinct = [...new Set(queues)];
  const attributes: Attributes = {
    'messaging.system': 'baton',
    'messaging.operation.type': 'send',
    'messaging.operation.name': queues.length === 1 ? 'enqueue' : 'enqueue_batch',
  };
  if (distinct.length === 1) attributes['messaging.destination.name'] = distinct[0];
  if (queues.length !== 1) attributes['messaging.batch.message_count'] = queues.length;
  const name = distinct.length === 1 ? `send ${distinct[0]}` : 'send';
  return tracer().startActiveSpan(name, { kind: SpanKind.PRODUCER, attributes }, async (span) => {
    try {
      const result = await send(formatTraceparent(span));
      const jobIds = ids(result);
      if (jobIds.length === 1) span.setAttribute('messaging.message.id', jobIds[0]);
      return result;
    } catch (error) {
      recordFailure(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/**
 * The handler inside a CONSUMER span (`process <queue>`) whose parent is the job's `traceparent`
 * (or, without one, whatever context is active). The span is active while the handler runs, so the
 * handler's own spans are its children; it ends with status ERROR when the handler throws (other
 * than a snooze).
 */
export function tracedHandler(queue: string, handler: Handler): Handler {
  return (payload, ctx) => {
    if (!tracing()) return handler(payload, ctx);
    const remote = parseTraceparent(ctx.traceparent);
    const parent: Context = remote ? trace.setSpanContext(ROOT_CONTEXT, remote) : context.active();
    const attributes: Attributes = {
      'messaging.system': 'baton',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': queue,
      'messaging.message.id': ctx.id,
      'baton.job.attempt': ctx.attempt,
      'baton.job.max_attempts': ctx.maxAttempts,
      'baton.worker.id': ctx.workerId,
    };
    return tracer().startActiveSpan(`process ${queue}`, { kind: SpanKind.CONSUMER, attributes }, parent, async (span) => {
      try {
        return await handler(payload, ctx);
      } catch (error) {
        // A snooze is an outcome the handler chose, not a failure: the span ends OK, saying so.
        if (error instanceof SnoozeError) span.setAttribute('baton.job.snooze_ms', error.snoozeMs);
        else recordFailure(span, error);
        throw error;
      } finally {
        span.end();
      }
    });
  };
}

/** Every handler of a worker, traced. */
export function tracedHandlers(handlers: Readonly<Record<string, Handler>>): Record<string, Handler> {
  return Object.fromEntries(Object.entries(handlers).map(([queue, handler]) => [queue, tracedHandler(queue, handler)]));
}
