import { afterAll, beforeAll } from 'vitest';
import { type Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { defaultConfig, type BrokerConfig } from '../../server/src/config.ts';
import { startBroker, type RunningBroker } from '../../server/src/broker.ts';
import { createLogger } from '../../server/src/logger.ts';
import { Broker } from '@baton/worker-sdk/gen/broker';
import { Admin } from '@baton/worker-sdk/gen/admin';
import { createTestDatabase } from './database.ts';

/** A broker in this process on a free loopback port, against `databaseUrl`, with test-friendly timings. */
export async function startTestBroker(databaseUrl: string, overrides: Partial<BrokerConfig> = {}): Promise<RunningBroker> {
  const config: BrokerConfig = {
    ...defaultConfig(),
    port: 0,
    databaseUrl,
    leaseTtlMs: 3000,
    heartbeatIntervalMs: 1000,
    drainTimeoutMs: 2000,
    fallbackPollMs: 500,
    logLevel: (process.env.BATON_TEST_LOG as 'error') ?? 'error',
    ...overrides,
  };
  return startBroker(config, createLogger(config.logLevel));
}

/** Typed gRPC clients (connect-node's HTTP/2 transport, not our SDK) for the broker at `url`. */
export function grpcClients(url: string): { broker: Client<typeof Broker>; admin: Client<typeof Admin> } {
  const transport = createGrpcTransport({ baseUrl: url });
  return { broker: createClient(Broker, transport), admin: createClient(Admin, transport) };
}

/** Which of a broker's ports a test talks to: the main one, or the native gRPC one (BATON_GRPC_PORT). */
export type TestPort = 'main' | 'grpc';

/** Typed gRPC clients of `broker` on `port`; the grpc port is open only if the broker was started with `grpcPort`. */
export function clientsOn(broker: RunningBroker, port: TestPort): ReturnType<typeof grpcClients> {
  return grpcClients(port === 'main' ? broker.url : `http://127.0.0.1:${broker.grpcPort}`);
}

type UsedBroker = {
  db: Awaited<ReturnType<typeof createTestDatabase>>;
  broker: RunningBroker;
  clients: ReturnType<typeof grpcClients>;
};

/**
 * A test file's broker on a database of its own, started before its tests and stopped after them;
 * the returned object is filled in by the time the tests run.
 */
export function useTestBroker(overrides: Partial<BrokerConfig> = {}): UsedBroker {
  return useBrokerWithClientsOn('main', overrides);
}

/**
 * useTestBroker for one block of a `describe.each` over the two ports: called inside the block, it
 * gives the block a broker and database of its own, with both ports open and the clients on `port`.
 */
export function usePortBroker(port: TestPort): UsedBroker {
  return useBrokerWithClientsOn(port, { grpcPort: 0 });
}

function useBrokerWithClientsOn(port: TestPort, overrides: Partial<BrokerConfig>): UsedBroker {
  const used = {} as UsedBroker;
  beforeAll(async () => {
    used.db = await createTestDatabase();
    used.broker = await startTestBroker(used.db.url, overrides);
    used.clients = clientsOn(used.broker, port);
  });
  afterAll(async () => {
    await used.broker?.stop();
    await used.db?.drop();
  });
  return used;
}

/**
 * Two brokers, both ports open, on one database of the file's own: what the tests of work shared
 * across brokers stand on. Started before the file's tests and stopped after them; the returned
 * object is filled in by the time the tests run.
 */
export function useTwoBrokers(): { db: Awaited<ReturnType<typeof createTestDatabase>>; a: RunningBroker; b: RunningBroker } {
  const used = {} as ReturnType<typeof useTwoBrokers>;
  beforeAll(async () => {
    used.db = await createTestDatabase();
    used.a = await startTestBroker(used.db.url, { grpcPort: 0 });
    used.b = await startTestBroker(used.db.url, { grpcPort: 0 });
  });
  afterAll(async () => {
    await used.a?.stop();
    await used.b?.stop();
    await used.db?.drop();
  });
  return used;
}

/** The error a call that must be refused was refused with. */
export async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error('expected the call to be refused, but it succeeded');
}

/** How a call ended: the code it was refused with, or 'ok'. */
export async function code(call: Promise<unknown>): Promise<Code | 'ok'> {
  try {
    await call;
    return 'ok';
  } catch (error) {
    return ConnectError.from(error).code;
  }
}
