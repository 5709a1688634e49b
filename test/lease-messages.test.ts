/**
 * The Lease stream's wire conversion (server/src/api/lease-messages.ts) and the status each
 * BrokerError kind becomes (server/src/api/error-boundary.ts), without a server.
 */
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { LeaseRequestSchema } from '@baton/worker-sdk/gen/lease';
import { describe, expect, it } from 'vitest';
import { toConnectError } from '../server/src/api/error-boundary.ts';
import { byteBoundedBatches, fromLeaseRequest, toLeaseResponses } from '../server/src/api/lease-messages.ts';
import { BrokerError, type ErrorKind } from '../server/src/domain/errors.ts';
import type { Assignment } from '../server/src/domain/job.ts';
import { assignment } from './support/assignments.ts';

const job = (id: string, payloadBytes: number): Assignment => assignment(id, { payloadJson: 'x'.repeat(payloadBytes), labelsJson: '{"k":"v"}' });

describe('from the wire', () => {
  it('keeps a heartbeat with no tokens apart from no heartbeat, and turns retry_after into ms', () => {
    const message = fromLeaseRequest(
      create(LeaseRequestSchema, {
        credits: 2,
        heartbeat: { leaseTokens: [] },
        results: [
          { jobId: '1', leaseToken: '10', failure: { message: 'no', retryAfter: { seconds: 2n, nanos: 500_000_000 } } },
          { jobId: '2', leaseToken: '20' },
        ],
      }),
    );
    expect(message.hello).toBeUndefined();
    expect(message.heartbeat).toEqual([]);
    expect(message.results.map((r) => r.failure?.retryAfterMs ?? null)).toEqual([2500, null]);
    expect(fromLeaseRequest(create(LeaseRequestSchema, { credits: 1 })).heartbeat).toBeUndefined();
  });
});

describe('to the wire', () => {
  it('splits assignments so that each message stays under 3 MiB, a larger job going alone', () => {
    const mib = 1024 * 1024;
    const batches = byteBoundedBatches([job('1', mib), job('2', mib), job('3', mib), job('4', 4 * mib), job('5', 10)]);
    expect(batches.map((batch) => batch.map((j) => j.id))).toEqual([['1', '2'], ['3'], ['4'], ['5']]);
    expect(toLeaseResponses({ type: 'jobs', jobs: [job('1', 10), job('2', 10)] }).map((m) => m.jobs.map((j) => j.jobId))).toEqual([['1', '2']]);
  });

  it('answers acks with accepted and the refusal as error', () => {
    const [message] = toLeaseResponses({
      type: 'acks',
      acks: [
        { jobId: '1', leaseToken: '10', refusal: null },
        { jobId: '2', leaseToken: '20', refusal: 'stale' },
      ],
    });
    expect(message.acks.map(({ jobId, accepted, error }) => ({ jobId, accepted, error }))).toEqual([
      { jobId: '1', accepted: true, error: '' },
      { jobId: '2', accepted: false, error: 'stale' },
    ]);
  });
});

describe('statuses', () => {
  it.each<[ErrorKind, Code]>([
    ['invalid-argument', Code.InvalidArgument],
    ['not-found', Code.NotFound],
    ['failed-precondition', Code.FailedPrecondition],
    ['resource-exhausted', Code.ResourceExhausted],
    ['unavailable', Code.Unavailable],
  ])('a %s BrokerError becomes its status with the same message', (kind, code) => {
    const converted = toConnectError(new BrokerError(kind, 'what to fix'));
    expect(converted.code).toBe(code);
    expect(converted.rawMessage).toBe('what to fix');
  });

  it('makes a message cut inside a surrogate pair well-formed, passes ConnectErrors through, and hides anything else', () => {
    expect(toConnectError(new BrokerError('invalid-argument', 'queue "\ud83d"')).rawMessage).toBe('queue "\ufffd"');
    const connectError = new ConnectError('as it is', Code.PermissionDenied);
    expect(toConnectError(connectError)).toBe(connectError);
    expect(toConnectError(new Error('secret detail'))).toMatchObject({ code: Code.Internal, rawMessage: 'internal error; see the broker log' });
  });
});
