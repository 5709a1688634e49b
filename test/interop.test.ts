/**
 * The wire contract, checked with clients that share no code with Baton: @grpc/grpc-js loading the
 * .proto files at run time through @grpc/proto-loader, as a user of another stack would, and Python
 * grpcio with the generated stubs alone (test/fixtures/python_lease_interop.py). Each client runs
 * against both ports: the main one (connect-node) and the native gRPC one (BATON_GRPC_PORT, grpc-js).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { useTestBroker } from './support/broker.ts';
import { python } from './conformance/implementations.ts';

const definition = protoLoader.loadSync(['baton/v1/broker.proto', 'baton/v1/admin.proto'], {
  includeDirs: [path.resolve(import.meta.dirname, '../proto')],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
});
const loaded = grpc.loadPackageDefinition(definition) as any;

type Unary = (request: object, callback: (error: grpc.ServiceError | null, response: any) => void) => void;

const baton = useTestBroker({ grpcPort: 0 });
/** Why /usr/bin/python3 with grpcio cannot run here: its test is skipped then, except in CI (as in the conformance kit). */
const pythonMissing = process.env.CI ? null : python().missing;

// Both ports are one contract: each client runs against the main port and against BATON_GRPC_PORT.
describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  /** Queue names of this port's cases, apart from the other port's (one database). */
  const q = (name: string) => `${name}-${port}`;
  const address = () => `127.0.0.1:${port === 'main' ? baton.broker.port : baton.broker.grpcPort}`;
  let client: any;

  function call(method: string, request: object): Promise<any> {
    return new Promise((resolve, reject) => {
      (client[method] as Unary).call(client, request, (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  beforeAll(() => {
    client = new loaded.baton.v1.Broker(address(), grpc.credentials.createInsecure());
  });

  afterAll(() => {
    client?.close();
  });

  describe('a @grpc/grpc-js client built from the .proto files', () => {
    it('enqueues with a JSON payload value and lists it', async () => {
      const { job } = await call('Enqueue', {
        queue: q('interop'),
        // google/protobuf types come from protobufjs's bundled copies, which keep camelCase names.
        payload: { structValue: { fields: { n: { numberValue: 303 } } } },
        labels: { origin: 'grpc-js' },
      });
      expect(job.status).toBe('JOB_STATUS_PENDING');
      expect(job.payload.structValue.fields.n.numberValue).toBe(303);
      const listed = await call('List', { queue: q('interop'), page_size: 10 });
      expect(listed.jobs.map((j: any) => j.id)).toContain(job.id);
      expect(listed.jobs[0].labels).toEqual({ origin: 'grpc-js' });
    });

    it('cancels a pending job, and gets NOT_FOUND and INVALID_ARGUMENT as status codes', async () => {
      const { job } = await call('Enqueue', { queue: q('interop'), payload_json: Buffer.from('{"x":1}') });
      const { job: cancelled } = await call('Cancel', { id: job.id });
      expect(cancelled.status).toBe('JOB_STATUS_CANCELLED');
      await expect(call('Get', { id: '987654321' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
      await expect(call('Enqueue', { queue: 'no spaces allowed' })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    });

    it('runs a whole Lease exchange: hello, job, heartbeat, result', async () => {
      const { job } = await call('Enqueue', { queue: q('interop-lease'), payload_json: Buffer.from('{"n":7}') });
      const stream: grpc.ClientDuplexStream<any, any> = client.Lease();
      const received: any[] = [];
      const next = (predicate: (message: any) => boolean) =>
        new Promise<any>((resolve, reject) => {
          const found = received.find(predicate);
          if (found) return resolve(found);
          const onData = (message: any) => {
            if (!predicate(message)) return;
            stream.off('data', onData);
            resolve(message);
          };
          stream.on('data', onData);
          stream.once('error', reject);
        });
      stream.on('data', (message) => received.push(message));

      stream.write({ hello: { worker_id: 'grpc-js-worker', queues: [q('interop-lease')], capacity: 2, protocol_version: 1 }, credits: 2 });
      const welcome = await next((m) => m.welcome);
      expect(welcome.welcome.session_id).toMatch(/^\d+$/);
      const withJob = await next((m) => m.jobs.length > 0);
      const assigned = withJob.jobs[0];
      expect(assigned.job_id).toBe(job.id);
      expect(JSON.parse(Buffer.from(assigned.payload_json).toString())).toEqual({ n: 7 });

      stream.write({ heartbeat: { lease_tokens: [assigned.lease_token] } });
      stream.write({
        results: [{ job_id: assigned.job_id, lease_token: assigned.lease_token, result_json: Buffer.from('{"value":"13"}') }],
      });
      const acked = await next((m) => m.acks.length > 0);
      expect(acked.acks[0]).toMatchObject({ job_id: job.id, accepted: true });
      expect(received.some((m) => m.lost.length > 0)).toBe(false);

      const { job: done } = await call('Get', { id: job.id });
      expect(done.status).toBe('JOB_STATUS_COMPLETED');
      expect(done.result.structValue.fields.value.stringValue).toBe('13');
      expect(done.worker_id).toBe('grpc-js-worker');
      stream.end();
      await new Promise((resolve) => stream.on('end', resolve).on('error', resolve).resume());
    });
  });

  describe.skipIf(Boolean(pythonMissing))(`a Python grpcio client with the generated stubs${pythonMissing ? ` — SKIPPED: ${pythonMissing}` : ''}`, () => {
    it('runs a whole Lease exchange, and gets the status of a stream the broker ends', async () => {
      const { stdout } = await promisify(execFile)('/usr/bin/python3', [path.resolve(import.meta.dirname, 'fixtures/python_lease_interop.py')], {
        env: { ...process.env, BATON_ADDRESS: address(), QUEUE: q('interop-python'), PYTHONDONTWRITEBYTECODE: '1' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      const seen = JSON.parse(stdout);
      expect(seen.sessionId).toMatch(/^\d+$/);
      expect(seen.assigned).toEqual({ jobId: seen.enqueued, attempt: 1, payload: { n: 7 } });
      expect(seen.lost).toEqual(['987654321']);
      expect(seen.ack).toEqual({ jobId: seen.enqueued, accepted: true });
      expect(seen.status).toBe('OK');
      expect(seen.done).toEqual({ status: 'JOB_STATUS_COMPLETED', result: '13', workerId: 'python-grpcio' });
      expect(seen.refused.code).toBe('FAILED_PRECONDITION');
      expect(seen.refused.message).toContain('must carry hello');
    });
  });
});
