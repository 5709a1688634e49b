// What the worker waits on while it closes (every handler settled, the stream ended): each wait is
// a predicate re-checked whenever the worker's state changes, and bounded by a timeout.

/** Waits on predicates over state that changes; whoever changes it calls `notify()`. */
export class Conditions {
  readonly #waiters = new Set<() => void>();

  /** Resolves true once `predicate` holds, or with its value after `ms`. */
  waitFor(predicate: () => boolean, ms: number): Promise<boolean> {
    if (predicate()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (predicate()) done(true);
      };
      const done = (value: boolean): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => done(predicate()), ms);
      this.#waiters.add(check);
    });
  }

  /** The state changed: every waiting predicate is checked again. */
  notify(): void {
    for (const check of [...this.#waiters]) check();
  }
}
