/**
 * Run before every test file (vitest.config.ts, setupFiles): once the file's own afterAll hooks
 * have run, it fails the file if the file left behind
 * - a child process still running (started through ./processes.ts, or any other child of this
 *   process: read from /proc), which is then killed so that it cannot disturb the next file;
 * - a connection still open on one of its databases (./database.ts checks as each is dropped);
 * - a socket, server, pipe or ref'd timer more than it had when it started, from
 *   process.getActiveResourcesInfo() (a client or pool never closed, a stream never ended).
 * Each kind is given a moment to go away first: a socket closing or a child exiting is not a leak.
 *
 * Vitest runs "after" hooks in reverse order of registration (sequence.hooks: 'stack'), so this
 * one, registered first, runs last.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { leakedConnections } from './database.ts';
import { runningChildren } from './processes.ts';

/** Resource kinds that only a leak leaves behind once a file is done. */
const WATCHED = ['TCPSocketWrap', 'TCPServerWrap', 'PipeWrap', 'PipeServerWrap', 'ProcessWrap', 'UDPWrap', 'Timeout', 'Http2Session'];
/** How long a socket may take to close, or a child to exit, after the file's cleanup. */
const GRACE_MS = 3000;

let baseline = new Map<string, number>();

beforeAll(() => {
  baseline = resourceCounts();
});

afterAll(async () => {
  const leaks = [...(await leakedChildren()), ...(await leakedConnections()), ...(await leakedResources())];
  if (leaks.length > 0) throw new Error(`this test file leaked:\n  - ${leaks.join('\n  - ')}`);
}, 30_000);

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) if (WATCHED.includes(kind)) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

async function leakedResources(): Promise<string[]> {
  const extra = () =>
    [...resourceCounts()].filter(([kind, count]) => count > (baseline.get(kind) ?? 0)).map(([kind, count]) => `${count - (baseline.get(kind) ?? 0)} × ${kind}`);
  const left = await waitFor(() => extra().length === 0);
  return left ? [] : [`handles still open: ${extra().join(', ')} (process.getActiveResourcesInfo())`];
}

/** Children of this process still alive (zombies, exited but not yet reaped, do not count). */
function livingChildren(): Map<number, string> {
  const found = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command's closing parenthesis: state, then the parent's pid.
      const [state, parent] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(parent) !== process.pid || state === 'Z') continue;
      const pid = Number(entry);
      const command = runningChildren().get(pid) ?? readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      found.set(pid, command);
    } catch {
      // The process ended while being read.
    }
  }
  return found;
}

async function leakedChildren(): Promise<string[]> {
  if (await waitFor(() => livingChildren().size === 0)) return [];
  const left = livingChildren();
  for (const pid of left.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  return [...left].map(([pid, command]) => `child process ${pid} still running (killed now): ${command}`);
}

/** Polls `done` until it holds or the grace runs out; false if it never held. */
async function waitFor(done: () => boolean): Promise<boolean> {
  const deadline = performance.now() + GRACE_MS;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50).unref());
  }
  return true;
}
