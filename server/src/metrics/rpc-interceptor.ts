import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { status } from '@grpc/grpc-js';
import type { BrokerMetrics } from './broker-metrics.ts';

function codeOf(error: unknown): string {
  return status[ConnectError.from(error).code] ?? 'UNKNOWN';
}

/**
 * Counts every RPC by service, method and status code, and times unary ones. Streams (Watch, Lease)
 * are counted when they end. Put it first in the interceptor list, so that it sees the status the
 * client sees (after the error boundary and any auth interceptor have had their say).
 */
export function metricsInterceptor(metrics: Pick<BrokerMetrics, 'rpcs' | 'rpcDuration'>): Interceptor {
  return (next) => async (request) => {
    const labels = { service: request.service.typeName, method: request.method.name };
    const started = performance.now();
    const done = (code: string) => metrics.rpcs.inc({ ...labels, code });
    let response;
    try {
      response = await next(request);
    } catch (error) {
      done(codeOf(error));
      if (request.method.methodKind === 'unary') metrics.rpcDuration.observe(labels, (performance.now() - started) / 1000);
      throw error;
    }
    if (!response.stream) {
      done('OK');
      metrics.rpcDuration.observe(labels, (performance.now() - started) / 1000);
      return response;
    }
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        let code = status[Code.Canceled];
        try {
          yield* messages;
          code = 'OK';
        } catch (error) {
          code = codeOf(error);
          throw error;
        } finally {
          // A consumer that stopped early (the client hung up) leaves `code` at CANCELLED.
          done(code);
        }
      })(),
    };
  };
}
