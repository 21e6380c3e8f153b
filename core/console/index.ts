/**
 * The web console (CONTRACT §11) at `/console` on the operations port: on only
 * when `HUB_CONSOLE_TOKEN` is set. The page and its libraries are static files;
 * everything it shows comes from the JSON API under `/console/api/`, behind a
 * session cookie; every action also needs the session's CSRF token in a header
 * and, when the browser names one, this server's own Origin.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Cradle } from '../container.ts';
import { consoleApi } from './api.ts';
import { type Asset, contentSecurityPolicy, loadAssets } from './assets.ts';
import { ClientError, SECURITY_HEADERS, readJson, sameOrigin, sendJson } from './http.ts';
import { Sessions, clearedCookie, csrfMatches, sessionCookie } from './sessions.ts';

export const CSRF_HEADER = 'x-console-csrf';

export type ConsoleHandler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>;

export function createConsole(cradle: Cradle, token: string): ConsoleHandler {
  const { redactor, logger } = cradle;
  const assets = loadAssets();
  const csp = contentSecurityPolicy(assets.get('')!);
  const sessions = new Sessions(token);
  const api = consoleApi(cradle);
  const json = (res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>) => sendJson(res, redactor, status, body, headers);

  const serveAsset = (req: IncomingMessage, res: ServerResponse, asset: Asset) => {
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, { etag: asset.etag });
      return res.end();
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? asset.gzipped : asset.body;
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': body.length,
      'cache-control': 'no-cache',
      etag: asset.etag,
      vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      ...(asset.type.startsWith('text/html') ? { 'content-security-policy': csp } : {}),
      ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const routes = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://console');
    if (path === '/console') {
      res.writeHead(308, { location: '/console/' });
      return void res.end();
    }
    const name = path.slice('/console/'.length);
    if (!name.startsWith('api/')) {
      const asset = assets.get(name);
      if (!asset || (method !== 'GET' && method !== 'HEAD')) return json(res, 404, { error: `not found: ${path}` });
      return void serveAsset(req, res, asset);
    }
    const route = `${method} ${name.slice('api/'.length)}`;

    if (route === 'POST signin') {
      if (!sameOrigin(req)) throw new ClientError(403, 'sign in from the console page itself');
      const body = await readJson(req);
      if (typeof body.token !== 'string' || !sessions.tokenMatches(body.token)) {
        logger.warn({ from: req.socket.remoteAddress }, 'console: sign-in refused (wrong token)');
        throw new ClientError(401, 'that is not the console token (HUB_CONSOLE_TOKEN)');
      }
      const { id, session } = sessions.open();
      logger.info({ from: req.socket.remoteAddress }, 'console: signed in');
      const secure = (req.headers['x-forwarded-proto'] ?? '') === 'https' || 'encrypted' in req.socket;
      return json(res, 200, { csrf: session.csrf }, { 'set-cookie': sessionCookie(id, secure) });
    }

    const signedIn = sessions.find(req.headers.cookie);
    if (!signedIn) throw new ClientError(401, 'sign in first');
    if (method === 'POST') {
      if (!sameOrigin(req)) throw new ClientError(403, 'refused: the request comes from another site');
      const csrf = req.headers[CSRF_HEADER];
      if (!csrfMatches(signedIn.session, typeof csrf === 'string' ? csrf : undefined)) throw new ClientError(403, `refused: the ${CSRF_HEADER} header is missing or wrong; reload the console`);
    }

    switch (route) {
      case 'GET session':
        return json(res, 200, { csrf: signedIn.session.csrf });
      case 'POST signout':
        sessions.close(signedIn.id);
        return json(res, 200, { ok: true }, { 'set-cookie': clearedCookie() });
      case 'GET flow':
        return json(res, 200, await api.flow());
      case 'GET trace':
        return json(res, 200, await api.trace((url.searchParams.get('id') ?? '').trim()));
      case 'GET dead':
        return json(res, 200, await api.deadLetters(url.searchParams));
      case 'POST dead/replay':
        return json(res, 200, await api.replay(await readJson(req)));
      case 'POST dead/purge':
        return json(res, 200, await api.purge(await readJson(req)));
      case 'GET mapping':
        return json(res, 200, await api.mapping());
      case 'POST mapping/check':
        return json(res, 200, api.check(await readJson(req)));
      case 'POST mapping': {
        const saved = await api.save(await readJson(req));
        return json(res, saved.status, saved.body);
      }
      case 'GET mapping/revisions':
        return json(res, 200, await api.revisions());
      case 'GET mapping/diff':
        return json(res, 200, await api.diff(url.searchParams.get('from') ?? '', url.searchParams.get('to') ?? ''));
      default:
        throw new ClientError(404, `no such console request: ${route}`);
    }
  };

  return async (req, res, path) => {
    try {
      await routes(req, res, path);
    } catch (err) {
      if (err instanceof ClientError) return json(res, err.status, { error: err.message });
      logger.error({ err: (err as Error).message, path }, 'console request failed');
      // The reason, not a stack: most are Redis or the mapping source being away.
      return json(res, 500, { error: `the hub could not answer: ${(err as Error).message}` });
    }
  };
}
