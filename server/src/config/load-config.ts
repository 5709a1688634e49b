/** Reading the configuration from environment variables (README.md, "Configuration"). */
import path from 'node:path';
import { alternatives } from '../lib/words.ts';
import { AUTH_MODES, type BrokerConfig, LOG_LEVELS, type TlsFilesConfig, defaultConfig } from './broker-config.ts';
import { ConfigError } from './config-errors.ts';
import { checkDatabaseUrl } from './database-url.ts';
import { NUMBER_SETTINGS, type NumberSetting, numberSetting } from './number-settings.ts';
import { parseQueues } from './queue-declarations.ts';
import { parseSchedules } from './schedule-declarations.ts';
import { validateConfig } from './validate-config.ts';

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
  if (env.BATON_SCHEDULES) config.schedules = parseSchedules(env.BATON_SCHEDULES);
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
  const portSetting = numberSetting('BATON_EMBEDDED_PG_PORT');
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

function loadTlsConfig(env: NodeJS.ProcessEnv): TlsFilesConfig | undefined {
  const { BATON_TLS_CERT: cert, BATON_TLS_KEY: key, BATON_TLS_CLIENT_CA: clientCa } = env;
  const requireClientCert = flag(env, 'BATON_TLS_REQUIRE_CLIENT_CERT');
  if (!cert && !key) {
    if (clientCa || requireClientCert)
      throw new ConfigError('BATON_TLS_CLIENT_CA and BATON_TLS_REQUIRE_CLIENT_CERT need TLS: set BATON_TLS_CERT and BATON_TLS_KEY too');
    return undefined;
  }
  if (!cert || !key) throw new ConfigError('TLS needs both BATON_TLS_CERT (certificate chain, PEM) and BATON_TLS_KEY (private key, PEM)');
  return { certFile: path.resolve(cert), keyFile: path.resolve(key), clientCaFile: clientCa ? path.resolve(clientCa) : undefined, requireClientCert };
}
