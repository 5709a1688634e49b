import type { Command } from './command.ts';
import { json } from './format.ts';
import { CONNECTION_HELP, EXIT_OK, helpShown, jobId, parse, withClient } from './remote.ts';

const USAGE = `baton cancel ID [--json]

A PENDING or SCHEDULED job becomes CANCELLED at once. For a RUNNING job the worker holding it is
told to stop (its handler's AbortSignal fires) and the job becomes CANCELLED when it does; follow it
with "baton get ID". Finished jobs cannot be cancelled (exit code 1).

${CONNECTION_HELP}`;

/** `baton cancel ID`. */
export const cancelCommand: Command = {
  summary: 'Cancel a job (a running one: its worker is told to stop)',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parse(args, { json: { type: 'boolean' } }, 1);
    if (helpShown(values, cancelCommand, io)) return EXIT_OK;
    const id = jobId(positionals[0]);
    return withClient('cancel', values, io, async (client) => {
      const job = await client.cancel(id);
      if (values.json) io.stdout(json(job));
      else if (job.status === 'cancelled') io.stdout(`job ${job.id} cancelled\n`);
      else io.stdout(`job ${job.id} is running: its worker has been told to stop, and it becomes CANCELLED when it does\n`);
      return EXIT_OK;
    });
  },
};
