/**
 * The Prometheus registries behind `/metrics`, on prom-client: the library most Node services use,
 * so the process and runtime metrics carry the names (`process_*`, `nodejs_*`) that existing
 * dashboards and alerts expect.
 *
 * Two registries, neither of them prom-client's global one:
 * - each broker's own (its job, queue, pool and RPC metrics), made with the broker, so that several
 *   brokers in one process (the tests) never share a counter;
 * - the process's (`collectDefaultMetrics`), made on first use and shared by every broker the
 *   process runs: CPU, memory, event-loop delay and GC belong to the process, and the collectors
 *   prom-client starts for them (an event-loop delay monitor, a GC observer) cannot be stopped, so
 *   there is one set per process rather than one more per broker.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The content type of the text format (0.0.4), for the HTTP response. */
export const CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

let processRegistry: Registry | null = null;

/** The process and Node runtime metrics, collected from the first call on. */
export function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** The registries one after the other, in the text format. */
export async function renderAll(registries: readonly Registry[]): Promise<string> {
  const texts = await Promise.all(registries.map((registry) => registry.metrics()));
  // Each ends with a newline; prom-client separates families with a blank line, and so do we.
  return texts.filter((text) => text.trim() !== '').join('\n');
}
