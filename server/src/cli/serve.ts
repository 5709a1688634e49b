import { serve } from '../main.ts';
import { type Command, UsageError } from './command.ts';

/** `baton serve`: the broker itself, exactly as `npm start` runs it. */
export const serveCommand: Command = {
  summary: 'Run a broker (configured by BATON_* and DATABASE_URL, see README)',
  usage: 'baton serve',
  async run(args, io) {
    if (args.length > 0) throw new UsageError(`takes no arguments (configuration comes from the environment), got "${args.join(' ')}"`);
    return serve(io.env);
  },
};
