import { type Clock, realClock, type Timer } from './clock.ts';

/**
 * Group commit: many small writes that arrive together become one statement. The first write goes
 * out at once (no added latency when the broker is idle); while `maxInFlight` statements are
 * running, newcomers wait and then leave together in the next one. Fifty producers enqueueing one
 * job each cost a handful of INSERTs and commits instead of fifty.
 *
 * `run` receives the items of every waiting caller, concatenated, and must return one output per
 * item in the same order. If it fails, every caller of that group gets the error: a group shares a
 * transaction.
 *
 * With `lingerMs`, a write that would go out alone waits that long for company first: for writes
 * nobody waits on closely (heartbeats), that turns a steady trickle into a few statements a second.
 * The linger's timer comes from `clock` (the real one unless a test moves time itself).
 */
export function createGroupCommit<I, O>(
  run: (items: I[]) => Promise<O[]>,
  options: { maxInFlight: number; maxItems: number; lingerMs?: number; clock?: Clock },
): (items: I[]) => Promise<O[]> {
  const clock = options.clock ?? realClock;
  interface Waiter {
    items: I[];
    resolve: (outputs: O[]) => void;
    reject: (error: unknown) => void;
  }
  const waiting: Waiter[] = [];
  let inFlight = 0;
  let lingering: Timer | null = null;

  const flush = () => {
    if (waiting.length === 0 || inFlight >= options.maxInFlight || lingering) return;
    const group: Waiter[] = [];
    let count = 0;
    while (waiting.length > 0 && (group.length === 0 || count + waiting[0].items.length <= options.maxItems)) {
      const next = waiting.shift()!;
      group.push(next);
      count += next.items.length;
    }
    inFlight++;
    // The next group leaves before this one's callers resume, so the pipeline never idles on them.
    const done = () => {
      inFlight--;
      flush();
    };
    run(group.flatMap((w) => w.items)).then(
      (outputs) => {
        done();
        let offset = 0;
        for (const waiter of group) {
          waiter.resolve(outputs.slice(offset, offset + waiter.items.length));
          offset += waiter.items.length;
        }
      },
      (error) => {
        done();
        for (const waiter of group) waiter.reject(error);
      },
    );
    flush();
  };

  return (items) =>
    new Promise<O[]>((resolve, reject) => {
      waiting.push({ items, resolve, reject });
      if (options.lingerMs && waiting.length === 1 && inFlight === 0 && !lingering) {
        lingering = clock.setTimer(() => {
          lingering = null;
          flush();
        }, options.lingerMs);
        return;
      }
      flush();
    });
}
