import { create } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import { type Broker, WatchResponseSchema } from '@baton/worker-sdk/gen/broker';
import type { WatchHub } from '../core/watch-hub.ts';
import { invalidArgument } from '../domain/errors.ts';
import { checkJobId, checkQueueName } from './request-checks.ts';
import { statusToWire, toWireJob } from './job-wire.ts';

/** `Watch`: one job's changes until it is finished, or every status change of a queue's jobs, as messages. */
export function createWatchService(hub: WatchHub): Pick<ServiceImpl<typeof Broker>, 'watch'> {
  return {
    async *watch(request, context) {
      if (Boolean(request.id) === Boolean(request.queue)) throw invalidArgument('give exactly one of id or queue');
      // Checked before the hub registers anything: refused calls must leave no listener behind.
      const queue = request.queue ? checkQueueName(request.queue) : '';
      if (queue) {
        for await (const change of hub.followQueue(queue, context.signal)) {
          yield create(WatchResponseSchema, { job: { id: change.id, queue, status: statusToWire(change.status) } });
        }
        return;
      }
      for await (const job of hub.followJob(checkJobId(request.id), context.signal)) {
        yield create(WatchResponseSchema, { job: toWireJob(job) });
      }
    },
  };
}
