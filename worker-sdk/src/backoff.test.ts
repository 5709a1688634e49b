import { describe, expect, it, vi } from 'vitest';
import { backoffDelay, sleep } from './backoff.ts';

describe('backoff', () => {
  it('draws uniformly below an exponential cap (full jitter)', () => {
    expect(backoffDelay(0, {}, () => 0.999)).toBe(99);
    expect(backoffDelay(3, {}, () => 0.5)).toBe(400);
    expect(backoffDelay(50, {}, () => 0.999)).toBe(9_990);
    expect(backoffDelay(5, {}, () => 0)).toBe(0);
  });

  // vitest's fake timers fit here (unlike the broker's duties, which take a Clock): the SDK's sleep
  // uses the global timers, and nothing else in this test does.
  it('sleep ends early, without rejecting, when its signal aborts, and leaves no timer', async () => {
    vi.useFakeTimers();
    try {
      const controller = new AbortController();
      const slept = sleep(10_000, controller.signal);
      expect(vi.getTimerCount()).toBe(1);
      controller.abort();
      await slept;
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('sleep resolves when its time is up, not before', async () => {
    vi.useFakeTimers();
    try {
      let done = false;
      const slept = sleep(10_000).then(() => (done = true));
      await vi.advanceTimersByTimeAsync(9_999);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await slept;
      expect(done).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});
