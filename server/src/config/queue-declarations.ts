/** BATON_QUEUES: queues declared up front, with settings in the ranges of the defaults' variables. */
import { QUEUE_NAME_RULE, isQueueName } from '../domain/queue.ts';
import { type QueueConfig, defaultConfig } from './broker-config.ts';
import { ConfigError } from './config-errors.ts';
import { numberSetting } from './number-settings.ts';

/** The settings of a BATON_QUEUES entry, with their ranges (the same as the defaults' variables). */
export const QUEUE_SETTINGS: Record<string, { field: keyof Omit<QueueConfig, 'name'>; variable: string }> = {
  concurrency: { field: 'concurrency', variable: 'BATON_DEFAULT_CONCURRENCY' },
  max_attempts: { field: 'defaultMaxAttempts', variable: 'BATON_DEFAULT_MAX_ATTEMPTS' },
  timeout_ms: { field: 'defaultTimeoutMs', variable: 'BATON_DEFAULT_TIMEOUT_MS' },
};

/**
 * Parses `BATON_QUEUES`: comma-separated queue declarations, each `name` optionally followed by
 * `:key=value` settings, e.g. `fibonacci:concurrency=3,sleep:max_attempts=5:timeout_ms=60000`.
 */
export function parseQueues(spec: string, defaults: Omit<QueueConfig, 'name'>): QueueConfig[] {
  const queues = spec
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const [name, ...settings] = entry.split(/:(?=[a-z_]+=)/);
      if (!isQueueName(name)) {
        throw new ConfigError(`BATON_QUEUES: queue name "${name}" must be ${QUEUE_NAME_RULE} (entries look like fibonacci:concurrency=3)`);
      }
      const queue: QueueConfig = { name, ...defaults };
      for (const setting of settings) {
        const [key, raw] = setting.split('=');
        const known = QUEUE_SETTINGS[key];
        if (!Object.hasOwn(QUEUE_SETTINGS, key))
          throw new ConfigError(`BATON_QUEUES: queue "${name}": unknown setting "${key}" (concurrency, max_attempts, timeout_ms)`);
        const rule = numberSetting(known.variable);
        const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
        if (!Number.isSafeInteger(value) || !rule.ok(value, defaultConfig())) {
          throw new ConfigError(`BATON_QUEUES: queue "${name}": ${key} must be ${rule.accepts(defaultConfig())}, got "${raw}"`);
        }
        queue[known.field] = value;
      }
      return queue;
    });
  const seen = new Set<string>();
  for (const { name } of queues) {
    if (seen.has(name)) throw new ConfigError(`BATON_QUEUES declares queue "${name}" twice: keep one entry per queue`);
    seen.add(name);
  }
  return queues;
}
