/**
 * A worker process of the benchmark: loads one system's consumer (peers/<peer>.ts), waits for the
 * word to go, runs no-op handlers and reports to the benchmark process over IPC: how many handlers
 * finished (throttled), when the first started and the last ended, and for latency jobs the moment
 * each handler started. Times are on the machine-wide monotonic clock (measure.ts).
 */
import type { BenchPayload, CreateConsumer } from './system.ts';
import { now } from './measure.ts';
import type { HostMessage, ParentMessage, WorkerHostConfig } from './worker-procs.ts';

const setup = JSON.parse(process.env.BENCH_WORKER ?? '{}') as WorkerHostConfig;
// A handler may end after the parent disconnected (a library finishing its last jobs while it
// stops); its report has nobody to go to, and sending it would throw.
const send = (message: HostMessage) => {
  if (process.connected) process.send?.(message);
};

let handled = 0;
let maxId = Number.NaN;
let firstStart = Number.NaN;
let lastEnd = Number.NaN;
let target = Number.POSITIVE_INFINITY;
let reported = -1;

const report = () => {
  if (handled === reported) return;
  reported = handled;
  send({ type: 'progress', handled, maxId, firstStart, lastEnd });
};

const module = (await import(`./peers/${setup.peer}.ts`)) as { createConsumer: CreateConsumer };
const consumer = await module.createConsumer(setup.config, {
  concurrency: setup.concurrency,
  onStart(payload: BenchPayload) {
    const t = now();
    if (Number.isNaN(firstStart)) firstStart = t;
    if (payload?.seq !== undefined) send({ type: 'latency', seq: payload.seq, at: t });
  },
  onEnd(id: string) {
    lastEnd = now();
    handled++;
    const numeric = Number(id);
    if (Number.isFinite(numeric) && !(numeric <= maxId)) maxId = numeric;
    if (handled === target) report();
  },
});

const ticker = setInterval(report, 20);
// The start in progress: a stop that arrives before it finished (a short drain over several
// processes ends before the last one is connected) waits for it, or the consumer would start after
// its stop, on closed connections.
let starting: Promise<void> = Promise.resolve();
process.on('message', (message: ParentMessage) => {
  if (message.type === 'go') {
    target = message.target ?? Number.POSITIVE_INFINITY;
    starting = consumer.start().then(
      () => send({ type: 'started' }),
      (error: unknown) => fail(error),
    );
  } else if (message.type === 'stop') {
    starting
      .then(() => consumer.stop())
      .then(
        () => {
          clearInterval(ticker);
          report();
          send({ type: 'stopped' });
          process.disconnect?.();
          // Libraries may leave sockets behind after a graceful stop; the numbers are in, so leave.
          setTimeout(() => process.exit(0), 200).unref();
        },
        (error: unknown) => fail(error),
      );
  }
});
process.on('disconnect', () => setTimeout(() => process.exit(0), 2_000).unref());
send({ type: 'ready' });

function fail(error: unknown): void {
  send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  setTimeout(() => process.exit(1), 100);
}
