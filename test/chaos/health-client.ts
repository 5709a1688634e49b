import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { Health, HealthCheckResponse_ServingStatus } from '@baton/worker-sdk/gen/grpc/health/v1/health';

/** Asks a broker's grpc.health.v1 for the whole server's status, as a load balancer would. */
export function createHealthClient(port: number) {
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  return {
    async status(): Promise<string> {
      try {
        const { status } = await health.check({ service: '' }, { timeoutMs: 2000 });
        const names = Object.entries(HealthCheckResponse_ServingStatus) as [string, number][];
        return names.find(([, value]) => value === status)?.[0] ?? String(status);
      } catch {
        return 'UNREACHABLE';
      }
    },
  };
}
