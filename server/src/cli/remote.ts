/**
 * What the commands that talk to a running broker share: the connection options (`--address`,
 * BATON_ADDRESS, BATON_TOKEN, `--tls`), argument parsing, and one translation of RPC errors into
 * exit codes and messages that say what to do.
 *
 * Exit codes: 0 done; 1 the broker said no (not found, wrong status, refused credentials); 2 usage
 * (bad arguments or input the broker rejected as invalid); 3 no broker answered (unavailable,
 * deadline exceeded) — the one worth retrying.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BatonError, Client, type ClientOptions } from '@baton/worker-sdk';
import { type CliIo, type Command, UsageError } from './command.ts';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNAVAILABLE = 3;

export const DEFAULT_ADDRESS = 'localhost:7700';

/** The lines every remote command's usage ends with. */
export const CONNECTION_HELP = `Connection: --address HOST:PORT (default $BATON_ADDRESS or ${DEFAULT_ADDRESS}); the API key in
$BATON_TOKEN; --tls (or BATON_TLS=1) for a TLS broker, with BATON_TLS_CA=FILE for a private CA.
Exit codes: 0 ok, 1 failed or not found, 2 usage, 3 no broker reachable.`;

type Options = NonNullable<ParseArgsConfig['options']>;

const COMMON = {
  address: { type: 'string' },
  tls: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/** parseArgs with the connection options added, and its errors as usage errors. */
export function parse<T extends Options>(args: string[], options: T, positionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: positionals > 0, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  if (!(parsed.values as { help?: boolean }).help && parsed.positionals.length > positionals) {
    throw new UsageError(`unexpected argument "${parsed.positionals[positionals]}"`);
  }
  return parsed;
}

/** Where the broker is and how to reach it, from the flags and the environment. */
export function clientOptions(values: { address?: string; tls?: boolean }, env: NodeJS.ProcessEnv): ClientOptions & { address: string } {
  const address = values.address ?? env.BATON_ADDRESS ?? DEFAULT_ADDRESS;
  const tlsWanted = values.tls || env.BATON_TLS === '1' || env.BATON_TLS === 'true' || Boolean(env.BATON_TLS_CA);
  let tls: ClientOptions['tls'] = false;
  if (tlsWanted) {
    if (env.BATON_TLS_CA) {
      try {
        tls = { ca: readFileSync(env.BATON_TLS_CA) };
      } catch (error) {
        throw new UsageError(`cannot read BATON_TLS_CA ${env.BATON_TLS_CA}: ${(error as NodeJS.ErrnoException).code ?? error}`);
      }
    } else {
      tls = true;
    }
  }
  return {
    address,
    token: env.BATON_TOKEN || undefined,
    tls,
    // One attempt, then an answer: a CLI should say "unreachable" at once, not retry for minutes.
    channelOptions: { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1000 },
  };
}

/**
 * Runs `work` with a Client for the broker, closes it, and turns RPC errors into an exit code and a
 * message on stderr that says what to do next.
 */
export async function withClient(
  name: string,
  values: { address?: string; tls?: boolean },
  io: CliIo,
  work: (client: Client) => Promise<number>,
): Promise<number> {
  const options = clientOptions(values, io.env);
  const client = new Client(options);
  try {
    return await work(client);
  } catch (error) {
    if (!(error instanceof BatonError)) throw error;
    const { code, message } = describeError(error, options.address);
    io.stderr(`baton ${name}: ${message}\n`);
    return code;
  } finally {
    client.close();
  }
}

/** An RPC error as an exit code and an actionable message. */
export function describeError(error: BatonError, address: string): { code: number; message: string } {
  const detail = error.message.replace(/^[A-Z_]+: /, '');
  switch (error.code) {
    case 'UNAVAILABLE':
    case 'DEADLINE_EXCEEDED': {
      // grpc-js nests its reasons ("round_robin: No connection established. Last error: Error: connect
      // ECONNREFUSED …. Resolution note: "): the innermost one is the one a person can act on.
      const inner = /.*Error: (.*?)\.?(?: Resolution note:.*)?$/s.exec(detail)?.[1] ?? detail;
      return {
        code: EXIT_UNAVAILABLE,
        message:
          `no broker answered at ${address} (${inner}). Is it running? Start one with "baton serve" (or "npm start"), ` +
          'or point --address or BATON_ADDRESS at it.',
      };
    }
    case 'UNAUTHENTICATED':
      return {
        code: EXIT_FAILURE,
        message: `the broker refused the credentials: ${detail}. Set BATON_TOKEN to an API key (create one with "baton keys create --scope admin").`,
      };
    case 'PERMISSION_DENIED':
      return { code: EXIT_FAILURE, message: `${detail}. Set BATON_TOKEN to a key with that scope.` };
    case 'INVALID_ARGUMENT':
    case 'OUT_OF_RANGE':
      return { code: EXIT_USAGE, message: detail };
    default:
      return { code: EXIT_FAILURE, message: `${error.code === 'UNKNOWN' ? '' : `${error.code}: `}${detail}` };
  }
}

/** Prints the usage when `--help` was given; true when it was. */
export function helpShown(values: { help?: boolean }, command: Pick<Command, 'usage'>, io: CliIo): boolean {
  if (!values.help) return false;
  io.stdout(`Usage: ${command.usage}\n`);
  return true;
}

/** A whole number within bounds, or a usage error naming the flag. */
export function intOption(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

/** A job id as the broker issues them (digits), or a usage error. */
export function jobId(value: string | undefined): string {
  if (value === undefined) throw new UsageError('give the job id, e.g. 42 (ids are printed by "baton enqueue" and "baton jobs")');
  if (!/^[1-9][0-9]{0,18}$/.test(value)) throw new UsageError(`"${value}" is not a job id: ids are whole numbers, e.g. 42`);
  return value;
}
