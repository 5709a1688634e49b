#!/usr/bin/env node
/**
 * Bundles the dashboard (src/app.ts and what it imports: connect-web, protobuf-es, the generated
 * API types) into bundle/app.js with esbuild. The bundle is committed, so a broker serves it with no
 * build step and `npm install --omit=dev` deployments work; CI checks it is fresh.
 *
 *   npm run build:dashboard            write bundle/app.js
 *   npm run build:dashboard -- --check exit 1 if bundle/app.js differs from what the sources build
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';

const here = import.meta.dirname;
const outfile = path.join(here, 'bundle/app.js');
const check = process.argv.includes('--check');

const result = await build({
  entryPoints: [path.join(here, 'src/app.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome111', 'firefox113', 'safari16.4'],
  legalComments: 'none',
  charset: 'utf8',
  banner: { js: '// The Baton dashboard, bundled from server/src/dashboard/src by `npm run build:dashboard`. Do not edit.' },
  write: false,
  outfile,
  logLevel: 'warning',
});
const built = result.outputFiles[0].contents;

if (check) {
  const committed = await readFile(outfile).catch(() => Buffer.alloc(0));
  if (!Buffer.from(built).equals(committed)) {
    process.stderr.write('server/src/dashboard/bundle/app.js is stale: run "npm run build:dashboard" and commit the result\n');
    process.exit(1);
  }
  process.stdout.write(`dashboard bundle is fresh (${built.length} bytes)\n`);
} else {
  await writeFile(outfile, built);
  process.stdout.write(`wrote ${path.relative(process.cwd(), outfile)} (${built.length} bytes)\n`);
}
