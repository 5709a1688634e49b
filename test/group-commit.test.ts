import { expect, it } from 'vitest';
import { createGroupCommit } from '../server/src/lib/group-commit.ts';
import { createFakeClock } from './support/fake-clock.ts';

function controlledRun() {
  const calls: { items: number[]; finish: () => void; fail: (error: Error) => void }[] = [];
  const run = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({ items, finish: () => resolve(items.map((i) => `#${i}`)), fail: reject });
    });
  return { calls, run };
}

it('sends the first write at once and groups the ones that arrive while it runs', async () => {
  const { calls, run } = controlledRun();
  const write = createGroupCommit(run, { maxInFlight: 1, maxItems: 100 });
  const first = write([1]);
  const second = write([2]);
  const third = write([3, 4]);
  expect(calls.map((c) => c.items)).toEqual([[1]]);
  calls[0].finish();
  expect(await first).toEqual(['#1']);
  expect(calls.map((c) => c.items)).toEqual([[1], [2, 3, 4]]);
  calls[1].finish();
  expect(await second).toEqual(['#2']);
  expect(await third).toEqual(['#3', '#4']);
});

it('caps a group at maxItems, but never splits one caller', async () => {
  const { calls, run } = controlledRun();
  const write = createGroupCommit(run, { maxInFlight: 1, maxItems: 3 });
  const pending = [write([0]), write([1, 2]), write([3, 4]), write([5, 6, 7, 8])];
  calls[0].finish();
  await pending[0];
  expect(calls[1].items).toEqual([1, 2]);
  calls[1].finish();
  await pending[1];
  expect(calls[2].items).toEqual([3, 4]);
  calls[2].finish();
  await pending[2];
  expect(calls[3].items).toEqual([5, 6, 7, 8]);
  calls[3].finish();
  expect(await pending[3]).toHaveLength(4);
});

it('fails every caller of a failed group, and only them', async () => {
  const { calls, run } = controlledRun();
  const write = createGroupCommit(run, { maxInFlight: 1, maxItems: 100 });
  const first = write([1]);
  const second = write([2]);
  const third = write([3]);
  calls[0].finish();
  await first;
  calls[1].fail(new Error('database away'));
  await expect(second).rejects.toThrow('database away');
  await expect(third).rejects.toThrow('database away');
  const fourth = write([4]);
  calls[2].finish();
  expect(await fourth).toEqual(['#4']);
});

it('runs up to maxInFlight groups at once', () => {
  const { calls, run } = controlledRun();
  const write = createGroupCommit(run, { maxInFlight: 2, maxItems: 100 });
  void write([1]);
  void write([2]);
  void write([3]);
  expect(calls.map((c) => c.items)).toEqual([[1], [2]]);
});

it('with lingerMs, a lone write waits exactly that long for company and leaves with it', async () => {
  const { calls, run } = controlledRun();
  const clock = createFakeClock();
  const write = createGroupCommit(run, { maxInFlight: 1, maxItems: 100, lingerMs: 30, clock });
  const first = write([1]);
  await clock.advance(29);
  const second = write([2]);
  expect(calls).toHaveLength(0);
  await clock.advance(1);
  expect(calls.map((c) => c.items)).toEqual([[1, 2]]);
  calls[0].finish();
  expect(await first).toEqual(['#1']);
  expect(await second).toEqual(['#2']);
});

it('lingers only when idle: a write arriving while a group runs goes out with the next one, not later', async () => {
  const { calls, run } = controlledRun();
  const clock = createFakeClock();
  const write = createGroupCommit(run, { maxInFlight: 1, maxItems: 100, lingerMs: 30, clock });
  const first = write([1]);
  await clock.advance(30);
  const second = write([2]);
  expect(clock.pending()).toEqual([]);
  calls[0].finish();
  await first;
  // Sent as the first group finished: no linger timer was armed for it.
  expect(calls.map((c) => c.items)).toEqual([[1], [2]]);
  calls[1].finish();
  expect(await second).toEqual(['#2']);
  // Idle again: the next lone write lingers anew.
  void write([3]);
  expect(clock.pending()).toEqual([clock.now() + 30]);
});
