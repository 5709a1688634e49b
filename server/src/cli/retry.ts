import type { Command } from './command.ts';
import { json } from './format.ts';
import { CONNECTION_HELP, EXIT_OK, helpShown, jobId, parse, withClient } from './remote.ts';

const USAGE = `baton retry ID [--json]

Puts a FAILED (dead-lettered) or CANCELLED job back to PENDING with a fresh set of attempts; its
error history stays. Other jobs cannot be retried (exit code 1).

${CONNECTION_HELP}`;

/** `baton retry ID`. */
export const retryCommand: Command = {
  summary: 'Run a failed or cancelled job again',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parse(args, { json: { type: 'boolean' } }, 1);
    if (helpShown(values, retryCommand, io)) return EXIT_OK;
    const id = jobId(positionals[0]);
    return withClient('retry', values, io, async (client) => {
      const job = await client.retry(id);
      io.stdout(values.json ? json(job) : `job ${job.id} is PENDING again (up to ${job.maxAttempts} attempts)\n`);
      return EXIT_OK;
    });
  },
};
