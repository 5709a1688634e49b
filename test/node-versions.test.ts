// What the README's Quick start says about Node, checked with the system Node 20 first on PATH as a
// new user would have it: `npm install` prints no engine warnings and ends with one note; the
// project's scripts, `npx node` and `npx baton` run on the project's Node 24; a bare `node FILE.ts`
// on Node 20 fails, which is why the note and the README say `npx node FILE`.
// Skipped where /usr/bin/node is not Node 20 (the suite then has no older Node to try).

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
const node20 = '/usr/bin/node';
const hasNode20 = existsSync(node20) && (await run(node20, ['--version'])).stdout.startsWith('v20.');
/** A shell of a user whose `node` is 20: no node_modules/.bin of ours, /usr/bin first. */
const PATH = ['/usr/bin', ...(process.env.PATH ?? '').split(path.delimiter).filter((dir) => !dir.includes('node_modules'))].join(path.delimiter);
/** The environment of that shell: without the npm_config_* of the npx that started the tests (npm reads its user agent, which names the Node running npm, from there). */
const env = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('npm_'))), PATH };

async function failure(call: Promise<unknown>): Promise<{ code: number; stderr: string }> {
  return call.then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );
}

describe.skipIf(!hasNode20)('on Node 20', () => {
  it('npm install resolves with no EBADENGINE warnings', { timeout: 120_000 }, async () => {
    // --dry-run builds the same tree and runs the same engine checks, and writes nothing.
    const { stdout, stderr } = await run('npm', ['install', '--dry-run', '--no-audit', '--no-fund'], { cwd: ROOT, env, maxBuffer: 16 << 20 });
    expect(`${stdout}${stderr}`).not.toContain('EBADENGINE');
    // ... while there are such packages to warn about: the silence is .npmrc's, not luck.
    const loud = await run('npm', ['install', '--dry-run', '--no-audit', '--no-fund', '--loglevel', 'warn'], { cwd: ROOT, env, maxBuffer: 16 << 20 });
    expect(loud.stderr).toContain('EBADENGINE');
  });

  it('the install ends with one note saying what to run', async () => {
    const { stdout } = await run('npm', ['run', '--silent', 'postinstall'], { cwd: ROOT, env });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^Baton runs on Node 24; your node is v20\.\d+\.\d+\./);
    expect(stdout).toContain('"npx node FILE" (npx node server/src/main.ts), not "node FILE"');
  });

  it('says nothing when npm itself runs on Node 24', async () => {
    const { stdout } = await run('npm', ['run', '--silent', 'postinstall'], {
      cwd: ROOT,
      env: { ...env, PATH: [path.dirname(process.execPath), PATH].join(path.delimiter) },
    });
    expect(stdout).toBe('');
  });

  it('npx node and npx baton run on Node 24; a bare node on a .ts file does not', async () => {
    expect((await run('npx', ['node', '--version'], { cwd: ROOT, env })).stdout).toMatch(/^v24\./);
    const help = await run('npx', ['baton', '--help'], { cwd: ROOT, env });
    expect(help.stdout).toMatch(/^Usage: baton COMMAND/);
    const bare = await failure(run(node20, ['server/src/cli/index.ts', '--help'], { cwd: ROOT, env }));
    expect(bare.code).not.toBe(0);
    expect(bare.stderr).toContain('ERR_UNKNOWN_FILE_EXTENSION');
  });
});
