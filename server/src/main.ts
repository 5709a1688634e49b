#!/usr/bin/env node
/**
 * `npm start` and `baton serve`: runs one broker with the configuration from the environment until
 * SIGINT, SIGTERM or SIGHUP.
 */
import { type BrokerConfig, ConfigError, StartupError, isLoopbackHost, loadConfig } from './config.ts';
import { type RunningBroker, startBroker } from './broker.ts';
import { createLogger } from './logger.ts';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Starts a broker from `env` and resolves, after a signal and a drained shutdown, to the exit code:
 * 0 after a clean shutdown, 1 when the broker could not start (a port or data folder in use, an
 * unreachable database) or shutdown failed, 2 for a configuration error. Refusals are one line on
 * stderr, never a stack trace.
 */
export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config;
  try {
    config = loadConfig(env);
  } catch (error) {
    return refusal(error);
  }
  const logger = createLogger(config.logLevel);
  // Caught from the start: a signal's default action during start-up would end this process at
  // once and leave the database it is starting behind. One that comes then stops the broker as
  // soon as it is up.
  let early: NodeJS.Signals | null = null;
  let onSignal = (signal: NodeJS.Signals) => void (early ??= signal);
  // SIGHUP too: a closed terminal would otherwise end the broker without a drain.
  for (const signal of STOP_SIGNALS) process.on(signal, (received) => onSignal(received));
  let broker;
  try {
    broker = await startBroker(config, logger);
  } catch (error) {
    // Unreadable TLS files, ports in use, an unreachable database: found only when the broker starts.
    return refusal(error);
  }
  // A logger of its own at info: the broker's drops info lines when BATON_LOG_LEVEL is warn or error.
  createLogger('info').info(READY_MESSAGE, readyFields(broker, config));
  if (config.auth === 'off' && !isLoopbackHost(config.host)) {
    process.stderr.write(
      `WARNING: authentication is off and ${config.host} is reachable beyond this machine (BATON_INSECURE_ALLOW_OPEN=1): ` +
        'anyone who can reach the port can enqueue, run, cancel and administer jobs. See docs/security.md.\n',
    );
  }

  const drainMs = config.drainTimeoutMs;
  return new Promise<number>((resolve) => {
    let stopping = false;
    onSignal = (signal) => {
      // A second signal must not cut the drain short: a terminal's Ctrl-C reaches the broker once
      // from the terminal and again from `npm`, which forwards what it gets. The drain is bounded by
      // BATON_DRAIN_MS; SIGKILL is there for whoever cannot wait (the next start cleans up).
      if (stopping) {
        logger.warn(`${signal} again: still shutting down (workers get up to ${drainMs} ms, BATON_DRAIN_MS, to report), then the database stops`);
        return;
      }
      stopping = true;
      broker.stop().then(
        () => {
          process.stderr.write('Baton broker stopped\n');
          resolve(0);
        },
        (error) => {
          logger.error('shutdown failed', { error });
          resolve(1);
        },
      );
    };
    if (early) onSignal(early);
  });
}

/**
 * The `msg` of the line that says the broker serves. Supervisors, scripts and tests wait for it, so
 * it is written whatever BATON_LOG_LEVEL says, and its fields say where to connect.
 */
export const READY_MESSAGE = 'broker ready';

/** Where and how to reach the broker, as the ready line gives it. */
function readyFields(broker: RunningBroker, config: BrokerConfig): Record<string, unknown> {
  let grpcUrl: string | null = null;
  if (broker.grpcPort !== null) {
    const url = new URL(broker.url);
    url.port = String(broker.grpcPort);
    grpcUrl = url.origin;
  }
  return {
    url: broker.url,
    // The native gRPC port (grpc-js), when BATON_GRPC_PORT opens one.
    grpcUrl,
    protocols: 'gRPC, Connect and gRPC-Web; reflection on',
    // "keys": every RPC but health and reflection needs an API key; "off": none (docs/security.md).
    auth: config.auth,
    tls: config.tls !== undefined,
    health: `${broker.url}/readyz`,
    brokerId: broker.brokerId,
  };
}

/** The exit code for a broker that cannot start, after one line saying why and what to do. */
function refusal(error: unknown): number {
  if (error instanceof ConfigError) {
    process.stderr.write(`baton: configuration error: ${error.message}\n`);
    return 2;
  }
  if (error instanceof StartupError) {
    process.stderr.write(`baton: ${error.message}\n`);
    return 1;
  }
  // Anything else is a fault of ours: its stack is what a bug report needs.
  throw error;
}

if (import.meta.main) process.exit(await serve());
