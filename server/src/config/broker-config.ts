/**
 * What the broker can be told (`BrokerConfig`) and its defaults. Read from the environment by
 * ./load-config.ts, checked by ./validate-config.ts; the variables and their ranges are in
 * ./number-settings.ts.
 */
import path from 'node:path';
import { QUEUE_DEFAULTS, type QueueDefaults, type QueueSettings } from '../domain/queue.ts';
import type { ScheduleConfig } from './schedule-declarations.ts';

/** A queue declared in configuration; queues not declared are created on first use with the defaults. */
export type QueueConfig = Omit<QueueSettings, 'paused' | 'rateLimits' | 'fairKeys'>;

/**
 * Everything the broker can be told, with its defaults. Read once at start-up (from the environment
 * by `loadConfig`, or given whole by tests and embedders) and passed down; nothing deeper reads
 * `process.env`.
 */
export interface BrokerConfig {
  /** Interface to listen on. Default 127.0.0.1: a broker is not exposed unless asked to be. */
  host: string;
  /** Port for gRPC, Connect, gRPC-Web and HTTP/1.1. Default 7700; 0 picks a free one. */
  port: number;
  /**
   * A second port serving native gRPC only, on @grpc/grpc-js: the same API at about half the broker
   * CPU per call (docs/operations.md). Default none; 0 picks a free one.
   */
  grpcPort: number | null;
  /** PostgreSQL to use; when absent an embedded PostgreSQL is started in `dataDir`. */
  databaseUrl: string | undefined;
  /** Folder for the embedded PostgreSQL's data (kept across restarts). Default ./.baton/pgdata. */
  dataDir: string;
  /** Port of the embedded PostgreSQL. Default 0: a free port is chosen at each start. */
  embeddedPostgresPort: number;
  /** Database connections this broker opens at most (besides LISTEN and the leader lock). Default 10. */
  poolSize: number;
  /** A session not heard from within this long loses its jobs. Default 30 s. */
  leaseTtlMs: number;
  /** How often workers are asked to heartbeat. Default a third of the TTL. */
  heartbeatIntervalMs: number;
  /** Largest payload, result or progress value accepted, in bytes. Default 1 MiB. */
  maxPayloadBytes: number;
  /**
   * Largest request message, in bytes (an EnqueueBatch or a Lease message with many results). The
   * limit is checked against the declared size before anything is read. Default 64 MiB.
   */
  maxMessageBytes: number;
  /** Concurrent streams (calls, Lease and Watch streams) one HTTP/2 connection may hold. Default 1000. */
  maxStreamsPerConnection: number;
  /** Most jobs in one EnqueueBatch. Default 10,000. */
  maxBatchSize: number;
  /** Largest List page. Default 1,000. */
  maxPageSize: number;
  /** Most credits one Lease stream may hold outstanding. Default 10,000. */
  maxCreditsPerStream: number;
  /** Defaults for queues created on first use. */
  queueDefaults: QueueDefaults;
  /** Queues declared up front; their settings are applied at every start. */
  queues: QueueConfig[];
  /** Cron schedules declared up front (BATON_SCHEDULES); applied at every start. */
  schedules: ScheduleConfig[];
  /** How long shutdown waits for workers to report what they hold. Default 10 s. */
  drainTimeoutMs: number;
  /** Fallback poll for queues with waiting workers, in case a NOTIFY was missed. Default 2 s, jittered. */
  fallbackPollMs: number;
  /** Completed and cancelled jobs older than this are deleted by the leader. Default 7 days; 0 keeps them. */
  retentionMs: number;
  /** "debug" | "info" | "warn" | "error". Default info. */
  logLevel: LogLevel;
  /**
   * "keys": every RPC but health and reflection needs an API key (docs/security.md); "off": none.
   * Default off, which `validateConfig` allows only on a loopback host (or with `insecureAllowOpen`).
   */
  auth: AuthMode;
  /** How long a broker trusts a key it has read before reading it again: a revoked key works up to this long. Default 10 s. */
  authCacheMs: number;
  /** Serve with auth off on a non-loopback host anyway (a loud warning at start). Default false. */
  insecureAllowOpen: boolean;
  /** TLS on the listener from PEM files; absent means cleartext (h2c and HTTP/1.1). */
  tls: TlsFilesConfig | undefined;
}

export type AuthMode = 'off' | 'keys';

/** Paths of PEM files for the listener's TLS. */
export interface TlsFilesConfig {
  certFile: string;
  keyFile: string;
  /**
   * CA that client certificates are verified against. When set, clients are asked for a certificate
   * and workers (Lease) must present one it signed: mutual TLS for workers.
   */
  clientCaFile: string | undefined;
  /** Every client, not only workers, must present a client certificate (refused in the TLS handshake). */
  requireClientCert: boolean;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export const LOG_LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error'];
export const AUTH_MODES: AuthMode[] = ['off', 'keys'];

export function defaultConfig(): BrokerConfig {
  return {
    host: '127.0.0.1',
    port: 7700,
    grpcPort: null,
    databaseUrl: undefined,
    dataDir: path.resolve('.baton/pgdata'),
    embeddedPostgresPort: 0,
    poolSize: 10,
    leaseTtlMs: 30_000,
    heartbeatIntervalMs: 10_000,
    maxPayloadBytes: 1024 * 1024,
    maxMessageBytes: 64 * 1024 * 1024,
    maxStreamsPerConnection: 1000,
    maxBatchSize: 10_000,
    maxPageSize: 1_000,
    maxCreditsPerStream: 10_000,
    queueDefaults: { ...QUEUE_DEFAULTS },
    queues: [],
    schedules: [],
    drainTimeoutMs: 10_000,
    fallbackPollMs: 2_000,
    retentionMs: 7 * 24 * 3600_000,
    logLevel: 'info',
    auth: 'off',
    authCacheMs: 10_000,
    insecureAllowOpen: false,
    tls: undefined,
  };
}
