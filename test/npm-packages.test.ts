// The published shapes of @baton/worker-sdk and @baton/server: `npm pack` must give tarballs of
// JavaScript and declarations that install into a project outside this repository, where the SDK
// runs its README's producer example on Node 20 (the oldest Node it claims) and on Node 24, and the
// `baton` command the server package installs answers from any folder against a real broker.
// Both packages are packed once, here, and in a copy of the workspace: a pack swaps each package's
// package.json for the published one while it runs (scripts/pack-manifest.ts), and a test file
// running beside this one that resolved `@baton/worker-sdk` in that window got dist/ for one import
// and src/ for another (two JobCancelledError classes; CI met it in test/sdk-prefetch.test.ts).

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '@baton/worker-sdk';
import type { RunningBroker } from '../server/src/broker.ts';
import { startTestBroker } from './support/broker.ts';
import { createTestDatabase } from './support/database.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
/** System Node 20 when present (the floor the SDK promises); otherwise whatever runs the tests. */
const node20 = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;
/** The Node running the tests: 24, the project's own (the `node` dev dependency). */
const node24 = process.execPath;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const temps: string[] = [];

/** PATH with `nodeBinary`'s folder first, so that `#!/usr/bin/env node` scripts run on it. */
function pathWith(nodeBinary: string): string {
  return [path.dirname(nodeBinary), process.env.PATH].join(path.delimiter);
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  expect(dir.startsWith(ROOT)).toBe(false);
  temps.push(dir);
  return dir;
}

/**
 * A copy of what `npm pack` reads at the root (the workspace manifest, the shared tsconfig and both
 * packages without their build output), with the repository's node_modules linked in: the packs'
 * builds resolve the same dependencies, and the repository's own files never change under the tests.
 */
async function stageWorkspace(): Promise<string> {
  const stage = await tempDir('baton-stage-');
  for (const file of ['package.json', 'tsconfig.json']) await cp(path.join(ROOT, file), path.join(stage, file));
  const built = /(^|[\\/])(node_modules|dist|\.package\.json\.source)$/;
  for (const workspace of ['worker-sdk', 'server']) {
    await cp(path.join(ROOT, workspace), path.join(stage, workspace), { recursive: true, filter: (source) => !built.test(source) });
  }
  await symlink(path.join(ROOT, 'node_modules'), path.join(stage, 'node_modules'), 'dir');
  return stage;
}

/**
 * Packs both workspace packages of `stage` into `destination` with the README's command, run at its
 * root, and returns the SDK's and the server's tarballs.
 */
async function packBoth(stage: string, destination: string): Promise<[sdk: string, server: string]> {
  await run(npm, ['pack', '--workspace', 'worker-sdk', '--workspace', 'server', '--pack-destination', destination, '--silent'], {
    cwd: stage,
    maxBuffer: 16 << 20,
  });
  expect((await readdir(destination)).sort()).toEqual(['baton-server-0.1.0.tgz', 'baton-worker-sdk-0.1.0.tgz']);
  return [path.join(destination, 'baton-worker-sdk-0.1.0.tgz'), path.join(destination, 'baton-server-0.1.0.tgz')];
}

async function listing(tarball: string): Promise<string[]> {
  return (await run('tar', ['-tzf', tarball], { maxBuffer: 16 << 20 })).stdout.split('\n');
}

async function packedManifest(tarball: string): Promise<Record<string, unknown>> {
  return JSON.parse((await run('tar', ['-xzOf', tarball, 'package/package.json'])).stdout) as Record<string, unknown>;
}

/** A fenced block of a README: the first one whose text contains `marker`. */
async function readmeBlock(file: string, language: string, marker: string): Promise<string> {
  const text = await readFile(path.join(ROOT, file), 'utf8');
  const blocks = [...text.matchAll(new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!);
  const block = blocks.find((b) => b.includes(marker));
  if (block === undefined) throw new Error(`${file} has no ${language} block with ${marker}`);
  return block;
}

/** The copy of the workspace that was packed. */
let stage: string;
let sdkTarball: string;
let serverTarball: string;
/** A project outside the repository with both tarballs installed, as a user would. */
let project: string;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
let worker: Worker;

beforeAll(async () => {
  const packDir = await tempDir('baton-pack-');
  stage = await stageWorkspace();
  [sdkTarball, serverTarball] = await packBoth(stage, packDir);
  project = await tempDir('baton-consumer-');
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // The server's dependency on @baton/worker-sdk 0.1.0 is met by the SDK's tarball installed beside it.
  await run(npm, ['install', sdkTarball, serverTarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project, maxBuffer: 16 << 20 });

  db = await createTestDatabase();
  broker = await startTestBroker(db.url);
  // The worker the README's producer example expects: fibonacci, with the result as a decimal string.
  worker = new Worker({
    address: `127.0.0.1:${broker.port}`,
    handlers: {
      fibonacci: async ({ n }: { n: number }) => {
        let [a, b] = [0n, 1n];
        for (let i = 0; i < n; i++) [a, b] = [b, a + b];
        return { n, value: a.toString() };
      },
    },
  });
  await worker.start();
}, 300_000);

afterAll(async () => {
  await worker?.close();
  await broker?.stop();
  await db?.drop();
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('@baton/worker-sdk, packed', () => {
  it('ships JavaScript and declarations, with a manifest that points at them', async () => {
    // In the repository the manifest points at the TypeScript sources; packing swaps in the dist/
    // one for the tarball only (scripts/pack-manifest.ts) and must leave the source one in place.
    const manifest = JSON.parse(await readFile(path.join(stage, 'worker-sdk/package.json'), 'utf8')) as { exports: Record<string, unknown> };
    expect(manifest.exports['.']).toBe('./src/index.ts');
    expect(existsSync(path.join(stage, 'worker-sdk/.package.json.source'))).toBe(false);

    const files = await listing(sdkTarball);
    expect(files).toContain('package/dist/index.js');
    expect(files).toContain('package/dist/index.d.ts');
    expect(files).toContain('package/dist/gen/baton/v1/lease_pb.js');
    expect(files.some((f) => f.endsWith('.test.ts') || f.endsWith('.test.js'))).toBe(false);
    const packed = await packedManifest(sdkTarball);
    expect((packed.exports as Record<string, unknown>)['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(packed.main).toBe('./dist/index.js');
  });

  it('imports every export and subpath on Node 20', async () => {
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
    const { stdout } = await run(node20, ['check.mjs'], { cwd: project });
    const report = JSON.parse(stdout.trim()) as { node: string; exports: string[] };
    expect(report.exports).toEqual(expect.arrayContaining(['Worker', 'Client', 'NonRetryableError']));
    if (node20 === '/usr/bin/node') expect(report.node).toMatch(/^v20\./);
  });

  it("runs the README's producer example against a broker, on Node 20 and on Node 24", { timeout: 60_000 }, async () => {
    const example = await readmeBlock('worker-sdk/README.md', 'ts', 'new Client(');
    expect(example).toContain("address: 'localhost:7700'");
    // The same code, pointed at the test's broker; a .mjs file, since it is JavaScript as written.
    await writeFile(path.join(project, 'producer.mjs'), example.replace("'localhost:7700'", `'127.0.0.1:${broker.port}'`));
    for (const [node, major] of [
      [node20, node20 === '/usr/bin/node' ? 'v20.' : 'v'],
      [node24, 'v24.'],
    ] as const) {
      const { stdout: version } = await run(node, ['--version']);
      expect(version).toMatch(new RegExp(`^${major.replace('.', '\\.')}`));
      const { stdout } = await run(node, ['producer.mjs'], { cwd: project, timeout: 30_000 });
      expect(stdout).toContain('n: 303');
      expect(stdout).toContain("value: '941390895042587567453271223806288165311401367715034229502159202'");
    }
  });
});

describe('@baton/server, packed: the `baton` command', () => {
  it('ships JavaScript, with bin and exports pointing at it', async () => {
    const manifest = JSON.parse(await readFile(path.join(stage, 'server/package.json'), 'utf8')) as { exports: Record<string, unknown> };
    expect(manifest.exports['./cli']).toBe('./src/cli/index.ts');
    expect(existsSync(path.join(stage, 'server/.package.json.source'))).toBe(false);
    const files = await listing(serverTarball);
    expect(files).toEqual(
      expect.arrayContaining(['package/bin/baton.js', 'package/dist/cli/index.js', 'package/dist/broker.js', 'package/dist/dashboard/bundle/app.js']),
    );
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    const packed = await packedManifest(serverTarball);
    expect(packed.bin).toEqual({ baton: './bin/baton.js' });
    expect((packed.exports as Record<string, unknown>)['./cli']).toEqual({ types: './dist/cli/index.d.ts', default: './dist/cli/index.js' });
  });

  it('answers --help and enqueues and reads a job from another folder, on Node 24', { timeout: 60_000 }, async () => {
    const elsewhere = await tempDir('baton-elsewhere-');
    const baton = path.join(project, 'node_modules/.bin/baton');
    const env = { ...process.env, PATH: pathWith(node24), BATON_ADDRESS: `127.0.0.1:${broker.port}` };
    const help = await run(baton, ['--help'], { cwd: elsewhere, env });
    expect(help.stdout).toMatch(/^Usage: baton COMMAND/);
    expect(help.stdout).toContain('enqueue');

    const enqueued = await run(baton, ['enqueue', '--queue', 'packed-cli', '--payload', '{"n": 7}'], { cwd: elsewhere, env });
    const id = enqueued.stdout.trim();
    expect(id).toMatch(/^\d+$/);
    const got = await run(baton, ['get', id, '--json'], { cwd: elsewhere, env });
    expect(JSON.parse(got.stdout)).toMatchObject({ id, queue: 'packed-cli', payload: { n: 7 } });

    // `npx baton` inside the project runs the installed command, not an unrelated `baton` from npm.
    const viaNpx = await run('npx', ['--no-install', 'baton', 'help', 'get'], { cwd: project, env });
    expect(viaNpx.stdout).toMatch(/^baton get/);
  });

  it('says in one line which Node it needs when run on Node 20', async () => {
    if (node20 !== '/usr/bin/node') return;
    const baton = path.join(project, 'node_modules/.bin/baton');
    const failed = await run(baton, ['--help'], { cwd: project, env: { ...process.env, PATH: pathWith(node20) } }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/^baton: needs Node\.js 22\.17 or newer .*v20\.\d+\.\d+.*\n$/);
  });
});
