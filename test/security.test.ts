/**
 * Security (docs/security.md): API keys with scopes enforced on every RPC, revocation, the open
 * health and reflection services, the `baton keys` CLI and the refusal to listen beyond loopback
 * without auth. TLS and mutual TLS: ./tls.test.ts.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create, type DescMethod, type DescService } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client as ConnectClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { Client, Worker } from '@baton/worker-sdk';
import type { RunningBroker } from '../server/src/broker.ts';
import { ConfigError, loadConfig } from '../server/src/config.ts';
import { Admin } from '@baton/worker-sdk/gen/admin';
import { Broker } from '@baton/worker-sdk/gen/broker';
import { LeaseRequestSchema } from '@baton/worker-sdk/gen/lease';
import { Health } from '@baton/worker-sdk/gen/grpc/health/v1/health';
import { ServerReflection as ReflectionV1 } from '@baton/worker-sdk/gen/grpc/reflection/v1/reflection';
import { ServerReflection as ReflectionV1alpha } from '@baton/worker-sdk/gen/grpc/reflection/v1alpha/reflection';
import { Authenticator } from '../server/src/auth/authenticator.ts';
import { authorizeHttpRequest } from '../server/src/auth/http.ts';
import { issueApiKey } from '../server/src/auth/api-key.ts';
import type { Scope } from '../server/src/domain/api-keys.ts';
import { createLogger } from '../server/src/logger.ts';
import type { StoreDriver } from '../server/src/store/driver.ts';
import { openOrm } from '../server/src/store/orm.ts';
import { createPostgresDriver } from '../server/src/store/postgres-driver.ts';
import { startTestBroker } from './support/broker.ts';
import { createTestDatabase } from './support/database.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const run = promisify(execFile);

/**
 * Who may call what, written out here independently of server/src/auth/scopes.ts. An RPC missing
 * from this list is expected to need admin (closed by default).
 */
const EXPECTED: Record<string, readonly Scope[]> = {
  'baton.v1.Broker/Enqueue': ['producer'],
  'baton.v1.Broker/EnqueueBatch': ['producer'],
  'baton.v1.Broker/Get': ['producer'],
  'baton.v1.Broker/List': ['producer'],
  'baton.v1.Broker/Watch': ['producer'],
  'baton.v1.Broker/GetServerInfo': ['producer', 'worker'],
  'baton.v1.Broker/Lease': ['worker'],
  'baton.v1.Broker/Cancel': ['admin'],
  'baton.v1.Broker/Retry': ['admin'],
};
const SCOPES: Scope[] = ['producer', 'worker', 'admin'];

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let orm: Awaited<ReturnType<typeof openOrm>>;
let store: StoreDriver;
let broker: RunningBroker;
const keys = {} as Record<Scope, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await openOrm(db.url, 2);
  store = createPostgresDriver({ orm, url: db.url, logger: createLogger('error') });
  for (const scope of SCOPES) keys[scope] = (await issueApiKey(store, { scope, name: `test ${scope}` })).key;
  // A cache window of 0: revocation is seen at the next call.
  broker = await startTestBroker(db.url, { auth: 'keys', authCacheMs: 0, grpcPort: 0 });
});

afterAll(async () => {
  await broker?.stop();
  await store?.close();
  await orm?.close();
  await db?.drop();
});

const transport = (url: string, nodeOptions?: { ca?: Buffer; cert?: Buffer; key?: Buffer }) => createGrpcTransport({ baseUrl: url, nodeOptions });

/** Calls `method` once with a minimal request (invalid, mostly) and returns the status code. */
async function callCode(
  service: DescService,
  method: DescMethod,
  token: string | undefined,
  url = broker.url,
): Promise<{ code: Code | 'ok'; message: string }> {
  const client = createClient(service, transport(url)) as unknown as Record<string, (...args: unknown[]) => unknown>;
  const headers = token === undefined ? undefined : { authorization: `Bearer ${token}` };
  const options = { headers, signal: AbortSignal.timeout(10_000) };
  try {
    if (method.methodKind === 'unary') {
      await client[method.localName]({}, options);
    } else if (method.methodKind === 'server_streaming') {
      for await (const _ of client[method.localName]({}, options) as AsyncIterable<unknown>) break;
    } else {
      // Bidi / client streaming: one message without hello, which the broker refuses at once.
      const requests = (async function* () {
        yield create(method.input as typeof LeaseRequestSchema, {});
      })();
      const responses = client[method.localName](requests, options);
      if (method.methodKind === 'bidi_streaming') for await (const _ of responses as AsyncIterable<unknown>) break;
      else await responses;
    }
    return { code: 'ok', message: '' };
  } catch (error) {
    const connectError = ConnectError.from(error);
    return { code: connectError.code, message: connectError.rawMessage };
  }
}

// The main port (connect-node) and the native gRPC port (grpc-js) run the same interceptors.
const ports = [
  ['the main port', () => broker.port],
  ['the native gRPC port', () => broker.grpcPort!],
] as const;

describe.each(ports)('API keys and scopes on every RPC, on %s', (_, port) => {
  const url = () => `http://127.0.0.1:${port()}`;

  const methods = [Broker, Admin].flatMap((service) => service.methods.map((method) => ({ service, method, name: `${service.typeName}/${method.name}` })));

  it('covers every RPC of baton.v1.Broker and baton.v1.Admin', () => {
    expect(methods.length).toBeGreaterThanOrEqual(Broker.methods.length + Admin.methods.length);
    for (const name of Object.keys(EXPECTED)) expect(methods.map((m) => m.name)).toContain(name);
  });

  it.each(methods.map((m) => [m.name, m] as const))('%s: no key, a bad key, each scope', async (name, { service, method }) => {
    const required = EXPECTED[name] ?? ['admin'];

    const none = await callCode(service, method, undefined, url());
    expect(none.code, `${name} without a token: ${none.message}`).toBe(Code.Unauthenticated);
    expect(none.message).toMatch(/requires an API key/);

    const garbage = await callCode(service, method, 'not-a-key', url());
    expect(garbage.code, `${name} with garbage: ${garbage.message}`).toBe(Code.Unauthenticated);

    const forged = await callCode(service, method, keys.admin.slice(0, -4) + '0000', url());
    expect(forged.code, `${name} with a wrong secret: ${forged.message}`).toBe(Code.Unauthenticated);

    for (const scope of SCOPES) {
      const result = await callCode(service, method, keys[scope], url());
      if (scope === 'admin' || required.includes(scope)) {
        expect([Code.Unauthenticated, Code.PermissionDenied], `${name} with a ${scope} key: ${result.message}`).not.toContain(result.code);
      } else {
        expect(result.code, `${name} with a ${scope} key: ${result.message}`).toBe(Code.PermissionDenied);
        expect(result.message).toContain(`${name} needs an API key with the ${required[0]}`);
      }
    }
  });

  it('Lease with a producer key is PERMISSION_DENIED and says the worker scope is needed', async () => {
    const { code, message } = await callCode(Broker, Broker.method.lease, keys.producer, url());
    expect(code).toBe(Code.PermissionDenied);
    expect(message).toMatch(/needs an API key with the worker or admin scope; key [0-9a-f]{12} \("test producer"\) has the producer scope/);
  });

  it('a producer and a worker with their keys run a job end to end through the SDK', async () => {
    const address = `127.0.0.1:${port()}`;
    const client = new Client({ address, token: keys.producer });
    const worker = new Worker({
      address,
      token: keys.worker,
      logger: {},
      handlers: { 'sec-e2e': async (payload: { n: number }) => ({ doubled: payload.n * 2 }) },
    });
    try {
      await worker.start();
      const job = await client.enqueue('sec-e2e', { n: 21 });
      expect(await client.result(job.id)).toEqual({ doubled: 42 });
    } finally {
      await worker.close();
      client.close();
    }
  });

  it('a revoked key stops working (cache window 0 here)', async () => {
    const { key, record } = await issueApiKey(store, { scope: 'producer', name: 'to revoke' });
    expect((await callCode(Broker, Broker.method.getServerInfo, key, url())).code).toBe('ok');
    await store.apiKeyRevoke({ id: record.id });
    const after = await callCode(Broker, Broker.method.getServerInfo, key, url());
    expect(after.code).toBe(Code.Unauthenticated);
    expect(after.message).toMatch(/was revoked/);
  });

  it('health and reflection (v1 and v1alpha) answer without a token', async () => {
    const t = transport(url());
    const health = await createClient(Health, t).check({});
    expect(health.status).toBe(1); // SERVING
    for (const service of [ReflectionV1, ReflectionV1alpha]) {
      const reflection = createClient(service as typeof ReflectionV1, t);
      const requests = (async function* () {
        yield { messageRequest: { case: 'listServices' as const, value: '' } };
      })();
      for await (const response of reflection.serverReflectionInfo(requests)) {
        expect(response.messageResponse.case).toBe('listServicesResponse');
        const names = response.messageResponse.case === 'listServicesResponse' ? response.messageResponse.value.service.map((s) => s.name) : [];
        expect(names).toContain('baton.v1.Broker');
        break;
      }
    }
  });
});

describe('the key cache', () => {
  it('keeps a revoked key working until the window ends, and reads the database once per window', async () => {
    const { key, record } = await issueApiKey(store, { scope: 'worker' });
    let now = 1_000_000;
    let reads = 0;
    const authenticator = new Authenticator({
      findKey: (id) => {
        reads++;
        return store.apiKeyGet({ id });
      },
      cacheMs: 10_000,
      now: () => now,
    });
    const header = `Bearer ${key}`;
    expect((await authenticator.authenticate(header)).scope).toBe('worker');
    await Promise.all(Array.from({ length: 20 }, () => authenticator.authenticate(header)));
    expect(reads).toBe(1);
    await store.apiKeyRevoke({ id: record.id });
    now += 9_999;
    expect((await authenticator.authenticate(header)).keyId).toBe(record.id);
    now += 2;
    await expect(authenticator.authenticate(header)).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(reads).toBe(2);
  });

  it('checks plain HTTP requests (dashboard, /metrics) the same way', async () => {
    const authenticator = new Authenticator({ findKey: (id) => store.apiKeyGet({ id }), cacheMs: 0 });
    const none = await authorizeHttpRequest(authenticator, {}, ['admin'], 'GET /metrics');
    expect(none).toMatchObject({ ok: false, status: 401, headers: { 'www-authenticate': expect.stringMatching(/^Bearer/) } });
    const wrong = await authorizeHttpRequest(authenticator, { authorization: `Bearer ${keys.producer}` }, ['admin'], 'GET /metrics');
    expect(wrong).toMatchObject({ ok: false, status: 403, message: expect.stringContaining('GET /metrics needs an API key with the admin scope') });
    const right = await authorizeHttpRequest(authenticator, { authorization: `Bearer ${keys.admin}` }, ['admin'], 'GET /metrics');
    expect(right).toMatchObject({ ok: true, principal: { scope: 'admin' } });
    expect(await authorizeHttpRequest(null, {}, ['admin'], 'GET /metrics')).toEqual({ ok: true, principal: null });
  });
});

/** Runs the real `baton` CLI in a child process; resolves to its exit code and output. */
async function baton(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'server/src/cli/index.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: db.url, BATON_LOG_LEVEL: 'error', ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

describe('the baton CLI', () => {
  it('creates, lists and revokes keys in the database', async () => {
    const created = await baton(['keys', 'create', '--scope', 'producer', '--name', 'from the cli']);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^bk_[0-9a-f]{12}_[0-9a-f]{64}$/);
    const id = key.slice(3, 15);
    expect(created.stderr).toContain(`created API key ${id}`);
    expect((await callCode(Broker, Broker.method.list, key)).code).toBe('ok');

    const listed = await baton(['keys', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = JSON.parse(listed.stdout) as { id: string; scope: string; name: string; revokedAt: string | null }[];
    expect(rows).toContainEqual(expect.objectContaining({ id, scope: 'producer', name: 'from the cli', revokedAt: null }));
    expect(listed.stdout).not.toContain(key.slice(16)); // no secret, no hash
    const table = await baton(['keys', 'list']);
    expect(table.stdout).toMatch(new RegExp(`^${id}\\s+producer\\s+from the cli`, 'm'));

    const revoked = await baton(['keys', 'revoke', id]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`revoked API key ${id}`);
    expect((await callCode(Broker, Broker.method.list, key)).code).toBe(Code.Unauthenticated);
    expect((await baton(['keys', 'list'])).stdout).not.toContain(id);
    expect((await baton(['keys', 'list', '--all'])).stdout).toContain(id);
  });

  it('answers mistakes with a message and exit code 2 (usage) or 1 (failure)', async () => {
    const noScope = await baton(['keys', 'create']);
    expect(noScope.code).toBe(2);
    expect(noScope.stderr).toContain('--scope is required');
    expect((await baton(['keys', 'create', '--scope', 'root'])).code).toBe(2);
    expect((await baton(['keys', 'revoke'])).code).toBe(2);
    expect((await baton(['nonsense'])).code).toBe(2);
    const unknown = await baton(['keys', 'revoke', 'abcdefabcdef']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no API key with id abcdefabcdef');
    expect((await baton(['migrate'])).code).toBe(0);
  });
});

describe('secure by default', () => {
  it('refuses to listen on 0.0.0.0 without auth, saying what to set', async () => {
    await expect(startTestBroker(db.url, { host: '0.0.0.0' })).rejects.toThrow(/BATON_AUTH=keys.*BATON_INSECURE_ALLOW_OPEN=1/);
    expect(() => loadConfig({ BATON_HOST: '0.0.0.0' })).toThrow(ConfigError);
    expect(() => loadConfig({ BATON_HOST: '::', BATON_AUTH: 'off' })).toThrow(/refusing to listen/);
    expect(loadConfig({ BATON_HOST: '0.0.0.0', BATON_AUTH: 'keys' }).auth).toBe('keys');
    expect(loadConfig({ BATON_HOST: '0.0.0.0', BATON_INSECURE_ALLOW_OPEN: '1' }).insecureAllowOpen).toBe(true);
    expect(loadConfig({}).auth).toBe('off'); // loopback: off by default
    expect(() => loadConfig({ BATON_TLS_CERT: 'x.pem' })).toThrow(/BATON_TLS_KEY/);

    const served = await baton(['serve'], { BATON_HOST: '0.0.0.0', BATON_PORT: '0' });
    expect(served.code).toBe(2);
    expect(served.stderr).toMatch(/refusing to listen on 0\.0\.0\.0.*BATON_AUTH=keys/);
  });
});
