import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import type { BrokerMetrics } from './broker-metrics.ts';

/** gRPC's canonical status names, indexed by code, as the `code` label. */
const CODE_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

function codeOf(error: unknown): string {
  return CODE_NAMES[ConnectError.from(error).code] ?? 'UNKNOWN';
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
        let code = CODE_NAMES[Code.Canceled];
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
