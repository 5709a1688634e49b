/** The secure-default rule: who may reach a broker that does not authenticate its callers. */
import { ConfigError } from './config-errors.ts';
import type { BrokerConfig } from './broker-config.ts';

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
