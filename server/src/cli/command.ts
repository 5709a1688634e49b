/**
 * The shape every `baton` subcommand has. Each command lives in its own file under server/src/cli/
 * and is listed once in the registry in index.ts.
 */
export interface Command {
  /** One line for `baton help`. */
  summary: string;
  /** Usage text shown by `baton help NAME` and after a usage error, e.g. "baton keys list". */
  usage: string;
  /**
   * Runs the command with the arguments after its name. Resolves to the exit code: 0 ok, 1 failure.
   * Throws `UsageError` for bad arguments (exit code 2, usage shown). Never calls `process.exit`,
   * except long-running commands (serve) which own the process.
   */
  run(args: string[], io: CliIo): Promise<number>;
}

/** Where a command writes and what it reads: the real process by default, replaceable in tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

/** Bad arguments: the CLI prints the message and the command's usage, and exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The process's own streams and environment. */
export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
  };
}
