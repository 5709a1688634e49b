import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** One file of the dashboard, ready to send: its bytes, gzipped bytes and validator. */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly gzipped: Buffer;
  readonly etag: string;
}

const HERE = import.meta.dirname;

/** URL path → file (relative to this folder) and content type. */
const FILES: Record<string, [file: string, type: string]> = {
  '/': ['src/index.html', 'text/html; charset=utf-8'],
  '/assets/app.js': ['bundle/app.js', 'text/javascript; charset=utf-8'],
  '/assets/app.css': ['src/app.css', 'text/css; charset=utf-8'],
};

/**
 * Reads the dashboard's files once, at start-up: the page, its stylesheet and the bundle that
 * `npm run build:dashboard` writes to bundle/ (committed, so a broker needs no build step). A missing
 * bundle is reported on the page instead of failing the broker.
 */
export async function loadDashboard(): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const [urlPath, [file, type]] of Object.entries(FILES)) {
    let body: Buffer;
    try {
      body = await readFile(path.join(HERE, file));
    } catch {
      body = Buffer.from(
        urlPath === '/assets/app.js'
          ? `document.body.textContent = 'The dashboard bundle is missing: run "npm run build:dashboard" and restart the broker.';`
          : '',
      );
    }
    assets.set(urlPath, {
      type,
      body,
      gzipped: gzipSync(body),
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`,
    });
  }
  return assets;
}
