/**
 * TLS and mutual TLS (docs/security.md) with certificates made here with openssl: the SDK over TLS
 * on both ports, client certificates required of workers only, or of every client.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { Client, Worker } from '@baton/worker-sdk';
import { Broker } from '@baton/worker-sdk/gen/broker';
import { issueApiKey } from '../server/src/auth/api-key.ts';
import { loadConfig } from '../server/src/config.ts';
import type { Scope } from '../server/src/domain/api-keys.ts';
import { createLogger } from '../server/src/logger.ts';
import type { StoreDriver } from '../server/src/store/driver.ts';
import { openOrm } from '../server/src/store/orm.ts';
import { createPostgresDriver } from '../server/src/store/postgres-driver.ts';
import { startTestBroker } from './support/broker.ts';
import { createTestDatabase } from './support/database.ts';

const run = promisify(execFile);

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let orm: Awaited<ReturnType<typeof openOrm>>;
let store: StoreDriver;
const keys = {} as Record<Scope, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await openOrm(db.url, 2);
  store = createPostgresDriver({ orm, url: db.url, logger: createLogger('error') });
  for (const scope of ['producer', 'worker'] as const) keys[scope] = (await issueApiKey(store, { scope, name: `test ${scope}` })).key;
});

afterAll(async () => {
  await store?.close();
  await orm?.close();
  await db?.drop();
});

const transport = (url: string, nodeOptions?: { ca?: Buffer; cert?: Buffer; key?: Buffer }) => createGrpcTransport({ baseUrl: url, nodeOptions });

/** The SDK dials 127.0.0.1 but checks the certificate for "localhost" (an IP as TLS server name draws a Node warning). */
const BY_NAME = { 'grpc.ssl_target_name_override': 'localhost' };

describe('TLS', () => {
  let dir: string;
  let pem: Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', Buffer>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'baton-tls-'));
    pem = await makeCertificates(dir);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves the SDK Client over TLS with a certificate made by openssl', async () => {
    const tlsBroker = await startTestBroker(db.url, {
      auth: 'keys',
      authCacheMs: 0,
      tls: { certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key'), clientCaFile: undefined, requireClientCert: false },
      grpcPort: 0,
    });
    const client = new Client({ address: `127.0.0.1:${tlsBroker.port}`, tls: { ca: pem.ca }, channelOptions: BY_NAME, token: keys.producer });
    const native = new Client({ address: `127.0.0.1:${tlsBroker.grpcPort}`, tls: { ca: pem.ca }, channelOptions: BY_NAME, token: keys.producer });
    try {
      expect(tlsBroker.url).toMatch(/^https:/);
      const job = await client.enqueue('sec-tls', { over: 'tls' });
      expect((await client.get(job.id)).payload).toEqual({ over: 'tls' });
      // The native gRPC port speaks TLS with the same certificate.
      expect((await native.get(job.id)).payload).toEqual({ over: 'tls' });
      // Cleartext to the TLS port does not get through.
      const plain = new Client({ address: `127.0.0.1:${tlsBroker.port}`, token: keys.producer, channelOptions: { 'grpc.initial_reconnect_backoff_ms': 100 } });
      await expect(plain.get(job.id)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      plain.close();
    } finally {
      client.close();
      native.close();
      await tlsBroker.stop();
    }
  });

  it('mutual TLS for workers: a worker without a client certificate is refused, one with it works', async () => {
    const mtlsBroker = await startTestBroker(db.url, {
      auth: 'keys',
      authCacheMs: 0,
      tls: { certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key'), clientCaFile: path.join(dir, 'ca.crt'), requireClientCert: false },
    });
    const address = `127.0.0.1:${mtlsBroker.port}`;
    // Producers need no client certificate in this mode.
    const client = new Client({ address, tls: { ca: pem.ca }, channelOptions: BY_NAME, token: keys.producer });
    const handlers = { 'sec-mtls': async () => 'done' };
    const stranger = new Worker({
      address,
      tls: { ca: pem.ca },
      channelOptions: BY_NAME,
      token: keys.worker,
      handlers,
      logger: {},
      reconnect: { initialMs: 1000, maxMs: 1000 },
    });
    const trusted = new Worker({
      address,
      tls: { ca: pem.ca, cert: pem.clientCert, key: pem.clientKey },
      channelOptions: BY_NAME,
      token: keys.worker,
      handlers,
      logger: {},
    });
    try {
      const refused = new Promise<Error | undefined>((resolve) => stranger.once('disconnected', resolve));
      void stranger.start();
      const error = (await refused) as Error & { code?: string };
      expect(error?.code).toBe('UNAUTHENTICATED');
      expect(error?.message).toMatch(/client certificate/);

      await trusted.start();
      const job = await client.enqueue('sec-mtls', {});
      expect(await client.result(job.id)).toBe('done');
    } finally {
      await stranger.close();
      await trusted.close();
      client.close();
      await mtlsBroker.stop();
    }
  });

  it('BATON_TLS_REQUIRE_CLIENT_CERT refuses every client without a certificate in the handshake', async () => {
    const strict = await startTestBroker(db.url, {
      tls: { certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key'), clientCaFile: path.join(dir, 'ca.crt'), requireClientCert: true },
      grpcPort: 0,
    });
    try {
      for (const port of [strict.port, strict.grpcPort]) {
        // By name, as the certificate says (an IP address as TLS server name draws a Node warning).
        const url = `https://localhost:${port}`;
        const without = createClient(Broker, transport(url, { ca: pem.ca }));
        await expect(without.getServerInfo({})).rejects.toSatisfy(
          (e) => ConnectError.from(e).code === Code.Unavailable || ConnectError.from(e).code === Code.Internal,
        );
        const withCert = createClient(Broker, transport(url, { ca: pem.ca, cert: pem.clientCert, key: pem.clientKey }));
        expect((await withCert.getServerInfo({})).protocolVersion).toBe(1);
      }
      // Optional client certificates (mutual TLS for workers only) are served on the main port alone.
      expect(() => loadConfig({ BATON_GRPC_PORT: '0', BATON_TLS_CERT: 'a', BATON_TLS_KEY: 'b', BATON_TLS_CLIENT_CA: 'c' })).toThrow(
        /BATON_TLS_REQUIRE_CLIENT_CERT/,
      );
    } finally {
      await strict.stop();
    }
  });
});

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA. */
async function makeCertificates(dir: string) {
  const openssl = (args: string[]) => run('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=Baton test CA']);
  await writeFile(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await writeFile(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, subject] of [
    ['server', '/CN=localhost'],
    ['client', '/CN=baton test worker'],
  ] as const) {
    await openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    await openssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-out',
      `${name}.crt`,
      '-extfile',
      `${name}.ext`,
    ]);
  }
  const read = (file: string) => readFile(path.join(dir, file));
  return {
    ca: await read('ca.crt'),
    serverCert: await read('server.crt'),
    serverKey: await read('server.key'),
    clientCert: await read('client.crt'),
    clientKey: await read('client.key'),
  };
}
