import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { StartupError } from '../config.ts';

/**
 * Who uses an embedded PostgreSQL's data folder. Written beside the folder (initdb wants the folder
 * itself empty) as `<folder>.lock`, so that a second broker on the same folder can tell a live owner
 * (refuse, touch nothing) from one that died (its PostgreSQL may be stopped and started again).
 */
interface Owner {
  pid: number;
  /** The process's start time (Linux /proc), so that a pid reused after a reboot is not taken for the owner. */
  started: string | null;
  /** For the refusal message, e.g. "the broker at http://127.0.0.1:7700". */
  what: string;
  /** Which claim of the process: a process may claim the folder again, and only the latest claim's release counts. */
  token: string;
}

/** This process's hold on a data folder; released when its PostgreSQL has stopped. */
export interface DataDirClaim {
  readonly dataDir: string;
  /** Rewrites what the refusal message says about this owner (once the broker knows its URL). */
  describe(what: string): void;
  release(): void;
}

/**
 * How to reach the embedded PostgreSQL on `port`: the credentials it is initialised with, written
 * once for the broker that starts it and for the CLI that finds it already running.
 */
export const EMBEDDED_CREDENTIALS = { user: 'baton', password: 'baton' } as const;

export function embeddedDatabaseUrl(port: number): string {
  return `postgres://${EMBEDDED_CREDENTIALS.user}:${EMBEDDED_CREDENTIALS.password}@127.0.0.1:${port}/postgres`;
}

export function lockFileOf(dataDir: string): string {
  return `${dataDir}.lock`;
}

/**
 * Claims `dataDir` for this process, or throws a StartupError naming the live process that holds
 * it. A lock left by a process that is gone is taken over, and so is one of this process's own (a
 * test that killed its server and starts it again): the lock keeps other processes out.
 */
export function claimDataDir(dataDir: string, what: string): DataDirClaim {
  const file = lockFileOf(dataDir);
  // The lock sits beside the data folder, whose parent a first start has not made yet (a fresh
  // clone has no ./.baton).
  try {
    mkdirSync(path.dirname(dataDir), { recursive: true });
  } catch (error) {
    throw new StartupError(`cannot create the folder ${path.dirname(dataDir)} for the data folder (BATON_DATA_DIR): ${(error as Error).message}`);
  }
  const me: Owner = { pid: process.pid, started: startTimeOf(process.pid), what, token: randomBytes(6).toString('hex') };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StartupError(`cannot create the lock file ${file} beside the data folder (BATON_DATA_DIR): ${(error as Error).message}`);
      }
    }
    const owner = readOwner(file);
    if (owner && owner.pid !== process.pid && isOwnerAlive(owner)) {
      throw new StartupError(
        `the data folder ${dataDir} is in use by ${owner.what} (pid ${owner.pid}): stop that one first, or set BATON_DATA_DIR to another folder`,
      );
    }
    // A lock being written this instant reads as garbage; only a second look that still fails to
    // name a live owner makes it stale.
    if (!owner && attempt < 2) {
      sleepSync(50);
      continue;
    }
    if (attempt >= 5)
      throw new StartupError(`cannot claim the data folder ${dataDir}: its lock file ${file} keeps changing; is another broker starting on it?`);
    try {
      unlinkSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    unreleased.delete(release);
    // Only this claim's lock: never one a later claim wrote after this one was taken over.
    if (readOwner(file)?.token === me.token) {
      try {
        unlinkSync(file);
      } catch {
        // Gone already: nothing to release.
      }
    }
  };
  // A crash still frees the folder; SIGKILL leaves the lock, which the next start finds stale.
  if (!exitHooked) process.on('exit', releaseAll);
  exitHooked = true;
  unreleased.add(release);
  return {
    dataDir,
    describe(text) {
      if (released) return;
      me.what = text;
      writeFileSync(file, JSON.stringify(me) + '\n');
    },
    release,
  };
}

/** The release of every claim this process still holds, for its exit. */
const unreleased = new Set<() => void>();
let exitHooked = false;

function releaseAll(): void {
  for (const release of [...unreleased]) release();
}

function readOwner(file: string): Owner | null {
  try {
    const owner = JSON.parse(readFileSync(file, 'utf8')) as Owner;
    return Number.isInteger(owner.pid) && owner.pid > 0 ? owner : null;
  } catch {
    return null;
  }
}

function isOwnerAlive(owner: Owner): boolean {
  if (!isAlive(owner.pid)) return false;
  const started = startTimeOf(owner.pid);
  return owner.started === null || started === null || started === owner.started;
}

/** True when a process with this pid exists, whoever's it is (EPERM: alive, another user's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 of /proc/PID/stat (clock ticks since boot), or null where there is no /proc. */
function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * The PostgreSQL running on `dataDir`, from its postmaster.pid (pid on the first line, port on the
 * fourth), or null when none is.
 */
export function runningPostmaster(dataDir: string): { pid: number; port: number } | null {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  let lines: string[];
  try {
    lines = readFileSync(pidFile, 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
  return { pid, port: Number.isInteger(port) && port > 0 ? port : 0 };
}
