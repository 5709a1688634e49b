/**
 * The HTTP health probes on the main port: `/healthz` (alive: the process answers) and `/readyz`
 * (ready: the database answers and the broker is not shutting down). Real brokers, real HTTP; the
 * readiness cache and its timeout on a hand-moved clock with no database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBroker } from '../server/src/broker.ts';
import { createReadiness } from '../server/src/api/readiness.ts';
import { grpcClients, startTestBroker, useTestBroker } from './support/broker.ts';
import { createTestDatabase } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import { OwnPostgres } from './support/own-postgres.ts';
import { eventually } from './support/processes.ts';

async function probe(url: string, method = 'GET'): Promise<{ status: number; body: string; cache: string | null }> {
  const res = await fetch(url, { method });
  return { status: res.status, body: await res.text(), cache: res.headers.get('cache-control') };
}

describe('a serving broker', () => {
  const used = useTestBroker();

  it('is alive and ready, with no credentials asked', async () => {
    expect(await probe(`${used.broker.url}/healthz`)).toEqual({ status: 200, body: 'ok\n', cache: 'no-store' });
    expect(await probe(`${used.broker.url}/readyz`)).toEqual({ status: 200, body: 'ok\n', cache: 'no-store' });
  });

  it('answers HEAD without a body, and refuses other methods', async () => {
    expect(await probe(`${used.broker.url}/readyz`, 'HEAD')).toMatchObject({ status: 200, body: '' });
    expect((await probe(`${used.broker.url}/healthz`, 'POST')).status).toBe(405);
  });

  it('names the probes in its 404 help', async () => {
    const missing = await probe(`${used.broker.url}/health`);
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('/healthz');
    expect(missing.body).toContain('/readyz');
  });
});

describe('auth on', () => {
  const used = useTestBroker({ auth: 'keys' });

  it('leaves the probes open: they say only ok or not', async () => {
    expect((await probe(`${used.broker.url}/healthz`)).status).toBe(200);
    expect((await probe(`${used.broker.url}/readyz`)).status).toBe(200);
    expect((await probe(`${used.broker.url}/metrics`)).status).toBe(401);
  });
});

describe('a broker draining at shutdown', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let broker: RunningBroker;

  beforeAll(async () => {
    db = await createTestDatabase();
    // A long drain deadline: the drain ends when the worker leaves, not when the deadline fires.
    broker = await startTestBroker(db.url, { drainTimeoutMs: 60_000 });
  });
  afterAll(async () => {
    await broker?.stop();
    await db?.drop();
  });

  it('is not ready from the moment stop() begins, and alive until its port closes', async () => {
    const { broker: rpc } = grpcClients(broker.url);
    const worker = new LeaseDriver(rpc);
    worker.hello(['drain-probe'], 1);
    await rpc.enqueue({ queue: 'drain-probe', payloadJson: new TextEncoder().encode('{"n":1}') });
    await worker.jobsReceived(1);
    expect((await probe(`${broker.url}/readyz`)).status).toBe(200);

    const stopped = broker.stop();
    // The worker still holds its job, so the drain is under way until it leaves.
    await worker.until((messages) => messages.some((message) => message.drain));
    expect(await probe(`${broker.url}/readyz`)).toMatchObject({ status: 503, body: 'not ready: shutting down\n' });
    expect((await probe(`${broker.url}/healthz`)).status).toBe(200);

    worker.end();
    await worker.done;
    await stopped;
  });
});

describe('a broker whose database goes away', () => {
  const postgres = new OwnPostgres();
  let broker: RunningBroker;

  beforeAll(async () => {
    await postgres.start();
    broker = await startTestBroker(postgres.url);
  }, 60_000);
  afterAll(async () => {
    await broker?.stop();
    await postgres.destroy();
  });

  it('is not ready while the database is down, alive all along, and ready again when it is back', async () => {
    expect((await probe(`${broker.url}/readyz`)).status).toBe(200);
    await postgres.crash();
    // The last answer stands for up to a second (the cache), then the ping fails.
    const down = await eventually(
      async () => {
        const answer = await probe(`${broker.url}/readyz`);
        return answer.status === 503 ? answer : undefined;
      },
      10_000,
      '/readyz to fail',
    );
    expect(down.body).toBe('not ready: database unreachable\n');
    expect((await probe(`${broker.url}/healthz`)).status).toBe(200);

    await postgres.start();
    await eventually(async () => (await probe(`${broker.url}/readyz`)).status === 200, 20_000, '/readyz to recover');
  }, 60_000);
});

describe('the readiness check', () => {
  function harness() {
    let now = 0;
    let pings = 0;
    let answer: () => Promise<unknown> = () => Promise.resolve();
    let draining = false;
    const changes: boolean[] = [];
    const check = createReadiness({
      ping: () => {
        pings++;
        return answer();
      },
      draining: () => draining,
      now: () => now,
      cacheMs: 1000,
      timeoutMs: 0,
      onChange: (readiness) => changes.push(readiness.ready),
    });
    return {
      check,
      changes,
      get pings() {
        return pings;
      },
      advance: (ms: number) => (now += ms),
      answer: (next: () => Promise<unknown>) => (answer = next),
      drain: () => (draining = true),
    };
  }

  it('pings the database at most once per cache period, and probes at the same moment share one ping', async () => {
    const h = harness();
    const [a, b] = await Promise.all([h.check(), h.check()]);
    expect([a, b]).toEqual([{ ready: true }, { ready: true }]);
    expect(h.pings).toBe(1);
    h.advance(999);
    await h.check();
    expect(h.pings).toBe(1);
    h.advance(1);
    await h.check();
    expect(h.pings).toBe(2);
  });

  it('counts a failed or unanswered ping as not ready, without stacking pings on one that hangs, and says when it changes', async () => {
    const h = harness();
    await h.check();
    h.answer(() => Promise.reject(new Error('connection refused')));
    h.advance(1000);
    expect(await h.check()).toEqual({ ready: false, reason: 'database unreachable' });

    let release = () => {};
    h.answer(() => new Promise<void>((resolve) => (release = resolve)));
    h.advance(1000);
    expect(await h.check()).toEqual({ ready: false, reason: 'database unreachable' });
    const pingsSoFar = h.pings;
    h.advance(1000);
    expect(await h.check()).toEqual({ ready: false, reason: 'database unreachable' });
    expect(h.pings).toBe(pingsSoFar);

    release();
    h.answer(() => Promise.resolve());
    await Promise.resolve();
    h.advance(1000);
    expect(await h.check()).toEqual({ ready: true });
    expect(h.changes).toEqual([false, true]);
  });

  it('answers "shutting down" at once once draining, whatever the cache holds', async () => {
    const h = harness();
    await h.check();
    h.drain();
    expect(await h.check()).toEqual({ ready: false, reason: 'shutting down' });
  });
});
