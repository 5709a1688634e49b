/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core against a real broker.
 * Jobs enqueued through the API appear on the page (the first ones on load, a later one live, from
 * the queue's Watch stream), one is cancelled from the page and shows CANCELLED there and in the
 * database, a queue is paused and resumed from the page, and a screenshot is saved for people to
 * look at (its path is printed).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client, NonRetryableError, Worker } from '@baton/worker-sdk';
import type { RunningBroker } from '../server/src/broker.ts';
import { startTestBroker } from './support/broker.ts';
import { createTestDatabase } from './support/database.ts';

const CHROMIUM = '/usr/bin/chromium';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
let client: Client;
let context: BrowserContext;
let page: Page;
let profile: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
  db = await createTestDatabase();
  broker = await startTestBroker(db.url);
  client = new Client({ address: `127.0.0.1:${broker.port}` });
  profile = await mkdtemp(path.join(os.tmpdir(), 'baton-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1400, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
});

afterAll(async () => {
  await context?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  client?.close();
  await broker?.stop();
  await db?.drop();
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
  await detail.getByRole('button', { name: 'Cancel' }).click();
  await expect.poll(() => detail.locator('.badge').textContent()).toBe('CANCELLED');
  await expect.poll(() => row(later.id).locator('.status').textContent()).toBe('CANCELLED');
  expect((await client.get(later.id)).status).toBe('cancelled');
  expect(await detail.getByRole('button', { name: 'Retry' }).count()).toBe(1);

  // Pause and resume the queue from its row.
  const queueRow = page.locator('#queues tr[data-queue="dash-emails"]');
  await queueRow.getByRole('button', { name: 'Pause' }).click();
  await expect.poll(async () => (await client.queues()).find((q) => q.name === 'dash-emails')?.paused).toBe(true);
  await expect.poll(() => queueRow.locator('.state').textContent()).toBe('paused');

  const shots = await mkdtemp(path.join(os.tmpdir(), 'baton-dashboard-'));
  const shot = path.join(shots, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`dashboard screenshot: ${shot}`);

  await queueRow.getByRole('button', { name: 'Resume' }).click();
  await expect.poll(async () => (await client.queues()).find((q) => q.name === 'dash-emails')?.paused).toBe(false);

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
