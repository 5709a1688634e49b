import { durationMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { NonRetryableError, RetryAfterError, SnoozeError, snooze } from './errors.ts';
import { failure, success } from './outcome.ts';

describe('outcome', () => {
  it('encodes a return value as result JSON', () => {
    const o = success({ n: 1 });
    expect(o.ok && new TextDecoder().decode(o.resultJson)).toBe('{"n":1}');
  });

  it('fails for good when the result cannot be encoded', () => {
    const o = success(5n);
    expect(o.ok).toBe(false);
    expect(!o.ok && o.failure.nonRetryable).toBe(true);
  });

  it('maps the typed errors onto the failure flags', () => {
    const plain = failure(new Error('boom'));
    expect(!plain.ok && plain.failure).toMatchObject({ message: 'boom', nonRetryable: false, retryAfter: undefined });
    const fatal = failure(new NonRetryableError('bad input'));
    expect(!fatal.ok && fatal.failure.nonRetryable).toBe(true);
    const later = failure(new RetryAfterError(1500));
    expect(!later.ok && later.failure.retryAfter && durationMs(later.failure.retryAfter as never)).toBe(1500);
  });

  it('reports a snooze with a failure beside it that only a broker older than snooze would record', () => {
    const o = failure(snooze(1500.2));
    expect(o.ok).toBe(false);
    if (o.ok) return;
    expect(o.snooze?.delay && durationMs(o.snooze.delay as never)).toBe(1501);
    expect(o.failure).toMatchObject({ message: 'snoozed for 1501 ms' });
    expect(o.failure.retryAfter && durationMs(o.failure.retryAfter as never)).toBe(1501);
    expect(o.error).toBeInstanceOf(SnoozeError);
    const plain = failure(new Error('boom'));
    expect(!plain.ok && plain.snooze).toBeUndefined();
  });

  it('refuses a snooze the broker would refuse: not above 0, above 365 days, not a number', () => {
    for (const ms of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 365 * 24 * 3600_000 + 1]) {
      expect(() => snooze(ms)).toThrow(RangeError);
    }
    expect(snooze(365 * 24 * 3600_000).snoozeMs).toBe(365 * 24 * 3600_000);
  });

  it('describes thrown non-errors and truncates huge messages', () => {
    const str = failure('just a string');
    expect(!str.ok && str.failure.message).toBe('just a string');
    const obj = failure({ code: 7 });
    expect(!obj.ok && obj.failure.message).toContain('{"code":7}');
    const huge = failure(new Error('x'.repeat(10_000)));
    expect(!huge.ok && (huge.failure.message as string).length).toBeLessThan(4200);
  });
});
