/**
 * `baton schedules` as a user runs it (the real entry point in a child process, against a real
 * broker): set creates then replaces, list as a table and as JSON, pause and resume, trigger prints
 * the job's id, delete, and the errors: the broker's message for an invalid expression (exit 2) and
 * an unknown schedule (exit 1), usage errors for bad flags (those run in-process: they never reach
 * the broker).
 */
import { beforeAll, expect, it } from 'vitest';
import { runCli } from '../server/src/cli/index.ts';
import { type CliBroker, useCliBroker } from './support/cli-broker.ts';

let client: CliBroker['client'];
let address: CliBroker['address'];
const cli = useCliBroker();
const { baton } = cli;
// After the broker's own set-up (hooks run in the order they were registered).
beforeAll(() => {
  ({ client, address } = cli);
});

it('sets, lists, pauses, resumes, triggers and deletes a schedule', async () => {
  expect(await baton(['schedules'])).toMatchObject({ code: 0, stdout: expect.stringContaining('no schedules yet') });

  // A yearly tick far from now, so that the broker's ticker never enqueues during the test.
  const created = await baton([
    'schedules',
    'set',
    'cli-nightly',
    '--queue',
    'cli-reports',
    '--cron',
    '0 3 1 1 *',
    '--tz',
    'Europe/Paris',
    '--payload',
    '{"kind": "daily"}',
    '--priority',
    '5',
    '--label',
    'team=ops',
    '--missed',
    'backfill:3',
    '--overlap',
    'skip',
  ]);
  expect(created.stderr).toBe('');
  expect(created).toMatchObject({ code: 0 });
  expect(created.stdout).toMatch(
    /^created cli-nightly: "0 3 1 1 \*" \(Europe\/Paris\) into cli-reports, missed backfill:3, overlap skip; next run \d{4}-01-01T02:00:00Z\n$/,
  );
  const [stored] = await client.listSchedules({ name: 'cli-nightly' });
  expect(stored).toMatchObject({
    queue: 'cli-reports',
    cron: '0 3 1 1 *',
    timeZone: 'Europe/Paris',
    payload: { kind: 'daily' },
    priority: 5,
    labels: { team: 'ops' },
    missed: 'backfill',
    backfillLimit: 3,
    overlap: 'skip',
    paused: false,
  });

  // set replaces the whole definition; --paused pauses it too.
  const replaced = await baton(['schedules', 'set', 'cli-nightly', '--queue', 'cli-reports', '--cron', '0 4 1 1 *', '--paused', '--json']);
  expect(replaced.code).toBe(0);
  expect(JSON.parse(replaced.stdout)).toMatchObject({ name: 'cli-nightly', cron: '0 4 1 1 *', timeZone: 'UTC', missed: 'skip', paused: true, nextRuns: [] });

  const table = await baton(['schedules', 'list']);
  expect(table.code).toBe(0);
  const [header, line] = table.stdout.trimEnd().split('\n');
  expect(header.split(/\s{2,}/)).toEqual(['NAME', 'QUEUE', 'CRON', 'TIME ZONE', 'NEXT RUN', 'STATE', 'LAST JOB']);
  expect(line.split(/\s{2,}/)).toEqual(['cli-nightly', 'cli-reports', '0 4 1 1 *', 'UTC', '-', 'paused', '-']);

  expect(await baton(['schedules', 'resume', 'cli-nightly'])).toMatchObject({
    code: 0,
    stdout: expect.stringMatching(/^resumed cli-nightly: .*next run \d{4}-01-01T04:00:00Z\n$/),
  });

  // trigger runs one job now, paused or not, and prints its id alone.
  const triggered = await baton(['schedules', 'trigger', 'cli-nightly']);
  expect(triggered).toMatchObject({ code: 0, stdout: expect.stringMatching(/^\d+\n$/) });
  const jobId = triggered.stdout.trim();
  const job = await client.get(jobId);
  expect(job).toMatchObject({ queue: 'cli-reports', status: 'pending', labels: { 'baton.schedule': 'cli-nightly' } });

  const listed = await baton(['schedules', 'list', '--json', '--next', '3']);
  const [withJob] = JSON.parse(listed.stdout);
  expect(withJob).toMatchObject({ name: 'cli-nightly', lastJobId: jobId, lastJobStatus: 'pending', paused: false });
  expect(withJob.nextRuns).toHaveLength(3);
  const row = (await baton(['schedules', 'list', 'cli-nightly'])).stdout
    .trimEnd()
    .split('\n')[1]
    .split(/\s{2,}/);
  expect(row[4]).toMatch(/^\d{4}-01-01T04:00:00Z \(in \d+[smhd]\)$/);
  expect(row.slice(5)).toEqual(['active', `${jobId} PENDING`]);

  expect(await baton(['schedules', 'pause', 'cli-nightly'])).toMatchObject({ code: 0, stdout: expect.stringContaining('paused cli-nightly') });
  expect((await client.listSchedules({ name: 'cli-nightly' }))[0].paused).toBe(true);

  expect(await baton(['schedules', 'delete', 'cli-nightly'])).toMatchObject({ code: 0, stdout: 'deleted cli-nightly (the jobs it made stay)\n' });
  expect(await client.listSchedules()).toEqual([]);
  expect((await client.get(jobId)).status).toBe('pending');
});

it("says what is wrong: the broker's refusal, an unknown schedule, bad flags", async () => {
  const badCron = await baton(['schedules', 'set', 'cli-bad', '--queue', 'q', '--cron', '61 * * * *']);
  expect(badCron.code).toBe(2);
  expect(badCron.stderr).toMatch(/^baton schedules: schedule\.cron/);
  const badZone = await baton(['schedules', 'set', 'cli-bad', '--queue', 'q', '--cron', '* * * * *', '--tz', 'Mars/Olympus']);
  expect(badZone.code).toBe(2);
  expect(badZone.stderr).toContain('Mars/Olympus');

  for (const action of ['pause', 'resume', 'delete', 'trigger']) {
    const missing = await baton(['schedules', action, 'cli-nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('schedule "cli-nope" does not exist');
  }
  expect((await baton(['schedules', 'list', 'cli-nope'])).code).toBe(1);

  // Usage errors never reach the broker: run in this process, through the same entry point.
  const usage = async (args: string[], text: string) => {
    const result = { code: 0, stdout: '', stderr: '' };
    const io = { stdout: (t: string) => void (result.stdout += t), stderr: (t: string) => void (result.stderr += t), env: { BATON_ADDRESS: address } };
    result.code = await runCli(['schedules', ...args], io);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(text);
    expect(result.stderr).toContain('Usage: baton schedules');
  };
  await usage(['set', 'x', '--cron', '* * * * *'], '--queue is required');
  await usage(['set', 'x', '--queue', 'q'], '--cron is required');
  await usage(['set', 'x', '--queue', 'q', '--cron', '* * * * *', '--missed', 'backfill:0'], 'backfill:N');
  await usage(['set', 'x', '--queue', 'q', '--cron', '* * * * *', '--missed', 'always'], '--missed must be');
  await usage(['set', 'x', '--queue', 'q', '--cron', '* * * * *', '--overlap', 'queue'], '--overlap must be allow or skip');
  await usage(['set', 'x', '--queue', 'q', '--cron', '* * * * *', '--payload', '{nope'], '--payload is not valid JSON');
  await usage(['pause'], 'say which schedule');
  await usage(['pause', 'x', '--cron', '* * * * *'], '--cron belongs to "baton schedules set"');
  await usage(['rename', 'x'], 'unknown action "rename"');

  const help = await baton(['help', 'schedules']);
  expect(help).toMatchObject({ code: 0, stdout: expect.stringContaining('baton schedules set NAME --queue QUEUE') });
  expect((await baton(['help'])).stdout).toMatch(/schedules +List cron schedules/);
});
