/**
 * Copies the dashboard's files into dist/ after `tsc` (which copies no files it does not compile):
 * server/src/dashboard/assets.ts reads the page, its stylesheet and the committed bundle from paths
 * relative to itself, so dist/dashboard/assets.js finds them at the same places.
 */
import { cpSync } from 'node:fs';
import path from 'node:path';

const from = path.resolve(import.meta.dirname, '../src/dashboard');
const to = path.resolve(import.meta.dirname, '../dist/dashboard');
for (const file of ['src/index.html', 'src/app.css', 'bundle/app.js']) cpSync(path.join(from, file), path.join(to, file));
