#!/usr/bin/env node
/**
 * `npm start` and `baton serve`: runs one broker with the configuration from the environment until
 * SIGINT or SIGTERM.
 */
import { ConfigError, isLoopbackHost, loadConfig } from './config.ts';
import { startBroker } from './broker.ts';
import { createLogger } from './logger.ts';

/**
 * Starts a broker from `env` and resolves, after a signal and a drained shutdown, to the exit code:
 * 0 after a clean shutdown, 1 when shutdown failed, 2 for a configuration error. A second signal
 * exits at once without draining.
 */
export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`baton: configuration error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  let broker;
  try {
    broker = await startBroker(config, logger);
  } catch (error) {
    // Unreadable TLS files and the like are found only when the broker starts.
    if (error instanceof ConfigError) {
      process.stderr.write(`baton: configuration error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const auth = config.auth === 'keys' ? 'API keys required' : 'no authentication';
  // Before the ready line, so that whoever waits for that line knows both ports when it comes.
  if (broker.grpcPort !== null) process.stderr.write(`Native gRPC (grpc-js) on port ${broker.grpcPort}\n`);
  process.stderr.write(`Baton broker ready at ${broker.url} (gRPC, Connect and gRPC-Web; reflection on; ${auth})\n`);
  if (config.auth === 'off' && !isLoopbackHost(config.host)) {
    process.stderr.write(
      `WARNING: authentication is off and ${config.host} is reachable beyond this machine (BATON_INSECURE_ALLOW_OPEN=1): ` +
        'anyone who can reach the port can enqueue, run, cancel and administer jobs. See docs/security.md.\n',
    );
  }

  return new Promise<number>((resolve) => {
    let signals = 0;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        if (++signals > 1) {
          logger.warn('second signal: exiting without draining');
          process.exit(1);
        }
        broker.stop().then(
          () => resolve(0),
          (error) => {
            logger.error('shutdown failed', { error });
            resolve(1);
          },
        );
      });
    }
  });
}

if (import.meta.main) process.exit(await serve());
