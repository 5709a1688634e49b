/**
 * The wire contract, checked with a client that shares no code with Baton: @grpc/grpc-js loading
 * the .proto files at run time through @grpc/proto-loader, as a user of another stack would.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { RunningBroker } from '../server/src/broker.ts';
import { createTestDatabase } from './support/database.ts';
import { startTestBroker } from './support/broker.ts';

const definition = protoLoader.loadSync(['baton/v1/broker.proto', 'baton/v1/admin.proto'], {
  includeDirs: [path.resolve(import.meta.dirname, '../proto')],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
});
const loaded = grpc.loadPackageDefinition(definition) as any;

type Unary = (request: object, callback: (error: grpc.ServiceError | null, response: any) => void) => void;

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
let client: any;

function call(method: string, request: object): Promise<any> {
  return new Promise((resolve, reject) => {
    (client[method] as Unary).call(client, request, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startTestBroker(db.url);
  client = new loaded.baton.v1.Broker(`127.0.0.1:${broker.port}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await broker?.stop();
  await db?.drop();
});

describe('a @grpc/grpc-js client built from the .proto files', () => {
  it('enqueues with a JSON payload value and lists it', async () => {
    const { job } = await call('Enqueue', {
      queue: 'interop',
      // google/protobuf types come from protobufjs's bundled copies, which keep camelCase names.
      payload: { structValue: { fields: { n: { numberValue: 303 } } } },
      labels: { origin: 'grpc-js' },
    });
    expect(job.status).toBe('JOB_STATUS_PENDING');
    expect(job.payload.structValue.fields.n.numberValue).toBe(303);
    const listed = await call('List', { queue: 'interop', page_size: 10 });
    expect(listed.jobs.map((j: any) => j.id)).toContain(job.id);
    expect(listed.jobs[0].labels).toEqual({ origin: 'grpc-js' });
  });

  it('cancels a pending job, and gets NOT_FOUND and INVALID_ARGUMENT as status codes', async () => {
    const { job } = await call('Enqueue', { queue: 'interop', payload_json: Buffer.from('{"x":1}') });
    const { job: cancelled } = await call('Cancel', { id: job.id });
    expect(cancelled.status).toBe('JOB_STATUS_CANCELLED');
    await expect(call('Get', { id: '987654321' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(call('Enqueue', { queue: 'no spaces allowed' })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it('runs a whole Lease exchange: hello, job, heartbeat, result', async () => {
    const { job } = await call('Enqueue', { queue: 'interop-lease', payload_json: Buffer.from('{"n":7}') });
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

    stream.write({ hello: { worker_id: 'grpc-js-worker', queues: ['interop-lease'], capacity: 2, protocol_version: 1 }, credits: 2 });
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
