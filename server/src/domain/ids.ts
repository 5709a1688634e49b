/**
 * Job ids and lease tokens travel as decimal strings but are PostgreSQL bigints: text that is not
 * one (19 digits can exceed 2^63-1) must be refused before it reaches a statement, where it would
 * fail the statement rather than match nothing.
 */
const DIGITS = /^[1-9][0-9]{0,18}$/;
const MAX_BIGINT = 9223372036854775807n;

export function isBigintText(text: string): boolean {
  return DIGITS.test(text) && BigInt(text) <= MAX_BIGINT;
}
