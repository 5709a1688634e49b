/**
 * The native gRPC port (BATON_GRPC_PORT, server/src/api/grpc-port.ts): the same API as the main
 * port on @grpc/grpc-js. Auth on both ports is covered by security.test.ts; here the rest a client
 * meets: the Lease stream's life (run on both ports: one contract), server streaming, errors,
 * message limits, reflection, shutdown.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@connectrpc/connect';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { grpcClients, refusal, startTestBroker, useTestBroker } from './support/broker.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import { eventually } from './support/processes.ts';

const baton = useTestBroker({ grpcPort: 0, maxPayloadBytes: 64 * 1024, maxMessageBytes: 128 * 1024 });
let grpcPort: ReturnType<typeof grpcClients>;
let mainPort: ReturnType<typeof grpcClients>;

beforeAll(() => {
  grpcPort = grpcClients(`http://127.0.0.1:${baton.broker.grpcPort}`);
  mainPort = baton.clients;
});

const text = (value: string) => new TextEncoder().encode(value);

async function codeOf(call: Promise<unknown>): Promise<{ code: Code; message: string }> {
  const error = await refusal(call);
  return { code: error.code, message: error.rawMessage };
}

// Both ports are one contract: the Lease stream's life on the main port and on BATON_GRPC_PORT.
describe.each(['main', 'grpc'] as const)('the Lease stream on the %s port', (port) => {
  /** This port's clients (set in beforeAll, so read when a test runs). */
  const clients = () => (port === 'main' ? mainPort : grpcPort);
  /** Queue names of this port's cases, apart from the other port's (one database). */
  const q = (name: string) => `${name}-${port}`;

  it('runs a job through a Lease stream: hello, assignment, heartbeat, result, ack', async () => {
    const { job } = await clients().broker.enqueue({ queue: q('gp-lease'), payloadJson: text('{"n":7}') });
    const worker = new LeaseDriver(clients().broker);
    worker.hello([q('gp-lease')], 2, 2);
    const [assigned] = await worker.jobsReceived(1);
    expect(assigned.jobId).toBe(job!.id);
    worker.send({ heartbeat: { leaseTokens: [assigned.leaseToken, '987654321'] } });
    expect(await worker.until((m) => m.find((x) => x.lost.length > 0)?.lost)).toEqual(['987654321']);
    worker.send({ results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, resultJson: text('49') }] });
    expect(await worker.until((m) => m.flatMap((x) => x.acks).find((a) => a.accepted))).toBeTruthy();
    const done = (await mainPort.broker.get({ id: job!.id })).job!;
    expect(done.status).toBe(JobStatus.COMPLETED);
    expect(done.result?.kind).toEqual({ case: 'numberValue', value: 49 });
    worker.end();
    await worker.done;
    expect(worker.error).toBeNull();
  });

  it('gives a job back at once when its worker cancels the stream', async () => {
    await clients().admin.setQueueConcurrency({ queue: q('gp-cancel'), concurrency: 0 });
    const abort = new AbortController();
    const worker = new LeaseDriver(clients().broker, abort.signal);
    worker.hello([q('gp-cancel')], 1, 1);
    const { job } = await clients().broker.enqueue({ queue: q('gp-cancel') });
    await worker.jobsReceived(1);
    abort.abort();
    await worker.done;
    const released = await eventually(
      async () => {
        const current = (await clients().broker.get({ id: job!.id })).job!;
        return current.status === JobStatus.PENDING ? current : undefined;
      },
      10_000,
      'the job released',
    );
    expect(released.errors.at(-1)?.message).toMatch(/stream/);
  });

  it('drains its Lease streams when the broker shuts down', async () => {
    const own = await startTestBroker(baton.db.url, { grpcPort: 0 });
    const { broker: client } = grpcClients(port === 'main' ? own.url : `http://127.0.0.1:${own.grpcPort}`);
    const worker = new LeaseDriver(client);
    worker.hello([q('gp-drain')], 1, 1);
    await worker.until((m) => m.some((x) => x.welcome));
    const stopping = own.stop();
    await worker.until((m) => m.some((x) => x.drain));
    worker.end();
    await worker.done;
    await stopping;
    expect(worker.error).toBeNull();
  });
});

it('streams Watch events', async () => {
  const abort = new AbortController();
  const events: JobStatus[] = [];
  const watching = (async () => {
    for await (const event of grpcPort.broker.watch({ queue: 'gp-watch' }, { signal: abort.signal })) {
      events.push(event.job!.status);
      if (events.length >= 1) break;
    }
  })();
  await eventually(
    async () => {
      await grpcPort.broker.enqueue({ queue: 'gp-watch' });
      return events.length > 0;
    },
    10_000,
    'a Watch event',
  );
  abort.abort();
  await watching.catch(() => undefined);
  expect(events[0]).toBe(JobStatus.PENDING);
});

it('refuses bad input with the same status and message as the main port', async () => {
  const bad = { queue: 'not a queue!' };
  const viaGrpc = await codeOf(grpcPort.broker.enqueue(bad));
  const viaMain = await codeOf(mainPort.broker.enqueue(bad));
  expect(viaGrpc.code).toBe(Code.InvalidArgument);
  expect(viaGrpc).toEqual(viaMain);
  expect((await codeOf(grpcPort.broker.get({ id: '424242424242' }))).code).toBe(Code.NotFound);
  // Above BATON_MAX_MESSAGE_BYTES: refused by the transport before any handler runs.
  const huge = await codeOf(grpcPort.broker.enqueue({ queue: 'gp-huge', payloadJson: text(`"${'x'.repeat(200 * 1024)}"`) }));
  expect(huge.code).toBe(Code.ResourceExhausted);
});

it('answers reflection, so grpcurl-style tools list the services', async () => {
  // Not execFileSync: the broker runs in this process and must answer while buf waits.
  const { stdout: listed } = await promisify(execFile)(
    'npx',
    ['buf', 'curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--list-services', `http://127.0.0.1:${baton.broker.grpcPort}`],
    {
      encoding: 'utf8',
    },
  );
  expect(listed).toContain('baton.v1.Broker');
  expect(listed).toContain('baton.v1.Admin');
});
