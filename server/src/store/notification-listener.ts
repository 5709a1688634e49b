import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { JobStatus } from '../domain/job-status.ts';
import type { Logger } from '../logger.ts';

/** What the job statements announce on `baton_job`: jobs of one queue that entered one status. */
export interface JobEvent {
  queue: string;
  status: JobStatus;
  ids: string[];
}

/** A cancel (or timeout) for the worker holding `token`, on whichever broker its stream lives. */
export interface CancelEvent {
  id: string;
  token: string;
  reason: string;
}

export interface NotificationEvents {
  job: [JobEvent];
  cancel: [CancelEvent];
  queue: [string];
  schedule: [number];
  /** A cron schedule was created, changed or deleted (its name): the leader re-reads them. */
  cron: [string];
  /** The LISTEN connection was re-established: notifications may have been missed meanwhile. */
  reconnected: [];
  /** The LISTEN connection is down. */
  disconnected: [Error];
}

const CHANNELS = ['baton_job', 'baton_cancel', 'baton_queue', 'baton_schedule', 'baton_cron'];

/**
 * Receives the database's notifications on a dedicated connection (LISTEN needs one that stays
 * open, which a pool does not promise) and re-establishes it with jittered backoff when it drops.
 */
export class NotificationListener extends EventEmitter<NotificationEvents> {
  readonly #url: string;
  readonly #logger: Logger;
  #client: pg.Client | null = null;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | null = null;
  #failures = 0;

  constructor(url: string, logger: Logger) {
    super();
    this.#url = url;
    this.#logger = logger;
  }

  /** Resolves once listening; rejects if the first connection fails. */
  async start(): Promise<void> {
    await this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => undefined);
  }

  get connected(): boolean {
    return this.#client !== null;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, keepAlive: true });
    client.on('notification', (message) => this.#dispatch(message.channel, message.payload ?? ''));
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('LISTEN connection ended')));
    await client.connect();
    await client.query(CHANNELS.map((channel) => `listen ${channel}`).join(';'));
    this.#client = client;
    this.#failures = 0;
  }

  #lost(client: pg.Client, error: Error): void {
    if (this.#client !== client || this.#stopped) return;
    this.#client = null;
    client.end().catch(() => undefined);
    this.#logger.warn('lost the LISTEN connection; reconnecting', { error });
    this.emit('disconnected', error);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopped) return;
    const delay = Math.min(5000, 100 * 2 ** this.#failures++) * (0.5 + Math.random() / 2);
    this.#retryTimer = setTimeout(() => {
      this.#connect().then(
        () => {
          this.#logger.info('LISTEN connection re-established');
          this.emit('reconnected');
        },
        () => this.#scheduleReconnect(),
      );
    }, delay);
  }

  #dispatch(channel: string, payload: string): void {
    try {
      if (channel === 'baton_job') {
        const event = JSON.parse(payload) as { q: string; s: JobStatus; ids: string[] };
        this.emit('job', { queue: event.q, status: event.s, ids: event.ids });
      } else if (channel === 'baton_cancel') {
        this.emit('cancel', JSON.parse(payload) as CancelEvent);
      } else if (channel === 'baton_queue') {
        this.emit('queue', payload);
      } else if (channel === 'baton_schedule') {
        this.emit('schedule', Number(payload));
      } else if (channel === 'baton_cron') {
        this.emit('cron', payload);
      }
    } catch (error) {
      this.#logger.error('could not handle a notification', { channel, error });
    }
  }
}
