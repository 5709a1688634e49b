/**
 * An OpenTelemetry span per claim batch, on @opentelemetry/api: a no-op unless the process that
 * runs the broker registers an OpenTelemetry SDK (the broker forces none on its embedders).
 *
 * A claim serves many jobs of many traces, so its span (`receive <queue>`, kind CONSUMER) is the
 * root of a trace of its own and carries a link to each claimed job's `traceparent`: the messaging
 * conventions' shape for a batch receive. Only claims that found jobs are recorded; the empty ones,
 * most claims of an idle broker, would be noise.
 */
import { type Link, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { StoreDriver } from '../store/driver.ts';

/** The span context of a stored `traceparent` (Enqueue accepts only the W3C form `00-<32>-<16>-<2>`). */
function linkOf(traceparent: string | null): Link | null {
  if (!traceparent) return null;
  const [, traceId, spanId, flags] = traceparent.split('-');
  if (!traceId || !spanId || !flags) return null;
  return { context: { traceId, spanId, traceFlags: Number.parseInt(flags, 16) & 1, isRemote: true } };
}

/** The store with `jobClaim` traced; every other operation as it was. */
export function traceClaims<S extends Pick<StoreDriver, 'jobClaim'>>(store: S): S {
  const claim = store.jobClaim.bind(store);
  return {
    ...store,
    async jobClaim(params) {
      const startTime = new Date();
      const attributes = {
        'messaging.system': 'baton',
        'messaging.operation.type': 'receive',
        'messaging.operation.name': 'claim',
        'messaging.destination.name': params.queue.name,
        'baton.worker.id': params.workerId,
      };
      const start = (extra: { links?: Link[]; count?: number }) =>
        trace.getTracer('@baton/server').startSpan(
          `receive ${params.queue.name}`,
          {
            kind: SpanKind.CONSUMER,
            startTime,
            links: extra.links,
            attributes: extra.count === undefined ? attributes : { ...attributes, 'messaging.batch.message_count': extra.count },
          },
          ROOT_CONTEXT,
        );
      let jobs: Awaited<ReturnType<StoreDriver['jobClaim']>>;
      try {
        jobs = await claim(params);
      } catch (error) {
        const span = start({});
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        span.end();
        throw error;
      }
      if (jobs.length > 0) {
        const links = jobs.map((job) => linkOf(job.traceparent)).filter((link) => link !== null);
        start({ links, count: jobs.length }).end();
      }
      return jobs;
    },
  };
}
