// What the broker's port answers besides RPCs: `/healthz` and `/readyz` for load balancers and
// orchestrators, `/metrics` for Prometheus and the dashboard's files. connectNodeAdapter hands every
// path that is not an RPC to this handler (its `fallback`).

import type { IncomingHttpHeaders } from 'node:http';
import type { HttpAuthResult } from '../auth/http.ts';
import type { Asset } from '../dashboard/assets.ts';
import type { Logger } from '../logger.ts';
import { CONTENT_TYPE } from '../metrics/registry.ts';
import type { Readiness } from './readiness.ts';

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
  /**
   * Whether the broker can serve now (./readiness.ts), for `/readyz`. The probes need no
   * credentials, on purpose: a load balancer or a kubelet has none to give, and the answer tells
   * nothing but "ok" or a few fixed words (no address, no version, no error text).
   */
  readiness: () => Promise<Readiness>;
}

// The page loads only its own script and style and talks only to this origin.
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const PROBES = new Set(['/healthz', '/readyz']);

export function createHttpRoutes(options: HttpRoutesOptions): (req: Request, res: Response) => void {
  const { metrics, dashboard, logger, authorizeMetrics, readiness } = options;

  function send(res: Response, status: number, headers: Record<string, string>, body?: Buffer | string): void {
    res.writeHead(status, headers);
    if (body === undefined) res.end();
    else res.end(body);
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://broker');
    const pathName = url.pathname === '/index.html' ? '/' : url.pathname;
    const method = req.method ?? 'GET';
    const known = PROBES.has(pathName) || pathName === '/metrics' || dashboard.has(pathName);
    if (!known) {
      const help =
        'This port serves RPCs at /<service>/<method> (gRPC, gRPC-Web, Connect), the dashboard at /, Prometheus metrics at /metrics ' +
        'and health probes at /healthz (alive) and /readyz (ready to serve).';
      send(res, 404, { 'content-type': 'text/plain; charset=utf-8' }, `Not found: ${url.pathname}\n${help}\n`);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      send(res, 405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }, `${url.pathname} answers GET only\n`);
      return;
    }
    // no-store: a cache between a probe and the broker must not answer for a broker that is gone.
    const probeHeaders = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };
    if (pathName === '/healthz') {
      // Alive is answering: a restart would not fix a database that is away, so it is not asked here.
      send(res, 200, probeHeaders, method === 'HEAD' ? undefined : 'ok\n');
      return;
    }
    if (pathName === '/readyz') {
      readiness().then(
        (answer) => {
          const body = answer.ready ? 'ok\n' : `not ready: ${answer.reason}\n`;
          send(res, answer.ready ? 200 : 503, probeHeaders, method === 'HEAD' ? undefined : body);
        },
        (error) => {
          logger.error('readiness check failed', { error });
          send(res, 503, probeHeaders, method === 'HEAD' ? undefined : 'not ready: readiness check failed\n');
        },
      );
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
