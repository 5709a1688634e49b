/**
 * The error boundary's limit on status messages: whatever a check quotes, the status must still fit
 * in HTTP/2 trailers (Node closes the whole connection when a header block is over 64 KiB).
 */
import { Code, ConnectError, type UnaryRequest } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { errorBoundary, MAX_STATUS_MESSAGE } from '../server/src/api/error-boundary.ts';
import { BrokerError } from '../server/src/domain/errors.ts';
import { createLogger } from '../server/src/logger.ts';

function refusedWith(message: string): Promise<ConnectError> {
  const intercept = errorBoundary(createLogger('error', () => {}));
  const request = { method: { name: 'UpsertSchedule' }, signal: new AbortController().signal } as unknown as UnaryRequest;
  return intercept(() => Promise.reject(new BrokerError('invalid-argument', message)))(request).then(
    () => {
      throw new Error('expected a refusal');
    },
    (error: unknown) => error as ConnectError,
  );
}

describe('status messages', () => {
  it('are sent whole up to the limit', async () => {
    const refused = await refusedWith('queue: "q" is not a valid queue name');
    expect(refused.code).toBe(Code.InvalidArgument);
    expect(refused.rawMessage).toBe('queue: "q" is not a valid queue name');
  });

  it('are cut past it, saying how long they were, in grpc-message and the exact-message trailer alike', async () => {
    const message = `queue: "${'x'.repeat(100_000)}" is not a valid queue name`;
    const refused = await refusedWith(message);
    expect(refused.code).toBe(Code.InvalidArgument);
    expect(refused.rawMessage).toBe(`${message.slice(0, MAX_STATUS_MESSAGE)}… (${message.length.toLocaleString('en-US')} characters, cut)`);
    expect(Buffer.from(refused.metadata.get('baton-message-bin')!, 'base64').toString('utf8')).toBe(refused.rawMessage);
  });
});
