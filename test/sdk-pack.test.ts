// The published shape of @baton/worker-sdk: `npm pack` must give a tarball of JavaScript and
// declarations that installs into a project outside this repository and imports on Node 20, the
// oldest Node the package claims (engines: >=20). No broker is needed.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const sdkDir = path.resolve(import.meta.dirname, '../worker-sdk');
/** System Node 20 when present (the floor we promise); otherwise whatever runs the tests. */
const oldNode = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const temps: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('worker-sdk package', () => {
  it('packs, installs outside the repo and imports on Node 20', { timeout: 120_000 }, async () => {
    const packDir = await tempDir('baton-sdk-pack-');
    await run(npm, ['pack', '--pack-destination', packDir, '--silent'], { cwd: sdkDir });
    // In the repository the manifest points at the TypeScript sources; packing swaps in the dist/
    // one for the tarball only (scripts/pack-manifest.ts) and must leave the source one in place.
    const manifest = JSON.parse(await readFile(path.join(sdkDir, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    expect(manifest.exports['.']).toBe('./src/index.ts');
    expect(existsSync(path.join(sdkDir, '.package.json.source'))).toBe(false);
    const tarballs = (await readdir(packDir)).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(1);
    const tarball = path.join(packDir, tarballs[0]!);

    const { stdout: listing } = await run('tar', ['-tzf', tarball]);
    const files = listing.split('\n');
    expect(files).toContain('package/dist/index.js');
    expect(files).toContain('package/dist/index.d.ts');
    expect(files).toContain('package/dist/gen/baton/v1/lease_pb.js');
    expect(files.some((f) => f.endsWith('.test.ts'))).toBe(false);
    const { stdout: packed } = await run('tar', ['-xzOf', tarball, 'package/package.json']);
    expect(JSON.parse(packed).exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });

    const project = await tempDir('baton-sdk-consumer-');
    expect(project.startsWith(path.resolve(import.meta.dirname, '..'))).toBe(false);
    await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run(npm, ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project });

    await writeFile(
      path.join(project, 'check.mjs'),
      `
import * as sdk from "@baton/worker-sdk";
import { JobSchema } from "@baton/worker-sdk/gen/job";
import { Health } from "@baton/worker-sdk/gen/grpc/health/v1/health";
const missing = ["Worker", "Client", "NonRetryableError", "RetryAfterError", "JobFailedError", "JobCancelledError", "BatonError"]
  .filter((name) => typeof sdk[name] !== "function");
if (missing.length > 0) throw new Error("missing exports: " + missing.join(", "));
if (JobSchema?.typeName !== "baton.v1.Job") throw new Error("gen subpath broken");
if (Health?.typeName !== "grpc.health.v1.Health") throw new Error("gen/grpc subpath broken");
// Constructing touches no network; closing an unstarted worker and an unused client is instant.
const worker = new sdk.Worker({ address: "127.0.0.1:1", handlers: { q: async () => null } });
await worker.close();
new sdk.Client({ address: ["127.0.0.1:1", "127.0.0.1:2"] }).close();
const err = new sdk.RetryAfterError(1500);
if (!(err instanceof Error) || err.retryAfterMs !== 1500) throw new Error("RetryAfterError broken");
console.log(JSON.stringify({ node: process.version, exports: Object.keys(sdk).sort() }));
`,
    );
    const { stdout } = await run(oldNode, ['check.mjs'], { cwd: project });
    const report = JSON.parse(stdout.trim()) as { node: string; exports: string[] };
    expect(report.exports).toEqual(expect.arrayContaining(['Worker', 'Client', 'NonRetryableError']));
    if (oldNode === '/usr/bin/node') expect(report.node).toMatch(/^v20\./);
  });
});
