/**
 * A workspace package's two package.json shapes, and the switch between them around `npm pack` /
 * `npm publish`; used by the SDK (@baton/worker-sdk) and the broker with its CLI (@baton/server).
 *
 * In this repository `main`, `types`, `exports` and `bin` point at the TypeScript sources
 * (`./src/*.ts`): the broker, its CLI, the tests and the dashboard build import `@baton/worker-sdk`
 * by name, and Node 24 strips the types of those files with no build step, because the workspace
 * link in node_modules resolves to a real path outside node_modules. A published package cannot do
 * that: Node 20 has no type stripping, and no Node strips types under node_modules. So the tarball
 * carries a manifest whose every `./src/X.ts` target is `{ types: ./dist/X.d.ts, default:
 * ./dist/X.js }` (a `bin`, `./dist/X.js`) instead.
 *
 *   node scripts/pack-manifest.ts publish   (prepack, after the build, in the package's folder) keep
 *                                           the source manifest in .package.json.source, write the
 *                                           published one
 *   node scripts/pack-manifest.ts restore   (postpack) put the source manifest back, byte for byte
 *
 * A pack that died between the two leaves .package.json.source behind; the next `publish` (and any
 * `restore`) puts it back first, so the working tree never keeps the published shape.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

// npm runs lifecycle scripts in the folder of the package being packed.
const root = process.cwd();
const manifestFile = path.join(root, 'package.json');
const sourceCopy = path.join(root, '.package.json.source');

type Exports = string | null | Exports[] | { [key: string]: Exports };

const SOURCE = /^\.\/src\/(.+)\.ts$/;

/** `./src/X.ts` as the published JavaScript and declarations; anything else unchanged. */
function published(target: Exports): Exports {
  if (typeof target === 'string') {
    const match = SOURCE.exec(target);
    return match ? { types: `./dist/${match[1]}.d.ts`, default: `./dist/${match[1]}.js` } : target;
  }
  if (Array.isArray(target)) return target.map(published);
  if (target === null) return null;
  return Object.fromEntries(Object.entries(target).map(([key, value]) => [key, published(value)]));
}

function publishedField(value: unknown, extension: '.js' | '.d.ts'): unknown {
  const match = typeof value === 'string' ? SOURCE.exec(value) : null;
  return match ? `./dist/${match[1]}${extension}` : value;
}

/** Writes by renaming a finished file, so a process reading package.json never sees half of one. */
async function replaceManifest(text: string): Promise<void> {
  const temporary = `${manifestFile}.${process.pid}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, manifestFile);
}

async function restore(): Promise<void> {
  if (existsSync(sourceCopy)) await rename(sourceCopy, manifestFile);
}

async function publish(): Promise<void> {
  await restore();
  const text = await readFile(manifestFile, 'utf8');
  const manifest = JSON.parse(text) as Record<string, unknown>;
  manifest.main = publishedField(manifest.main, '.js');
  manifest.types = publishedField(manifest.types, '.d.ts');
  if (manifest.exports !== undefined) manifest.exports = published(manifest.exports as Exports);
  if (typeof manifest.bin === 'string') manifest.bin = publishedField(manifest.bin, '.js');
  else if (manifest.bin !== undefined) {
    manifest.bin = Object.fromEntries(Object.entries(manifest.bin as Record<string, string>).map(([name, file]) => [name, publishedField(file, '.js')]));
  }
  const indent = /^\s+/.exec(text.split('\n')[1] ?? '')?.[0] ?? '  ';
  await writeFile(sourceCopy, text);
  await replaceManifest(`${JSON.stringify(manifest, null, indent)}\n`);
}

const command = process.argv[2];
if (command === 'publish') await publish();
else if (command === 'restore') await restore();
else {
  process.stderr.write('usage: node scripts/pack-manifest.ts publish|restore\n');
  process.exitCode = 2;
}
