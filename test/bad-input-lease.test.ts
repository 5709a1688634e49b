/**
 * Bad input on the Lease stream: protocol violations end the stream with the right gRPC code and a
 * message that names what to fix, with nothing stored changed; bad results are refused one by one
 * while the stream stays open; and no misbehaving stream harms anyone else using the broker.
 * Bad unary requests are in bad-input-requests.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Code, ConnectError } from '@connectrpc/connect';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import type { JobAssignment } from '@baton/worker-sdk/gen/lease';
import { query } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import {
  bytes,
  db,
  expectMentions,
  json,
  type LeaseInit,
  MAX_PAYLOAD_BYTES,
  portClients,
  type ResultInit,
  stored,
  success,
  useBadInputBroker,
} from './support/bad-input.ts';

useBadInputBroker();

// Both ports are one contract: every case runs on the main port and on BATON_GRPC_PORT.
describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const clients = {
    get broker() {
      return portClients[port].broker;
    },
  };
  /** Queue names of this port's cases, apart from the other port's (one database). */
  const q = (name: string) => `${name}-${port}`;

  /** Opens a stream, sends `messages` one after the other, and returns the error the stream ended with. */
  async function leaseRefusal(...messages: LeaseInit[]): Promise<ConnectError> {
    const driver = new LeaseDriver(clients.broker);
    for (const message of messages) driver.send(message);
    await driver.done;
    driver.end();
    if (!driver.error) throw new Error('expected the Lease stream to be refused, but it ended cleanly');
    return ConnectError.from(driver.error);
  }

  const hello = (queues: string[], capacity = 1, credits = 0): LeaseInit => ({
    hello: { workerId: 'bad-input', queues, capacity, protocolVersion: 1 },
    credits,
  });

  describe('the Lease stream refuses protocol violations', () => {
    it.each<{ what: string; messages: LeaseInit[]; code: Code; mentions: string | RegExp }>([
      { what: 'a first message without hello', messages: [{ credits: 5 }], code: Code.FailedPrecondition, mentions: 'must carry hello' },
      { what: 'hello with no queues', messages: [hello([])], code: Code.InvalidArgument, mentions: 'hello.queues must name 1-100 queues' },
      {
        what: 'hello with 101 queues',
        messages: [hello(Array.from({ length: 101 }, (_, i) => `q${i}`))],
        code: Code.InvalidArgument,
        mentions: 'hello.queues must name 1-100 queues',
      },
      { what: 'hello with a bad queue name', messages: [hello(['ok', 'not ok'])], code: Code.InvalidArgument, mentions: 'hello.queues: "not ok"' },
      { what: 'hello with capacity 0', messages: [hello(['lease-bad'], 0)], code: Code.InvalidArgument, mentions: 'hello.capacity must be 1-100000, got 0' },
      {
        what: 'hello with capacity 10^9',
        messages: [hello(['lease-bad'], 1_000_000_000)],
        code: Code.InvalidArgument,
        mentions: 'hello.capacity must be 1-100000, got 1000000000',
      },
      {
        what: 'hello with no worker id',
        messages: [{ hello: { workerId: '', queues: ['lease-bad'], capacity: 1 } }],
        code: Code.InvalidArgument,
        mentions: 'hello.worker_id',
      },
      {
        what: 'hello with a protocol version from the future',
        messages: [{ hello: { workerId: 'w', queues: ['lease-bad'], capacity: 1, protocolVersion: 99 } }],
        code: Code.FailedPrecondition,
        mentions: 'protocol version 99',
      },
      { what: 'a second hello', messages: [hello(['lease-bad']), hello(['lease-bad'])], code: Code.FailedPrecondition, mentions: 'hello was already received' },
      {
        what: 'negative credits',
        messages: [hello(['lease-bad']), { credits: -1 }],
        code: Code.InvalidArgument,
        mentions: 'credits must not be negative, got -1',
      },
      {
        what: 'absurd credits (2^31-1)',
        messages: [hello(['lease-bad']), { credits: 2_147_483_647 }],
        code: Code.ResourceExhausted,
        mentions: /credits outstanding would be 2147483647, above the broker's limit/,
      },
      {
        what: 'absurd credits on hello itself',
        messages: [hello(['lease-bad'], 1, 2_147_483_647)],
        code: Code.ResourceExhausted,
        mentions: 'credits outstanding',
      },
    ])('ends the stream on $what', async ({ messages, code, mentions }) => {
      const before = await stored();
      const error = await leaseRefusal(...messages);
      expect(Code[error.code], error.rawMessage).toBe(Code[code]);
      expectMentions(error.rawMessage, mentions);
      expect(await stored()).toEqual(before);
    });
  });

  describe('the Lease stream refuses bad results one by one', () => {
    let queueCounter = 0;

    /** A stream holding two jobs of a queue of its own, plus a third job it does not hold. */
    async function holding() {
      const queue = q(`lease-results-${++queueCounter}`);
      const { jobs } = await clients.broker.enqueueBatch({ jobs: [{ queue }, { queue }] });
      const driver = new LeaseDriver(clients.broker);
      driver.hello([queue], 2, 2);
      const [good, held] = await driver.jobsReceived(2);
      expect(new Set([good.jobId, held.jobId])).toEqual(new Set(jobs.map((j) => j.job!.id)));
      const other = (await clients.broker.enqueue({ queue: `${queue}-other` })).job!;
      return { driver, good, held, other };
    }

    const status = async (id: string) => (await clients.broker.get({ id })).job!.status;

    const cases: {
      what: string;
      bad: (ctx: { good: JobAssignment; held: JobAssignment; other: { id: string } }) => ResultInit[];
      mentions: string | RegExp;
      /** The result cannot be stored: the attempt is recorded as failed instead of the job staying RUNNING. */
      unstorable?: boolean;
    }[] = [
      {
        what: 'a job the stream does not hold',
        bad: ({ other }) => [{ jobId: other.id, leaseToken: '123456789' }],
        mentions: 'this stream does not hold that job',
      },
      {
        what: 'a held token under another job id',
        bad: ({ held, other }) => [{ jobId: other.id, leaseToken: held.leaseToken }],
        mentions: 'does not hold that job',
      },
      { what: 'a garbage job_id', bad: ({ held }) => [{ jobId: 'job-1', leaseToken: held.leaseToken }], mentions: 'job_id and lease_token must be' },
      { what: 'a garbage lease_token', bad: ({ held }) => [{ jobId: held.jobId, leaseToken: 'abc' }], mentions: 'job_id and lease_token must be' },
      { what: 'empty job_id and lease_token', bad: () => [{}], mentions: 'job_id and lease_token must be' },
      {
        what: 'result_json that is not JSON',
        bad: ({ held }) => [{ jobId: held.jobId, leaseToken: held.leaseToken, resultJson: bytes('{oops') }],
        mentions: 'result_json is not valid',
        unstorable: true,
      },
      {
        what: 'result_json that is not UTF-8',
        bad: ({ held }) => [{ jobId: held.jobId, leaseToken: held.leaseToken, resultJson: new Uint8Array([0x22, 0xc3, 0x28, 0x22]) }],
        mentions: 'result_json is not valid UTF-8',
        unstorable: true,
      },
      {
        what: 'result_json above the size limit',
        bad: ({ held }) => [{ jobId: held.jobId, leaseToken: held.leaseToken, resultJson: json('x'.repeat(MAX_PAYLOAD_BYTES)) }],
        mentions: `above the limit of ${MAX_PAYLOAD_BYTES}`,
        unstorable: true,
      },
      { what: 'a duplicate of the good result', bad: ({ good }) => [success(good, 'again')], mentions: 'duplicate result' },
    ];

    it.each(cases)('refuses $what in acks; the good result beside it is recorded and the stream stays open', async ({ bad, mentions, unstorable }) => {
      const { driver, good, held, other } = await holding();
      const badResults = bad({ good, held, other });
      driver.send({ results: [success(good), ...badResults] });
      const acks = await driver.until((m) => m.find((x) => x.acks.length > 0)?.acks);

      expect(acks).toHaveLength(1 + badResults.length);
      expect(acks[0]).toMatchObject({ jobId: good.jobId, leaseToken: good.leaseToken, accepted: true, error: '' });
      for (const ack of acks.slice(1)) {
        expect(ack.accepted).toBe(false);
        expectMentions(ack.error, mentions);
      }
      expect(await status(good.jobId)).toBe(JobStatus.COMPLETED);
      expect(await status(other.id)).toBe(JobStatus.PENDING);
      if (unstorable) {
        // The attempt ended; its result could not be kept, so it counts as failed for good.
        const failed = (await clients.broker.get({ id: held.jobId })).job!;
        expect(failed.status).toBe(JobStatus.FAILED);
        expect(failed.errors.at(-1)?.message).toContain('could not be stored');
        driver.end();
        await driver.done;
        expect(driver.error).toBeNull();
        return;
      }
      expect(await status(held.jobId)).toBe(JobStatus.RUNNING);

      // Still open, and still holding the other job: its proper result is recorded.
      driver.send({ results: [success(held)] });
      const next = await driver.until((m) => m.filter((x) => x.acks.length > 0)[1]?.acks);
      expect(next).toEqual([expect.objectContaining({ jobId: held.jobId, accepted: true })]);
      expect(await status(held.jobId)).toBe(JobStatus.COMPLETED);
      driver.end();
      await driver.done;
      expect(driver.error).toBeNull();
    });

    it('answers heartbeats with unknown or malformed tokens in `lost`, and keeps the held one', async () => {
      const { driver, held, good } = await holding();
      driver.send({ heartbeat: { leaseTokens: [held.leaseToken, '987654321', 'not-a-token', ''] } });
      const lost = await driver.until((m) => m.find((x) => x.lost.length > 0)?.lost);
      expect([...lost].sort()).toEqual(['', '987654321', 'not-a-token']);
      driver.send({ results: [success(held), success(good)] });
      const acks = await driver.until((m) => m.find((x) => x.acks.length > 0)?.acks);
      expect(acks.map((ack) => ack.accepted)).toEqual([true, true]);
      driver.end();
      await driver.done;
      expect(driver.error).toBeNull();
    });
  });

  describe('a misbehaving stream harms nobody else', () => {
    it('a good worker on the same queue receives and completes every job while bad streams are refused', async () => {
      const queue = q('shared-with-bad');
      const total = 20;
      const good = new LeaseDriver(clients.broker);
      good.hello([queue], 5, 5);
      await good.until((m) => m.some((x) => x.welcome));

      const badStreams = (async () => {
        const codes: Code[] = [];
        for (let round = 0; round < 5; round++) {
          const errors = await Promise.all([
            leaseRefusal({ credits: 3 }),
            leaseRefusal(hello([queue], 0)),
            leaseRefusal(hello([queue]), { credits: -7 }),
            leaseRefusal(hello([queue]), { credits: 2_147_483_647 }),
            leaseRefusal(hello([queue]), hello([queue])),
          ]);
          codes.push(...errors.map((error) => error.code));
        }
        return codes;
      })();

      const batch = () => clients.broker.enqueueBatch({ jobs: Array.from({ length: total / 2 }, (_, i) => ({ queue, payloadJson: json({ i }) })) });
      const jobs = (await Promise.all([batch(), batch()])).flatMap((response) => response.jobs);
      let answered = 0;
      while (answered < total) {
        const received = await good.jobsReceived(answered + 1, 20_000);
        const fresh = received.slice(answered);
        good.send({ credits: fresh.length, results: fresh.map((job) => success(job)) });
        answered = received.length;
      }
      const acks = await good.until((m) => {
        const all = m.flatMap((x) => x.acks);
        return all.length >= total ? all : undefined;
      }, 20_000);
      expect(acks.filter((ack) => ack.accepted)).toHaveLength(total);

      const codes = await badStreams;
      expect(codes).toHaveLength(25);
      expect(new Set(codes)).toEqual(new Set([Code.FailedPrecondition, Code.InvalidArgument, Code.ResourceExhausted]));
      const stored = await query(db.url, `select status, count(*)::int as n from baton_jobs where queue = $1 group by status`, [queue]);
      expect(stored).toEqual([{ status: 'completed', n: total }]);
      expect(new Set(good.jobs.map((job) => job.jobId))).toEqual(new Set(jobs.map((j) => j.job!.id)));
      good.end();
      await good.done;
      expect(good.error).toBeNull();
    });

    it('producers racing to create the same new queue do not fail each other', async () => {
      for (let round = 0; round < 5; round++) {
        const queue = q(`raced-${round}`);
        const calls = [
          clients.broker.enqueueBatch({ jobs: [{ queue }, { queue }] }),
          clients.broker.enqueueBatch({ jobs: [{ queue }, { queue }] }),
          clients.broker.enqueue({ queue }),
          clients.broker.enqueue({ queue }),
        ];
        const outcomes = await Promise.allSettled(calls);
        expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : ConnectError.from(o.reason).rawMessage))).toEqual(['ok', 'ok', 'ok', 'ok']);
        const [{ n }] = await query(db.url, `select count(*)::int as n from baton_jobs where queue = $1`, [queue]);
        expect(n).toBe(6);
      }
    });
  });
});
