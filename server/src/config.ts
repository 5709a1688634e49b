import path from 'node:path';
import { QUEUE_DEFAULTS, QUEUE_NAME_RULE, type QueueDefaults, type QueueSettings, isQueueName } from './domain/queue.ts';
import { alternatives } from './lib/words.ts';

/** A queue declared in configuration; queues not declared are created on first use with the defaults. */
export type QueueConfig = Omit<QueueSettings, 'paused'>;

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

/** A setting that cannot work; the message names its environment variable and what it accepts. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * The broker cannot start for a reason outside its settings' values: a port already taken, a data
 * folder another broker holds, a database that refuses. The message says what to do; no stack.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** Node's timers overflow above this (about 24.8 days) and fire at once; durations they wait out stay below. */
const TIMER_MAX_MS = 2_147_483_647;
/** Largest message grpc-js and connect-node can be told to accept (a signed 32-bit length). */
const MESSAGE_MAX_BYTES = 2_147_483_647;

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

/** A whole-number setting: its variable, its range in words (for the refusal) and in code. */
interface NumberSetting {
  variable: string;
  accepts(config: BrokerConfig): string;
  ok(value: number, config: BrokerConfig): boolean;
  get(config: BrokerConfig): number | null;
  set(config: BrokerConfig, value: number): void;
}

const range = (min: number, max: number) => (value: number) => value >= min && value <= max;
const PORT = 'a port number from 0 to 65535 (0 picks a free one)';

/** Every whole-number variable, in the order they are read (a later one's range may depend on an earlier one). */
const NUMBER_SETTINGS: NumberSetting[] = [
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
  { variable: 'BATON_MAX_BATCH', accepts: () => 'a whole number of 1 or more', ok: range(1, Number.MAX_SAFE_INTEGER), get: (c) => c.maxBatchSize, set: (c, v) => (c.maxBatchSize = v) },
  { variable: 'BATON_MAX_PAGE_SIZE', accepts: () => 'a whole number of 1 or more', ok: range(1, Number.MAX_SAFE_INTEGER), get: (c) => c.maxPageSize, set: (c, v) => (c.maxPageSize = v) },
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

const LOG_LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error'];
const AUTH_MODES: AuthMode[] = ['off', 'keys'];

/** Builds the config from environment variables (documented in README.md, "Configuration"). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const config = defaultConfig();
  config.host = env.BATON_HOST || config.host;
  const database = loadDatabaseSettings(env);
  config.databaseUrl = database.databaseUrl;
  config.dataDir = database.dataDir;
  config.logLevel = database.logLevel;
  for (const setting of NUMBER_SETTINGS) {
    const raw = env[setting.variable];
    if (raw === undefined || raw === '') {
      // The heartbeat follows the TTL unless set on its own.
      if (setting.variable === 'BATON_HEARTBEAT_MS') config.heartbeatIntervalMs = Math.floor(config.leaseTtlMs / 3);
      continue;
    }
    setting.set(config, wholeNumber(setting, raw, config));
  }
  if (env.BATON_QUEUES) config.queues = parseQueues(env.BATON_QUEUES, config.queueDefaults);
  if (env.BATON_AUTH) config.auth = oneOf('BATON_AUTH', env.BATON_AUTH, AUTH_MODES);
  config.insecureAllowOpen = flag(env, 'BATON_INSECURE_ALLOW_OPEN');
  config.tls = loadTlsConfig(env);
  return validateConfig(config);
}

/**
 * The settings that say where the database is, for commands that open it without serving
 * (`baton migrate`, `baton keys`): DATABASE_URL, BATON_DATA_DIR, BATON_EMBEDDED_PG_PORT, BATON_LOG_LEVEL.
 */
export function loadDatabaseSettings(env: NodeJS.ProcessEnv): Pick<BrokerConfig, 'databaseUrl' | 'dataDir' | 'embeddedPostgresPort' | 'logLevel'> {
  const config = defaultConfig();
  const portSetting = NUMBER_SETTINGS.find((s) => s.variable === 'BATON_EMBEDDED_PG_PORT')!;
  const rawPort = env.BATON_EMBEDDED_PG_PORT;
  return {
    databaseUrl: env.DATABASE_URL ? checkDatabaseUrl(env.DATABASE_URL) : undefined,
    dataDir: env.BATON_DATA_DIR ? path.resolve(env.BATON_DATA_DIR) : config.dataDir,
    embeddedPostgresPort: rawPort ? wholeNumber(portSetting, rawPort, config) : 0,
    logLevel: env.BATON_LOG_LEVEL ? oneOf('BATON_LOG_LEVEL', env.BATON_LOG_LEVEL, LOG_LEVELS) : config.logLevel,
  };
}

function wholeNumber(setting: NumberSetting, raw: string, config: BrokerConfig): number {
  const value = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || !setting.ok(value, config)) {
    throw new ConfigError(`${setting.variable} must be ${setting.accepts(config)}, got "${raw}"`);
  }
  return value;
}

function oneOf<T extends string>(variable: string, raw: string, values: T[]): T {
  if (!(values as string[]).includes(raw)) throw new ConfigError(`${variable} must be ${alternatives(values)}, got "${raw}"`);
  return raw as T;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = (env[name] ?? '').toLowerCase();
  if (raw === '' || raw === '0' || raw === 'false') return false;
  if (raw === '1' || raw === 'true') return true;
  throw new ConfigError(`${name} must be 1 or 0 (true or false), got "${env[name]}"`);
}

const DATABASE_URL_FORM = 'postgres://USER:PASSWORD@HOST:5432/DATABASE';

/**
 * Refuses a DATABASE_URL the broker could not use whatever the server says: not a URL, not
 * PostgreSQL's, no database name (the ORM needs one; PostgreSQL would silently take the user's name).
 */
export function checkDatabaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Not echoed: what does not parse cannot be masked, and it may hold a password.
    throw new ConfigError(`DATABASE_URL is not a URL: write it as ${DATABASE_URL_FORM}`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(`DATABASE_URL must start with postgres:// or postgresql://, got "${url.protocol}//…": write it as ${DATABASE_URL_FORM}`);
  }
  if (!url.pathname.replace(/^\/+/, '')) {
    throw new ConfigError(`DATABASE_URL (${maskDatabaseUrl(raw)}) names no database: add one after the host, as in ${DATABASE_URL_FORM}`);
  }
  return raw;
}

/** The URL with its password replaced by ***, fit for messages and logs. */
export function maskDatabaseUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'an unparsable URL';
  }
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

/** The settings of a BATON_QUEUES entry, with their ranges (the same as the defaults' variables). */
const QUEUE_SETTINGS: Record<string, { field: keyof Omit<QueueConfig, 'name'>; variable: string }> = {
  concurrency: { field: 'concurrency', variable: 'BATON_DEFAULT_CONCURRENCY' },
  max_attempts: { field: 'defaultMaxAttempts', variable: 'BATON_DEFAULT_MAX_ATTEMPTS' },
  timeout_ms: { field: 'defaultTimeoutMs', variable: 'BATON_DEFAULT_TIMEOUT_MS' },
};

/**
 * Parses `BATON_QUEUES`: comma-separated queue declarations, each `name` optionally followed by
 * `:key=value` settings, e.g. `fibonacci:concurrency=3,sleep:max_attempts=5:timeout_ms=60000`.
 */
export function parseQueues(spec: string, defaults: Omit<QueueConfig, 'name'>): QueueConfig[] {
  const queues = spec
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const [name, ...settings] = entry.split(/:(?=[a-z_]+=)/);
      if (!isQueueName(name)) {
        throw new ConfigError(`BATON_QUEUES: queue name "${name}" must be ${QUEUE_NAME_RULE} (entries look like fibonacci:concurrency=3)`);
      }
      const queue: QueueConfig = { name, ...defaults };
      for (const setting of settings) {
        const [key, raw] = setting.split('=');
        const known = QUEUE_SETTINGS[key];
        if (!Object.hasOwn(QUEUE_SETTINGS, key)) throw new ConfigError(`BATON_QUEUES: queue "${name}": unknown setting "${key}" (concurrency, max_attempts, timeout_ms)`);
        const rule = NUMBER_SETTINGS.find((s) => s.variable === known.variable)!;
        const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
        if (!Number.isSafeInteger(value) || !rule.ok(value, defaultConfig())) {
          throw new ConfigError(`BATON_QUEUES: queue "${name}": ${key} must be ${rule.accepts(defaultConfig())}, got "${raw}"`);
        }
        queue[known.field] = value;
      }
      return queue;
    });
  const seen = new Set<string>();
  for (const { name } of queues) {
    if (seen.has(name)) throw new ConfigError(`BATON_QUEUES declares queue "${name}" twice: keep one entry per queue`);
    seen.add(name);
  }
  return queues;
}

/**
 * Rejects settings that cannot work, naming the environment variable and what it accepts. Run on
 * every config, whether read from the environment or given whole by code.
 */
export function validateConfig(config: BrokerConfig): BrokerConfig {
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new ConfigError(message);
  };
  for (const setting of NUMBER_SETTINGS) {
    const value = setting.get(config);
    if (value === null) continue;
    check(Number.isSafeInteger(value) && setting.ok(value, config), `${setting.variable} must be ${setting.accepts(config)}, got "${value}"`);
  }
  check(
    config.grpcPort === null || config.grpcPort === 0 || config.grpcPort !== config.port,
    `BATON_GRPC_PORT must differ from BATON_PORT (both are ${config.port}): give the native gRPC port a port of its own`,
  );
  check(
    config.embeddedPostgresPort === 0 || (config.embeddedPostgresPort !== config.port && config.embeddedPostgresPort !== config.grpcPort),
    `BATON_EMBEDDED_PG_PORT (${config.embeddedPostgresPort}) must differ from BATON_PORT and BATON_GRPC_PORT: leave it unset to pick a free one`,
  );
  check(
    config.grpcPort === null || !config.tls?.clientCaFile || config.tls.requireClientCert,
    'BATON_GRPC_PORT with BATON_TLS_CLIENT_CA needs BATON_TLS_REQUIRE_CLIENT_CERT=1: the native gRPC port either requires a client certificate of every client or asks none (mutual TLS for workers only is served on BATON_PORT)',
  );
  check(LOG_LEVELS.includes(config.logLevel), `BATON_LOG_LEVEL must be ${alternatives(LOG_LEVELS)}, got "${config.logLevel}"`);
  check(AUTH_MODES.includes(config.auth), `BATON_AUTH must be ${alternatives(AUTH_MODES)}, got "${config.auth}"`);
  check(!config.tls?.requireClientCert || Boolean(config.tls.clientCaFile), 'BATON_TLS_REQUIRE_CLIENT_CERT=1 needs a client CA: set BATON_TLS_CLIENT_CA');
  checkExposure(config);
  for (const queue of config.queues) {
    const where = `BATON_QUEUES: queue "${queue.name}"`;
    check(isQueueName(queue.name), `${where}: the name must be ${QUEUE_NAME_RULE}`);
    for (const [key, { field, variable }] of Object.entries(QUEUE_SETTINGS)) {
      const rule = NUMBER_SETTINGS.find((s) => s.variable === variable)!;
      check(Number.isSafeInteger(queue[field]) && rule.ok(queue[field], config), `${where}: ${key} must be ${rule.accepts(config)}, got "${queue[field]}"`);
    }
  }
  return config;
}

