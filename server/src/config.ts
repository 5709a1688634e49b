/**
 * The broker's configuration, one concern per module under ./config/: the settings and their
 * defaults, the table of whole-number variables and their ranges, loading from the environment,
 * BATON_QUEUES, DATABASE_URL, the exposure rule, validation, and the start-up errors. Imported from
 * here by the rest of the server.
 */
export {
  AUTH_MODES,
  type AuthMode,
  type BrokerConfig,
  LOG_LEVELS,
  type LogLevel,
  type QueueConfig,
  type TlsFilesConfig,
  defaultConfig,
} from './config/broker-config.ts';
export { ConfigError, StartupError } from './config/config-errors.ts';
export { checkDatabaseUrl, maskDatabaseUrl } from './config/database-url.ts';
export { checkExposure, isLoopbackHost } from './config/exposure.ts';
export { loadConfig, loadDatabaseSettings } from './config/load-config.ts';
export { parseQueues } from './config/queue-declarations.ts';
export { validateConfig } from './config/validate-config.ts';
