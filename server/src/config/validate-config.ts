/** The check every config passes, whether read from the environment or given whole by code. */
import { QUEUE_NAME_RULE, isQueueName } from '../domain/queue.ts';
import { alternatives } from '../lib/words.ts';
import { AUTH_MODES, type BrokerConfig, LOG_LEVELS } from './broker-config.ts';
import { ConfigError } from './config-errors.ts';
import { checkExposure } from './exposure.ts';
import { NUMBER_SETTINGS, numberSetting } from './number-settings.ts';
import { QUEUE_SETTINGS } from './queue-declarations.ts';

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
      const rule = numberSetting(variable);
      check(Number.isSafeInteger(queue[field]) && rule.ok(queue[field], config), `${where}: ${key} must be ${rule.accepts(config)}, got "${queue[field]}"`);
    }
  }
  return config;
}
