#!/usr/bin/env node
// The `baton` command of @baton/server. Plain JavaScript, so that a Node too old for the broker's
// dependencies (or, in this repository, for its TypeScript sources) reads it and says what it needs,
// instead of failing deep inside an import. `@baton/server/cli` is this package's own export:
// src/cli/index.ts in the repository, dist/cli/index.js once packed (see package.json).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 17)) {
  process.stderr.write(`baton: needs Node.js 22.17 or newer (24 recommended); this is ${process.version} at ${process.execPath}\n`);
  process.exit(1);
}
const { runCli } = await import('@baton/server/cli');
// Exits explicitly: an embedded PostgreSQL or a pool must not keep a finished command alive.
process.exit(await runCli(process.argv.slice(2)));
