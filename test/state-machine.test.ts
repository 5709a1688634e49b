/**
 * The job state machine on its own: the TypeScript decision functions, their SQL twins (which the
 * hot-path statements use) evaluated by PostgreSQL over a grid of inputs, and the CHECK constraints
 * that are the database's copy of the status rules.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackoffPolicy, DEFAULT_BACKOFF, backoffDelayMs } from '../server/src/domain/backoff.ts';
import { type JobStatus, JOB_STATUSES, isTerminal } from '../server/src/domain/job-status.ts';
import {
  type Transition,
  TRANSITIONS,
  canTransition,
  statusAfterFailure,
  statusAfterLeaseLost,
  statusAfterSnooze,
} from '../server/src/domain/state-machine.ts';
import { backoffDelaySql, statusAfterFailureSql, statusAfterLeaseLostSql } from '../server/src/store/sql/state-machine.ts';
import { createTestDatabase, query } from './support/database.ts';

/** Where each named transition may start, written out from the diagram in state-machine.ts. */
const ALLOWED_FROM: Record<Transition, JobStatus[]> = {
  promote: ['scheduled'],
  claim: ['pending'],
  complete: ['running'],
  fail: ['running'],
  loseLease: ['running'],
  timeOut: ['running'],
  cancel: ['pending', 'scheduled'],
  requestCancel: ['running'],
  snooze: ['running'],
  retry: ['failed', 'cancelled'],
};

const TEN_YEARS_MS = 10 * 365 * 24 * 3600_000;

describe('canTransition', () => {
  const cases = (Object.keys(ALLOWED_FROM) as Transition[]).flatMap((transition) =>
    JOB_STATUSES.map((from) => ({ transition, from, allowed: ALLOWED_FROM[transition].includes(from) })),
  );

  it.each(cases)('$transition from $from: $allowed', ({ transition, from, allowed }) => {
    expect(canTransition(transition, from)).toBe(allowed);
  });

  it('names exactly the transitions of the diagram', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual(Object.keys(ALLOWED_FROM).sort());
  });

  it('lets nothing leave COMPLETED', () => {
    const leaving = (Object.keys(TRANSITIONS) as Transition[]).filter((t) => canTransition(t, 'completed'));
    expect(leaving).toEqual([]);
  });

  it('lets only retry leave FAILED and CANCELLED, and only to PENDING', () => {
    for (const status of ['failed', 'cancelled'] as const) {
      const leaving = (Object.keys(TRANSITIONS) as Transition[]).filter((t) => canTransition(t, status));
      expect(leaving).toEqual(['retry']);
    }
    expect(TRANSITIONS.retry.to).toEqual(['pending']);
  });

  it('lists as targets every status the decision functions can return', () => {
    const grid = [0, 1, 2, 3].flatMap((attempt) =>
      [true, false].flatMap((nonRetryable) => [true, false].map((cancelRequested) => ({ attempt, maxAttempts: 2, nonRetryable, cancelRequested }))),
    );
    const afterFailure = new Set(grid.map(statusAfterFailure));
    const afterLeaseLost = new Set(grid.map(statusAfterLeaseLost));
    for (const status of afterFailure) {
      expect(TRANSITIONS.fail.to).toContain(status);
      expect(TRANSITIONS.timeOut.to).toContain(status);
    }
    for (const status of afterLeaseLost) expect(TRANSITIONS.loseLease.to).toContain(status);
    for (const status of new Set(grid.map(statusAfterSnooze))) expect(TRANSITIONS.snooze.to).toContain(status);
  });
});

describe('isTerminal', () => {
  it.each([
    ['pending', false],
    ['scheduled', false],
    ['running', false],
    ['completed', true],
    ['failed', true],
    ['cancelled', true],
  ] as const)('%s → %s', (status, terminal) => {
    expect(isTerminal(status)).toBe(terminal);
  });
});

describe('statusAfterFailure', () => {
  it.each([
    { attempt: 1, maxAttempts: 3, nonRetryable: false, cancelRequested: false, expected: 'scheduled' },
    { attempt: 2, maxAttempts: 3, nonRetryable: false, cancelRequested: false, expected: 'scheduled' },
    { attempt: 3, maxAttempts: 3, nonRetryable: false, cancelRequested: false, expected: 'failed' },
    { attempt: 4, maxAttempts: 3, nonRetryable: false, cancelRequested: false, expected: 'failed' },
    { attempt: 1, maxAttempts: 1, nonRetryable: false, cancelRequested: false, expected: 'failed' },
    { attempt: 1, maxAttempts: 3, nonRetryable: true, cancelRequested: false, expected: 'failed' },
    { attempt: 1, maxAttempts: 3, nonRetryable: false, cancelRequested: true, expected: 'cancelled' },
    { attempt: 3, maxAttempts: 3, nonRetryable: true, cancelRequested: true, expected: 'cancelled' },
  ] as const)('attempt $attempt of $maxAttempts, non-retryable $nonRetryable, cancel requested $cancelRequested → $expected', ({ expected, ...facts }) => {
    expect(statusAfterFailure(facts)).toBe(expected);
  });
});

describe('statusAfterLeaseLost', () => {
  it.each([
    { attempt: 1, maxAttempts: 3, cancelRequested: false, expected: 'pending' },
    { attempt: 2, maxAttempts: 3, cancelRequested: false, expected: 'pending' },
    { attempt: 3, maxAttempts: 3, cancelRequested: false, expected: 'failed' },
    { attempt: 1, maxAttempts: 1, cancelRequested: false, expected: 'failed' },
    { attempt: 1, maxAttempts: 3, cancelRequested: true, expected: 'cancelled' },
    { attempt: 3, maxAttempts: 3, cancelRequested: true, expected: 'cancelled' },
  ] as const)('attempt $attempt of $maxAttempts, cancel requested $cancelRequested → $expected', ({ expected, ...facts }) => {
    expect(statusAfterLeaseLost(facts)).toBe(expected);
  });
});

describe('backoffDelayMs', () => {
  const noJitter: BackoffPolicy = { initialMs: 1000, maxMs: 60_000, multiplier: 2, jitter: 0 };

  it('starts at the initial delay after the first attempt', () => {
    expect(backoffDelayMs(noJitter, 1, 0.5)).toBe(1000);
  });

  it('grows by the multiplier with each attempt', () => {
    expect([1, 2, 3, 4, 5].map((attempt) => backoffDelayMs(noJitter, attempt, 0))).toEqual([1000, 2000, 4000, 8000, 16_000]);
    const slow = { ...noJitter, multiplier: 1.5 };
    expect([1, 2, 3].map((attempt) => backoffDelayMs(slow, attempt, 0))).toEqual([1000, 1500, 2250]);
  });

  it('stays at the initial delay with multiplier 1', () => {
    expect([1, 5, 50].map((attempt) => backoffDelayMs({ ...noJitter, multiplier: 1 }, attempt, 0))).toEqual([1000, 1000, 1000]);
  });

  it('treats attempt 0 like attempt 1', () => {
    expect(backoffDelayMs(noJitter, 0, 0)).toBe(1000);
  });

  it('is capped at the maximum delay', () => {
    expect(backoffDelayMs(noJitter, 7, 0)).toBe(60_000);
    expect(backoffDelayMs(noJitter, 100, 0)).toBe(60_000);
  });

  it('stays finite and capped when the exponential overflows a double', () => {
    const steep = { initialMs: TEN_YEARS_MS, maxMs: TEN_YEARS_MS, multiplier: 100, jitter: 0.5 };
    expect(backoffDelayMs(steep, 1000, 0)).toBe(TEN_YEARS_MS);
    expect(backoffDelayMs(steep, 1000, 0.5)).toBe(TEN_YEARS_MS * 0.75);
  });

  it('is zero when the initial delay is zero, however many attempts', () => {
    const zero = { initialMs: 0, maxMs: 0, multiplier: 100, jitter: 0.2 };
    expect(backoffDelayMs(zero, 1, 0.5)).toBe(0);
    expect(backoffDelayMs(zero, 1000, 0.5)).toBe(0);
  });

  it('takes off at most `jitter` of the delay, as random goes from 0 towards 1', () => {
    const policy = { ...noJitter, jitter: 0.2 };
    expect(backoffDelayMs(policy, 3, 0)).toBe(4000);
    expect(backoffDelayMs(policy, 3, 0.5)).toBeCloseTo(3600, 9);
    expect(backoffDelayMs(policy, 3, 0.999_999)).toBeGreaterThan(3200);
    for (let i = 0; i < 1000; i++) {
      const delay = backoffDelayMs(policy, 3, Math.random());
      expect(delay).toBeGreaterThan(3200);
      expect(delay).toBeLessThanOrEqual(4000);
    }
  });

  it('jitters the capped delay too, never above the cap', () => {
    const policy = { ...noJitter, jitter: 0.2 };
    expect(backoffDelayMs(policy, 50, 0)).toBe(60_000);
    expect(backoffDelayMs(policy, 50, 0.5)).toBeCloseTo(54_000, 9);
  });

  it('with jitter 1 may shorten the delay to almost nothing, but not below zero', () => {
    const policy = { ...noJitter, jitter: 1 };
    expect(backoffDelayMs(policy, 2, 0.999_999)).toBeGreaterThan(0);
    expect(backoffDelayMs(policy, 2, 0.999_999)).toBeLessThan(0.01);
  });

  it('defaults to 1 s doubling to 10 min with 20 % jitter', () => {
    expect(DEFAULT_BACKOFF).toEqual({ initialMs: 1000, maxMs: 600_000, multiplier: 2, jitter: 0.2 });
  });
});

describe('in PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await db?.drop();
  });

  describe('the SQL twins agree with the TypeScript functions', () => {
    const failureGrid = [0, 1, 2, 3, 5, 10, 999, 1000].flatMap((attempt) =>
      [1, 2, 3, 10, 1000].flatMap((maxAttempts) =>
        [false, true].flatMap((nonRetryable) => [false, true].map((cancelRequested) => ({ attempt, maxAttempts, nonRetryable, cancelRequested }))),
      ),
    );
    const failureRows = failureGrid.map((f, i) => `(${i}, ${f.attempt}, ${f.maxAttempts}, ${f.cancelRequested}, ${f.nonRetryable})`).join(',\n');
    const failureTable = `(values ${failureRows}) as j(i, attempt, max_attempts, cancel_requested, non_retryable)`;

    it('statusAfterFailureSql', async () => {
      const rows = await query<{ i: number; status: string }>(
        db.url,
        `select i, ${statusAfterFailureSql('j.non_retryable')} as status from ${failureTable} order by i`,
      );
      expect(rows).toHaveLength(failureGrid.length);
      const mismatches = rows.filter((row) => row.status !== statusAfterFailure(failureGrid[row.i]));
      expect(mismatches.map((row) => ({ ...failureGrid[row.i], sql: row.status }))).toEqual([]);
    });

    it('statusAfterLeaseLostSql', async () => {
      const rows = await query<{ i: number; status: string }>(db.url, `select i, ${statusAfterLeaseLostSql()} as status from ${failureTable} order by i`);
      expect(rows).toHaveLength(failureGrid.length);
      const mismatches = rows.filter((row) => row.status !== statusAfterLeaseLost(failureGrid[row.i]));
      expect(mismatches.map((row) => ({ ...failureGrid[row.i], sql: row.status }))).toEqual([]);
    });

    // The ranges the API accepts (api/request-checks.ts): delays up to 10 years, multiplier 1-100, jitter 0-1,
    // attempts up to max_attempts (at most 1000).
    const backoffGrid = [0, 1, 100, 1000, TEN_YEARS_MS].flatMap((initialMs) =>
      [initialMs, 60_000, 600_000, TEN_YEARS_MS].flatMap((maxMs) =>
        [1, 1.5, 2, 10, 100].flatMap((multiplier) =>
          [0, 0.2, 1].flatMap((jitter) => [0, 1, 2, 5, 30, 160, 999].map((attempt) => ({ policy: { initialMs, maxMs, multiplier, jitter }, attempt }))),
        ),
      ),
    );
    const backoffRows = backoffGrid
      .map(({ policy: p, attempt }, i) => `(${i}, ${attempt}, ${p.initialMs}::bigint, ${p.maxMs}::bigint, ${p.multiplier}::float8, ${p.jitter}::float8)`)
      .join(',\n');
    const backoffTable = `(values ${backoffRows}) as j(i, attempt, backoff_initial_ms, backoff_max_ms, backoff_multiplier, backoff_jitter)`;

    it.each([0, 0.25, 0.5, 0.999_999])('backoffDelaySql with random = %s', async (random) => {
      const rows = await query<{ i: number; delay: number }>(
        db.url,
        `select i, ${backoffDelaySql(`${random}::float8`)} as delay from ${backoffTable} order by i`,
      );
      expect(rows).toHaveLength(backoffGrid.length);
      const mismatches = rows.filter(({ i, delay }) => {
        const expected = backoffDelayMs(backoffGrid[i].policy, backoffGrid[i].attempt, random);
        return !(Number.isFinite(delay) && Math.abs(delay - expected) <= Math.max(1e-6, Math.abs(expected) * 1e-12));
      });
      expect(
        mismatches.map(({ i, delay }) => ({ ...backoffGrid[i], sql: delay, ts: backoffDelayMs(backoffGrid[i].policy, backoffGrid[i].attempt, random) })),
      ).toEqual([]);
    });
  });

  describe('CHECK constraints', () => {
    // Live jobs (PENDING, SCHEDULED, RUNNING) and finished ones (COMPLETED, FAILED, CANCELLED) have tables of their own.
    const FINISHED = ['completed', 'failed', 'cancelled'];
    const HISTORY_DEFAULTS = {
      priority: '0',
      run_at: 'now()',
      attempt: '1',
      backoff_initial_ms: '1000',
      backoff_max_ms: '60000',
      backoff_multiplier: '2',
      backoff_jitter: '0',
      timeout_ms: '0',
      labels: `'{}'`,
      errors: `'[]'`,
      created_at: 'now()',
      cancel_requested: 'false',
    };
    const insert = (
      columns: Record<string, string>,
      table = FINISHED.includes(columns.status?.replace(/'/g, '')) ? 'baton_job_history' : 'baton_live_jobs',
    ) => {
      const all = {
        ...(table === 'baton_job_history' ? { id: '1', ...HISTORY_DEFAULTS } : {}),
        queue: `'sm-check'`,
        payload: `'null'`,
        max_attempts: '3',
        ...columns,
      };
      return query(db.url, `insert into ${table} (${Object.keys(all).join(', ')}) values (${Object.values(all).join(', ')}) returning id`);
    };

    async function violation(work: Promise<unknown>): Promise<{ code: string; constraint?: string }> {
      try {
        await work;
      } catch (error) {
        return error as { code: string; constraint?: string };
      }
      throw new Error('PostgreSQL accepted the row');
    }

    it.each<{ what: string; columns: Record<string, string> }>([
      { what: 'a pending job', columns: { status: `'pending'` } },
      { what: 'a running job with a lease token', columns: { status: `'running'`, lease_token: '1', attempt: '1' } },
      { what: 'a completed job with finished_at', columns: { status: `'completed'`, finished_at: 'now()' } },
      { what: 'a failed job with finished_at', columns: { status: `'failed'`, finished_at: 'now()' } },
    ])('accepts $what', async ({ columns }) => {
      expect(await insert(columns)).toHaveLength(1);
    });

    it('admits exactly the statuses of JOB_STATUSES, the one list, live ones in one table and finished ones in the other', async () => {
      const admitted = async (constraint: string) => {
        const [{ definition }] = await query<{ definition: string }>(
          db.url,
          `select pg_get_constraintdef(oid) as definition from pg_constraint where conname = $1 and conrelid::regclass::text in ('baton_live_jobs', 'baton_job_history')`,
          [constraint],
        );
        return [...definition.matchAll(/'([a-z]+)'::text/g)].map((match) => match[1]);
      };
      const live = await admitted('baton_live_jobs_status_check');
      const finished = await admitted('baton_job_history_status_check');
      expect(finished.sort()).toEqual([...FINISHED].sort());
      expect([...live, ...finished].sort()).toEqual([...JOB_STATUSES].sort());
    });

    it.each(['done', 'PENDING', '', 'dead', 'completed'])('rejects the status %j for a live job', async (status) => {
      const error = await violation(insert({ status: `'${status}'` }, 'baton_live_jobs'));
      expect(error.code).toBe('23514');
      expect(error.constraint).toBe('baton_live_jobs_status_check');
    });

    it.each(['pending', 'running', 'dead'])('keeps the status %j out of history', async (status) => {
      const error = await violation(insert({ status: `'${status}'`, finished_at: 'now()' }, 'baton_job_history'));
      // No partition takes an unknown status; the CHECK names the ones history admits.
      expect(['23514']).toContain(error.code);
    });

    it('rejects a running job without a lease token', async () => {
      const error = await violation(insert({ status: `'running'`, attempt: '1' }));
      expect(error).toMatchObject({ code: '23514', constraint: 'baton_jobs_running_has_lease' });
    });

    it('rejects a lease token on a job that is not running', async () => {
      const error = await violation(insert({ status: `'pending'`, lease_token: '7' }));
      expect(error).toMatchObject({ code: '23514', constraint: 'baton_jobs_running_has_lease' });
    });

    it.each(FINISHED)('rejects a %s job without finished_at', async (status) => {
      const error = await violation(insert({ status: `'${status}'` }));
      expect(error).toMatchObject({ code: '23502', column: 'finished_at' });
    });

    it('rejects finished_at on a live job', async () => {
      const error = await violation(insert({ status: `'scheduled'`, finished_at: 'now()' }));
      expect(error).toMatchObject({ code: '23514', constraint: 'baton_live_jobs_not_finished' });
    });

    it('rejects an update that would leave a running job without its lease', async () => {
      const [{ id }] = await insert({ status: `'running'`, lease_token: '2', attempt: '1' });
      const error = await violation(query(db.url, `update baton_live_jobs set lease_token = null where id = $1`, [id]));
      expect(error).toMatchObject({ code: '23514', constraint: 'baton_jobs_running_has_lease' });
      const [row] = await query(db.url, `select status, lease_token::text from baton_jobs where id = $1`, [id]);
      expect(row).toEqual({ status: 'running', lease_token: '2' });
    });

    it.each<{ what: string; columns: Record<string, string> }>([
      { what: 'priority above 1000', columns: { status: `'pending'`, priority: '1001' } },
      { what: 'max_attempts 0', columns: { status: `'pending'`, max_attempts: '0' } },
      { what: 'a negative attempt', columns: { status: `'pending'`, attempt: '-1' } },
    ])('rejects $what', async ({ columns }) => {
      expect((await violation(insert(columns))).code).toBe('23514');
    });
  });
});
