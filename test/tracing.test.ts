/**
 * OpenTelemetry spans, collected in memory by an SDK that this file registers as the process's
 * tracer provider (as an application would): the SDK's PRODUCER span around Enqueue and
 * EnqueueBatch, whose context becomes the job's traceparent; the worker's CONSUMER span around the
 * handler, a child of that traceparent; and the broker's span per claim batch, linked to the jobs it
 * claimed. Lease streams run on both ports, each run with a broker and database of its own.
 */
import { type SpanContext, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Client, JobFailedError, NonRetryableError, Worker } from '@baton/worker-sdk';
import { startBroker, type RunningBroker } from '../server/src/broker.ts';
import { defaultConfig } from '../server/src/config.ts';
import { createLogger } from '../server/src/logger.ts';
import { createTestDatabase } from './support/database.ts';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});

afterAll(async () => {
  trace.disable();
  await provider.shutdown();
});

async function spans(): Promise<ReadableSpan[]> {
  await provider.forceFlush();
  return exporter.getFinishedSpans();
}

function spanNamed(all: ReadableSpan[], name: string, jobId?: string): ReadableSpan {
  const found = all.filter((s) => s.name === name && (jobId === undefined || s.attributes['messaging.message.id'] === jobId));
  expect(found, `one span "${name}"${jobId ? ` for job ${jobId}` : ''}`).toHaveLength(1);
  return found[0];
}

function traceparentOf(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
}

/** The child's parent is `parent`, in the same trace. */
function expectChildOf(child: ReadableSpan, parent: SpanContext): void {
  expect(child.spanContext().traceId).toBe(parent.traceId);
  expect(child.parentSpanContext?.spanId).toBe(parent.spanId);
}

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let broker: RunningBroker;
  let client: Client;
  const address = () => `127.0.0.1:${port === 'main' ? broker.port : broker.grpcPort}`;
  const workers: Worker[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    broker = await startBroker(
      { ...defaultConfig(), port: 0, grpcPort: 0, databaseUrl: db.url, drainTimeoutMs: 2000, fallbackPollMs: 500 },
      createLogger('error', () => {}),
    );
    client = new Client({ address: address() });
  });

  afterAll(async () => {
    for (const worker of workers) await worker.close({ timeoutMs: 2000 });
    client?.close();
    await broker?.stop();
    await db?.drop();
  });

  beforeEach(() => exporter.reset());

  async function startWorker(handlers: ConstructorParameters<typeof Worker>[0]['handlers']): Promise<void> {
    const worker = new Worker({ address: address(), workerId: `tracing-${port}`, handlers, logger: {} });
    workers.push(worker);
    await worker.start();
  }

  it("links enqueue and handler: the producer span's context is the job's traceparent and the handler span's parent", async () => {
    await startWorker({ 'trace-ok': (payload: { n: number }) => payload.n * 2 });
    const job = await client.enqueue('trace-ok', { n: 21 });
    expect(await client.result(job.id)).toBe(42);

    const all = await spans();
    const send = spanNamed(all, 'send trace-ok');
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.attributes).toMatchObject({
      'messaging.system': 'baton',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'trace-ok',
      'messaging.message.id': job.id,
    });
    expect(job.traceparent).toBe(traceparentOf(send.spanContext()));

    const processed = spanNamed(all, 'process trace-ok', job.id);
    expect(processed.kind).toBe(SpanKind.CONSUMER);
    expectChildOf(processed, send.spanContext());
    expect(processed.attributes).toMatchObject({
      'messaging.system': 'baton',
      'messaging.operation.type': 'process',
      'messaging.destination.name': 'trace-ok',
      'baton.job.attempt': 1,
      'baton.worker.id': `tracing-${port}`,
    });
    expect(processed.status.code).not.toBe(SpanStatusCode.ERROR);
  });

  it('marks a failed handler span ERROR, with the exception recorded', async () => {
    await startWorker({
      'trace-bad': () => {
        throw new NonRetryableError('no such customer');
      },
    });
    const job = await client.enqueue('trace-bad', {});
    await expect(client.result(job.id)).rejects.toBeInstanceOf(JobFailedError);
    const processed = spanNamed(await spans(), 'process trace-bad', job.id);
    expect(processed.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'no such customer' });
    expect(processed.events.map((e) => e.name)).toContain('exception');
  });

  it('gives every job of a batch the batch span as parent, and keeps a traceparent the producer set', async () => {
    await startWorker({ 'trace-batch': () => 'ok' });
    const given = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const jobs = await client.enqueueBatch([
      { queue: 'trace-batch', payload: 1 },
      { queue: 'trace-batch', payload: 2 },
      { queue: 'trace-batch', payload: 3, traceparent: given },
    ]);
    for (const job of jobs) await client.result(job.id);

    const all = await spans();
    const send = spanNamed(all, 'send trace-batch');
    expect(send.attributes).toMatchObject({ 'messaging.batch.message_count': 3, 'messaging.operation.name': 'enqueue_batch' });
    expectChildOf(spanNamed(all, 'process trace-batch', jobs[0].id), send.spanContext());
    expectChildOf(spanNamed(all, 'process trace-batch', jobs[1].id), send.spanContext());
    expect(jobs[2].traceparent).toBe(given);
    const own = spanNamed(all, 'process trace-batch', jobs[2].id);
    expect(own.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(own.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
  });

  it('records a claim span in the broker, linked to the jobs it claimed', async () => {
    // Enqueued before any worker serves the queue, so the jobs wait and are claimed (not handed off).
    const jobs = [await client.enqueue('trace-claim', 1), await client.enqueue('trace-claim', 2)];
    await startWorker({ 'trace-claim': () => 'ok' });
    for (const job of jobs) await client.result(job.id);

    const all = await spans();
    const claims = all.filter((s) => s.name === 'receive trace-claim');
    expect(claims.length).toBeGreaterThanOrEqual(1);
    for (const claim of claims) {
      expect(claim.kind).toBe(SpanKind.CONSUMER);
      expect(claim.attributes).toMatchObject({ 'messaging.system': 'baton', 'messaging.operation.name': 'claim', 'messaging.destination.name': 'trace-claim' });
    }
    expect(claims.reduce((n, s) => n + Number(s.attributes['messaging.batch.message_count']), 0)).toBe(2);
    const linked = claims.flatMap((s) => s.links.map((l) => l.context.spanId));
    const sends = all.filter((s) => s.name === 'send trace-claim').map((s) => s.spanContext().spanId);
    expect(new Set(linked)).toEqual(new Set(sends));
  });
});
