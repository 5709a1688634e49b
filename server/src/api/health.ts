// grpc.health.v1.Health: the standard health protocol that Kubernetes gRPC probes,
// Envoy, grpc-health-probe and load balancers speak, so Baton needs no custom
// readiness endpoint for them.
//
// Semantics follow grpc-go's health server: the empty service name stands for the
// whole server and starts SERVING; Check on a name never set is NOT_FOUND; Watch
// sends SERVICE_UNKNOWN for such a name and keeps the stream open, because the
// service may be registered later.

import type { ServiceRegistry } from './grpc-port.ts';
import { Code, ConnectError } from '@connectrpc/connect';
import type { HandlerContext } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import { Health, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as Status } from '@baton/worker-sdk/gen/grpc/health/v1/health';

export type ServingStatusName = 'SERVING' | 'NOT_SERVING';

export interface HealthService {
  /** Serves grpc.health.v1.Health (Check, List, Watch) on `router`. */
  register(router: ServiceRegistry): void;
  /** Sets the status of `service` ("" is the whole server); Watch streams see it at once. */
  setStatus(service: string, status: ServingStatusName): void;
  /**
   * For shutdown: marks every service NOT_SERVING, sends that to open Watch streams,
   * then ends them, so a draining server does not wait on probes that never hang up.
   * Later setStatus calls are ignored (a stopping server must not flip back to SERVING).
   * Safe to call twice.
   */
  close(): void;
}

export function createHealth(): HealthService {
  const statuses = new Map<string, Status>([['', Status.SERVING]]);
  // Each waiting Watch stream parks a callback here; any change wakes them all.
  const waiters = new Set<() => void>();
  let closed = false;

  const notify = (): void => {
    for (const wake of [...waiters]) wake();
  };

  /** Resolves on the next status change, on close(), or when the client hangs up. */
  const nextChange = (signal: AbortSignal): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      waiters.add(done);
      signal.addEventListener('abort', done);
    });

  async function* watch(service: string, ctx: HandlerContext) {
    // Only changes are sent, and rapid flips coalesce into the latest state:
    // a watcher cares about the current status, not the history.
    let last: Status | undefined;
    for (;;) {
      const now = statuses.get(service) ?? Status.SERVICE_UNKNOWN;
      if (now !== last) {
        last = now;
        yield create(HealthCheckResponseSchema, { status: now });
      }
      if (closed || ctx.signal.aborted) return;
      await nextChange(ctx.signal);
    }
  }

  return {
    register(router) {
      router.service(Health, {
        check(req) {
          const status = statuses.get(req.service);
          if (status === undefined) throw new ConnectError(`unknown service: ${req.service}`, Code.NotFound);
          return { status };
        },
        list() {
          return { statuses: Object.fromEntries([...statuses].map(([name, status]) => [name, { status }])) };
        },
        watch: (req, ctx) => watch(req.service, ctx),
      });
    },
    setStatus(service, status) {
      if (closed) return;
      const next = status === 'SERVING' ? Status.SERVING : Status.NOT_SERVING;
      if (statuses.get(service) === next) return;
      statuses.set(service, next);
      notify();
    },
    close() {
      if (closed) return;
      closed = true;
      for (const name of statuses.keys()) statuses.set(name, Status.NOT_SERVING);
      notify();
    },
  };
}
