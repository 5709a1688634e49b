/**
 * Every whole-number setting in one table: its environment variable, its accepted range in words
 * (for the refusal) and in code. Loading (./load-config.ts), validating (./validate-config.ts) and
 * BATON_QUEUES (./queue-declarations.ts) all read their ranges here, so a range is written once.
 */
import type { BrokerConfig } from './broker-config.ts';

/** Node's timers overflow above this (about 24.8 days) and fire at once; durations they wait out stay below. */
export const TIMER_MAX_MS = 2_147_483_647;
/** Largest message grpc-js and connect-node can be told to accept (a signed 32-bit length). */
export const MESSAGE_MAX_BYTES = 2_147_483_647;

/** A whole-number setting: its variable, its range in words (for the refusal) and in code. */
export interface NumberSetting {
  variable: string;
  accepts(config: BrokerConfig): string;
  ok(value: number, config: BrokerConfig): boolean;
  get(config: BrokerConfig): number | null;
  set(config: BrokerConfig, value: number): void;
}

const range = (min: number, max: number) => (value: number) => value >= min && value <= max;
const PORT = 'a port number from 0 to 65535 (0 picks a free one)';

/** Every whole-number variable, in the order they are read (a later one's range may depend on an earlier one). */
export const NUMBER_SETTINGS: NumberSetting[] = [
  { variable: 'BATON_PORT', accepts: () => PORT, ok: range(0, 65535), get: (c) => c.port, set: (c, v) => (c.port = v) },
  { variable: 'BATON_GRPC_PORT', accepts: () => PORT, ok: range(0, 65535), get: (c) => c.grpcPort, set: (c, v) => (c.grpcPort = v) },
  {
    variable: 'BATON_EMBEDDED_PG_PORT',
    accepts: () => 'a port number from 0 to 65535 (0 picks a free one at each start)',
    ok: range(0, 65535),
    get: (c) => c.embeddedPostgresPort,
    set: (c, v) => (c.embeddedPostgresPort = v),
  },
  { variable: 'BATON_POOL_SIZE', accepts: () => 'a whole number from 2 to 1000', ok: range(2, 1000), get: (c) => c.poolSize, set: (c, v) => (c.poolSize = v) },
  {
    variable: 'BATON_LEASE_TTL_MS',
    accepts: () => `a whole number of milliseconds from 1000 to ${TIMER_MAX_MS}`,
    ok: range(1000, TIMER_MAX_MS),
    get: (c) => c.leaseTtlMs,
    set: (c, v) => (c.leaseTtlMs = v),
  },
  {
    variable: 'BATON_HEARTBEAT_MS',
    accepts: (c) => `a whole number of milliseconds from 1 to BATON_LEASE_TTL_MS - 1 (${c.leaseTtlMs - 1})`,
    ok: (v, c) => v >= 1 && v < c.leaseTtlMs,
    get: (c) => c.heartbeatIntervalMs,
    set: (c, v) => (c.heartbeatIntervalMs = v),
  },
  {
    variable: 'BATON_MAX_PAYLOAD_BYTES',
    accepts: () => `a whole number of bytes from 1024 to ${MESSAGE_MAX_BYTES - 4096}`,
    ok: range(1024, MESSAGE_MAX_BYTES - 4096),
    get: (c) => c.maxPayloadBytes,
    set: (c, v) => (c.maxPayloadBytes = v),
  },
  {
    // Room for the envelope around the largest payload.
    variable: 'BATON_MAX_MESSAGE_BYTES',
    accepts: (c) => `a whole number of bytes from BATON_MAX_PAYLOAD_BYTES + 4096 (${c.maxPayloadBytes + 4096}) to ${MESSAGE_MAX_BYTES}`,
    ok: (v, c) => v >= c.maxPayloadBytes + 4096 && v <= MESSAGE_MAX_BYTES,
    get: (c) => c.maxMessageBytes,
    set: (c, v) => (c.maxMessageBytes = v),
  },
  {
    variable: 'BATON_MAX_STREAMS_PER_CONNECTION',
    accepts: () => 'a whole number from 1 to 2147483647',
    ok: range(1, 2_147_483_647),
    get: (c) => c.maxStreamsPerConnection,
    set: (c, v) => (c.maxStreamsPerConnection = v),
  },
  {
    variable: 'BATON_MAX_BATCH',
    accepts: () => 'a whole number of 1 or more',
    ok: range(1, Number.MAX_SAFE_INTEGER),
    get: (c) => c.maxBatchSize,
    set: (c, v) => (c.maxBatchSize = v),
  },
  {
    variable: 'BATON_MAX_PAGE_SIZE',
    accepts: () => 'a whole number of 1 or more',
    ok: range(1, Number.MAX_SAFE_INTEGER),
    get: (c) => c.maxPageSize,
    set: (c, v) => (c.maxPageSize = v),
  },
  {
    variable: 'BATON_DRAIN_MS',
    accepts: () => `a whole number of milliseconds from 0 to ${TIMER_MAX_MS}`,
    ok: range(0, TIMER_MAX_MS),
    get: (c) => c.drainTimeoutMs,
    set: (c, v) => (c.drainTimeoutMs = v),
  },
  {
    // Shorter than a second would delete results before a producer could read them.
    variable: 'BATON_RETENTION_MS',
    accepts: () => '0 (keep finished jobs) or a whole number of milliseconds of 1000 or more',
    ok: (v) => v === 0 || (v >= 1000 && v <= Number.MAX_SAFE_INTEGER),
    get: (c) => c.retentionMs,
    set: (c, v) => (c.retentionMs = v),
  },
  {
    variable: 'BATON_DEFAULT_CONCURRENCY',
    accepts: () => '0 (no limit) or a whole number of jobs',
    ok: range(0, Number.MAX_SAFE_INTEGER),
    get: (c) => c.queueDefaults.concurrency,
    set: (c, v) => (c.queueDefaults.concurrency = v),
  },
  {
    variable: 'BATON_DEFAULT_MAX_ATTEMPTS',
    accepts: () => 'a whole number from 1 to 1000',
    ok: range(1, 1000),
    get: (c) => c.queueDefaults.defaultMaxAttempts,
    set: (c, v) => (c.queueDefaults.defaultMaxAttempts = v),
  },
  {
    // Workers time a job out with a timer of their own.
    variable: 'BATON_DEFAULT_TIMEOUT_MS',
    accepts: () => `0 (none) or a whole number of milliseconds up to ${TIMER_MAX_MS}`,
    ok: range(0, TIMER_MAX_MS),
    get: (c) => c.queueDefaults.defaultTimeoutMs,
    set: (c, v) => (c.queueDefaults.defaultTimeoutMs = v),
  },
  {
    variable: 'BATON_AUTH_CACHE_MS',
    accepts: () => `0 (check every call) or a whole number of milliseconds up to ${TIMER_MAX_MS}`,
    ok: range(0, TIMER_MAX_MS),
    get: (c) => c.authCacheMs,
    set: (c, v) => (c.authCacheMs = v),
  },
];

/** The setting of `variable` (one of the table's). */
export function numberSetting(variable: string): NumberSetting {
  const setting = NUMBER_SETTINGS.find((s) => s.variable === variable);
  if (!setting) throw new Error(`no setting ${variable}`);
  return setting;
}
