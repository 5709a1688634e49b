import { ConfigError } from '../config.ts';
import { MIGRATIONS } from '../store/orm.ts';
import { type Command, UsageError } from './command.ts';
import { openCliDatabase } from './database.ts';

/** `baton migrate`: brings the schema up to date and exits (brokers also do this when they start). */
export const migrateCommand: Command = {
  summary: 'Apply pending database migrations to DATABASE_URL (or the embedded database) and exit',
  usage: 'baton migrate',
  async run(args, io) {
    if (args.length > 0) throw new UsageError(`takes no arguments, got "${args.join(' ')}"`);
    let db;
    try {
      db = await openCliDatabase(io.env, 'baton migrate');
    } catch (error) {
      // As `baton serve` and `npm start` say it, with the exit code of a usage error.
      if (!(error instanceof ConfigError)) throw error;
      io.stderr(`baton migrate: configuration error: ${error.message}\n`);
      return 2;
    }
    try {
      for (const name of db.applied) io.stdout(`applied ${name}\n`);
      io.stdout(`${db.description}: schema up to date (${MIGRATIONS.length} migrations, ${db.applied.length} applied now)\n`);
      return 0;
    } finally {
      await db.close();
    }
  },
};
