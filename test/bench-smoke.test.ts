// The benchmark harness (bench/, `npm run bench`) in its smoke mode: every scenario against every
// system with a few hundred jobs. This checks that the harness works end to end — broker and worker
// processes, peers, the table — and never asserts a timing: the numbers of a smoke run mean nothing.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');

function runSmoke(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench/run.ts'), '--smoke'], {
      cwd: ROOT,
      // The harness starts its own PostgreSQL; the test run's DATABASE_URL is not its business.
      env: { ...process.env, DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run bench -- --smoke', () => {
  it('runs every scenario against every system and prints one table', { timeout: 240_000 }, async () => {
    const { code, stdout, stderr } = await runSmoke();
    expect(code, `bench exited with ${code}\n${stdout}\n${stderr.slice(-4000)}`).toBe(0);

    const lines = stdout.split('\n');
    const header = lines.find((l) => l.startsWith('| Scenario'));
    expect(header).toBeDefined();
    for (const column of ['Baton', 'graphile-worker', 'pg-boss', 'BullMQ', 'plain SQL', 'Baton/pg-boss']) {
      expect(header).toContain(column);
    }
    const rows = lines.filter((l) => /^\| [A-G]\. /.test(l));
    const byScenario = (letter: string) => rows.filter((r) => r.startsWith(`| ${letter}. `));
    // A: single calls (and Baton's one RPC each) and batches with 1 and 4 in flight, CPU per job of three parties for the first two.
    expect(byScenario('A')).toHaveLength(10);
    // B: the drain and its four parties' CPU per job; the drain over 4 processes and over 3 brokers (S).
    expect(byScenario('B')).toHaveLength(7);
    expect(byScenario('C')).toHaveLength(2);
    expect(byScenario('D')).toHaveLength(3);
    expect(byScenario('E')).toHaveLength(4);
    // F: enqueue, drain, GetQueueStats and /metrics with finished jobs kept.
    expect(byScenario('F')).toHaveLength(6);
    // G: tenant B's wait behind tenant A (p50, p99) and the drain over many fair keys.
    expect(byScenario('G')).toHaveLength(3);
    // Baton has a figure in every row (no "error", no "—").
    for (const row of rows) {
      const baton = row.split('|')[3]!.trim();
      expect(baton, row).toMatch(/^[\d,.]+$/);
    }
    expect(stdout).toMatch(/^CPU: /m);
    expect(stdout).toMatch(/PostgreSQL \d+/);
  });
});
