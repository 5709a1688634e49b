// The transport layer against real clients: the `buf curl` CLI (the stand-in for grpcurl,
// which is not packaged here), Node's HTTP/1.1 client, and connect-node's gRPC client.
// No database and no broker core: only reflection, health and the one-port listener.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { connectNodeAdapter, createGrpcTransport } from '@connectrpc/connect-node';
import { fromBinary } from '@bufbuild/protobuf';
import type { DescFile, DescService, MessageInitShape } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Admin, file_baton_v1_admin } from '@baton/worker-sdk/gen/admin';
import { Broker, file_baton_v1_broker } from '@baton/worker-sdk/gen/broker';
import { file_baton_v1_job } from '@baton/worker-sdk/gen/job';
import { file_baton_v1_lease } from '@baton/worker-sdk/gen/lease';
import { Health, HealthCheckResponse_ServingStatus as Status } from '@baton/worker-sdk/gen/grpc/health/v1/health';
import { ServerReflection, ServerReflectionRequestSchema } from '@baton/worker-sdk/gen/grpc/reflection/v1/reflection';
import type { ServerReflectionResponse } from '@baton/worker-sdk/gen/grpc/reflection/v1/reflection';
import { createHealth } from '../server/src/api/health.ts';
import type { HealthService } from '../server/src/api/health.ts';
import { startMainPort } from '../server/src/api/main-port.ts';
import type { MainPort } from '../server/src/api/main-port.ts';
import { registerReflection } from '../server/src/api/reflection.ts';

const BUF = fileURLToPath(new URL('../node_modules/@bufbuild/buf/bin/buf', import.meta.url));
const BATON_FILES = [file_baton_v1_broker, file_baton_v1_admin, file_baton_v1_job, file_baton_v1_lease];

let health: HealthService;
let plain: MainPort;
let secure: MainPort;
let tmp: string;
let cacert: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'baton-transport-'));
  const [certFile, keyFile] = [join(tmp, 'cert.pem'), join(tmp, 'key.pem')];
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-days',
    '1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  cacert = certFile;

  health = createHealth();
  const handler = connectNodeAdapter({
    routes(router) {
      registerReflection(router, BATON_FILES);
      health.register(router);
    },
  });
  plain = await startMainPort({ host: '127.0.0.1', port: 0, handler });
  const tls = { cert: await readFile(certFile), key: await readFile(keyFile) };
  secure = await startMainPort({ host: '127.0.0.1', port: 0, handler, tls });
});

afterAll(async () => {
  health?.close();
  await Promise.all([plain?.close(1_000), secure?.close(1_000)]);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('reflection through buf curl', () => {
  const expectedMethods = (...services: DescService[]) => services.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));

  it("lists Baton's services with the reflection and health services", async () => {
    const out = await bufCurl('--protocol', 'grpc', '--http2-prior-knowledge', '--list-services', plain.url);
    expect(out.code, out.stderr).toBe(0);
    expect(lines(out.stdout)).toEqual(
      expect.arrayContaining([
        'baton.v1.Broker',
        'baton.v1.Admin',
        'grpc.health.v1.Health',
        'grpc.reflection.v1.ServerReflection',
        'grpc.reflection.v1alpha.ServerReflection',
      ]),
    );
  });

  // buf tries v1 first and falls back to v1alpha; forcing each proves both are served.
  it.each(['grpc-v1', 'grpc-v1alpha'])('lists every method over %s', async (protocol) => {
    const out = await bufCurl('--protocol', 'grpc', '--http2-prior-knowledge', '--reflect-protocol', protocol, '--list-methods', plain.url);
    expect(out.code, out.stderr).toBe(0);
    expect(lines(out.stdout)).toEqual(expect.arrayContaining(expectedMethods(Broker, Admin, Health)));
  });
});

describe('reflection protocol details', () => {
  const transport = () => createGrpcTransport({ baseUrl: plain.url });

  /** Sends `requests` on one stream, as a real client's session would. */
  async function reflect(...requests: MessageInitShape<typeof ServerReflectionRequestSchema>[]) {
    const client = createClient(ServerReflection, transport());
    const out: ServerReflectionResponse[] = [];
    for await (const res of client.serverReflectionInfo(fromArray(requests))) out.push(res);
    return out;
  }
  const fileNames = (res: ServerReflectionResponse) =>
    res.messageResponse.case === 'fileDescriptorResponse'
      ? res.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name)
      : [];

  it('answers a symbol with its file and all transitive imports, well-known types included', async () => {
    const [res] = await reflect({ messageRequest: { case: 'fileContainingSymbol', value: Broker.typeName } });
    const names = fileNames(res);
    expect(names[0]).toBe('baton/v1/broker.proto');
    expect(new Set(names)).toEqual(closure(file_baton_v1_broker));
    expect(names).toContain('google/protobuf/timestamp.proto');
  });

  it('finds methods, messages, nested enums and enum values, and skips imports already sent', async () => {
    const enqueue = Broker.methods[0];
    const [method, message, nestedEnum, enumValue, again] = await reflect(
      { messageRequest: { case: 'fileContainingSymbol', value: `${Broker.typeName}.${enqueue.name}` } },
      { messageRequest: { case: 'fileContainingSymbol', value: enqueue.input.typeName } },
      { messageRequest: { case: 'fileContainingSymbol', value: 'grpc.health.v1.HealthCheckResponse.ServingStatus' } },
      { messageRequest: { case: 'fileContainingSymbol', value: 'grpc.health.v1.HealthCheckResponse.SERVING' } },
      { messageRequest: { case: 'fileByFilename', value: 'baton/v1/broker.proto' } },
    );
    expect(fileNames(method)[0]).toBe('baton/v1/broker.proto');
    expect(fileNames(message)[0]).toBe(enqueue.input.file.proto.name);
    expect(fileNames(nestedEnum)).toEqual(['grpc/health/v1/health.proto']);
    expect(fileNames(enumValue)).toEqual(['grpc/health/v1/health.proto']);
    expect(fileNames(again)).toEqual(['baton/v1/broker.proto']);
  });

  it('answers unknown names in-band with NOT_FOUND and keeps the stream open', async () => {
    const [symbol, file, after] = await reflect(
      { messageRequest: { case: 'fileContainingSymbol', value: 'baton.v1.NoSuchThing' } },
      { messageRequest: { case: 'fileByFilename', value: 'nope.proto' } },
      { messageRequest: { case: 'listServices', value: '' } },
    );
    for (const res of [symbol, file]) {
      expect(res.messageResponse.case).toBe('errorResponse');
      expect(res.messageResponse.value).toMatchObject({ errorCode: Code.NotFound });
    }
    expect(after.messageResponse.case).toBe('listServicesResponse');
  });
});

describe('health', () => {
  it('answers Check over gRPC through buf curl', async () => {
    const out = await bufCurl('--protocol', 'grpc', '--http2-prior-knowledge', '-d', '{}', `${plain.url}/grpc.health.v1.Health/Check`);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ status: 'SERVING' });
  });

  it('answers Connect JSON over HTTP/1.1 on the same port', async () => {
    const res = await postJson(`${plain.url}/grpc.health.v1.Health/Check`, '{}');
    expect(res.httpVersion).toBe('1.1');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'SERVING' });
  });

  it('answers NOT_FOUND for a service never set', async () => {
    const res = await postJson(`${plain.url}/grpc.health.v1.Health/Check`, '{"service":"baton.v1.Nope"}');
    expect(JSON.parse(res.body)).toMatchObject({ code: 'not_found' });
  });

  it('streams Watch updates until the client hangs up', async () => {
    const client = createClient(Health, createGrpcTransport({ baseUrl: plain.url }));
    const hangUp = new AbortController();
    const updates = client.watch({ service: 'baton.v1.Watched' }, { signal: hangUp.signal })[Symbol.asyncIterator]();
    expect((await updates.next()).value?.status).toBe(Status.SERVICE_UNKNOWN);
    health.setStatus('baton.v1.Watched', 'SERVING');
    expect((await updates.next()).value?.status).toBe(Status.SERVING);
    hangUp.abort();
    await expect(updates.next()).rejects.toSatisfy((e) => ConnectError.from(e).code === Code.Canceled);
  });
});

describe('TLS', () => {
  it('serves gRPC over HTTP/2 negotiated by ALPN', async () => {
    const out = await bufCurl('--protocol', 'grpc', '--cacert', cacert, '-d', '{}', `${secure.url}/grpc.health.v1.Health/Check`);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ status: 'SERVING' });
  });

  it('serves Connect JSON over HTTP/1.1 to clients without ALPN', async () => {
    const res = await postJson(`${secure.url}/grpc.health.v1.Health/Check`, '{}', await readFile(cacert));
    expect(res.httpVersion).toBe('1.1');
    expect(JSON.parse(res.body)).toEqual({ status: 'SERVING' });
  });
});

describe('shutdown', () => {
  // Each test gets its own listener: closing is the thing under test.
  async function healthOnly() {
    const h = createHealth();
    const l = await startMainPort({ host: '127.0.0.1', port: 0, handler: connectNodeAdapter({ routes: (r) => h.register(r) }) });
    const client = createClient(Health, createGrpcTransport({ baseUrl: l.url }));
    const updates = client.watch({ service: '' })[Symbol.asyncIterator]();
    expect((await updates.next()).value?.status).toBe(Status.SERVING);
    return { h, l, updates };
  }

  it('health.close() ends Watch streams, so the listener closes without waiting out the grace', async () => {
    const { h, l, updates } = await healthOnly();
    h.close();
    expect((await updates.next()).value?.status).toBe(Status.NOT_SERVING);
    expect((await updates.next()).done).toBe(true);
    // A grace longer than the test's timeout: close() returns only if the client's idle HTTP/2
    // session does not hold the listener open until the grace runs out.
    await l.close(3_600_000);
  });

  it('destroys streams still open after the grace period', async () => {
    const { h, l, updates } = await healthOnly();
    await l.close(200);
    await expect(updates.next()).rejects.toBeInstanceOf(Error);
    h.close();
  });
});

// --- helpers ---

function bufCurl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // Asynchronous on purpose: the server under test runs in this very process.
  return new Promise((resolve) => {
    execFile(process.execPath, [BUF, 'curl', ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A Connect unary call with Node's HTTP/1.1 client (https when `ca` is given). */
function postJson(url: string, body: string, ca?: Buffer): Promise<{ status: number; httpVersion: string; body: string }> {
  const options = { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false as const, ca };
  return new Promise((resolve, reject) => {
    const req = (ca ? https : http).request(url, options, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, httpVersion: res.httpVersion, body: text }));
    });
    req.on('error', reject).end(body);
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter(Boolean);
}

function closure(file: DescFile, into = new Set<string>()): Set<string> {
  into.add(file.proto.name);
  for (const dep of file.dependencies) closure(dep, into);
  return into;
}

async function* fromArray<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}
