import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { EnqueueResponseSchema } from './gen/baton/v1/broker_pb.ts';
import { createEnqueueCoalescer, type EnqueueSender } from './enqueue-coalescer.ts';
import { BatonError } from './errors.ts';

const UNAVAILABLE = 14;
const INVALID_ARGUMENT = 3;

/** A sender whose RPCs the test answers by hand, recording what each carried. */
function heldSender(failBatchWith?: number) {
  const sent: { kind: 'one' | 'many'; queues: string[]; answer(): void }[] = [];
  const respond = (queue: string) => create(EnqueueResponseSchema, { job: { id: `id-${queue}`, queue } });
  const sender: EnqueueSender = {
    one: (request) =>
      new Promise((resolve, reject) =>
        sent.push({
          kind: 'one',
          queues: [request.queue!],
          answer: () => (request.queue === 'bad' ? reject(new BatonError(INVALID_ARGUMENT, 'bad queue')) : resolve(respond(request.queue!))),
        }),
      ),
    many: (requests) =>
      new Promise((resolve, reject) =>
        sent.push({
          kind: 'many',
          queues: requests.map((r) => r.queue!),
          answer: () => (failBatchWith !== undefined ? reject(new BatonError(failBatchWith, 'refused')) : resolve(requests.map((r) => respond(r.queue!)))),
        }),
      ),
  };
  return { sent, sender };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('createEnqueueCoalescer', () => {
  it('sends calls at once while fewer than two are in flight, and the rest together when one returns', async () => {
    const { sent, sender } = heldSender();
    const enqueue = createEnqueueCoalescer(sender);
    const answers = ['a', 'b', 'c', 'd', 'e'].map((queue) => enqueue({ queue }));
    expect(sent.map((s) => [s.kind, s.queues])).toEqual([
      ['one', ['a']],
      ['one', ['b']],
    ]);
    sent[0].answer();
    await tick();
    expect(sent[2]).toMatchObject({ kind: 'many', queues: ['c', 'd', 'e'] });
    sent[1].answer();
    sent[2].answer();
    expect((await Promise.all(answers)).map((a) => a.job?.queue)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('sends each job of a batch refused for its content again alone, so only the bad call fails', async () => {
    const { sent, sender } = heldSender(INVALID_ARGUMENT);
    const enqueue = createEnqueueCoalescer(sender);
    const answers = ['a', 'b', 'c', 'bad', 'e'].map((queue) => Promise.allSettled([enqueue({ queue })]).then(([r]) => r));
    sent[0].answer();
    sent[1].answer();
    await tick();
    sent[2].answer(); // the batch of c, bad and e: refused
    await tick();
    expect(sent.slice(3).map((s) => [s.kind, s.queues])).toEqual([
      ['one', ['c']],
      ['one', ['bad']],
      ['one', ['e']],
    ]);
    for (const s of sent.slice(3)) s.answer();
    const settled = await Promise.all(answers);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  });

  it('gives an error that says nothing about the jobs to every call of the batch, sending nothing again', async () => {
    const { sent, sender } = heldSender(UNAVAILABLE);
    const enqueue = createEnqueueCoalescer(sender);
    const answers = ['a', 'b', 'c', 'd'].map((queue) => Promise.allSettled([enqueue({ queue })]).then(([r]) => r));
    sent[0].answer();
    sent[1].answer();
    await tick();
    sent[2].answer();
    const settled = await Promise.all(answers);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect(((settled[2] as PromiseRejectedResult).reason as BatonError).code).toBe('UNAVAILABLE');
    expect(sent).toHaveLength(3);
  });

  it('splits what waits into batches of at most maxJobs jobs and about maxBytes of payload', async () => {
    const { sent, sender } = heldSender();
    const enqueue = createEnqueueCoalescer(sender, { maxInFlight: 1, maxJobs: 3, maxBytes: 2_500 });
    const big = new Uint8Array(1_200);
    const answers = [
      enqueue({ queue: 'first' }),
      ...['a', 'b', 'c', 'd'].map((queue) => enqueue({ queue })),
      enqueue({ queue: 'big1', payloadJson: big }),
      enqueue({ queue: 'big2', payloadJson: big }),
    ];
    for (let i = 0; i < 4; i++) {
      sent.at(-1)!.answer();
      await tick();
    }
    expect(sent.map((s) => s.queues)).toEqual([['first'], ['a', 'b', 'c'], ['d', 'big1'], ['big2']]);
    await Promise.all(answers);
  });
});
