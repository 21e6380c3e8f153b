import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../config/schema.ts';
import type { MappingStore } from '../mapping/store.ts';
import type { Metrics } from '../metrics.ts';
import type { Redactor } from '../redactor.ts';

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

/** The three documented paths and nothing else: `/healthz`, `/readyz`, `/metrics`. */
export async function startHttpServer(deps: {
  config: HubConfig;
  redis: Redis;
  mappingStore: MappingStore;
  metrics: Metrics;
  logger: Logger;
  redactor: Redactor;
  runsHub: boolean;
}): Promise<HttpServer> {
  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : deps.redactor.redact(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    try {
      if (path === '/healthz') return send(200, 'ok\n');
      if (path === '/readyz') {
        const problems: string[] = [];
        await Promise.race([deps.redis.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1000))]).catch(() =>
          problems.push('Redis is not reachable'),
        );
        if (deps.runsHub && !deps.mappingStore.current) problems.push(`no mapping loaded${deps.mappingStore.lastError ? `: ${deps.mappingStore.lastError}` : ''}`);
        if (problems.length) return send(503, `not ready: ${problems.join('; ')}\n`);
        // Routing works with the last good mapping; say what needs attention all the same.
        const warning = deps.runsHub && deps.mappingStore.lastError ? ` (warning: ${deps.mappingStore.lastError})` : '';
        return send(200, `ready${warning}\n`);
      }
      if (path === '/metrics') return send(200, await deps.metrics.registry.metrics(), deps.metrics.registry.contentType);
      return send(404, 'not found: this port serves /healthz, /readyz and /metrics\n');
    } catch (err) {
      deps.logger.error({ err: (err as Error).message, path }, 'HTTP request failed');
      return send(500, 'internal error\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.config.http.port, deps.config.http.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
}
