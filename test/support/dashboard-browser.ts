/**
 * A test file's dashboard in a real browser: Debian's Chromium, driven by playwright-core, on a page
 * of a broker of its own (on a database of its own), with an SDK client beside it. Errors the page
 * logs are collected for the tests to check, and screenshots are saved in a folder that outlives the
 * run (its path is printed), for people to look at.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { Client } from '@baton/worker-sdk';
import type { RunningBroker } from '../../server/src/broker.ts';
import { startTestBroker } from './broker.ts';
import { createTestDatabase } from './database.ts';

const CHROMIUM = '/usr/bin/chromium';

export interface Dashboard {
  db: Awaited<ReturnType<typeof createTestDatabase>>;
  broker: RunningBroker;
  client: Client;
  context: BrowserContext;
  page: Page;
  /** What the page logged as errors (uncaught exceptions and console errors), in order. */
  readonly pageErrors: string[];
  /** Saves a full-page screenshot of `page` as `<name>.png` and prints where. */
  screenshot(name: string): Promise<void>;
}

/** Registers the file's hooks; the returned object is filled in by the time its tests run. */
export function useDashboard(): Dashboard {
  let profile = '';
  let shots = '';
  const dashboard = {
    pageErrors: [] as string[],
    async screenshot(name: string) {
      const file = path.join(shots, `${name}.png`);
      await dashboard.page.screenshot({ path: file, fullPage: true });
      console.log(`dashboard screenshot: ${file}`);
    },
  } as Dashboard;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
    dashboard.db = await createTestDatabase();
    dashboard.broker = await startTestBroker(dashboard.db.url);
    dashboard.client = new Client({ address: `127.0.0.1:${dashboard.broker.port}` });
    profile = await mkdtemp(path.join(os.tmpdir(), 'baton-chromium-'));
    shots = await mkdtemp(path.join(os.tmpdir(), 'baton-dashboard-'));
    dashboard.context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1400, height: 900 },
    });
    dashboard.page = dashboard.context.pages()[0] ?? (await dashboard.context.newPage());
    dashboard.page.on('pageerror', (error) => dashboard.pageErrors.push(error.message));
    dashboard.page.on('console', (message) => {
      if (message.type() === 'error') dashboard.pageErrors.push(message.text());
    });
  });

  afterAll(async () => {
    await dashboard.context?.close();
    // The screenshots stay for review; only the browser profile is removed.
    if (profile) await rm(profile, { recursive: true, force: true });
    dashboard.client?.close();
    await dashboard.broker?.stop();
    await dashboard.db?.drop();
  });

  return dashboard;
}
