#!/usr/bin/env node
/**
 * `baton`: the command-line entry (`npx baton …`, `npm run baton -- …`). Each command lives in its
 * own file next to this one; add it to `commands` below, one line each.
 */
import { type Command, type CliIo, UsageError, processIo } from './command.ts';
import { keysCommand } from './keys.ts';
import { migrateCommand } from './migrate.ts';
import { serveCommand } from './serve.ts';
import { enqueueCommand } from './enqueue.ts';
import { jobsCommand } from './jobs.ts';
import { getCommand } from './get.ts';
import { cancelCommand } from './cancel.ts';
import { retryCommand } from './retry.ts';
import { statsCommand } from './stats.ts';
import { queuesCommand } from './queues.ts';
import { schedulesCommand } from './schedules.ts';

export const commands: Record<string, Command> = {
  serve: serveCommand,
  migrate: migrateCommand,
  keys: keysCommand,
  enqueue: enqueueCommand,
  jobs: jobsCommand,
  get: getCommand,
  cancel: cancelCommand,
  retry: retryCommand,
  stats: statsCommand,
  queues: queuesCommand,
  schedules: schedulesCommand,
};

function helpText(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`);
  return `Usage: baton COMMAND [options]\n\nCommands:\n${lines.join('\n')}\n  ${'help'.padEnd(width)}  Show this help, or a command's usage: baton help COMMAND\n`;
}

/** Runs one command line (without `node` and the script) and resolves to the exit code. */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic !== undefined) {
      if (!Object.hasOwn(commands, topic)) {
        io.stderr(`baton: unknown command "${topic}"\n\n${helpText()}`);
        return 2;
      }
      io.stdout(`${commands[topic].usage}\n`);
      return 0;
    }
    (name === undefined ? io.stderr : io.stdout)(helpText());
    return name === undefined ? 2 : 0;
  }
  if (!Object.hasOwn(commands, name)) {
    io.stderr(`baton: unknown command "${name}"\n\n${helpText()}`);
    return 2;
  }
  const command = commands[name];
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`baton ${name}: ${error.message}\n\nUsage: ${command.usage}\n`);
      return 2;
    }
    io.stderr(`baton ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

if (import.meta.main) {
  // Exits explicitly: an embedded PostgreSQL or a pool must not keep a finished command alive.
  process.exit(await runCli(process.argv.slice(2)));
}
