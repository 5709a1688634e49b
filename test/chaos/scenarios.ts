/**
 * The chaos scenarios: each enqueues its jobs, injects its fault while workers are busy, and
 * checks that every job completes (or is cancelled, in the cancel storm), none is lost, no
 * completion is recorded twice, the concurrency limit holds, and how long recovery took. Bounded:
 * a few hundred short jobs per scenario, a few thousand where the backlog is the point. Both ports
 * are one contract: chaos-main.test.ts and chaos-grpc.test.ts run every scenario through one each.
 *
 * The scenarios live in two modules by theme: ./fault-scenarios.ts (processes and the database
 * failing) and ./load-scenarios.ts (the workload pushed hard); ./scenario-kit.ts is what they share.
 */
import { afterEach } from 'vitest';
import { faultScenarios } from './fault-scenarios.ts';
import type { Port } from './harness.ts';
import { loadScenarios } from './load-scenarios.ts';
import { cleanUp } from './scenario-kit.ts';

/** Every scenario, with workers and producers on `via`. */
export function chaosScenarios(via: Port): void {
  afterEach(cleanUp);
  faultScenarios(via);
  loadScenarios(via);
}
