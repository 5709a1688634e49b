import path from 'node:path';

/** A queue declared in configuration; queues not declared are created on first use with the defaults. */
export interface QueueConfig {
  name: string;
  /** Most jobs RUNNING at once across all brokers; 0 means no limit. */
  concurrency: number;
  /** max_attempts for jobs enqueued without one. */
  defaultMaxAttempts: number;
  /** Execution timeout for jobs enqueued without one, in ms; 0 means none. */
  defaultTimeoutMs: number;
}

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
  queueDefaults: Omit<QueueConfig, 'name'>;
  /** Queues declared up front; their settings are applied at every start. */
  queues: QueueConfig[];
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

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const QUEUE_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

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
    queueDefaults: { concurrency: 0, defaultMaxAttempts: 3, defaultTimeoutMs: 0 },
    queues: [],
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

/** Builds the config from environment variables (documented in README.md, "Configuration"). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const config = defaultConfig();
  const int = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
    return value;
  };
  config.host = env.BATON_HOST || config.host;
  config.port = int('BATON_PORT', config.port);
  config.grpcPort = env.BATON_GRPC_PORT ? int('BATON_GRPC_PORT', 0) : null;
  config.databaseUrl = env.DATABASE_URL || undefined;
  if (env.BATON_DATA_DIR) config.dataDir = path.resolve(env.BATON_DATA_DIR);
  config.embeddedPostgresPort = int('BATON_EMBEDDED_PG_PORT', config.embeddedPostgresPort);
  config.poolSize = int('BATON_POOL_SIZE', config.poolSize);
  config.leaseTtlMs = int('BATON_LEASE_TTL_MS', config.leaseTtlMs);
  config.heartbeatIntervalMs = int('BATON_HEARTBEAT_MS', Math.floor(config.leaseTtlMs / 3));
  config.maxPayloadBytes = int('BATON_MAX_PAYLOAD_BYTES', config.maxPayloadBytes);
  config.maxMessageBytes = int('BATON_MAX_MESSAGE_BYTES', config.maxMessageBytes);
  config.maxStreamsPerConnection = int('BATON_MAX_STREAMS_PER_CONNECTION', config.maxStreamsPerConnection);
  config.maxBatchSize = int('BATON_MAX_BATCH', config.maxBatchSize);
  config.maxPageSize = int('BATON_MAX_PAGE_SIZE', config.maxPageSize);
  config.drainTimeoutMs = int('BATON_DRAIN_MS', config.drainTimeoutMs);
  config.retentionMs = int('BATON_RETENTION_MS', config.retentionMs);
  config.queueDefaults.concurrency = int('BATON_DEFAULT_CONCURRENCY', config.queueDefaults.concurrency);
  config.queueDefaults.defaultMaxAttempts = int('BATON_DEFAULT_MAX_ATTEMPTS', config.queueDefaults.defaultMaxAttempts);
  config.queueDefaults.defaultTimeoutMs = int('BATON_DEFAULT_TIMEOUT_MS', config.queueDefaults.defaultTimeoutMs);
  if (env.BATON_QUEUES) config.queues = parseQueues(env.BATON_QUEUES, config.queueDefaults);
  if (env.BATON_LOG_LEVEL) config.logLevel = env.BATON_LOG_LEVEL as LogLevel;
  if (env.BATON_AUTH) config.auth = env.BATON_AUTH as AuthMode;
  config.authCacheMs = int('BATON_AUTH_CACHE_MS', config.authCacheMs);
  config.insecureAllowOpen = flag(env, 'BATON_INSECURE_ALLOW_OPEN');
  config.tls = loadTlsConfig(env);
  return validateConfig(config);
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = (env[name] ?? '').toLowerCase();
  if (raw === '' || raw === '0' || raw === 'false') return false;
  if (raw === '1' || raw === 'true') return true;
  throw new ConfigError(`${name} must be 1 or 0, got "${env[name]}"`);
}

function loadTlsConfig(env: NodeJS.ProcessEnv): TlsFilesConfig | undefined {
  const { BATON_TLS_CERT: cert, BATON_TLS_KEY: key, BATON_TLS_CLIENT_CA: clientCa } = env;
  const requireClientCert = flag(env, 'BATON_TLS_REQUIRE_CLIENT_CERT');
  if (!cert && !key) {
    if (clientCa || requireClientCert) throw new ConfigError('BATON_TLS_CLIENT_CA and BATON_TLS_REQUIRE_CLIENT_CERT need TLS: set BATON_TLS_CERT and BATON_TLS_KEY too');
    return undefined;
  }
  if (!cert || !key) throw new ConfigError('TLS needs both BATON_TLS_CERT (certificate chain, PEM) and BATON_TLS_KEY (private key, PEM)');
  return { certFile: path.resolve(cert), keyFile: path.resolve(key), clientCaFile: clientCa ? path.resolve(clientCa) : undefined, requireClientCert };
}

/** True for hosts only this machine can reach: localhost, 127.0.0.0/8, ::1. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(bare);
}

/**
 * The secure-default rule: a broker reachable from other machines must authenticate its callers,
 * unless its operator says in so many words that it need not.
 */
export function checkExposure(config: Pick<BrokerConfig, 'host' | 'auth' | 'insecureAllowOpen'>): void {
  if (config.auth !== 'off' || config.insecureAllowOpen || isLoopbackHost(config.host)) return;
  throw new ConfigError(
    `refusing to listen on ${config.host || 'every interface'} (beyond loopback) without authentication: ` +
      'set BATON_AUTH=keys and create API keys with "baton keys create --scope producer|worker|admin" (docs/security.md), ' +
      'or set BATON_INSECURE_ALLOW_OPEN=1 to serve without authentication on purpose',
  );
}

/**
 * Parses `BATON_QUEUES`: comma-separated queue declarations, each `name` optionally followed by
 * `:key=value` settings, e.g. `fibonacci:concurrency=3,sleep:max_attempts=5:timeout_ms=60000`.
 */
export function parseQueues(spec: string, defaults: Omit<QueueConfig, 'name'>): QueueConfig[] {
  return spec
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const [name, ...settings] = entry.split(/:(?=[a-z_]+=)/);
      const queue: QueueConfig = { name, ...defaults };
      for (const setting of settings) {
        const [key, raw] = setting.split('=');
        const value = Number(raw);
        if (!Number.isInteger(value)) throw new ConfigError(`BATON_QUEUES: ${name}: ${key} must be a whole number`);
        if (key === 'concurrency') queue.concurrency = value;
        else if (key === 'max_attempts') queue.defaultMaxAttempts = value;
        else if (key === 'timeout_ms') queue.defaultTimeoutMs = value;
        else throw new ConfigError(`BATON_QUEUES: ${name}: unknown setting "${key}" (concurrency, max_attempts, timeout_ms)`);
      }
      return queue;
    });
}

/** Rejects settings that cannot work, naming the setting and what it accepts. */
export function validateConfig(config: BrokerConfig): BrokerConfig {
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new ConfigError(message);
  };
  check(config.port >= 0 && config.port <= 65535, `port must be 0-65535, got ${config.port}`);
  check(config.grpcPort === null || (config.grpcPort >= 0 && config.grpcPort <= 65535), `gRPC port must be 0-65535, got ${config.grpcPort}`);
  check(
    config.grpcPort === null || !config.tls?.clientCaFile || config.tls.requireClientCert,
    'BATON_GRPC_PORT with BATON_TLS_CLIENT_CA needs BATON_TLS_REQUIRE_CLIENT_CERT=1: the native gRPC port either requires a client certificate of every client or asks none (mutual TLS for workers only is served on BATON_PORT)',
  );
  check(config.poolSize >= 2, `pool size must be at least 2, got ${config.poolSize}`);
  check(config.leaseTtlMs >= 1000, `lease TTL must be at least 1000 ms, got ${config.leaseTtlMs}`);
  check(
    config.heartbeatIntervalMs > 0 && config.heartbeatIntervalMs < config.leaseTtlMs,
    `heartbeat interval must be positive and shorter than the lease TTL (${config.leaseTtlMs} ms), got ${config.heartbeatIntervalMs}`,
  );
  check(config.maxPayloadBytes >= 1024, `max payload must be at least 1024 bytes, got ${config.maxPayloadBytes}`);
  check(config.maxStreamsPerConnection >= 1, `max streams per connection must be at least 1`);
  check(
    config.maxMessageBytes >= config.maxPayloadBytes + 4096,
    `max message size (${config.maxMessageBytes}) must exceed the max payload (${config.maxPayloadBytes}) by at least 4096 bytes`,
  );
  check(config.maxBatchSize >= 1, `max batch size must be at least 1`);
  check(config.maxPageSize >= 1, `max page size must be at least 1`);
  check(['debug', 'info', 'warn', 'error'].includes(config.logLevel), `log level must be debug, info, warn or error`);
  check(config.auth === 'off' || config.auth === 'keys', `BATON_AUTH must be off or keys, got "${config.auth}"`);
  check(config.authCacheMs >= 0, `auth cache window must be 0 ms or more, got ${config.authCacheMs}`);
  check(!config.tls?.requireClientCert || Boolean(config.tls.clientCaFile), 'requiring client certificates needs a client CA (BATON_TLS_CLIENT_CA)');
  checkExposure(config);
  for (const queue of [{ name: 'defaults', ...config.queueDefaults }, ...config.queues]) {
    check(queue.name === 'defaults' || QUEUE_NAME.test(queue.name), `queue name "${queue.name}" must be 1-128 of A-Z a-z 0-9 _ . : -`);
    check(queue.concurrency >= 0, `${queue.name}: concurrency must be 0 (no limit) or more`);
    check(queue.defaultMaxAttempts >= 1 && queue.defaultMaxAttempts <= 1000, `${queue.name}: max attempts must be 1-1000`);
    check(queue.defaultTimeoutMs >= 0, `${queue.name}: timeout must be 0 (none) or more`);
  }
  return config;
}

export { QUEUE_NAME };
