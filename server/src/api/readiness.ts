// Readiness for HTTP probes (`GET /readyz`): can this broker serve a request right now?
// Liveness (`/healthz`) needs nothing of this: a process that answers HTTP is alive.

/** The answer a probe gets: ready, or not and why in a few words (no addresses, no error text). */
export type Readiness = { ready: true } | { ready: false; reason: string };

export interface ReadinessOptions {
  /** A cheap round trip to the database (`select 1`); rejects when it cannot be made. */
  ping: () => Promise<unknown>;
  /** True from the moment shutdown begins: a draining broker takes no new work. */
  draining: () => boolean;
  /**
   * How long one database answer stands. A load balancer probes every broker every few seconds,
   * several of them at once; with this, the database sees at most one ping per broker per period.
   */
  cacheMs?: number;
  /** A ping unanswered this long counts as a database away: a probe must not hang on it. */
  timeoutMs?: number;
  /** Milliseconds now; a parameter so that tests move time by hand. */
  now?: () => number;
  /** Told when the database's answer changes, with the failure (for the log, not for the probe). */
  onChange?: (readiness: Readiness, error?: unknown) => void;
}

export const READINESS_CACHE_MS = 1_000;
export const READINESS_TIMEOUT_MS = 2_000;

/**
 * Returns the readiness check. Draining is read on every call (it costs nothing and must show at
 * once); the database is pinged at most once per `cacheMs`, and probes that arrive while a ping is
 * under way share it instead of queueing more.
 */
export function createReadiness(options: ReadinessOptions): () => Promise<Readiness> {
  const { ping, draining, cacheMs = READINESS_CACHE_MS, timeoutMs = READINESS_TIMEOUT_MS, now = Date.now, onChange } = options;
  let last: { at: number; readiness: Readiness } | null = null;
  let inFlight: Promise<Readiness> | null = null;
  // A ping that timed out may still hold a pooled connection: no second one joins it until it settles.
  let unsettledPing: Promise<unknown> | null = null;

  async function checkDatabase(): Promise<Readiness> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    let readiness: Readiness;
    let failure: unknown;
    try {
      if (unsettledPing) throw new Error('the last ping has not come back yet');
      const pinged = ping();
      unsettledPing = pinged;
      void pinged.then(
        () => (unsettledPing = null),
        () => (unsettledPing = null),
      );
      await Promise.race([pinged, timedOut]);
      readiness = { ready: true };
    } catch (error) {
      failure = error;
      readiness = { ready: false, reason: 'database unreachable' };
    } finally {
      clearTimeout(timer);
    }
    // A first answer that is ready is the expected one and not news.
    if ((last?.readiness.ready ?? true) !== readiness.ready) onChange?.(readiness, failure);
    last = { at: now(), readiness };
    return readiness;
  }

  return async () => {
    if (draining()) return { ready: false, reason: 'shutting down' };
    if (last && now() - last.at < cacheMs) return last.readiness;
    inFlight ??= checkDatabase().finally(() => (inFlight = null));
    const readiness = await inFlight;
    return draining() ? { ready: false, reason: 'shutting down' } : readiness;
  };
}
