/**
 * The clock of the statements that take `now` (River's nullable now): the caller's time when given,
 * the database's otherwise. A statement starts with `with ${CLOCK}` (its first parameter, null for
 * the database's clock) and reads the time as `${NOW}`; tests move time by passing it, never by
 * sleeping.
 */
export const CLOCK = `clock as (select coalesce(?::timestamptz, now()) as now)`;

/** The statement's time, once `CLOCK` is among its CTEs (evaluated once per statement, like now()). */
export const NOW = `(select now from clock)`;
