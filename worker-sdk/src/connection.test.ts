import { describe, expect, it } from 'vitest';
import { channelTarget } from './connection.ts';

describe('channelTarget', () => {
  it('defaults to localhost:7700 and adds the default port to bare hosts', () => {
    expect(channelTarget()).toBe('localhost:7700');
    expect(channelTarget('broker.internal')).toBe('broker.internal:7700');
    expect(channelTarget('broker.internal:9000')).toBe('broker.internal:9000');
  });

  it('passes grpc-js targets through', () => {
    expect(channelTarget('ipv4:127.0.0.1:7700,127.0.0.1:7701')).toBe('ipv4:127.0.0.1:7700,127.0.0.1:7701');
    expect(channelTarget('dns:brokers.internal:7700')).toBe('dns:brokers.internal:7700');
    expect(channelTarget('unix:/run/baton.sock')).toBe('unix:/run/baton.sock');
  });

  it('turns a list of IP addresses into one balanced target', () => {
    expect(channelTarget(['127.0.0.1:7700', 'localhost:7701'])).toBe('ipv4:127.0.0.1:7700,127.0.0.1:7701');
    expect(channelTarget('10.0.0.1:7700, 10.0.0.2')).toBe('ipv4:10.0.0.1:7700,10.0.0.2:7700');
    expect(channelTarget(['[::1]:7700', '[::1]:7701'])).toBe('ipv6:[::1]:7700,[::1]:7701');
    expect(channelTarget(['10.0.0.1:7700'])).toBe('10.0.0.1:7700');
  });

  it('refuses lists of host names and empty lists, saying what works instead', () => {
    expect(() => channelTarget(['a.internal:7700', 'b.internal:7700'])).toThrow(/dns:/);
    expect(() => channelTarget([])).toThrow(/at least one/);
  });
});
