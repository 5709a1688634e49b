/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core against a real broker.
 * Jobs enqueued through the API appear on the page (the first ones on load, a later one live, from
 * the queue's Watch stream), one is cancelled from the page after a confirmation and shows CANCELLED
 * there and in the database, a queue is paused and resumed from the page. The operator's views: the
 * connected workers, the warning on a queue nobody serves with its oldest pending job, live progress
 * in the list and the detail panel (in view however far the list was scrolled), search by id,
 * idempotency key and label, a queue's settings edited, and the last hour's charts. Screenshots of
 * each are saved in one folder for people to look at (its path is printed).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { NonRetryableError, Worker } from '@baton/worker-sdk';
import { startTestBroker } from './support/broker.ts';
import { type Dashboard, useDashboard } from './support/dashboard-browser.ts';
import { query } from './support/database.ts';

let db: Dashboard['db'];
let broker: Dashboard['broker'];
let client: Dashboard['client'];
let context: Dashboard['context'];
let page: Dashboard['page'];
const dashboard = useDashboard();
const { pageErrors, screenshot } = dashboard;
// After the dashboard's own set-up (hooks run in the order they were registered).
beforeAll(() => {
  ({ db, broker, client, context, page } = dashboard);
});

const row = (id: string) => page.locator(`#jobs tr[data-job-id="${id}"]`);

/**
 * Run in the page before its own scripts: the page's safety poll (a `setInterval` of 10 s or more,
 * POLL_MS in server/src/dashboard/src/state.ts) skips its turns while `__safetyPoll.held` is set,
 * so that what appears meanwhile provably came from a Watch stream.
 */
const HOLD_SAFETY_POLL = `
  window.__safetyPoll = { held: false };
  const realSetInterval = window.setInterval;
  window.setInterval = (callback, ms, ...args) =>
    realSetInterval(() => (ms >= 10000 && window.__safetyPoll.held ? undefined : callback(...args)), ms);
`;

it('shows enqueued jobs live, cancels one from the page, and pauses a queue', async () => {
  const first = await client.enqueueBatch([
    { queue: 'dash-emails', payload: { to: 'ada@example.com' } },
    { queue: 'dash-emails', payload: { to: 'grace@example.com' }, priority: 5 },
    { queue: 'dash-thumbs', payload: { src: 'cat.png' } },
  ]);

  // A queue with history, so that the screenshot shows throughput and failures too.
  const reports = new Worker({
    address: `127.0.0.1:${broker.port}`,
    logger: {},
    handlers: {
      'dash-reports': (payload: { n: number }) => {
        if (payload.n % 4 === 0) throw new NonRetryableError(`report ${payload.n}: template not found`);
        return { pages: payload.n };
      },
    },
  });
  await reports.start();
  const history = await client.enqueueBatch(Array.from({ length: 12 }, (_, n) => ({ queue: 'dash-reports', payload: { n } })));
  for (const job of history) await client.result(job.id).catch(() => undefined);
  await reports.close();

  await page.addInitScript({ content: HOLD_SAFETY_POLL });
  await page.goto(`${broker.url}/`);
  for (const job of first) await expect.poll(() => row(job.id).count(), { timeout: 10_000 }).toBe(1);
  await expect.poll(() => page.locator('#queues tr[data-queue="dash-emails"] td').nth(1).textContent()).toBe('2');

  // Narrow to one queue, then enqueue with the page's safety poll held: the new job can only
  // arrive from the Watch stream.
  await page.locator('#queues tr[data-queue="dash-emails"] button.link').click();
  await expect.poll(() => page.locator('#live').textContent()).toContain('live');
  await expect.poll(() => row(first[2].id).count()).toBe(0);
  await page.evaluate('window.__safetyPoll.held = true');
  const later = await client.enqueue('dash-emails', { to: 'linus@example.com' });
  await expect.poll(() => row(later.id).count(), { timeout: 20_000, interval: 100 }).toBe(1);
  await page.evaluate('window.__safetyPoll.held = false');

  // Open the job, cancel it from its detail panel.
  await row(later.id).click();
  const detail = page.locator('#detail');
  await expect.poll(() => detail.locator('#detail-payload').textContent()).toContain('linus@example.com');
  // Cancel asks first: "Keep job" changes nothing, "Cancel job" cancels.
  const dialog = page.locator('#dialog');
  await detail.getByRole('button', { name: 'Cancel' }).click();
  await expect.poll(() => dialog.isVisible()).toBe(true);
  expect(await dialog.textContent()).toContain(`Cancel job ${later.id}?`);
  await screenshot('confirm-cancel');
  await dialog.getByRole('button', { name: 'Keep job' }).click();
  await expect.poll(() => dialog.isVisible()).toBe(false);
  expect((await client.get(later.id)).status).toBe('pending');
  await detail.getByRole('button', { name: 'Cancel' }).click();
  await dialog.getByRole('button', { name: 'Cancel job' }).click();
  await expect.poll(() => detail.locator('.badge').textContent()).toBe('CANCELLED');
  await expect.poll(() => row(later.id).locator('.status').textContent()).toBe('CANCELLED');
  expect((await client.get(later.id)).status).toBe('cancelled');
  expect(await detail.getByRole('button', { name: 'Retry' }).count()).toBe(1);

  // Pause and resume the queue from its row.
  const queueRow = page.locator('#queues tr[data-queue="dash-emails"]');
  await queueRow.getByRole('button', { name: 'Pause' }).click();
  await dialog.getByRole('button', { name: 'Pause queue' }).click();
  await expect.poll(async () => (await client.queues()).find((q) => q.name === 'dash-emails')?.paused).toBe(true);
  await expect.poll(() => queueRow.locator('.state').textContent()).toBe('paused');

  await screenshot('dashboard');

  await queueRow.getByRole('button', { name: 'Resume' }).click();
  await expect.poll(async () => (await client.queues()).find((q) => q.name === 'dash-emails')?.paused).toBe(false);

  expect(pageErrors).toEqual([]);
});

it("shows the connected workers, warns of a queue nobody serves, and follows a job's progress live", async () => {
  // Jobs waiting on a queue no worker lists, the oldest for 12 minutes.
  // (A run_at in the past makes a job PENDING at once, due since then.)
  const dueSince = new Date(Date.now() - 12 * 60_000 - 5_000);
  await client.enqueueBatch([
    { queue: 'dash-stranded', payload: { n: 1 }, runAt: dueSince },
    { queue: 'dash-stranded', payload: { n: 2 } },
  ]);

  // A worker whose job runs until the test lets it finish, reporting progress on the way.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let report!: (value: unknown) => void;
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const worker = new Worker({
    address: `127.0.0.1:${broker.port}`,
    logger: {},
    workerId: 'render-farm-1',
    concurrency: 4,
    handlers: {
      'dash-render': async (_payload: unknown, ctx) => {
        report = (value) => ctx.progress(value);
        started();
        await released;
        return { frames: 240 };
      },
      'dash-render-previews': () => ({}),
    },
  });
  await worker.start();
  try {
    const job = await client.enqueue('dash-render', { scene: 'intro' }, { labels: { tenant: 'acme' } });
    await running;
    report({ done: 24, total: 240 });

    await page.goto(`${broker.url}/`);
    const session = page.locator('#workers-table tbody tr', { hasText: 'render-farm-1' });
    await expect.poll(() => session.count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => session.locator('td').nth(3).textContent()).toContain('1 / 4');
    expect(await session.locator('td').nth(2).textContent()).toBe('dash-renderdash-render-previews');
    expect(await session.locator('td').nth(5).textContent()).toMatch(/ago$/);
    expect(await session.locator('td').nth(6).textContent()).toMatch(/^expires in \d+s$/);

    // The queue nobody serves is flagged in the queue list, with its oldest pending job's age.
    const stranded = page.locator('#queues tr[data-queue="dash-stranded"]');
    await expect.poll(() => stranded.locator('.serving').textContent()).toBe('⚠ no worker');
    expect(await stranded.locator('.oldest').textContent()).toBe('12m');
    expect(await page.locator('#queues tr[data-queue="dash-render"] .serving').textContent()).toBe('1 session');
    expect(await page.locator('#queue-notice').textContent()).toContain('dash-stranded');
    // ...and on the queue's own page.
    await stranded.locator('button.link').click();
    const notice = page.locator('#queue-notice');
    await expect.poll(() => notice.textContent()).toContain('No connected worker serves this queue');
    expect(await notice.textContent()).toContain('dash-stranded: 2 jobs waiting, the oldest for 12m');
    await screenshot('workers-and-unserved-queue');

    // The list shows the running job's worker, duration and progress, and follows the progress.
    await page.locator('#queues tr[data-queue="dash-render"] button.link').click();
    await expect.poll(() => notice.isHidden()).toBe(true);
    const jobRow = row(job.id);
    await expect.poll(() => jobRow.locator('.progress-cell').textContent()).toBe('10%');
    expect(await jobRow.locator('.worker').textContent()).toBe('render-farm-1');
    expect(await jobRow.locator('.duration').textContent()).toMatch(/^\d+(ms|s)$/);
    report({ done: 120, total: 240 });
    await expect.poll(() => jobRow.locator('.progress-cell').textContent(), { timeout: 10_000 }).toBe('50%');

    // The detail panel opens in view even with the page scrolled to its end, and follows the progress too.
    await page.evaluate('window.scrollTo(0, document.body.scrollHeight)');
    await jobRow.click();
    const detail = page.locator('#detail');
    await expect.poll(() => detail.locator('#detail-progress').textContent()).toBe('50%');
    const box = await detail.boundingBox();
    expect(box!.y).toBeGreaterThanOrEqual(0);
    expect(box!.y + box!.height).toBeLessThanOrEqual(900);
    expect(box!.x + box!.width).toBeLessThanOrEqual(1400);
    report({ done: 180, total: 240 });
    await expect.poll(() => detail.locator('#detail-progress').textContent(), { timeout: 10_000 }).toBe('75%');
    await page.evaluate('window.scrollTo(0, 0)');
    await screenshot('live-progress');

    release();
    await client.result(job.id);
    await expect.poll(() => detail.locator('.badge').textContent(), { timeout: 10_000 }).toBe('COMPLETED');
    await detail.getByRole('button', { name: 'Close' }).click();
  } finally {
    release();
    await worker.close();
  }
  expect(pageErrors).toEqual([]);
});

it("searches by id, idempotency key and label, edits a queue's settings, and charts the last hour", async () => {
  const [a, b, c] = await Promise.all([
    client.enqueue('dash-search', { n: 1 }, { labels: { tenant: 'initech' }, idempotencyKey: 'order-1001' }),
    client.enqueue('dash-search', { n: 2 }, { labels: { tenant: 'initech', region: 'eu' } }),
    client.enqueue('dash-search', { n: 3 }, { labels: { tenant: 'globex' } }),
  ]);
  const ids = async () => page.locator('#jobs tbody tr[data-job-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-job-id')));
  const search = async (text: string) => {
    await page.getByRole('searchbox', { name: 'Search jobs' }).fill(text);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
  };
  await page.goto(`${broker.url}/`);

  await search('tenant=initech');
  const newestFirst = (...jobs: { id: string }[]) => jobs.map((j) => j.id).sort((x, y) => Number(y) - Number(x));
  await expect.poll(ids, { timeout: 5_000 }).toEqual(newestFirst(a, b));
  expect(await page.locator('#search-note').textContent()).toBe('showing labels tenant=initech');
  expect(new URL(page.url()).hash).toContain('q=tenant%3Dinitech');
  await screenshot('search-by-label');
  await search('tenant=initech region=eu');
  await expect.poll(ids, { timeout: 5_000 }).toEqual([b.id]);
  await search('order-1001');
  await expect.poll(ids, { timeout: 5_000 }).toEqual([a.id]);
  await search(c.id);
  await expect.poll(ids, { timeout: 5_000 }).toEqual([c.id]);
  await search('987654321');
  await expect.poll(() => page.locator('#jobs td.empty').textContent(), { timeout: 5_000 }).toBe('No jobs match.');
  // Get answers an unknown id with NOT_FOUND, which the Connect protocol sends as HTTP 404, and
  // Chromium logs every 404 on the console: that one entry is expected, not a page error.
  const notFound = pageErrors.findIndex((message) => message.includes('status of 404'));
  expect(notFound).toBeGreaterThanOrEqual(0);
  pageErrors.splice(notFound, 1);
  await search('');
  await expect.poll(async () => (await ids()).length, { timeout: 5_000 }).toBeGreaterThanOrEqual(3);

  // A queue's settings, edited in the dialog and stored.
  const queueRow = page.locator('#queues tr[data-queue="dash-search"]');
  await queueRow.getByRole('button', { name: 'Settings' }).click();
  const form = page.locator('#dialog form.settings');
  await expect.poll(() => form.isVisible()).toBe(true);
  await form.getByLabel('Concurrency').fill('3');
  await form.getByLabel('Max attempts').fill('5');
  await form.getByLabel('Timeout (seconds)').fill('30');
  await screenshot('queue-settings');
  await form.getByRole('button', { name: 'Save' }).click();
  await expect.poll(() => form.isVisible()).toBe(false);
  const [settings] = await query(db.url, `select concurrency, default_max_attempts, default_timeout_ms from baton_queues where name = 'dash-search'`);
  expect(settings).toEqual({ concurrency: 3, default_max_attempts: 5, default_timeout_ms: '30000' });
  await expect.poll(() => queueRow.textContent(), { timeout: 5_000 }).toContain('max 3');
  // A rate limit, then fair keys on top of it: the broker refuses both at once and the form says why.
  await queueRow.getByRole('button', { name: 'Settings' }).click();
  await expect.poll(() => form.isVisible()).toBe(true);
  await form.getByLabel('Rate limit (starts)').fill('10');
  await form.getByRole('button', { name: 'Save' }).click();
  await expect.poll(() => form.isVisible()).toBe(false);
  const [rated] = await query(db.url, `select rate_limit, rate_interval_ms from baton_queues where name = 'dash-search'`);
  expect(rated).toEqual({ rate_limit: 10, rate_interval_ms: 1000 });
  await expect.poll(() => queueRow.textContent(), { timeout: 5_000 }).toContain('max 3 · 10/s');
  await queueRow.getByRole('button', { name: 'Settings' }).click();
  await expect.poll(() => form.isVisible()).toBe(true);
  await form.getByLabel('Fair keys').check();
  await form.getByRole('button', { name: 'Save' }).click();
  await expect.poll(() => form.getByRole('alert').textContent(), { timeout: 5_000 }).toContain('would have both rate limits and fair keys');
  await form.getByRole('button', { name: 'Close' }).click();
  // The refusal is a 400 from the broker, which the browser logs: expected here.
  const refused = pageErrors.findIndex((message) => message.includes('status of 400'));
  expect(refused).toBeGreaterThanOrEqual(0);
  pageErrors.splice(refused, 1);

  // The last hour of one queue: 12 reports finished in the first test, 3 of them failed.
  await page.locator('#queues tr[data-queue="dash-reports"] button.link').click();
  await expect.poll(() => page.locator('#chart-throughput figcaption').textContent(), { timeout: 5_000 }).toBe('Finished per minute: 9 completed, 3 failed');
  expect(await page.locator('#chart-failure-rate figcaption').textContent()).toBe('Failure rate per minute: 25% over the hour');
  expect(await page.locator('#chart-throughput rect').count()).toBe(120);
  // Every attempt of those jobs started in the hour: the wait chart counts them, from the broker's rollup.
  expect(await page.locator('#chart-wait figcaption').textContent()).toMatch(
    /^Wait before start per minute: [\d.]+ (ms|s|min) on average over (1[2-9]|[2-9]\d) starts$/,
  );
  expect(await page.locator('#chart-wait rect').count()).toBe(60);
  await screenshot('last-hour-charts');
  expect(pageErrors).toEqual([]);
});

it('pages through a long list by keyset, 50 jobs at a time', async () => {
  const jobs = await client.enqueueBatch(
    Array.from({ length: 120 }, (_, i) => ({ queue: 'dash-paging', payload: { i } })),
    { idsOnly: true },
  );
  const ids = jobs.map((j) => j.id).reverse(); // newest first, as the page lists them
  await page.goto(`${broker.url}/#queue=dash-paging`);
  await expect.poll(() => page.locator('#jobs tbody tr').first().getAttribute('data-job-id')).toBe(ids[0]);
  expect(await page.locator('#jobs tbody tr').count()).toBe(50);
  await page.locator('#older').click();
  await expect.poll(() => page.locator('#jobs tbody tr').first().getAttribute('data-job-id')).toBe(ids[50]);
  await page.locator('#older').click();
  await expect.poll(() => page.locator('#jobs tbody tr').count()).toBe(20);
  expect(await page.locator('#older').isDisabled()).toBe(true);
  await page.locator('#newer').click();
  await expect.poll(() => page.locator('#jobs tbody tr').first().getAttribute('data-job-id')).toBe(ids[50]);
  // The filter buttons narrow by status on the server.
  await page.locator('button[data-status="cancelled"]').click();
  await expect.poll(() => page.locator('#jobs td.empty').textContent()).toBe('No jobs match.');
  expect(pageErrors).toEqual([]);
});

it('selects all jobs matching a search, counts them first, then cancels and retries them in bulk', async () => {
  await client.enqueueBatch(
    Array.from({ length: 60 }, (_, i) => ({ queue: 'dash-bulk', payload: { i }, labels: { batch: 'b1' } })),
    { idsOnly: true },
  );
  const other = await client.enqueue('dash-bulk', { i: 'other' }, { labels: { batch: 'b2' } });
  await page.goto(`${broker.url}/#queue=dash-bulk&q=batch%3Db1`);
  await expect.poll(() => page.locator('#jobs tbody tr').count()).toBe(50);
  const bar = page.locator('#bulk');
  const dialog = page.locator('#dialog');

  // More jobs match than the page shows: the selection is of all of them, counted by a dry run.
  await bar.getByRole('button', { name: 'Select all matching' }).click();
  expect(await bar.textContent()).toContain('All jobs matching queue dash-bulk, labels batch=b1 selected.');
  await bar.getByRole('button', { name: 'Cancel all' }).click();
  await expect.poll(() => dialog.isVisible()).toBe(true);
  await expect.poll(() => dialog.textContent()).toContain('Cancel 60 jobs?');
  await screenshot('bulk-cancel-confirm');
  await dialog.getByRole('button', { name: 'Keep them' }).click();
  expect((await client.list({ queue: 'dash-bulk', statuses: ['pending'], pageSize: 100 })).jobs).toHaveLength(61);

  await bar.getByRole('button', { name: 'Cancel all' }).click();
  await dialog.getByRole('button', { name: 'Cancel 60 jobs' }).click();
  await expect.poll(() => bar.textContent()).toContain('60 jobs cancelled.');
  expect((await client.list({ queue: 'dash-bulk', statuses: ['cancelled'], pageSize: 100 })).jobs).toHaveLength(60);
  expect((await client.get(other.id)).status).toBe('pending');
  await expect.poll(() => page.locator('#jobs tbody tr .status').first().textContent()).toBe('CANCELLED');
  await screenshot('bulk-cancelled');

  // Narrowed to CANCELLED, only the actions that apply to it are offered.
  await page.locator('button[data-status="cancelled"]').click();
  await bar.getByRole('button', { name: 'Select all matching' }).click();
  expect(await bar.getByRole('button', { name: 'Cancel all' }).count()).toBe(0);
  await bar.getByRole('button', { name: 'Retry all' }).click();
  await expect.poll(() => dialog.textContent()).toContain('Retry 60 jobs?');
  await dialog.getByRole('button', { name: 'Retry 60 jobs' }).click();
  await expect.poll(() => bar.textContent()).toContain('60 jobs retried.');
  expect((await client.list({ queue: 'dash-bulk', statuses: ['pending'], pageSize: 100 })).jobs).toHaveLength(61);
  expect(pageErrors).toEqual([]);
});

it('asks for an API key when the broker needs one, then reads and watches with the key given', async () => {
  const secured = await startTestBroker(db.url, { auth: 'keys', authCacheMs: 0 });
  const keyed = await context.newPage();
  keyed.on('pageerror', (error) => pageErrors.push(error.message));
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['server/src/cli/index.ts', 'keys', 'create', '--scope', 'admin', '--name', 'dashboard test'],
      {
        cwd: path.resolve(import.meta.dirname, '..'),
        env: { ...process.env, DATABASE_URL: db.url },
      },
    );
    const key = stdout.trim();
    await client.enqueue('dash-keyed', { n: 1 });

    await keyed.goto(`${secured.url}/`);
    const banner = keyed.locator('#banner');
    await expect.poll(() => banner.getAttribute('data-kind')).toBe('key');
    await banner.getByRole('textbox', { name: 'API key' }).fill(key);
    await banner.getByRole('button', { name: 'Use key' }).click();
    // The key re-reads the page at once and reopens the Watch streams with it.
    await expect.poll(() => banner.isHidden()).toBe(true);
    // (The stats are read at most every 2 s, and the refused read at load counts.)
    await expect.poll(() => keyed.locator('#queues tr[data-queue="dash-keyed"]').count(), { timeout: 5_000 }).toBe(1);
    await expect.poll(() => keyed.locator('#live').textContent()).toContain('live');
    expect(pageErrors).toEqual([]);
  } finally {
    await keyed.close();
    await secured.stop();
  }
});
