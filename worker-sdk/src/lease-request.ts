// What the worker sends on a Lease stream, gathered into one message: results, progress, a due
// heartbeat and the credits its free slots allow (one message per tick, see worker.ts).

import { create } from '@bufbuild/protobuf';
import { HeartbeatSchema, type LeaseRequest, LeaseRequestSchema } from './gen/baton/v1/lease_pb.ts';
import type { HeldJobs } from './held-jobs.ts';
import type { Session } from './session.ts';

/**
 * Takes everything owed on `s` into one LeaseRequest, or null when nothing is: queued results
 * (then awaited as unacknowledged), progress, a due heartbeat naming the jobs still running, and
 * new credit when `mayGrant` (not while draining or closing).
 */
export function takeOwedRequest(s: Session, jobs: Pick<HeldJobs, 'sent' | 'runningTokens' | 'grantable'>, mayGrant: boolean): LeaseRequest | null {
  const msg = create(LeaseRequestSchema);
  let send = false;
  if (s.results.length > 0) {
    msg.results = s.results;
    s.results = [];
    send = true;
    for (const r of msg.results) {
      const reported = jobs.sent(r.leaseToken);
      if (reported) s.unacked.set(r.leaseToken, reported);
    }
  }
  if (s.progress.size > 0) {
    msg.progress = [...s.progress.values()];
    s.progress.clear();
    send = true;
  }
  if (s.heartbeatDue) {
    s.heartbeatDue = false;
    msg.heartbeat = create(HeartbeatSchema, { leaseTokens: jobs.runningTokens(s) });
    send = true;
  }
  if (mayGrant) {
    const grant = jobs.grantable(s);
    if (grant > 0) {
      msg.credits = grant;
      s.credit += grant;
      send = true;
    }
  }
  return send ? msg : null;
}
