/**
 * The Lease session (server/src/core/lease-session.ts) on its own: domain messages in, domain
 * events out, a fake store slice and a fake dispatcher whose timing the test controls, a clock
 * that moves only when told. No database, no gRPC, no sleeps. Each test reads one ordered log of
 * what the worker was told and what the store and dispatcher were asked.
 */
import { describe, expect, it } from 'vitest';
import { harness, hello, job, message, refusal } from './support/lease-session-harness.ts';
import type { WorkerMessage } from '../server/src/core/lease-events.ts';
import type { ErrorKind } from '../server/src/domain/errors.ts';

describe('hello', () => {
  it.each<{ what: string; first: WorkerMessage; kind: ErrorKind; text: string }>([
    {
      what: 'a first message without hello',
      first: message({ credits: 5 }),
      kind: 'failed-precondition',
      text: 'the first message on a Lease stream must carry hello',
    },
    {
      what: 'no worker id',
      first: message({ hello: hello({ workerId: '' }) }),
      kind: 'invalid-argument',
      text: 'hello.worker_id must be 1-200 characters, without NUL',
    },
    {
      what: 'a NUL in the worker id',
      first: message({ hello: hello({ workerId: 'w\u0000' }) }),
      kind: 'invalid-argument',
      text: 'hello.worker_id must be 1-200 characters, without NUL',
    },
    { what: 'no queues', first: message({ hello: hello({ queues: [] }) }), kind: 'invalid-argument', text: 'hello.queues must name 1-100 queues' },
    {
      what: '101 queues',
      first: message({ hello: hello({ queues: Array.from({ length: 101 }, (_, i) => `q${i}`) }) }),
      kind: 'invalid-argument',
      text: 'hello.queues must name 1-100 queues',
    },
    {
      what: 'a bad queue name',
      first: message({ hello: hello({ queues: ['q', 'not ok'] }) }),
      kind: 'invalid-argument',
      text: 'hello.queues: "not ok" is not a valid queue name',
    },
    { what: 'capacity 0', first: message({ hello: hello({ capacity: 0 }) }), kind: 'invalid-argument', text: 'hello.capacity must be 1-100000, got 0' },
    {
      what: 'capacity 100001',
      first: message({ hello: hello({ capacity: 100_001 }) }),
      kind: 'invalid-argument',
      text: 'hello.capacity must be 1-100000, got 100001',
    },
    {
      what: 'a newer protocol',
      first: message({ hello: hello({ protocolVersion: 2 }) }),
      kind: 'failed-precondition',
      text: "protocol version 2 is newer than this broker's (1)",
    },
  ])('refuses $what before opening anything', async ({ first, kind, text }) => {
    const { session, log } = harness();
    const error = await refusal(session.receive(first));
    expect(error.kind).toBe(kind);
    expect(error.message).toContain(text);
    expect(log).toEqual([]);
    expect(session.heldCount).toBe(0);
  });

  it('opens the session, welcomes the worker, registers, then takes the credits that rode on hello', async () => {
    const { session, log, events } = harness();
    await session.receive(message({ hello: hello({ queues: ['q', 'r', 'q'], protocolVersion: 0 }), credits: 3 }));
    expect(log).toEqual(['store: open w1 [q,r] capacity 5', 'worker: welcome 41', 'dispatcher: register', 'dispatcher: wake q', 'dispatcher: wake r']);
    expect(events[0]).toEqual({ type: 'welcome', sessionId: '41', heartbeatIntervalMs: 10_000, leaseTtlMs: 30_000, protocolVersion: 1, brokerId: 'broker-1' });
    expect(session.queues).toEqual(['q', 'r']);
    expect(session.sessionId).toBe('41');
    expect(session.credit()).toBe(3);
  });

  it('refuses a second hello', async () => {
    const { session, open } = harness();
    await open();
    expect(await refusal(session.receive(message({ hello: hello() })))).toEqual({
      kind: 'failed-precondition',
      message: 'hello was already received on this stream',
    });
  });
});

describe('credits and capacity', () => {
  it('refuses negative credits, and credits beyond the per-stream limit, keeping what was granted', async () => {
    const { session, open, log } = harness();
    await open({ credits: 5 });
    expect(await refusal(session.receive(message({ credits: -1 })))).toEqual({ kind: 'invalid-argument', message: 'credits must not be negative, got -1' });
    expect(await refusal(session.receive(message({ credits: 46 })))).toEqual({
      kind: 'resource-exhausted',
      message: "credits outstanding would be 51, above the broker's limit of 50 per stream; grant at most your capacity",
    });
    expect(session.credit()).toBe(5);
    expect(log).toEqual([]);
  });

  it('offers no more than the credits granted, the free capacity and what claims under way have not reserved', async () => {
    const { session, open, log } = harness();
    await open({ capacity: 5, credits: 8 });
    expect(session.credit()).toBe(5); // capacity bounds the credits
    expect(session.reserve(3, 'q')).toBe(3);
    expect(session.credit()).toBe(2);
    session.deliver([job('1'), job('2')], 3);
    // 6 credits left, 3 places free, nothing reserved.
    expect(session.credit()).toBe(3);
    expect(session.heldCount).toBe(2);
    expect(log).toEqual(['observer: started 1,2', 'worker: jobs 1,2']);
  });

  it('wakes a queue whose claim found the credit reserved by another queue, once that credit comes back unused', async () => {
    const { session, open, log } = harness();
    await open({ capacity: 2, credits: 2 });
    expect(session.reserve(2, 'q')).toBe(2);
    expect(session.reserve(1, 'r')).toBe(0);
    expect(log).toEqual([]);
    session.deliver([], 2); // q's claim found nothing
    expect(log).toEqual(['dispatcher: wake r']);
  });
});
