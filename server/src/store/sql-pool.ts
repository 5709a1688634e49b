import pg from 'pg';
import type { Logger } from '../logger.ts';

/** A hot-path statement: prepared once per connection under its name, then only bound and run. */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

/**
 * Names a statement written with `?` placeholders and numbers them `$1`, `$2`, … in order. The
 * statements are written with `?` so that they read like the ORM's raw SQL; none of them uses a
 * jsonb `?` operator.
 */
export function statement(name: string, text: string): Statement {
  let n = 0;
  return { name, text: text.replace(/\?/g, () => `$${++n}`) };
}

export type Row = Record<string, any>;

/**
 * The connections the hot path runs on: plain `pg` with real bind parameters and named prepared
 * statements. MikroORM's `execute()` inlines parameters into the SQL text, so PostgreSQL parses
 * and plans every claim and every completion afresh (half a millisecond per 50-job claim, measured);
 * a prepared statement is planned once per connection and then, once its generic plan proves as
 * good, not at all.
 */
export class SqlPool {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;

  constructor(options: { url: string; size: number; logger: Logger }) {
    this.#pool = new pg.Pool({ connectionString: options.url, max: options.size, keepAlive: true });
    this.#logger = options.logger;
    // An idle connection that the server drops must not take the broker down; the pool replaces it.
    const onError = (error: Error) => options.logger.warn('database connection error', { error });
    this.#pool.on('error', onError);
  }

  async run(query: Statement, values: unknown[]): Promise<Row[]> {
    return (await this.#pool.query({ name: query.name, text: query.text, values })).rows;
  }

  /** Runs `work` in one transaction on one connection; rolls back if it throws. */
  async transaction<T>(work: (run: (query: Statement, values: unknown[]) => Promise<Row[]>) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    // pg-pool takes its own error listener off a client while it is checked out: a server that dies
    // mid-transaction would then raise an unhandled 'error' event and end the process. The query
    // under way fails on its own; this only keeps the event handled and the connection discarded.
    const onError = (error: Error) => {
      broken = error;
      this.#logger.warn('database connection lost during a transaction', { error });
    };
    client.on('error', onError);
    try {
      await client.query('begin');
      const result = await work(async (query, values) => (await client.query({ name: query.name, text: query.text, values })).rows);
      await client.query('commit');
      return result;
    } catch (error) {
      await client.query('rollback').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      client.off('error', onError);
      // A connection that failed, or whose rollback failed, is in an unknown state: destroyed, not reused.
      client.release(broken);
    }
  }

  /** Connections open (`total`, of at most `max`), idle among them, and callers waiting for one: for the pool gauges. */
  stats(): { total: number; idle: number; waiting: number; max: number } {
    const pool = this.#pool;
    return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max };
  }

  async end(): Promise<void> {
    await this.#pool.end();
  }
}
