import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { createContextValues } from '@connectrpc/connect';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Admin, file_baton_v1_admin } from '@baton/worker-sdk/gen/admin';
import { Broker, file_baton_v1_broker } from '@baton/worker-sdk/gen/broker';
import { createAdminService } from './api/admin-service.ts';
import { createBrokerService } from './api/broker-service.ts';
import { errorBoundary } from './api/error-boundary.ts';
import { createHealth } from './api/health.ts';
import { type MainPort, startMainPort } from './api/main-port.ts';
import { serviceList, startGrpcPort } from './api/grpc-port.ts';
import { createHttpRoutes } from './api/http-routes.ts';
import { createReadiness } from './api/readiness.ts';
import { registerReflection } from './api/reflection.ts';
import { authorizeHttpRequest } from './auth/http.ts';
import { clientCertificateKey, connectionContextValues } from './auth/interceptor.ts';
import { readTlsFiles, setUpAuth } from './auth/setup.ts';
import { type BrokerConfig, checkExposure } from './config.ts';
import { Dispatcher } from './core/dispatcher.ts';
import { Maintenance } from './core/maintenance.ts';
import { ScheduleTicker } from './core/schedule-ticker.ts';
import { loadDashboard } from './dashboard/assets.ts';
import { type Logger, createLogger } from './logger.ts';
import { createBrokerMetrics } from './metrics/broker-metrics.ts';
import { traceClaims } from './metrics/claim-spans.ts';
import { pgPoolStats } from './metrics/pool-gauges.ts';
import { metricsInterceptor } from './metrics/rpc-interceptor.ts';
import { checkPortsFree, listenFailure } from './api/port-check.ts';
import { claimDataDir } from './store/data-dir.ts';
import { checkDatabase, migrationFailure } from './store/database-check.ts';
import type { EmbeddedDatabase } from './store/embedded-postgres.ts';
import type { StoreDriver } from './store/driver.ts';
import { NotificationListener } from './store/notification-listener.ts';
import { migrate, openOrm } from './store/orm.ts';
import { createPostgresDriver } from './store/postgres-driver.ts';

export interface RunningBroker {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** The native gRPC port (BATON_GRPC_PORT), when there is one. */
  readonly grpcPort: number | null;
  /** e.g. http://127.0.0.1:7700 */
  readonly url: string;
  readonly brokerId: string;
  readonly databaseUrl: string;
  readonly store: StoreDriver;
  readonly maintenance: Maintenance;
  /** Drains workers, finishes owed writes, closes everything. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a broker: database (embedded unless `databaseUrl` is given), migrations, declared queues,
 * the LISTEN connection, dispatcher, background duties and the listener, in that order; `stop()`
 * undoes them in reverse.
 */
export async function startBroker(config: BrokerConfig, logger: Logger = createLogger(config.logLevel)): Promise<RunningBroker> {
  const brokerId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const log = logger.child({ broker: brokerId });
  // Refused before anything starts: an exposed broker without auth, unreadable TLS files, a data
  // folder another broker holds, a port in use, a database that cannot be reached. Nothing has
  // been started or stopped by then, so a refused broker leaves a running one untouched.
  checkExposure(config);
  const tls = await readTlsFiles(config.tls);
  const claim = config.databaseUrl ? null : claimDataDir(config.dataDir, `a broker starting on ${config.host}:${config.port}`);
  let embedded: EmbeddedDatabase | null = null;
  let databaseUrl = config.databaseUrl;
  try {
    await checkPortsFree(config.host, [
      { variable: 'BATON_PORT', port: config.port },
      ...(config.grpcPort === null ? [] : [{ variable: 'BATON_GRPC_PORT', port: config.grpcPort }]),
    ]);
    if (databaseUrl) await checkDatabase(databaseUrl);
    else {
      // Loaded only when needed: the package installs process-wide exit hooks when imported.
      const { startEmbeddedPostgres } = await import('./store/embedded-postgres.ts');
      embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, logger: log, claim: claim! });
      databaseUrl = embedded.url;
    }
  } catch (error) {
    // Handed to startEmbeddedPostgres, which releases it itself when it fails; released twice is a no-op.
    claim?.release();
    throw error;
  }
  let orm: MikroORM | null = null;
  let store: StoreDriver | null = null;
  try {
    // The hot path has its own pool (the driver's); the ORM's serves reads, settings and migrations.
    orm = await openOrm(databaseUrl, Math.min(config.poolSize, ORM_POOL_SIZE));
    await migrate(orm, databaseUrl).catch((error) => {
      throw migrationFailure(databaseUrl!, error, embedded ? 'the embedded PostgreSQL' : 'DATABASE_URL');
    });
    const driver = createPostgresDriver({ orm, url: databaseUrl, logger: log, poolSize: config.poolSize, queueDefaults: config.queueDefaults });
    store = driver;
    const auth = await setUpAuth(config, store, log);
    const metrics = createBrokerMetrics({
      store,
      pools: { hot: driver.sqlPoolStats, orm: pgPoolStats(await orm.em.getConnection().getNativeClient()) },
    });
    const observer = metrics.observer(log);
    for (const queue of config.queues) await store.queueUpsert(queue);
    for (const { settings, paused } of config.schedules) await store.scheduleUpsert({ schedule: settings, paused });
    const notifications = new NotificationListener(databaseUrl, log);
    await notifications.start();
    // Claims traced (a span per batch that found jobs) when the embedding process registers an OpenTelemetry SDK.
    const dispatcher = new Dispatcher({
      store: traceClaims(store),
      notifications,
      logger: log,
      fallbackPollMs: config.fallbackPollMs,
      onRateLimited: (queue) => metrics.rateLimited.inc({ queue }),
    });
    dispatcher.start();
    const maintenance = new Maintenance({
      store,
      notifications,
      logger: log,
      leaseTtlMs: config.leaseTtlMs,
      retentionMs: config.retentionMs,
      observer,
      schedules: new ScheduleTicker({
        store,
        notifications,
        logger: log,
        tickRetentionMs: config.retentionMs > 0 ? config.retentionMs : undefined,
        onTick: (schedule, outcome) => metrics.scheduleTicks.inc({ schedule, outcome }),
      }),
    });
    maintenance.start();
    const health = createHealth();
    notifications.on('disconnected', () => health.setStatus('', 'NOT_SERVING'));
    notifications.on('reconnected', () => health.setStatus('', 'SERVING'));
    const broker = createBrokerService({ config, store, dispatcher, notifications, logger: log, brokerId, metrics, observer });
    metrics.bindSessions(broker.sessions);
    // One list of services for both ports: the main one (connect-node) and the native gRPC one.
    const services = serviceList();
    services.service(Broker, broker.impl);
    services.service(Admin, createAdminService(store, log, metrics));
    registerReflection(services, [file_baton_v1_broker, file_baton_v1_admin]);
    health.register(services);
    let draining = false;
    const readiness = createReadiness({
      ping: () => orm!.em.getConnection().execute('select 1'),
      draining: () => draining,
      onChange: (answer, error) =>
        answer.ready ? log.info('ready again: the database answers') : log.warn('not ready: the database does not answer', { error }),
    });
    // Auth inside the error boundary: its refusals pass through, a key lookup that fails becomes UNAVAILABLE.
    // Metrics outermost: they count the status the client sees.
    const interceptors = [metricsInterceptor(metrics), errorBoundary(log), auth.interceptor];
    const handler = connectNodeAdapter({
      // Connect JSON (curl) requests with a misspelt field are refused, not run without it.
      jsonOptions: { ignoreUnknownFields: false },
      // Checked against each message's declared size, before its buffer is allocated.
      readMaxBytes: config.maxMessageBytes,
      interceptors,
      contextValues: connectionContextValues,
      routes(router) {
        for (const { service, impl } of services.entries) router.service(service, impl);
      },
      // Everything that is not an RPC: the health probes, /metrics and the dashboard.
      fallback: createHttpRoutes({
        metrics: () => metrics.render(log),
        dashboard: await loadDashboard(),
        logger: log,
        authorizeMetrics: (headers) => authorizeHttpRequest(auth.authenticator, headers, ['admin'], 'GET /metrics'),
        readiness,
      }),
    });
    const listener: MainPort = await startMainPort({
      host: config.host,
      port: config.port,
      handler,
      tls,
      maxStreamsPerConnection: config.maxStreamsPerConnection,
    }).catch((error) => {
      throw listenFailure(error, 'BATON_PORT', config.host, config.port);
    });
    const grpcListener =
      config.grpcPort === null
        ? null
        : await startGrpcPort({
            host: config.host,
            port: config.grpcPort,
            services: services.entries,
            interceptors,
            contextValues: ({ clientCertificate }) => createContextValues().set(clientCertificateKey, clientCertificate),
            tls,
            maxMessageBytes: config.maxMessageBytes,
            maxStreamsPerConnection: config.maxStreamsPerConnection,
          }).catch(async (error) => {
            await listener.close(0);
            throw listenFailure(error, 'BATON_GRPC_PORT', config.host, config.grpcPort!);
          });
    const grpcPort = grpcListener?.port ?? null;
    claim?.describe(`the broker at ${listener.url}`);
    log.info('broker listening', { url: listener.url, grpcPort, database: embedded ? 'embedded' : 'external', auth: config.auth, tls: Boolean(tls) });

    let stopping: Promise<void> | null = null;
    const stop = () =>
      (stopping ??= (async () => {
        try {
          log.info('shutting down: draining workers', { deadlineMs: config.drainTimeoutMs });
          // Load balancers see /readyz fail at once and send new work elsewhere while workers drain.
          draining = true;
          health.close();
          // Claims under way finish (and their jobs reach the workers) before the drain message, so
          // no job arrives after it, when a worker may already have ended its stream.
          await dispatcher.stop();
          await broker.drain(config.drainTimeoutMs);
          await maintenance.stop();
          await Promise.all([listener.close(1000), grpcListener?.close(1000)]);
          await notifications.stop();
          await store!.close();
          await orm!.close();
        } finally {
          // Last, after the pool has closed: the drained sessions' results are written through it.
          // And whatever failed before, the database this broker started does not outlive it.
          await embedded?.stop(EMBEDDED_STOP_GRACE_MS);
        }
        log.info('stopped');
      })());
    return { port: listener.port, grpcPort, url: listener.url, brokerId, databaseUrl, store, maintenance, stop };
  } catch (error) {
    await store?.close().catch(() => undefined);
    await orm?.close().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    throw error;
  }
}

const ORM_POOL_SIZE = 4;
/** How long the embedded PostgreSQL waits at shutdown for sessions other than the broker's (a psql left open). */
const EMBEDDED_STOP_GRACE_MS = 5_000;
