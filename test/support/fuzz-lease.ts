/**
 * The Lease stream under the fuzzer: misbehaving streams that send random sequences of messages
 * (no hello, absurd credits, results for jobs they do not hold, duplicates, garbage tokens, results
 * and failures full of hostile values for jobs they do hold), and the well-behaved worker that must
 * keep receiving and completing jobs beside them.
 */
import { create } from '@bufbuild/protobuf';
import { type Client, ConnectError } from '@connectrpc/connect';
import { Broker } from '@baton/worker-sdk/gen/broker';
import { type LeaseRequest, LeaseRequestSchema } from '@baton/worker-sdk/gen/lease';
import { AsyncQueue } from '../../server/src/core/async-queue.ts';
import { type FuzzContext, leaseInit, protectedTarget, randomMessage } from './fuzz-messages.ts';
import type { Rng } from './fuzz-random.ts';
import { type WireOutcome, codeName } from './fuzz-wire.ts';
import { LeaseDriver } from './lease-driver.ts';

export interface LeaseChaosResult {
  style: string;
  outcome: WireOutcome;
  /** Messages the stream sent. */
  sent: number;
  /** Messages the guard kept back (they named a protected queue). */
  guarded: number;
  /** Jobs the broker handed to this stream. */
  jobs: number;
  /** Acks that accepted a result for a job this stream was never given under that token: must stay empty. */
  falseAccepts: string[];
  /** The messages sent, for the failure report. */
  describe(): string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const leaseMethod = Broker.method.lease;

/** One misbehaving Lease stream, its script drawn from `rng`. */
export async function leaseChaos(
  rng: Rng,
  client: Client<typeof Broker>,
  ctx: FuzzContext,
  owned: ReadonlySet<string>,
  timeoutMs: number,
): Promise<LeaseChaosResult> {
  const requests = new AsyncQueue<LeaseRequest>();
  const abort = new AbortController();
  const held: { jobId: string; leaseToken: string }[] = [];
  const given = new Set<string>();
  const falseAccepts: string[] = [];
  const log: string[] = [];
  let ended = false;
  let jobs = 0;
  let received = 0;

  const reading = (async (): Promise<WireOutcome> => {
    try {
      for await (const message of client.lease(requests, { signal: abort.signal })) {
        received++;
        for (const job of message.jobs) {
          jobs++;
          held.push({ jobId: job.jobId, leaseToken: job.leaseToken });
          given.add(`${job.jobId}/${job.leaseToken}`);
        }
        for (const ack of message.acks) {
          if (ack.accepted && !given.has(`${ack.jobId}/${ack.leaseToken}`)) falseAccepts.push(`${ack.jobId}/${ack.leaseToken}`);
        }
      }
      return { code: 'OK', message: '', via: 'grpc-status', received };
    } catch (error) {
      if (abort.signal.aborted) return { code: 'OPEN', message: '', via: 'fuzzer', received };
      const connectError = ConnectError.from(error);
      return { code: codeName(connectError.code), message: connectError.rawMessage, via: 'grpc-status', received };
    } finally {
      ended = true;
    }
  })();

  const style = rng.weighted([
    [5, 'hello-then-chaos'],
    [2, 'hostile-hello'],
    [1, 'no-hello'],
    [2, 'random-messages'],
  ] as const);
  let sent = 0;
  let guarded = 0;
  const steps = rng.weighted([
    [3, rng.int(1, 3)],
    [5, rng.int(4, 12)],
    [1, rng.int(20, 40)],
  ] as const);
  for (let step = 0; step < steps && !ended; step++) {
    let init: Record<string, unknown>;
    if (step === 0 && style === 'hello-then-chaos') {
      init = {
        hello: { workerId: `fz-lease-${rng.int(0, 99)}`, queues: [rng.pick(ctx.leaseQueues)], capacity: rng.int(1, 10), protocolVersion: 1 },
        credits: rng.int(1, 10),
      };
    } else if (style === 'random-messages') {
      init = randomMessage(rng, LeaseRequestSchema, 4) as unknown as Record<string, unknown>;
    } else {
      init = leaseInit(rng, ctx, { held, hello: step === 0 ? style === 'hostile-hello' : rng.chance(0.05) });
    }
    const message = create(LeaseRequestSchema, init as never);
    if (protectedTarget(leaseMethod, message, ctx, owned)) {
      guarded++;
      continue;
    }
    requests.push(message);
    sent++;
    log.push(describeLease(message));
    // Time for jobs and acks to arrive, so that later messages can answer for them.
    await sleep(
      rng.weighted([
        [3, 0],
        [3, rng.int(1, 10)],
        [1, rng.int(20, 60)],
      ] as const),
    );
  }

  // Leave politely (the stream must end OK), or just hang up.
  let outcome: WireOutcome;
  if (rng.chance(0.75)) {
    requests.end();
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<WireOutcome>(
      (resolve) => (timer = setTimeout(() => resolve({ code: 'HANG', message: 'no end after the worker half-closed', via: 'fuzzer', received }), timeoutMs)),
    );
    outcome = await Promise.race([reading, hang]);
    clearTimeout(timer);
    if (outcome.code === 'HANG') abort.abort();
  } else {
    await sleep(rng.int(0, 30));
    abort.abort();
    outcome = await reading;
    requests.end();
  }
  return { style, outcome, sent, guarded, jobs, falseAccepts, describe: () => `${style}: ${log.join(' | ')}`.slice(0, 600) };
}

/** A short description of a Lease request, for reports. */
export function describeLease(message: LeaseRequest): string {
  const parts: string[] = [];
  if (message.hello)
    parts.push(
      `hello(${JSON.stringify(message.hello.workerId).slice(0, 20)}, ${JSON.stringify(message.hello.queues).slice(0, 60)}, cap ${message.hello.capacity}, v${message.hello.protocolVersion})`,
    );
  if (message.credits) parts.push(`credits ${message.credits}`);
  if (message.results.length) {
    parts.push(
      `results[${message.results.length}](${message.results
        .slice(0, 3)
        .map(
          (r) =>
            `${r.jobId.slice(0, 20)}/${r.leaseToken.slice(0, 20)}${r.failure ? ` fail(${JSON.stringify(r.failure.message.slice(0, 16))}, retry ${r.failure.retryAfter?.seconds ?? '-'}s)` : ` ${Buffer.from(r.resultJson.slice(0, 24)).toString('hex')}`}`,
        )
        .join(', ')})`,
    );
  }
  if (message.heartbeat) parts.push(`heartbeat(${message.heartbeat.leaseTokens.join(',').slice(0, 60)})`);
  if (message.progress.length) parts.push(`progress[${message.progress.length}]`);
  return parts.join(' ') || 'empty';
}

/**
 * A worker that does everything right, through the fuzz run: it completes every job it is given,
 * grants the credit back, and keeps a record of when each completion was accepted.
 */
export class GoodWorker {
  readonly driver: LeaseDriver;
  /** Date.now() of every accepted completion. */
  readonly completedAt: number[] = [];
  #stopping = false;
  #loop: Promise<void> | null = null;
  #failure: unknown = null;

  readonly queue: string;
  readonly capacity: number;

  constructor(client: Client<typeof Broker>, queue: string, capacity = 8) {
    this.driver = new LeaseDriver(client);
    this.queue = queue;
    this.capacity = capacity;
  }

  async start(): Promise<void> {
    this.driver.hello([this.queue], this.capacity, this.capacity, 'fuzz-good-worker');
    await this.driver.until((messages) => messages.some((m) => m.welcome));
    this.#loop = this.#run().catch((error) => {
      this.#failure = error;
    });
  }

  async #run(): Promise<void> {
    let answered = 0;
    let acked = 0;
    const accepted = () => this.driver.messages.reduce((n, m) => n + m.acks.filter((a) => a.accepted).length, 0);
    const rejected = () => this.driver.messages.flatMap((m) => m.acks.filter((a) => !a.accepted));
    while (!this.#stopping) {
      try {
        await this.driver.until(() => this.#stopping || this.driver.jobs.length > answered || accepted() > acked, 250);
      } catch (error) {
        if (this.driver.ended) throw error;
      }
      const now = Date.now();
      for (let n = accepted(); acked < n; acked++) this.completedAt.push(now);
      const refused = rejected();
      if (refused.length) throw new Error(`the good worker's results were refused: ${JSON.stringify(refused.slice(0, 3))}`);
      const fresh = this.driver.jobs.slice(answered);
      if (fresh.length > 0) {
        this.driver.send({
          credits: fresh.length,
          results: fresh.map((job) => ({
            jobId: job.jobId,
            leaseToken: job.leaseToken,
            resultJson: new TextEncoder().encode(JSON.stringify({ ok: job.jobId })),
          })),
        });
        answered += fresh.length;
      }
    }
  }

  /** Waits until `count` completions were accepted. */
  async completed(count: number, timeoutMs = 30_000): Promise<void> {
    await this.driver.until((messages) => messages.reduce((n, m) => n + m.acks.filter((a) => a.accepted).length, 0) >= count || undefined, timeoutMs);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#loop;
    this.driver.end();
    await this.driver.done;
    if (this.#failure) throw this.#failure;
  }
}
