import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from './node-http.ts';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubConfig } from '../config/schema.ts';
import type { MappingStore } from '../mapping/store.ts';
import type { Metrics } from '../metrics.ts';
import type { Redactor } from '../redactor.ts';
import type { RedisHealth } from '../redis/health.ts';
import { listen } from './listen.ts';

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

/** Requests under `/console` when the console is on (core/console/). */
export type ConsoleRoutes = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>;

/** The three documented paths, and `/console` when it is on: nothing else. */
export async function startHttpServer(deps: {
  config: HubConfig;
  redis: Redis;
  mappingStore: MappingStore;
  metrics: Metrics;
  logger: Logger;
  redactor: Redactor;
  redisHealth: RedisHealth;
  runsHub: boolean;
  /** Channels this process was to run and could not start, with the reason. */
  down: ReadonlyMap<string, string>;
  console?: ConsoleRoutes;
}): Promise<HttpServer> {
  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : deps.redactor.redact(body));
    };
    if (deps.console && (path === '/console' || path.startsWith('/console/'))) return deps.console(req, res, path);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    try {
      if (path === '/healthz') return send(200, 'ok\n');
      if (path === '/readyz') {
        const problems: string[] = [];
        const redisProblem = deps.redisHealth.problem;
        if (redisProblem) problems.push(redisProblem);
        // Connected is not enough: a Redis that stopped answering keeps its connection.
        else await ping(deps.redis).catch(() => problems.push(`Redis at ${deps.redisHealth.url} does not answer PING within 1 s`));
        for (const [channel, reason] of deps.down) problems.push(`channel ${channel} is down: ${reason}`);
        if (deps.runsHub && !deps.mappingStore.current) problems.push(`no mapping loaded${deps.mappingStore.lastError ? `: ${deps.mappingStore.lastError}` : ''}`);
        if (problems.length) return send(503, `not ready: ${problems.join('; ')}\n`);
        // Routing works with the last good mapping; say what needs attention all the same.
        const warning = deps.runsHub && deps.mappingStore.lastError ? ` (warning: ${deps.mappingStore.lastError})` : '';
        return send(200, `ready${warning}\n`);
      }
      if (path === '/metrics') return send(200, await deps.metrics.registry.metrics(), deps.metrics.registry.contentType);
      return send(404, `not found: this port serves /healthz, /readyz${deps.console ? ', /metrics and /console' : ' and /metrics'}\n`);
    } catch (err) {
      deps.logger.error({ err: (err as Error).message, path }, 'HTTP request failed');
      return send(500, 'internal error\n');
    }
  });
  const { host, port } = deps.config.http;
  await listen(server, host, port, { serving: '/healthz, /readyz and /metrics', hostVar: 'HUB_HTTP_HOST', portVar: 'HUB_HTTP_PORT' });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
}

async function ping(redis: Redis): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([redis.ping(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), 1000)))]);
  } finally {
    clearTimeout(timer);
  }
}
