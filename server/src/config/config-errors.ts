/** The two ways the broker refuses to start: a bad setting, or a world it cannot start in. */

/** A setting that cannot work; the message names its environment variable and what it accepts. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * The broker cannot start for a reason outside its settings' values: a port already taken, a data
 * folder another broker holds, a database that refuses. The message says what to do; no stack.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}
