/**
 * BullMQ on Redis (127.0.0.1:6379, as configured on the machine; the benchmark reports whether
 * Redis persists anything). Producers use Queue.add / addBulk; workers one BullMQ Worker per process
 * with the process's concurrency. Keys live under a prefix of this run's own, deleted at the end.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE, type BenchPayload, type CreateConsumer, type System } from '../system.ts';

const REDIS = { host: '127.0.0.1', port: 6379 };

/**
 * A client for BullMQ. Under native ESM BullMQ cannot load ioredis itself and must be handed a
 * client; `maxRetriesPerRequest: null` is what BullMQ requires of the connections it blocks on.
 */
const connect = () => new Redis({ ...REDIS, maxRetriesPerRequest: null });
const BACKLOG_CHUNK = 10_000;

/** Whether Redis answers on REDIS within a second; with its persistence settings when it does. */
export async function probeRedis(): Promise<{ version: string; persistence: string } | undefined> {
  const redis = new Redis({ ...REDIS, lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const info = await redis.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
    const aof = ((await redis.config('GET', 'appendonly')) as string[])[1];
    const fsync = ((await redis.config('GET', 'appendfsync')) as string[])[1];
    const save = ((await redis.config('GET', 'save')) as string[])[1];
    const persistence = aof === 'yes' ? `AOF on, appendfsync ${fsync}` : `AOF off, RDB save "${save}"`;
    return { version, persistence };
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

export function createBullmqSystem(): System {
  const prefix = `baton-bench-${process.pid}`;
  let queue: Queue | undefined;
  let redis: Redis | undefined;
  const completed = () => queue!.getCompletedCount();
  return {
    name: 'BullMQ',
    storage: 'redis',
    async setup() {
      redis = connect();
      queue = new Queue(QUEUE, { connection: redis, prefix });
      await queue.waitUntilReady();
    },
    async reset() {
      await deleteKeys(redis!, prefix);
    },
    async enqueue(payload) {
      await queue!.add('job', payload);
    },
    async enqueueBatch(payloads) {
      await queue!.addBulk(payloads.map((data) => ({ name: 'job', data })));
    },
    async insertBacklog(n) {
      for (let done = 0; done < n; done += BACKLOG_CHUNK) {
        const size = Math.min(BACKLOG_CHUNK, n - done);
        await queue!.addBulk(Array.from({ length: size }, (_, k) => ({ name: 'job', data: { i: done + k } })));
      }
    },
    mark: completed,
    async drained(mark, n) {
      return (await completed()) - mark >= n;
    },
    get worker() {
      return { peer: 'bullmq', config: { prefix } };
    },
    async serverPid() {
      const info = await redis!.info('server');
      return Number(/process_id:(\d+)/.exec(info)?.[1]) || undefined;
    },
    idleWorker(streams) {
      return { peer: 'bullmq', config: { prefix, streams, queue: 'bench-idle' } };
    },
    async close() {
      if (redis) await deleteKeys(redis, prefix);
      await queue?.close();
      redis?.disconnect();
    },
  };
}

/** Deletes every key of this run (SCAN + UNLINK), which is faster than obliterating a million-job queue. */
async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 10_000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}

/** One Worker with the process's concurrency; or, for the idle scenario, `streams` Workers on an empty queue. */
export const createConsumer: CreateConsumer = async (config, hooks) => {
  const prefix = config.prefix as string;
  const streams = (config.streams as number | undefined) ?? 0;
  const queue = (config.queue as string | undefined) ?? QUEUE;
  const processor = async (job: { id?: string; data: BenchPayload }) => {
    hooks.onStart(job.data, job.id!);
    hooks.onEnd(job.id!);
  };
  const make = (concurrency: number) => new Worker(queue, processor, { connection: connect(), prefix, concurrency, autorun: false });
  const workers = streams > 0 ? Array.from({ length: streams }, () => make(1)) : [make(hooks.concurrency)];
  return {
    async start() {
      for (const w of workers) {
        w.on('error', (error) => process.stderr.write(`[bullmq] ${error.message}\n`));
        void w.run();
      }
      await Promise.all(workers.map((w) => w.waitUntilReady()));
    },
    async stop() {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
};
