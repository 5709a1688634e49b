import type { DescMethod } from '@bufbuild/protobuf';
import { Admin } from '@baton/worker-sdk/gen/admin';
import { Broker } from '@baton/worker-sdk/gen/broker';
import type { Scope } from '../domain/api-keys.ts';

/**
 * The scopes (besides `admin`, which is always accepted) that may call each RPC. Typed by the
 * generated service descriptors, so an RPC added to the .proto does not compile until it is listed
 * here.
 */
const BROKER_SCOPES: Record<keyof typeof Broker.method, readonly Scope[]> = {
  enqueue: ['producer'],
  enqueueBatch: ['producer'],
  get: ['producer'],
  list: ['producer'],
  watch: ['producer'],
  getServerInfo: ['producer', 'worker'],
  lease: ['worker'],
  cancel: ['admin'],
  retry: ['admin'],
};

const ADMIN_SCOPES: Record<keyof typeof Admin.method, readonly Scope[]> = {
  getQueueStats: ['admin'],
  pauseQueue: ['admin'],
  resumeQueue: ['admin'],
  setQueueConcurrency: ['admin'],
  listQueues: ['admin'],
  updateQueue: ['admin'],
  listWorkers: ['admin'],
  upsertSchedule: ['admin'],
  listSchedules: ['admin'],
  pauseSchedule: ['admin'],
  resumeSchedule: ['admin'],
  deleteSchedule: ['admin'],
  triggerSchedule: ['admin'],
  bulkAction: ['admin'],
};

const BY_SERVICE = new Map<string, Record<string, readonly Scope[]>>([
  [Broker.typeName, BROKER_SCOPES],
  [Admin.typeName, ADMIN_SCOPES],
]);

/**
 * Services anyone may call without a key. Health, so load balancers and orchestrators can probe
 * without credentials; reflection, so `grpcurl list`/`buf curl` work: it describes the API, which
 * is public in proto/ anyway, and exposes no data.
 */
export const OPEN_SERVICES: ReadonlySet<string> = new Set([
  'grpc.health.v1.Health',
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
]);

/**
 * What calling `method` requires: `'open'` for the services above, else the scopes that may call it.
 * A method of any other service (one added later and not listed) needs `admin`: closed by default.
 */
export function requiredScopes(method: Pick<DescMethod, 'localName' | 'parent'>): 'open' | readonly Scope[] {
  const service = method.parent.typeName;
  if (OPEN_SERVICES.has(service)) return 'open';
  return BY_SERVICE.get(service)?.[method.localName] ?? ['admin'];
}

/** "the admin scope", "the producer or worker scope": for error messages. */
export function describeScopes(required: readonly Scope[]): string {
  const names = required.includes('admin') ? required : [...required, 'admin'];
  return `the ${names.join(' or ')} scope`;
}
