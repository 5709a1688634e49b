// What the broker's port answers besides RPCs: `/metrics` for Prometheus and the dashboard's files.
// connectNodeAdapter hands every path that is not an RPC to this handler (its `fallback`).

import type { IncomingHttpHeaders } from 'node:http';
import type { HttpAuthResult } from '../auth/http.ts';
import type { Asset } from '../dashboard/assets.ts';
import type { Logger } from '../logger.ts';
import { CONTENT_TYPE } from '../metrics/registry.ts';

/** The little of Node's HTTP/1.1 and HTTP/2 request and response that these routes use. */
interface Request {
  readonly url?: string;
  readonly method?: string;
  readonly headers: Record<string, string | string[] | undefined>;
}
interface Response {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(): unknown;
  end(body: Buffer | string): unknown;
}

export interface HttpRoutesOptions {
  /** Renders the metrics in Prometheus text format. */
  metrics: () => Promise<string>;
  /** The dashboard's files by URL path. */
  dashboard: Map<string, Asset>;
  logger: Logger;
  /**
   * Checks a `/metrics` request's credentials (with auth on: an admin key, which Prometheus sends as
   * `authorization: Bearer …`). The dashboard's files hold no data and are served to anyone; the
   * page's RPCs carry the key the user gives it.
   */
  authorizeMetrics?: (headers: IncomingHttpHeaders) => Promise<HttpAuthResult>;
}

// The page loads only its own script and style and talks only to this origin.
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function createHttpRoutes(options: HttpRoutesOptions): (req: Request, res: Response) => void {
  const { metrics, dashboard, logger, authorizeMetrics } = options;

  function send(res: Response, status: number, headers: Record<string, string>, body?: Buffer | string): void {
    res.writeHead(status, headers);
    if (body === undefined) res.end();
    else res.end(body);
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://broker');
    const pathName = url.pathname === '/index.html' ? '/' : url.pathname;
    const method = req.method ?? 'GET';
    const known = pathName === '/metrics' || dashboard.has(pathName);
    if (!known) {
      const help = 'This port serves RPCs at /<service>/<method> (gRPC, gRPC-Web, Connect), the dashboard at / and Prometheus metrics at /metrics.';
      send(res, 404, { 'content-type': 'text/plain; charset=utf-8' }, `Not found: ${url.pathname}\n${help}\n`);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      send(res, 405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }, `${url.pathname} answers GET only\n`);
      return;
    }
    if (pathName === '/metrics') {
      (async () => {
        const auth = authorizeMetrics ? await authorizeMetrics(req.headers as IncomingHttpHeaders) : null;
        if (auth && !auth.ok) {
          send(res, auth.status, { 'content-type': 'text/plain; charset=utf-8', ...auth.headers }, `${auth.message}\n`);
          return;
        }
        const text = await metrics();
        send(res, 200, { 'content-type': CONTENT_TYPE, 'cache-control': 'no-store' }, method === 'HEAD' ? undefined : text);
      })().catch((error) => {
        logger.error('could not render metrics', { error });
        send(res, 500, { 'content-type': 'text/plain; charset=utf-8' }, 'could not render metrics; see the broker log\n');
      });
      return;
    }
    const asset = dashboard.get(pathName)!;
    // no-cache: the browser revalidates with the ETag, so a new broker version is picked up at once.
    const headers: Record<string, string> = { 'content-type': asset.type, 'cache-control': 'no-cache', etag: asset.etag, vary: 'accept-encoding' };
    if (pathName === '/') Object.assign(headers, PAGE_HEADERS);
    if (req.headers['if-none-match'] === asset.etag) {
      send(res, 304, headers);
      return;
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    if (gzip) headers['content-encoding'] = 'gzip';
    const body = gzip ? asset.gzipped : asset.body;
    headers['content-length'] = String(body.length);
    send(res, 200, headers, method === 'HEAD' ? undefined : body);
  };
}
