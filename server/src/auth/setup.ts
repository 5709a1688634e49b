import { readFile } from 'node:fs/promises';
import type { Interceptor } from '@connectrpc/connect';
import type { TlsOptions } from '../api/main-port.ts';
import { type BrokerConfig, ConfigError, type TlsFilesConfig, isLoopbackHost } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { StoreDriver } from '../store/driver.ts';
import { Authenticator } from './authenticator.ts';
import { createAuthInterceptor } from './interceptor.ts';

/** What the broker wires in: the RPC interceptor, and the authenticator HTTP routes share (null when off). */
export interface BrokerAuth {
  authenticator: Authenticator | null;
  interceptor: Interceptor;
}

/**
 * Builds the broker's authentication from its config, saying loudly what is unusual: auth off
 * beyond loopback, or auth on with no key to use. (`startBroker` has already applied
 * `checkExposure`, the secure-default rule.)
 */
export async function setUpAuth(config: BrokerConfig, store: Pick<StoreDriver, 'apiKeyGet' | 'apiKeyCountActive'>, log: Logger): Promise<BrokerAuth> {
  let authenticator: Authenticator | null = null;
  if (config.auth === 'keys') {
    authenticator = new Authenticator({ findKey: (id) => store.apiKeyGet({ id }), cacheMs: config.authCacheMs });
    if ((await store.apiKeyCountActive()) === 0) {
      log.warn(
        'BATON_AUTH=keys but no API key exists yet: every call except health and reflection will be refused; create one with "baton keys create --scope producer|worker|admin"',
      );
    }
  } else if (!isLoopbackHost(config.host)) {
    log.warn(
      `AUTHENTICATION IS OFF on ${config.host || 'every interface'} (BATON_INSECURE_ALLOW_OPEN=1): anyone who can reach this port can enqueue, run, cancel and administer jobs`,
    );
  }
  const workerCertificateRequired = Boolean(config.tls?.clientCaFile);
  return { authenticator, interceptor: createAuthInterceptor({ authenticator, workerCertificateRequired }) };
}

/** Reads the PEM files named in the config into the listener's TLS options. */
export async function readTlsFiles(tls: TlsFilesConfig | undefined): Promise<TlsOptions | undefined> {
  if (!tls) return undefined;
  const read = (file: string, what: string) =>
    readFile(file).catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError(`cannot read ${what} ${file}: ${error.code ?? error.message}`);
    });
  return {
    cert: await read(tls.certFile, 'the TLS certificate (BATON_TLS_CERT)'),
    key: await read(tls.keyFile, 'the TLS private key (BATON_TLS_KEY)'),
    ca: tls.clientCaFile ? await read(tls.clientCaFile, 'the client CA (BATON_TLS_CLIENT_CA)') : undefined,
    requestClientCert: Boolean(tls.clientCaFile),
    requireClientCert: tls.requireClientCert,
  };
}
