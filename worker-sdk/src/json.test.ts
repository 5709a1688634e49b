import { describe, expect, it } from 'vitest';
import { decodeJson, encodeJson } from './json.ts';

describe('json', () => {
  it('round-trips values as UTF-8 JSON text', () => {
    const value = { n: 303, s: 'héllo', list: [1, null, true] };
    expect(decodeJson(encodeJson(value))).toEqual(value);
  });

  it('treats undefined and empty bytes as null', () => {
    expect(encodeJson(undefined)).toHaveLength(0);
    expect(decodeJson(new Uint8Array(0))).toBeNull();
  });

  it('refuses BigInt with a message that says what to do', () => {
    expect(() => encodeJson({ value: 10n ** 70n })).toThrow(/decimal strings/);
  });

  it('rejects invalid UTF-8 and invalid JSON', () => {
    expect(() => decodeJson(new Uint8Array([0xff, 0xfe]))).toThrow();
    expect(() => decodeJson(new TextEncoder().encode('{nope'))).toThrow(SyntaxError);
  });
});
