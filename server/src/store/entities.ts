import { defineEntity, p } from '@mikro-orm/core';
import type { Scope } from '../domain/api-keys.ts';
import type { JobStatus } from '../domain/job-status.ts';

/**
 * The ORM's view of the schema in ./migrations, for ordinary reads and writes. The hot path
 * (./job-sql.ts) writes the same tables with set-based SQL.
 */
export const QueueEntity = defineEntity({
  name: 'Queue',
  tableName: 'baton_queues',
  properties: {
    name: p.text().primary(),
    concurrency: p.integer(),
    paused: p.boolean(),
    defaultMaxAttempts: p.integer().fieldName('default_max_attempts'),
    defaultTimeoutMs: p.bigint('number').fieldName('default_timeout_ms'),
    createdAt: p.datetime().fieldName('created_at').onCreate(() => new Date()),
    updatedAt: p.datetime().fieldName('updated_at').onCreate(() => new Date()).onUpdate(() => new Date()),
    watchedUntil: p.datetime().fieldName('watched_until').nullable(),
  },
});

export const SessionEntity = defineEntity({
  name: 'Session',
  tableName: 'baton_sessions',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    workerId: p.text().fieldName('worker_id'),
    brokerId: p.text().fieldName('broker_id'),
    queues: p.array().fieldName('queues'),
    capacity: p.integer(),
    connectedAt: p.datetime().fieldName('connected_at'),
    expiresAt: p.datetime().fieldName('expires_at'),
  },
});

export const JobEntity = defineEntity({
  name: 'Job',
  tableName: 'baton_jobs',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    queue: p.text(),
    status: p.text().$type<JobStatus>(),
    payload: p.json<unknown>(),
    priority: p.smallint(),
    runAt: p.datetime().fieldName('run_at'),
    attempt: p.integer(),
    maxAttempts: p.integer().fieldName('max_attempts'),
    backoffInitialMs: p.bigint('number').fieldName('backoff_initial_ms'),
    backoffMaxMs: p.bigint('number').fieldName('backoff_max_ms'),
    backoffMultiplier: p.double().fieldName('backoff_multiplier').$type<number>(),
    backoffJitter: p.double().fieldName('backoff_jitter').$type<number>(),
    timeoutMs: p.bigint('number').fieldName('timeout_ms'),
    idempotencyKey: p.text().fieldName('idempotency_key').nullable(),
    labels: p.json<Record<string, string>>(),
    traceparent: p.text().nullable(),
    result: p.json<unknown>().nullable(),
    errors: p.json<{ attempt: number; message: string; at: string; worker_id: string | null }[]>(),
    progress: p.json<unknown>().nullable(),
    createdAt: p.datetime().fieldName('created_at'),
    startedAt: p.datetime().fieldName('started_at').nullable(),
    finishedAt: p.datetime().fieldName('finished_at').nullable(),
    leaseToken: p.bigint('string').fieldName('lease_token').nullable(),
    sessionId: p.bigint('string').fieldName('session_id').nullable(),
    workerId: p.text().fieldName('worker_id').nullable(),
    deadlineAt: p.datetime().fieldName('deadline_at').nullable(),
    cancelRequested: p.boolean().fieldName('cancel_requested'),
  },
});

/** An API key (docs/security.md): only the SHA-256 of its secret is stored. */
export const ApiKeyEntity = defineEntity({
  name: 'ApiKey',
  tableName: 'baton_api_keys',
  properties: {
    id: p.text().primary(),
    name: p.text(),
    scope: p.text().$type<Scope>(),
    secretHash: p.text().fieldName('secret_hash'),
    createdAt: p.datetime().fieldName('created_at').onCreate(() => new Date()),
    revokedAt: p.datetime().fieldName('revoked_at').nullable(),
  },
});

export type Job = InstanceType<typeof JobEntity.class>;
export type Queue = InstanceType<typeof QueueEntity.class>;
export type ApiKey = InstanceType<typeof ApiKeyEntity.class>;

export const ENTITIES = [QueueEntity, SessionEntity, JobEntity, ApiKeyEntity];
