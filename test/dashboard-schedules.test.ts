/**
 * The dashboard's cron schedules view in a real browser (Debian's Chromium driven by playwright-core)
 * against a real broker whose leader ticks them: each schedule with its expression, time zone, next
 * run, latest tick and latest job; pausing (asked first) and resuming, "Run now" with the job it
 * made opening in the detail panel, and a delete (asked first) that keeps the jobs. Screenshots are
 * saved in a folder of their own, as test/dashboard.test.ts saves its (the path is printed).
 */
import { beforeAll, expect, it } from 'vitest';
import { type Dashboard, useDashboard } from './support/dashboard-browser.ts';

let broker: Dashboard['broker'];
let client: Dashboard['client'];
let page: Dashboard['page'];
const dashboard = useDashboard();
const { pageErrors, screenshot } = dashboard;
// After the dashboard's own set-up (hooks run in the order they were registered).
beforeAll(() => {
  ({ broker, client, page } = dashboard);
});

const scheduleRow = (name: string) => page.locator(`#schedules-table tr[data-schedule="${name}"]`);

it('lists schedules with next run and latest job; pauses, resumes, runs now and deletes from the page', async () => {
  await client.upsertSchedule('dash-nightly', {
    queue: 'dash-reports',
    cron: '0 3 * * *',
    timeZone: 'Europe/Paris',
    payload: { kind: 'daily' },
    missed: 'run_once',
  });
  // Ticks every second on the broker's leader, so it has a latest tick and job to show.
  await client.upsertSchedule('dash-heartbeat', { queue: 'dash-pings', cron: '* * * * * *', overlap: 'skip' });
  await expect.poll(async () => (await client.listSchedules({ name: 'dash-heartbeat' }))[0].lastJobId, { timeout: 15_000 }).toBeTruthy();

  await page.goto(`${broker.url}/`);
  const nightly = scheduleRow('dash-nightly');
  const heartbeat = scheduleRow('dash-heartbeat');
  await expect.poll(() => nightly.count(), { timeout: 10_000 }).toBe(1);
  expect(await nightly.locator('code').textContent()).toBe('0 3 * * *');
  expect(await nightly.textContent()).toContain('Europe/Paris');
  expect(await nightly.locator('.next-run').textContent()).toMatch(/\(in \d+[smh]\)$/);
  expect(await nightly.locator('.last-job').textContent()).toBe('–');
  expect(await nightly.textContent()).toContain('missed: run once · overlap: allow');
  await expect.poll(() => heartbeat.locator('.last-job .badge').count()).toBe(1);
  expect(await heartbeat.locator('.last-tick').textContent()).toMatch(/ago\)$/);
  expect(await page.locator('#schedules .toolbar').textContent()).toContain('2 schedules');
  await screenshot('schedules');

  // Pausing asks first: "Keep ticking" changes nothing, "Pause schedule" pauses.
  const dialog = page.locator('#dialog');
  await heartbeat.getByRole('button', { name: 'Pause' }).click();
  await expect.poll(() => dialog.isVisible()).toBe(true);
  expect(await dialog.textContent()).toContain('Pause schedule dash-heartbeat?');
  await dialog.getByRole('button', { name: 'Keep ticking' }).click();
  await expect.poll(() => dialog.isVisible()).toBe(false);
  expect((await client.listSchedules({ name: 'dash-heartbeat' }))[0].paused).toBe(false);
  await heartbeat.getByRole('button', { name: 'Pause' }).click();
  await dialog.getByRole('button', { name: 'Pause schedule' }).click();
  await expect.poll(async () => (await client.listSchedules({ name: 'dash-heartbeat' }))[0].paused).toBe(true);
  await expect.poll(() => heartbeat.locator('.state').textContent()).toBe('paused');
  expect(await heartbeat.locator('.next-run').textContent()).toBe('paused: none');

  // Run now enqueues one job at once; its id links to the job's detail.
  await nightly.getByRole('button', { name: 'Run now' }).click();
  await expect.poll(async () => (await client.listSchedules({ name: 'dash-nightly' }))[0].lastJobId).toBeTruthy();
  const [{ lastJobId }] = await client.listSchedules({ name: 'dash-nightly' });
  await expect.poll(() => nightly.locator('.last-job').textContent()).toBe(`#${lastJobId} PENDING`);
  await nightly.locator('.last-job a').click();
  const detail = page.locator('#detail');
  await expect.poll(() => detail.isVisible()).toBe(true);
  await expect.poll(() => detail.locator('#detail-payload').textContent()).toContain('daily');

  await heartbeat.getByRole('button', { name: 'Resume' }).click();
  await expect.poll(() => heartbeat.locator('.state').textContent()).toBe('active');
  expect((await client.listSchedules({ name: 'dash-heartbeat' }))[0].paused).toBe(false);

  // Deleting asks first; the schedule goes, the job it made stays.
  await nightly.getByRole('button', { name: 'Delete' }).click();
  await expect.poll(() => dialog.textContent()).toContain('Delete schedule dash-nightly?');
  await screenshot('schedules-confirm-delete');
  await dialog.getByRole('button', { name: 'Delete schedule' }).click();
  await expect.poll(() => nightly.count()).toBe(0);
  expect((await client.listSchedules()).map((s) => s.name)).toEqual(['dash-heartbeat']);
  expect((await client.get(lastJobId!)).status).toBe('pending');

  // One deleted elsewhere meanwhile: the broker's NOT_FOUND shows in the banner (Connect answers it
  // as HTTP 404, which the browser logs), and the last one gone leaves the panel saying how to make one.
  // The delete happens while the click's request is on its way, not before the click: deleted any
  // earlier, the page's next refresh could take the row, and its button, away first.
  expect(pageErrors).toEqual([]);
  await page.route('**/baton.v1.Admin/TriggerSchedule', async (route) => {
    await client.deleteSchedule('dash-heartbeat');
    await route.continue();
  });
  await heartbeat.getByRole('button', { name: 'Run now' }).click();
  await expect.poll(() => page.locator('#banner').textContent()).toContain('schedule "dash-heartbeat" does not exist');
  await expect.poll(() => page.locator('#schedules-table td.empty').textContent()).toContain('No schedules');
  expect(pageErrors).toEqual([expect.stringContaining('404 (Not Found)')]);
});
